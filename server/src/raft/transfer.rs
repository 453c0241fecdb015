//! Leader transfer (etcd's MoveLeader) on openraft 0.9, which has none.
//!
//! What it does, precisely:
//! 1. On the leader only: the target must be a voter of the current
//!    membership (else "bad leader transferee"), and is given until the
//!    deadline to match the leader's last log index.
//! 2. The leader stops sending heartbeats (`runtime_config().heartbeat`)
//!    and holds its writes (`Writer::hold_writes`: they retry, and reach the
//!    new leader once it is elected; the lessor skips its ticks), so the
//!    leader lease the other members granted it runs out within
//!    `leader_lease` (openraft's `election_timeout_max`).
//! 3. It asks the target over the peer transport (`TimeoutNow`) to campaign
//!    once that lease has run out; the target then calls
//!    `trigger().elect()`. Followers campaign on their own only a random
//!    `election_timeout_min` or more after the lease, so the target, with
//!    the longest log, normally wins first (the crash detector stays out of
//!    it: the leader's peer port stays open).
//! 4. The leader waits until the target leads, then turns its heartbeats
//!    back on and releases its writes (always: also on failure or timeout,
//!    from a task that runs to completion even if the client goes away).
//!
//! Limits: writes pause for about one leader lease, as etcd's own transfer
//! pauses them. An append already under way when writes are held still
//! renews the followers' lease; if that makes them refuse the target's
//! votes, the transfer ends in a timeout and the cluster elects whoever
//! wins, as after a leader failure.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};
use witan_proto::raftpb::TimeoutNowRequest;

use super::leader::{leader_view, wait_for_change, LeaderView};
use super::peers::Peers;
use super::proposer::Writer;
use super::{NodeId, Raft};

/// Extra wait past the leader lease before the target campaigns, as a
/// share of the lease: room for a last append still in flight, well inside
/// the shortest random election timeout (`election_timeout_min`, 2/3 of
/// the lease) after which the other followers campaign on their own.
const MARGIN_DIVISOR: u32 = 6;

/// Why a transfer did not happen.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TransferError {
    /// Asked on a member that does not lead.
    #[error("not leader")]
    NotLeader,
    /// The target is not a voter of the cluster.
    #[error("bad leader transferee")]
    BadTransferee,
    /// The target did not catch up, or did not win, before the deadline.
    #[error("leader transfer took too long")]
    Timeout,
    /// This member is shutting down.
    #[error("server stopped")]
    Stopped,
}

/// Moves leadership from this member (`me`, the leader) to `target`;
/// returns once `target` leads. Runs in its own task, so heartbeats are
/// turned back on whatever happens to the caller.
pub async fn transfer_leadership(
    raft: Raft,
    writer: Arc<Writer>,
    me: NodeId,
    peers: Peers,
    target: NodeId,
    leader_lease: Duration,
    deadline: Instant,
) -> Result<(), TransferError> {
    tokio::spawn(transfer(
        raft,
        writer,
        me,
        peers,
        target,
        leader_lease,
        deadline,
    ))
    .await
    .map_err(|_| TransferError::Stopped)?
}

async fn transfer(
    raft: Raft,
    writer: Arc<Writer>,
    me: NodeId,
    peers: Peers,
    target: NodeId,
    leader_lease: Duration,
    deadline: Instant,
) -> Result<(), TransferError> {
    let metrics = raft.metrics();
    if leader_view(&metrics, me) != LeaderView::Me {
        return Err(TransferError::NotLeader);
    }
    if target == me {
        return Ok(());
    }
    let (member, term) = {
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        if !membership.voter_ids().any(|id| id == target) {
            return Err(TransferError::BadTransferee);
        }
        let member = membership
            .get_node(&target)
            .cloned()
            .ok_or(TransferError::BadTransferee)?;
        (member, m.current_term)
    };
    wait_caught_up(&raft, target, deadline).await?;
    if leader_view(&metrics, me) != LeaderView::Me || metrics.borrow().current_term != term {
        return Err(TransferError::NotLeader);
    }

    info!(
        target,
        "leader transfer: stopping heartbeats and holding writes"
    );
    raft.runtime_config().heartbeat(false);
    writer.hold_writes(true);
    let result = async {
        let mut client = peers.client(target, &member).map_err(|e| {
            warn!(target, error = %e, "leader transfer: cannot reach the target");
            TransferError::Timeout
        })?;
        let wait = leader_lease + leader_lease / MARGIN_DIVISOR;
        let request = TimeoutNowRequest {
            leader_id: me,
            term,
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        let mut request = tonic::Request::new(request);
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.timeout_now(request).await {
            Ok(response) if response.get_ref().accepted => {}
            Ok(_) => return Err(TransferError::BadTransferee),
            Err(status) => {
                warn!(target, %status, "leader transfer: the target did not answer");
                return Err(TransferError::Timeout);
            }
        }
        wait_leader(&raft, target, deadline).await
    }
    .await;
    writer.hold_writes(false);
    raft.runtime_config().heartbeat(true);
    match &result {
        Ok(()) => info!(target, "leader transfer done"),
        Err(e) => warn!(target, error = %e, "leader transfer failed"),
    }
    result
}

/// Waits until `target`'s replication matches this leader's last log index.
async fn wait_caught_up(
    raft: &Raft,
    target: NodeId,
    deadline: Instant,
) -> Result<(), TransferError> {
    let metrics = raft.metrics();
    loop {
        let caught_up = {
            let m = metrics.borrow();
            let last = m.last_log_index;
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&target).cloned())
                .flatten()
                .map(|id| id.index);
            last.is_some() && matched >= last
        };
        if caught_up {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TransferError::Timeout);
        }
        wait_for_change(&metrics, deadline).await;
    }
}

/// Waits until this member sees `target` lead.
async fn wait_leader(raft: &Raft, target: NodeId, deadline: Instant) -> Result<(), TransferError> {
    let metrics = raft.metrics();
    loop {
        if metrics.borrow().current_leader == Some(target) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TransferError::Timeout);
        }
        wait_for_change(&metrics, deadline).await;
    }
}

/// The target's side of `TimeoutNow`: if the asking member leads this
/// member's current term and this member is a voter, campaigns after
/// `wait_ms` (unless another leader appeared meanwhile). Returns whether
/// it will.
pub fn campaign_later(raft: &Raft, request: &TimeoutNowRequest) -> bool {
    let metrics = raft.metrics();
    let accepted = {
        let m = metrics.borrow();
        m.current_term == request.term
            && m.current_leader == Some(request.leader_id)
            && m.membership_config
                .membership()
                .voter_ids()
                .any(|id| id == m.id)
    };
    if !accepted {
        return false;
    }
    let raft = raft.clone();
    let wait = Duration::from_millis(u64::from(request.wait_ms));
    let (term, leader) = (request.term, request.leader_id);
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let unchanged = {
            let m = raft.metrics();
            let m = m.borrow();
            m.current_term == term && m.current_leader == Some(leader)
        };
        if !unchanged {
            info!("leader transfer: leadership changed meanwhile; not campaigning");
            return;
        }
        info!("leader transfer: campaigning");
        if let Err(e) = raft.trigger().elect().await {
            warn!(error = %e, "leader transfer: cannot start an election");
        }
    });
    true
}
