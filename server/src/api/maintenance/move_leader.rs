//! MoveLeader: transfers leadership to another voter (see
//! `raft::transfer` for what exactly happens on openraft 0.9).

use witan_proto::etcdserverpb::MoveLeaderResponse;

use super::MaintenanceParts;
use crate::api::ApiError;
use crate::raft::transfer::transfer_leadership;

/// Moves leadership to `target` and answers once it leads.
pub(super) async fn move_leader(
    parts: &MaintenanceParts,
    target: u64,
) -> Result<MoveLeaderResponse, ApiError> {
    transfer_leadership(
        parts.raft.clone(),
        parts.core.proposer.writer().clone(),
        parts.member_id,
        parts.peers.clone(),
        target,
        parts.leader_lease,
        parts.core.deadline(),
    )
    .await?;
    let revision = parts.core.state.current().kv.revision();
    Ok(MoveLeaderResponse {
        header: parts.core.header.at(revision),
    })
}
