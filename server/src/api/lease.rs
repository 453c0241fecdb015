//! `etcdserverpb.Lease`: LeaseGrant, LeaseRevoke, LeaseKeepAlive (a stream),
//! LeaseTimeToLive, LeaseLeases.
//!
//! Grants, revokes and keepalives are replicated commands (sent to the
//! leader from any member); a keepalive is answered only once applied, so
//! an acknowledged keepalive survives a leader change. Time-to-live and the
//! lease list are reads behind the linearizable read barrier.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;
use witan_proto::etcdserverpb::{
    lease_server::Lease, LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest,
    LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest,
    LeaseRevokeResponse, LeaseStatus, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
    ResponseHeader,
};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Applied;
use witan_proto::raftpb::LeaseKeepAlive;

use super::{ApiCore, ApiError};
use crate::auth::Caller;
use crate::lease::MAX_LEASE_TTL;
use crate::mvcc::{Access, MvccError};

/// Keepalive responses buffered per stream before the sender waits.
const KEEPALIVE_BUFFER: usize = 64;
/// Attempts at picking a free lease ID for a grant without one.
const ID_ATTEMPTS: usize = 8;

/// The Lease service of one member.
pub struct LeaseService {
    core: ApiCore,
    min_ttl: i64,
    /// Grants are refused once the cluster holds this many leases.
    max_leases: usize,
}

impl LeaseService {
    /// A Lease service; TTLs below `min_ttl` seconds are raised to it.
    pub fn new(core: ApiCore, min_ttl: i64) -> Self {
        LeaseService {
            core,
            min_ttl,
            max_leases: usize::MAX,
        }
    }

    /// Refuses grants once the cluster holds `max_leases` leases
    /// (`--max-leases`).
    pub fn with_max_leases(self, max_leases: usize) -> Self {
        LeaseService { max_leases, ..self }
    }
}

/// A random positive lease ID (etcd's IDs are positive int64).
fn random_id() -> i64 {
    let id = (uuid::Uuid::new_v4().as_u128() as u64) >> 1;
    i64::try_from(id).unwrap_or(i64::MAX).max(1)
}

fn unexpected() -> ApiError {
    ApiError::UnexpectedResponse("lease command answered with another kind")
}

/// Answers one keepalive through the write path.
///
/// Stamped as the member's own: a keepalive stream outlives auth changes,
/// and renewing a lease grants nothing (the stream's caller was checked
/// when it opened).
async fn keep_alive(core: &ApiCore, id: i64) -> Result<LeaseKeepAliveResponse, ApiError> {
    let op = Op::LeaseKeepAlive(LeaseKeepAlive { ids: vec![id] });
    match core.write(op).await? {
        Applied::LeaseKeepAlive(mut result) => {
            let mut response = result
                .responses
                .pop()
                .ok_or(ApiError::UnexpectedResponse("empty keepalive result"))?;
            core.header.fill(&mut response.header);
            Ok(response)
        }
        _ => Err(ApiError::UnexpectedResponse(
            "keepalive answered with another kind",
        )),
    }
}

/// The requests, callable in-process (the recipes' KV core) as well as by
/// the gRPC handlers.
impl LeaseService {
    /// Grants a lease (a generated ID when the request has none).
    pub async fn grant(
        &self,
        request: LeaseGrantRequest,
        caller: &Caller,
    ) -> Result<LeaseGrantResponse, ApiError> {
        if request.ttl > MAX_LEASE_TTL {
            return Err(ApiError::LeaseTtlTooLarge);
        }
        let state = self.core.state.current();
        crate::mvcc::check_space(&state.kv)?;
        // Checked here, not in apply: the limit is this member's flag, and
        // apply must not depend on a member's configuration.
        if state.kv.leases().len() >= self.max_leases {
            return Err(ApiError::TooManyLeases);
        }
        drop(state);
        let ttl = request.ttl.max(self.min_ttl);
        let chosen = request.id != 0;
        for _ in 0..ID_ATTEMPTS {
            let id = if chosen { request.id } else { random_id() };
            let op = Op::LeaseGrant(LeaseGrantRequest { ttl, id });
            match self.core.write_as(op, caller).await {
                Ok(Applied::LeaseGrant(mut response)) => {
                    self.core.header.fill(&mut response.header);
                    return Ok(response);
                }
                Ok(_) => return Err(unexpected()),
                // A generated ID that happens to be taken: the refused grant
                // changed nothing, so another ID may be tried.
                Err(ApiError::Mvcc(MvccError::LeaseExists)) if !chosen => continue,
                Err(err) => return Err(err),
            }
        }
        Err(ApiError::Mvcc(MvccError::LeaseExists))
    }

