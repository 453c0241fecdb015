//! `etcdserverpb.Maintenance`: Status today (what `etcdctl endpoint status`
//! and tools that look for the leader use); the other calls arrive with the
//! operations work and answer `Unimplemented` until then.

use std::path::PathBuf;

use tonic::{Request, Response, Status};
use witan_proto::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, DefragmentRequest,
    DefragmentResponse, DowngradeRequest, DowngradeResponse, HashKvRequest, HashKvResponse,
    HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest,
    SnapshotResponse, StatusRequest, StatusResponse,
};

use super::HeaderSource;
use crate::raft::leader::Metrics;
use crate::storage::StateReader;

/// The etcd API version witan speaks; clients gate features on it.
pub const API_VERSION: &str = "3.5.0";

/// The Maintenance service of one member.
pub struct MaintenanceService {
    metrics: Metrics,
    state: StateReader,
    header: HeaderSource,
    data_dir: PathBuf,
}

impl MaintenanceService {
    /// A service reporting on this member.
    pub fn new(
        metrics: Metrics,
        state: StateReader,
        header: HeaderSource,
        data_dir: PathBuf,
    ) -> Self {
        MaintenanceService {
            metrics,
            state,
            header,
            data_dir,
        }
    }

    /// Bytes this member's data directory holds on disk (log, state, WAL files).
    fn db_size(&self) -> i64 {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return 0;
        };
        let total: u64 = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        i64::try_from(total).unwrap_or(i64::MAX)
    }
}

fn not_yet(call: &str) -> Status {
    Status::unimplemented(format!(
        "witan does not serve Maintenance.{call} yet (it arrives with the operations work)"
    ))
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (leader, raft_index, raft_term, applied, is_learner) = {
            let m = self.metrics.borrow();
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
        let mut header = Some(witan_proto::etcdserverpb::ResponseHeader {
            revision: self.state.current().kv.revision(),
            ..Default::default()
        });
        self.header.fill(&mut header);
        let db_size = self.db_size();
        Ok(Response::new(StatusResponse {
            header,
            version: API_VERSION.to_string(),
            db_size,
            leader,
            raft_index,
            raft_term,
            raft_applied_index: applied,
            errors: Vec::new(),
            db_size_in_use: db_size,
            is_learner,
        }))
    }

    async fn alarm(&self, _: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        Err(not_yet("Alarm"))
    }

    async fn defragment(
        &self,
        _: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(not_yet("Defragment"))
    }

    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(not_yet("Hash"))
    }

    async fn hash_kv(&self, _: Request<HashKvRequest>) -> Result<Response<HashKvResponse>, Status> {
        Err(not_yet("HashKV"))
    }

    type SnapshotStream = futures::stream::Empty<Result<SnapshotResponse, Status>>;

    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(not_yet("Snapshot"))
    }

    async fn move_leader(
        &self,
        _: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(not_yet("MoveLeader"))
    }

    async fn downgrade(
        &self,
        _: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(not_yet("Downgrade"))
    }
}
