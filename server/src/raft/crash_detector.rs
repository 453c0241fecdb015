//! Noticing that the leader's process is gone, so a follower campaigns as
//! soon as the other voters will accept it instead of after a full election
//! timeout.
//!
//! Plain Raft learns of a dead leader only from silence: a follower waits
//! out its election timeout (here E to 1.2E after the last heartbeat). When
//! the leader *process* died (a crash, `kill -9`, an OOM kill) but its
//! machine lives, there is a much faster and reliable sign: its peer port
//! refuses connections. A follower that has not heard from the leader for
//! two heartbeat intervals tries one TCP connection to the leader's peer
//! address; "connection refused" means nothing listens there any more.
//!
//! The other voters still honour the dead leader's lease (openraft rejects
//! a vote request until `election_timeout_max` has passed since the voter
//! last heard from its leader), so campaigning at once would only waste a
//! term. The follower therefore campaigns when that lease has run out on
//! every voter (its own last contact + the lease + half a heartbeat): 0.65E
//! after the last heartbeat with the default heartbeat, against E to 1.2E
//! for a timer-driven election.
//!
//! The followers take turns so two candidates never split the vote: the
//! voter with the lowest id other than the leader goes first, the next one
//! a heartbeat interval later, and so on. A later one campaigns only if it
//! has seen no newer term by then, which happens when the earlier one is
//! down too or was refused for a shorter log (under load, which follower
//! holds the last entry is a coin toss). Its vote request carries the same
//! term and a higher id, so the earlier candidate, which voted for itself
//! in that term, still grants it. If all of this fails, the ordinary
//! election timers elect a leader: this only ever adds earlier, safe
//! elections (any election is safe in Raft), never removes one. A paused or partitioned leader does
//! not refuse connections (or cannot be reached at all), so it is left to
//! the timers, as it must be.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::ServerState;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::leader::Metrics;
use super::{NodeId, Raft};
use crate::config::parse_host_port;

/// When this member last received an AppendEntries (heartbeats included)
/// from each member: the leader-liveness signal openraft does not publish.
#[derive(Clone, Default)]
pub struct LeaderContact {
    last: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

impl LeaderContact {
    /// Records that `from` just replicated to this member.
    pub fn touch(&self, from: NodeId) {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(from, Instant::now());
    }

    /// When `from` last replicated to this member, if ever.
    pub fn last(&self, from: NodeId) -> Option<Instant> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&from)
            .copied()
    }
}

/// Timing of the detector, from the member's raft settings.
#[derive(Debug, Clone, Copy)]
pub struct DetectorTiming {
    /// `--heartbeat-interval`.
    pub heartbeat: Duration,
    /// How long a voter keeps rejecting candidates after it last heard from
    /// its leader (openraft's leader lease, `election_timeout_max`).
    pub leader_lease: Duration,
}

impl DetectorTiming {
    /// How long without contact before the leader's port is probed.
    fn silence(&self) -> Duration {
        self.heartbeat * 2
    }

    /// When the follower of rank `rank` campaigns for a leader last heard
    /// from at `last`: once every voter's lease has run out (half a
    /// heartbeat after this member's own, because the leader's last message
    /// may have reached another voter a little later), then one heartbeat
    /// interval per earlier follower.
    fn campaign_at(&self, last: Instant, rank: u32) -> Instant {
        last + self.leader_lease + self.heartbeat / 2 + self.heartbeat * rank
    }
}

/// Runs the detector for member `me` until `stopped` turns true or raft
/// shuts down.
pub async fn run(
    raft: Raft,
    me: NodeId,
    contact: LeaderContact,
    timing: DetectorTiming,
    mut stopped: watch::Receiver<bool>,
) {
    let metrics = raft.metrics();
    {
        loop {
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(timing.heartbeat) => {}
            }
            let Some(suspect) = suspect(&metrics, me, &contact, timing) else {
                continue;
            };
            if !refuses_connections(suspect.addr, timing.heartbeat).await {
                continue;
            }
            let at = timing.campaign_at(suspect.last, suspect.rank);
            info!(
                leader = format_args!("{:x}", suspect.leader),
                addr = %suspect.addr,
                rank = suspect.rank,
                in_ms = at.saturating_duration_since(Instant::now()).as_millis() as u64,
                "the leader's peer port refuses connections: campaigning once its lease runs out"
            );
            tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep_until(at) => {}
            }
            // Anything new since (a message from the leader, a new term or
            // leader) means the election is no longer ours to start.
            let still = suspect_again(&metrics, &contact, &suspect);
            if !still {
                debug!("leader situation changed before the lease ran out: not campaigning");
                continue;
            }
            if let Err(err) = raft.trigger().elect().await {
                warn!(%err, "cannot start an election");
                return;
            }
            // One early election per lost leader: if it fails, the ordinary
            // timers take over.
            wait_for_new_term(&metrics, suspect.term, timing, &mut stopped).await;
        }
    }
}

