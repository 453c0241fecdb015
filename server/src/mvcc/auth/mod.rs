//! The replicated auth store (etcd's `authStore`): whether authentication
//! is on, users (password hash, roles), roles (key-range permissions), the
//! simple tokens issued, and the auth revision that every change to users,
//! roles or the enabled flag bumps.
//!
//! It changes only by applying auth commands, so every member agrees on it;
//! the API layer reads the published copy to authenticate a request and to
//! check its permissions, and stamps the command with the revision it
//! checked against. Apply refuses a command stamped with an older revision
//! than the store's (etcd's "revision of auth store is old"), so a
//! permission revoked while a write was in flight is never bypassed.
//!
//! Passwords reach this module already hashed (the slow hash runs in the
//! API layer); tokens expire on the replicated lease clock.

mod apply;
mod error;
mod permissions;
mod store;

#[cfg(test)]
mod tests;

pub use error::AuthError;
pub use permissions::Access;
pub use store::AuthStore;

pub(super) use apply::{apply, is_auth_op};

/// The user auth cannot be enabled without, and that cannot be deleted
/// while auth is on.
pub const ROOT_USER: &str = "root";
/// The role that may do everything (it needs no permissions of its own).
pub const ROOT_ROLE: &str = "root";
