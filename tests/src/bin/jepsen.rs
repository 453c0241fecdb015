//! Soak mode of witan's Jepsen-style suite: a cluster of real member
//! processes, concurrent register, lock and watch clients, a nemesis
//! injecting real faults, then the checks; the report goes to a file and
//! the exit code says whether the cluster ever lied (0 passed, 1 a check
//! failed, 2 the run itself failed).
//!
//! `cargo run -p witan-tests --bin jepsen -- --duration 10m --faults all \
//!    --members 3 --report jepsen-report.txt`
//!
//! Run through cargo it first builds the release `witan` binary (members
//! run optimized, as deployed); `--witan PATH` runs another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use witan_tests::jepsen::faults::FaultKind;
use witan_tests::jepsen::runner::{self, RunOptions};

#[derive(Parser)]
#[command(about = "Run witan's Jepsen-style fault suite and check the history")]
struct Args {
    /// How long the workload runs (every fault kind is injected at least
    /// once, which may take longer).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    duration: Duration,
    /// Fault kinds, comma-separated (kill, crash, pause, partition,
    /// isolate, bridge, delay, fsync), or `all`, or `none`.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// Where the report is written.
    #[arg(long, default_value = "jepsen-report.txt")]
    report: PathBuf,
    /// Seed of every random choice (random if not given; the report says
    /// which).
    #[arg(long)]
    seed: Option<u64>,
    /// Register clients (default: two per member).
    #[arg(long)]
    clients: Option<usize>,
    /// Register keys.
    #[arg(long, default_value_t = 4)]
    keys: usize,
    /// Lock clients.
    #[arg(long, default_value_t = 3)]
    lock_clients: usize,
    /// Watchers.
    #[arg(long, default_value_t = 3)]
    watchers: usize,
    /// Shortest time a fault is held.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    hold_min: Duration,
    /// Longest time a fault is held.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "8s")]
    hold_max: Duration,
    /// The member binary (default: the release `witan`, built first when
    /// run through cargo).
    #[arg(long)]
    witan: Option<PathBuf>,
    /// Log filter (RUST_LOG syntax).
    #[arg(long, default_value = "warn,witan_tests=info")]
    log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(args.log.as_str())
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("jepsen: cannot start a runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(soak(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("jepsen: the run failed: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn soak(args: Args) -> Result<bool> {
    let binary = match args.witan {
        Some(path) => path,
        None => release_witan()?,
    };
    let faults = match args.faults.trim() {
        "none" => Vec::new(),
        list => FaultKind::parse_list(list)?,
    };
    let mut options = RunOptions::new(binary);
    options.members = args.members;
    options.duration = args.duration;
    options.faults = faults;
    options.register_clients = args.clients.unwrap_or(2 * args.members);
    options.register_keys = args.keys;
    options.lock_clients = args.lock_clients;
    options.watchers = args.watchers;
    options.hold = (args.hold_min, args.hold_max.max(args.hold_min));
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    eprintln!(
        "jepsen: {} members of {}, {:?}, faults {:?}, seed {}",
        options.members,
        options.binary.display(),
        options.duration,
        args.faults,
        options.seed
    );
    let outcome = match runner::run(&options).await {
        Ok(outcome) => outcome,
        Err(err) => {
            // The report file says so too: a soak left running unattended
            // is read from there.
            let text = format!("the run failed (seed {}): {err:#}\n", options.seed);
            std::fs::write(&args.report, text)
                .with_context(|| format!("writing {}", args.report.display()))?;
            return Err(err);
        }
    };
    let (report, passed) = runner::report(&outcome);
    std::fs::write(&args.report, &report)
        .with_context(|| format!("writing {}", args.report.display()))?;
    println!("{report}");
    println!(
        "jepsen: {} (report in {})",
        if passed { "PASSED" } else { "FAILED" },
        args.report.display()
    );
    Ok(passed)
}

/// The release `witan` beside this program's target directory, built first
/// when this runs through cargo (so it is never stale).
fn release_witan() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this program")?;
    // <target>/<profile>/jepsen
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("this program is not in a cargo target directory")?;
    let binary = target.join("release").join("witan");
    if let Some(cargo) = std::env::var_os("CARGO") {
        eprintln!("jepsen: building the release witan binary");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the workspace of this package")?;
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "witan-server", "--bin", "witan"])
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", target)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release -p witan-server --bin witan failed: {status}");
        }
    }
    if !binary.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p witan-server --bin witan`, or pass --witan",
            binary.display()
        );
    }
    Ok(binary)
}
