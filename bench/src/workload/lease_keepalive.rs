//! `lease-keepalive`: `--leases` leases granted before the run, shared
//! out among the clients; each client keeps its leases alive in turn over
//! its own LeaseKeepAlive stream, one request at a time. The leases are
//! revoked after the run.

use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest};

use super::session::KeepAlive;
use super::{join_tallies, timed};
use crate::cli::{LeaseArgs, Setup};
use crate::conn;
use crate::error::BenchError;
use crate::pace::Pace;
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// Runs the lease-keepalive workload.
pub async fn run(setup: &Setup, args: &LeaseArgs) -> Result<Report, BenchError> {
    if args.leases == 0 {
        return Err(BenchError::InvalidOption {
            option: "leases",
            why: "must be at least 1",
        });
    }
    if args.ttl < 1 {
        return Err(BenchError::InvalidOption {
            option: "ttl",
            why: "must be at least 1 second",
        });
    }
    let channels = conn::open(&setup.endpoints, setup.conns).await?;
    let clients = setup.clients.min(args.leases as usize);
    let channel_of = |c: usize| channels[c % channels.len()].clone();

    let granting_started = Instant::now();
    // Grant: client c grants leases c, c + clients, ... on its connection.
    let mut granting = JoinSet::new();
    for c in 0..clients {
        let mut lease = LeaseClient::new(channel_of(c));
        let share = (c as u64..args.leases).step_by(clients).count();
        let (ttl, timeout) = (args.ttl, setup.timeout);
        granting.spawn(async move {
            let mut tally = Tally::new();
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                let grant = LeaseGrantRequest { ttl, id: 0 };
                let call = conn::call("lease grant", timeout, lease.lease_grant(grant));
                if let Some(granted) = timed(tally.op("grant"), call).await {
                    ids.push(granted.id);
                }
            }
            (c, ids, tally)
        });
    }
    let mut leases = vec![Vec::new(); clients];
    let mut grants = Tally::new();
    while let Some(done) = granting.join_next().await {
        let (c, ids, tally) = done?;
        leases[c] = ids;
        grants.merge(&tally);
    }
    let granting_took = granting_started.elapsed();

    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "keepalive", progress::visible(setup.progress));
    let mut running = JoinSet::new();
    for (c, ids) in leases.iter().enumerate() {
        if ids.is_empty() {
            continue;
        }
        let (pace, ids, timeout) = (pace.clone(), ids.clone(), setup.timeout);
        let mut keepalive = KeepAlive::new(channel_of(c));
        running.spawn(async move {
            let mut tally = Tally::new();
            let mut turn = 0;
            while pace.next().await.is_some() {
                let id = ids[turn % ids.len()];
                turn += 1;
                if let Some(0) = timed(tally.op("keepalive"), keepalive.refresh(id, timeout)).await
                {
                    tally.count("expired", 1);
                }
                pace.finished();
            }
            Ok(tally)
        });
    }
    let tally = join_tallies(running).await?;
    let elapsed = pace.elapsed();
    progress.finish();
    let revoke_failures = revoke_all(&leases, &channel_of, setup.timeout).await;

    let mut report = setup.report("lease-keepalive");
    report.param("leases", args.leases).param("ttl", args.ttl);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    // Grants happen before the measured run: their rate is over the
    // granting phase.
    report.ops.extend(grants.summaries(granting_took));
    report
        .extra("expired", tally.counter("expired") as f64)
        .extra("revoke_failures", revoke_failures as f64);
    Ok(report)
}

/// Revokes every lease, each client's over its own connection; returns
/// how many revocations failed (the leases then expire by themselves).
async fn revoke_all(
    leases: &[Vec<i64>],
    channel_of: &impl Fn(usize) -> Channel,
    timeout: std::time::Duration,
) -> u64 {
    let mut revoking = JoinSet::new();
    for (c, ids) in leases.iter().enumerate() {
        let mut lease = LeaseClient::new(channel_of(c));
        let ids = ids.clone();
        revoking.spawn(async move {
            let mut failed = 0u64;
            for id in ids {
                let revoke = LeaseRevokeRequest { id };
                if let Err(error) =
                    conn::call("lease revoke", timeout, lease.lease_revoke(revoke)).await
                {
                    tracing::debug!(id, %error, "revoke failed");
                    failed += 1;
                }
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(done) = revoking.join_next().await {
        failed += done.unwrap_or(0);
    }
    failed
}
