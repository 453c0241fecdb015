//! Check 3: every watch delivered exactly the history. A watch log must equal
//! the reference events from its start revision up to the revision of its
//! last event: strictly in (revision, place within the revision) order, no
//! event twice, none missing, none extra, each with the right kind. Events
//! sharing a revision (one txn) come in the reference's order.
//!
//! Limits: what a watch would have delivered after its last event is not
//! known (the stream may have been closed), so a log is only held to the
//! revisions it reached; an empty log passes. A watch that asked for no
//! start revision (0: "from now") is held from its first event's revision,
//! so a gap before its first event cannot be seen.

use std::collections::HashMap;

use super::describe::watch_event;
use super::{list_problems, CheckResult, WATCHES as NAME};
use crate::jepsen::history::{Recording, WatchEvent, WatchLog};

/// Missing or extra events shown per problem.
const SHOWN_EVENTS: usize = 5;

/// Checks every watch log against the reference events.
pub(super) fn check(recording: &Recording) -> CheckResult {
    let checked = recording.watch_logs.iter().map(|l| l.events.len()).sum();
    let reference = &recording.reference_events;
    let mut place: HashMap<(i64, &str), usize> = HashMap::new();
    for (i, e) in reference.iter().enumerate() {
        let malformed = if i > 0 && e.revision < reference[i - 1].revision {
            Some("reference events are not in revision order")
        } else if place.insert((e.revision, e.key.as_str()), i).is_some() {
            Some("a key appears twice in one revision of the reference events")
        } else {
            None
        };
        if let Some(what) = malformed {
            let why = format!("{what}, at {}: a malformed recording", watch_event(e));
            return CheckResult::fail(NAME, checked, "events", why);
        }
    }
    let problems: Vec<String> = recording
        .watch_logs
        .iter()
        .enumerate()
        .filter_map(|(n, log)| {
            check_log(log, reference, &place).map(|p| {
                format!(
                    "watch {n} of p{} (opened on member {} from revision {}): {p}",
                    log.process, log.member, log.start_revision
                )
            })
        })
        .collect();
    if problems.is_empty() {
        CheckResult::pass(NAME, checked, "events")
    } else {
        let why = list_problems(
            "watches delivered something else than the history",
            &problems,
        );
        CheckResult::fail(NAME, checked, "events", why)
    }
}

/// The first way `log` departs from `reference`, if any.
fn check_log(
    log: &WatchLog,
    reference: &[WatchEvent],
    place: &HashMap<(i64, &str), usize>,
) -> Option<String> {
    let last = log.events.last()?;
    let start = if log.start_revision > 0 {
        log.start_revision
    } else {
        log.events[0].revision
    };
    let first = reference.partition_point(|e| e.revision < start);
    let end = reference.partition_point(|e| e.revision <= last.revision);
    let delivered = |i: usize| format!("#{i} {}", watch_event(&log.events[i]));
    let after = |i: usize| {
        if i == 0 {
            "as its first event".to_string()
        } else {
            format!("after {}", delivered(i - 1))
        }
    };
    // The reference index the next delivered event must be.
    let mut expected = first;
    for (i, event) in log.events.iter().enumerate() {
        let Some(&at) = place.get(&(event.revision, event.key.as_str())) else {
            return Some(format!(
                "delivered {} {}, an event that is not in the history",
                delivered(i),
                after(i)
            ));
        };
        if reference[at].kind != event.kind {
            return Some(format!(
                "delivered {} {}, but the history has {}",
                delivered(i),
                after(i),
                watch_event(&reference[at])
            ));
        }
        if at < first {
            return Some(format!(
                "delivered {}, before the watch's start revision",
                delivered(i)
            ));
        }
        if at < expected {
            let twice = log.events[..i].iter().position(|e| e == event);
            return Some(match twice {
                Some(j) => format!("delivered {} twice (also as #{j})", delivered(i)),
                None => format!("delivered {} out of order, {}", delivered(i), after(i)),
            });
        }
        if at > expected {
            let skipped = &reference[expected..at];
            let later = log.events[i + 1..]
                .iter()
                .enumerate()
                .find_map(|(j, e)| skipped.contains(e).then_some((i + 1 + j, e)));
            if let Some((j, e)) = later {
                return Some(format!(
                    "delivered {} before {}, which the history has first (delivered later as #{j})",
                    delivered(i),
                    watch_event(e)
                ));
            }
            return Some(format!(
                "missed {} {}",
                events(&reference[expected..at]),
                match i {
                    0 => format!("before its first event {}", delivered(0)),
                    _ => format!("between {} and {}", delivered(i - 1), delivered(i)),
                }
            ));
        }
        expected = at + 1;
    }
    (expected < end).then(|| {
        format!(
            "missed {} after its last event {}, of the same revision",
            events(&reference[expected..end]),
            delivered(log.events.len() - 1)
        )
    })
}

