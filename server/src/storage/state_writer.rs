//! The background writer of `state.db`: apply hands it each call's changes
//! and answers its callers without waiting for sqlite.
//!
//! Why that is safe: nothing is acknowledged on the strength of `state.db`.
//! A write is durable once its raft entry is (the log is fsynced on a
//! majority before it commits); `state.db` records its last applied log id
//! in the same transaction as the changes, so after a crash openraft
//! re-applies whatever it had not written yet. What readers see is the
//! in-memory state apply publishes; the only readers of the file are reads
//! of older revisions and watch catch-up, and those wait (through the
//! persisted-revision signal) until the file holds the revision they read.
//!
//! Batches queued while a write runs go together in the next transaction
//! (group commit), so a busy member does one sqlite transaction for many
//! apply calls.

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::defrag::VacuumStep;
use super::error::DbError;
use super::state_db::{AppliedBatch, StateDb, StateMeta};
use crate::mvcc::KvState;

/// Apply calls queued for the writer before apply waits (backpressure).
const QUEUE: usize = 256;
/// Most apply calls written in one transaction.
const MAX_BATCHES_PER_TXN: usize = 64;

/// A request to the writer.
enum StateOp {
    /// Write one apply call's changes.
    Write(AppliedBatch),
    /// Reply once everything queued before is written.
    Flush(oneshot::Sender<()>),
    /// Run one defragment step (`defrag`), or a WAL checkpoint when
    /// `pages` is 0, between writes.
    Vacuum {
        pages: u32,
        reply: oneshot::Sender<Result<VacuumStep, DbError>>,
    },
    /// Replace the whole state with a snapshot file's and reload it.
    Replace {
        path: PathBuf,
        reply: oneshot::Sender<Result<(StateMeta, KvState), DbError>>,
    },
}

/// The handle apply uses to queue writes.
#[derive(Debug)]
pub(crate) struct StateWriter {
    queue: mpsc::Sender<StateOp>,
    task: JoinHandle<Result<(), DbError>>,
}

impl StateWriter {
    /// Starts the writer over `db`, whose file holds revision `revision`.
    /// The returned receiver tells readers the latest revision in the file.
    pub(crate) fn spawn(db: StateDb, revision: i64) -> (Self, watch::Receiver<i64>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let (persisted, persisted_rx) = watch::channel(revision);
        let task =
            tokio::spawn(run(db, rx, persisted).instrument(tracing::info_span!("state_db_writer")));
        (StateWriter { queue, task }, persisted_rx)
    }

    /// Queues one apply call's changes; waits only while the queue is full.
    pub(crate) async fn write(&self, batch: AppliedBatch) -> Result<(), DbError> {
        self.queue
            .send(StateOp::Write(batch))
            .await
            .map_err(|_| DbError::StateWriterStopped)
    }

    /// Waits until everything queued so far is in the file.
    pub(crate) async fn flush(&self) -> Result<(), DbError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(StateOp::Flush(reply))
            .await
            .map_err(|_| DbError::StateWriterStopped)?;
        done.await.map_err(|_| DbError::StateWriterStopped)
    }

    /// Replaces the state with the snapshot file at `path` once everything
    /// queued before is written, and returns the state loaded from it.
    pub(crate) async fn replace(&self, path: PathBuf) -> Result<(StateMeta, KvState), DbError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(StateOp::Replace { path, reply })
            .await
            .map_err(|_| DbError::StateWriterStopped)?;
        done.await.map_err(|_| DbError::StateWriterStopped)?
    }

    /// A handle that queues defragment steps without keeping the writer
    /// alive (the writer stops once the store drops its handle).
    pub(crate) fn vacuum_handle(&self) -> VacuumHandle {
        VacuumHandle(self.queue.downgrade())
    }

    /// Writes what is queued and closes the file.
    pub(crate) async fn close(self) -> Result<(), DbError> {
        let StateWriter { queue, task } = self;
        drop(queue);
        task.await.map_err(|_| DbError::StateWriterStopped)?
    }
}

/// Queues defragment steps on the `state.db` writer (see `defrag`).
#[derive(Debug, Clone)]
pub(crate) struct VacuumHandle(mpsc::WeakSender<StateOp>);

impl VacuumHandle {
    /// Runs one step of `pages` pages (0: a WAL checkpoint) between writes.
    pub(crate) async fn step(&self, pages: u32) -> Result<VacuumStep, DbError> {
        let queue = self.0.upgrade().ok_or(DbError::StateWriterStopped)?;
        let (reply, done) = oneshot::channel();
        queue
            .send(StateOp::Vacuum { pages, reply })
            .await
            .map_err(|_| DbError::StateWriterStopped)?;
        drop(queue);
        done.await.map_err(|_| DbError::StateWriterStopped)?
    }
}

async fn run(
    mut db: StateDb,
    mut rx: mpsc::Receiver<StateOp>,
    persisted: watch::Sender<i64>,
) -> Result<(), DbError> {
    let mut ops = Vec::new();
    let mut writes = Vec::new();
    while rx.recv_many(&mut ops, MAX_BATCHES_PER_TXN).await > 0 {
        for op in ops.drain(..) {
            match op {
                StateOp::Write(batch) => writes.push(batch),
                StateOp::Flush(reply) => {
                    write_pending(&mut db, &mut writes, &persisted).await?;
                    let _ = reply.send(());
                }
                StateOp::Vacuum { pages, reply } => {
                    write_pending(&mut db, &mut writes, &persisted).await?;
                    let _ = reply.send(db.vacuum(pages).await);
                }
                StateOp::Replace { path, reply } => {
                    write_pending(&mut db, &mut writes, &persisted).await?;
                    let replaced = replace(&mut db, &path).await;
                    if let Ok((_, kv)) = &replaced {
                        persisted.send_replace(kv.revision());
                    }
                    let _ = reply.send(replaced);
                }
            }
        }
        write_pending(&mut db, &mut writes, &persisted).await?;
    }
    db.close().await
}

/// Writes the queued batches in one transaction. A failure stops the
/// writer: the file and memory no longer agree, and the next apply call
/// reports it to openraft, which stops the member.
async fn write_pending(
    db: &mut StateDb,
    writes: &mut Vec<AppliedBatch>,
    persisted: &watch::Sender<i64>,
) -> Result<(), DbError> {
    let Some(last) = writes.last() else {
        return Ok(());
    };
    let revision = last.revisions.revision;
    let commit = crate::metrics::BACKEND_COMMIT.time();
    let written = db.write(writes).await;
    drop(commit);
    if let Err(e) = written {
        tracing::error!(error = %e, "writing the state database failed; the member stops");
        return Err(e);
    }
    writes.clear();
    persisted.send_replace(revision);
    Ok(())
}

async fn replace(
    db: &mut StateDb,
    path: &std::path::Path,
) -> Result<(StateMeta, KvState), DbError> {
    db.replace_with(path).await?;
    let meta = db.load_meta().await?;
    let kv = db.load_kv(&meta).await?;
    Ok((meta, kv))
}
