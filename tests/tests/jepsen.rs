//! The Jepsen-style suite, bounded for CI: a 3-member and a 5-member
//! cluster each through every fault kind at least once, under concurrent
//! register, lock and watch clients; the history must pass every check.
//! Also: the injected delays and stalls really bite, and the checks catch
//! stale reads when reads are served locally. The runs take turns (two
//! clusters at once would starve a 2-core machine).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;
use witan_tests::jepsen::faults::FaultKind;
use witan_tests::jepsen::runner::{self, RunOptions, RunOutcome};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

/// One run at a time in this binary.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,witan_tests=info")
        .with_test_writer()
        .try_init();
}

/// Short holds and quiet spells: every kind fits in well under a minute.
fn bounded(members: usize, faults: &[FaultKind], seed: u64) -> RunOptions {
    let mut options = RunOptions::new(NODE);
    options.members = members;
    options.faults = faults.to_vec();
    options.duration = Duration::from_secs(15);
    options.register_clients = 2 * members;
    options.seed = seed;
    options.hold = (Duration::from_millis(1000), Duration::from_millis(2500));
    options.quiet = (Duration::from_millis(500), Duration::from_millis(1500));
    options
}

/// Runs, prints the report, and asserts the checks passed and the run
/// really exercised what it claims.
async fn run_and_check(options: RunOptions) -> Result<RunOutcome> {
    let _turn = SERIAL.lock().await;
    init_tracing();
    let outcome = runner::run(&options).await?;
    let (report, passed) = runner::report(&outcome);
    eprintln!("{report}");
    assert!(passed, "the checks failed:\n{report}");

    let injected: BTreeSet<FaultKind> = outcome
        .stats
        .faults
        .iter()
        .map(|f| f.fault.kind())
        .collect();
    let wanted: BTreeSet<FaultKind> = options.faults.iter().copied().collect();
    assert_eq!(injected, wanted, "every fault kind was injected");
    let stats = &outcome.stats;
    assert!(
        stats.reads.ok > 0 && stats.writes.ok > 0 && stats.cas.ok > 0,
        "{stats}"
    );
    assert!(stats.holds > 0 && stats.fenced.ok > 0, "{stats}");
    assert_eq!(outcome.recording.watch_logs.len(), options.watchers);
    for log in &outcome.recording.watch_logs {
        assert!(
            !log.events.is_empty(),
            "watch on m{} saw events",
            log.member + 1
        );
    }
    assert!(!outcome.recording.reference_events.is_empty());
    Ok(outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_survive_every_fault_kind() -> Result<()> {
    run_and_check(bounded(3, &FaultKind::ALL, 0x5eed_0003)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_survive_every_fault_kind() -> Result<()> {
    run_and_check(bounded(5, &FaultKind::ALL, 0x5eed_0005)).await?;
    Ok(())
}

/// The injected slow links and stalled disks are real: a write cannot be
/// committed sooner than they allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_link_delays_and_disk_stalls_really_slow_commits() -> Result<()> {
    let _turn = SERIAL.lock().await;
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let mut client = cluster.client(leader).await?;
    client.put("warm", "up", None).await?;
    let stall = Duration::from_millis(300);
    // Below the 50 ms heartbeat interval, which is also how long openraft
    // waits for an append: slower links do not replicate at all.
    let delay = Duration::from_millis(30);

    for member in 0..cluster.size() {
        cluster.set_fsync_delay(member, stall).await?;
    }
    let started = Instant::now();
    client.put("stalled", "1", None).await?;
    assert!(
        started.elapsed() >= stall,
        "a commit waits for a majority's stalled fsync"
    );
    cluster.heal().await?;

    let mut delays = BTreeMap::new();
    for from in 0..cluster.size() {
        for to in (0..cluster.size()).filter(|to| *to != from) {
            delays.insert((from, to), delay);
        }
    }
    cluster.set_link_delays(&delays).await?;
    let started = Instant::now();
    client.put("delayed", "1", None).await?;
    assert!(
        started.elapsed() >= delay,
        "a commit waits for a follower that holds the leader's append"
    );
    cluster.heal().await?;
    client.put("healed", "1", None).await?;
    Ok(())
}

/// The suite catches a real weakness: reads served locally (serializable)
/// by members cut off from the leader are stale, and the linearizability
/// check must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_serializable_reads_are_caught() -> Result<()> {
    let _turn = SERIAL.lock().await;
    init_tracing();
    let mut options = bounded(3, &[FaultKind::Isolate, FaultKind::Partition], 0x5eed_05a1e);
    options.serializable_reads = true;
    let outcome = runner::run(&options).await?;
    let (report, passed) = runner::report(&outcome);
    eprintln!("{report}");
    assert!(!passed, "stale reads went unnoticed:\n{report}");
    assert!(
        report.contains("FAIL    linearizable registers"),
        "the linearizability check is the one that fails:\n{report}"
    );
    Ok(())
}
