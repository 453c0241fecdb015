//! Fenced writes: a Txn that takes effect only while a hold is current.

use witan_proto::etcdserverpb::compare::CompareResult;
use witan_proto::etcdserverpb::{RequestOp, TxnRequest};

use crate::held::FencingToken;
use crate::ops;

/// A Txn that runs `then` only while `key` still has create revision
/// `token`, that is while the hold that returned the token is current
/// (the key is deleted when the hold is released or its lease expires,
/// and a new hold creates a new key with a larger revision).
///
/// When the fence holds the response has `succeeded` and the responses of
/// `then`; otherwise it has one Range response with the holder key's
/// current state (no key-value if nobody holds that key now).
pub fn fenced_txn(key: &[u8], token: FencingToken, then: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare: vec![ops::compare_create(key, CompareResult::Equal, token.0)],
        success: then,
        failure: vec![ops::range_op(ops::get(key))],
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::compare::{CompareTarget, TargetUnion};
    use witan_proto::etcdserverpb::request_op::Request;

    use super::*;

    #[test]
    fn compares_the_create_revision_and_reads_the_key_on_failure() {
        let then = vec![ops::put_op(b"counter", b"7", 0)];
        let txn = fenced_txn(b"lock/1a", FencingToken(42), then.clone());

        assert_eq!(txn.compare.len(), 1);
        let cmp = &txn.compare[0];
        assert_eq!(cmp.key, b"lock/1a");
        assert!(cmp.range_end.is_empty());
        assert_eq!(cmp.target, CompareTarget::Create as i32);
        assert_eq!(cmp.result, CompareResult::Equal as i32);
        assert_eq!(cmp.target_union, Some(TargetUnion::CreateRevision(42)));
        assert_eq!(txn.success, then);
        match txn.failure.as_slice() {
            [RequestOp {
                request: Some(Request::RequestRange(range)),
            }] => {
                assert_eq!(range.key, b"lock/1a");
                assert!(range.range_end.is_empty());
            }
            other => panic!("unexpected failure branch {other:?}"),
        }
    }
}
