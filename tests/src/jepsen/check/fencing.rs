//! Check 4: fenced writes never interleave two holders. Read in revision
//! order, the resource's versions never go back to an older token (once a
//! newer holder wrote, an older one never did again); every acknowledged
//! fenced write is there with its token, no refused one is, none twice, and
//! none that no recorded fenced write made.
//!
//! Limits: an Unknown fenced write may or may not be present.

use std::collections::HashMap;

use super::describe::{fenced_write, resource_version};
use super::{list_problems, CheckResult, FENCED_WRITES as NAME};
use crate::jepsen::history::{FencedWrite, Outcome, Recording};

/// Checks the resource's versions against the fenced writes.
pub(super) fn check(recording: &Recording) -> CheckResult {
    let versions = &recording.resource_versions;
    let checked = recording.fenced_writes.len();
    let unit = "fenced writes";
    let mut by_seq: HashMap<u64, &FencedWrite> = HashMap::new();
    for w in &recording.fenced_writes {
        if let Some(first) = by_seq.insert(w.seq, w) {
            let why = format!(
                "two fenced writes share seq {}: a malformed recording\n{}\n{}",
                w.seq,
                fenced_write(first),
                fenced_write(w)
            );
            return CheckResult::fail(NAME, checked, unit, why);
        }
    }
    let mut problems = Vec::new();
    let made_by = |seq: u64| match by_seq.get(&seq) {
        Some(w) => format!("\n  made by {}", fenced_write(w)),
        None => String::new(),
    };
    for pair in versions.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.revision <= a.revision {
            problems.push(format!(
                "versions not in revision order (a malformed recording): {} then {}",
                resource_version(a),
                resource_version(b)
            ));
        } else if b.token < a.token {
            problems.push(format!(
                "an older holder wrote after a newer one: {}{}\nthen {}{}",
                resource_version(a),
                made_by(a.seq),
                resource_version(b),
                made_by(b.seq)
            ));
        }
    }
    let mut present = HashMap::new();
    for v in versions {
        if let Some(first) = present.insert(v.seq, v) {
            problems.push(format!(
                "seq {} was applied twice: {} and {}",
                v.seq,
                resource_version(first),
                resource_version(v)
            ));
        }
        match by_seq.get(&v.seq) {
            None => problems.push(format!(
                "{} was made by no recorded fenced write",
                resource_version(v)
            )),
            Some(w) if w.token != v.token => problems.push(format!(
                "{} carries another token than the write with its seq:\n{}",
                resource_version(v),
                fenced_write(w)
            )),
            Some(_) => {}
        }
    }
    for w in &recording.fenced_writes {
        match (w.outcome, present.get(&w.seq)) {
            (Outcome::Ok, None) => problems.push(format!(
                "acknowledged but not among the resource's versions: {}",
                fenced_write(w)
            )),
            (Outcome::Fail, Some(v)) => problems.push(format!(
                "refused by its fence, yet applied as {}: {}",
                resource_version(v),
                fenced_write(w)
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        CheckResult::pass(NAME, checked, unit)
    } else {
        let why = list_problems("fenced writes and the resource disagree", &problems);
        CheckResult::fail(NAME, checked, unit, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::ResourceVersion;

    fn write(token: i64, seq: u64, outcome: Outcome) -> FencedWrite {
        FencedWrite {
            process: token as usize,
            token,
            seq,
            invoke: seq * 10,
            complete: seq * 10 + 5,
            outcome,
        }
    }

    fn version(revision: i64, token: i64, seq: u64) -> ResourceVersion {
        ResourceVersion {
            revision,
            token,
            seq,
        }
    }

    fn run(writes: Vec<FencedWrite>, versions: Vec<ResourceVersion>) -> CheckResult {
        check(&Recording {
            fenced_writes: writes,
            resource_versions: versions,
            ..Recording::default()
        })
    }

    fn failure(r: &CheckResult) -> String {
        assert!(!r.passed());
        r.explanation.clone().unwrap_or_default()
    }

    #[test]
    fn holders_writing_in_token_order_pass() {
        let r = run(
            vec![
                write(10, 1, Outcome::Ok),
                write(10, 2, Outcome::Ok),
                write(10, 3, Outcome::Unknown),
                write(20, 4, Outcome::Ok),
                write(10, 5, Outcome::Fail),
                write(20, 6, Outcome::Unknown),
            ],
            vec![
                version(11, 10, 1),
                version(12, 10, 2),
                version(13, 10, 3),
                version(21, 20, 4),
            ],
        );
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.checked, 6);
    }

    #[test]
    fn an_older_holder_writing_after_a_newer_one_fails() {
        let text = failure(&run(
            vec![
                write(10, 1, Outcome::Ok),
                write(20, 2, Outcome::Ok),
                write(10, 3, Outcome::Ok),
            ],
            vec![version(11, 10, 1), version(21, 20, 2), version(22, 10, 3)],
        ));
        assert!(
            text.contains("an older holder wrote after a newer one: revision 21: token 20 seq 2"),
            "{text}"
        );
        assert!(text.contains("then revision 22: token 10 seq 3"), "{text}");
        assert!(
            text.contains("made by p10 fenced write token 10 seq 3"),
            "{text}"
        );
    }

    #[test]
    fn lost_refused_doubled_and_unexplained_writes_fail() {
        let text = failure(&run(
            vec![
                write(10, 1, Outcome::Ok),
                write(10, 2, Outcome::Fail),
                write(10, 3, Outcome::Ok),
            ],
            vec![
                version(11, 10, 2),
                version(12, 10, 3),
                version(13, 10, 3),
                version(14, 10, 9),
                version(15, 11, 3),
            ],
        ));
        assert!(text.contains("acknowledged but not among the resource's versions: p10 fenced write token 10 seq 1"), "{text}");
        assert!(
            text.contains("refused by its fence, yet applied as revision 11"),
            "{text}"
        );
        assert!(text.contains("seq 3 was applied twice"), "{text}");
        assert!(
            text.contains("revision 14: token 10 seq 9 was made by no recorded fenced write"),
            "{text}"
        );
        assert!(
            text.contains("revision 15: token 11 seq 3 carries another token"),
            "{text}"
        );
    }

    #[test]
    fn malformed_recordings_fail() {
        let text = failure(&run(
            vec![write(1, 1, Outcome::Ok), write(2, 1, Outcome::Ok)],
            vec![],
        ));
        assert!(text.contains("two fenced writes share seq 1"), "{text}");
        let text = failure(&run(
            vec![write(1, 1, Outcome::Ok), write(1, 2, Outcome::Ok)],
            vec![version(5, 1, 1), version(5, 1, 2)],
        ));
        assert!(text.contains("not in revision order"), "{text}");
    }
}
