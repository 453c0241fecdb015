//! Benchmark: lock acquire/release cycles through etcd's Lock service
//! (`v3lockpb.Lock`). `--clients` contenders, spread over `--names` lock
//! names and over the endpoints, each with its own lease, lock and unlock
//! as fast as they can for `--duration`; reports cycles per second and the
//! latency of Lock (waiting included) and of Unlock.
//!
//! `cargo run --release -p witan-tests --bin lock-bench -- \
//!    --endpoints http://127.0.0.1:2379 --names 1 --clients 16 --duration 10s`
//!
//! Works against any etcd v3 server, so the same run can be made on etcd.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use etcd_client::{Client, LockOptions};
use tokio::task::JoinSet;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Measure lock acquire/release cycles per second")]
struct Args {
    /// Client URLs (comma-separated); contender i uses endpoint i mod n.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    endpoints: Vec<String>,
    /// Lock names; contender i contends on name i mod names.
    #[arg(long, default_value_t = 1)]
    names: usize,
    /// Contenders (each its own connection and lease).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// How long to run.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// TTL of each contender's lease, in seconds (long enough to outlast
    /// the run: no keepalives compete with the cycles).
    #[arg(long, default_value_t = 600)]
    ttl: i64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Samples {
    lock: Vec<Duration>,
    unlock: Vec<Duration>,
}

async fn contend(mut client: Client, name: String, ttl: i64, until: Instant) -> Result<Samples> {
    let lease = client.lease_grant(ttl, None).await?.id();
    let mut samples = Samples {
        lock: Vec::new(),
        unlock: Vec::new(),
    };
    while Instant::now() < until {
        let t = Instant::now();
        let held = client
            .lock(name.as_str(), Some(LockOptions::new().with_lease(lease)))
            .await
            .context("lock")?;
        let locked = Instant::now();
        client.unlock(held.key()).await.context("unlock")?;
        samples.lock.push(locked - t);
        samples.unlock.push(locked.elapsed());
    }
    client.lease_revoke(lease).await?;
    Ok(samples)
}

fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{what:>7}: p50 {:>9.2?}  p90 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let run = format!("lock-bench/{}", std::process::id());
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let endpoint = &args.endpoints[i % args.endpoints.len()];
        clients.push(Client::connect([endpoint.as_str()], None).await?);
    }
    let started = Instant::now();
    let until = started + args.duration;
    let mut tasks = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let name = format!("{run}/{}", i % args.names.max(1));
        tasks.spawn(contend(client, name, args.ttl, until));
    }
    let (mut lock, mut unlock) = (Vec::new(), Vec::new());
    while let Some(done) = tasks.join_next().await {
        let samples = done??;
        lock.extend(samples.lock);
        unlock.extend(samples.unlock);
    }
    let elapsed = started.elapsed();
    println!(
        "{} names x {} contenders over {} endpoint(s): {} cycles in {:.1?} = {:.0} cycles/s",
        args.names,
        args.clients,
        args.endpoints.len(),
        lock.len(),
        elapsed,
        lock.len() as f64 / elapsed.as_secs_f64()
    );
    report("lock", lock);
    report("unlock", unlock);
    Ok(())
}
