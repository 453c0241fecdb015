//! Cluster membership changes (etcd's `Cluster` service) mapped onto
//! openraft 0.9: learners, joint-consensus voter changes and node updates.
//!
//! | etcd call                  | openraft                                          |
//! |----------------------------|---------------------------------------------------|
//! | MemberAdd `--learner`      | `add_learner(id, node, blocking = false)`         |
//! | MemberAdd (voter)          | the same, with `pending_voter` set on the node; the leader promotes it once caught up |
//! | MemberPromote              | `change_membership(AddVoterIds, retain = true)`   |
//! | MemberRemove (voter)       | `change_membership(RemoveVoters, retain = false)` |
//! | MemberRemove (learner)     | `change_membership(RemoveNodes)`                  |
//! | MemberUpdate               | `change_membership(SetNodes)` with new peer URLs   |
//! | publish (name, client URLs)| `change_membership(SetNodes)`                     |
//!
//! **Adding a voter.** etcd adds a voter at once: its conf change commits
//! under the old configuration, and from then on the quorum counts the new
//! member, so a 1-member cluster stalls until the new member starts (a
//! classic etcd pitfall). openraft changes voters through a joint
//! configuration that must itself commit on both the old and the new voter
//! sets: adding a voter that is not running yet would block the `MemberAdd`
//! call itself until the member starts — which its operator cannot do
//! before the call returns. So witan adds the member as a raft learner that
//! is marked `pending_voter` (MemberList shows it as a voter, as etcd
//! would), and the leader promotes it as soon as it has caught up (etcd's
//! rule: its matched index at least 90% of the leader's). Until then the
//! quorum does not depend on it, which is strictly safer than etcd; after
//! that it is an ordinary voter, and an unreachable voter can stall the
//! quorum exactly as in etcd.
//!
//! **Where changes run.** Every change runs on the leader, one at a time
//! (each checks the membership it is about to change); a member that is
//! not the leader forwards the change over `RaftTransport.ChangeMembers`.
//! A change that openraft refuses because another one is still in flight
//! is retried until the request deadline.
//!
//! **Removed members.** Ids leave the membership for good (new members get
//! fresh ids, see [`allocate_id`]), so a member that sees a committed
//! membership without itself, after having been in one, was removed: the
//! member tasks (`member_tasks`) stop it. Peers also answer a removed
//! member's requests with a "removed" status, which stops it too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use witan_proto::raftpb::{
    self, change_members_request::Change, member_change_error::Kind, MemberInfo,
};

use super::leader::{leader_view, wait_for_change, LeaderView, Metrics};
use super::peers::{never_sent, Peers};
use super::{Member, Membership, NodeId, Raft};

/// A learner is caught up when its matched log index is at least this
/// share of the leader's (etcd's `readyPercent`), in tenths.
const READY_TENTHS: u128 = 9;

/// Why a membership request failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MemberError {
    /// No member has that id.
    #[error("member not found")]
    NotFound,
    /// Another member already uses one of the peer URLs.
    #[error("Peer URLs already exists")]
    PeerUrlExists,
    /// Only learners can be promoted.
    #[error("can only promote a learner member")]
    NotLearner,
    /// The learner is too far behind the leader to be promoted.
    #[error("can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// The id chosen for a new member is taken.
    #[error("member ID already exist")]
    IdExists,
    /// Removing the last voter would leave no one to decide anything.
    #[error("cannot remove the last voting member")]
    LastVoter,
    /// Peer URLs missing or not of the form `http://ip:port`.
    #[error("given member URLs are invalid")]
    BadUrls,
    /// No leader was known before the deadline.
    #[error("no leader")]
    NoLeader,
    /// The deadline passed; the change may or may not have happened.
    #[error("request timed out")]
    Timeout,
    /// The leader failed while the change was in flight; it may or may not
    /// have happened.
    #[error("request timed out, possibly due to previous leader failure")]
    LeaderLost,
    /// This member is shutting down.
    #[error("server stopped")]
    Stopped,
}

