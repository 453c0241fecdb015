//! `v3lockpb.Lock`: Lock and Unlock, as etcd serves them, by the
//! `witan-recipes` lock over this member's KV core.
//!
//! Beyond etcd: waiters queue fairly (each watches only its predecessor),
//! a lock whose lease expired while waiting is refused, and the response
//! carries the lock's fencing token in the [`FENCING_TOKEN_METADATA`]
//! metadata (etcd clients ignore it).

use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use witan_proto::v3lockpb::lock_server::{Lock, LockServer};
use witan_proto::v3lockpb::{LockRequest, LockResponse, UnlockRequest, UnlockResponse};
use witan_recipes::lock;

use super::permissions::{check_held_key, check_recipe};
use super::{ApiError, HeaderSource};
use crate::auth::AuthGate;
use crate::recipes::LocalCore;

/// The response metadata key holding a Lock's fencing token (the create
/// revision of the lock key, in decimal).
pub const FENCING_TOKEN_METADATA: &str = "witan-fencing-token";

/// The Lock service of one member.
pub struct LockService {
    core: LocalCore,
    header: HeaderSource,
    gate: AuthGate,
}

impl LockService {
    /// Locks over `core` for callers `gate` authenticates; headers filled
    /// by `header`.
    pub fn new(core: LocalCore, header: HeaderSource, gate: AuthGate) -> Self {
        LockService { core, header, gate }
    }
}

#[tonic::async_trait]
impl Lock for LockService {
    async fn lock(&self, request: Request<LockRequest>) -> Result<Response<LockResponse>, Status> {
        let name = &request.get_ref().name;
        self.gate
            .allow(&request, |caller, auth| check_recipe(caller, auth, name))
            .await
            .map_err(ApiError::from)?;
        let request = request.into_inner();
        // Dropping this future (the client cancelled) removes the waiting
        // key: the recipe's guard sees to it.
        let held = lock::lock(&self.core, &request.name, request.lease)
            .await
            .map_err(ApiError::from)?;
        let mut response = Response::new(LockResponse {
            header: self.header.at(held.revision),
            key: held.key,
        });
        response
            .metadata_mut()
            .insert(FENCING_TOKEN_METADATA, MetadataValue::from(held.token.0));
        Ok(response)
    }

    async fn unlock(
        &self,
        request: Request<UnlockRequest>,
    ) -> Result<Response<UnlockResponse>, Status> {
        let key = &request.get_ref().key;
        self.gate
            .allow(&request, |caller, auth| check_held_key(caller, auth, key))
            .await
            .map_err(ApiError::from)?;
        let request = request.into_inner();
        let revision = lock::unlock(&self.core, &request.key)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(UnlockResponse {
            header: self.header.at(revision),
        }))
    }
}

/// The service wrapped for tonic.
pub fn server(service: LockService) -> LockServer<LockService> {
    LockServer::new(service)
}
