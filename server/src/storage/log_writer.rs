//! The raft log's background writer: the only task that writes
//! `raft-log.db`.
//!
//! `LogStore` applies every change to its in-memory tail at once (so readers
//! see it) and queues the disk write here. The writer drains whatever is
//! queued, writes it in one transaction (group commit: one fsync for many
//! appends), and only then acknowledges the appends to openraft and lets the
//! cache evict them. Operations are written in queue order, which keeps
//! openraft's rule that log and vote I/O are serialized.
//!
//! After a failed write the writer refuses every later operation: memory
//! and disk no longer agree, and openraft must stop the member.

use std::sync::Arc;

use prost::Message;
use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::defrag::{self, VacuumStep};
use super::error::{to_i64, DbError};
use super::log_reader::LogShared;
use super::script::Script;
use super::sqlite::{self, MAX_PARAMS};
use crate::raft::convert::{log_id_to_pb, vote_to_pb};
use crate::raft::{LogId, TypeConfig, Vote};

/// Most operations written in one transaction: bounds the latency of the
/// first append of a large burst.
const MAX_OPS_PER_TXN: usize = 1024;

/// Queue length between `LogStore` and the writer (backpressure on raft).
const QUEUE: usize = 1024;

const ENTRY_COLUMNS: usize = 4;
const INSERT_ENTRIES: &str = "raft_entries (log_index, term, leader_node, entry)";

/// Meta names of the raft log database.
pub(crate) const META_VOTE: &str = "vote";
pub(crate) const META_COMMITTED: &str = "committed";
pub(crate) const META_LAST_PURGED: &str = "last_purged";

/// One encoded log entry, ready to insert.
#[derive(Debug)]
pub(crate) struct EntryRow {
    index: i64,
    term: i64,
    /// The leader's node id, stored bit for bit (member ids use all 64
    /// bits; this column is informational).
    leader_node: i64,
    entry: Vec<u8>,
}

impl EntryRow {
    /// Encodes an entry in its on-disk form.
    pub(crate) fn encode(pb: &witan_proto::raftpb::Entry, log_id: &LogId) -> Result<Self, DbError> {
        Ok(EntryRow {
            index: to_i64("log index", log_id.index)?,
            term: to_i64("term", log_id.leader_id.term)?,
            leader_node: i64::from_ne_bytes(log_id.leader_id.node_id.to_ne_bytes()),
            entry: pb.encode_to_vec(),
        })
    }

    /// Encoded size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.entry.len()
    }
}

/// A write queued for the writer.
pub(crate) enum LogOp {
    /// Insert entries (written by append number `seq`), then acknowledge.
    Append {
        rows: Vec<EntryRow>,
        seq: u64,
        callback: openraft::storage::LogFlushed<TypeConfig>,
    },
    /// Delete entries from this index on.
    Truncate { from: u64 },
    /// Delete entries up to this log id and remember it.
    Purge { upto: LogId },
    /// Store the vote.
    SaveVote(Vote),
    /// Store the committed log id.
    SaveCommitted(Option<LogId>),
    /// Reply once everything queued before is on disk.
    Sync(oneshot::Sender<Result<(), DbError>>),
    /// After everything queued before, run one defragment step of `pages`
    /// pages (0: a WAL checkpoint; see `defrag`).
    Vacuum {
        pages: u32,
        reply: oneshot::Sender<Result<VacuumStep, DbError>>,
    },
}

/// Starts the writer task over `conn`.
pub(crate) fn spawn(
    conn: SqliteConnection,
    shared: Arc<LogShared>,
) -> (mpsc::Sender<LogOp>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let task =
        tokio::spawn(run(conn, rx, shared).instrument(tracing::info_span!("raft_log_writer")));
    (tx, task)
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<LogOp>, shared: Arc<LogShared>) {
    let mut failed: Option<Arc<DbError>> = None;
    let mut batch = Vec::new();
    // A committed id not written yet. openraft reports every commit
    // advance; writing each on its own would add an fsync per commit, so it
    // rides along with the next write (losing it in a crash only means
    // re-applying a few entries).
    let mut committed: Option<Option<LogId>> = None;
    while rx.recv_many(&mut batch, MAX_OPS_PER_TXN).await > 0 {
        let mut only_committed = true;
        for op in &batch {
            match op {
                LogOp::SaveCommitted(id) => committed = Some(*id),
                _ => only_committed = false,
            }
        }
        if only_committed {
            batch.clear();
            continue;
        }
        let result = match &failed {
            Some(e) => Err(Arc::clone(e)),
            None => write(&mut conn, &batch, committed.take()).await.map_err(|e| {
                tracing::error!(error = %e, "writing the raft log failed; refusing further writes");
                let e = Arc::new(e);
                failed = Some(Arc::clone(&e));
                e
            }),
        };
        if result.is_ok() {
            let flushed = batch.iter().filter_map(|op| match op {
                LogOp::Append { seq, .. } => Some(*seq),
                _ => None,
            });
            if let Some(seq) = flushed.max() {
                shared.lock().flushed(seq);
            }
        }
        for op in batch.drain(..) {
            match op {
                LogOp::Append { callback, .. } => callback.log_io_completed(
                    result
                        .as_ref()
                        .map(|_| ())
                        .map_err(|e| std::io::Error::other(Arc::clone(e))),
                ),
                LogOp::Sync(reply) => {
                    let reply_result = match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(DbError::WriterFailed(Arc::clone(e))),
                    };
                    // The waiter may have given up; nothing to do then.
                    let _ = reply.send(reply_result);
                }
                LogOp::Vacuum { pages, reply } => {
                    let step = match &result {
                        Ok(()) => vacuum(&mut conn, pages).await,
                        Err(e) => Err(DbError::WriterFailed(Arc::clone(e))),
                    };
                    let _ = reply.send(step);
                }
                LogOp::Truncate { .. }
                | LogOp::Purge { .. }
                | LogOp::SaveVote(_)
                | LogOp::SaveCommitted(_) => {}
            }
        }
    }
    if let (Some(id), None) = (committed, &failed) {
        if let Err(e) = write(&mut conn, &[], Some(id)).await {
            tracing::warn!(error = %e, "saving the committed log id failed");
        }
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the raft log failed");
    }
    tracing::debug!("raft log writer stopped");
}

