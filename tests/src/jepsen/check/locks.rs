//! Check 5: no lock is held twice. Lock holds, as `[acquired, released)`
//! intervals of their clients' belief, never overlap, and fencing tokens
//! grow with acquisition order.
//!
//! Limits: a hold's end is when its client stopped believing it held the
//! lock, which is as late as a correct client may act on it; a hold that
//! ends before it starts is empty and overlaps nothing.

use super::describe::lock_hold;
use super::{list_problems, CheckResult, LOCKS as NAME};
use crate::jepsen::history::{LockHold, Recording};

/// Checks every lock hold against every other.
pub(super) fn check(recording: &Recording) -> CheckResult {
    let mut holds: Vec<&LockHold> = recording.lock_holds.iter().collect();
    holds.sort_by_key(|h| (h.acquired, h.token));
    let mut problems = Vec::new();
    // Sweeping by acquisition, a hold overlaps an earlier one iff it starts
    // before the latest end so far: report it with that latest-ending hold.
    let mut open: Option<&LockHold> = None;
    for (i, &hold) in holds.iter().enumerate() {
        if i > 0 && hold.token <= holds[i - 1].token {
            problems.push(format!(
                "tokens do not grow with acquisition order:\n{}\n{}",
                lock_hold(holds[i - 1]),
                lock_hold(hold)
            ));
        }
        if hold.released <= hold.acquired {
            continue;
        }
        if let Some(earlier) = open {
            if hold.acquired < earlier.released {
                problems.push(format!(
                    "held twice from {} to {}:\n{}\n{}",
                    super::describe::time(hold.acquired),
                    super::describe::time(hold.released.min(earlier.released)),
                    lock_hold(earlier),
                    lock_hold(hold)
                ));
            }
        }
        if open.is_none_or(|o| hold.released > o.released) {
            open = Some(hold);
        }
    }
    let checked = holds.len();
    if problems.is_empty() {
        CheckResult::pass(NAME, checked, "holds")
    } else {
        let why = list_problems("the lock was not mutually exclusive", &problems);
        CheckResult::fail(NAME, checked, "holds", why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::Nanos;

    fn hold(process: usize, token: i64, acquired: Nanos, released: Nanos) -> LockHold {
        LockHold {
            process,
            lease: 0x100 + process as i64,
            token,
            acquired,
            released,
        }
    }

    fn run(holds: Vec<LockHold>) -> CheckResult {
        check(&Recording {
            lock_holds: holds,
            ..Recording::default()
        })
    }

    fn failure(r: &CheckResult) -> String {
        assert!(!r.passed());
        r.explanation.clone().unwrap_or_default()
    }

    #[test]
    fn holds_one_after_another_pass() {
        let r = run(vec![
            hold(2, 20, 100, 200),
            hold(1, 10, 0, 100),
            // Ending where the next begins is not an overlap.
            hold(3, 30, 200, 250),
            // An empty hold overlaps nothing.
            hold(4, 40, 240, 230),
        ]);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.checked, 4);
    }

    #[test]
    fn overlapping_holds_fail_with_the_pair() {
        let text = failure(&run(vec![
            hold(1, 10, 0, 500),
            hold(2, 20, 100, 200),
            hold(3, 30, 300, 600),
        ]));
        assert!(text.contains("(2 found)"), "{text}");
        assert!(
            text.contains("held twice from 0.000000100s to 0.000000200s:\n  p1 held token 10 (lease 101) [0.000000000s .. 0.000000500s)\n  p2 held token 20"),
            "{text}"
        );
        assert!(
            text.contains("held twice from 0.000000300s to 0.000000500s"),
            "{text}"
        );
    }

    #[test]
    fn tokens_going_back_fail() {
        let text = failure(&run(vec![hold(1, 20, 0, 100), hold(2, 10, 100, 200)]));
        assert!(
            text.contains("tokens do not grow with acquisition order:\n  p1 held token 20"),
            "{text}"
        );
        let text = failure(&run(vec![hold(1, 20, 0, 100), hold(1, 20, 100, 200)]));
        assert!(text.contains("tokens do not grow"), "{text}");
    }
}
