//! The background duties membership gives every member, run on a short
//! tick:
//!
//! - publish this member's name and client URLs into the membership once it
//!   is in it (etcd's publish), so MemberList anywhere shows them;
//! - on the leader: promote learners that caught up when they were added as
//!   voters (or, with `--auto-promote-learners`, every learner), and finish
//!   a voter change left in a joint configuration;
//! - keep peer connections to the URLs the membership names;
//! - notice this member's removal (a committed membership without it after
//!   one with it, or a peer saying so) and stop it: raft stops, the data dir
//!   records the removal, and the member stops serving (as etcd's removed
//!   member shuts itself down).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use witan_proto::raftpb::{self, change_members_request::Change};

use super::membership::{MemberAdmin, MemberError, Outcome};
use super::NodeId;

/// How often the duties run.
const TICK: Duration = Duration::from_millis(100);
/// How long a removed leader keeps running so that followers learn the
/// membership that removed it is committed.
const STEP_DOWN_GRACE: Duration = Duration::from_secs(2);

/// What the member tasks need to know about this member.
#[derive(Debug, Clone)]
pub struct MemberSettings {
    /// This member's name.
    pub name: String,
    /// The client URLs it advertises.
    pub client_urls: Vec<String>,
    /// Whether the leader promotes every learner once caught up.
    pub auto_promote_learners: bool,
    /// The data dir (where a removal is recorded).
    pub data_dir: PathBuf,
    /// How long one change may take.
    pub request_timeout: Duration,
}

/// Starts the member tasks; they end when `stop` is set (by a shutdown, or
/// by the tasks themselves when this member was removed).
pub fn spawn(admin: MemberAdmin, settings: MemberSettings, stop: watch::Sender<bool>) {
    tokio::spawn(run(admin, settings, stop));
}

async fn run(admin: MemberAdmin, settings: MemberSettings, stop: watch::Sender<bool>) {
    let mut stopped = stop.subscribe();
    let mut removed_by_peer = admin.peers().removed();
    let mut tracker = RemovalTracker::new(admin.me());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = removed_by_peer.wait_for(|r| *r) => {
                warn!("a peer answered that this member was removed from the cluster");
                break;
            }
            _ = tick.tick() => {}
        }
        if let Some(committed) = committed_members(&admin) {
            let gone = tracker.observe(&committed);
            admin.note_removed(gone);
            if tracker.removed {
                break;
            }
            admin.peers().retain_urls(&peer_urls(&admin));
        }
        publish(&admin, &settings).await;
        if admin.raft().metrics().borrow().state == openraft::ServerState::Leader {
            lead(&admin, &settings).await;
        }
    }
    stop_removed(&admin, &settings, &stop).await;
}

/// The ids of the membership this member applied (so it is committed),
/// or `None` while its newest membership is not applied yet.
fn committed_members(admin: &MemberAdmin) -> Option<BTreeSet<NodeId>> {
    let m = admin.metrics().borrow();
    let config = &m.membership_config;
    let log_id = config.log_id().as_ref()?;
    let applied = m.last_applied.as_ref()?;
    (log_id.index <= applied.index)
        .then(|| config.membership().nodes().map(|(id, _)| *id).collect())
}

/// Every peer URL of the current membership.
fn peer_urls(admin: &MemberAdmin) -> BTreeSet<String> {
    admin
        .members()
        .into_iter()
        .filter_map(|m| m.node)
        .flat_map(|n| n.peer_urls)
        .collect()
}

/// Follows the committed membership: which members left it, and whether
/// this member did (only after it was once in it: a member joining replays
/// older memberships that do not list it yet).
#[derive(Debug)]
struct RemovalTracker {
    me: NodeId,
    seen_me: bool,
    last: BTreeSet<NodeId>,
    removed: bool,
}

impl RemovalTracker {
    fn new(me: NodeId) -> Self {
        RemovalTracker {
            me,
            seen_me: false,
            last: BTreeSet::new(),
            removed: false,
        }
    }

    /// Takes the next committed membership; returns the members that left.
    fn observe(&mut self, members: &BTreeSet<NodeId>) -> Vec<NodeId> {
        let gone = self.last.difference(members).copied().collect();
        if members.contains(&self.me) {
            self.seen_me = true;
        } else if self.seen_me {
            self.removed = true;
        }
        self.last = members.clone();
        gone
    }
}

