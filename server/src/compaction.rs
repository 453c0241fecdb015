//! Auto-compaction (etcd's `--auto-compaction-mode` and
//! `--auto-compaction-retention`): while this member leads, it proposes
//! compactions that keep
//! - `revision` mode: the last `retention` revisions (every check
//!   interval, default 5 minutes as etcd, compact to `current - retention`);
//! - `periodic` mode: at least `retention` of time (every check interval,
//!   default a tenth of the retention, it records the current revision,
//!   and compacts to the newest recorded revision that is at least
//!   `retention` old).
//!
//! Compactions are ordinary replicated commands, so followers compact at
//! the same revision; a new leader starts its own bookkeeping (periodic
//! mode then waits a full retention before its first compaction).

use std::collections::VecDeque;
use std::time::Duration;

use clap::ValueEnum;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};
use witan_proto::etcdserverpb::CompactionRequest;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Applied;
use witan_proto::raftpb::Command;

use crate::raft::leader::{leader_view, LeaderView, Metrics};
use crate::raft::proposer::Proposer;
use crate::raft::NodeId;
use crate::storage::StateReader;

/// etcd's check interval in revision mode.
const REVISION_MODE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Shortest default check interval in periodic mode.
const MIN_PERIODIC_INTERVAL: Duration = Duration::from_secs(1);

/// `--auto-compaction-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutoCompactionMode {
    /// Keep a span of time.
    Periodic,
    /// Keep a number of revisions.
    Revision,
}

/// What auto-compaction keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// No auto-compaction (retention 0).
    Off,
    /// Keep this much time.
    Period(Duration),
    /// Keep this many revisions.
    Revisions(i64),
}

/// An `--auto-compaction-retention` that does not fit its mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --auto-compaction-retention {value:?} for mode {mode}: {expected}")]
pub struct RetentionError {
    value: String,
    mode: &'static str,
    expected: &'static str,
}

impl Retention {
    /// Parses the retention flag as etcd does: in periodic mode a duration
    /// ("30m", "1h") or a number of hours ("1", "0.5"); in revision mode a
    /// number of revisions. "0" turns auto-compaction off.
    pub fn parse(mode: AutoCompactionMode, value: &str) -> Result<Retention, RetentionError> {
        let value = value.trim();
        match mode {
            AutoCompactionMode::Revision => match value.parse::<i64>() {
                Ok(0) => Ok(Retention::Off),
                Ok(n) if n > 0 => Ok(Retention::Revisions(n)),
                _ => Err(RetentionError {
                    value: value.to_string(),
                    mode: "revision",
                    expected: "expected a number of revisions",
                }),
            },
            AutoCompactionMode::Periodic => {
                let period = match value.parse::<f64>() {
                    Ok(hours) if hours >= 0.0 && hours.is_finite() => {
                        Some(Duration::from_secs_f64(hours * 3600.0))
                    }
                    Ok(_) => None,
                    Err(_) => humantime::parse_duration(value).ok(),
                };
                match period {
                    Some(p) if p.is_zero() => Ok(Retention::Off),
                    Some(p) => Ok(Retention::Period(p)),
                    None => Err(RetentionError {
                        value: value.to_string(),
                        mode: "periodic",
                        expected: "expected a duration (\"30m\") or a number of hours",
                    }),
                }
            }
        }
    }

    /// The check interval when none is configured.
    pub fn default_interval(&self) -> Duration {
        match self {
            Retention::Period(p) => (*p / 10).max(MIN_PERIODIC_INTERVAL),
            Retention::Revisions(_) | Retention::Off => REVISION_MODE_INTERVAL,
        }
    }
}

