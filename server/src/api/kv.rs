//! `etcdserverpb.KV`: Range, Put, DeleteRange, Txn, Compact.
//!
//! Writes become commands proposed through raft. Reads never go through
//! the log: a linearizable read passes the read-index barrier and is served
//! from this member's applied state; a serializable read is served from the
//! applied state at once (and may be stale, as etcd documents).

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};
use witan_proto::etcdserverpb::{
    self, kv_server::Kv, request_op, CompactionRequest, CompactionResponse, DeleteRangeRequest,
    DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse, TxnRequest,
    TxnResponse,
};
use witan_proto::raftpb::{command::Op, command_response::Result as Applied, Command};

use super::core::{self, ApiCore};
use super::permissions;
use super::ApiError;
use crate::auth::Caller;
use crate::mvcc::{self, MvccError};
use crate::storage::{self, AppliedState};

/// Request limits, as etcd's flags of the same names.
#[derive(Debug, Clone, Copy)]
pub struct KvLimits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
}

/// The KV service of one member.
pub struct KvService {
    core: ApiCore,
    limits: KvLimits,
}

impl KvService {
    /// A KV service over the member's write path, read barrier and state.
    pub fn new(core: ApiCore, limits: KvLimits) -> Self {
        KvService { core, limits }
    }

    fn check_size(&self, request: &impl Message) -> Result<(), ApiError> {
        if request.encoded_len() > self.limits.max_request_bytes {
            return Err(ApiError::RequestTooLarge);
        }
        Ok(())
    }
}

// A compaction may overtake a read of older revisions (the history below it
// is deleted while the read runs). Such a read runs once more on the newest
// state, which answers with etcd's "compacted" error instead of a storage
// failure.
impl KvService {
    async fn range_on(
        &self,
        state: Arc<AppliedState>,
        request: &RangeRequest,
    ) -> Result<RangeResponse, ApiError> {
        let history = self.core.state.history();
        match state.kv.range(request, history).await {
            Err(e) if overtaken_by_compaction(&e) => {
                Ok(self.core.state.current().kv.range(request, history).await?)
            }
            result => Ok(result?),
        }
    }

    /// Applying a read-only txn to a copy of the state changes nothing and
    /// gives exactly the response the log would have.
    async fn read_only_txn_on(
        &self,
        state: Arc<AppliedState>,
        command: &Command,
    ) -> Result<witan_proto::raftpb::CommandResponse, ApiError> {
        let history = self.core.state.history();
        let mut kv = state.kv.clone();
        match kv.apply(command, history, &mut Vec::new()).await {
            Err(e) if storage::compacted_during_read(&e) => {
                let mut kv = self.core.state.current().kv.clone();
                let response = kv.apply(command, history, &mut Vec::new()).await;
                response.map_err(|e| ApiError::Mvcc(MvccError::History(e)))
            }
            result => result.map_err(|e| ApiError::Mvcc(MvccError::History(e))),
        }
    }
}

/// The requests other parts of the member make in-process (the recipes'
/// KV core) share the handlers' whole path: limits, validation, barrier.
impl KvService {
    /// Serves a Range for `caller`, whose permissions are checked on the
    /// very state the read is served from (after the read barrier), so a
    /// permission revoked before the read is never used.
    pub async fn serve_range(
        &self,
        request: RangeRequest,
        caller: &Caller,
    ) -> Result<RangeResponse, ApiError> {
        self.check_size(&request)?;
        mvcc::validate_range(&request)?;
        let state = self.core.readable_state(request.serializable).await?;
        permissions::check_range(caller, state.kv.auth(), &request)?;
        let mut response = self.range_on(state, &request).await?;
        self.core.header.fill(&mut response.header);
        Ok(response)
    }

