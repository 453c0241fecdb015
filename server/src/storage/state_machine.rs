//! `StateMachineStore`: openraft's state machine over `state.db` and the
//! MVCC key-value state.
//!
//! Apply runs each command through `mvcc::KvState`, publishes the new state
//! to readers, and queues all changes of the call, the last applied log id,
//! the membership and the revisions for the background writer
//! (`state_writer`), which writes them in one transaction (`state_db`).
//! `state.db` may be behind what was applied (and is not fsynced per
//! commit): after a crash or power loss openraft re-applies the missing
//! entries from the raft log (or, when they were purged, `open` first
//! installs the snapshot that covers them).

use std::path::Path;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, Snapshot, StorageIOError};
use tokio::sync::{broadcast, watch};

use super::error::{DbError, StorageOpenError};
use super::history::SqliteHistory;
use super::reader::{AppliedChanges, AppliedState, StateReader};
use super::snapshot::SnapshotStore;
use super::snapshot_builder::SnapshotBuilder;
use super::sqlite;
use super::state_db::{self, AppliedBatch, Revisions, StateDb};
use super::state_writer::{StateWriter, VacuumHandle};
use crate::mvcc::{KvState, Lease};
use crate::raft::{
    Entry, EntryResponse, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The state machine database's file name in the data directory.
pub(crate) const STATE_FILE: &str = "state.db";
/// The snapshot directory's name in the data directory.
pub(crate) const SNAPSHOT_DIR: &str = "snapshots";

/// Read connections for API reads, apply's history reads and snapshot
/// copies.
const READ_CONNECTIONS: u32 = 4;

/// The replicated state machine of this member (openraft's
/// `RaftStateMachine`).
#[derive(Debug)]
pub struct StateMachineStore {
    writer: StateWriter,
    history: SqliteHistory,
    kv: KvState,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    published: watch::Sender<Arc<AppliedState>>,
    feed: broadcast::Sender<Arc<AppliedChanges>>,
    snapshots: Arc<SnapshotStore>,
}

/// Apply calls whose changes the feed holds for receivers that fall behind;
/// past this they catch up from the history instead.
const FEED_CAPACITY: usize = 1024;

impl StateMachineStore {
    /// Opens the state machine in `data_dir`, recovering from the current
    /// snapshot if it is ahead of `state.db`.
    pub(crate) async fn open(data_dir: &Path) -> Result<Self, StorageOpenError> {
        let path = data_dir.join(STATE_FILE);
        let snapshot_dir = data_dir.join(SNAPSHOT_DIR);
        let snapshots = SnapshotStore::open(&snapshot_dir).await.map_err(|source| {
            StorageOpenError::Snapshots {
                path: snapshot_dir,
                source,
            }
        })?;
        Self::open_with(&path, snapshots)
            .await
            .map_err(|source| StorageOpenError::StateMachine { path, source })
    }

    async fn open_with(path: &Path, snapshots: SnapshotStore) -> Result<Self, DbError> {
        let mut db = StateDb::open(path).await?;
        let mut meta = db.load_meta().await?;
        {
            let current = snapshots.lock().await;
            if let Some(snapshot) = current.current() {
                if snapshot.meta.last_log_id > meta.last_applied {
                    tracing::warn!(
                        snapshot = %snapshot.meta,
                        last_applied = ?meta.last_applied,
                        "the state machine is behind its snapshot (lost writes after a power \
                         loss?): installing the snapshot"
                    );
                    state_db::check_snapshot_file(&snapshot.data, Some(snapshot.meta.last_log_id))
                        .await?;
                    db.replace_with(&snapshot.data).await?;
                    meta = db.load_meta().await?;
                }
            }
        }
        let kv = db.load_kv(&meta).await?;
        tracing::info!(
            last_applied = ?meta.last_applied,
            revision = kv.revision(),
            compact_revision = kv.compact_revision(),
            "opened state machine"
        );
        let pool = sqlite::open_read_pool(path, READ_CONNECTIONS).await?;
        let (published, _) = watch::channel(Arc::new(AppliedState {
            last_applied: meta.last_applied,
            kv: kv.clone(),
        }));
        let (writer, persisted) = StateWriter::spawn(db, kv.revision());
        Ok(StateMachineStore {
            writer,
            history: SqliteHistory::new(pool, persisted),
            kv,
            last_applied: meta.last_applied,
            membership: meta.membership,
            published,
            feed: broadcast::channel(FEED_CAPACITY).0,
            snapshots: Arc::new(snapshots),
        })
    }

    /// A read handle for API handlers.
    pub fn reader(&self) -> StateReader {
        StateReader::new(
            self.published.subscribe(),
            self.feed.clone(),
            self.history.clone(),
        )
    }

    /// What `StorageMaintenance` needs: the history (read pool and the
    /// persisted revision), defragment steps on the writer, the snapshot
    /// directory (for temporary copies).
    pub(crate) fn maintenance_parts(&self) -> (SqliteHistory, VacuumHandle, Arc<SnapshotStore>) {
        (
            self.history.clone(),
            self.writer.vacuum_handle(),
            Arc::clone(&self.snapshots),
        )
    }

    /// Closes the database files, waiting until sqlite released them.
    /// Readers from [`Self::reader`] fail afterwards. (Dropping the store
    /// also closes the files, in the background.)
    pub async fn close(self) -> Result<(), DbError> {
        self.history.pool().close().await;
        self.writer.close().await
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(AppliedState {
            last_applied: self.last_applied,
            kv: self.kv.clone(),
        }));
    }

    /// Sends the changes of one apply (or a jump) to the feed, after the
    /// state including them is published. No receiver is not an error.
    fn announce(&self, changes: Arc<AppliedChanges>) {
        if changes.revision != changes.prev_revision {
            let _ = self.feed.send(changes);
        }
    }

    async fn install(&mut self, meta: &SnapshotMeta, file: tokio::fs::File) -> Result<(), DbError> {
        let mut snapshots = self.snapshots.lock().await;
        let received = snapshots.take_received(file).await?;
        if let Err(e) = state_db::check_snapshot_file(&received, Some(meta.last_log_id)).await {
            if let Err(rm) = tokio::fs::remove_file(&received).await {
                tracing::warn!(error = %rm, "cannot remove a rejected snapshot file");
            }
            return Err(e);
        }
        // Saved first: if the process dies before the state is replaced,
        // the next start installs it from here.
        let path = snapshots
            .publish(received, meta.clone(), true)
            .await?
            .ok_or(DbError::Missing("the installed snapshot"))?;
        let (loaded, kv) = self.writer.replace(path).await?;
        drop(snapshots);

        let prev_revision = self.kv.revision();
        self.kv = kv;
        self.last_applied = loaded.last_applied;
        self.membership = loaded.membership;
        self.publish();
        // A jump: feed receivers catch up on what it skipped from the history.
        self.announce(Arc::new(AppliedChanges {
            prev_revision,
            revision: self.kv.revision(),
            changes: Vec::new(),
        }));
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<EntryResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let _apply = crate::metrics::APPLY.time();
        // Applied to a copy (O(1)), so a failure leaves the published state
        // untouched.
        let mut kv = self.kv.clone();
        let mut changes = Vec::new();
        let mut responses = Vec::new();
        let mut last_applied = self.last_applied;
        let mut membership = None;
        for entry in entries {
            let log_id = entry.log_id;
            last_applied = Some(log_id);
            match entry.payload {
                EntryPayload::Blank => responses.push(EntryResponse::default()),
                EntryPayload::Normal(batch) => {
                    let mut out = Vec::with_capacity(batch.commands.len());
                    for cmd in &batch.commands {
                        let response = kv
                            .apply(cmd, &self.history, &mut changes)
                            .await
                            .map_err(|e| StorageError::from(StorageIOError::apply(log_id, &e)))?;
                        out.push(response);
                    }
                    responses.push(EntryResponse(out));
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(log_id), m));
                    responses.push(EntryResponse::default());
                }
            }
        }
        if responses.is_empty() {
            return Ok(responses);
        }
        let compact_to =
            (kv.compact_revision() > self.kv.compact_revision()).then(|| kv.compact_revision());
        let prev_revision = self.kv.revision();
        let changes = Arc::new(AppliedChanges {
            prev_revision,
            revision: kv.revision(),
            changes,
        });
        let batch = AppliedBatch {
            changes: Arc::clone(&changes),
            last_applied,
            membership: membership
                .clone()
                .unwrap_or_else(|| self.membership.clone()),
            revisions: Revisions {
                revision: kv.revision(),
                compact_revision: kv.compact_revision(),
            },
            compact_to,
            leases: lease_changes(&self.kv, &kv),
            lease_clock_ms: kv.leases().clock_ms(),
            alarms: (kv.alarms() != self.kv.alarms()).then(|| kv.alarms().clone()),
            auth: (!kv.auth().same_as(self.kv.auth())).then(|| kv.auth().clone()),
        };
        self.writer
            .write(batch)
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_state_machine(&e)))?;
        self.kv = kv;
        self.last_applied = last_applied;
        if let Some(m) = membership {
            self.membership = m;
        }
        self.publish();
        self.announce(changes);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The snapshot is a copy of the file: let it hold everything
        // applied so far. (If the writer failed, the copy is older, which
        // is still a consistent snapshot; the next apply stops the member.)
        if let Err(e) = self.writer.flush().await {
            tracing::warn!(error = %e, "snapshot taken without the latest applied changes");
        }
        SnapshotBuilder::new(self.history.pool().clone(), Arc::clone(&self.snapshots))
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let file = self
            .snapshots
            .lock()
            .await
            .begin_receiving()
            .await
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        tracing::info!(%meta, "installing snapshot");
        self.install(meta, *snapshot).await.map_err(|e| {
            StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e))
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        self.snapshots
            .lock()
            .await
            .open_current()
            .await
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))
    }
}

#[cfg(test)]
#[path = "state_machine_tests.rs"]
mod tests;

/// The leases `after` created, changed or removed relative to `before`
/// (a diff of persistent maps: proportional to what changed).
fn lease_changes(before: &KvState, after: &KvState) -> Vec<(i64, Option<Lease>)> {
    use imbl::ordmap::DiffItem;
    before
        .leases()
        .leases()
        .diff(after.leases().leases())
        .map(|item| match item {
            DiffItem::Add(id, lease)
            | DiffItem::Update {
                new: (id, lease), ..
            } => (*id, Some(*lease)),
            DiffItem::Remove(id, _) => (*id, None),
        })
        .collect()
}
