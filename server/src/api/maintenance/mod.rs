//! `etcdserverpb.Maintenance`: Status, Alarm, Hash, HashKV, Defragment,
//! Snapshot and MoveLeader, one concern per file:
//! - `status`: Status (what `etcdctl endpoint status` shows);
//! - `alarm`: Alarm, and the text etcd gives an alarm in Status' errors;
//! - `snapshot`: the Snapshot stream (a consistent copy of `state.db` with
//!   etcd's sha256 trailer);
//! - `move_leader`: leader transfer (see `raft::transfer` for what
//!   openraft 0.9 allows).
//!
//! Hash, HashKV and Defragment are one storage call each and live here.

mod alarm;
mod move_leader;
mod snapshot;
mod status;

use std::time::Duration;

use tonic::{Request, Response, Status};
use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{
    maintenance_server::Maintenance, AlarmRequest, AlarmResponse, DefragmentRequest,
    DefragmentResponse, DowngradeRequest, DowngradeResponse, HashKvRequest, HashKvResponse,
    HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse, SnapshotRequest,
    StatusRequest, StatusResponse,
};

use super::{ApiCore, ApiError};
use crate::mvcc::MvccError;
use crate::raft::peers::Peers;
use crate::raft::{NodeId, Raft};
use crate::storage::{HashKvError, StorageMaintenance};

pub use alarm::alarm_text;

/// The etcd API version witan speaks; clients gate features on it.
pub const API_VERSION: &str = "3.5.0";

/// What the Maintenance service works with.
#[derive(Clone)]
pub struct MaintenanceParts {
    /// The member's write path, read barrier, state and headers.
    pub core: ApiCore,
    /// Raft (leader transfer).
    pub raft: Raft,
    /// Peer clients (leader transfer asks the target to campaign).
    pub peers: Peers,
    /// This member's id.
    pub member_id: NodeId,
    /// Sizes, hashes, defragmentation and copies of the stored state.
    pub storage: StorageMaintenance,
    /// The leader lease followers grant (openraft's
    /// `election_timeout_max`): how long a transfer waits after the last
    /// heartbeat before the target campaigns.
    pub leader_lease: Duration,
}

/// The Maintenance service of one member.
pub struct MaintenanceService {
    parts: MaintenanceParts,
}

impl MaintenanceService {
    /// A service over this member.
    pub fn new(parts: MaintenanceParts) -> Self {
        MaintenanceService { parts }
    }
}

/// A storage failure while serving a maintenance request.
fn storage_failure(e: crate::storage::DbError) -> ApiError {
    ApiError::Storage(e)
}

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(status::status(&self.parts).await?))
    }

    async fn alarm(
        &self,
        request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        // Listing alarms is any user's business; raising or clearing one
        // is the root role's.
        let (caller, state) = self.parts.core.caller(&request).await?;
        let auth = state.kv.auth();
        if request.get_ref().action == AlarmAction::Get as i32 {
            caller.check_authenticated(auth).map_err(ApiError::from)?;
        } else {
            caller.check_admin(auth).map_err(ApiError::from)?;
        }
        Ok(Response::new(
            alarm::alarm(&self.parts.core, request.into_inner()).await?,
        ))
    }

    async fn defragment(
        &self,
        request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.parts.core.admin(&request).await?;
        self.parts
            .storage
            .defragment()
            .await
            .map_err(storage_failure)?;
        let revision = self.parts.core.state.current().kv.revision();
        Ok(Response::new(DefragmentResponse {
            header: self.parts.core.header.at(revision),
        }))
    }

    async fn hash(&self, request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.parts.core.admin(&request).await?;
        let current = self.parts.core.state.current().kv.revision();
        let hashed = self
            .parts
            .storage
            .hash(current)
            .await
            .map_err(storage_failure)?;
        Ok(Response::new(HashResponse {
            header: self.parts.core.header.at(hashed.current_revision),
            hash: hashed.hash,
        }))
    }

    async fn hash_kv(
        &self,
        request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.parts.core.admin(&request).await?;
        let revision = request.into_inner().revision;
        let current = self.parts.core.state.current().kv.revision();
        let hashed = self
            .parts
            .storage
            .hash_kv(revision, current)
            .await
            .map_err(|e| match e {
                HashKvError::Compacted => ApiError::Mvcc(MvccError::Compacted),
                HashKvError::FutureRevision => ApiError::Mvcc(MvccError::FutureRevision),
                HashKvError::Db(e) => storage_failure(e),
            })?;
        Ok(Response::new(HashKvResponse {
            header: self.parts.core.header.at(hashed.current_revision),
            hash: hashed.hash,
            compact_revision: hashed.compact_revision,
            hash_revision: hashed.revision,
        }))
    }

    type SnapshotStream = snapshot::SnapshotStream;

    async fn snapshot(
        &self,
        request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.parts.core.admin(&request).await?;
        Ok(Response::new(snapshot::stream(&self.parts).await?))
    }

    async fn move_leader(
        &self,
        request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.parts.core.admin(&request).await?;
        let target = request.into_inner().target_id;
        Ok(Response::new(
            move_leader::move_leader(&self.parts, target).await?,
        ))
    }

    async fn downgrade(
        &self,
        _: Request<DowngradeRequest>,
    ) -> Result<Response<DowngradeResponse>, Status> {
        Err(Status::unimplemented(
            "witan does not serve Maintenance.Downgrade (one version: nothing to downgrade to)",
        ))
    }
}
