//! openraft's network: raft RPCs to other members over tonic.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use witan_proto::raftpb;

use super::convert;
use super::peers::{is_removed_status, PeerClient, Peers};
use super::{Member, NodeId, TypeConfig};

/// Creates a [`PeerNetwork`] per replication target.
pub struct NetworkFactory {
    peers: Peers,
}

impl NetworkFactory {
    /// A factory sharing `peers`' connections.
    pub fn new(peers: Peers) -> Self {
        NetworkFactory { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerNetwork {
        PeerNetwork {
            target,
            member: node.clone(),
            peers: self.peers.clone(),
        }
    }
}

/// Raft RPCs to one member.
pub struct PeerNetwork {
    target: NodeId,
    member: Member,
    peers: Peers,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

impl PeerNetwork {
    fn client(&self) -> Result<PeerClient, Unreachable> {
        self.peers
            .client(self.target, &self.member)
            .map_err(|e| Unreachable::new(&e))
    }

    /// A failed call; a peer's answer that this member was removed from
    /// the cluster is recorded, so the member stops.
    fn failed<E: std::error::Error>(&self, status: tonic::Status) -> RPCError<NodeId, Member, E> {
        if is_removed_status(&status) {
            self.peers.mark_removed();
        }
        transport_error(status)
    }
}

fn request<T>(message: T, option: &RPCOption) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(option.hard_ttl());
    request
}

/// A transport failure: an unreachable member makes openraft back off, any
/// other failure is retried at once.
fn transport_error<E: std::error::Error>(status: tonic::Status) -> RPCError<NodeId, Member, E> {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

fn malformed<E: std::error::Error>(err: convert::ConvertError) -> RPCError<NodeId, Member, E> {
    RPCError::Network(NetworkError::new(&err))
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let mut client = self.client()?;
        let message = convert::append_request_to_pb(&rpc);
        let response = client
            .append_entries(request(message, &option))
            .await
            .map_err(|s| self.failed(s))?;
        convert::append_response_from_pb(response.get_ref()).map_err(malformed)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let mut client = self.client()?;
        let message = convert::snapshot_request_to_pb(&rpc);
        let response = client
            .install_snapshot(request(message, &option))
            .await
            .map_err(|s| self.failed(s))?;
        match &response.get_ref().result {
            Some(raftpb::install_snapshot_response::Result::Vote(vote)) => {
                Ok(InstallSnapshotResponse {
                    vote: convert::vote_from_pb(vote),
                })
            }
            Some(raftpb::install_snapshot_response::Result::Mismatch(m)) => {
                let (Some(expect), Some(got)) = (&m.expect, &m.got) else {
                    return Err(malformed(convert::ConvertError::MissingField(
                        "snapshot_mismatch",
                    )));
                };
                let mismatch = openraft::error::SnapshotMismatch {
                    expect: convert::segment_from_pb(expect),
                    got: convert::segment_from_pb(got),
                };
                Err(RPCError::RemoteError(RemoteError::new(
                    self.target,
                    RaftError::APIError(InstallSnapshotError::SnapshotMismatch(mismatch)),
                )))
            }
            None => Err(malformed(convert::ConvertError::MissingField(
                "install_snapshot.result",
            ))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let mut client = self.client()?;
        let message = convert::vote_request_to_pb(&rpc);
        let response = client
            .vote(request(message, &option))
            .await
            .map_err(|s| self.failed(s))?;
        convert::vote_response_from_pb(response.get_ref()).map_err(malformed)
    }

    fn backoff(&self) -> Backoff {
        // A restarted member should be caught up soon after it is back.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