/// The running auto-compaction task.
pub struct AutoCompactor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AutoCompactor {
    /// Starts the task (it does nothing while this member does not lead);
    /// `None` when the retention is off.
    pub fn start(
        me: NodeId,
        retention: Retention,
        interval: Option<Duration>,
        metrics: Metrics,
        proposer: Proposer,
        state: StateReader,
        request_timeout: Duration,
    ) -> Option<AutoCompactor> {
        if retention == Retention::Off {
            return None;
        }
        let interval = interval.unwrap_or_else(|| retention.default_interval());
        info!(?retention, ?interval, "auto-compaction enabled");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(
            run(
                me,
                retention,
                interval,
                metrics,
                proposer,
                state,
                request_timeout,
                stopped,
            )
            .instrument(tracing::info_span!("auto_compaction")),
        );
        Some(AutoCompactor { stop, task })
    }

    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Revisions recorded in periodic mode: (when, revision), oldest first.
#[derive(Debug, Default)]
struct Samples(VecDeque<(Instant, i64)>);

impl Samples {
    /// Records `revision` at `now` and returns the newest revision recorded
    /// at least `retention` ago (dropping the older ones).
    fn record(&mut self, now: Instant, revision: i64, retention: Duration) -> Option<i64> {
        self.0.push_back((now, revision));
        let mut chosen = None;
        while let Some(&sample) = self.0.front() {
            if now.saturating_duration_since(sample.0) < retention {
                break;
            }
            chosen = Some(sample);
            self.0.pop_front();
        }
        // Keep the chosen sample: the next target is never older.
        if let Some(sample) = chosen {
            self.0.push_front(sample);
        }
        chosen.map(|(_, rev)| rev)
    }
}

/// The revision to compact to now, if any.
fn target(retention: Retention, samples: &mut Samples, now: Instant, current: i64) -> Option<i64> {
    match retention {
        Retention::Off => None,
        Retention::Revisions(keep) => Some(current - keep),
        Retention::Period(period) => samples.record(now, current, period),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    me: NodeId,
    retention: Retention,
    interval: Duration,
    mut metrics: Metrics,
    proposer: Proposer,
    state: StateReader,
    request_timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        while leader_view(&metrics, me) != LeaderView::Me {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = stopped.changed() => return,
            }
        }
        let term = metrics.borrow().current_term;
        let mut samples = Samples::default();
        loop {
            let kv = state.current().kv.clone();
            let now = Instant::now();
            if let Some(revision) = target(retention, &mut samples, now, kv.revision()) {
                if revision > kv.compact_revision() && revision > 0 {
                    compact(&proposer, revision, request_timeout).await;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.changed() => return,
            }
            if leader_view(&metrics, me) != LeaderView::Me || metrics.borrow().current_term != term
            {
                break;
            }
        }
    }
}

async fn compact(proposer: &Proposer, revision: i64, timeout: Duration) {
    let command = Command {
        op: Some(Op::Compact(CompactionRequest {
            revision,
            physical: false,
        })),
        ..Default::default()
    };
    match proposer.propose(command, Instant::now() + timeout).await {
        Ok(response) => match response.result {
            Some(Applied::Compact(_)) => info!(revision, "auto-compacted"),
            // Someone compacted further meanwhile: nothing to do.
            other => debug!(revision, ?other, "auto-compaction not applied"),
        },
        Err(e) => warn!(revision, error = %e, "auto-compaction failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_like_etcd() {
        use AutoCompactionMode::*;
        assert_eq!(Retention::parse(Periodic, "0"), Ok(Retention::Off));
        assert_eq!(
            Retention::parse(Periodic, "1"),
            Ok(Retention::Period(Duration::from_secs(3600)))
        );
        assert_eq!(
            Retention::parse(Periodic, "30m"),
            Ok(Retention::Period(Duration::from_secs(1800)))
        );
        assert_eq!(
            Retention::parse(Revision, "1000"),
            Ok(Retention::Revisions(1000))
        );
        assert_eq!(Retention::parse(Revision, "0"), Ok(Retention::Off));
        assert!(Retention::parse(Revision, "1h").is_err());
        assert!(Retention::parse(Periodic, "soon").is_err());
    }

    #[test]
    fn revision_mode_keeps_the_last_revisions() {
        let mut samples = Samples::default();
        let now = Instant::now();
        assert_eq!(
            target(Retention::Revisions(10), &mut samples, now, 100),
            Some(90)
        );
    }

    #[test]
    fn periodic_mode_compacts_to_what_is_old_enough() {
        let mut samples = Samples::default();
        let t0 = Instant::now();
        let period = Retention::Period(Duration::from_secs(60));
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(target(period, &mut samples, at(0), 10), None);
        assert_eq!(target(period, &mut samples, at(30), 20), None);
        assert_eq!(target(period, &mut samples, at(60), 30), Some(10));
        assert_eq!(target(period, &mut samples, at(70), 40), Some(10));
        assert_eq!(target(period, &mut samples, at(95), 50), Some(20));
    }
}
