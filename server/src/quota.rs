//! The space quota (etcd's `--quota-backend-bytes`): a task on every
//! member measures its state database and raises its NOSPACE alarm when the
//! pages in use reach the quota; beyond etcd, it clears that alarm again
//! once deletes and compaction brought the pages in use back below it (a
//! defragment is not needed for that: freed pages are off the count at
//! once).
//!
//! Each member checks its own database (only it can measure it) and
//! proposes the change of its own alarm through raft, as etcd does; the
//! leader also clears the alarms of members that left the cluster (nobody
//! else would: they would refuse writes forever). While
//! any member's NOSPACE is active the whole cluster refuses writes that
//! grow the store (`mvcc::check_space` at the API edge, and on apply).
//! The quota covers `state.db` (keys, history, leases: etcd's backend
//! database); the raft log, which etcd keeps outside its quota too, is
//! bounded by snapshots.
//!
//! Between two checks a member may exceed its quota by what is written in
//! one check interval (etcd instead checks each request's size).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};
use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmType};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::Command;

use crate::raft::leader::{leader_view, LeaderView, Metrics};
use crate::raft::proposer::Proposer;
use crate::raft::NodeId;
use crate::storage::{StateReader, StorageMaintenance};

/// etcd's default quota: 2 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// How often a member measures its database.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The quota in bytes for `--quota-backend-bytes` (0 or less: the default).
pub fn quota_bytes(flag: i64) -> u64 {
    u64::try_from(flag)
        .ok()
        .filter(|q| *q > 0)
        .unwrap_or(DEFAULT_QUOTA_BYTES)
}

/// The running quota task.
pub struct QuotaChecker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl QuotaChecker {
    /// Starts checking member `me`'s database against `quota` bytes.
    pub fn start(
        me: NodeId,
        metrics: Metrics,
        quota: u64,
        proposer: Proposer,
        state: StateReader,
        storage: StorageMaintenance,
        request_timeout: Duration,
    ) -> QuotaChecker {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(
            run(
                me,
                metrics,
                quota,
                proposer,
                state,
                storage,
                request_timeout,
                stopped,
            )
            .instrument(tracing::info_span!("quota")),
        );
        QuotaChecker { stop, task }
    }

    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What the checker should propose for a database using `in_use` bytes.
fn decide(in_use: u64, quota: u64, active: bool) -> Option<AlarmAction> {
    match (in_use >= quota, active) {
        (true, false) => Some(AlarmAction::Activate),
        (false, true) => Some(AlarmAction::Deactivate),
        _ => None,
    }
}

/// The alarms of members that are not in the cluster any more.
fn departed(alarms: &[AlarmMember], members: &BTreeSet<NodeId>) -> Vec<AlarmMember> {
    alarms
        .iter()
        .filter(|a| !members.contains(&a.member_id))
        .cloned()
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn run(
    me: NodeId,
    metrics: Metrics,
    quota: u64,
    proposer: Proposer,
    state: StateReader,
    storage: StorageMaintenance,
    request_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_INTERVAL) => {}
            _ = stopped.changed() => return,
        }
        let in_use = match storage.sizes().await {
            Ok(sizes) => sizes.state.in_use,
            Err(e) => {
                debug!(error = %e, "cannot measure the state database");
                continue;
            }
        };
        let alarms = state.current().kv.alarms().clone();
        let active = alarms.is_active(me, AlarmType::Nospace);
        if let Some(action) = decide(in_use, quota, active) {
            match action {
                AlarmAction::Activate => {
                    warn!(
                        in_use,
                        quota, "database space quota reached: raising NOSPACE"
                    )
                }
                _ => info!(
                    in_use,
                    quota, "database back below its quota: clearing NOSPACE"
                ),
            }
            let alarm = AlarmMember {
                member_id: me,
                alarm: AlarmType::Nospace as i32,
            };
            propose(&proposer, action, alarm, request_timeout).await;
        }
        if alarms.is_empty() || leader_view(&metrics, me) != LeaderView::Me {
            continue;
        }
        let members: BTreeSet<NodeId> = metrics
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        for alarm in departed(&alarms.list(AlarmType::None as i32), &members) {
            info!(
                member = alarm.member_id,
                "clearing the alarm of a member that left"
            );
            propose(&proposer, AlarmAction::Deactivate, alarm, request_timeout).await;
        }
    }
}

async fn propose(proposer: &Proposer, action: AlarmAction, alarm: AlarmMember, timeout: Duration) {
    let command = Command {
        op: Some(Op::Alarm(AlarmRequest {
            action: action as i32,
            member_id: alarm.member_id,
            alarm: alarm.alarm,
        })),
        ..Default::default()
    };
    if let Err(e) = proposer.propose(command, Instant::now() + timeout).await {
        warn!(error = %e, "cannot propose the alarm change; retrying");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_at_the_quota_and_clears_below_it() {
        assert_eq!(decide(100, 100, false), Some(AlarmAction::Activate));
        assert_eq!(decide(100, 100, true), None);
        assert_eq!(decide(99, 100, true), Some(AlarmAction::Deactivate));
        assert_eq!(decide(99, 100, false), None);
    }

    #[test]
    fn alarms_of_departed_members_are_found() {
        let alarm = |member_id| AlarmMember {
            member_id,
            alarm: AlarmType::Nospace as i32,
        };
        let members = BTreeSet::from([1, 2]);
        assert_eq!(departed(&[alarm(1), alarm(3)], &members), vec![alarm(3)]);
        assert!(departed(&[alarm(2)], &members).is_empty());
    }

    #[test]
    fn zero_means_etcds_default() {
        assert_eq!(quota_bytes(0), DEFAULT_QUOTA_BYTES);
        assert_eq!(quota_bytes(-5), DEFAULT_QUOTA_BYTES);
        assert_eq!(quota_bytes(4096), 4096);
    }
}