impl MemberError {
    /// The error a leader's refusal stands for (`None` for kinds this
    /// member does not know).
    pub fn from_kind(kind: Kind) -> Option<MemberError> {
        Some(match kind {
            Kind::MemberNotFound => MemberError::NotFound,
            Kind::PeerUrlExists => MemberError::PeerUrlExists,
            Kind::MemberNotLearner => MemberError::NotLearner,
            Kind::LearnerNotReady => MemberError::LearnerNotReady,
            Kind::MemberIdExists => MemberError::IdExists,
            Kind::LastVoter => MemberError::LastVoter,
            Kind::Unknown => return None,
        })
    }

    /// How a leader reports this refusal to the member that forwarded the
    /// change (`None`: not a refusal, reported as a transport status).
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            MemberError::NotFound => Kind::MemberNotFound,
            MemberError::PeerUrlExists => Kind::PeerUrlExists,
            MemberError::NotLearner => Kind::MemberNotLearner,
            MemberError::LearnerNotReady => Kind::LearnerNotReady,
            MemberError::IdExists => Kind::MemberIdExists,
            MemberError::LastVoter => Kind::LastVoter,
            MemberError::BadUrls
            | MemberError::NoLeader
            | MemberError::Timeout
            | MemberError::LeaderLost
            | MemberError::Stopped => return None,
        })
    }
}

/// Result of one attempt at a change.
pub enum Outcome {
    /// Done; the membership after it.
    Done(Vec<MemberInfo>),
    /// Certainly not done (not the leader, another change in flight);
    /// safe to try again.
    Retry,
    /// Failed for good (or ambiguously: see the error).
    Failed(MemberError),
}

/// Whether a learner whose replication matched `learner` can be promoted
/// by a leader whose last log index is `leader` (etcd's rule: at least 90%
/// of the leader's index).
pub fn caught_up(leader: Option<u64>, learner: Option<u64>) -> bool {
    let leader = u128::from(leader.unwrap_or(0));
    let learner = u128::from(learner.unwrap_or(0));
    learner * 10 >= leader * READY_TENTHS
}

/// A fresh member id: a hash of the new member's peer URLs, the cluster
/// token and the time (as etcd), never 0 and never one of `taken`.
pub fn allocate_id(
    peer_urls: &[String],
    token: &str,
    now_nanos: u128,
    taken: impl Fn(NodeId) -> bool,
) -> NodeId {
    let mut urls: Vec<&str> = peer_urls.iter().map(String::as_str).collect();
    urls.sort_unstable();
    let mut salt: u64 = 0;
    loop {
        let now = now_nanos.to_be_bytes();
        let salt_bytes = salt.to_be_bytes();
        let mut parts: Vec<&[u8]> = urls.iter().map(|u| u.as_bytes()).collect();
        parts.extend([token.as_bytes(), now.as_slice(), salt_bytes.as_slice()]);
        let id = crate::config::fnv1a64(&parts);
        if id != 0 && !taken(id) {
            return id;
        }
        salt += 1;
    }
}

/// The members of `membership` as MemberList shows them, by id.
pub fn member_infos(membership: &Membership) -> Vec<MemberInfo> {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| MemberInfo {
            id: *id,
            is_learner: !voters.contains(id) && !node.pending_voter,
            node: Some(node.clone()),
        })
        .collect()
}

/// Whether any URL in `a` is also in `b`.
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().any(|u| b.contains(u))
}

/// Membership operations of one member; cheap to clone.
#[derive(Clone)]
pub struct MemberAdmin {
    shared: Arc<Shared>,
}

struct Shared {
    raft: Raft,
    me: NodeId,
    metrics: Metrics,
    peers: Peers,
    cluster_id: u64,
    token: String,
    request_timeout: Duration,
    /// Held by the change running on this member (as leader): each change
    /// checks the membership it is about to change.
    changing: tokio::sync::Mutex<()>,
    /// Members this one saw removed; their requests are answered with the
    /// "removed" status so that they stop.
    removed: Mutex<BTreeSet<NodeId>>,
}

