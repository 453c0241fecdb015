//! `etcdserverpb.Auth`: enabling authentication, Authenticate (a simple
//! token, replicated so every member accepts it), users and roles.
//!
//! Changes are commands through raft, stamped with the auth revision the
//! caller's rights were checked at; reads (status, get, list) are served
//! from the applied state behind the read barrier. Passwords are hashed
//! here, before proposing: the log and state.db only ever hold hashes.
//! While auth is on, every change needs the root role (etcd's rule); a
//! user may also read itself and the roles it holds.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use witan_proto::authpb::permission::Type as PermType;
use witan_proto::authpb::Permission;
use witan_proto::etcdserverpb::auth_server::{Auth, AuthServer};
use witan_proto::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthStatusRequest,
    AuthStatusResponse, AuthUserAddRequest, AuthUserAddResponse, AuthUserChangePasswordRequest,
    AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
    AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
    AuthUserListRequest, AuthUserListResponse, AuthUserRevokeRoleRequest,
    AuthUserRevokeRoleResponse, AuthenticateRequest, AuthenticateResponse,
};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Applied;
use witan_proto::raftpb::IssueToken;

use super::{ApiCore, ApiError};
use crate::auth::{hash_password, verify_password, Caller};
use crate::mvcc::auth::ROOT_ROLE;
use crate::mvcc::{AuthError, AuthStore};
use crate::storage::AppliedState;

/// The Auth service of one member.
pub struct AuthService {
    core: ApiCore,
}

impl AuthService {
    /// An Auth service over the member's write path and state.
    pub fn new(core: ApiCore) -> Self {
        AuthService { core }
    }

    /// The caller, who must hold the root role while auth is on.
    async fn admin<T>(&self, request: &Request<T>) -> Result<Caller, ApiError> {
        let (caller, state) = self.core.caller(request).await?;
        caller.check_admin(state.kv.auth())?;
        Ok(caller)
    }

    /// The applied state behind the read barrier, for the reads.
    async fn fresh(&self) -> Result<Arc<AppliedState>, ApiError> {
        self.core.readable_state(false).await
    }

    /// Proposes an auth change, then waits until this member applied it:
    /// the client's next request here (a token just issued, a put just
    /// granted) must be judged by the new store, not refused by the old.
    async fn change(&self, op: Op, caller: &Caller) -> Result<Applied, ApiError> {
        let applied = self.core.write_as(op, caller).await?;
        self.core.gate.catch_up().await;
        Ok(applied)
    }

    async fn hash(&self, password: String) -> Result<String, ApiError> {
        Ok(hash_password(password, self.core.gate.authenticator.bcrypt_cost).await?)
    }
}

