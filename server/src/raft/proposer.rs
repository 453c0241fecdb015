//! The write path to the leader: client commands are queued, batched into
//! one log entry (group commit: one fsync and one replication round carry
//! many commands), proposed on the leader — locally, or forwarded from a
//! follower — and each caller gets its own command's response.
//!
//! Retries happen only when the command certainly was not appended (the
//! receiver was not the leader, or the connection never formed); anything
//! ambiguous is reported as such, never repeated, so nothing applies twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};
use witan_proto::raftpb::{self, Command, CommandBatch, CommandResponse};

use super::leader::{leader_view, wait_for_change, LeaderView, Metrics};
use super::peers::{never_sent, Peers};
use super::{Member, NodeId, Raft};

/// Most commands in one log entry.
const MAX_BATCH_COMMANDS: usize = 4096;
/// A batch stops growing past this many bytes of commands.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches proposed but not yet applied. Past this, new commands wait in the
/// queue and join the next (larger) batch.
const MAX_BATCHES_IN_FLIGHT: usize = 2;
/// Commands waiting to be batched. When it is full a new command is
/// refused at once with "too many requests" (back-pressure the client sees)
/// instead of waiting for room.
const QUEUE_CAPACITY: usize = 65_536;
/// Log entries appended on this member but not yet applied past which new
/// commands are refused with "too many requests": etcd's
/// `maxGapBetweenApplyAndCommitIndex`. (openraft's metrics have no commit
/// index; the last log index is at least the commit index, so this refuses
/// no later than etcd would.)
pub const MAX_APPLY_GAP: u64 = 5000;

/// Why a write did not produce a response.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader was known before the deadline.
    #[error("no leader")]
    NoLeader,
    /// The deadline passed; the command may or may not be applied.
    #[error("request timed out")]
    Timeout,
    /// The leader failed or changed while the command was in flight; it may
    /// or may not be applied.
    #[error("request timed out, possibly due to previous leader failure")]
    LeaderLost,
    /// This member is shutting down.
    #[error("server stopped")]
    Stopped,
    /// Refused before it was queued (certainly not applied): the proposal
    /// queue is full, or this member applies too far behind its log.
    #[error("too many requests")]
    TooManyRequests,
}

/// Result of one attempt to write a batch.
pub enum Attempt {
    /// Applied; one response per command.
    Done(Vec<CommandResponse>),
    /// Certainly not appended; safe to try again.
    Retry,
    /// Failed for good (or ambiguously: see the error).
    Failed(ProposeError),
}

struct Pending {
    command: Command,
    reply: oneshot::Sender<Result<CommandResponse, ProposeError>>,
}

/// Proposes commands through raft; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Pending>,
    writer: Arc<Writer>,
}

/// Writes whole batches on the leader, forwarding when this member is not it.
pub struct Writer {
    raft: Raft,
    me: NodeId,
    metrics: Metrics,
    peers: Peers,
    request_timeout: Duration,
    /// Set while this leader hands leadership over (MoveLeader, see
    /// `transfer`): local appends answer "not appended, retry" instead of
    /// renewing the leader lease the transfer waits out; callers retry
    /// and reach the new leader.
    held: AtomicBool,
}

impl Proposer {
    /// Starts the batching task. It ends when every `Proposer` clone is dropped.
    pub fn start(raft: Raft, me: NodeId, peers: Peers, request_timeout: Duration) -> Proposer {
        let metrics = raft.metrics();
        let writer = Arc::new(Writer {
            raft,
            me,
            metrics,
            peers,
            request_timeout,
            held: AtomicBool::new(false),
        });
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(batch_loop(rx, writer.clone()));
        Proposer { queue, writer }
    }

    /// Proposes one command and waits for its response, at most until
    /// `deadline`.
    pub async fn propose(
        &self,
        command: Command,
        deadline: Instant,
    ) -> Result<CommandResponse, ProposeError> {
        crate::metrics::proposal(self.propose_once(command, deadline)).await
    }

