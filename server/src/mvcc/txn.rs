//! Applying a Txn, as etcd 3.4 does:
//!
//! 1. every compare, nested txns' included, is evaluated against the state
//!    at txn start, which fixes the branch each txn takes (`Plan`);
//! 2. the chosen ops are checked against that state (puts first, then
//!    ranges); a failure rejects the whole txn;
//! 3. the chosen ops run in order, each seeing the writes of the ones
//!    before; all writes share one revision.
//!
//! Where etcd would panic (a put with `ignore_value` whose key an earlier
//! op of the same txn deleted) the txn is rejected instead: the writes are
//! made on a copy, so a rejection leaves the state untouched.

use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{
    RangeRequest, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};

use super::apply::{delete_range_op, header, put_op};
use super::range::{self, Fetch};
use super::record::LiveMap;
use super::write::WriteTxn;
use super::{compare, Change, History, KvState, MvccError};

/// Applies a Txn to `state`.
pub(super) async fn apply<H: History>(
    state: &mut KvState,
    req: &TxnRequest,
    history: &H,
    changes: &mut Vec<Change>,
) -> Result<TxnResponse, MvccError> {
    let plan = Plan::new(state.live(), req);
    plan.check(&mut |op| check_put(state, op))?;
    plan.check(&mut |op| check_range(state, op))?;
    let mut tw = WriteTxn::new(state, changes, history);
    let mut resp = execute(&mut tw, &plan).await?;
    resp.header = header(tw.read_revision());
    tw.finish().commit(state, changes);
    Ok(resp)
}

/// The branch a txn takes, and the plans of the nested txns among that
/// branch's ops, in op order.
struct Plan<'r> {
    succeeded: bool,
    ops: &'r [RequestOp],
    nested: Vec<Plan<'r>>,
}

impl<'r> Plan<'r> {
    /// Evaluates the compares of `req` and of the nested txns on the chosen
    /// branches, all against `live`.
    fn new(live: &LiveMap, req: &'r TxnRequest) -> Self {
        let succeeded = compare::all_hold(live, &req.compare);
        let ops = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let nested = ops
            .iter()
            .filter_map(|op| match &op.request {
                Some(Request::RequestTxn(txn)) => Some(Plan::new(live, txn)),
                _ => None,
            })
            .collect();
        Plan {
            succeeded,
            ops,
            nested,
        }
    }

    /// Runs `check` on every chosen op that is not a txn, depth first in
    /// op order.
    fn check(
        &self,
        check: &mut impl FnMut(&RequestOp) -> Result<(), MvccError>,
    ) -> Result<(), MvccError> {
        let mut nested = self.nested.iter();
        for op in self.ops {
            match &op.request {
                Some(Request::RequestTxn(_)) => {
                    if let Some(plan) = nested.next() {
                        plan.check(check)?;
                    }
                }
                _ => check(op)?,
            }
        }
        Ok(())
    }
}

/// etcd's `checkRequestPut`: `ignore_value` / `ignore_lease` need the key at
/// txn start; a lease must exist.
fn check_put(state: &KvState, op: &RequestOp) -> Result<(), MvccError> {
    let Some(Request::RequestPut(put)) = &op.request else {
        return Ok(());
    };
    if (put.ignore_value || put.ignore_lease) && state.live().get(put.key.as_slice()).is_none() {
        return Err(MvccError::KeyNotFound);
    }
    state.check_lease(put.lease)
}

/// etcd's `checkRequestRange`. Unlike a Range outside a txn, a negative
/// revision is checked against the compaction revision as it is.
fn check_range(state: &KvState, op: &RequestOp) -> Result<(), MvccError> {
    let Some(Request::RequestRange(range)) = &op.request else {
        return Ok(());
    };
    match range.revision {
        0 => Ok(()),
        revision if revision > state.revision() => Err(MvccError::FutureRevision),
        revision if revision < state.first_revision() => Err(MvccError::Compacted),
        _ => Ok(()),
    }
}

/// A txn being executed: its plan, the next op, and the responses so far.
struct Frame<'p, 'r> {
    plan: &'p Plan<'r>,
    next_op: usize,
    next_nested: usize,
    responses: Vec<ResponseOp>,
}

impl<'p, 'r> Frame<'p, 'r> {
    fn new(plan: &'p Plan<'r>) -> Self {
        Frame {
            plan,
            next_op: 0,
            next_nested: 0,
            responses: Vec::with_capacity(plan.ops.len()),
        }
    }

    fn into_response(self) -> TxnResponse {
        TxnResponse {
            // etcd leaves a nested txn's header empty; `apply` sets the
            // outermost one.
            header: Some(ResponseHeader::default()),
            succeeded: self.plan.succeeded,
            responses: self.responses,
        }
    }
}

/// Runs the ops `plan` chose, nested txns included. Iterative (the
/// enclosing txns wait on a stack) so that no recursive future is needed.
async fn execute<H: History>(
    tw: &mut WriteTxn<'_, H>,
    plan: &Plan<'_>,
) -> Result<TxnResponse, MvccError> {
    let mut current = Frame::new(plan);
    let mut enclosing: Vec<Frame<'_, '_>> = Vec::new();
    loop {
        let Some(op) = current.plan.ops.get(current.next_op) else {
            let done = current.into_response();
            match enclosing.pop() {
                Some(mut parent) => {
                    parent.responses.push(ResponseOp {
                        response: Some(Response::ResponseTxn(done)),
                    });
                    current = parent;
                    continue;
                }
                None => return Ok(done),
            }
        };
        current.next_op += 1;
        let response = match &op.request {
            Some(Request::RequestRange(req)) => {
                Some(Response::ResponseRange(range_op(tw, req).await?))
            }
            Some(Request::RequestPut(req)) => Some(Response::ResponsePut(put_op(tw, req)?)),
            Some(Request::RequestDeleteRange(req)) => {
                Some(Response::ResponseDeleteRange(delete_range_op(tw, req)))
            }
            Some(Request::RequestTxn(_)) => {
                if let Some(nested) = current.plan.nested.get(current.next_nested) {
                    current.next_nested += 1;
                    enclosing.push(std::mem::replace(&mut current, Frame::new(nested)));
                }
                continue;
            }
            // An empty op (validation rejects it): an empty response.
            None => None,
        };
        current.responses.push(ResponseOp { response });
    }
}

/// A Range inside a txn: reads see the txn's writes so far.
async fn range_op<H: History>(
    tw: &WriteTxn<'_, H>,
    req: &RangeRequest,
) -> Result<witan_proto::etcdserverpb::RangeResponse, MvccError> {
    let (fetched, revision) = tw.range(&Fetch::new(req)).await?;
    Ok(range::respond(req, fetched, revision))
}
