//! Reading a saved copy of `state.db` (the database inside a snapshot
//! file) and installing it as the state of a new member: what
//! `crate::restore` needs of storage, with the SQL kept here.

use std::path::Path;

use sqlx::Connection;

use super::error::DbError;
use super::hash;
use super::history::count_live;
use super::sqlite;
use super::state_db::{self, StateDb, META_ALARMS};
use super::state_machine::STATE_FILE;
use crate::mvcc::KeyRange;

/// What a saved state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedState {
    /// The state hash (`Maintenance.Hash` of a member at that point).
    pub hash: u32,
    /// The revision it was saved at.
    pub revision: i64,
    /// Its compaction revision.
    pub compact_revision: i64,
    /// Live keys at `revision`.
    pub keys: u64,
}

/// Checks a saved state database (sqlite's integrity check, witan's schema
/// and metadata) and describes it.
pub async fn inspect_saved_state(path: &Path) -> Result<SavedState, DbError> {
    let meta = state_db::check_snapshot_file(path, None).await?;
    let (revision, compact_revision) = meta
        .revisions
        .map_or((1, 0), |r| (r.revision, r.compact_revision));
    let mut conn = sqlite::open_file(path).await?;
    let described = async {
        let mut tx = conn.begin().await?;
        let hashed = hash::hash_state(&mut tx).await?;
        let keys = count_live(&mut *tx, &KeyRange::From(Vec::new()), revision).await?;
        tx.commit().await?;
        Ok::<_, DbError>(SavedState {
            hash: hashed.hash,
            revision,
            compact_revision,
            keys: u64::try_from(keys).unwrap_or(0),
        })
    }
    .await;
    conn.close().await?;
    described
}

/// Creates `data_dir/state.db` holding the saved state at `saved` (checked
/// with [`inspect_saved_state`]) without what tied it to its old cluster:
/// no applied log id, no membership, no alarms, no auth tokens (users,
/// roles and permissions stay). A member started on the
/// directory bootstraps a new raft log and membership on top of it.
pub async fn install_saved_state(saved: &Path, data_dir: &Path) -> Result<(), DbError> {
    let path = data_dir.join(STATE_FILE);
    let mut db = StateDb::open(&path).await?;
    db.replace_with(saved).await?;
    db.forget_cluster(&[META_ALARMS]).await?;
    db.forget_tokens().await?;
    db.close().await?;
    sqlite::sync_dir(data_dir).await
}
