//! `LogStore`: openraft's raft log and vote, in `raft-log.db`.
//!
//! Layout: `raft_entries` holds one row per entry keyed by index (with its
//! term and leader for inspection) and the entry as a protobuf
//! `witan.raft.v1.Entry`, the on-disk format; `meta` holds the vote, the
//! committed log id, the last purged log id and the schema version.
//!
//! Durability: the file runs with `synchronous=FULL`; an append is
//! acknowledged to openraft only after the transaction holding it committed
//! (fsync), see `log_writer`. Changes are visible to readers at once through
//! the in-memory tail (`log_cache`).

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, StorageIOError};
use prost::Message;
use sqlx::sqlite::SqliteConnection;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use witan_proto::raftpb;

use super::defrag::VacuumStep;
use super::error::DbError;
use super::log_cache::{CacheLimits, LogCache};
use super::log_reader::{decode_entry, LogReader, LogShared};
use super::log_writer::{self, EntryRow, LogOp, META_COMMITTED, META_LAST_PURGED, META_VOTE};
use super::sqlite::{self, Durability};
use crate::raft::convert::{entry_to_pb, log_id_from_pb, vote_from_pb};
use crate::raft::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Version of the raft log's on-disk format.
const SCHEMA_VERSION: i64 = 1;

const TABLES: &[&str] = &["CREATE TABLE IF NOT EXISTS raft_entries (
        log_index INTEGER PRIMARY KEY NOT NULL,
        term INTEGER NOT NULL,
        leader_node INTEGER NOT NULL,
        entry BLOB NOT NULL)"];

/// Read connections for replication tasks reading behind the cache.
const READ_CONNECTIONS: u32 = 2;

/// The raft log and vote of this member (openraft's `RaftLogStorage`).
pub struct LogStore {
    shared: Arc<LogShared>,
    writer: mpsc::Sender<LogOp>,
    writer_task: JoinHandle<()>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// Number of the next append (see `log_cache` for why appends are
    /// numbered).
    next_seq: u64,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("vote", &self.vote)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (creating if missing) the raft log in `path`.
    pub(crate) async fn open(path: &Path, limits: CacheLimits) -> Result<Self, DbError> {
        let mut conn = sqlite::open_writer(path, Durability::Full).await?;
        sqlite::ensure_schema(&mut conn, SCHEMA_VERSION, TABLES).await?;

        let vote = match sqlite::meta_blob(&mut conn, META_VOTE).await? {
            Some(blob) => Some(vote_from_pb(&raftpb::Vote::decode(blob.as_slice())?)),
            None => None,
        };
        let committed = load_log_id(&mut conn, META_COMMITTED).await?;
        let last_purged = load_log_id(&mut conn, META_LAST_PURGED).await?;
        let last_entry =
            sqlx::query("SELECT entry FROM raft_entries ORDER BY log_index DESC LIMIT 1")
                .fetch_optional(&mut conn)
                .await?;
        let last_log_id = match last_entry {
            Some(row) => Some(decode_entry(row.try_get(0)?)?.log_id),
            None => last_purged,
        };
        tracing::info!(
            ?vote,
            ?committed,
            ?last_purged,
            ?last_log_id,
            "opened raft log"
        );

        let pool = sqlite::open_read_pool(path, READ_CONNECTIONS).await?;
        let shared = Arc::new(LogShared::new(
            LogCache::new(limits, last_purged, last_log_id),
            pool,
        ));
        let (writer, writer_task) = log_writer::spawn(conn, Arc::clone(&shared));
        Ok(LogStore {
            shared,
            writer,
            writer_task,
            vote,
            committed,
            next_seq: 1,
        })
    }

    /// What maintenance needs of the raft log: its read pool (for sizes)
    /// and a way to queue defragment steps that does not keep the writer
    /// alive.
    pub(crate) fn maintenance_parts(&self) -> (sqlx::SqlitePool, LogVacuumHandle) {
        (
            self.shared.pool().clone(),
            LogVacuumHandle(self.writer.downgrade()),
        )
    }

