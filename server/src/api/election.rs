//! `v3electionpb.Election`: Campaign, Proclaim, Leader, Observe, Resign, as
//! etcd serves them, by the `witan-recipes` election over this member's KV
//! core. `LeaderKey.rev`, the create revision of the leader's key, is the
//! leadership's fencing token.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use witan_proto::v3electionpb::election_server::{Election, ElectionServer};
use witan_proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest,
    ProclaimResponse, ResignRequest, ResignResponse,
};
use witan_recipes::election::{self, Leadership};

use super::permissions::{check_held_key, check_recipe, check_recipe_read};
use super::{ApiError, HeaderSource};
use crate::auth::{AuthGate, Caller};
use crate::mvcc::{AuthError, AuthStore};
use crate::recipes::LocalCore;

/// The Election service of one member.
pub struct ElectionService {
    core: LocalCore,
    header: HeaderSource,
    gate: AuthGate,
}

impl ElectionService {
    /// Elections over `core` for callers `gate` authenticates; headers
    /// filled by `header`.
    pub fn new(core: LocalCore, header: HeaderSource, gate: AuthGate) -> Self {
        ElectionService { core, header, gate }
    }

    /// Checks `request`'s caller with `check`.
    async fn allow<T>(
        &self,
        request: &Request<T>,
        check: impl FnOnce(&Caller, &AuthStore) -> Result<(), AuthError>,
    ) -> Result<(), ApiError> {
        self.gate.allow(request, check).await?;
        Ok(())
    }
}

/// The key a leadership request names (empty without one: the handler
/// refuses that with etcd's error after the check).
fn leader_key(leader: &Option<LeaderKey>) -> &[u8] {
    leader
        .as_ref()
        .map(|l| l.key.as_slice())
        .unwrap_or_default()
}

fn leadership(leader: Option<LeaderKey>) -> Result<Leadership, ApiError> {
    let leader = leader.ok_or(ApiError::MissingLeaderKey)?;
    Ok(Leadership {
        name: leader.name,
        key: leader.key,
        rev: leader.rev,
        lease: leader.lease,
    })
}

type ObserveStream = Pin<Box<dyn Stream<Item = Result<LeaderResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Election for ElectionService {
    async fn campaign(
        &self,
        request: Request<CampaignRequest>,
    ) -> Result<Response<CampaignResponse>, Status> {
        let name = &request.get_ref().name;
        self.allow(&request, |caller, auth| check_recipe(caller, auth, name))
            .await?;
        let request = request.into_inner();
        // A cancelled campaign (the future dropped) resigns: the recipe's
        // guard removes the waiting key.
        let (won, revision) =
            election::campaign(&self.core, &request.name, request.lease, request.value)
                .await
                .map_err(ApiError::from)?;
        Ok(Response::new(CampaignResponse {
            header: self.header.at(revision),
            leader: Some(LeaderKey {
                name: won.name,
                key: won.key,
                rev: won.rev,
                lease: won.lease,
            }),
        }))
    }

    async fn proclaim(
        &self,
        request: Request<ProclaimRequest>,
    ) -> Result<Response<ProclaimResponse>, Status> {
        let key = leader_key(&request.get_ref().leader);
        self.allow(&request, |caller, auth| check_held_key(caller, auth, key))
            .await?;
        let request = request.into_inner();
        let leader = leadership(request.leader)?;
        let revision = election::proclaim(&self.core, &leader, request.value)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(ProclaimResponse {
            header: self.header.at(revision),
        }))
    }

    async fn leader(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<LeaderResponse>, Status> {
        let name = &request.get_ref().name;
        self.allow(&request, |caller, auth| {
            check_recipe_read(caller, auth, name)
        })
        .await?;
        let (kv, revision) = election::leader(&self.core, &request.into_inner().name)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(LeaderResponse {
            header: self.header.at(revision),
            kv: Some(kv),
        }))
    }

    type ObserveStream = ObserveStream;

    async fn observe(
        &self,
        request: Request<LeaderRequest>,
    ) -> Result<Response<Self::ObserveStream>, Status> {
        let name = &request.get_ref().name;
        self.allow(&request, |caller, auth| {
            check_recipe_read(caller, auth, name)
        })
        .await?;
        let header = self.header.clone();
        let updates =
            election::observe(self.core.clone(), request.into_inner().name).map(move |update| {
                match update {
                    Ok((kv, revision)) => Ok(LeaderResponse {
                        header: header.at(revision),
                        kv: Some(kv),
                    }),
                    Err(e) => Err(Status::from(ApiError::from(e))),
                }
            });
        Ok(Response::new(Box::pin(updates)))
    }

    async fn resign(
        &self,
        request: Request<ResignRequest>,
    ) -> Result<Response<ResignResponse>, Status> {
        let key = leader_key(&request.get_ref().leader);
        self.allow(&request, |caller, auth| check_held_key(caller, auth, key))
            .await?;
        let leader = leadership(request.into_inner().leader)?;
        let revision = election::resign(&self.core, &leader)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(ResignResponse {
            header: self.header.at(revision),
        }))
    }
}

/// The service wrapped for tonic.
pub fn server(service: ElectionService) -> ElectionServer<ElectionService> {
    ElectionServer::new(service)
}
