//! The MVCC state machine: etcd's multi-version key-value semantics.
//!
//! `KvState` holds every live key at the current revision in memory (a
//! persistent ordered map, so a published state is an O(1) clone that
//! readers use without locks). Applying a command is deterministic: a
//! function of the state, the command and the stored history; no clock, no
//! randomness. Older revisions are read through the [`History`] trait, which
//! `storage` implements over sqlite.
//!
//! This module knows nothing about SQL, gRPC or raft.
//!
//! Where things are:
//! - `state`: `KvState` (live keys, revision, compaction revision);
//!   `record`: what the live map keeps per key;
//! - `apply`: one command (Put, DeleteRange, Compact), `txn`: Txn, both
//!   writing through `write::WriteTxn` (a copy of the live map, committed
//!   at the end, so a rejected command changes nothing);
//! - `view`: reads at a revision (live map, pending batch changes rolled
//!   back, or the history); `range`: Range options; `compare`: Txn compares;
//! - `validate` / `duplicates`: request checks the API layer runs before
//!   proposing; `lease`: where a lease table plugs in; `alarms`: the
//!   replicated alarm table (NOSPACE refuses writes that grow the store).
//!
//! Invariants: a command that changes nothing keeps the revision; all the
//! writes of one command share one revision, with sub-revisions in op
//! order; a rejection leaves the state and `changes` untouched.

mod alarms;
mod apply;
pub mod auth;
mod compare;
mod duplicates;
mod error;
mod key_range;
mod leases;
mod range;
mod record;
mod state;
mod txn;
mod validate;
mod view;
mod write;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use alarms::Alarms;
pub use auth::{Access, AuthError, AuthStore};
pub use error::MvccError;
pub use key_range::KeyRange;
pub use leases::{Lease, LeaseInfo, LeaseTable};
pub use state::KvState;
pub use validate::{
    check_space, check_txn_space, validate_delete_range, validate_put, validate_range,
    validate_txn, RequestError, DEFAULT_MAX_TXN_OPS,
};

use std::future::Future;

use witan_proto::mvccpb::KeyValue;

/// One key modification produced by applying a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The key after the change. For a deletion only `key` and
    /// `mod_revision` are set (etcd's tombstone); the other fields are 0.
    pub kv: KeyValue,
    /// Position of the change within its revision (etcd's sub-revision):
    /// 0, 1, 2 ... in the order the command's operations ran.
    pub sub: i64,
    /// Whether the change deleted the key.
    pub deleted: bool,
    /// The key before the change, if it existed.
    pub prev: Option<KeyValue>,
}

/// Keys of a range as of one revision, read from the stored history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeAt {
    /// Live keys in key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// How many live keys the range holds in total (ignores `limit`).
    pub count: i64,
}

/// Reading the stored history failed (an I/O or corruption problem, fatal
/// for the member).
#[derive(Debug, thiserror::Error)]
#[error("reading the key-value history failed: {0}")]
pub struct HistoryError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Read access to the persisted history of every key.
///
/// Contract: the history holds every change up to the revision of the last
/// persisted command; during `KvState::apply`, that is every change with a
/// revision lower than the first change of the batch being applied.
/// Revisions compacted away are no longer complete: callers check the
/// compaction revision first.
pub trait History: Send + Sync {
    /// The live keys of `range` as of `revision`: for each key the latest
    /// change with `mod_revision <= revision`, skipping deletions; in key
    /// order; at most `limit` keys when `limit > 0`; with the total count.
    fn range_at(
        &self,
        range: &KeyRange,
        revision: i64,
        limit: usize,
    ) -> impl Future<Output = Result<RangeAt, HistoryError>> + Send;
}
