//! Benchmark: many leases expiring together. Grants `--leases` leases with
//! one key each, stops touching them, and measures how long after their TTL
//! every key is gone, while a probe keeps writing and records the latency
//! of each write (expiry must not stall other requests).
//!
//! `cargo run --release -p witan-tests --bin lease-expiry-bench -- \
//!    --endpoint http://127.0.0.1:2379 --leases 100000 --ttl 10`
//!
//! Works against any etcd v3 server, so the same run can be made on etcd.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use etcd_client::{Client, GetOptions, PutOptions};
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Measure how fast many leases expiring together are revoked")]
struct Args {
    /// Client URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    endpoint: String,
    /// Leases to grant (one key each).
    #[arg(long, default_value_t = 100_000)]
    leases: usize,
    /// TTL of every lease, in seconds.
    #[arg(long, default_value_t = 10)]
    ttl: i64,
    /// Grants in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

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
    let client = Client::connect([args.endpoint.clone()], None).await?;
    let prefix = format!("lease-expiry-bench/{}/", std::process::id());

    let started = Instant::now();
    let granted: Vec<Result<()>> = stream::iter(0..args.leases)
        .map(|i| {
            let (mut c, key) = (client.clone(), format!("{prefix}{i:08}"));
            let ttl = args.ttl;
            async move {
                let id = c.lease_grant(ttl, None).await?.id();
                c.put(key, "x", Some(PutOptions::new().with_lease(id)))
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    granted.into_iter().collect::<Result<Vec<()>>>()?;
    let first_grant_done = Instant::now();
    println!(
        "granted {} leases with one key each in {:.1?} ({:.0} grants+puts/s)",
        args.leases,
        first_grant_done - started,
        args.leases as f64 / (first_grant_done - started).as_secs_f64()
    );

    // The last lease was granted at `first_grant_done`; all are due by TTL
    // after it. Probe writes until every key is gone.
    let due = first_grant_done + Duration::from_secs(args.ttl as u64);
    let mut probe = client.clone();
    let mut latencies = Vec::new();
    let mut counter = client.clone();
    let count_opts = || GetOptions::new().with_prefix().with_count_only();
    let gone_at = loop {
        let t = Instant::now();
        probe.put(format!("{prefix}probe"), "p", None).await?;
        latencies.push(t.elapsed());
        let left = counter
            .get(prefix.clone(), Some(count_opts()))
            .await?
            .count();
        // The probe key itself is the one left.
        if left <= 1 {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if Instant::now() > due + Duration::from_secs(600) {
            anyhow::bail!("keys still present 10 minutes after their TTL");
        }
    };
    latencies.sort();
    if gone_at < due {
        println!(
            "every key gone {:.2?} BEFORE the last lease's TTL ran out",
            due - gone_at
        );
    } else {
        println!(
            "every key gone {:.2?} after the last lease's TTL ran out",
            gone_at - due
        );
    }
    println!(
        "probe writes meanwhile: {} writes, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().context("no probe write")?
    );
    client
        .clone()
        .delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    Ok(())
}
