//! Fuzz targets of the auth store (bounded, inside `cargo test`; see
//! `crate::fuzzing`):
//! - permission checks against a model that tests every point where
//!   coverage can break (the request's start and each granted end inside
//!   it), over a small alphabet where gaps and touching ranges are common;
//! - random auth commands through `KvState::apply`, checking the store's
//!   invariants after each: a refused command changes nothing, every
//!   change bumps the auth revision by one, root keeps the root role while
//!   auth is on, users only hold roles that exist, tokens belong to
//!   existing users, and the stored form round-trips.

use proptest::prelude::*;
use witan_proto::authpb::permission::Type as PermType;
use witan_proto::authpb::Permission;
use witan_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGrantPermissionRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGrantRoleRequest,
    AuthUserRevokeRoleRequest, LeaseGrantRequest,
};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::{Command, IssueToken, LeaseTick};

use super::permissions::{covers, Access};
use super::{AuthStore, ROOT_ROLE, ROOT_USER};
use crate::fuzzing;
use crate::mvcc::testing::{rejection, Store};

/// Keys over a tiny alphabet (with the 0 byte, which makes "key + \0"
/// successors and "\0" range ends show up).
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(b'b')], 0..3)
}

fn perm() -> impl Strategy<Value = Permission> {
    (0..3i32, key(), key()).prop_map(|(kind, key, range_end)| Permission {
        perm_type: kind,
        key,
        range_end,
    })
}

/// `[start, end)` as etcd reads a key and range end (None: unbounded).
fn interval(key: &[u8], range_end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    let point = || {
        let mut next = key.to_vec();
        next.push(0);
        Some(next)
    };
    let end = match range_end {
        [] => point(),
        [0] => None,
        end if end <= key => point(),
        end => Some(end.to_vec()),
    };
    (key.to_vec(), end)
}

fn contains(ivl: &(Vec<u8>, Option<Vec<u8>>), point: &[u8]) -> bool {
    ivl.0.as_slice() <= point && ivl.1.as_ref().is_none_or(|end| point < end.as_slice())
}

/// The model: a range is covered when its start and every granted end
/// inside it lie in some granted interval (coverage can only break there).
fn model_covers(perms: &[Permission], access: Access, key: &[u8], range_end: &[u8]) -> bool {
    let granted: Vec<_> = perms
        .iter()
        .filter(|p| {
            matches!(
                (access, PermType::try_from(p.perm_type)),
                (_, Ok(PermType::Readwrite))
                    | (Access::Read, Ok(PermType::Read))
                    | (Access::Write, Ok(PermType::Write))
            )
        })
        .map(|p| interval(&p.key, &p.range_end))
        .collect();
    let wanted = interval(key, range_end);
    let mut points = vec![wanted.0.clone()];
    for (_, end) in &granted {
        if let Some(end) = end {
            if contains(&wanted, end) {
                points.push(end.clone());
            }
        }
    }
    // An unbounded request needs an unbounded grant past its last point.
    if wanted.1.is_none() && !granted.iter().any(|g| g.1.is_none()) {
        return false;
    }
    points
        .iter()
        .all(|p| granted.iter().any(|g| contains(g, p)))
}

#[test]
fn permission_checks_agree_with_the_point_model() {
    let input = (
        prop::collection::vec(perm(), 0..5),
        prop_oneof![Just(Access::Read), Just(Access::Write)],
        key(),
        key(),
    );
    fuzzing::run(
        "auth permission checks vs model",
        16384,
        input,
        |(perms, access, key, range_end)| {
            let got = covers(&perms, access, &key, &range_end);
            let want = model_covers(&perms, access, &key, &range_end);
            prop_assert_eq!(
                got,
                want,
                "{:?} {:?} {:?} {:?}",
                perms,
                access,
                key,
                range_end
            );
            Ok(())
        },
    );
}

const NAMES: [&str; 4] = [ROOT_USER, "alice", "bob", ""];
const ROLES: [&str; 4] = [ROOT_ROLE, "r1", "r2", ""];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(String::from)
}