/// Publishes this member's name and client URLs when the membership shows
/// others.
async fn publish(admin: &MemberAdmin, settings: &MemberSettings) {
    let me = admin.me();
    let Some(current) = admin
        .members()
        .into_iter()
        .find(|m| m.id == me)
        .and_then(|m| m.node)
    else {
        return;
    };
    if current.name == settings.name && current.client_urls == settings.client_urls {
        return;
    }
    let change = Change::Publish(raftpb::PublishMember {
        id: me,
        name: settings.name.clone(),
        client_urls: settings.client_urls.clone(),
    });
    match admin.change(change).await {
        Ok(_) => info!(name = %settings.name, "published this member's name and client URLs"),
        Err(err) => debug!(%err, "publishing this member's attributes failed; will retry"),
    }
}

/// The leader's duties: finish a joint configuration, promote learners
/// that caught up and are meant to be voters.
async fn lead(admin: &MemberAdmin, settings: &MemberSettings) {
    let deadline = Instant::now() + settings.request_timeout;
    let (joint, committed) = {
        let m = admin.metrics().borrow();
        let config = &m.membership_config;
        let committed = match (config.log_id(), &m.last_applied) {
            (Some(log_id), Some(applied)) => log_id.index <= applied.index,
            _ => false,
        };
        (config.membership().get_joint_config().len() > 1, committed)
    };
    if !committed {
        return;
    }
    if joint {
        if let Err(err) = admin.finish_joint(deadline).await {
            warn!(%err, "could not finish a joint membership change; will retry");
        }
        return;
    }
    let candidates: Vec<NodeId> = {
        let m = admin.metrics().borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .filter(|(id, node)| {
                !voters.contains(id) && (node.pending_voter || settings.auto_promote_learners)
            })
            .map(|(id, _)| *id)
            .collect()
    };
    let candidates: Vec<NodeId> = candidates
        .into_iter()
        .filter(|id| admin.learner_ready(*id))
        .collect();
    for id in candidates {
        let change = Change::Promote(raftpb::PromoteMember { id });
        match admin.change_on_leader(change, true, deadline).await {
            Outcome::Done(_) => info!(
                member = format_args!("{id:x}"),
                "promoted a caught-up learner to voter"
            ),
            Outcome::Retry => {}
            Outcome::Failed(MemberError::LearnerNotReady) => {}
            Outcome::Failed(err) => {
                warn!(member = format_args!("{id:x}"), %err, "could not promote a learner")
            }
        }
    }
}

/// Stops this removed member: it records the removal, lets a leader step
/// down (so followers learn the removal is committed), stops raft and ends
/// serving.
async fn stop_removed(admin: &MemberAdmin, settings: &MemberSettings, stop: &watch::Sender<bool>) {
    error!(
        id = format_args!("{:x}", admin.me()),
        "this member was removed from the cluster: it stops serving (restarting it needs an empty data dir and a new `member add`)"
    );
    if let Err(err) = super::join::mark_removed(&settings.data_dir) {
        error!(%err, "cannot record the removal in the data dir");
    }
    let mut metrics = admin.metrics().clone();
    let _ = tokio::time::timeout(
        STEP_DOWN_GRACE,
        metrics.wait_for(|m| m.state != openraft::ServerState::Leader),
    )
    .await;
    if let Err(err) = admin.raft().shutdown().await {
        warn!(%err, "raft did not shut down cleanly");
    }
    stop.send_replace(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_counts_only_after_this_member_was_in_the_membership() {
        let mut t = RemovalTracker::new(4);
        // A joining member replays memberships from before it was added.
        assert!(t.observe(&BTreeSet::from([1])).is_empty());
        assert_eq!(t.observe(&BTreeSet::from([1, 2, 3])), Vec::<NodeId>::new());
        assert!(!t.removed);
        assert_eq!(t.observe(&BTreeSet::from([1, 2, 4])), vec![3]);
        assert!(!t.removed);
        assert_eq!(t.observe(&BTreeSet::from([1, 2])), vec![4]);
        assert!(t.removed);
    }
}
