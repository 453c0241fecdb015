//! A whole run: start a cluster of member processes, run register, lock and
//! watch clients against every member while the nemesis injects faults,
//! stop, heal everything, read the history back, and hand over the
//! [`Recording`] with the run's numbers. [`report`] is the one place the
//! recording meets the checks (`check::check_all`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use witan_client::Mode;

use super::check;
use super::clock::RunClock;
use super::faults::{FaultKind, FaultTuning};
use super::final_reads;
use super::history::Recording;
use super::locks::{LockClient, LockRecords};
use super::nemesis::{self, Nemesis, NemesisOptions};
use super::registers::RegisterClient;
use super::stats::RunStats;
use super::watchers::{WatchStart, Watcher, WatcherResult};
use super::workload::{register_key, Shared};
use crate::cluster::{Cluster, ClusterOptions};

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The member binary (`witan`).
    pub binary: PathBuf,
    /// Cluster size (3 or 5).
    pub members: usize,
    /// How long the workload runs at least (the nemesis also injects every
    /// kind once, which may take longer).
    pub duration: Duration,
    /// The fault kinds to inject.
    pub faults: Vec<FaultKind>,
    /// Register clients (spread over the members).
    pub register_clients: usize,
    /// Register keys.
    pub register_keys: usize,
    /// Longest pause between two register operations of a client.
    pub think: Duration,
    /// Register reads served locally (serializable), which may be stale:
    /// only for showing that the checks catch stale reads.
    pub serializable_reads: bool,
    /// Lock clients.
    pub lock_clients: usize,
    /// Session TTL of the lock clients, in seconds.
    pub lock_ttl: i64,
    /// How often a hold plays a paused process.
    pub lock_pause_chance: f64,
    /// Watchers.
    pub watchers: usize,
    /// Seed of every random choice (faults, operations).
    pub seed: u64,
    /// Deadline of one client operation.
    pub op_timeout: Duration,
    /// The members' heartbeat interval.
    pub heartbeat: Duration,
    /// The members' election timeout.
    pub election_timeout: Duration,
    /// Shortest and longest time a fault is held.
    pub hold: (Duration, Duration),
    /// Shortest and longest fault-free spell before each fault.
    pub quiet: (Duration, Duration),
    /// How long the cluster may take to recover from a fault.
    pub recover_within: Duration,
    /// How strong the faults are.
    pub tuning: FaultTuning,
}

