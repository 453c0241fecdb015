//! `failover`: steady writes spread over every endpoint while the leader
//! is killed. Each client writes to its endpoint and moves on to the next
//! endpoint when a write fails or times out (as etcd's clients do); the
//! result is the longest time during which no client had a write
//! acknowledged, and how many writes failed.
//!
//! With `--kill-leader-cmd`, the run finds the leader itself (Maintenance
//! Status on every endpoint) and runs the command at `--kill-after`;
//! without it, an operator kills a member by hand during the run.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use witan_proto::etcdserverpb::{PutRequest, StatusRequest};

use super::timed;
use crate::cli::{Defaults, FailoverArgs, Setup};
use crate::conn;
use crate::error::BenchError;
use crate::keys;
use crate::pace::{Pace, Stop};
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// Defaults of the failover workload: 20 s of writes at 500 per second
/// (steady, so the gap is not hidden by a queue), 1 s per write (a write
/// stuck on a dead member is given up quickly, as a real client would).
pub const DEFAULTS: Defaults = Defaults {
    stop: Stop::After(Duration::from_secs(20)),
    rate: Some(500.0),
    timeout: Duration::from_secs(1),
};

/// When the leader is killed if the run is given a total, not a duration.
const KILL_AFTER_TOTAL: Duration = Duration::from_secs(5);

/// Runs the failover workload.
pub async fn run(setup: &Setup, args: &FailoverArgs) -> Result<Report, BenchError> {
    let endpoints = &setup.endpoints;
    // At least one connection to every endpoint, so a client can move on.
    let per_endpoint = setup.conns.div_ceil(endpoints.len()).max(1);
    let mut groups: Vec<Vec<Channel>> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        groups.push(conn::open(std::slice::from_ref(endpoint), per_endpoint).await?);
    }
    let kill_after = args.kill_after.unwrap_or(match setup.stop {
        Stop::After(d) => d / 3,
        Stop::Total(_) => KILL_AFTER_TOTAL,
    });

    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "failover", progress::visible(setup.progress));
    let killer = args.kill_leader_cmd.clone().map(|command| {
        let (endpoints, at, timeout) = (
            endpoints.clone(),
            pace.started() + kill_after,
            setup.timeout,
        );
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            kill_leader(&endpoints, &command, timeout).await
        })
    });

    let mut clients = JoinSet::new();
    for c in 0..setup.clients {
        let groups = groups.clone();
        let (pace, timeout, val_size, prefix) = (
            pace.clone(),
            setup.timeout,
            args.val_size,
            setup.prefix.clone(),
        );
        clients.spawn(async move {
            let mut tally = Tally::new();
            let mut acks = Vec::new();
            let mut endpoint = c % groups.len();
            while let Some(op) = pace.next().await {
                let group = &groups[endpoint];
                let mut kv = KvClient::new(group[(c / groups.len()) % group.len()].clone());
                let put = PutRequest {
                    key: format!("{prefix}{c}/{}", op % 1000).into_bytes(),
                    value: keys::value(val_size, op),
                    ..Default::default()
                };
                let call = conn::call("put", timeout, kv.put(put));
                if timed(tally.op("put"), call).await.is_some() {
                    acks.push(Instant::now());
                } else {
                    endpoint = (endpoint + 1) % groups.len();
                }
                pace.finished();
            }
            Ok::<_, BenchError>((tally, acks))
        });
    }
    let mut tally = Tally::new();
    let mut acks = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (client, client_acks) = done??;
        tally.merge(&client);
        acks.extend(client_acks);
    }
    let end = Instant::now();
    let elapsed = pace.elapsed();
    progress.finish();

    let mut report = setup.report("failover");
    report.param("val_size", args.val_size);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    let start = pace.started();
    let gap = longest_gap(start, end, &mut acks);
    report
        .extra("longest_gap_ms", gap.length.as_secs_f64() * 1000.0)
        .extra("longest_gap_start_s", (gap.from - start).as_secs_f64())
        .extra("failed_writes", tally.op("put").errors() as f64);
    if let Some(killer) = killer {
        match killer.await? {
            Ok(killed) => {
                // Writes in flight at the kill may still be acknowledged
                // after it: compare the gap's start with the kill, not the
                // first acknowledgement after it.
                report.extra("kill_at_s", (killed.at - start).as_secs_f64());
                report.notes.push(killed.describe());
            }
            Err(error) => report
                .notes
                .push(format!("the leader was not killed: {error}")),
        }
    }
    Ok(report)
}