impl MemberAdmin {
    /// Membership operations over `raft`, forwarding through `peers`.
    pub fn new(
        raft: Raft,
        me: NodeId,
        peers: Peers,
        cluster_id: u64,
        token: String,
        request_timeout: Duration,
    ) -> MemberAdmin {
        let metrics = raft.metrics();
        MemberAdmin {
            shared: Arc::new(Shared {
                raft,
                me,
                metrics,
                peers,
                cluster_id,
                token,
                request_timeout,
                changing: tokio::sync::Mutex::new(()),
                removed: Mutex::default(),
            }),
        }
    }

    /// This member's id.
    pub fn me(&self) -> NodeId {
        self.shared.me
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.shared.cluster_id
    }

    /// The raft handle.
    pub fn raft(&self) -> &Raft {
        &self.shared.raft
    }

    /// The raft metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The peer connections.
    pub fn peers(&self) -> &Peers {
        &self.shared.peers
    }

    /// The membership as this member knows it (the latest in its log,
    /// committed or not).
    pub fn members(&self) -> Vec<MemberInfo> {
        member_infos(self.shared.metrics.borrow().membership_config.membership())
    }

    /// This member's view, as `RaftTransport.Members` answers it.
    pub fn members_response(&self) -> raftpb::MembersResponse {
        raftpb::MembersResponse {
            cluster_id: self.shared.cluster_id,
            members: self.members(),
            leader_id: self.shared.metrics.borrow().current_leader.unwrap_or(0),
        }
    }