/// Writes a batch of operations in one transaction, in order, with the
/// latest committed log id (its `SaveCommitted` operations are already
/// folded into `committed`). The transaction goes to sqlite as one script:
/// every append waits for this, so thread hand-offs count.
async fn write(
    conn: &mut SqliteConnection,
    batch: &[LogOp],
    committed: Option<Option<LogId>>,
) -> Result<(), DbError> {
    let mut script = Script::begin();
    let mut pending: Vec<&EntryRow> = Vec::new();
    for op in batch {
        match op {
            LogOp::Append { rows, .. } => pending.extend(rows.iter()),
            LogOp::Truncate { from } => {
                insert_rows(&mut script, &mut pending)?;
                script
                    .statement("DELETE FROM raft_entries WHERE log_index >= ?")
                    .bind(to_i64("log index", *from)?)?;
            }
            LogOp::Purge { upto } => {
                insert_rows(&mut script, &mut pending)?;
                script
                    .statement("DELETE FROM raft_entries WHERE log_index <= ?")
                    .bind(to_i64("log index", upto.index)?)?;
                put_meta(
                    &mut script,
                    META_LAST_PURGED,
                    log_id_to_pb(upto).encode_to_vec(),
                )?;
            }
            LogOp::SaveVote(vote) => {
                put_meta(&mut script, META_VOTE, vote_to_pb(vote).encode_to_vec())?;
            }
            LogOp::SaveCommitted(_) | LogOp::Sync(_) | LogOp::Vacuum { .. } => {}
        }
    }
    insert_rows(&mut script, &mut pending)?;
    match committed {
        Some(Some(id)) => {
            put_meta(
                &mut script,
                META_COMMITTED,
                log_id_to_pb(&id).encode_to_vec(),
            )?;
        }
        Some(None) => {
            script
                .statement("DELETE FROM meta WHERE name = ?")
                .bind(META_COMMITTED)?;
        }
        None => {}
    }
    // Everything queued before a lone `Sync` is already committed.
    if !script.is_empty() {
        // Test-only fault injection (--unsafe-fault-injection): a stalled
        // disk makes this commit, and so its fsync, late. Never set in
        // production.
        if let Some(stall) = crate::raft::peers::fsync_delay() {
            tokio::time::sleep(stall).await;
        }
        let _fsync = crate::metrics::WAL_FSYNC.time();
        script.commit(conn).await?;
    }
    Ok(())
}

async fn vacuum(conn: &mut SqliteConnection, pages: u32) -> Result<VacuumStep, DbError> {
    if pages == 0 {
        defrag::checkpoint(conn).await?;
        return Ok(VacuumStep {
            free_pages: -1,
            full_vacuum: false,
        });
    }
    defrag::vacuum_step(conn, pages).await
}

fn put_meta(script: &mut Script<'_>, name: &'static str, value: Vec<u8>) -> Result<(), DbError> {
    script
        .statement("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
        .bind(name)?
        .bind(value)?;
    Ok(())
}

/// Adds the pending rows as multi-row statements.
fn insert_rows<'q>(
    script: &mut Script<'q>,
    pending: &mut Vec<&'q EntryRow>,
) -> Result<(), DbError> {
    let per_statement = MAX_PARAMS / ENTRY_COLUMNS;
    for chunk in pending.chunks(per_statement) {
        script.statement(&sqlite::multi_insert(
            INSERT_ENTRIES,
            ENTRY_COLUMNS,
            chunk.len(),
        ));
        for row in chunk {
            script
                .bind(row.index)?
                .bind(row.term)?
                .bind(row.leader_node)?
                .bind(row.entry.as_slice())?;
        }
    }
    pending.clear();
    Ok(())
}