/// The longest stretch without an acknowledged write.
#[derive(Debug, PartialEq, Eq)]
struct Gap {
    from: Instant,
    length: Duration,
}

/// The longest gap between `start`, the acknowledgements and `end`.
fn longest_gap(start: Instant, end: Instant, acks: &mut [Instant]) -> Gap {
    acks.sort_unstable();
    let mut gap = Gap {
        from: start,
        length: Duration::ZERO,
    };
    let mut previous = start;
    for &at in acks.iter().chain(std::iter::once(&end)) {
        let length = at.saturating_duration_since(previous);
        if length > gap.length {
            gap = Gap {
                from: previous,
                length,
            };
        }
        previous = previous.max(at);
    }
    gap
}

/// What the kill command did.
struct Killed {
    at: Instant,
    endpoint: String,
    id: u64,
    status: std::process::ExitStatus,
}

impl Killed {
    fn describe(&self) -> String {
        format!(
            "ran --kill-leader-cmd for leader {:x} at {} ({})",
            self.id, self.endpoint, self.status
        )
    }
}

/// Finds the leader and runs `command` with it in the environment.
async fn kill_leader(
    endpoints: &[String],
    command: &str,
    timeout: Duration,
) -> Result<Killed, BenchError> {
    let (endpoint, id) = find_leader(endpoints, timeout).await?;
    tracing::info!(%endpoint, id = format!("{id:x}"), "killing the leader");
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("WITAN_BENCH_LEADER_ENDPOINT", &endpoint)
        .env("WITAN_BENCH_LEADER_ID", format!("{id:x}"))
        .status()
        .await
        .map_err(BenchError::KillCommand)?;
    Ok(Killed {
        at: Instant::now(),
        endpoint,
        id,
        status,
    })
}

/// The endpoint of the member the others follow, and its id.
pub async fn find_leader(
    endpoints: &[String],
    timeout: Duration,
) -> Result<(String, u64), BenchError> {
    let mut members = Vec::new();
    let mut leader = 0;
    for endpoint in endpoints {
        let Ok(channel) = conn::connect(endpoint).await else {
            continue;
        };
        let mut maintenance = MaintenanceClient::new(channel);
        let call = conn::call("status", timeout, maintenance.status(StatusRequest {}));
        if let Ok(status) = call.await {
            if leader == 0 {
                leader = status.leader;
            }
            if let Some(header) = status.header {
                members.push((endpoint.clone(), header.member_id));
            }
        }
    }
    members
        .into_iter()
        .find(|(_, id)| *id == leader && leader != 0)
        .ok_or(BenchError::NoLeader { leader })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_gap_counts_the_edges_of_the_run() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut acks = vec![t0 + ms(30), t0 + ms(10), t0 + ms(500), t0 + ms(40)];
        let gap = longest_gap(t0, t0 + ms(600), &mut acks);
        assert_eq!(
            gap,
            Gap {
                from: t0 + ms(40),
                length: ms(460)
            }
        );

        // Nothing acknowledged: the whole run is the gap.
        let gap = longest_gap(t0, t0 + ms(600), &mut []);
        assert_eq!(
            gap,
            Gap {
                from: t0,
                length: ms(600)
            }
        );

        // A silent tail counts too.
        let gap = longest_gap(t0, t0 + ms(600), &mut [t0 + ms(5)]);
        assert_eq!(
            gap,
            Gap {
                from: t0 + ms(5),
                length: ms(595)
            }
        );
    }
}