    /// Records members that left the membership.
    pub fn note_removed(&self, ids: impl IntoIterator<Item = NodeId>) {
        let mut removed = self
            .shared
            .removed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            if id != self.shared.me && removed.insert(id) {
                info!(member = format_args!("{id:x}"), "member removed");
            }
        }
    }

    /// Whether `id` was seen removed.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.shared
            .removed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&id)
    }

    /// Adds a member with `peer_urls` (a voter unless `is_learner`) and
    /// returns its id and the membership after.
    pub async fn add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(NodeId, Vec<MemberInfo>), MemberError> {
        if peer_urls.is_empty()
            || peer_urls
                .iter()
                .any(|u| crate::config::parse_host_port(u).is_err())
        {
            return Err(MemberError::BadUrls);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let known: BTreeSet<NodeId> = self.members().iter().map(|m| m.id).collect();
        let id = allocate_id(&peer_urls, &self.shared.token, now, |id| {
            known.contains(&id) || self.is_removed(id)
        });
        let change = Change::Add(raftpb::AddMember {
            id,
            peer_urls,
            is_learner,
        });
        let members = self.change(change).await?;
        Ok((id, members))
    }

    /// Runs `change` on the leader (here or forwarded), retrying while
    /// that is safe, until the request deadline.
    pub async fn change(&self, change: Change) -> Result<Vec<MemberInfo>, MemberError> {
        let deadline = Instant::now() + self.shared.request_timeout;
        let mut leader_seen = false;
        let mut attempted = false;
        loop {
            if Instant::now() >= deadline {
                return Err(if leader_seen {
                    MemberError::Timeout
                } else {
                    MemberError::NoLeader
                });
            }
            let outcome = match leader_view(&self.shared.metrics, self.shared.me) {
                LeaderView::Me => {
                    leader_seen = true;
                    self.change_on_leader(change.clone(), false, deadline).await
                }
                LeaderView::Other(id, member) => {
                    leader_seen = true;
                    self.forward(id, &member, change.clone(), deadline).await
                }
                LeaderView::Unknown => Outcome::Retry,
            };
            match outcome {
                Outcome::Done(members) => return Ok(members),
                // A removal retried after an attempt whose answer was lost
                // may find the member already gone: that is its success.
                Outcome::Failed(MemberError::NotFound)
                    if attempted && matches!(change, Change::Remove(_)) =>
                {
                    return Ok(self.members());
                }
                Outcome::Failed(err) => return Err(err),
                Outcome::Retry => {
                    attempted = leader_seen;
                    wait_for_change(&self.shared.metrics, deadline).await;
                }
            }
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        member: &Member,
        change: Change,
        deadline: Instant,
    ) -> Outcome {
        let mut client = match self.shared.peers.client(leader, member) {
            Ok(client) => client,
            Err(err) => {
                warn!(leader, %err, "cannot address the leader");
                return Outcome::Retry;
            }
        };
        let mut request = tonic::Request::new(raftpb::ChangeMembersRequest {
            change: Some(change),
        });
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match client.change_members(request).await {
            Ok(response) => match response.into_inner().result {
                Some(raftpb::change_members_response::Result::Members(m)) => {
                    Outcome::Done(m.members)
                }
                Some(raftpb::change_members_response::Result::NotLeader(_)) => Outcome::Retry,
                Some(raftpb::change_members_response::Result::Error(e)) => Outcome::Failed(
                    MemberError::from_kind(e.kind()).unwrap_or(MemberError::LeaderLost),
                ),
                None => Outcome::Failed(MemberError::LeaderLost),
            },
            Err(status) if never_sent(&status) => {
                debug!(leader, %status, "leader unreachable; retrying");
                Outcome::Retry
            }
            Err(status) => {
                debug!(leader, %status, "forwarded membership change failed in flight");
                Outcome::Failed(match status.code() {
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => MemberError::Timeout,
                    _ => MemberError::LeaderLost,
                })
            }
        }
    }

    /// Runs `change` on this member, which believes it leads, waiting at
    /// most until `deadline`. With `internal`, a promotion may also
    /// promote a pending voter (the leader's own promotion of members added
    /// as voters).
    pub async fn change_on_leader(
        &self,
        change: Change,
        internal: bool,
        deadline: Instant,
    ) -> Outcome {
        match tokio::time::timeout_at(deadline, self.change_locked(change, internal)).await {
            Ok(outcome) => outcome,
            // A voter change given up between its two steps leaves the
            // joint configuration in place; the member tasks finish it.
            Err(_) => Outcome::Failed(MemberError::Timeout),
        }
    }

    async fn change_locked(&self, change: Change, internal: bool) -> Outcome {
        let _one_at_a_time = self.shared.changing.lock().await;
        let membership = self
            .shared
            .metrics
            .borrow()
            .membership_config
            .membership()
            .clone();
        let planned = match plan(&membership, change, internal) {
            Ok(planned) => planned,
            Err(err) => return Outcome::Failed(err),
        };
        let result = match planned {
            Plan::Nothing => return Outcome::Done(member_infos(&membership)),
            Plan::AddLearner(id, node) => self.shared.raft.add_learner(id, node, false).await,
            Plan::Promote(id) => {
                if !self.learner_ready(id) {
                    return Outcome::Failed(MemberError::LearnerNotReady);
                }
                let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
                self.shared.raft.change_membership(change, true).await
            }
            Plan::Change(change, retain) => {
                let removed: Vec<NodeId> = match &change {
                    ChangeMembers::RemoveVoters(ids) | ChangeMembers::RemoveNodes(ids) => {
                        ids.iter().copied().collect()
                    }
                    _ => Vec::new(),
                };
                let result = self.shared.raft.change_membership(change, retain).await;
                if result.is_ok() {
                    self.note_removed(removed);
                }
                result
            }
        };
        match result {
            Ok(written) => {
                let members = match &written.membership {
                    Some(m) => member_infos(m),
                    None => self.members(),
                };
                Outcome::Done(members)
            }
            Err(err) => refused(err),
        }
    }

    /// Finishes a voter change left in a joint configuration (its leader
    /// failed, or its caller gave up, between the two steps): moves to the
    /// joint configuration's target. Removed voters leave for good, as every
    /// removal here does.
    pub async fn finish_joint(&self, deadline: Instant) -> Result<(), MemberError> {
        // A change in flight finishes its own joint configuration: wait for
        // it, then look again.
        let _one_at_a_time = self.shared.changing.lock().await;
        let target = {
            let m = self.shared.metrics.borrow();
            let configs = m.membership_config.membership().get_joint_config();
            if configs.len() < 2 {
                return Ok(());
            }
            configs.last().cloned().unwrap_or_default()
        };
        info!(
            ?target,
            "finishing a membership change left in a joint configuration"
        );
        let change = ChangeMembers::ReplaceAllVoters(target);
        match tokio::time::timeout_at(deadline, self.shared.raft.change_membership(change, false))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => match refused(err) {
                Outcome::Failed(err) => Err(err),
                Outcome::Done(_) | Outcome::Retry => Ok(()),
            },
            Err(_) => Err(MemberError::Timeout),
        }
    }

    /// Whether learner `id` caught up with this leader (etcd's rule, on
    /// openraft's replication metrics).
    pub fn learner_ready(&self, id: NodeId) -> bool {
        let m = self.shared.metrics.borrow();
        let Some(replication) = &m.replication else {
            return false;
        };
        match replication.get(&id) {
            Some(matched) => caught_up(m.last_log_index, matched.map(|l| l.index)),
            None => false,
        }
    }
}

