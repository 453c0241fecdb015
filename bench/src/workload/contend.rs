//! `lock` and `election`: contenders cycling through etcd's Lock service
//! (lock, then unlock) or Election service (campaign, then resign). Each
//! contender has its own connection and its own lease, as separate
//! processes would; contender i uses endpoint i mod endpoints and name
//! i mod `--names`. A cycle is counted when the release is acknowledged.

use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use witan_proto::v3electionpb::election_client::ElectionClient;
use witan_proto::v3electionpb::{CampaignRequest, LeaderKey, ResignRequest};
use witan_proto::v3lockpb::lock_client::LockClient;
use witan_proto::v3lockpb::{LockRequest, UnlockRequest};

use super::session::Session;
use super::{join_tallies, timed};
use crate::cli::{ContendArgs, Setup};
use crate::conn;
use crate::error::BenchError;
use crate::pace::Pace;
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// Which recipe the contenders cycle through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// Lock, then Unlock.
    Lock,
    /// Campaign, then Resign.
    Election,
}

impl Recipe {
    /// The workload's name.
    fn workload(self) -> &'static str {
        match self {
            Recipe::Lock => "lock",
            Recipe::Election => "election",
        }
    }

    /// The names of the acquire and release operations.
    fn ops(self) -> (&'static str, &'static str) {
        match self {
            Recipe::Lock => ("lock", "unlock"),
            Recipe::Election => ("campaign", "resign"),
        }
    }
}

/// What a contender holds between acquire and release.
enum Held {
    Lock(Vec<u8>),
    Leadership(LeaderKey),
}

/// One contender's clients.
struct Contender {
    recipe: Recipe,
    lock: LockClient<Channel>,
    election: ElectionClient<Channel>,
    lease: i64,
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Contender {
    async fn acquire(&mut self, timeout: std::time::Duration) -> Result<Held, BenchError> {
        let missing = |missing| BenchError::Incomplete {
            op: "campaign",
            missing,
        };
        match self.recipe {
            Recipe::Lock => {
                let request = LockRequest {
                    name: self.name.clone(),
                    lease: self.lease,
                };
                let held = conn::call("lock", timeout, self.lock.lock(request)).await?;
                Ok(Held::Lock(held.key))
            }
            Recipe::Election => {
                let request = CampaignRequest {
                    name: self.name.clone(),
                    lease: self.lease,
                    value: self.value.clone(),
                };
                let won = conn::call("campaign", timeout, self.election.campaign(request)).await?;
                won.leader
                    .map(Held::Leadership)
                    .ok_or_else(|| missing("leader key"))
            }
        }
    }

    async fn release(
        &mut self,
        held: Held,
        timeout: std::time::Duration,
    ) -> Result<(), BenchError> {
        match held {
            Held::Lock(key) => {
                conn::call("unlock", timeout, self.lock.unlock(UnlockRequest { key })).await?;
            }
            Held::Leadership(leader) => {
                let request = ResignRequest {
                    leader: Some(leader),
                };
                conn::call("resign", timeout, self.election.resign(request)).await?;
            }
        }
        Ok(())
    }
}

/// Runs the lock or election workload.
pub async fn run(setup: &Setup, args: &ContendArgs, recipe: Recipe) -> Result<Report, BenchError> {
    if args.names == 0 {
        return Err(BenchError::InvalidOption {
            option: "names",
            why: "must be at least 1",
        });
    }
    if args.ttl < 1 {
        return Err(BenchError::InvalidOption {
            option: "ttl",
            why: "must be at least 1 second",
        });
    }
    // Every contender connected and holding a lease before the clock
    // starts.
    let mut joining = JoinSet::new();
    for c in 0..setup.clients {
        let endpoint = setup.endpoints[c % setup.endpoints.len()].clone();
        let name = format!("{}{}/{}", setup.prefix, recipe.workload(), c % args.names).into_bytes();
        let (ttl, timeout) = (args.ttl, setup.timeout);
        joining.spawn(async move {
            let channel = conn::connect(&endpoint).await?;
            let session = Session::open(channel.clone(), ttl, timeout).await?;
            let contender = Contender {
                recipe,
                lock: LockClient::new(channel.clone()),
                election: ElectionClient::new(channel),
                lease: session.lease(),
                name,
                value: format!("contender-{c}").into_bytes(),
            };
            Ok::<_, BenchError>((contender, session))
        });
    }
    let mut contenders = Vec::with_capacity(setup.clients);
    let mut sessions = Vec::with_capacity(setup.clients);
    while let Some(joined) = joining.join_next().await {
        let (contender, session) = joined??;
        contenders.push(contender);
        sessions.push(session);
    }

    let (acquire_op, release_op) = recipe.ops();
    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, recipe.workload(), progress::visible(setup.progress));
    let mut running = JoinSet::new();
    for mut contender in contenders {
        let (pace, timeout) = (pace.clone(), setup.timeout);
        running.spawn(async move {
            let mut tally = Tally::new();
            tally.op("cycle");
            while pace.next().await.is_some() {
                let start = Instant::now();
                let acquired = timed(tally.op(acquire_op), contender.acquire(timeout)).await;
                let cycled = match acquired {
                    Some(held) => timed(tally.op(release_op), contender.release(held, timeout))
                        .await
                        .is_some(),
                    None => false,
                };
                if cycled {
                    tally.op("cycle").record(start.elapsed());
                } else {
                    tally
                        .op("cycle")
                        .record_error(&"the acquire or the release failed");
                }
                pace.finished();
            }
            Ok(tally)
        });
    }
    let tally = join_tallies(running).await?;
    let elapsed = pace.elapsed();
    progress.finish();
    for session in sessions {
        session.close().await;
    }

    let mut report = setup.report(recipe.workload());
    // One connection per contender, whatever --conns said.
    report
        .param("conns", setup.clients)
        .param("names", args.names)
        .param("ttl", args.ttl);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    Ok(report)
}