impl RunOptions {
    /// Defaults for a run of `binary`: 3 members, a minute, every fault.
    pub fn new(binary: impl Into<PathBuf>) -> RunOptions {
        let heartbeat = Duration::from_millis(50);
        RunOptions {
            binary: binary.into(),
            members: 3,
            duration: Duration::from_secs(60),
            faults: FaultKind::ALL.to_vec(),
            register_clients: 6,
            register_keys: 4,
            think: Duration::from_millis(20),
            serializable_reads: false,
            lock_clients: 3,
            lock_ttl: 2,
            lock_pause_chance: 0.1,
            watchers: 3,
            seed: rand::thread_rng().gen(),
            op_timeout: Duration::from_millis(1500),
            heartbeat,
            election_timeout: Duration::from_millis(500),
            hold: (Duration::from_secs(2), Duration::from_secs(6)),
            quiet: (Duration::from_secs(1), Duration::from_secs(3)),
            recover_within: Duration::from_secs(60),
            tuning: FaultTuning::for_heartbeat(heartbeat),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The history, for the checks.
    pub recording: Recording,
    /// The run in numbers.
    pub stats: RunStats,
}

/// Runs the workload and the nemesis on a fresh cluster; the cluster is
/// stopped (every process killed) before this returns, also on an error.
pub async fn run(options: &RunOptions) -> Result<RunOutcome> {
    let binary = options.binary.to_string_lossy().into_owned();
    let cluster_options = ClusterOptions {
        size: options.members,
        heartbeat_ms: millis(options.heartbeat),
        election_ms: millis(options.election_timeout),
        // Members answer "unavailable" before the clients give up, so more
        // outcomes are definite.
        extra_args: vec![
            "--request-timeout".into(),
            format!("{}ms", millis(options.op_timeout) * 2 / 3),
        ],
    };
    let mut cluster = Cluster::start(&binary, cluster_options)
        .await
        .context("starting the cluster")?;
    let clock = RunClock::start();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let (shared, stop) = Shared::new(clock, cluster.endpoints(), options.op_timeout);
    let (end_tx, end_rx) = watch::channel(None);
    tracing::info!(
        seed = options.seed,
        members = options.members,
        "jepsen run starting"
    );

    let keys: Vec<String> = (0..options.register_keys).map(register_key).collect();
    let mut registers = JoinSet::new();
    for i in 0..options.register_clients {
        let client = RegisterClient::new(
            shared.clone(),
            i % options.members,
            keys.clone(),
            options.think,
            StdRng::seed_from_u64(rng.gen()),
        )
        .serializable_reads(options.serializable_reads);
        registers.spawn(client.run());
    }
    let mut locks = JoinSet::new();
    for i in 0..options.lock_clients {
        let mode = if i % 2 == 0 {
            Mode::Server
        } else {
            Mode::ClientSide
        };
        let client = LockClient::new(
            shared.clone(),
            (i + 1) % options.members,
            mode,
            options.lock_ttl,
            options.lock_pause_chance,
            StdRng::seed_from_u64(rng.gen()),
        );
        locks.spawn(client.run());
    }
    let mut watchers = JoinSet::new();
    for i in 0..options.watchers {
        // The first watches the whole history; the others start later,
        // a little behind the store (a catch-up, then live events).
        let (start, delay) = match i {
            0 => (WatchStart::Revision(1), Duration::ZERO),
            _ => (
                WatchStart::Behind(20 * i64::try_from(i).unwrap_or(1)),
                options.duration * u32::try_from(i).unwrap_or(1)
                    / u32::try_from(options.watchers).unwrap_or(1)
                    / 2,
            ),
        };
        let watcher = Watcher::new(
            shared.clone(),
            i % options.members,
            start,
            delay,
            end_rx.clone(),
            options.recover_within,
        );
        watchers.spawn(async move { (i, watcher.run().await) });
    }
    drop(end_rx);

    let nemesis_options = NemesisOptions {
        kinds: options.faults.clone(),
        hold: options.hold,
        quiet: options.quiet,
        recover_within: options.recover_within,
        election_timeout: options.election_timeout,
        tuning: options.tuning.clone(),
    };
    let mut nemesis = Nemesis::new(nemesis_options, clock, StdRng::seed_from_u64(rng.gen()));
    let started = Instant::now();
    nemesis
        .run(&mut cluster, started + options.duration)
        .await
        .with_context(|| format!("nemesis (faults so far: {:#?})", nemesis.records()))?;
    let workload = started.elapsed();
    tracing::info!("stopping the workload");
    let _ = stop.send(true);

    let mut recording = Recording::default();
    let mut stats = RunStats {
        members: options.members,
        seed: options.seed,
        workload,
        kinds: options.faults.clone(),
        faults: nemesis.records().to_vec(),
        ..RunStats::default()
    };
    while let Some(done) = registers.join_next().await {
        recording.registers.extend(done??);
    }
    while let Some(done) = locks.join_next().await {
        let records: LockRecords = done??;
        recording.lock_holds.extend(records.holds);
        recording.fenced_writes.extend(records.writes);
        stats.failed_acquires += records.failed_acquires;
        stats.paused_holds += records.paused_holds;
        stats.void_holds += records.void_holds;
    }

    tracing::info!("healing and reading the history back");
    nemesis::restore(&mut cluster, options.recover_within).await?;
    let end = final_reads::write_end_marker(&shared, options.recover_within).await?;
    stats.end_revision = end;
    let _ = end_tx.send(Some(end));
    let mut logs = Vec::new();
    while let Some(done) = watchers.join_next().await {
        let (i, result) = done?;
        let WatcherResult { log, problem } = result?;
        if let Some(problem) = problem {
            stats.problems.push(format!("watch {i}: {problem}"));
        }
        logs.push((i, log));
    }
    logs.sort_by_key(|(i, _)| *i);
    recording.watch_logs = logs.into_iter().map(|(_, log)| log).collect();

    let state = final_reads::read_back(&cluster.endpoints(), end, options.recover_within).await?;
    let first_watched = recording
        .watch_logs
        .iter()
        .map(|log| log.start_revision)
        .min()
        .unwrap_or(1);
    recording.reference_events = state
        .events
        .into_iter()
        .filter(|e| e.revision >= first_watched)
        .collect();
    recording.final_register_versions = state.register_versions;
    recording.resource_versions = state.resource_versions;
    stats.problems.extend(state.problems);
    stats.count(&recording);
    drop(cluster);
    Ok(RunOutcome { recording, stats })
}

/// The run's report and whether it passed: the run's numbers, the problems
/// the run noticed itself (stalled watches, members that disagree), and
/// the checks' report. The one place the recording meets the checks.
pub fn report(outcome: &RunOutcome) -> (String, bool) {
    let started = std::time::Instant::now();
    let checks = check::check_all(&outcome.recording);
    tracing::info!(took = ?started.elapsed(), "checks done");
    let text = format!("{}{checks}", outcome.stats);
    let passed = outcome.stats.problems.is_empty() && checks.passed();
    (text, passed)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
