//! The duplicate-write check of a txn branch, with etcd's `checkIntervals`
//! rules (so that exactly the requests etcd accepts are accepted):
//!
//! - two puts of one key in a branch are a duplicate, counting the puts of
//!   nested txns (at any depth) as puts of the branch;
//! - a put inside a delete range of its own level or of an enclosing level
//!   is a duplicate; so is a put in a nested txn inside a delete range of
//!   an *earlier* nested txn of the same level (not a later one);
//! - a key put in both the success and the failure branch of one nested
//!   txn is fine (only one of them runs); overlapping deletes are fine;
//! - a delete's range is `[key, range_end)` compared as bytes, so a
//!   from-key delete (`range_end` "\0") covers no put at all, as in etcd.

use std::collections::HashSet;

use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::RequestOp;

use super::RequestError;

/// The keys a list of ops (with its nested txns) puts and deletes.
#[derive(Default)]
pub(super) struct Writes<'r> {
    puts: HashSet<&'r [u8]>,
    deletes: Deletes<'r>,
}

/// Delete ranges: single keys, and `[start, end)` ranges.
#[derive(Default)]
struct Deletes<'r> {
    keys: HashSet<&'r [u8]>,
    ranges: Vec<(&'r [u8], &'r [u8])>,
}

impl<'r> Deletes<'r> {
    fn covers(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
            || self
                .ranges
                .iter()
                .any(|&(start, end)| start <= key && key < end)
    }

    fn extend(&mut self, other: Deletes<'r>) {
        self.keys.extend(other.keys);
        self.ranges.extend(other.ranges);
    }
}

/// Checks one branch of a txn (see the module doc); returns what it writes
/// for the enclosing level's check.
pub(super) fn check(ops: &[RequestOp]) -> Result<Writes<'_>, RequestError> {
    let mut writes = Writes::default();
    for op in ops {
        if let Some(Request::RequestDeleteRange(delete)) = &op.request {
            if delete.range_end.is_empty() {
                writes.deletes.keys.insert(&delete.key);
            } else {
                writes.deletes.ranges.push((&delete.key, &delete.range_end));
            }
        }
    }
    for op in ops {
        let Some(Request::RequestTxn(txn)) = &op.request else {
            continue;
        };
        let then = check(&txn.success)?;
        let otherwise = check(&txn.failure)?;
        for &key in &then.puts {
            if writes.puts.contains(key) || writes.deletes.covers(key) {
                return Err(RequestError::DuplicateKey);
            }
            writes.puts.insert(key);
        }
        for &key in &otherwise.puts {
            let put_before = writes.puts.contains(key) && !then.puts.contains(key);
            if put_before || writes.deletes.covers(key) {
                return Err(RequestError::DuplicateKey);
            }
            writes.puts.insert(key);
        }
        writes.deletes.extend(then.deletes);
        writes.deletes.extend(otherwise.deletes);
    }
    for op in ops {
        let Some(Request::RequestPut(put)) = &op.request else {
            continue;
        };
        let key = put.key.as_slice();
        if writes.puts.contains(key) || writes.deletes.covers(key) {
            return Err(RequestError::DuplicateKey);
        }
        writes.puts.insert(key);
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::{DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest};

    use super::*;

    fn put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.into(),
                ..PutRequest::default()
            })),
        }
    }

    fn del(key: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: end.into(),
                ..DeleteRangeRequest::default()
            })),
        }
    }

    fn get(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: key.into(),
                ..RangeRequest::default()
            })),
        }
    }

    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(TxnRequest {
                compare: Vec::new(),
                success,
                failure,
            })),
        }
    }

    fn ok(ops: Vec<RequestOp>) -> bool {
        check(&ops).is_ok()
    }

    #[test]
    fn puts_of_one_key() {
        assert!(ok(vec![put("a"), put("b"), get("a"), get("a")]));
        assert!(!ok(vec![put("a"), put("a")]));
        assert!(!ok(vec![put("a"), txn(vec![put("a")], vec![])]));
        assert!(!ok(vec![
            txn(vec![put("a")], vec![]),
            txn(vec![], vec![put("a")])
        ]));
        assert!(!ok(vec![
            txn(vec![txn(vec![put("a")], vec![])], vec![]),
            put("a")
        ]));
        // Success and failure of one nested txn never both run.
        assert!(ok(vec![txn(vec![put("a")], vec![put("a")])]));
        // ... but the failure branch still clashes with a sibling.
        assert!(!ok(vec![put("a"), txn(vec![], vec![put("a")])]));
        assert!(!ok(vec![
            txn(vec![put("a")], vec![]),
            txn(vec![put("b")], vec![put("a")])
        ]));
    }

    #[test]
    fn puts_inside_deletes() {
        assert!(!ok(vec![del("a", ""), put("a")]));
        assert!(!ok(vec![put("b"), del("a", "c")]));
        assert!(ok(vec![put("c"), del("a", "c")]));
        assert!(ok(vec![put("a"), del("b", "")]));
        // A put in a nested txn inside a delete of an enclosing level.
        assert!(!ok(vec![
            del("a", "z"),
            txn(vec![txn(vec![put("m")], vec![])], vec![])
        ]));
        // A nested delete covering a put of the enclosing level.
        assert!(!ok(vec![put("m"), txn(vec![del("a", "z")], vec![])]));
        // An earlier sibling's delete covers a later sibling's put ...
        assert!(!ok(vec![
            txn(vec![del("a", "z")], vec![]),
            txn(vec![put("m")], vec![])
        ]));
        // ... not the other way round (etcd's order of checks).
        assert!(ok(vec![
            txn(vec![put("m")], vec![]),
            txn(vec![del("a", "z")], vec![])
        ]));
        // A nested txn's own branches do not clash with each other.
        assert!(ok(vec![txn(vec![del("a", "z")], vec![put("m")])]));
    }

    #[test]
    fn deletes_overlap_freely() {
        assert!(ok(vec![del("a", "z"), del("b", "c"), del("b", "")]));
        assert!(ok(vec![del("a", "z"), txn(vec![del("a", "z")], vec![])]));
    }

    #[test]
    fn odd_ranges_are_raw_byte_intervals() {
        // From-key and inverted ranges cover nothing, as in etcd.
        assert!(ok(vec![del("a", "\0"), put("b")]));
        assert!(ok(vec![del("\0", "\0"), put("b")]));
        assert!(ok(vec![del("c", "a"), put("b")]));
        assert!(!ok(vec![del("\0", "\u{7f}"), put("b")]));
    }
}
