//! Auth commands through `KvState::apply`: etcd's rules for enabling,
//! users, roles and permissions, the revision guard, and token expiry.

use witan_proto::authpb::permission::Type as PermType;
use witan_proto::authpb::Permission;
use witan_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserDeleteRequest, AuthUserGrantRoleRequest, AuthUserRevokeRoleRequest, LeaseGrantRequest,
};
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::{Command, IssueToken, LeaseTick};

use super::{Access, AuthError, AuthStore};
use crate::mvcc::testing::{put, rejection, Store};

fn cmd(op: Op) -> Command {
    Command {
        op: Some(op),
        ..Default::default()
    }
}

fn user_add(name: &str) -> Command {
    cmd(Op::UserAdd(AuthUserAddRequest {
        name: name.into(),
        hashed_password: format!("hash-of-{name}"),
        ..Default::default()
    }))
}

fn grant_role(user: &str, role: &str) -> Command {
    cmd(Op::UserGrantRole(AuthUserGrantRoleRequest {
        user: user.into(),
        role: role.into(),
    }))
}

fn role_add(name: &str) -> Command {
    cmd(Op::RoleAdd(AuthRoleAddRequest { name: name.into() }))
}

fn grant(role: &str, kind: PermType, key: &str, end: &str) -> Command {
    cmd(Op::RoleGrantPermission(AuthRoleGrantPermissionRequest {
        name: role.into(),
        perm: Some(Permission {
            perm_type: kind as i32,
            key: key.into(),
            range_end: end.into(),
        }),
    }))
}

fn enable() -> Command {
    cmd(Op::AuthEnable(AuthEnableRequest {}))
}

async fn ok(store: &mut Store, command: Command) {
    let resp = store.apply(command).await;
    assert_eq!(rejection(&resp), None, "{resp:?}");
}

async fn refused(store: &mut Store, command: Command) -> Kind {
    rejection(&store.apply(command).await).expect("a rejection")
}

fn auth(store: &Store) -> &AuthStore {
    store.state.auth()
}

/// root (root role), and alice with READ on /app/.
async fn with_users() -> Store {
    let mut store = Store::default();
    ok(&mut store, user_add("root")).await;
    ok(&mut store, grant_role("root", "root")).await;
    ok(&mut store, user_add("alice")).await;
    ok(&mut store, role_add("app-reader")).await;
    ok(
        &mut store,
        grant("app-reader", PermType::Read, "/app/", "/app0"),
    )
    .await;
    ok(&mut store, grant_role("alice", "app-reader")).await;
    store
}

#[tokio::test]
async fn enabling_needs_a_root_user_with_the_root_role() {
    let mut store = Store::default();
    assert_eq!(refused(&mut store, enable()).await, Kind::RootUserNotExist);
    ok(&mut store, user_add("root")).await;
    assert_eq!(refused(&mut store, enable()).await, Kind::RootRoleNotExist);
    ok(&mut store, grant_role("root", "root")).await;
    ok(&mut store, enable()).await;
    assert!(auth(&store).enabled());
    // Enabling twice is not an error (etcd).
    ok(&mut store, enable()).await;
}

