//! `StorageMaintenance`: what the Maintenance API and the background
//! maintenance tasks (quota, compaction) ask of storage: sizes, hashes,
//! defragmentation and point-in-time copies of the state.
//!
//! It holds read pools and *weak* handles on the two writers, so it never
//! keeps a closing store alive: once raft shuts the stores down, its calls
//! fail with "writer stopped".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::sqlite::SqlitePool;
use tokio::sync::Mutex;

use super::defrag::{self, DbSize, STEP_PAGES};
use super::error::DbError;
use super::hash::{self, HashKvError, StateHash};
use super::history::SqliteHistory;
use super::log_store::{LogStore, LogVacuumHandle};
use super::snapshot::{sync_file, SnapshotStore};
use super::state_machine::StateMachineStore;
use super::state_writer::VacuumHandle;

/// Sizes of the member's two databases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageSizes {
    /// `state.db`: the keys, their history and the leases (what etcd's
    /// backend database holds; the quota applies to it).
    pub state: DbSize,
    /// `raft-log.db`: the raft log (etcd keeps it in its WAL files).
    pub log: DbSize,
}

impl StorageSizes {
    /// Both databases together (what Status reports).
    pub fn total(&self) -> DbSize {
        self.state.plus(self.log)
    }
}

/// What a defragment did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragReport {
    /// Sizes before.
    pub before: StorageSizes,
    /// Sizes after.
    pub after: StorageSizes,
    /// Steps run (each one short pause of a writer).
    pub steps: u32,
}

/// A point-in-time copy of `state.db` in a temporary file, removed when
/// dropped.
#[derive(Debug)]
pub struct StateCopy {
    path: PathBuf,
    len: u64,
}

impl StateCopy {
    /// The copy's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never, for a valid copy).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for StateCopy {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a state copy");
            }
            _ => {}
        }
    }
}

/// Maintenance access to a member's storage; cheap to clone.
#[derive(Debug, Clone)]
pub struct StorageMaintenance {
    history: SqliteHistory,
    state_vacuum: VacuumHandle,
    log_pool: SqlitePool,
    log_vacuum: LogVacuumHandle,
    snapshots: Arc<SnapshotStore>,
    /// One defragment at a time: two would only interleave their steps.
    defragmenting: Arc<Mutex<()>>,
}

impl StorageMaintenance {
    /// Maintenance access to the stores `storage::open` returned; call
    /// before handing them to raft.
    pub fn new(log: &LogStore, state: &StateMachineStore) -> Self {
        let (log_pool, log_vacuum) = log.maintenance_parts();
        let (history, state_vacuum, snapshots) = state.maintenance_parts();
        StorageMaintenance {
            history,
            state_vacuum,
            log_pool,
            log_vacuum,
            snapshots,
            defragmenting: Arc::default(),
        }
    }

    /// The current sizes of both databases.
    pub async fn sizes(&self) -> Result<StorageSizes, DbError> {
        Ok(StorageSizes {
            state: defrag::db_size(self.history.pool()).await?,
            log: defrag::db_size(&self.log_pool).await?,
        })
    }

    /// etcd's Hash over the stored state once it holds `revision` (the
    /// caller's current revision).
    pub async fn hash(&self, revision: i64) -> Result<StateHash, DbError> {
        self.history.persisted_through(revision).await?;
        let mut tx = self.history.pool().begin().await?;
        let hashed = hash::hash_state(&mut tx).await?;
        tx.commit().await?;
        Ok(hashed)
    }

    /// etcd's HashKV at `revision` (0: the stored current revision), once
    /// the file holds `current` (the caller's current revision).
    pub async fn hash_kv(&self, revision: i64, current: i64) -> Result<StateHash, HashKvError> {
        self.history.persisted_through(current).await?;
        let mut tx = self.history.pool().begin().await.map_err(DbError::from)?;
        let hashed = hash::hash_kv(&mut tx, revision).await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(hashed)
    }

    /// Returns the free pages of both databases to the file system, a few
    /// at a time between writes (see `defrag` for why and how), then
    /// checkpoints their WAL files.
    pub async fn defragment(&self) -> Result<DefragReport, DbError> {
        let _one = self.defragmenting.lock().await;
        let before = self.sizes().await?;
        let mut steps = 0;
        let mut last = i64::MAX;
        loop {
            steps += 1;
            let free = self.state_vacuum.step(STEP_PAGES).await?.free_pages;
            // Done, or no progress (writes freeing pages as fast): stop.
            if free <= 0 || free >= last {
                break;
            }
            last = free;
        }
        let mut last = i64::MAX;
        loop {
            steps += 1;
            let free = self.log_vacuum.step(STEP_PAGES).await?.free_pages;
            if free <= 0 || free >= last {
                break;
            }
            last = free;
        }
        self.state_vacuum.step(0).await?;
        self.log_vacuum.step(0).await?;
        let after = self.sizes().await?;
        tracing::info!(?before, ?after, steps, "defragmented");
        Ok(DefragReport {
            before,
            after,
            steps,
        })
    }

    /// A consistent copy of `state.db` holding at least `revision`, taken
    /// in one read transaction (`VACUUM INTO`) while writes go on.
    pub async fn copy_state(&self, revision: i64) -> Result<StateCopy, DbError> {
        self.history.persisted_through(revision).await?;
        let path = self.snapshots.temp_path("save");
        let target = path
            .to_str()
            .ok_or_else(|| DbError::NonUtf8Path(path.clone()))?
            .to_string();
        // From here on the guard removes the file, even on failure.
        let mut copy = StateCopy { path, len: 0 };
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(self.history.pool())
            .await?;
        sync_file(&copy.path).await?;
        copy.len = tokio::fs::metadata(&copy.path).await?.len();
        Ok(copy)
    }
}
