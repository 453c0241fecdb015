//! Benchmark: watch event latency. `--watchers` watches on one prefix,
//! spread over `--connections` client connections; one writer puts keys
//! under the prefix one after another. The latency of an event at one
//! watcher is the time from the put's acknowledgement to the event's
//! arrival (0 when it arrived first).
//!
//! `cargo run --release -p witan-tests --bin watch-latency-bench -- \
//!    --endpoint http://127.0.0.1:2379 --watchers 1000 --connections 16 --puts 1000`
//!
//! Works against any etcd v3 server, so the same run can be made on etcd.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;
use etcd_client::{Client, WatchOptions};
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Measure watch event latency with many watchers")]
struct Args {
    /// Client URL of the server the watchers use.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoint: String,
    /// Client URL the writer uses (default: the same).
    #[arg(long)]
    writer_endpoint: Option<String>,
    /// Number of watchers.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Client connections the watchers are spread over.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Puts to make.
    #[arg(long, default_value_t = 1000)]
    puts: usize,
    /// Pause between puts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    interval: Duration,
}

type Arrivals = Arc<Mutex<Vec<(i64, Instant)>>>;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let prefix = format!("watch-latency-bench/{}/", std::process::id());
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        clients.push(Client::connect([args.endpoint.clone()], None).await?);
    }

    let mut arrivals: Vec<Arrivals> = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..args.watchers {
        let mut client = clients[w % clients.len()].clone();
        let mut stream = client
            .watch(prefix.clone(), Some(WatchOptions::new().with_prefix()))
            .await?;
        let seen: Arrivals = Arc::default();
        arrivals.push(seen.clone());
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(response)) = stream.message().await {
                let now = Instant::now();
                let mut seen = seen.lock().await;
                for event in response.events() {
                    if let Some(kv) = event.kv() {
                        seen.push((kv.mod_revision(), now));
                    }
                }
            }
        }));
    }
    println!(
        "{} watchers on {} connections ready",
        args.watchers,
        clients.len()
    );

    let mut writer = Client::connect(
        [args
            .writer_endpoint
            .clone()
            .unwrap_or(args.endpoint.clone())],
        None,
    )
    .await?;
    let mut acked: HashMap<i64, Instant> = HashMap::new();
    let mut last = 0;
    for i in 0..args.puts {
        let response = writer.put(format!("{prefix}{i:06}"), "v", None).await?;
        let now = Instant::now();
        let revision = response.header().map(|h| h.revision()).unwrap_or(0);
        acked.insert(revision, now);
        last = revision;
        tokio::time::sleep(args.interval).await;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    for seen in &arrivals {
        loop {
            if seen
                .lock()
                .await
                .last()
                .is_some_and(|(rev, _)| *rev >= last)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("a watcher did not receive every event within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut latencies = Vec::new();
    for seen in &arrivals {
        for (revision, at) in seen.lock().await.iter() {
            if let Some(ack) = acked.get(revision) {
                latencies.push(at.saturating_duration_since(*ack));
            }
        }
    }
    latencies.sort();
    println!(
        "{} events ({} puts x {} watchers): p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        latencies.len(),
        args.puts,
        args.watchers,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    for task in tasks {
        task.abort();
    }
    writer
        .delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    Ok(())
}
