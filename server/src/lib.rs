//! The witan node: etcd's v3 API over a Raft-replicated, multi-version
//! key-value store.
//!
//! A request flows one way: `api` (validate, convert) → `raft` (propose,
//! replicate) → `storage` (log, fsync) → `mvcc` (apply) → back to the
//! waiting api call; `watch` follows what was applied (the change feed and
//! the stored history) and serves it to watchers on every member. Nothing
//! below `api` knows about gRPC; nothing outside `storage` knows about SQL.

pub mod api;
pub mod auth;
pub mod cli;
pub mod compaction;
pub mod config;
#[cfg(test)]
mod fuzzing;
pub mod gateway;
pub mod h2_authority;
pub mod lease;
pub mod metrics;
pub mod mvcc;
pub mod node;
pub mod quota;
pub mod raft;
pub mod recipes;
pub mod restore;
pub mod storage;
pub mod tls;
pub mod watch;
