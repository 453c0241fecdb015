//! Lock workers: N worker processes each add 1 to a shared counter K times,
//! under one witan lock, writing through a fence.
//!
//! ```text
//! lock-workers run --workers 4 --iterations 25 --pause   # the demo
//! lock-workers worker --id 0 --iterations 25 --file F    # one worker (run starts them)
//! ```
//!
//! The counter lives outside witan, in a file that stands for any storage
//! service that checks fencing tokens: every access carries the token of
//! the lock hold it is made under, and the file refuses an access whose
//! token is older than the newest it has seen. With `--pause`, one worker
//! stops itself (SIGSTOP) inside the critical section, after reading the
//! counter; its session lease expires, the lock passes on, the others keep
//! counting, and the runner resumes it (SIGCONT). It carries on believing
//! it holds the lock — a paused process cannot know it lost it — and its
//! write is refused because a newer token has been seen. It then takes the
//! lock again and redoes its increment, so the final count is exactly
//! workers × iterations.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use witan_client::{Client, Session};
use witan_examples::Endpoints;

/// The lock every worker takes.
const LOCK_NAME: &[u8] = b"/examples/lock-workers";

#[derive(Parser)]
#[command(about = "Workers counting under a witan lock, with fencing")]
struct Args {
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the workers, wait for them, check the count.
    Run {
        /// Worker processes.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Increments per worker.
        #[arg(long, default_value_t = 25)]
        iterations: usize,
        /// Pause worker 0 inside its critical section until the lock has
        /// passed on, then resume it.
        #[arg(long)]
        pause: bool,
        /// Session TTL of each worker, in seconds.
        #[arg(long, default_value_t = 2)]
        ttl: i64,
        /// The counter file (default: a new file in the temp dir).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// One worker (started by `run`).
    Worker {
        #[arg(long)]
        id: usize,
        #[arg(long)]
        iterations: usize,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        ttl: i64,
        /// Stop (SIGSTOP) inside the critical section of this iteration.
        #[arg(long)]
        pause_at: Option<usize>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Run {
            workers,
            iterations,
            pause,
            ttl,
            file,
        } => run(&args.endpoints, workers, iterations, pause, ttl, file).await,
        Command::Worker {
            id,
            iterations,
            file,
            ttl,
            pause_at,
        } => {
            let client = args.endpoints.connect().await?;
            worker(&client, id, iterations, &file, ttl, pause_at).await
        }
    }
}

// ---- the fenced resource --------------------------------------------

/// The counter file: "<count> <newest token seen>". Each access locks the
/// file (the storage's own atomicity), checks the token and records it.
struct Counter {
    file: File,
}

/// An access refused because a newer lock hold has used the counter.
#[derive(Debug)]
struct Stale {
    newest: i64,
}

impl Counter {
    fn open(path: &Path) -> Result<Counter> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        file.lock()?;
        Ok(Counter { file })
    }

    fn state(&mut self) -> Result<(u64, i64)> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_string(&mut text)?;
        let mut parts = text.split_whitespace();
        let count = parts.next().context("empty counter file")?.parse()?;
        let token = parts
            .next()
            .context("counter file without a token")?
            .parse()?;
        Ok((count, token))
    }

    fn store(&mut self, count: u64, token: i64) -> Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        write!(self.file, "{count} {token}")?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Reads the count under `token`, which becomes the newest seen.
    fn read(path: &Path, token: i64) -> Result<Result<u64, Stale>> {
        let mut counter = Counter::open(path)?;
        let (count, newest) = counter.state()?;
        if token < newest {
            return Ok(Err(Stale { newest }));
        }
        counter.store(count, token)?;
        Ok(Ok(count))
    }

    /// Writes `count` under `token`, unless a newer token has been seen.
    fn write(path: &Path, token: i64, count: u64) -> Result<Result<(), Stale>> {
        let mut counter = Counter::open(path)?;
        let (_, newest) = counter.state()?;
        if token < newest {
            return Ok(Err(Stale { newest }));
        }
        counter.store(count, token)?;
        Ok(Ok(()))
    }
}

// ---- a worker ---------------------------------------------------------