/// What a change becomes in openraft terms, decided against the current
/// membership.
enum Plan {
    /// Already so (a publish of what is there, a retried add).
    Nothing,
    /// A new learner.
    AddLearner(NodeId, Member),
    /// Promote this learner, once it caught up.
    Promote(NodeId),
    /// Any other membership change, with its `retain`.
    Change(ChangeMembers<NodeId, Member>, bool),
}

/// Checks `change` against `membership` (etcd's checks and errors) and
/// decides the openraft change.
fn plan(membership: &Membership, change: Change, internal: bool) -> Result<Plan, MemberError> {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let nodes: BTreeMap<NodeId, &Member> = membership.nodes().map(|(id, n)| (*id, n)).collect();
    let url_taken = |urls: &[String], except: NodeId| {
        nodes
            .iter()
            .any(|(id, n)| *id != except && overlaps(urls, &n.peer_urls))
    };
    Ok(match change {
        Change::Add(add) => {
            if let Some(existing) = nodes.get(&add.id) {
                // A retry of an add whose answer was lost.
                if existing.peer_urls == add.peer_urls {
                    return Ok(Plan::Nothing);
                }
                return Err(MemberError::IdExists);
            }
            if url_taken(&add.peer_urls, add.id) {
                return Err(MemberError::PeerUrlExists);
            }
            let node = Member {
                name: String::new(),
                peer_urls: add.peer_urls,
                client_urls: Vec::new(),
                pending_voter: !add.is_learner,
            };
            Plan::AddLearner(add.id, node)
        }
        Change::Remove(remove) => {
            if !nodes.contains_key(&remove.id) {
                return Err(MemberError::NotFound);
            }
            let ids = BTreeSet::from([remove.id]);
            if voters.contains(&remove.id) {
                if voters.len() == 1 {
                    return Err(MemberError::LastVoter);
                }
                Plan::Change(ChangeMembers::RemoveVoters(ids), false)
            } else {
                Plan::Change(ChangeMembers::RemoveNodes(ids), false)
            }
        }
        Change::Update(update) => {
            let Some(node) = nodes.get(&update.id) else {
                return Err(MemberError::NotFound);
            };
            if update.peer_urls.is_empty() {
                return Err(MemberError::BadUrls);
            }
            if url_taken(&update.peer_urls, update.id) {
                return Err(MemberError::PeerUrlExists);
            }
            if node.peer_urls == update.peer_urls {
                return Ok(Plan::Nothing);
            }
            let node = Member {
                peer_urls: update.peer_urls,
                ..(*node).clone()
            };
            Plan::Change(
                ChangeMembers::SetNodes(BTreeMap::from([(update.id, node)])),
                true,
            )
        }
        Change::Promote(promote) => {
            let Some(node) = nodes.get(&promote.id) else {
                return Err(MemberError::NotFound);
            };
            if voters.contains(&promote.id) || (node.pending_voter && !internal) {
                return Err(MemberError::NotLearner);
            }
            Plan::Promote(promote.id)
        }
        Change::Publish(publish) => {
            let Some(node) = nodes.get(&publish.id) else {
                return Err(MemberError::NotFound);
            };
            if node.name == publish.name && node.client_urls == publish.client_urls {
                return Ok(Plan::Nothing);
            }
            let node = Member {
                name: publish.name,
                client_urls: publish.client_urls,
                ..(*node).clone()
            };
            Plan::Change(
                ChangeMembers::SetNodes(BTreeMap::from([(publish.id, node)])),
                true,
            )
        }
    })
}