    /// Waits until every write accepted so far is on disk.
    pub async fn sync(&self) -> Result<(), StorageError> {
        self.sync_inner()
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    /// Writes what is queued, then closes the database file, waiting until
    /// sqlite released it. Readers from `get_log_reader` fail afterwards.
    /// (Dropping the store also closes the file, in the background.)
    pub async fn close(self) -> Result<(), StorageError> {
        let synced = self.sync().await;
        let LogStore {
            shared,
            writer,
            writer_task,
            ..
        } = self;
        drop(writer);
        if let Err(e) = writer_task.await {
            tracing::warn!(error = %e, "the raft log writer task failed");
        }
        shared.close().await;
        synced
    }

    async fn sync_inner(&self) -> Result<(), DbError> {
        let (tx, rx) = oneshot::channel();
        self.queue(LogOp::Sync(tx)).await?;
        rx.await.map_err(|_| DbError::WriterStopped)?
    }

    async fn queue(&self, op: LogOp) -> Result<(), DbError> {
        self.writer
            .send(op)
            .await
            .map_err(|_| DbError::WriterStopped)
    }

    async fn truncate_inner(&mut self, log_id: LogId) -> Result<(), DbError> {
        let lookup = self.shared.lock().truncate(log_id.index);
        if let Some(below) = lookup {
            // Entries below the cache are on disk (and no queued write
            // touches them: they are above the committed index, which bounds
            // purges).
            let purged = self.shared.lock().last_purged();
            let id = match self.shared.last_log_id_below(below, purged).await? {
                Some(id) => Some(id),
                None => purged,
            };
            self.shared.lock().set_last_log_id(id);
        }
        self.queue(LogOp::Truncate { from: log_id.index }).await
    }

    async fn append_inner<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), DbError>
    where
        I: IntoIterator<Item = Entry>,
    {
        let mut rows = Vec::new();
        let mut cached = Vec::new();
        // Entries at or below the last purged index are committed and
        // already in a snapshot; raft's log matching makes them equal to
        // what was purged, so there is nothing to write. (openraft's
        // conformance suite appends such entries after a purge.)
        let purged = self.shared.lock().last_purged().map(|p| p.index);
        for entry in entries {
            if purged.is_some_and(|p| entry.log_id.index <= p) {
                tracing::debug!(log_id = %entry.log_id, "skipping an append of a purged entry");
                continue;
            }
            let row = EntryRow::encode(&entry_to_pb(&entry), &entry.log_id)?;
            cached.push((entry, row.size()));
            rows.push(row);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.shared.lock().append(cached, seq)?;
        self.queue(LogOp::Append {
            rows,
            seq,
            callback,
        })
        .await
    }
}

async fn load_log_id(conn: &mut SqliteConnection, name: &str) -> Result<Option<LogId>, DbError> {
    match sqlite::meta_blob(conn, name).await? {
        Some(blob) => Ok(Some(log_id_from_pb(&raftpb::LogId::decode(
            blob.as_slice(),
        )?))),
        None => Ok(None),
    }
}

fn write_error(e: DbError) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.shared
            .read(range, None)
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let cache = self.shared.lock();
        Ok(LogState {
            last_purged_log_id: cache.last_purged(),
            last_log_id: cache.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader::new(Arc::clone(&self.shared))
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let saved = async {
            self.queue(LogOp::SaveVote(*vote)).await?;
            self.sync_inner().await
        };
        saved.await.map_err(|e| {
            StorageError::from(StorageIOError::new(
                ErrorSubject::Vote,
                ErrorVerb::Write,
                &e,
            ))
        })?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not waited for: the committed id only saves re-applying entries
        // after a restart, and it is written in order with the log.
        self.committed = committed;
        self.queue(LogOp::SaveCommitted(committed))
            .await
            .map_err(write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_inner(entries, callback)
            .await
            .map_err(write_error)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the raft log");
        self.truncate_inner(log_id).await.map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the raft log");
        self.shared.lock().purge(log_id);
        self.queue(LogOp::Purge { upto: log_id })
            .await
            .map_err(write_error)
    }
}

#[cfg(test)]
#[path = "log_store_tests.rs"]
mod tests;

/// Queues defragment steps on the raft log's writer (see `defrag`).
#[derive(Debug, Clone)]
pub(crate) struct LogVacuumHandle(mpsc::WeakSender<LogOp>);

impl LogVacuumHandle {
    /// Runs one step of `pages` pages (0: a WAL checkpoint) after the
    /// writes queued before it.
    pub(crate) async fn step(&self, pages: u32) -> Result<VacuumStep, DbError> {
        let queue = self.0.upgrade().ok_or(DbError::WriterStopped)?;
        let (reply, done) = oneshot::channel();
        queue
            .send(LogOp::Vacuum { pages, reply })
            .await
            .map_err(|_| DbError::WriterStopped)?;
        drop(queue);
        done.await.map_err(|_| DbError::WriterStopped)?
    }
}
