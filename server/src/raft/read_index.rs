//! The linearizable-read barrier (read index). A linearizable read must see
//! every write acknowledged before it started: the leader confirms it still
//! leads with a quorum round and hands out its commit index; the reader
//! waits until its own member has applied that far, then reads locally.
//!
//! Reads waiting at the same moment share one confirmation round: a round
//! serves every read that arrived before the round began (and only those),
//! as etcd does. Followers ask the leader over the transport; the leader
//! batches those requests the same way.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;
use witan_proto::raftpb;

use super::leader::{leader_view, wait_for_change, LeaderView, Metrics};
use super::peers::Peers;
use super::{NodeId, Raft};

/// Why no read index could be had.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReadIndexError {
    /// No leader was known before the deadline.
    #[error("no leader")]
    NoLeader,
    /// Leadership could not be confirmed before the deadline (e.g. this
    /// member is on the minority side of a partition).
    #[error("request timed out")]
    Timeout,
    /// This member is shutting down.
    #[error("server stopped")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<u64, ReadIndexError>>;

/// Hands out read indexes; cheap to clone.
#[derive(Clone)]
pub struct ReadIndex {
    queue: mpsc::UnboundedSender<Waiter>,
    shared: Arc<Shared>,
}

struct Shared {
    raft: Raft,
    me: NodeId,
    metrics: Metrics,
    peers: Peers,
    request_timeout: Duration,
}

enum Round {
    Index(u64),
    Retry,
    Failed(ReadIndexError),
}

impl ReadIndex {
    /// Starts the batching task; it ends when every clone is dropped.
    pub fn start(raft: Raft, me: NodeId, peers: Peers, request_timeout: Duration) -> ReadIndex {
        let metrics = raft.metrics();
        let shared = Arc::new(Shared {
            raft,
            me,
            metrics,
            peers,
            request_timeout,
        });
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(round_loop(rx, shared.clone()));
        ReadIndex { queue, shared }
    }

    /// A log index such that once this member has applied it, a local read
    /// is linearizable.
    pub async fn read_index(&self, deadline: Instant) -> Result<u64, ReadIndexError> {
        let (tx, rx) = oneshot::channel();
        self.queue.send(tx).map_err(|_| ReadIndexError::Stopped)?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ReadIndexError::Stopped),
            Err(_) => Err(ReadIndexError::Timeout),
        }
    }

    /// Whether this member currently believes it leads.
    pub fn is_leader(&self) -> bool {
        leader_view(&self.shared.metrics, self.shared.me) == LeaderView::Me
    }

    /// The leader this member knows of, as a hint for a follower.
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.shared.metrics.borrow().current_leader
    }
}

async fn round_loop(mut rx: mpsc::UnboundedReceiver<Waiter>, shared: Arc<Shared>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(next) = rx.try_recv() {
            waiters.push(next);
        }
        waiters.retain(|w| !w.is_closed());
        if waiters.is_empty() {
            continue;
        }
        let result = shared
            .confirm(Instant::now() + shared.request_timeout)
            .await;
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

impl Shared {
    async fn confirm(&self, deadline: Instant) -> Result<u64, ReadIndexError> {
        let mut leader_seen = false;
        loop {
            if Instant::now() >= deadline {
                return Err(if leader_seen {
                    ReadIndexError::Timeout
                } else {
                    ReadIndexError::NoLeader
                });
            }
            let round = match leader_view(&self.metrics, self.me) {
                LeaderView::Me => {
                    leader_seen = true;
                    self.confirm_local(deadline).await
                }
                LeaderView::Other(id, member) => {
                    leader_seen = true;
                    self.ask_leader(id, &member, deadline).await
                }
                LeaderView::Unknown => Round::Retry,
            };
            match round {
                Round::Index(index) => return Ok(index),
                Round::Failed(err) => return Err(err),
                Round::Retry => wait_for_change(&self.metrics, deadline).await,
            }
        }
    }

    async fn confirm_local(&self, deadline: Instant) -> Round {
        match tokio::time::timeout_at(deadline, self.raft.get_read_log_id()).await {
            Ok(Ok((read_log_id, _applied))) => Round::Index(read_log_id.map_or(0, |id| id.index)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => Round::Retry,
            // A quorum did not answer this round; try again until the deadline.
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                debug!(%e, "leadership not confirmed by a quorum");
                Round::Retry
            }
            Ok(Err(RaftError::Fatal(_))) => Round::Failed(ReadIndexError::Stopped),
            Err(_) => Round::Failed(ReadIndexError::Timeout),
        }
    }

    async fn ask_leader(&self, leader: NodeId, member: &super::Member, deadline: Instant) -> Round {
        let Ok(mut client) = self.peers.client(leader, member) else {
            return Round::Retry;
        };
        let mut request = tonic::Request::new(raftpb::ReadIndexRequest {});
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.read_index(request).await {
            Ok(response) => match response.into_inner().result {
                Some(raftpb::read_index_response::Result::ReadIndex(index)) => Round::Index(index),
                Some(raftpb::read_index_response::Result::NotLeader(_)) | None => Round::Retry,
            },
            // Asking for a read index has no effect, so any failure may be retried.
            Err(status) => {
                debug!(leader, %status, "read index from leader failed");
                Round::Retry
            }
        }
    }
}