    async fn propose_once(
        &self,
        command: Command,
        deadline: Instant,
    ) -> Result<CommandResponse, ProposeError> {
        if apply_gap(&self.writer.metrics.borrow()) > MAX_APPLY_GAP {
            return Err(ProposeError::TooManyRequests);
        }
        let (reply, response) = oneshot::channel();
        enqueue(&self.queue, Pending { command, reply })?;
        match tokio::time::timeout_at(deadline, response).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ProposeError::Stopped),
            Err(_) => Err(ProposeError::Timeout),
        }
    }

    /// The batch writer, for serving batches forwarded by other members.
    pub fn writer(&self) -> &Arc<Writer> {
        &self.writer
    }
}

/// Log entries this member holds but has not applied yet.
fn apply_gap(m: &openraft::RaftMetrics<NodeId, Member>) -> u64 {
    let applied = m.last_applied.map_or(0, |l| l.index);
    m.last_log_index.unwrap_or(0).saturating_sub(applied)
}

/// Queues a command without waiting: a full queue is back-pressure,
/// answered at once (etcd's "too many requests") rather than by a caller
/// parked until its deadline.
fn enqueue(queue: &mpsc::Sender<Pending>, pending: Pending) -> Result<(), ProposeError> {
    queue.try_send(pending).map_err(|err| match err {
        mpsc::error::TrySendError::Full(_) => ProposeError::TooManyRequests,
        mpsc::error::TrySendError::Closed(_) => ProposeError::Stopped,
    })
}

async fn batch_loop(mut rx: mpsc::Receiver<Pending>, writer: Arc<Writer>) {
    let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
    loop {
        // Take the permit before collecting, so that while every slot is
        // busy, arriving commands pile up and leave together.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut bytes = prost::Message::encoded_len(&first.command);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += prost::Message::encoded_len(&next.command);
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        tokio::spawn(submit(writer.clone(), batch, permit));
    }
}