/// What openraft's refusal of a membership change means for the caller.
fn refused(err: RaftError<NodeId, ClientWriteError<NodeId, Member>>) -> Outcome {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Outcome::Retry,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => match e {
            // Another change is still committing: this one was not proposed.
            ChangeMembershipError::InProgress(_) => Outcome::Retry,
            ChangeMembershipError::EmptyMembership(_) => Outcome::Failed(MemberError::LastVoter),
            ChangeMembershipError::LearnerNotFound(_) => Outcome::Failed(MemberError::NotFound),
        },
        RaftError::Fatal(err) => {
            warn!(%err, "raft stopped during a membership change");
            Outcome::Failed(MemberError::Stopped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, url: &str) -> Member {
        Member {
            name: name.to_string(),
            peer_urls: vec![url.to_string()],
            client_urls: Vec::new(),
            pending_voter: false,
        }
    }

    /// Voters 1 and 2, learner 3, and 4 added as a voter but not promoted.
    fn membership() -> Membership {
        let mut pending = node("", "http://127.0.0.1:4");
        pending.pending_voter = true;
        Membership::new(
            vec![BTreeSet::from([1, 2])],
            BTreeMap::from([
                (1, node("a", "http://127.0.0.1:1")),
                (2, node("b", "http://127.0.0.1:2")),
                (3, node("c", "http://127.0.0.1:3")),
                (4, pending),
            ]),
        )
    }

    #[test]
    fn caught_up_is_within_ninety_percent_of_the_leader() {
        assert!(caught_up(Some(100), Some(100)));
        assert!(caught_up(Some(100), Some(90)));
        assert!(!caught_up(Some(100), Some(89)));
        assert!(!caught_up(Some(100), None));
        assert!(caught_up(None, None));
        assert!(caught_up(Some(u64::MAX), Some(u64::MAX)));
    }

    #[test]
    fn allocated_ids_depend_on_urls_and_time_and_avoid_taken_ones() {
        let urls = vec!["http://127.0.0.1:2380".to_string()];
        let a = allocate_id(&urls, "t", 1, |_| false);
        assert_eq!(a, allocate_id(&urls, "t", 1, |_| false));
        assert_ne!(a, allocate_id(&urls, "t", 2, |_| false));
        assert_ne!(a, allocate_id(&urls, "u", 1, |_| false));
        let b = allocate_id(&urls, "t", 1, |id| id == a);
        assert_ne!(b, a);
        assert_ne!(b, 0);
    }

    #[test]
    fn member_infos_report_pending_voters_as_voters() {
        let infos = member_infos(&membership());
        let learner: BTreeMap<NodeId, bool> = infos.iter().map(|m| (m.id, m.is_learner)).collect();
        assert_eq!(
            learner,
            BTreeMap::from([(1, false), (2, false), (3, true), (4, false)])
        );
    }

    fn add(id: NodeId, url: &str, is_learner: bool) -> Change {
        Change::Add(raftpb::AddMember {
            id,
            peer_urls: vec![url.to_string()],
            is_learner,
        })
    }

    #[test]
    fn adds_are_learners_marked_when_meant_as_voters() {
        let m = membership();
        match plan(&m, add(9, "http://127.0.0.1:9", false), false) {
            Ok(Plan::AddLearner(9, node)) => assert!(node.pending_voter && node.name.is_empty()),
            _ => panic!("expected a new learner"),
        }
        match plan(&m, add(9, "http://127.0.0.1:9", true), false) {
            Ok(Plan::AddLearner(9, node)) => assert!(!node.pending_voter),
            _ => panic!("expected a new learner"),
        }
        assert_eq!(
            plan(&m, add(9, "http://127.0.0.1:2", false), false).err(),
            Some(MemberError::PeerUrlExists)
        );
        assert_eq!(
            plan(&m, add(2, "http://127.0.0.1:9", false), false).err(),
            Some(MemberError::IdExists)
        );
        assert!(matches!(
            plan(&m, add(2, "http://127.0.0.1:2", false), false),
            Ok(Plan::Nothing)
        ));
    }

    #[test]
    fn removals_and_promotions_follow_etcds_rules() {
        let m = membership();
        let remove = |id| Change::Remove(raftpb::RemoveMember { id });
        let promote = |id| Change::Promote(raftpb::PromoteMember { id });
        assert!(matches!(
            plan(&m, remove(1), false),
            Ok(Plan::Change(ChangeMembers::RemoveVoters(_), false))
        ));
        assert!(matches!(
            plan(&m, remove(3), false),
            Ok(Plan::Change(ChangeMembers::RemoveNodes(_), false))
        ));
        assert_eq!(
            plan(&m, remove(7), false).err(),
            Some(MemberError::NotFound)
        );
        assert_eq!(
            plan(&m, promote(1), false).err(),
            Some(MemberError::NotLearner)
        );
        assert_eq!(
            plan(&m, promote(4), false).err(),
            Some(MemberError::NotLearner)
        );
        assert!(matches!(plan(&m, promote(4), true), Ok(Plan::Promote(4))));
        assert!(matches!(plan(&m, promote(3), false), Ok(Plan::Promote(3))));
        assert_eq!(
            plan(&m, promote(7), false).err(),
            Some(MemberError::NotFound)
        );

        let single = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, node("a", "http://127.0.0.1:1"))]),
        );
        assert_eq!(
            plan(&single, remove(1), false).err(),
            Some(MemberError::LastVoter)
        );
    }

    #[test]
    fn updates_and_publishes_replace_only_their_fields() {
        let m = membership();
        let update = Change::Update(raftpb::UpdateMember {
            id: 1,
            peer_urls: vec!["http://127.0.0.1:11".into()],
        });
        match plan(&m, update, false) {
            Ok(Plan::Change(ChangeMembers::SetNodes(nodes), true)) => {
                assert_eq!(nodes[&1].name, "a");
                assert_eq!(nodes[&1].peer_urls, vec!["http://127.0.0.1:11"]);
            }
            _ => panic!("expected SetNodes"),
        }
        let taken = Change::Update(raftpb::UpdateMember {
            id: 1,
            peer_urls: vec!["http://127.0.0.1:2".into()],
        });
        assert_eq!(
            plan(&m, taken, false).err(),
            Some(MemberError::PeerUrlExists)
        );
        let publish = |name: &str| {
            Change::Publish(raftpb::PublishMember {
                id: 4,
                name: name.into(),
                client_urls: vec![],
            })
        };
        match plan(&m, publish("d"), false) {
            Ok(Plan::Change(ChangeMembers::SetNodes(nodes), true)) => {
                assert_eq!(nodes[&4].name, "d");
                assert!(nodes[&4].pending_voter, "publishing keeps the voter intent");
                assert_eq!(nodes[&4].peer_urls, vec!["http://127.0.0.1:4"]);
            }
            _ => panic!("expected SetNodes"),
        }
        assert!(matches!(plan(&m, publish(""), false), Ok(Plan::Nothing)));
    }

    #[test]
    fn refusal_kinds_round_trip() {
        for err in [
            MemberError::NotFound,
            MemberError::PeerUrlExists,
            MemberError::NotLearner,
            MemberError::LearnerNotReady,
            MemberError::IdExists,
            MemberError::LastVoter,
        ] {
            let kind = err.kind().expect("a refusal");
            assert_eq!(MemberError::from_kind(kind), Some(err));
        }
        assert_eq!(MemberError::Timeout.kind(), None);
    }
}
