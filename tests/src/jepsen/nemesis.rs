//! The nemesis: a schedule of real faults against a running cluster. Each
//! round waits a quiet spell, chooses a fault (see `faults`), injects it,
//! holds it, heals it, and waits until the cluster is healthy again; every
//! step is stamped on the run's clock for the report.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use tokio::time::Instant;

use super::clock::{secs, RunClock};
use super::faults::{Fault, FaultKind, FaultTuning};
use super::history::Nanos;
use crate::cluster::Cluster;

/// How the nemesis paces its faults.
#[derive(Debug, Clone)]
pub struct NemesisOptions {
    /// The kinds to inject, in turn (each at least once per run).
    pub kinds: Vec<FaultKind>,
    /// Shortest and longest time a fault is held.
    pub hold: (Duration, Duration),
    /// Shortest and longest fault-free spell before each fault.
    pub quiet: (Duration, Duration),
    /// How long the cluster may take to be healthy after a heal.
    pub recover_within: Duration,
    /// The members' election timeout: a pause lasts at least three times
    /// as long, so the others elect a new leader.
    pub election_timeout: Duration,
    /// How strong the faults are.
    pub tuning: FaultTuning,
}

/// One fault as injected.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    /// What was done.
    pub fault: Fault,
    /// When it was injected (run clock).
    pub injected: Nanos,
    /// When it was healed.
    pub healed: Nanos,
    /// When every member served linearizable reads again under one leader.
    pub recovered: Nanos,
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9} {}; healed {}, recovered {}",
            secs(self.injected),
            self.fault,
            secs(self.healed),
            secs(self.recovered)
        )
    }
}

/// Injects faults by schedule and remembers what it did.
pub struct Nemesis {
    options: NemesisOptions,
    clock: RunClock,
    rng: StdRng,
    deck: Vec<FaultKind>,
    records: Vec<FaultRecord>,
}

impl Nemesis {
    /// A nemesis drawing its choices from `rng`.
    pub fn new(options: NemesisOptions, clock: RunClock, rng: StdRng) -> Nemesis {
        Nemesis {
            options,
            clock,
            rng,
            deck: Vec::new(),
            records: Vec::new(),
        }
    }

    /// Every fault injected so far.
    pub fn records(&self) -> &[FaultRecord] {
        &self.records
    }

    /// Runs rounds until `until` has passed and every kind was injected at
    /// least once. On an error the cluster may be left faulty: call
    /// [`restore`].
    pub async fn run(&mut self, cluster: &mut Cluster, until: Instant) -> Result<()> {
        let mut pending = self.options.kinds.clone();
        while Instant::now() < until || !pending.is_empty() {
            let Some(kind) = self.next_kind(&pending) else {
                // No kinds: a fault-free run.
                tokio::time::sleep_until(until).await;
                return Ok(());
            };
            pending.retain(|k| *k != kind);
            self.round(cluster, kind).await?;
        }
        Ok(())
    }

    /// The next kind: the deck is every kind shuffled, dealt in turn; kinds
    /// not injected yet come first.
    fn next_kind(&mut self, pending: &[FaultKind]) -> Option<FaultKind> {
        if self.deck.is_empty() {
            self.deck = self.options.kinds.clone();
            self.deck.shuffle(&mut self.rng);
        }
        if let Some(at) = self.deck.iter().position(|k| pending.contains(k)) {
            return Some(self.deck.remove(at));
        }
        self.deck.pop()
    }

    async fn round(&mut self, cluster: &mut Cluster, kind: FaultKind) -> Result<()> {
        let quiet = between(&mut self.rng, self.options.quiet);
        tokio::time::sleep(quiet).await;
        let leader = cluster.leader(self.options.recover_within).await?;
        let fault = Fault::choose(
            kind,
            cluster.size(),
            leader,
            &self.options.tuning,
            &mut self.rng,
        );
        let mut hold = between(&mut self.rng, self.options.hold);
        if kind == FaultKind::Pause {
            hold = hold.max(self.options.election_timeout * 3);
        }
        let injected = self.clock.now();
        tracing::info!(at = %secs(injected), %fault, ?hold, "nemesis: injecting");
        inject(cluster, &fault)
            .await
            .with_context(|| format!("injecting {fault}"))?;
        tokio::time::sleep(hold).await;
        heal(cluster, &fault)
            .await
            .with_context(|| format!("healing {fault}"))?;
        let healed = self.clock.now();
        tracing::info!(at = %secs(healed), %fault, "nemesis: healed");
        wait_healthy(cluster, self.options.recover_within)
            .await
            .with_context(|| {
                format!(
                    "the cluster did not recover within {:?} after {fault} (healed at {})",
                    self.options.recover_within,
                    secs(healed)
                )
            })?;
        let recovered = self.clock.now();
        tracing::info!(at = %secs(recovered), "nemesis: cluster healthy");
        self.records.push(FaultRecord {
            fault,
            injected,
            healed,
            recovered,
        });
        Ok(())
    }
}

async fn inject(cluster: &mut Cluster, fault: &Fault) -> Result<()> {
    match fault {
        Fault::Kill { member, .. } => cluster.kill(*member),
        Fault::Crash { .. } => {
            for member in 0..cluster.size() {
                cluster.kill(member)?;
            }
            Ok(())
        }
        Fault::Pause { member } => cluster.pause(*member),
        Fault::Cut { links, .. } => cluster.cut_links(links).await,
        Fault::Delay { delays } => cluster.set_link_delays(delays).await,
        Fault::SlowFsync { members, delay, .. } => {
            for member in members {
                cluster.set_fsync_delay(*member, *delay).await?;
            }
            Ok(())
        }
    }
}

async fn heal(cluster: &mut Cluster, fault: &Fault) -> Result<()> {
    match fault {
        Fault::Kill { member, .. } => cluster.start_member(*member),
        Fault::Crash { .. } => {
            for member in 0..cluster.size() {
                cluster.start_member(member)?;
            }
            Ok(())
        }
        Fault::Pause { member } => cluster.resume(*member),
        Fault::Cut { .. } => cluster.cut_links(&Default::default()).await,
        Fault::Delay { .. } => cluster.set_link_delays(&Default::default()).await,
        Fault::SlowFsync { members, .. } => {
            for member in members {
                cluster.set_fsync_delay(*member, Duration::ZERO).await?;
            }
            Ok(())
        }
    }
}

/// Waits until every running member serves linearizable reads and all
/// agree on a leader.
pub async fn wait_healthy(cluster: &Cluster, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    cluster.wait_all_ready(within).await?;
    let left = deadline.saturating_duration_since(Instant::now());
    cluster.leader(left.max(Duration::from_secs(1))).await?;
    Ok(())
}

/// Undoes every fault, whatever the nemesis left: continues paused
/// members, restarts killed ones, restores every link and disk, and waits
/// until the cluster is healthy.
pub async fn restore(cluster: &mut Cluster, within: Duration) -> Result<()> {
    for member in 0..cluster.size() {
        if cluster.is_paused(member) {
            cluster.resume(member)?;
        }
        if !cluster.is_running(member) {
            cluster.start_member(member)?;
        }
    }
    let deadline = Instant::now() + within;
    // A restarted member may not listen yet: try until the deadline.
    loop {
        match cluster.heal().await {
            Ok(()) => break,
            Err(err) if Instant::now() >= deadline => {
                return Err(err.context("restoring every link and disk"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    wait_healthy(cluster, left.max(Duration::from_secs(5))).await
}

fn between(rng: &mut StdRng, (low, high): (Duration, Duration)) -> Duration {
    if high <= low {
        return low;
    }
    rng.gen_range(low..=high)
}
