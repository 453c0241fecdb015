//! Applying auth commands (etcd's `authStore` changes). Every change to
//! users, roles or the enabled flag bumps the auth revision; issuing a
//! token does not.

use witan_proto::authpb::{Permission, Role, User, UserAddOptions};
use witan_proto::etcdserverpb::{
    AuthDisableResponse, AuthEnableResponse, AuthRoleAddResponse, AuthRoleDeleteResponse,
    AuthRoleGrantPermissionResponse, AuthRoleRevokePermissionResponse, AuthUserAddResponse,
    AuthUserChangePasswordResponse, AuthUserDeleteResponse, AuthUserGrantRoleResponse,
    AuthUserRevokeRoleResponse, AuthenticateResponse, ResponseHeader,
};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::SimpleToken;

use super::error::AuthError;
use super::store::AuthStore;
use super::{ROOT_ROLE, ROOT_USER};

/// Whether `op` is an auth command.
pub(in crate::mvcc) fn is_auth_op(op: &Op) -> bool {
    matches!(
        op,
        Op::AuthEnable(_)
            | Op::AuthDisable(_)
            | Op::UserAdd(_)
            | Op::UserDelete(_)
            | Op::UserChangePassword(_)
            | Op::UserGrantRole(_)
            | Op::UserRevokeRole(_)
            | Op::RoleAdd(_)
            | Op::RoleDelete(_)
            | Op::RoleGrantPermission(_)
            | Op::RoleRevokePermission(_)
            | Op::IssueToken(_)
    )
}

/// Applies an auth command to `store`; `None` when `op` is not one.
/// `revision` is the key-value revision (for the response header),
/// `clock_ms` the lease clock (token expiry).
pub(in crate::mvcc) fn apply(
    store: &mut AuthStore,
    op: &Op,
    revision: i64,
    clock_ms: i64,
) -> Option<Result<Outcome, AuthError>> {
    let header = Some(ResponseHeader {
        revision,
        ..ResponseHeader::default()
    });
    let outcome = match op {
        Op::AuthEnable(_) => {
            enable(store).map(|()| Outcome::AuthEnable(AuthEnableResponse { header }))
        }
        Op::AuthDisable(_) => {
            disable(store);
            Ok(Outcome::AuthDisable(AuthDisableResponse { header }))
        }
        Op::UserAdd(req) => user_add(store, &req.name, &req.hashed_password, req.options.as_ref())
            .map(|()| Outcome::UserAdd(AuthUserAddResponse { header })),
        Op::UserDelete(req) => user_delete(store, &req.name)
            .map(|()| Outcome::UserDelete(AuthUserDeleteResponse { header })),
        Op::UserChangePassword(req) => change_password(store, &req.name, &req.hashed_password)
            .map(|()| Outcome::UserChangePassword(AuthUserChangePasswordResponse { header })),
        Op::UserGrantRole(req) => grant_role(store, &req.user, &req.role)
            .map(|()| Outcome::UserGrantRole(AuthUserGrantRoleResponse { header })),
        Op::UserRevokeRole(req) => revoke_role(store, &req.name, &req.role)
            .map(|()| Outcome::UserRevokeRole(AuthUserRevokeRoleResponse { header })),
        Op::RoleAdd(req) => {
            role_add(store, &req.name).map(|()| Outcome::RoleAdd(AuthRoleAddResponse { header }))
        }
        Op::RoleDelete(req) => role_delete(store, &req.role)
            .map(|()| Outcome::RoleDelete(AuthRoleDeleteResponse { header })),
        Op::RoleGrantPermission(req) => grant_permission(store, &req.name, req.perm.as_ref())
            .map(|()| Outcome::RoleGrantPermission(AuthRoleGrantPermissionResponse { header })),
        Op::RoleRevokePermission(req) => {
            revoke_permission(store, &req.role, &req.key, &req.range_end).map(|()| {
                Outcome::RoleRevokePermission(AuthRoleRevokePermissionResponse { header })
            })
        }
        Op::IssueToken(req) => issue_token(
            store,
            &req.name,
            &req.token,
            clock_ms.saturating_add(req.ttl_ms),
        )
        .map(|()| {
            Outcome::IssueToken(AuthenticateResponse {
                header,
                token: req.token.clone(),
            })
        }),
        _ => return None,
    };
    Some(outcome)
}

fn bump(store: &mut AuthStore) {
    let data = store.data_mut();
    data.revision = data.revision.saturating_add(1);
}

fn enable(store: &mut AuthStore) -> Result<(), AuthError> {
    if store.enabled() {
        return Ok(());
    }
    store.root_ready()?;
    store.data_mut().enabled = true;
    bump(store);
    Ok(())
}

fn disable(store: &mut AuthStore) {
    if !store.enabled() {
        return;
    }
    let data = store.data_mut();
    data.enabled = false;
    // Tokens issued now would otherwise come back to life on re-enable.
    data.tokens.clear();
    bump(store);
}

fn user_add(
    store: &mut AuthStore,
    name: &str,
    hash: &str,
    options: Option<&UserAddOptions>,
) -> Result<(), AuthError> {
    if name.is_empty() {
        return Err(AuthError::UserEmpty);
    }
    if store.user(name).is_some() {
        return Err(AuthError::UserAlreadyExist);
    }
    let user = User {
        name: name.as_bytes().to_vec(),
        password: hash.as_bytes().to_vec(),
        roles: Vec::new(),
        options: options.cloned(),
    };
    store.data_mut().users.insert(name.to_string(), user);
    bump(store);
    Ok(())
}

