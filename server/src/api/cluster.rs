//! `etcdserverpb.Cluster`: MemberAdd, MemberRemove, MemberUpdate,
//! MemberList and MemberPromote over `raft::membership` (which documents
//! how each maps onto openraft). Any member serves them: changes run on the
//! leader, MemberList answers from this member's view (after the read
//! barrier when `linearizable`).

use tonic::{Request, Response, Status};
use witan_proto::etcdserverpb::{
    self, cluster_server::Cluster, MemberAddRequest, MemberAddResponse, MemberListRequest,
    MemberListResponse, MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest,
    MemberRemoveResponse, MemberUpdateRequest, MemberUpdateResponse, ResponseHeader,
};
use witan_proto::raftpb::{self, change_members_request::Change, MemberInfo};

use super::{ApiCore, ApiError};
use crate::raft::membership::{MemberAdmin, MemberError};

/// The Cluster service of one member.
pub struct ClusterService {
    core: ApiCore,
    members: MemberAdmin,
}

impl ClusterService {
    /// Serves membership through `members`; `core` gives the read barrier
    /// and the response headers.
    pub fn new(core: ApiCore, members: MemberAdmin) -> Self {
        ClusterService { core, members }
    }

    fn header(&self) -> Option<ResponseHeader> {
        self.core.header.at(self.core.state.current().kv.revision())
    }

    async fn change(&self, change: Change) -> Result<Vec<etcdserverpb::Member>, ApiError> {
        let members = self.members.change(change).await?;
        Ok(to_members(members))
    }
}

/// A member as etcd reports it.
fn to_member(info: MemberInfo) -> etcdserverpb::Member {
    let node = info.node.unwrap_or_default();
    etcdserverpb::Member {
        id: info.id,
        name: node.name,
        peer_ur_ls: node.peer_urls,
        client_ur_ls: node.client_urls,
        is_learner: info.is_learner,
    }
}

fn to_members(infos: Vec<MemberInfo>) -> Vec<etcdserverpb::Member> {
    infos.into_iter().map(to_member).collect()
}

/// The service wrapped for tonic.
pub fn server(
    service: ClusterService,
) -> etcdserverpb::cluster_server::ClusterServer<ClusterService> {
    etcdserverpb::cluster_server::ClusterServer::new(service)
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        self.core.admin(&request).await?;
        let request = request.into_inner();
        let (id, members) = self
            .members
            .add(request.peer_ur_ls, request.is_learner)
            .await
            .map_err(ApiError::from)?;
        let members = to_members(members);
        let member = members.iter().find(|m| m.id == id).cloned();
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member,
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.core.admin(&request).await?;
        let id = request.into_inner().id;
        let members = self
            .change(Change::Remove(raftpb::RemoveMember { id }))
            .await?;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        self.core.admin(&request).await?;
        let request = request.into_inner();
        if request.peer_ur_ls.is_empty()
            || request
                .peer_ur_ls
                .iter()
                .any(|u| crate::config::parse_host_port(u).is_err())
        {
            return Err(ApiError::from(MemberError::BadUrls).into());
        }
        let members = self
            .change(Change::Update(raftpb::UpdateMember {
                id: request.id,
                peer_urls: request.peer_ur_ls,
            }))
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_list(
        &self,
        request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        if request.into_inner().linearizable {
            // Every membership change committed before this call is applied
            // here once the barrier passes.
            self.core.readable_state(false).await?;
        }
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: to_members(self.members.members()),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        self.core.admin(&request).await?;
        let id = request.into_inner().id;
        let members = self
            .change(Change::Promote(raftpb::PromoteMember { id }))
            .await?;
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_carry_etcds_fields() {
        let info = MemberInfo {
            id: 42,
            node: Some(raftpb::Node {
                name: "n1".into(),
                peer_urls: vec!["http://127.0.0.1:2380".into()],
                client_urls: vec!["http://127.0.0.1:2379".into()],
                pending_voter: true,
            }),
            is_learner: false,
        };
        let member = to_member(info);
        assert_eq!(member.id, 42);
        assert_eq!(member.name, "n1");
        assert_eq!(member.peer_ur_ls, vec!["http://127.0.0.1:2380"]);
        assert_eq!(member.client_ur_ls, vec!["http://127.0.0.1:2379"]);
        assert!(!member.is_learner);
        // A member added but never started: no name, no client URLs.
        let bare = to_member(MemberInfo {
            id: 7,
            node: None,
            is_learner: true,
        });
        assert_eq!(bare.name, "");
        assert!(bare.client_ur_ls.is_empty() && bare.is_learner);
    }
}
