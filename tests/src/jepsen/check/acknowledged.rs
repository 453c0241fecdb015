//! Check 2: what the cluster acknowledged is still there at the end. Every
//! Ok write or cas value of a register key is among the key's final
//! versions, no failed one is, no value appears twice or out of nowhere, and
//! the versions' order agrees with real time: a write acknowledged before
//! another was invoked has the smaller revision.
//!
//! Limits: Unknown writes may or may not be present; a version is only
//! placed against writes that provably came before or after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::describe::register_op;
use super::{list_problems, CheckResult, ACKNOWLEDGED_WRITES as NAME};
use crate::jepsen::history::{Outcome, Recording, RegisterOp, RegisterOperation};

/// Checks every register key's final versions against its writes.
pub(super) fn check(recording: &Recording) -> CheckResult {
    let mut by_key: BTreeMap<&str, Vec<&RegisterOperation>> = BTreeMap::new();
    for op in &recording.registers {
        if written(op).is_some() {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let keys: BTreeSet<&str> = by_key
        .keys()
        .copied()
        .chain(recording.final_register_versions.keys().map(String::as_str))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for key in keys {
        let writes = by_key.get(key).map(Vec::as_slice).unwrap_or_default();
        let versions = recording
            .final_register_versions
            .get(key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        checked += writes.len();
        check_key(key, writes, versions, &mut problems);
    }
    if problems.is_empty() {
        CheckResult::pass(NAME, checked, "writes")
    } else {
        let why = list_problems("writes and final versions disagree", &problems);
        CheckResult::fail(NAME, checked, "writes", why)
    }
}

fn written(op: &RegisterOperation) -> Option<u64> {
    match op.op {
        RegisterOp::Read { .. } => None,
        RegisterOp::Write { value } => Some(value),
        RegisterOp::Cas { new, .. } => Some(new),
    }
}

/// Checks one key: `writes` are its write and cas operations, `versions`
/// its final (revision, value) list.
fn check_key(
    key: &str,
    writes: &[&RegisterOperation],
    versions: &[(i64, u64)],
    problems: &mut Vec<String>,
) {
    for pair in versions.windows(2) {
        if pair[1].0 <= pair[0].0 {
            problems.push(format!(
                "key {key:?}: final versions are not in revision order (revision {} after {}): \
                 a malformed recording",
                pair[1].0, pair[0].0
            ));
            return;
        }
    }
    let mut revision_of: HashMap<u64, i64> = HashMap::new();
    for &(revision, value) in versions {
        if let Some(first) = revision_of.insert(value, revision) {
            problems.push(format!(
                "key {key:?}: value {value} is a version twice (revisions {first} and \
                 {revision}): a write took effect twice"
            ));
        }
    }
    let mut writer_of: HashMap<u64, &RegisterOperation> = HashMap::new();
    for &op in writes {
        let Some(value) = written(op) else {
            continue;
        };
        let present = revision_of.get(&value);
        match (op.outcome, present) {
            (Outcome::Ok, None) => problems.push(format!(
                "key {key:?}: acknowledged, yet {value} is not among the final versions:\n{}",
                register_op(op)
            )),
            (Outcome::Fail, Some(revision)) => problems.push(format!(
                "key {key:?}: failed, yet {value} is the version at revision {revision}:\n{}",
                register_op(op)
            )),
            _ => {}
        }
        if op.outcome != Outcome::Fail {
            writer_of.insert(value, op);
        }
    }
    for &(revision, value) in versions {
        if !writer_of.contains_key(&value) {
            problems.push(format!(
                "key {key:?}: the version at revision {revision} holds {value}, which no \
                 operation that could have taken effect wrote"
            ));
        }
    }
    check_real_time(key, &writer_of, &revision_of, problems);
}

/// A write acknowledged before another write was invoked must have the
/// smaller revision. (An Unknown write may have taken effect after it was
/// given up on, so only acknowledged writes bound later ones.)
fn check_real_time(
    key: &str,
    writer_of: &HashMap<u64, &RegisterOperation>,
    revision_of: &HashMap<u64, i64>,
    problems: &mut Vec<String>,
) {
    let mut present: Vec<(&RegisterOperation, i64)> = writer_of
        .iter()
        .filter_map(|(value, op)| revision_of.get(value).map(|&r| (*op, r)))
        .collect();
    let mut acknowledged: Vec<(&RegisterOperation, i64)> = present
        .iter()
        .copied()
        .filter(|(op, _)| op.outcome == Outcome::Ok)
        .collect();
    acknowledged.sort_by_key(|(op, revision)| (op.complete, *revision));
    present.sort_by_key(|(op, revision)| (op.invoke, *revision));
    // Sweep by invoke time, keeping the highest-revision write acknowledged
    // strictly before the current invoke.
    let mut next = 0;
    let mut latest: Option<(&RegisterOperation, i64)> = None;
    for &(op, revision) in &present {
        while next < acknowledged.len() && acknowledged[next].0.complete < op.invoke {
            if latest.is_none_or(|(_, r)| acknowledged[next].1 > r) {
                latest = Some(acknowledged[next]);
            }
            next += 1;
        }
        if let Some((before, before_revision)) = latest {
            if before_revision >= revision {
                problems.push(format!(
                    "key {key:?}: the first write was acknowledged before the second was \
                     invoked, yet has revision {before_revision}, not below {revision}:\n{}\n{}",
                    register_op(before),
                    register_op(op)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jepsen::history::Nanos;

    fn write(value: u64, invoke: Nanos, complete: Nanos, outcome: Outcome) -> RegisterOperation {
        RegisterOperation {
            process: 1,
            key: "k".into(),
            op: RegisterOp::Write { value },
            invoke,
            complete,
            outcome,
        }
    }

    fn recording(ops: Vec<RegisterOperation>, versions: Vec<(i64, u64)>) -> Recording {
        Recording {
            registers: ops,
            final_register_versions: [("k".to_string(), versions)].into(),
            ..Recording::default()
        }
    }

    fn explanation(result: &CheckResult) -> &str {
        result.explanation.as_deref().unwrap_or_default()
    }

    #[test]
    fn acknowledged_writes_in_real_time_order_pass() {
        let cas = RegisterOperation {
            op: RegisterOp::Cas {
                expected: Some(2),
                new: 3,
            },
            ..write(0, 40, 50, Outcome::Ok)
        };
        let read = RegisterOperation {
            op: RegisterOp::Read { observed: Some(3) },
            ..write(0, 60, 70, Outcome::Ok)
        };
        let r = check(&recording(
            vec![
                write(1, 0, 10, Outcome::Ok),
                // Concurrent writes may take either order.
                write(2, 20, 30, Outcome::Ok),
                write(9, 20, 30, Outcome::Unknown),
                write(8, 20, 30, Outcome::Fail),
                write(7, 5, 6, Outcome::Unknown),
                cas,
                read,
            ],
            vec![(5, 1), (6, 9), (7, 2), (8, 3)],
        ));
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.checked, 6);
    }

    #[test]
    fn a_lost_acknowledged_write_fails() {
        let r = check(&recording(
            vec![write(1, 0, 10, Outcome::Ok), write(2, 20, 30, Outcome::Ok)],
            vec![(5, 2)],
        ));
        assert!(!r.passed());
        assert!(explanation(&r).contains("acknowledged, yet 1 is not among the final versions"));
        assert!(explanation(&r).contains("p1 key \"k\" write 1"));
    }

    #[test]
    fn a_key_with_no_final_versions_loses_its_writes() {
        let r = check(&Recording {
            registers: vec![write(1, 0, 10, Outcome::Ok)],
            ..Recording::default()
        });
        assert!(!r.passed());
        assert!(explanation(&r).contains("not among the final versions"));
    }

    #[test]
    fn a_failed_write_that_took_effect_fails() {
        let r = check(&recording(
            vec![write(1, 0, 10, Outcome::Fail)],
            vec![(5, 1)],
        ));
        assert!(!r.passed());
        assert!(explanation(&r).contains("failed, yet 1 is the version at revision 5"));
    }

    #[test]
    fn versions_against_real_time_fail() {
        // 1 was acknowledged before 2 was invoked, yet 2 has the lower
        // revision: the order contradicts real time.
        let r = check(&recording(
            vec![
                write(1, 0, 10, Outcome::Ok),
                write(2, 20, 30, Outcome::Unknown),
            ],
            vec![(5, 2), (6, 1)],
        ));
        assert!(!r.passed());
        assert!(
            explanation(&r).contains("has revision 6, not below 5"),
            "{r:?}"
        );
    }

    #[test]
    fn duplicate_and_unexplained_versions_fail() {
        let r = check(&recording(
            vec![write(1, 0, 10, Outcome::Ok)],
            vec![(5, 1), (6, 4), (7, 1)],
        ));
        let text = explanation(&r);
        assert!(
            text.contains("value 1 is a version twice (revisions 5 and 7)"),
            "{text}"
        );
        assert!(
            text.contains("revision 6 holds 4, which no operation"),
            "{text}"
        );
    }

    #[test]
    fn versions_out_of_revision_order_are_malformed() {
        let r = check(&recording(
            vec![write(1, 0, 10, Outcome::Ok), write(2, 0, 10, Outcome::Ok)],
            vec![(6, 1), (5, 2)],
        ));
        assert!(explanation(&r).contains("not in revision order"));
    }
}