#[tokio::test]
async fn permissions_follow_roles_while_auth_is_on() {
    let mut store = with_users().await;
    // Off: everything is allowed.
    assert_eq!(
        auth(&store).check("alice", b"/secret", b"", Access::Write),
        Ok(())
    );
    ok(&mut store, enable()).await;
    let a = auth(&store);
    assert_eq!(a.check("alice", b"/app/x", b"", Access::Read), Ok(()));
    assert_eq!(
        a.check("alice", b"/app/x", b"", Access::Write),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(
        a.check("alice", b"/secret/x", b"", Access::Read),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(a.check("root", b"", b"\0", Access::Write), Ok(()));
    assert_eq!(
        a.check("nobody", b"/app/x", b"", Access::Read),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(a.check_admin("alice"), Err(AuthError::PermissionDenied));
    assert_eq!(a.check_admin("root"), Ok(()));
}

#[tokio::test]
async fn root_cannot_be_locked_out_while_auth_is_on() {
    let mut store = with_users().await;
    ok(&mut store, enable()).await;
    let delete_root = cmd(Op::UserDelete(AuthUserDeleteRequest {
        name: "root".into(),
    }));
    assert_eq!(
        refused(&mut store, delete_root).await,
        Kind::InvalidAuthMgmt
    );
    let revoke = cmd(Op::UserRevokeRole(AuthUserRevokeRoleRequest {
        name: "root".into(),
        role: "root".into(),
    }));
    assert_eq!(refused(&mut store, revoke).await, Kind::InvalidAuthMgmt);
    let delete_role = cmd(Op::RoleDelete(AuthRoleDeleteRequest {
        role: "root".into(),
    }));
    assert_eq!(
        refused(&mut store, delete_role).await,
        Kind::InvalidAuthMgmt
    );
}

#[tokio::test]
async fn etcd_errors_for_missing_and_duplicate_names() {
    let mut store = with_users().await;
    assert_eq!(
        refused(&mut store, user_add("alice")).await,
        Kind::UserAlreadyExist
    );
    assert_eq!(refused(&mut store, user_add("")).await, Kind::UserEmpty);
    assert_eq!(
        refused(&mut store, role_add("app-reader")).await,
        Kind::RoleAlreadyExist
    );
    assert_eq!(refused(&mut store, role_add("")).await, Kind::RoleEmpty);
    assert_eq!(
        refused(&mut store, grant_role("bob", "app-reader")).await,
        Kind::UserNotFound
    );
    assert_eq!(
        refused(&mut store, grant_role("alice", "nope")).await,
        Kind::RoleNotFound
    );
    let revoke = cmd(Op::UserRevokeRole(AuthUserRevokeRoleRequest {
        name: "alice".into(),
        role: "other".into(),
    }));
    assert_eq!(refused(&mut store, revoke).await, Kind::RoleNotGranted);
    let revoke_perm = cmd(Op::RoleRevokePermission(AuthRoleRevokePermissionRequest {
        role: "app-reader".into(),
        key: b"/other/".to_vec(),
        range_end: Vec::new(),
    }));
    assert_eq!(
        refused(&mut store, revoke_perm).await,
        Kind::PermissionNotGranted
    );
}

#[tokio::test]
async fn deleting_a_role_takes_it_from_its_users() {
    let mut store = with_users().await;
    ok(&mut store, enable()).await;
    let delete = cmd(Op::RoleDelete(AuthRoleDeleteRequest {
        role: "app-reader".into(),
    }));
    ok(&mut store, delete).await;
    assert!(!auth(&store).has_role("alice", "app-reader"));
    assert_eq!(
        auth(&store).check("alice", b"/app/x", b"", Access::Read),
        Err(AuthError::PermissionDenied)
    );
}

#[tokio::test]
async fn a_command_checked_against_an_older_auth_store_is_refused() {
    let mut store = with_users().await;
    ok(&mut store, enable()).await;
    let checked_at = auth(&store).revision();
    let mut write = put("/app/x", "1");
    write.auth_revision = checked_at;
    ok(&mut store, write.clone()).await;
    // The permission changes while the write is in flight.
    ok(
        &mut store,
        grant("app-reader", PermType::Readwrite, "/app/", "/app0"),
    )
    .await;
    assert_eq!(refused(&mut store, write).await, Kind::AuthOldRevision);
    // The member's own commands (revision 0) are never refused.
    ok(&mut store, put("/app/x", "2")).await;
}

#[tokio::test]
async fn a_write_checked_before_auth_was_enabled_is_refused_after() {
    let mut store = with_users().await;
    let mut write = put("/secret/x", "1");
    write.auth_revision = auth(&store).revision();
    ok(&mut store, enable()).await;
    assert_eq!(refused(&mut store, write).await, Kind::AuthOldRevision);
}

#[tokio::test]
async fn tokens_expire_on_the_lease_clock_and_end_with_auth() {
    let mut store = with_users().await;
    let issue = |token: &str| {
        cmd(Op::IssueToken(IssueToken {
            name: "alice".into(),
            token: token.into(),
            ttl_ms: 5_000,
        }))
    };
    assert_eq!(refused(&mut store, issue("t0")).await, Kind::AuthNotEnabled);
    ok(&mut store, enable()).await;
    ok(&mut store, issue("t1")).await;
    let clock = store.state.leases().clock_ms();
    assert_eq!(auth(&store).token_user("t1", clock), Some("alice"));
    assert_eq!(auth(&store).token_user("t2", clock), None);
    assert_eq!(auth(&store).token_user("t1", clock + 5_000), None);
    // The clock ticks only with a lease to time; ticks prune the token.
    ok(
        &mut store,
        cmd(Op::LeaseGrant(LeaseGrantRequest { ttl: 60, id: 7 })),
    )
    .await;
    ok(
        &mut store,
        cmd(Op::LeaseTick(LeaseTick { elapsed_ms: 6_000 })),
    )
    .await;
    assert!(!auth(&store).has_tokens());
    ok(&mut store, issue("t3")).await;
    ok(&mut store, cmd(Op::AuthDisable(AuthDisableRequest {}))).await;
    assert!(!auth(&store).has_tokens());
}

#[tokio::test]
async fn the_store_survives_its_stored_form() {
    let mut store = with_users().await;
    ok(&mut store, enable()).await;
    let restored = AuthStore::from_state(auth(&store).to_state());
    assert_eq!(&restored, auth(&store));
}
