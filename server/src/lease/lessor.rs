//! The lessor: while this member leads, it proposes `LeaseTick` every tick
//! interval with the time it measured since its previous tick (or since it
//! became leader), then `LeaseExpire` for the leases the tick expired.
//!
//! Ticks and expiries are appended only on this member as leader, never
//! forwarded: a tick measured by one leader must not be counted in another
//! leader's term (see docs/LEASES.md).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::{Command, CommandBatch, LeaseExpire, LeaseTick};

use crate::raft::leader::{leader_view, LeaderView, Metrics};
use crate::raft::proposer::{Attempt, Writer};
use crate::raft::NodeId;
use crate::storage::StateReader;

/// Most leases revoked by one `LeaseExpire` command.
pub const MAX_EXPIRE_BATCH: usize = 1000;

/// Time between ticks while only simple tokens (no lease) need the clock.
const TOKEN_TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Expiry batches proposed at once.
const EXPIRE_BATCHES_IN_FLIGHT: usize = 4;

/// How the lessor runs.
#[derive(Debug, Clone, Copy)]
pub struct LessorSettings {
    /// Time between ticks.
    pub tick_interval: Duration,
    /// How long one proposal may take.
    pub request_timeout: Duration,
}

/// The running lessor task of a member.
pub struct Lessor {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Lessor {
    /// Starts the lessor; it acts only while `me` leads.
    pub fn start(
        me: NodeId,
        metrics: Metrics,
        writer: Arc<Writer>,
        state: StateReader,
        settings: LessorSettings,
    ) -> Lessor {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(me, metrics, writer, state, settings, stopped));
        Lessor { stop, task }
    }

    /// Stops the task and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(
    me: NodeId,
    mut metrics: Metrics,
    writer: Arc<Writer>,
    state: StateReader,
    settings: LessorSettings,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        // Wait to lead.
        while leader_view(&metrics, me) != LeaderView::Me {
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                _ = stopped.changed() => return,
            }
        }
        info!("leading: the lessor ticks the lease clock");
        let term = metrics.borrow().current_term;
        // Time before this member led is never counted.
        let mut last_tick = Instant::now();
        let mut next = last_tick + settings.tick_interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = stopped.changed() => return,
            }
            if leader_view(&metrics, me) != LeaderView::Me || metrics.borrow().current_term != term
            {
                break;
            }
            let now = Instant::now();
            next = now + settings.tick_interval;
            let kv = &state.current().kv;
            if kv.leases().is_empty() {
                if !kv.auth().has_tokens() {
                    // Nothing to time: skip the log entry.
                    last_tick = now;
                    continue;
                }
                // Only auth tokens (TTLs in seconds): a tick a second is
                // enough; the time in between is counted by the next one.
                if now.duration_since(last_tick) < TOKEN_TICK_INTERVAL {
                    continue;
                }
            }
            let elapsed_ms =
                u64::try_from(now.duration_since(last_tick).as_millis()).unwrap_or(u64::MAX);
            // Whatever the outcome, this interval is spent: counting it again
            // in a later tick could expire a lease early, while losing it
            // only forgives a little.
            last_tick = now;
            let tick = Op::LeaseTick(LeaseTick { elapsed_ms });
            if !propose_local(&writer, tick, settings.request_timeout).await {
                continue;
            }
            expire(&writer, &state, settings.request_timeout).await;
        }
        info!("no longer leading: the lessor stops ticking");
    }
}

/// Revokes what the last tick expired, up to [`EXPIRE_BATCHES_IN_FLIGHT`]
/// batches at a time: replicating and applying one batch overlaps with the
/// next, so a mass expiry takes seconds, not one round trip per batch.
async fn expire(writer: &Writer, state: &StateReader, timeout: Duration) {
    let round = MAX_EXPIRE_BATCH * EXPIRE_BATCHES_IN_FLIGHT;
    loop {
        let expired = state.current().kv.leases().expired(round);
        if expired.is_empty() {
            return;
        }
        debug!(count = expired.len(), "revoking expired leases");
        let full = expired.len() == round;
        let proposals = expired.chunks(MAX_EXPIRE_BATCH).map(|ids| {
            propose_local(
                writer,
                Op::LeaseExpire(LeaseExpire { ids: ids.to_vec() }),
                timeout,
            )
        });
        let applied = futures::future::join_all(proposals).await;
        if applied.contains(&false) || !full {
            return;
        }
    }
}

/// Appends one command on this member as leader and waits until it is
/// applied; false if it was not (not leader any more, or failed).
async fn propose_local(writer: &Writer, op: Op, timeout: Duration) -> bool {
    let batch = CommandBatch {
        commands: vec![Command {
            op: Some(op),
            ..Default::default()
        }],
    };
    match writer.write_local(batch, Instant::now() + timeout).await {
        Attempt::Done(_) => true,
        Attempt::Retry => false,
        Attempt::Failed(err) => {
            warn!(%err, "lessor proposal failed");
            false
        }
    }
}