fn user_delete(store: &mut AuthStore, name: &str) -> Result<(), AuthError> {
    if store.enabled() && name == ROOT_USER {
        return Err(AuthError::InvalidAuthMgmt);
    }
    if store.user(name).is_none() {
        return Err(AuthError::UserNotFound);
    }
    let data = store.data_mut();
    data.users.remove(name);
    data.tokens.retain(|_, t| t.name != name);
    bump(store);
    Ok(())
}

fn change_password(store: &mut AuthStore, name: &str, hash: &str) -> Result<(), AuthError> {
    let data = store.data_mut();
    let Some(user) = data.users.get_mut(name) else {
        return Err(AuthError::UserNotFound);
    };
    user.password = hash.as_bytes().to_vec();
    // Sessions opened with the old password end with it (etcd drops them).
    data.tokens.retain(|_, t| t.name != name);
    bump(store);
    Ok(())
}

fn grant_role(store: &mut AuthStore, name: &str, role: &str) -> Result<(), AuthError> {
    if store.user(name).is_none() {
        return Err(AuthError::UserNotFound);
    }
    if role != ROOT_ROLE && store.role(role).is_none() {
        return Err(AuthError::RoleNotFound);
    }
    if store.has_role(name, role) {
        return Ok(());
    }
    if let Some(user) = store.data_mut().users.get_mut(name) {
        user.roles.push(role.to_string());
        user.roles.sort();
    }
    bump(store);
    Ok(())
}

fn revoke_role(store: &mut AuthStore, name: &str, role: &str) -> Result<(), AuthError> {
    if store.enabled() && name == ROOT_USER && role == ROOT_ROLE {
        return Err(AuthError::InvalidAuthMgmt);
    }
    if store.user(name).is_none() {
        return Err(AuthError::UserNotFound);
    }
    if !store.has_role(name, role) {
        return Err(AuthError::RoleNotGranted);
    }
    if let Some(user) = store.data_mut().users.get_mut(name) {
        user.roles.retain(|r| r != role);
    }
    bump(store);
    Ok(())
}

fn role_add(store: &mut AuthStore, name: &str) -> Result<(), AuthError> {
    if name.is_empty() {
        return Err(AuthError::RoleEmpty);
    }
    if store.role(name).is_some() {
        return Err(AuthError::RoleAlreadyExist);
    }
    let role = Role {
        name: name.as_bytes().to_vec(),
        key_permission: Vec::new(),
    };
    store.data_mut().roles.insert(name.to_string(), role);
    bump(store);
    Ok(())
}

fn role_delete(store: &mut AuthStore, name: &str) -> Result<(), AuthError> {
    if store.enabled() && name == ROOT_ROLE {
        return Err(AuthError::InvalidAuthMgmt);
    }
    if store.role(name).is_none() {
        return Err(AuthError::RoleNotFound);
    }
    let data = store.data_mut();
    data.roles.remove(name);
    for user in data.users.values_mut() {
        user.roles.retain(|r| r != name);
    }
    bump(store);
    Ok(())
}

fn grant_permission(
    store: &mut AuthStore,
    name: &str,
    perm: Option<&Permission>,
) -> Result<(), AuthError> {
    if store.role(name).is_none() {
        return Err(AuthError::RoleNotFound);
    }
    let Some(perm) = perm else {
        return Err(AuthError::PermissionNotGranted);
    };
    if let Some(role) = store.data_mut().roles.get_mut(name) {
        let perms = &mut role.key_permission;
        match perms
            .iter_mut()
            .find(|p| p.key == perm.key && p.range_end == perm.range_end)
        {
            Some(existing) => existing.perm_type = perm.perm_type,
            None => {
                perms.push(perm.clone());
                perms.sort_by(|a, b| (&a.key, &a.range_end).cmp(&(&b.key, &b.range_end)));
            }
        }
    }
    bump(store);
    Ok(())
}

fn revoke_permission(
    store: &mut AuthStore,
    name: &str,
    key: &[u8],
    range_end: &[u8],
) -> Result<(), AuthError> {
    let Some(role) = store.role(name) else {
        return Err(AuthError::RoleNotFound);
    };
    if !role
        .key_permission
        .iter()
        .any(|p| p.key == key && p.range_end == range_end)
    {
        return Err(AuthError::PermissionNotGranted);
    }
    if let Some(role) = store.data_mut().roles.get_mut(name) {
        role.key_permission
            .retain(|p| !(p.key == key && p.range_end == range_end));
    }
    bump(store);
    Ok(())
}

fn issue_token(
    store: &mut AuthStore,
    name: &str,
    token: &str,
    expires_at_ms: i64,
) -> Result<(), AuthError> {
    if !store.enabled() {
        return Err(AuthError::NotEnabled);
    }
    if store.user(name).is_none() {
        return Err(AuthError::AuthFailed);
    }
    store.data_mut().tokens.insert(
        token.to_string(),
        SimpleToken {
            token: token.to_string(),
            name: name.to_string(),
            expires_at_ms,
        },
    );
    Ok(())
}
