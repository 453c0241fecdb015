//! Txn compares, as etcd's `applyCompare` / `compareKV` evaluate them.

use std::cmp::Ordering;

use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::Compare;

use super::record::{LiveMap, Record};
use super::view::entries;
use super::KeyRange;

/// Whether every compare holds against `map` (true for no compares).
pub(super) fn all_hold(map: &LiveMap, compares: &[Compare]) -> bool {
    compares.iter().all(|compare| holds(map, compare))
}

/// Whether one compare holds: every key of its range must satisfy it. With
/// no key in the range a VALUE compare fails (a missing value cannot be
/// told from an empty one) and the others compare a zero key-value.
pub(super) fn holds(map: &LiveMap, compare: &Compare) -> bool {
    let range = KeyRange::new(&compare.key, &compare.range_end);
    let mut found = false;
    for (_, record) in entries(map, &range) {
        found = true;
        if !satisfies(compare, Some(record)) {
            return false;
        }
    }
    if found {
        return true;
    }
    if compare.target == CompareTarget::Value as i32 {
        return false;
    }
    satisfies(compare, None)
}

/// etcd's `compareKV` on one key (`None`: the zero key-value). The operand
/// is the union field matching the target, 0 / empty when another field or
/// none is set. An unknown target compares as equal; an unknown result
/// holds — what etcd does with enum values it does not know.
fn satisfies(compare: &Compare, record: Option<&Record>) -> bool {
    let union = compare.target_union.as_ref();
    let int = |field: fn(&Record) -> i64, operand: Option<i64>| {
        record.map_or(0, field).cmp(&operand.unwrap_or(0))
    };
    let ordering = match CompareTarget::try_from(compare.target) {
        Ok(CompareTarget::Value) => {
            let operand: &[u8] = match union {
                Some(TargetUnion::Value(value)) => value,
                _ => &[],
            };
            let value: &[u8] = record.map_or(&[], |r| &r.value);
            value.cmp(operand)
        }
        Ok(CompareTarget::Create) => int(
            |r| r.create_revision,
            match union {
                Some(TargetUnion::CreateRevision(rev)) => Some(*rev),
                _ => None,
            },
        ),
        Ok(CompareTarget::Mod) => int(
            |r| r.mod_revision,
            match union {
                Some(TargetUnion::ModRevision(rev)) => Some(*rev),
                _ => None,
            },
        ),
        Ok(CompareTarget::Version) => int(
            |r| r.version,
            match union {
                Some(TargetUnion::Version(version)) => Some(*version),
                _ => None,
            },
        ),
        Ok(CompareTarget::Lease) => int(
            |r| r.lease,
            match union {
                Some(TargetUnion::Lease(lease)) => Some(*lease),
                _ => None,
            },
        ),
        Err(_) => Ordering::Equal,
    };
    match CompareResult::try_from(compare.result) {
        Ok(CompareResult::Equal) => ordering == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ordering != Ordering::Equal,
        Ok(CompareResult::Greater) => ordering == Ordering::Greater,
        Ok(CompareResult::Less) => ordering == Ordering::Less,
        Err(_) => true,
    }
}