    /// Serves a Txn for `caller`: a read-only one like a read (checked on
    /// the state it reads), any other through raft (checked now and
    /// stamped with the auth revision it was checked at).
    pub async fn serve_txn(
        &self,
        request: TxnRequest,
        caller: &Caller,
    ) -> Result<TxnResponse, ApiError> {
        self.check_size(&request)?;
        mvcc::validate_txn(&request, self.limits.max_txn_ops)?;
        let applied = if txn_is_read_only(&request) {
            let state = self
                .core
                .readable_state(txn_is_serializable(&request))
                .await?;
            permissions::check_txn(caller, state.kv.auth(), &request)?;
            let command = Command {
                op: Some(Op::Txn(request)),
                ..Default::default()
            };
            let response = self.read_only_txn_on(state, &command).await?;
            match response.result {
                Some(Applied::Error(e)) => return Err(core::rejection(e.kind())),
                Some(applied) => applied,
                None => return Err(ApiError::UnexpectedResponse("empty txn response")),
            }
        } else {
            let state = self.core.state.current();
            permissions::check_txn(caller, state.kv.auth(), &request)?;
            mvcc::check_txn_space(&state.kv, &request)?;
            drop(state);
            self.core.write_as(Op::Txn(request), caller).await?
        };
        match applied {
            Applied::Txn(mut response) => {
                self.core.header.fill(&mut response.header);
                Ok(response)
            }
            _ => Err(ApiError::UnexpectedResponse(
                "txn answered with another kind",
            )),
        }
    }
}

fn overtaken_by_compaction(err: &MvccError) -> bool {
    matches!(err, MvccError::History(e) if storage::compacted_during_read(e))
}

/// Whether a txn only reads, in both branches and every nested txn; such a
/// txn is served like a read instead of going through the log.
fn txn_is_read_only(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(_)) | None => true,
            Some(request_op::Request::RequestTxn(nested)) => txn_is_read_only(nested),
            Some(_) => false,
        })
}

/// Whether every range in a read-only txn is serializable.
fn txn_is_serializable(txn: &TxnRequest) -> bool {
    txn.success
        .iter()
        .chain(&txn.failure)
        .all(|op| match &op.request {
            Some(request_op::Request::RequestRange(r)) => r.serializable,
            Some(request_op::Request::RequestTxn(nested)) => txn_is_serializable(nested),
            _ => true,
        })
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(
        &self,
        request: Request<RangeRequest>,
    ) -> Result<Response<RangeResponse>, Status> {
        let (caller, _) = self.core.caller(&request).await?;
        Ok(Response::new(
            self.serve_range(request.into_inner(), &caller).await?,
        ))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let (caller, state) = self.core.caller(&request).await?;
        let request = request.into_inner();
        permissions::check_put(&caller, state.kv.auth(), &request).map_err(ApiError::from)?;
        self.check_size(&request)?;
        mvcc::validate_put(&request).map_err(ApiError::from)?;
        mvcc::check_space(&self.core.state.current().kv).map_err(ApiError::from)?;
        match self.core.write_as(Op::Put(request), &caller).await? {
            Applied::Put(mut response) => {
                self.core.header.fill(&mut response.header);
                Ok(Response::new(response))
            }
            _ => Err(ApiError::UnexpectedResponse("put answered with another kind").into()),
        }
    }

    async fn delete_range(
        &self,
        request: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let (caller, state) = self.core.caller(&request).await?;
        let request = request.into_inner();
        permissions::check_delete(&caller, state.kv.auth(), &request).map_err(ApiError::from)?;
        self.check_size(&request)?;
        mvcc::validate_delete_range(&request).map_err(ApiError::from)?;
        match self
            .core
            .write_as(Op::DeleteRange(request), &caller)
            .await?
        {
            Applied::DeleteRange(mut response) => {
                self.core.header.fill(&mut response.header);
                Ok(Response::new(response))
            }
            _ => Err(ApiError::UnexpectedResponse("delete answered with another kind").into()),
        }
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let (caller, _) = self.core.caller(&request).await?;
        Ok(Response::new(
            self.serve_txn(request.into_inner(), &caller).await?,
        ))
    }

    async fn compact(
        &self,
        request: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        // etcd lets any authenticated user compact (it removes no live key).
        let (caller, state) = self.core.caller(&request).await?;
        caller
            .check_authenticated(state.kv.auth())
            .map_err(ApiError::from)?;
        let request = request.into_inner();
        match self.core.write_as(Op::Compact(request), &caller).await? {
            Applied::Compact(mut response) => {
                self.core.header.fill(&mut response.header);
                Ok(Response::new(response))
            }
            _ => Err(ApiError::UnexpectedResponse("compact answered with another kind").into()),
        }
    }
}

/// The service wrapped for tonic, with etcd's gRPC message size limit
/// (requests a little over `--max-request-bytes` still reach the handler,
/// which answers with etcd's "request is too large").
pub fn server(service: Arc<KvService>) -> etcdserverpb::kv_server::KvServer<KvService> {
    let limit = service.limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    etcdserverpb::kv_server::KvServer::from_arc(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX)
}

/// Headroom etcd gives gRPC messages over `--max-request-bytes`.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;