async fn worker(
    client: &Client,
    id: usize,
    iterations: usize,
    file: &Path,
    ttl: i64,
    pause_at: Option<usize>,
) -> Result<()> {
    let lock = client.lock(LOCK_NAME);
    let mut session = Session::new(client, ttl).await?;
    let mut done = 0;
    let mut refused = 0;
    let mut pause_at = pause_at;
    while done < iterations {
        let guard = match lock.acquire(&session).await {
            Ok(guard) => guard,
            Err(e) => {
                // The session's lease is gone (it expired while this process
                // could not renew it): start a new one and queue again.
                println!("worker {id}: lock failed ({e}); new session");
                session = Session::new(client, ttl).await?;
                continue;
            }
        };
        let token = guard.token().0;
        let outcome = match Counter::read(file, token)? {
            Ok(count) => {
                if pause_at == Some(done) {
                    pause_at = None;
                    println!("worker {id}: holding token {token}, read {count}; pausing");
                    stop_self()?;
                    println!(
                        "worker {id}: resumed; writing {} with token {token}",
                        count + 1
                    );
                }
                Counter::write(file, token, count + 1)?
            }
            Err(stale) => Err(stale),
        };
        match outcome {
            Ok(()) => {
                done += 1;
                guard.release().await?;
            }
            Err(Stale { newest }) => {
                refused += 1;
                println!(
                    "worker {id}: write with token {token} REFUSED (token {newest} has been seen): \
                     the lock was lost while paused; taking it again"
                );
                drop(guard);
                session = Session::new(client, ttl).await?;
            }
        }
    }
    println!("worker {id}: {done} increments, {refused} refused");
    session.close().await?;
    Ok(())
}

/// Stops this process until someone sends it SIGCONT.
fn stop_self() -> Result<()> {
    let status = Process::new("kill")
        .args(["-STOP", &std::process::id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -STOP failed: {status}");
    }
    Ok(())
}

// ---- the runner ---------------------------------------------------------

async fn run(
    endpoints: &Endpoints,
    workers: usize,
    iterations: usize,
    pause: bool,
    ttl: i64,
    file: Option<PathBuf>,
) -> Result<()> {
    let file = file.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("lock-workers-{}.counter", std::process::id()))
    });
    std::fs::write(&file, "0 0")?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    for id in 0..workers {
        let mut cmd = Process::new(&exe);
        cmd.arg("--endpoints")
            .arg(endpoints.endpoints.join(","))
            .args(["worker", "--id", &id.to_string()])
            .args(["--iterations", &iterations.to_string()])
            .args(["--ttl", &ttl.to_string()])
            .arg("--file")
            .arg(&file);
        if pause && id == 0 {
            cmd.args(["--pause-at", &(iterations / 2).to_string()]);
        }
        children.push(cmd.spawn()?);
    }
    if pause {
        resume_when_lock_passed(children[0].id(), &file).await?;
    }
    let mut failed = false;
    for mut child in children {
        failed |= !child.wait()?.success();
    }
    let (count, _) = Counter::open(&file)?.state()?;
    let expected = (workers * iterations) as u64;
    println!("final count {count}, expected {expected} ({workers} workers x {iterations})");
    std::fs::remove_file(&file)?;
    if failed || count != expected {
        bail!("the count is wrong or a worker failed");
    }
    Ok(())
}

/// Waits until worker `pid` has stopped itself, then until another worker
/// has used the counter (the lock passed on when the paused worker's lease
/// expired), then resumes it.
async fn resume_when_lock_passed(pid: u32, file: &Path) -> Result<()> {
    while !is_stopped(pid)? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, paused_token) = Counter::open(file)?.state()?;
    println!(
        "runner: worker 0 is paused holding token {paused_token}; waiting for the lock to pass on"
    );
    loop {
        let (_, newest) = Counter::open(file)?.state()?;
        if newest > paused_token {
            println!("runner: token {newest} has used the counter; resuming worker 0");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Process::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -CONT failed: {status}");
    }
    Ok(())
}

/// Whether process `pid` is stopped (state T in /proc).
fn is_stopped(pid: u32) -> Result<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The state follows the command name, which is in parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .context("unreadable /proc stat")?;
    Ok(state == "T")
}
