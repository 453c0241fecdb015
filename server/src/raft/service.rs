//! The member-to-member gRPC service (`witan.raft.v1.RaftTransport`): hands
//! openraft's RPCs to the local raft, and serves writes forwarded by
//! followers and read-index requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tracing::warn;
use witan_proto::raftpb::{self, raft_transport_server::RaftTransport};

use super::convert;
use super::crash_detector::LeaderContact;
use super::leader::LeaderView;
use super::peers::{self, sender, Faults};
use super::proposer::{Attempt, Writer};
use super::read_index::ReadIndex;
use super::{NodeId, Raft};

/// Serves the transport for one member.
pub struct TransportService {
    faults: Faults,
    raft: Raft,
    writer: Arc<Writer>,
    read_index: ReadIndex,
    request_timeout: std::time::Duration,
    contact: LeaderContact,
}

impl TransportService {
    /// A service over the member's raft, write path and read barrier.
    pub fn new(
        faults: Faults,
        raft: Raft,
        writer: Arc<Writer>,
        read_index: ReadIndex,
        request_timeout: std::time::Duration,
        contact: LeaderContact,
    ) -> Self {
        TransportService {
            faults,
            raft,
            writer,
            read_index,
            request_timeout,
            contact,
        }
    }

    /// Refuses requests from members whose link is cut by fault injection,
    /// as if the network had dropped them, and holds those from members
    /// whose link is slowed, as a slow network would.
    async fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if self.faults.blocks_request(request) {
            return Err(Status::unavailable("link cut by fault injection"));
        }
        if let Some(delay) = self.faults.request_delay(request) {
            tokio::time::sleep(delay).await;
            // The link may have been cut while the request was on it.
            if self.faults.blocks_request(request) {
                return Err(Status::unavailable("link cut by fault injection"));
            }
        }
        Ok(())
    }

    fn not_leader(&self) -> raftpb::NotLeader {
        raftpb::NotLeader {
            leader_id: self.read_index.leader_hint().unwrap_or(0),
        }
    }
}

fn malformed(err: convert::ConvertError) -> Status {
    Status::invalid_argument(err.to_string())
}

