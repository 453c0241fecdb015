//! `SnapshotBuilder`: builds a snapshot while apply goes on.
//!
//! `VACUUM INTO` copies `state.db` inside one read transaction, so the copy
//! is consistent; its last applied log id and membership are then read from
//! the copy's own `meta` table, which makes metadata and data agree by
//! construction.

use std::path::Path;
use std::sync::Arc;

use openraft::{RaftSnapshotBuilder, Snapshot, StorageIOError};
use sqlx::sqlite::SqlitePool;

use super::error::DbError;
use super::snapshot::{sync_file, SnapshotStore};
use super::sqlite;
use super::state_db::{self, SCHEMA_VERSION};
use crate::raft::{SnapshotMeta, StorageError, TypeConfig};

/// Builds snapshots of the state machine (openraft's
/// `RaftSnapshotBuilder`).
#[derive(Debug)]
pub struct SnapshotBuilder {
    pool: SqlitePool,
    snapshots: Arc<SnapshotStore>,
}

impl SnapshotBuilder {
    pub(crate) fn new(pool: SqlitePool, snapshots: Arc<SnapshotStore>) -> Self {
        SnapshotBuilder { pool, snapshots }
    }

    async fn build(&self) -> Result<Snapshot<TypeConfig>, DbError> {
        let tmp = self.snapshots.temp_path("build");
        let meta = match self.copy_into(&tmp).await {
            Ok(meta) => meta,
            Err(e) => {
                if let Err(rm) = tokio::fs::remove_file(&tmp).await {
                    tracing::warn!(error = %rm, path = %tmp.display(), "cannot remove a failed snapshot copy");
                }
                return Err(e);
            }
        };
        let mut snapshots = self.snapshots.lock().await;
        match snapshots.publish(tmp, meta.clone(), false).await? {
            Some(path) => Ok(Snapshot {
                meta,
                snapshot: Box::new(tokio::fs::File::open(path).await?),
            }),
            // A newer snapshot was installed meanwhile; it serves as well.
            None => snapshots
                .open_current()
                .await?
                .ok_or(DbError::Missing("the current snapshot")),
        }
    }

    /// Copies the state machine into `path` (fsynced) and returns the
    /// copy's metadata.
    async fn copy_into(&self, path: &Path) -> Result<SnapshotMeta, DbError> {
        let target = path
            .to_str()
            .ok_or_else(|| DbError::NonUtf8Path(path.to_path_buf()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await?;
        let mut conn = sqlite::open_file(path).await?;
        let loaded = async {
            sqlite::check_schema(&mut conn, SCHEMA_VERSION).await?;
            state_db::load_meta(&mut conn).await
        }
        .await;
        sqlx::Connection::close(conn).await?;
        let loaded = loaded?;
        sync_file(path).await?;
        let unique = uuid::Uuid::new_v4().simple();
        let snapshot_id = match loaded.last_applied {
            Some(id) => format!("{}-{}-{unique}", id.leader_id.term, id.index),
            None => format!("empty-{unique}"),
        };
        Ok(SnapshotMeta {
            last_log_id: loaded.last_applied,
            last_membership: loaded.membership,
            snapshot_id,
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let snapshot = self
            .build()
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        tracing::info!(meta = %snapshot.meta, "built snapshot");
        Ok(snapshot)
    }
}