    /// Revokes a lease and deletes its keys (apply refuses it when
    /// `caller` may not write every key attached by then).
    pub async fn revoke(
        &self,
        request: LeaseRevokeRequest,
        caller: &Caller,
    ) -> Result<LeaseRevokeResponse, ApiError> {
        match self.core.write_as(Op::LeaseRevoke(request), caller).await? {
            Applied::LeaseRevoke(mut response) => {
                self.core.header.fill(&mut response.header);
                Ok(response)
            }
            _ => Err(unexpected()),
        }
    }

    /// Renews a lease once (answered once the renewal is applied).
    pub async fn keep_alive_once(&self, id: i64) -> Result<LeaseKeepAliveResponse, ApiError> {
        keep_alive(&self.core, id).await
    }

    /// A lease's remaining TTL (-1 if unknown), behind the read barrier.
    pub async fn time_to_live(
        &self,
        request: LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse, ApiError> {
        let state = self.core.readable_state(false).await?;
        let mut header = Some(ResponseHeader {
            revision: state.kv.revision(),
            ..ResponseHeader::default()
        });
        self.core.header.fill(&mut header);
        Ok(match state.kv.leases().info(request.id) {
            Some(info) => LeaseTimeToLiveResponse {
                header,
                id: info.id,
                ttl: info.remaining_ms / 1000,
                granted_ttl: info.ttl,
                keys: if request.keys { info.keys } else { Vec::new() },
            },
            // etcd answers an unknown (or expired) lease with TTL -1.
            None => LeaseTimeToLiveResponse {
                header,
                id: request.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            },
        })
    }
}

impl LeaseService {
    /// The caller, who must be a user while auth is on (any user may
    /// grant, renew and list leases, as in etcd).
    async fn authenticated<T>(&self, request: &Request<T>) -> Result<Caller, ApiError> {
        let (caller, state) = self.core.caller(request).await?;
        caller.check_authenticated(state.kv.auth())?;
        Ok(caller)
    }
}

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let caller = self.authenticated(&request).await?;
        Ok(Response::new(
            self.grant(request.into_inner(), &caller).await?,
        ))
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let (caller, state) = self.core.caller(&request).await?;
        let request = request.into_inner();
        // Checked here to fail early; apply checks again with the keys
        // attached when it runs.
        if let Some(info) = state.kv.leases().info(request.id) {
            for key in &info.keys {
                caller
                    .check(state.kv.auth(), key, &[], Access::Write)
                    .map_err(ApiError::from)?;
            }
        }
        Ok(Response::new(self.revoke(request, &caller).await?))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        self.authenticated(&request).await?;
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(KEEPALIVE_BUFFER);
        let core = self.core.clone();
        tokio::spawn(async move {
            while let Some(next) = incoming.next().await {
                let answer = match next {
                    Ok(request) => keep_alive(&core, request.id).await.map_err(Status::from),
                    Err(status) => {
                        debug!(%status, "keepalive stream ended by the client");
                        return;
                    }
                };
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        self.authenticated(&request).await?;
        Ok(Response::new(
            self.time_to_live(request.into_inner()).await?,
        ))
    }

    async fn lease_leases(
        &self,
        request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.authenticated(&request).await?;
        let state = self.core.readable_state(false).await?;
        let mut header = Some(ResponseHeader {
            revision: state.kv.revision(),
            ..ResponseHeader::default()
        });
        self.core.header.fill(&mut header);
        let leases = state
            .kv
            .leases()
            .ids()
            .map(|id| LeaseStatus { id })
            .collect();
        Ok(Response::new(LeaseLeasesResponse { header, leases }))
    }
}
