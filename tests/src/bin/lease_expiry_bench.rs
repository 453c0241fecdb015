//! Benchmark: many leases expiring in the same second. Grants `--leases`
//! leases with one key each, choosing each lease's TTL so that all of them
//! fall due within one second of a common deadline (granting 100,000 takes
//! longer than any one TTL, so equal TTLs would spread the expiries over the
//! whole grant time). Then it stops touching them and measures how long
//! after the deadline every key is gone, while a probe keeps writing and
//! records the latency of each write (mass expiry must not stall other
//! requests).
//!
//! `cargo run --release -p witan-tests --bin lease-expiry-bench -- \
//!    --endpoint http://127.0.0.1:2379 --leases 100000 --due-in 90s`
//!
//! Works against any etcd v3 server, so the same run can be made on etcd.

use std::time::Duration;

use anyhow::{bail, Context, Result};
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
    /// When, counted from the start of the run, every lease falls due. Must
    /// leave room for all grants plus the server's minimum TTL.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "90s")]
    due_in: Duration,
    /// Smallest TTL to ask for; a grant that would need less fails the run
    /// (the server would raise it, and the lease would fall due late).
    #[arg(long, default_value_t = 5)]
    min_ttl: i64,
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

/// TTL in whole seconds that makes a lease granted now fall due in
/// `[deadline, deadline + 1s)`: rounding up never makes it early.
fn ttl_until(deadline: Instant, now: Instant) -> i64 {
    let left = deadline.saturating_duration_since(now);
    left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = Client::connect([args.endpoint.clone()], None).await?;
    let prefix = format!("lease-expiry-bench/{}/", std::process::id());

    let started = Instant::now();
    let deadline = started + args.due_in;
    let granted: Vec<Result<()>> = stream::iter(0..args.leases)
        .map(|i| {
            let (mut c, key) = (client.clone(), format!("{prefix}{i:08}"));
            let min_ttl = args.min_ttl;
            async move {
                let ttl = ttl_until(deadline, Instant::now());
                if ttl < min_ttl {
                    bail!("granting is too slow to make every lease due together: raise --due-in");
                }
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
    let grants_done = Instant::now();
    println!(
        "granted {} leases with one key each in {:.1?} ({:.0} grants+puts/s); all due {:.1?} from now",
        args.leases,
        grants_done - started,
        args.leases as f64 / (grants_done - started).as_secs_f64(),
        deadline.saturating_duration_since(grants_done)
    );

    // Probe until every key is gone; keep each write's start time so the
    // latencies during the expiry burst can be told from the quiet ones.
    let mut probe = client.clone();
    let mut counter = client.clone();
    let count_opts = || GetOptions::new().with_prefix().with_count_only();
    let mut samples: Vec<(Instant, Duration)> = Vec::new();
    let mut first_gone: Option<Instant> = None;
    let gone_at = loop {
        let t = Instant::now();
        probe.put(format!("{prefix}probe"), "p", None).await?;
        samples.push((t, t.elapsed()));
        let left = counter
            .get(prefix.clone(), Some(count_opts()))
            .await?
            .count();
        // The probe key itself is the one left.
        if first_gone.is_none() && (left as usize) < args.leases + 1 {
            first_gone = Some(Instant::now());
        }
        if left <= 1 {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if Instant::now() > deadline + Duration::from_secs(600) {
            bail!("keys still present 10 minutes after they fell due");
        }
    };

    let first_gone = first_gone.context("no key ever went away")?;
    let relative = |t: Instant| -> String {
        if t >= deadline {
            format!("+{:.2?}", t - deadline)
        } else {
            format!("-{:.2?}", deadline - t)
        }
    };
    println!(
        "first key gone at deadline{}, every key gone at deadline{} (leases fall due within [deadline, deadline+1s))",
        relative(first_gone),
        relative(gone_at)
    );
    report("probe writes before the deadline", &samples, |t| {
        t < deadline
    });
    report("probe writes during the expiry", &samples, |t| {
        t >= deadline
    });
    client
        .clone()
        .delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    Ok(())
}

fn report(what: &str, samples: &[(Instant, Duration)], keep: impl Fn(Instant) -> bool) {
    let mut latencies: Vec<Duration> = samples
        .iter()
        .filter(|(t, _)| keep(*t))
        .map(|(_, d)| *d)
        .collect();
    latencies.sort();
    match latencies.last() {
        None => println!("{what}: none"),
        Some(max) => println!(
            "{what}: {} writes, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            max
        ),
    }
}