fn raft_failed<E: std::error::Error>(err: RaftError<NodeId, E>) -> Status {
    warn!(%err, "raft refused a peer request");
    Status::unavailable(format!("raft: {err}"))
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn append_entries(
        &self,
        request: Request<raftpb::AppendEntriesRequest>,
    ) -> Result<Response<raftpb::AppendEntriesResponse>, Status> {
        self.admit(&request).await?;
        if let Some(from) = sender(&request) {
            self.contact.touch(from);
        }
        let rpc = convert::append_request_from_pb(request.into_inner()).map_err(malformed)?;
        let response = self.raft.append_entries(rpc).await.map_err(raft_failed)?;
        Ok(Response::new(convert::append_response_to_pb(&response)))
    }

    async fn vote(
        &self,
        request: Request<raftpb::VoteRequest>,
    ) -> Result<Response<raftpb::VoteResponse>, Status> {
        self.admit(&request).await?;
        let rpc = convert::vote_request_from_pb(request.get_ref()).map_err(malformed)?;
        let response = self.raft.vote(rpc).await.map_err(raft_failed)?;
        Ok(Response::new(convert::vote_response_to_pb(&response)))
    }

    async fn install_snapshot(
        &self,
        request: Request<raftpb::InstallSnapshotRequest>,
    ) -> Result<Response<raftpb::InstallSnapshotResponse>, Status> {
        self.admit(&request).await?;
        let rpc = convert::snapshot_request_from_pb(request.into_inner()).map_err(malformed)?;
        let result = match self.raft.install_snapshot(rpc).await {
            Ok(response) => {
                raftpb::install_snapshot_response::Result::Vote(convert::vote_to_pb(&response.vote))
            }
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
                raftpb::install_snapshot_response::Result::Mismatch(raftpb::SnapshotMismatch {
                    expect: Some(convert::segment_to_pb(&m.expect)),
                    got: Some(convert::segment_to_pb(&m.got)),
                })
            }
            Err(err) => return Err(raft_failed(err)),
        };
        Ok(Response::new(raftpb::InstallSnapshotResponse {
            result: Some(result),
        }))
    }

    async fn forward(
        &self,
        request: Request<raftpb::ForwardRequest>,
    ) -> Result<Response<raftpb::ForwardResponse>, Status> {
        self.admit(&request).await?;
        let batch = request
            .into_inner()
            .batch
            .ok_or_else(|| Status::invalid_argument("forward request without a batch"))?;
        let result = if self.writer.leader() != LeaderView::Me {
            raftpb::forward_response::Result::NotLeader(self.not_leader())
        } else {
            let deadline = Instant::now() + self.request_timeout;
            match self.writer.write_local(batch, deadline).await {
                Attempt::Done(responses) => {
                    raftpb::forward_response::Result::Responses(raftpb::CommandResponses {
                        responses,
                    })
                }
                Attempt::Retry => raftpb::forward_response::Result::NotLeader(self.not_leader()),
                Attempt::Failed(err) => return Err(Status::unavailable(err.to_string())),
            }
        };
        Ok(Response::new(raftpb::ForwardResponse {
            result: Some(result),
        }))
    }

    async fn read_index(
        &self,
        request: Request<raftpb::ReadIndexRequest>,
    ) -> Result<Response<raftpb::ReadIndexResponse>, Status> {
        self.admit(&request).await?;
        let result = if !self.read_index.is_leader() {
            raftpb::read_index_response::Result::NotLeader(self.not_leader())
        } else {
            let deadline = Instant::now() + self.request_timeout;
            match self.read_index.read_index(deadline).await {
                Ok(index) => raftpb::read_index_response::Result::ReadIndex(index),
                Err(err) => return Err(Status::unavailable(err.to_string())),
            }
        };
        Ok(Response::new(raftpb::ReadIndexResponse {
            result: Some(result),
        }))
    }
}

/// Test-only fault injection (`--unsafe-fault-injection`).
pub struct FaultInjectionService {
    faults: Faults,
}

impl FaultInjectionService {
    /// Controls `faults`.
    pub fn new(faults: Faults) -> Self {
        FaultInjectionService { faults }
    }
}

#[tonic::async_trait]
impl raftpb::fault_injection_server::FaultInjection for FaultInjectionService {
    async fn set_partition(
        &self,
        request: Request<raftpb::SetPartitionRequest>,
    ) -> Result<Response<raftpb::SetPartitionResponse>, Status> {
        let blocked = request.into_inner().blocked.into_iter().collect();
        warn!(?blocked, "fault injection: cutting links");
        self.faults.set_blocked(blocked);
        Ok(Response::new(raftpb::SetPartitionResponse {}))
    }

    async fn set_link_delays(
        &self,
        request: Request<raftpb::SetLinkDelaysRequest>,
    ) -> Result<Response<raftpb::SetLinkDelaysResponse>, Status> {
        let delays: BTreeMap<_, _> = request
            .into_inner()
            .delays
            .into_iter()
            .filter(|link| link.delay_ms > 0)
            .map(|link| (link.member, Duration::from_millis(link.delay_ms.into())))
            .collect();
        warn!(?delays, "fault injection: slowing links");
        self.faults.set_delays(delays);
        Ok(Response::new(raftpb::SetLinkDelaysResponse {}))
    }

    async fn set_fsync_delay(
        &self,
        request: Request<raftpb::SetFsyncDelayRequest>,
    ) -> Result<Response<raftpb::SetFsyncDelayResponse>, Status> {
        let delay = Duration::from_millis(request.into_inner().delay_ms.into());
        warn!(?delay, "fault injection: stalling raft log commits");
        peers::set_fsync_delay(delay);
        Ok(Response::new(raftpb::SetFsyncDelayResponse {}))
    }
}
