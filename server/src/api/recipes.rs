//! `witan.recipes.v1`: Barrier, DoubleBarrier, Semaphore and RwLock, by the
//! `witan-recipes` crate over this member's KV core. One service value
//! serves all four (each call is stateless: the state is in the keys).

use tonic::{Request, Response, Status};
use witan_proto::recipespb::barrier_server::{Barrier, BarrierServer};
use witan_proto::recipespb::double_barrier_server::{DoubleBarrier, DoubleBarrierServer};
use witan_proto::recipespb::rw_lock_server::{RwLock, RwLockServer};
use witan_proto::recipespb::semaphore_server::{Semaphore, SemaphoreServer};
use witan_proto::recipespb::{
    BarrierHoldRequest, BarrierHoldResponse, BarrierReleaseRequest, BarrierReleaseResponse,
    BarrierWaitRequest, BarrierWaitResponse, DoubleBarrierEnterRequest, DoubleBarrierEnterResponse,
    DoubleBarrierLeaveRequest, DoubleBarrierLeaveResponse, RwLockRequest, RwLockResponse,
    RwUnlockRequest, RwUnlockResponse, SemaphoreAcquireRequest, SemaphoreAcquireResponse,
    SemaphoreReleaseRequest, SemaphoreReleaseResponse,
};
use witan_recipes::{barrier, double_barrier, rwlock, semaphore, Held, RecipeError};

use super::permissions::{check_held_key, check_recipe};
use super::{ApiError, HeaderSource};
use crate::auth::AuthGate;
use crate::recipes::LocalCore;

/// witan's own recipe services on one member.
#[derive(Clone)]
pub struct RecipesService {
    core: LocalCore,
    header: HeaderSource,
    gate: AuthGate,
}

impl RecipesService {
    /// Recipes over `core` for callers `gate` authenticates; headers
    /// filled by `header`.
    pub fn new(core: LocalCore, header: HeaderSource, gate: AuthGate) -> Self {
        RecipesService { core, header, gate }
    }

    /// Checks that the caller may use the recipe `name` (its key and the
    /// keys under `name/`).
    async fn allow_name<T>(&self, request: &Request<T>, name: &[u8]) -> Result<(), ApiError> {
        self.gate
            .allow(request, |caller, auth| check_recipe(caller, auth, name))
            .await?;
        Ok(())
    }

    /// Checks that the caller may release the held `key`.
    async fn allow_key<T>(&self, request: &Request<T>, key: &[u8]) -> Result<(), ApiError> {
        self.gate
            .allow(request, |caller, auth| check_held_key(caller, auth, key))
            .await?;
        Ok(())
    }

    fn rw_response(
        &self,
        held: Result<Held, RecipeError>,
    ) -> Result<Response<RwLockResponse>, Status> {
        let held = held.map_err(ApiError::from)?;
        Ok(Response::new(RwLockResponse {
            header: self.header.at(held.revision),
            key: held.key,
            token: held.token.0,
        }))
    }
}

#[tonic::async_trait]
impl Barrier for RecipesService {
    async fn hold(
        &self,
        request: Request<BarrierHoldRequest>,
    ) -> Result<Response<BarrierHoldResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        let held = barrier::hold(&self.core, &request.name, request.lease)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(BarrierHoldResponse {
            header: self.header.at(held.revision),
            key: held.key,
        }))
    }

    async fn release(
        &self,
        request: Request<BarrierReleaseRequest>,
    ) -> Result<Response<BarrierReleaseResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let revision = barrier::release(&self.core, &request.into_inner().name)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(BarrierReleaseResponse {
            header: self.header.at(revision),
        }))
    }

    async fn wait(
        &self,
        request: Request<BarrierWaitRequest>,
    ) -> Result<Response<BarrierWaitResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let revision = barrier::wait(&self.core, &request.into_inner().name)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(BarrierWaitResponse {
            header: self.header.at(revision),
        }))
    }
}

#[tonic::async_trait]
impl DoubleBarrier for RecipesService {
    async fn enter(
        &self,
        request: Request<DoubleBarrierEnterRequest>,
    ) -> Result<Response<DoubleBarrierEnterResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        let held = double_barrier::enter(&self.core, &request.name, request.count, request.lease)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(DoubleBarrierEnterResponse {
            header: self.header.at(held.revision),
            key: held.key,
        }))
    }

    async fn leave(
        &self,
        request: Request<DoubleBarrierLeaveRequest>,
    ) -> Result<Response<DoubleBarrierLeaveResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        let revision = double_barrier::leave(&self.core, &request.name, request.lease)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(DoubleBarrierLeaveResponse {
            header: self.header.at(revision),
        }))
    }
}

#[tonic::async_trait]
impl Semaphore for RecipesService {
    async fn acquire(
        &self,
        request: Request<SemaphoreAcquireRequest>,
    ) -> Result<Response<SemaphoreAcquireResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        let held = semaphore::acquire(&self.core, &request.name, request.permits, request.lease)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(SemaphoreAcquireResponse {
            header: self.header.at(held.revision),
            key: held.key,
            token: held.token.0,
        }))
    }

    async fn release(
        &self,
        request: Request<SemaphoreReleaseRequest>,
    ) -> Result<Response<SemaphoreReleaseResponse>, Status> {
        self.allow_key(&request, &request.get_ref().key).await?;
        let revision = semaphore::release(&self.core, &request.into_inner().key)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(SemaphoreReleaseResponse {
            header: self.header.at(revision),
        }))
    }
}

#[tonic::async_trait]
impl RwLock for RecipesService {
    async fn read_lock(
        &self,
        request: Request<RwLockRequest>,
    ) -> Result<Response<RwLockResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        self.rw_response(rwlock::read_lock(&self.core, &request.name, request.lease).await)
    }

    async fn write_lock(
        &self,
        request: Request<RwLockRequest>,
    ) -> Result<Response<RwLockResponse>, Status> {
        self.allow_name(&request, &request.get_ref().name).await?;
        let request = request.into_inner();
        self.rw_response(rwlock::write_lock(&self.core, &request.name, request.lease).await)
    }

    async fn unlock(
        &self,
        request: Request<RwUnlockRequest>,
    ) -> Result<Response<RwUnlockResponse>, Status> {
        self.allow_key(&request, &request.get_ref().key).await?;
        let revision = rwlock::unlock(&self.core, &request.into_inner().key)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(RwUnlockResponse {
            header: self.header.at(revision),
        }))
    }
}

/// The four services, wrapped for tonic.
pub struct RecipeServers {
    /// `witan.recipes.v1.Barrier`.
    pub barrier: BarrierServer<RecipesService>,
    /// `witan.recipes.v1.DoubleBarrier`.
    pub double_barrier: DoubleBarrierServer<RecipesService>,
    /// `witan.recipes.v1.Semaphore`.
    pub semaphore: SemaphoreServer<RecipesService>,
    /// `witan.recipes.v1.RwLock`.
    pub rw_lock: RwLockServer<RecipesService>,
}

/// The services of `service`, wrapped for tonic.
pub fn servers(service: RecipesService) -> RecipeServers {
    RecipeServers {
        barrier: BarrierServer::new(service.clone()),
        double_barrier: DoubleBarrierServer::new(service.clone()),
        semaphore: SemaphoreServer::new(service.clone()),
        rw_lock: RwLockServer::new(service),
    }
}