async fn submit(writer: Arc<Writer>, batch: Vec<Pending>, _permit: OwnedSemaphorePermit) {
    // Callers that gave up before their command was proposed are dropped:
    // they were told it timed out, and it never will apply.
    let (commands, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .filter(|p| !p.reply.is_closed())
        .map(|p| (p.command, p.reply))
        .unzip();
    if commands.is_empty() {
        return;
    }
    let deadline = Instant::now() + writer.request_timeout;
    let count = commands.len();
    match writer.write(CommandBatch { commands }, deadline).await {
        Ok(responses) if responses.len() == count => {
            for (reply, response) in replies.into_iter().zip(responses) {
                let _ = reply.send(Ok(response));
            }
        }
        Ok(responses) => {
            warn!(
                expected = count,
                got = responses.len(),
                "leader answered a batch with the wrong number of responses"
            );
            for reply in replies {
                let _ = reply.send(Err(ProposeError::LeaderLost));
            }
        }
        Err(err) => {
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

impl Writer {
    /// Writes a batch through the leader, retrying while that is safe, until
    /// `deadline`.
    pub async fn write(
        &self,
        batch: CommandBatch,
        deadline: Instant,
    ) -> Result<Vec<CommandResponse>, ProposeError> {
        let mut leader_seen = false;
        loop {
            if Instant::now() >= deadline {
                return Err(if leader_seen {
                    ProposeError::Timeout
                } else {
                    ProposeError::NoLeader
                });
            }
            let attempt = match leader_view(&self.metrics, self.me) {
                LeaderView::Me => {
                    leader_seen = true;
                    self.write_local(batch.clone(), deadline).await
                }
                LeaderView::Other(id, member) => {
                    leader_seen = true;
                    self.forward(id, &member, batch.clone(), deadline).await
                }
                LeaderView::Unknown => Attempt::Retry,
            };
            match attempt {
                Attempt::Done(responses) => return Ok(responses),
                Attempt::Failed(err) => return Err(err),
                Attempt::Retry => wait_for_change(&self.metrics, deadline).await,
            }
        }
    }

    /// The leader view, for the forwarding service.
    pub fn leader(&self) -> LeaderView {
        leader_view(&self.metrics, self.me)
    }

    /// Holds (`true`) or releases local appends during a leader transfer.
    pub fn hold_writes(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    /// Appends the batch on this member, which believes it leads.
    pub async fn write_local(&self, batch: CommandBatch, deadline: Instant) -> Attempt {
        if self.held.load(Ordering::SeqCst) {
            return Attempt::Retry;
        }
        let responder = match self.raft.client_write_ff(batch).await {
            Ok(rx) => rx,
            Err(_) => return Attempt::Failed(ProposeError::Stopped),
        };
        match tokio::time::timeout_at(deadline, responder).await {
            Ok(Ok(Ok(written))) => Attempt::Done(written.data.0),
            // Refused before appending, or appended and then truncated by a
            // new leader: either way it will never apply.
            Ok(Ok(Err(ClientWriteError::ForwardToLeader(_)))) => Attempt::Retry,
            Ok(Ok(Err(ClientWriteError::ChangeMembershipError(err)))) => {
                warn!(%err, "a plain write was answered with a membership error");
                Attempt::Failed(ProposeError::LeaderLost)
            }
            Ok(Err(_)) => Attempt::Failed(ProposeError::LeaderLost),
            Err(_) => Attempt::Failed(ProposeError::Timeout),
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        member: &Member,
        batch: CommandBatch,
        deadline: Instant,
    ) -> Attempt {
        let mut client = match self.peers.client(leader, member) {
            Ok(client) => client,
            Err(err) => {
                warn!(leader, %err, "cannot address the leader");
                return Attempt::Retry;
            }
        };
        let mut request = tonic::Request::new(raftpb::ForwardRequest { batch: Some(batch) });
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.forward(request).await {
            Ok(response) => match response.into_inner().result {
                Some(raftpb::forward_response::Result::Responses(r)) => Attempt::Done(r.responses),
                Some(raftpb::forward_response::Result::NotLeader(_)) => Attempt::Retry,
                None => Attempt::Failed(ProposeError::LeaderLost),
            },
            Err(status) if never_sent(&status) => {
                debug!(leader, %status, "leader unreachable; retrying");
                Attempt::Retry
            }
            Err(status) => {
                debug!(leader, %status, "forwarded write failed in flight");
                Attempt::Failed(match status.code() {
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ProposeError::Timeout,
                    _ => ProposeError::LeaderLost,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> (
        Pending,
        oneshot::Receiver<Result<CommandResponse, ProposeError>>,
    ) {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            command: Command::default(),
            reply,
        };
        (pending, rx)
    }

    #[test]
    fn a_full_queue_refuses_at_once_with_too_many_requests() {
        let (queue, mut rx) = mpsc::channel(1);
        assert_eq!(enqueue(&queue, pending().0), Ok(()));
        assert_eq!(
            enqueue(&queue, pending().0),
            Err(ProposeError::TooManyRequests)
        );
        // Room again once the batcher took one.
        assert!(rx.try_recv().is_ok());
        assert_eq!(enqueue(&queue, pending().0), Ok(()));
        drop(rx);
        assert_eq!(enqueue(&queue, pending().0), Err(ProposeError::Stopped));
    }

    #[test]
    fn the_apply_gap_is_log_minus_applied() {
        let mut m = openraft::RaftMetrics::<NodeId, Member>::new_initial(1);
        assert_eq!(apply_gap(&m), 0);
        m.last_log_index = Some(MAX_APPLY_GAP + 10);
        assert_eq!(apply_gap(&m), MAX_APPLY_GAP + 10);
        m.last_applied = Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 1),
            10,
        ));
        assert_eq!(apply_gap(&m), MAX_APPLY_GAP);
    }
}
