//! Checks the API layer runs on a KV request before proposing it (etcd's
//! `v3rpc/key.go`): pure functions of the request, no state. Every failure
//! is an InvalidArgument for the client, with etcd's exact message.

use witan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};

use super::duplicates;

/// etcd's default limit on the compares, and on the ops of each branch, of
/// one txn (`--max-txn-ops`).
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// Why a request is invalid. The messages are etcd's, which clients match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A Range, Put, DeleteRange or compare with an empty key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A Put with `ignore_value` and a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// A Put with `ignore_lease` and a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more compares, or ops in a branch, than allowed.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn that writes one key twice (see `duplicates`).
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A Range with a sort order or target that does not exist.
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A txn op with no request in it (etcd's answer to it is this text).
    #[error("etcdserver: key not found")]
    EmptyOp,
}

/// Refuses a write that grows the store (a Put, a LeaseGrant) while the
/// NOSPACE alarm is active in `state` (etcd's quota check at the API edge;
/// apply checks again).
pub fn check_space(state: &super::KvState) -> Result<(), super::MvccError> {
    if state.alarms().no_space() {
        return Err(super::MvccError::NoSpace);
    }
    Ok(())
}

/// [`check_space`] for a txn: only one that puts is refused.
pub fn check_txn_space(state: &super::KvState, txn: &TxnRequest) -> Result<(), super::MvccError> {
    if super::apply::txn_puts(txn) {
        check_space(state)?;
    }
    Ok(())
}

/// Checks a Range request.
pub fn validate_range(req: &RangeRequest) -> Result<(), RequestError> {
    if req.key.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    // etcd 3.4 ignores an unknown order and crashes on an unknown target;
    // later versions reject both, as here.
    if SortOrder::try_from(req.sort_order).is_err()
        || SortTarget::try_from(req.sort_target).is_err()
    {
        return Err(RequestError::InvalidSortOption);
    }
    Ok(())
}

/// Checks a Put request.
pub fn validate_put(req: &PutRequest) -> Result<(), RequestError> {
    if req.key.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(RequestError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(RequestError::LeaseProvided);
    }
    Ok(())
}

/// Checks a DeleteRange request.
pub fn validate_delete_range(req: &DeleteRangeRequest) -> Result<(), RequestError> {
    if req.key.is_empty() {
        return Err(RequestError::EmptyKey);
    }
    Ok(())
}

/// Checks a Txn request: sizes, compares and ops (recursively), then
/// duplicate writes in each branch.
///
/// As in etcd, the compares and each branch may hold `max_txn_ops` items,
/// and a nested txn gets what its parent leaves: `max_txn_ops` minus the
/// parent's largest count.
pub fn validate_txn(req: &TxnRequest, max_txn_ops: usize) -> Result<(), RequestError> {
    check_txn(req, max_txn_ops)?;
    // Checked after the sizes so that the quadratic search stays bounded.
    duplicates::check(&req.success)?;
    duplicates::check(&req.failure)?;
    Ok(())
}

fn check_txn(req: &TxnRequest, max_txn_ops: usize) -> Result<(), RequestError> {
    let count = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if count > max_txn_ops {
        return Err(RequestError::TooManyOps);
    }
    if req.compare.iter().any(|compare| compare.key.is_empty()) {
        return Err(RequestError::EmptyKey);
    }
    let left = max_txn_ops - count;
    for op in req.success.iter().chain(&req.failure) {
        check_op(op, left)?;
    }
    Ok(())
}

