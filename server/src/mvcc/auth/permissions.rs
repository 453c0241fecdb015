//! Key-range permissions: whether the permissions of a user's roles cover
//! every key a request touches (etcd's range permission cache, computed on
//! demand: a user has few roles and a role few permissions).

use witan_proto::authpb::permission::Type as PermType;
use witan_proto::authpb::Permission;

/// What a request does to a key range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Range, watch, a txn compare, a previous value returned.
    Read,
    /// Put, delete, a lease revoke's keys.
    Write,
}

impl Access {
    /// Whether a permission of `kind` grants this access.
    fn granted_by(self, kind: i32) -> bool {
        let kind = PermType::try_from(kind).ok();
        matches!(
            (self, kind),
            (_, Some(PermType::Readwrite))
                | (Access::Read, Some(PermType::Read))
                | (Access::Write, Some(PermType::Write))
        )
    }
}

/// A half-open key interval `[start, end)`; `end == None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Interval {
    start: Vec<u8>,
    end: Option<Vec<u8>>,
}

impl Interval {
    /// The keys `key` and `range_end` name, etcd's way: an empty end is the
    /// key alone, `"\0"` is every key from `key` on.
    pub(super) fn of(key: &[u8], range_end: &[u8]) -> Interval {
        let end = match range_end {
            [] => Some(successor(key)),
            [0] => None,
            end if end <= key => Some(successor(key)),
            end => Some(end.to_vec()),
        };
        Interval {
            start: key.to_vec(),
            end,
        }
    }

    fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start
            && match (&self.end, &other.end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => theirs <= mine,
            }
    }
}

/// The smallest key after `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Whether the permissions granting `access` among `perms` cover the keys
/// `[key, range_end)` (etcd's range rules) with no gap.
pub(super) fn covers<'a>(
    perms: impl IntoIterator<Item = &'a Permission>,
    access: Access,
    key: &[u8],
    range_end: &[u8],
) -> bool {
    let mut granted: Vec<Interval> = perms
        .into_iter()
        .filter(|perm| access.granted_by(perm.perm_type))
        .map(|perm| Interval::of(&perm.key, &perm.range_end))
        .collect();
    granted.sort_by(|a, b| a.start.cmp(&b.start));
    let wanted = Interval::of(key, range_end);
    merge(granted).iter().any(|ivl| ivl.contains(&wanted))
}

/// Joins overlapping and touching intervals (sorted by start).
fn merge(sorted: Vec<Interval>) -> Vec<Interval> {
    let mut merged: Vec<Interval> = Vec::with_capacity(sorted.len());
    for ivl in sorted {
        if let Some(last) = merged.last_mut() {
            let touches = match &last.end {
                None => true,
                Some(end) => ivl.start <= *end,
            };
            if touches {
                last.end = match (last.end.take(), ivl.end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                continue;
            }
        }
        merged.push(ivl);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(kind: PermType, key: &str, end: &str) -> Permission {
        Permission {
            perm_type: kind as i32,
            key: key.as_bytes().to_vec(),
            range_end: end.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_prefix_permission_covers_its_keys_and_nothing_else() {
        let perms = [perm(PermType::Read, "/app/", "/app0")];
        assert!(covers(&perms, Access::Read, b"/app/x", b""));
        assert!(covers(&perms, Access::Read, b"/app/", b"/app0"));
        assert!(covers(&perms, Access::Read, b"/app/a", b"/app/b"));
        assert!(!covers(&perms, Access::Read, b"/app/", b"\0"));
        assert!(!covers(&perms, Access::Read, b"/secret/x", b""));
        assert!(!covers(&perms, Access::Read, b"/ap", b"/app/z"));
        assert!(!covers(&perms, Access::Write, b"/app/x", b""));
    }

    #[test]
    fn readwrite_grants_both_and_single_keys_cover_only_themselves() {
        let perms = [perm(PermType::Readwrite, "k", "")];
        assert!(covers(&perms, Access::Read, b"k", b""));
        assert!(covers(&perms, Access::Write, b"k", b""));
        assert!(!covers(&perms, Access::Read, b"k1", b""));
        assert!(!covers(&perms, Access::Read, b"k", b"l"));
    }

    #[test]
    fn touching_permissions_join_and_a_gap_denies() {
        let joined = [
            perm(PermType::Read, "a", "c"),
            perm(PermType::Read, "c", "e"),
        ];
        assert!(covers(&joined, Access::Read, b"b", b"d"));
        let gapped = [
            perm(PermType::Read, "a", "c"),
            perm(PermType::Read, "d", "e"),
        ];
        assert!(!covers(&gapped, Access::Read, b"b", b"d"));
        let from = [perm(PermType::Write, "m", "\0")];
        assert!(covers(&from, Access::Write, b"z", b"\0"));
        assert!(!covers(&from, Access::Write, b"a", b"\0"));
    }

    #[test]
    fn no_permission_covers_nothing() {
        assert!(!covers(&[], Access::Read, b"", b"\0"));
        assert!(!covers(&[], Access::Read, b"k", b""));
    }
}
