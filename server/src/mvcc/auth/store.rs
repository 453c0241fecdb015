//! `AuthStore`: the replicated auth state and the questions the API layer
//! asks of it (who holds this token, may this user touch these keys).

use std::collections::BTreeMap;
use std::sync::Arc;

use witan_proto::authpb::{Role, User};
use witan_proto::raftpb::{AuthState, SimpleToken};

use super::error::AuthError;
use super::permissions::{self, Access};
use super::{ROOT_ROLE, ROOT_USER};

/// The auth state. Cloning is cheap (shared until changed), which matters
/// because the whole `KvState` is cloned on every apply call.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthStore {
    data: Arc<AuthData>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct AuthData {
    pub(super) enabled: bool,
    /// Starts at 1: a command stamped 0 is the member's own.
    pub(super) revision: u64,
    pub(super) users: BTreeMap<String, User>,
    pub(super) roles: BTreeMap<String, Role>,
    pub(super) tokens: BTreeMap<String, SimpleToken>,
}

impl Default for AuthStore {
    fn default() -> Self {
        AuthStore {
            data: Arc::new(AuthData {
                enabled: false,
                revision: 1,
                users: BTreeMap::new(),
                roles: BTreeMap::new(),
                tokens: BTreeMap::new(),
            }),
        }
    }
}

impl AuthStore {
    /// The store as `state.db` keeps it.
    pub fn from_state(state: AuthState) -> AuthStore {
        let users = state
            .users
            .into_iter()
            .map(|user| (String::from_utf8_lossy(&user.name).into_owned(), user))
            .collect();
        let roles = state
            .roles
            .into_iter()
            .map(|role| (String::from_utf8_lossy(&role.name).into_owned(), role))
            .collect();
        let tokens = state
            .tokens
            .into_iter()
            .map(|token| (token.token.clone(), token))
            .collect();
        AuthStore {
            data: Arc::new(AuthData {
                enabled: state.enabled,
                revision: state.revision.max(1),
                users,
                roles,
                tokens,
            }),
        }
    }

    /// The form `state.db` keeps.
    pub fn to_state(&self) -> AuthState {
        AuthState {
            enabled: self.data.enabled,
            revision: self.data.revision,
            users: self.data.users.values().cloned().collect(),
            roles: self.data.roles.values().cloned().collect(),
            tokens: self.data.tokens.values().cloned().collect(),
        }
    }

    /// Whether `other` is this very store, unchanged (a cheap check
    /// before persisting).
    pub fn same_as(&self, other: &AuthStore) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        self.data.enabled
    }

    /// The auth revision: bumped by every change to users, roles or the
    /// enabled flag.
    pub fn revision(&self) -> u64 {
        self.data.revision
    }

    /// User `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.data.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.data.users.values()
    }

    /// Role `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.data.roles.get(name)
    }

    /// Every role, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.data.roles.values()
    }

    /// Whether any simple token is held (the lease clock must then tick,
    /// so they expire).
    pub fn has_tokens(&self) -> bool {
        !self.data.tokens.is_empty()
    }

    /// The user a simple token was issued to, if it is known and not
    /// expired at `clock_ms` on the lease clock.
    pub fn token_user(&self, token: &str, clock_ms: i64) -> Option<&str> {
        let held = self.data.tokens.get(token)?;
        (held.expires_at_ms > clock_ms).then_some(held.name.as_str())
    }

    /// Whether `user` holds the root role.
    pub fn is_root(&self, user: &str) -> bool {
        self.user(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == ROOT_ROLE))
    }

    /// Whether `user` was granted `role`.
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.user(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// Checks that `user` may do `access` on `[key, range_end)`. Always
    /// allowed while auth is off; the root role may do anything.
    pub fn check(
        &self,
        user: &str,
        key: &[u8],
        range_end: &[u8],
        access: Access,
    ) -> Result<(), AuthError> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(found) = self.user(user) else {
            return Err(AuthError::PermissionDenied);
        };
        if found.roles.iter().any(|r| r == ROOT_ROLE) {
            return Ok(());
        }
        let perms = found
            .roles
            .iter()
            .filter_map(|role| self.role(role))
            .flat_map(|role| role.key_permission.iter());
        if permissions::covers(perms, access, key, range_end) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Checks that `user` may administer the cluster (root role). Always
    /// allowed while auth is off.
    pub fn check_admin(&self, user: &str) -> Result<(), AuthError> {
        if !self.enabled() || self.is_root(user) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Whether the root user exists with the root role (AuthEnable's
    /// precondition).
    pub(super) fn root_ready(&self) -> Result<(), AuthError> {
        if self.user(ROOT_USER).is_none() {
            return Err(AuthError::RootUserNotExist);
        }
        if !self.is_root(ROOT_USER) {
            return Err(AuthError::RootRoleNotExist);
        }
        Ok(())
    }

    /// The data, for a change (copied first if shared).
    pub(super) fn data_mut(&mut self) -> &mut AuthData {
        Arc::make_mut(&mut self.data)
    }

    /// Drops the tokens expired at `clock_ms`; copies nothing when none is.
    pub(in crate::mvcc) fn prune_tokens(&mut self, clock_ms: i64) {
        if self
            .data
            .tokens
            .values()
            .any(|t| t.expires_at_ms <= clock_ms)
        {
            self.data_mut()
                .tokens
                .retain(|_, t| t.expires_at_ms > clock_ms);
        }
    }
}