/// Unwraps the applied response of one kind and fills its header.
macro_rules! answered {
    ($self:ident, $applied:expr, $kind:ident) => {
        match $applied {
            Applied::$kind(mut response) => {
                $self.core.header.fill(&mut response.header);
                Ok(Response::new(response))
            }
            _ => Err(ApiError::UnexpectedResponse(concat!(
                stringify!($kind),
                " answered with another kind"
            ))
            .into()),
        }
    };
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        request: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::AuthEnable(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, AuthEnable)
    }

    async fn auth_disable(
        &self,
        request: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::AuthDisable(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, AuthDisable)
    }

    async fn auth_status(
        &self,
        _request: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        let state = self.fresh().await?;
        let auth = state.kv.auth();
        let mut response = AuthStatusResponse {
            header: None,
            enabled: auth.enabled(),
            auth_revision: auth.revision(),
        };
        self.core.header.fill(&mut response.header);
        Ok(Response::new(response))
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        let state = self.fresh().await?;
        let auth = state.kv.auth();
        if !auth.enabled() {
            return Err(ApiError::Auth(AuthError::NotEnabled).into());
        }
        let hash = auth
            .user(&request.name)
            .filter(|user| !user.options.as_ref().is_some_and(|o| o.no_password))
            .map(|user| user.password.clone())
            .ok_or(ApiError::Auth(AuthError::AuthFailed))?;
        if !verify_password(request.password, hash).await {
            return Err(ApiError::Auth(AuthError::AuthFailed).into());
        }
        let authenticator = &self.core.gate.authenticator;
        let issue = Op::IssueToken(IssueToken {
            name: request.name,
            token: authenticator.new_token(),
            ttl_ms: authenticator.token_ttl_ms(),
        });
        // Stamped with the revision the password was checked at: a
        // password changed meanwhile makes apply refuse the token.
        let checked = Caller {
            user: None,
            revision: auth.revision(),
        };
        let applied = self.change(issue, &checked).await?;
        answered!(self, applied, IssueToken)
    }

    async fn user_add(
        &self,
        request: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let caller = self.admin(&request).await?;
        let mut request = request.into_inner();
        if request.name.is_empty() {
            return Err(ApiError::Auth(AuthError::UserEmpty).into());
        }
        let no_password = request.options.as_ref().is_some_and(|o| o.no_password);
        request.hashed_password = if no_password {
            String::new()
        } else {
            self.hash(std::mem::take(&mut request.password)).await?
        };
        request.password.clear();
        let applied = self.change(Op::UserAdd(request), &caller).await?;
        answered!(self, applied, UserAdd)
    }

    async fn user_get(
        &self,
        request: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        let (caller, _) = self.core.caller(&request).await?;
        let name = request.into_inner().name;
        let state = self.fresh().await?;
        let auth = state.kv.auth();
        if caller.name() != Some(name.as_str()) {
            caller.check_admin(auth).map_err(ApiError::from)?;
        }
        let user = auth
            .user(&name)
            .ok_or(ApiError::Auth(AuthError::UserNotFound))?;
        let mut response = AuthUserGetResponse {
            header: None,
            roles: user.roles.clone(),
        };
        self.core.header.fill(&mut response.header);
        Ok(Response::new(response))
    }

    async fn user_list(
        &self,
        request: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        let caller = self.admin(&request).await?;
        let state = self.fresh().await?;
        caller
            .check_admin(state.kv.auth())
            .map_err(ApiError::from)?;
        let mut response = AuthUserListResponse {
            header: None,
            users: names(state.kv.auth().users().map(|u| &u.name)),
        };
        self.core.header.fill(&mut response.header);
        Ok(Response::new(response))
    }

    async fn user_delete(
        &self,
        request: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::UserDelete(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, UserDelete)
    }

    async fn user_change_password(
        &self,
        request: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        // etcd 3.4: only the root role changes passwords, its own
        // included.
        let caller = self.admin(&request).await?;
        let mut request = request.into_inner();
        if self
            .core
            .state
            .current()
            .kv
            .auth()
            .user(&request.name)
            .is_none()
        {
            // Fail before spending a hash on it (apply checks again).
            return Err(ApiError::Auth(AuthError::UserNotFound).into());
        }
        request.hashed_password = self.hash(std::mem::take(&mut request.password)).await?;
        let applied = self
            .change(Op::UserChangePassword(request), &caller)
            .await?;
        answered!(self, applied, UserChangePassword)
    }

    async fn user_grant_role(
        &self,
        request: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::UserGrantRole(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, UserGrantRole)
    }

    async fn user_revoke_role(
        &self,
        request: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::UserRevokeRole(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, UserRevokeRole)
    }

    async fn role_add(
        &self,
        request: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::RoleAdd(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, RoleAdd)
    }

    async fn role_get(
        &self,
        request: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        let (caller, _) = self.core.caller(&request).await?;
        let role = request.into_inner().role;
        let state = self.fresh().await?;
        let auth = state.kv.auth();
        if !caller.name().is_some_and(|user| auth.has_role(user, &role)) {
            caller.check_admin(auth).map_err(ApiError::from)?;
        }
        let mut response = AuthRoleGetResponse {
            header: None,
            perm: role_permissions(auth, &role)?,
        };
        self.core.header.fill(&mut response.header);
        Ok(Response::new(response))
    }

    async fn role_list(
        &self,
        request: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        let caller = self.admin(&request).await?;
        let state = self.fresh().await?;
        caller
            .check_admin(state.kv.auth())
            .map_err(ApiError::from)?;
        let mut response = AuthRoleListResponse {
            header: None,
            roles: names(state.kv.auth().roles().map(|r| &r.name)),
        };
        self.core.header.fill(&mut response.header);
        Ok(Response::new(response))
    }

    async fn role_delete(
        &self,
        request: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::RoleDelete(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, RoleDelete)
    }

    async fn role_grant_permission(
        &self,
        request: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let caller = self.admin(&request).await?;
        let request = request.into_inner();
        if request.perm.is_none() {
            return Err(Status::invalid_argument("etcdserver: permission not given"));
        }
        let applied = self
            .change(Op::RoleGrantPermission(request), &caller)
            .await?;
        answered!(self, applied, RoleGrantPermission)
    }

    async fn role_revoke_permission(
        &self,
        request: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let caller = self.admin(&request).await?;
        let applied = self
            .change(Op::RoleRevokePermission(request.into_inner()), &caller)
            .await?;
        answered!(self, applied, RoleRevokePermission)
    }
}

/// Names stored as bytes, as strings.
fn names<'a>(names: impl Iterator<Item = &'a Vec<u8>>) -> Vec<String> {
    names
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

/// A role's permissions; the root role also shows that it may do
/// anything (etcd's answer), and exists even if never added.
fn role_permissions(auth: &AuthStore, role: &str) -> Result<Vec<Permission>, ApiError> {
    let stored = auth.role(role).map(|r| r.key_permission.clone());
    if role != ROOT_ROLE {
        return stored.ok_or(ApiError::Auth(AuthError::RoleNotFound));
    }
    let mut perms = stored.unwrap_or_default();
    perms.push(Permission {
        perm_type: PermType::Readwrite as i32,
        key: Vec::new(),
        range_end: vec![0],
    });
    Ok(perms)
}

/// The service wrapped for tonic.
pub fn server(service: AuthService) -> AuthServer<AuthService> {
    AuthServer::new(service)
}