fn role() -> impl Strategy<Value = String> {
    prop::sample::select(ROLES.to_vec()).prop_map(String::from)
}

fn auth_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::AuthEnable(AuthEnableRequest {})),
        Just(Op::AuthDisable(AuthDisableRequest {})),
        name().prop_map(|name| Op::UserAdd(AuthUserAddRequest {
            hashed_password: format!("hash-{name}"),
            name,
            ..Default::default()
        })),
        name().prop_map(|name| Op::UserDelete(AuthUserDeleteRequest { name })),
        name().prop_map(
            |name| Op::UserChangePassword(AuthUserChangePasswordRequest {
                name,
                hashed_password: "new".into(),
                ..Default::default()
            })
        ),
        (name(), role())
            .prop_map(|(user, role)| Op::UserGrantRole(AuthUserGrantRoleRequest { user, role })),
        (name(), role())
            .prop_map(|(name, role)| Op::UserRevokeRole(AuthUserRevokeRoleRequest { name, role })),
        role().prop_map(|name| Op::RoleAdd(AuthRoleAddRequest { name })),
        role().prop_map(|role| Op::RoleDelete(AuthRoleDeleteRequest { role })),
        (role(), prop::option::of(perm())).prop_map(|(name, perm)| Op::RoleGrantPermission(
            AuthRoleGrantPermissionRequest { name, perm }
        )),
        (role(), key(), key()).prop_map(|(role, key, range_end)| Op::RoleRevokePermission(
            AuthRoleRevokePermissionRequest {
                role,
                key,
                range_end
            }
        )),
        (name(), 0..10_000i64).prop_map(|(name, ttl_ms)| Op::IssueToken(IssueToken {
            token: format!("t-{name}-{ttl_ms}"),
            name,
            ttl_ms,
        })),
        (0..5_000u64).prop_map(|elapsed_ms| Op::LeaseTick(LeaseTick { elapsed_ms })),
    ]
}

fn check_invariants(auth: &AuthStore) -> Result<(), TestCaseError> {
    if auth.enabled() {
        prop_assert!(auth.is_root(ROOT_USER), "auth on without root: {auth:?}");
    }
    for user in auth.users() {
        for role in &user.roles {
            prop_assert!(
                role == ROOT_ROLE || auth.role(role).is_some(),
                "user holds a missing role {role}"
            );
        }
    }
    let state = auth.to_state();
    for token in &state.tokens {
        prop_assert!(auth.user(&token.name).is_some(), "orphan token {token:?}");
    }
    prop_assert_eq!(&AuthStore::from_state(state), auth);
    Ok(())
}

async fn run_ops(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut store = Store::default();
    // A lease so the lease clock ticks.
    let grant = Command {
        op: Some(Op::LeaseGrant(LeaseGrantRequest { ttl: 3600, id: 1 })),
        ..Default::default()
    };
    store.apply(grant).await;
    for op in ops {
        let before = store.state.auth().clone();
        let response = store
            .apply(Command {
                op: Some(op.clone()),
                ..Default::default()
            })
            .await;
        let after = store.state.auth();
        if rejection(&response).is_some() {
            prop_assert_eq!(&before, after, "refused {:?} changed the store", op);
        } else {
            let changes_access = !matches!(op, Op::IssueToken(_) | Op::LeaseTick(_));
            let bump = after.revision() - before.revision();
            let changed = before.to_state().users != after.to_state().users
                || before.to_state().roles != after.to_state().roles
                || before.enabled() != after.enabled();
            prop_assert!(bump <= 1, "{op:?} bumped by {bump}");
            if changed {
                prop_assert!(changes_access && bump == 1, "{op:?} changed without a bump");
            }
        }
        check_invariants(after)?;
    }
    Ok(())
}

#[test]
fn random_auth_commands_keep_the_store_consistent() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    fuzzing::run(
        "auth commands vs invariants",
        2048,
        prop::collection::vec(auth_op(), 1..40),
        |ops| rt.block_on(run_ops(ops)),
    );
}