/// A leader that has gone quiet, as this member sees it.
#[derive(Debug, Clone, PartialEq)]
struct Suspect {
    leader: NodeId,
    /// This member's turn among the followers.
    rank: u32,
    term: u64,
    last: Instant,
    addr: SocketAddr,
}

/// The leader, when it has been silent for [`DetectorTiming::silence`] and
/// this member is a voter that may campaign in its place.
fn suspect(
    metrics: &Metrics,
    me: NodeId,
    contact: &LeaderContact,
    timing: DetectorTiming,
) -> Option<Suspect> {
    let m = metrics.borrow();
    if m.state != ServerState::Follower {
        return None;
    }
    let leader = m.current_leader.filter(|&l| l != me)?;
    let membership = m.membership_config.membership();
    let rank = rank(membership.voter_ids(), leader, me)?;
    let last = contact.last(leader)?;
    if last.elapsed() < timing.silence() {
        return None;
    }
    let url = membership.get_node(&leader)?.peer_urls.first()?;
    let addr = parse_host_port(url).ok()?;
    Some(Suspect {
        leader,
        rank,
        term: m.current_term,
        last,
        addr,
    })
}

fn suspect_again(metrics: &Metrics, contact: &LeaderContact, s: &Suspect) -> bool {
    let m = metrics.borrow();
    m.state == ServerState::Follower
        && m.current_leader == Some(s.leader)
        && m.current_term == s.term
        && contact.last(s.leader) == Some(s.last)
}

/// `me`'s turn to campaign when `leader` is gone: its place among the other
/// voters by id, lowest first (`None` when `me` is not one of them).
fn rank(voters: impl Iterator<Item = NodeId>, leader: NodeId, me: NodeId) -> Option<u32> {
    let mut others: Vec<NodeId> = voters.filter(|&v| v != leader).collect();
    others.sort_unstable();
    let place = others.iter().position(|&v| v == me)?;
    u32::try_from(place).ok()
}

/// Whether a TCP connection to `addr` is refused (nothing listens there).
/// A timeout or any other error proves nothing.
async fn refuses_connections(addr: SocketAddr, timeout: Duration) -> bool {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Err(err)) => err.kind() == ErrorKind::ConnectionRefused,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn wait_for_new_term(
    metrics: &Metrics,
    term: u64,
    timing: DetectorTiming,
    stopped: &mut watch::Receiver<bool>,
) {
    let mut metrics = metrics.clone();
    // Bounded so a member that never sees a new term still looks again.
    let give_up = tokio::time::sleep(timing.leader_lease * 4);
    tokio::select! {
        _ = metrics.wait_for(|m| m.current_term > term) => {}
        _ = stopped.wait_for(|stop| *stop) => {}
        () = give_up => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_take_turns_by_id() {
        assert_eq!(rank([5, 3, 9].into_iter(), 3, 5), Some(0));
        assert_eq!(rank([5, 3, 9].into_iter(), 3, 9), Some(1));
        assert_eq!(rank([5, 3, 9].into_iter(), 9, 3), Some(0));
        // The leader itself and non-voters have no turn.
        assert_eq!(rank([5, 3, 9].into_iter(), 3, 3), None);
        assert_eq!(rank([5, 3, 9].into_iter(), 3, 4), None);
    }

    #[test]
    fn campaign_waits_for_every_voters_lease() {
        let timing = DetectorTiming {
            heartbeat: Duration::from_millis(100),
            leader_lease: Duration::from_millis(750),
        };
        let last = Instant::now();
        assert_eq!(
            timing.campaign_at(last, 0) - last,
            Duration::from_millis(800)
        );
        assert_eq!(
            timing.campaign_at(last, 2) - last,
            Duration::from_millis(1000)
        );
        assert_eq!(timing.silence(), Duration::from_millis(200));
    }

    #[test]
    fn contact_is_per_member() {
        let contact = LeaderContact::default();
        assert_eq!(contact.last(1), None);
        contact.touch(1);
        let first = contact.last(1);
        assert!(first.is_some());
        assert_eq!(contact.last(2), None);
    }

    #[tokio::test]
    async fn a_closed_port_refuses_and_an_open_one_does_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        assert!(!refuses_connections(open, Duration::from_secs(5)).await);
        drop(listener);
        assert!(refuses_connections(open, Duration::from_secs(5)).await);
    }
}