fn check_op(op: &RequestOp, max_txn_ops: usize) -> Result<(), RequestError> {
    match &op.request {
        Some(Request::RequestRange(req)) => validate_range(req),
        Some(Request::RequestPut(req)) => validate_put(req),
        Some(Request::RequestDeleteRange(req)) => validate_delete_range(req),
        Some(Request::RequestTxn(req)) => check_txn(req, max_txn_ops),
        None => Err(RequestError::EmptyOp),
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::Compare;

    use super::*;

    fn range(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: key.into(),
                ..RangeRequest::default()
            })),
        }
    }

    fn put(key: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: key.into(),
                ..PutRequest::default()
            })),
        }
    }

    fn txn(compares: usize, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: (0..compares)
                .map(|i| Compare {
                    key: format!("c{i}").into(),
                    ..Compare::default()
                })
                .collect(),
            success,
            failure,
        }
    }

    fn nested(req: TxnRequest) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(req)),
        }
    }

    #[test]
    fn messages_are_etcds() {
        let cases = [
            (RequestError::EmptyKey, "etcdserver: key is not provided"),
            (RequestError::ValueProvided, "etcdserver: value is provided"),
            (RequestError::LeaseProvided, "etcdserver: lease is provided"),
            (
                RequestError::TooManyOps,
                "etcdserver: too many operations in txn request",
            ),
            (
                RequestError::DuplicateKey,
                "etcdserver: duplicate key given in txn request",
            ),
            (
                RequestError::InvalidSortOption,
                "etcdserver: invalid sort option",
            ),
            (RequestError::EmptyOp, "etcdserver: key not found"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn range_needs_a_key_and_known_sort_options() {
        let ok = RangeRequest {
            key: b"a".to_vec(),
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Value as i32,
            ..RangeRequest::default()
        };
        assert_eq!(validate_range(&ok), Ok(()));
        let empty = RangeRequest {
            range_end: b"\0".to_vec(),
            ..RangeRequest::default()
        };
        assert_eq!(validate_range(&empty), Err(RequestError::EmptyKey));
        let order = RangeRequest {
            sort_order: 3,
            ..ok.clone()
        };
        assert_eq!(validate_range(&order), Err(RequestError::InvalidSortOption));
        let target = RangeRequest {
            sort_target: -1,
            ..ok
        };
        assert_eq!(
            validate_range(&target),
            Err(RequestError::InvalidSortOption)
        );
    }

    #[test]
    fn put_options() {
        let base = PutRequest {
            key: b"k".to_vec(),
            ..PutRequest::default()
        };
        assert_eq!(validate_put(&base), Ok(()));
        assert_eq!(
            validate_put(&PutRequest {
                key: Vec::new(),
                ..base.clone()
            }),
            Err(RequestError::EmptyKey)
        );
        let ignore_value = PutRequest {
            ignore_value: true,
            ..base.clone()
        };
        assert_eq!(validate_put(&ignore_value), Ok(()));
        assert_eq!(
            validate_put(&PutRequest {
                value: b"v".to_vec(),
                ..ignore_value
            }),
            Err(RequestError::ValueProvided)
        );
        let ignore_lease = PutRequest {
            ignore_lease: true,
            ..base
        };
        assert_eq!(validate_put(&ignore_lease), Ok(()));
        assert_eq!(
            validate_put(&PutRequest {
                lease: 7,
                ..ignore_lease
            }),
            Err(RequestError::LeaseProvided)
        );
    }

    #[test]
    fn delete_needs_a_key() {
        assert_eq!(
            validate_delete_range(&DeleteRangeRequest::default()),
            Err(RequestError::EmptyKey)
        );
        assert_eq!(
            validate_delete_range(&DeleteRangeRequest {
                key: b"a".to_vec(),
                ..DeleteRangeRequest::default()
            }),
            Ok(())
        );
    }

    #[test]
    fn txn_sizes_are_counted_per_list() {
        let ops = |n: usize| (0..n).map(|i| range(&format!("k{i}"))).collect::<Vec<_>>();
        assert_eq!(validate_txn(&txn(3, ops(3), ops(3)), 3), Ok(()));
        assert_eq!(
            validate_txn(&txn(4, ops(0), ops(0)), 3),
            Err(RequestError::TooManyOps)
        );
        assert_eq!(
            validate_txn(&txn(0, ops(4), ops(0)), 3),
            Err(RequestError::TooManyOps)
        );
        assert_eq!(
            validate_txn(&txn(0, ops(0), ops(4)), 3),
            Err(RequestError::TooManyOps)
        );
    }

    #[test]
    fn nested_txns_get_what_the_parent_leaves() {
        // Parent uses 2 of 5: a nested txn may hold 3 per list.
        let inner = |n: usize| txn(n, Vec::new(), Vec::new());
        let parent = |inner: TxnRequest| txn(2, vec![nested(inner), range("x")], Vec::new());
        assert_eq!(validate_txn(&parent(inner(3)), 5), Ok(()));
        assert_eq!(
            validate_txn(&parent(inner(4)), 5),
            Err(RequestError::TooManyOps)
        );
        // Deeper: 5 - 2 = 3 for the child, 3 - 3 = 0 for the grandchild.
        let grandchild = txn(1, Vec::new(), Vec::new());
        let child = txn(3, vec![nested(grandchild)], Vec::new());
        assert_eq!(
            validate_txn(&parent(child), 5),
            Err(RequestError::TooManyOps)
        );
        let child = txn(3, vec![nested(TxnRequest::default())], Vec::new());
        assert_eq!(validate_txn(&parent(child), 5), Ok(()));
    }

    #[test]
    fn txn_ops_are_checked_recursively() {
        let mut req = txn(1, vec![range("a")], vec![put("b")]);
        req.compare[0].key.clear();
        assert_eq!(validate_txn(&req, 128), Err(RequestError::EmptyKey));

        let req = txn(0, vec![range("")], Vec::new());
        assert_eq!(validate_txn(&req, 128), Err(RequestError::EmptyKey));
        let req = txn(0, Vec::new(), vec![put("")]);
        assert_eq!(validate_txn(&req, 128), Err(RequestError::EmptyKey));
        let bad_put = RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ignore_value: true,
                ..PutRequest::default()
            })),
        };
        let req = txn(
            0,
            vec![nested(txn(0, Vec::new(), vec![bad_put]))],
            Vec::new(),
        );
        assert_eq!(validate_txn(&req, 128), Err(RequestError::ValueProvided));
        let bad_sort = RequestOp {
            request: Some(Request::RequestRange(RangeRequest {
                key: b"k".to_vec(),
                sort_order: 9,
                ..RangeRequest::default()
            })),
        };
        let req = txn(0, vec![bad_sort], Vec::new());
        assert_eq!(
            validate_txn(&req, 128),
            Err(RequestError::InvalidSortOption)
        );
        let req = txn(0, vec![RequestOp { request: None }], Vec::new());
        assert_eq!(validate_txn(&req, 128), Err(RequestError::EmptyOp));
        let req = txn(
            0,
            Vec::new(),
            vec![nested(txn(0, vec![RequestOp::default()], Vec::new()))],
        );
        assert_eq!(validate_txn(&req, 128), Err(RequestError::EmptyOp));
    }

    #[test]
    fn sizes_are_checked_before_duplicates() {
        let req = txn(0, vec![put("a"), put("a"), put("b")], Vec::new());
        assert_eq!(validate_txn(&req, 2), Err(RequestError::TooManyOps));
        assert_eq!(validate_txn(&req, 3), Err(RequestError::DuplicateKey));
    }
}
