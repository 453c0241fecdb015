//! Status: this member's version, database sizes, raft position, learner
//! flag and active alarms (`etcdctl endpoint status`).

use witan_proto::etcdserverpb::StatusResponse;

use super::{alarm::alarm_text, storage_failure, MaintenanceParts, API_VERSION};
use crate::api::ApiError;

/// This member's status.
pub(super) async fn status(parts: &MaintenanceParts) -> Result<StatusResponse, ApiError> {
    let (leader, raft_index, raft_term, applied, is_learner) = {
        let metrics = parts.raft.metrics();
        let m = metrics.borrow();
        let is_learner = !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == m.id);
        (
            m.current_leader.unwrap_or(0),
            m.last_log_index.unwrap_or(0),
            m.current_term,
            m.last_applied.map_or(0, |id| id.index),
            is_learner,
        )
    };
    let state = parts.core.state.current();
    let sizes = parts
        .storage
        .sizes()
        .await
        .map_err(storage_failure)?
        .total();
    let errors = state.kv.alarms().list(0).iter().map(alarm_text).collect();
    Ok(StatusResponse {
        header: parts.core.header.at(state.kv.revision()),
        version: API_VERSION.to_string(),
        db_size: i64::try_from(sizes.size).unwrap_or(i64::MAX),
        leader,
        raft_index,
        raft_term,
        raft_applied_index: applied,
        errors,
        db_size_in_use: i64::try_from(sizes.in_use).unwrap_or(i64::MAX),
        is_learner,
    })
}
