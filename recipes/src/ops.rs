//! Builders for the etcd requests the recipes send, and readers for the
//! parts of responses they use (a response missing a part the request
//! guarantees is [`RecipeError::UnexpectedResponse`]).

use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp,
    ResponseHeader, TxnRequest, TxnResponse,
};

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::keys::Span;

/// A Range of one key.
pub(crate) fn get(key: &[u8]) -> RangeRequest {
    RangeRequest {
        key: key.to_vec(),
        ..RangeRequest::default()
    }
}

/// A Range of `span` sorted by create revision.
pub(crate) fn by_create(span: &Span, order: SortOrder) -> RangeRequest {
    RangeRequest {
        key: span.start.clone(),
        range_end: span.end.clone(),
        sort_order: order as i32,
        sort_target: SortTarget::Create as i32,
        ..RangeRequest::default()
    }
}

/// The number of keys in `span` (no key-values).
pub(crate) fn count(span: &Span) -> RangeRequest {
    RangeRequest {
        key: span.start.clone(),
        range_end: span.end.clone(),
        count_only: true,
        ..RangeRequest::default()
    }
}

/// A Range as a Txn operation.
pub(crate) fn range_op(range: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(range)),
    }
}

/// A Put of `key` under `lease` (0: none) as a Txn operation.
pub(crate) fn put_op(key: &[u8], value: &[u8], lease: i64) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            ..PutRequest::default()
        })),
    }
}

/// A delete of one key as a Txn operation.
pub(crate) fn delete_op(key: &[u8]) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            ..DeleteRangeRequest::default()
        })),
    }
}

/// A nested Txn as a Txn operation.
pub(crate) fn txn_op(txn: TxnRequest) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestTxn(txn)),
    }
}

/// Compares the create revision of `key` with `revision`.
pub(crate) fn compare_create(key: &[u8], result: CompareResult, revision: i64) -> Compare {
    Compare {
        result: result as i32,
        target: CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
        range_end: Vec::new(),
    }
}

/// Compares the mod revision of `key` with `revision` (0 for a missing
/// key).
pub(crate) fn compare_mod(key: &[u8], result: CompareResult, revision: i64) -> Compare {
    Compare {
        result: result as i32,
        target: CompareTarget::Mod as i32,
        key: key.to_vec(),
        target_union: Some(TargetUnion::ModRevision(revision)),
        range_end: Vec::new(),
    }
}

/// Holds while no key in `span` was created at or after `revision` (and
/// so while `span` is empty, for `revision` 1).
pub(crate) fn created_before(span: &Span, revision: i64) -> Compare {
    Compare {
        range_end: span.end.clone(),
        ..compare_create(&span.start, CompareResult::Less, revision)
    }
}

/// A read-only Txn: every range answered at one revision.
pub(crate) fn reads(ranges: Vec<RangeRequest>) -> TxnRequest {
    TxnRequest {
        compare: Vec::new(),
        success: ranges.into_iter().map(range_op).collect(),
        failure: Vec::new(),
    }
}

/// Runs `ranges` at one revision; returns their responses (one per range,
/// in order: a fixed-size array, so callers destructure instead of
/// indexing) and that revision.
pub(crate) async fn snapshot<C: KvCore, const N: usize>(
    core: &C,
    ranges: [RangeRequest; N],
) -> Result<([RangeResponse; N], i64), RecipeError> {
    let resp = core.txn(reads(ranges.into())).await?;
    let revision = revision(&resp.header)?;
    let mut out = Vec::with_capacity(N);
    for op in resp.responses {
        match op.response {
            Some(Response::ResponseRange(range)) => out.push(range),
            _ => {
                return Err(RecipeError::UnexpectedResponse(
                    "a read txn gave a non-range",
                ))
            }
        }
    }
    let out = <[RangeResponse; N]>::try_from(out).map_err(|_| {
        RecipeError::UnexpectedResponse("a read txn gave the wrong number of responses")
    })?;
    Ok((out, revision))
}

/// Runs `ranges` at one revision of at least `seen`, a revision the caller
/// has already observed (a watch event): then a serializable read serves,
/// with no read barrier, unless the member answering is behind `seen`, in
/// which case the read is made linearizable. Without `seen` it is
/// linearizable.
///
/// A queue's decision may rest on such a read: keys ahead of a waiter can
/// only go away, never appear, so a state at or after the event that woke
/// it can only be as permissive as the present, and its own key present
/// there means its lease was alive when its turn came (whatever happens
/// after that is what fencing tokens are for).
pub(crate) async fn snapshot_since<C: KvCore, const N: usize>(
    core: &C,
    ranges: [RangeRequest; N],
    seen: Option<i64>,
) -> Result<([RangeResponse; N], i64), RecipeError> {
    if let Some(seen) = seen {
        let local = ranges.clone().map(|r| RangeRequest {
            serializable: true,
            ..r
        });
        let (reads, revision) = snapshot(core, local).await?;
        if revision >= seen {
            return Ok((reads, revision));
        }
    }
    snapshot(core, ranges).await
}

/// Runs a Txn of one operation (no compares) and returns its revision.
pub(crate) async fn write<C: KvCore>(core: &C, op: RequestOp) -> Result<i64, RecipeError> {
    let resp = core
        .txn(TxnRequest {
            compare: Vec::new(),
            success: vec![op],
            failure: Vec::new(),
        })
        .await?;
    revision(&resp.header)
}

/// The revision in a response header.
pub(crate) fn revision(header: &Option<ResponseHeader>) -> Result<i64, RecipeError> {
    header
        .as_ref()
        .map(|h| h.revision)
        .ok_or(RecipeError::UnexpectedResponse(
            "a response without a header",
        ))
}

/// The Range response at `index` of a Txn response.
pub(crate) fn range_at(resp: &TxnResponse, index: usize) -> Result<&RangeResponse, RecipeError> {
    match resp
        .responses
        .get(index)
        .and_then(|op| op.response.as_ref())
    {
        Some(Response::ResponseRange(range)) => Ok(range),
        _ => Err(RecipeError::UnexpectedResponse(
            "a txn response without the range asked for",
        )),
    }
}

/// The nested Txn response at `index` of a Txn response.
pub(crate) fn txn_at(resp: &TxnResponse, index: usize) -> Result<&TxnResponse, RecipeError> {
    match resp
        .responses
        .get(index)
        .and_then(|op| op.response.as_ref())
    {
        Some(Response::ResponseTxn(txn)) => Ok(txn),
        _ => Err(RecipeError::UnexpectedResponse(
            "a txn response without the nested txn asked for",
        )),
    }
}