fn events(list: &[WatchEvent]) -> String {
    let shown: Vec<String> = list.iter().take(SHOWN_EVENTS).map(watch_event).collect();
    let more = list.len().saturating_sub(SHOWN_EVENTS);
    let plural = if list.len() == 1 { "event" } else { "events" };
    let mut text = format!("{} {plural} ({}", list.len(), shown.join(", "));
    if more > 0 {
        text.push_str(&format!(", and {more} more"));
    }
    text.push(')');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::EventKind;

    fn ev(revision: i64, key: &str, kind: EventKind) -> WatchEvent {
        WatchEvent {
            revision,
            key: key.into(),
            kind,
        }
    }

    /// Revisions 2..=6; revision 4 is a txn of three events.
    fn reference() -> Vec<WatchEvent> {
        vec![
            ev(2, "a", EventKind::Put),
            ev(3, "b", EventKind::Put),
            ev(4, "c", EventKind::Put),
            ev(4, "a", EventKind::Delete),
            ev(4, "d", EventKind::Put),
            ev(5, "b", EventKind::Delete),
            ev(6, "a", EventKind::Put),
        ]
    }

    fn run(start_revision: i64, events: Vec<WatchEvent>) -> CheckResult {
        check(&Recording {
            watch_logs: vec![WatchLog {
                process: 2,
                member: 1,
                start_revision,
                events,
            }],
            reference_events: reference(),
            ..Recording::default()
        })
    }

    fn failure(r: &CheckResult) -> &str {
        assert!(!r.passed());
        r.explanation.as_deref().unwrap_or_default()
    }

    #[test]
    fn logs_equal_to_the_reference_from_their_start_pass() {
        let all = reference();
        assert!(run(1, all.clone()).passed());
        assert!(run(4, all[2..].to_vec()).passed());
        // A log may stop early: it is held only to the revisions it reached.
        assert!(run(3, all[1..5].to_vec()).passed());
        assert!(run(9, vec![]).passed());
        let two = check(&Recording {
            watch_logs: vec![
                WatchLog {
                    process: 1,
                    member: 0,
                    start_revision: 2,
                    events: all.clone(),
                },
                WatchLog {
                    process: 2,
                    member: 2,
                    start_revision: 5,
                    events: all[5..].to_vec(),
                },
            ],
            reference_events: all,
            ..Recording::default()
        });
        assert!(two.passed());
        assert_eq!(two.checked, 9);
    }

    #[test]
    fn a_watch_from_now_is_held_from_its_first_event() {
        let all = reference();
        assert!(run(0, all[5..].to_vec()).passed());
        // Its first revision must still be whole.
        let text = failure(&run(0, all[3..].to_vec())).to_string();
        assert!(
            text.contains("missed 1 event (revision 4 Put \"c\") before its first event"),
            "{text}"
        );
        let mut events = all[2..].to_vec();
        events.remove(3);
        let text = failure(&run(0, events)).to_string();
        assert!(
            text.contains("missed 1 event (revision 5 Delete \"b\")"),
            "{text}"
        );
    }

    #[test]
    fn a_gap_fails() {
        let mut events = reference();
        events.remove(1);
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("missed 1 event (revision 3 Put \"b\") between #0 revision 2 Put \"a\" and #1 revision 4 Put \"c\""),
            "{text}"
        );
        assert!(
            text.contains("watch 0 of p2 (opened on member 1 from revision 1)"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_start_fails() {
        let events = reference()[2..].to_vec();
        let text = failure(&run(2, events)).to_string();
        assert!(text.contains("missed 2 events"), "{text}");
        assert!(
            text.contains("before its first event #0 revision 4"),
            "{text}"
        );
    }

    #[test]
    fn a_partly_delivered_txn_fails() {
        let events = reference()[..4].to_vec();
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("missed 1 event (revision 4 Put \"d\") after its last event"),
            "{text}"
        );
    }

    #[test]
    fn a_duplicate_fails() {
        let mut events = reference();
        events.insert(2, events[1].clone());
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("delivered #2 revision 3 Put \"b\" twice (also as #1)"),
            "{text}"
        );
    }

    #[test]
    fn events_out_of_order_fail() {
        let mut events = reference();
        events.swap(2, 3);
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("delivered #2 revision 4 Delete \"a\" before revision 4 Put \"c\", which the history has first (delivered later as #3)"),
            "{text}"
        );
        let mut events = reference();
        events.swap(5, 6);
        let text = failure(&run(1, events)).to_string();
        assert!(text.contains("before revision 5 Delete \"b\", which the history has first (delivered later as #6)"), "{text}");
        let events = vec![reference()[3].clone(), reference()[2].clone()];
        let text = failure(&run(4, events)).to_string();
        assert!(
            text.contains("delivered #0 revision 4 Delete \"a\" before revision 4 Put \"c\""),
            "{text}"
        );
    }

    #[test]
    fn a_revision_going_back_fails() {
        let all = reference();
        let events = vec![
            all[0].clone(),
            all[1].clone(),
            all[5].clone(),
            all[2].clone(),
        ];
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("delivered #2 revision 5 Delete \"b\" before revision 4 Put \"c\""),
            "{text}"
        );
        let events = vec![all[0].clone(), all[1].clone(), all[5].clone()];
        let text = failure(&run(1, events)).to_string();
        assert!(text.contains("missed 3 events (revision 4 Put \"c\", revision 4 Delete \"a\", revision 4 Put \"d\")"), "{text}");
        let events = vec![all[0].clone(), all[1].clone(), all[0].clone()];
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("delivered #2 revision 2 Put \"a\" twice (also as #0)"),
            "{text}"
        );
    }

    #[test]
    fn extra_wrong_kind_and_early_events_fail() {
        let mut events = reference();
        events.insert(1, ev(2, "z", EventKind::Put));
        let text = failure(&run(1, events)).to_string();
        assert!(text.contains("#1 revision 2 Put \"z\" after #0 revision 2 Put \"a\", an event that is not in the history"), "{text}");
        let mut events = reference();
        events[5].kind = EventKind::Put;
        let text = failure(&run(1, events)).to_string();
        assert!(
            text.contains("but the history has revision 5 Delete \"b\""),
            "{text}"
        );
        let text = failure(&run(3, reference())).to_string();
        assert!(
            text.contains("delivered #0 revision 2 Put \"a\", before the watch's start revision"),
            "{text}"
        );
    }

    #[test]
    fn a_malformed_reference_fails() {
        let mut r = Recording {
            reference_events: vec![ev(3, "a", EventKind::Put), ev(2, "b", EventKind::Put)],
            ..Recording::default()
        };
        assert!(failure(&check(&r)).contains("not in revision order"));
        r.reference_events = vec![ev(3, "a", EventKind::Put), ev(3, "a", EventKind::Put)];
        assert!(failure(&check(&r)).contains("appears twice in one revision"));
    }
}
