//! The workloads, one file each, and what they share: running the
//! clients and merging their tallies, timing one call, and writing the
//! keys a read workload needs before it starts.
//!
//! Every workload speaks only the etcd v3 API (KV, Watch, Lease,
//! Maintenance, and etcd's Lock and Election services), so the same run
//! can be made against witan and against etcd.

mod contend;
mod failover;
mod lease_keepalive;
mod put;
mod range;
mod session;
mod txn_cas;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::PutRequest;

use self::contend::Recipe;
use crate::cli::{Defaults, Global, Workload};
use crate::conn;
use crate::error::BenchError;
use crate::keys::{self, KeyGen};
use crate::pace::Stop;
use crate::report::Report;
use crate::stats::{Recorder, Tally};

/// Defaults of the closed-loop workloads: 10,000 operations, no rate
/// limit, 10 s per request.
const CLOSED_LOOP: Defaults = Defaults {
    stop: Stop::Total(10_000),
    rate: None,
    timeout: Duration::from_secs(10),
};

/// Runs `workload` with the shared options `global`.
pub async fn run(global: &Global, workload: &Workload) -> Result<Report, BenchError> {
    match workload {
        Workload::Put(args) => put::run(&global.setup(CLOSED_LOOP)?, args).await,
        Workload::Range(args) => range::run(&global.setup(CLOSED_LOOP)?, args).await,
        Workload::TxnCas(args) => txn_cas::run(&global.setup(CLOSED_LOOP)?, args).await,
        Workload::LeaseKeepalive(args) => {
            lease_keepalive::run(&global.setup(CLOSED_LOOP)?, args).await
        }
        Workload::Watch(args) => watch::run(&global.setup(watch::DEFAULTS)?, args).await,
        Workload::Lock(args) => {
            contend::run(&global.setup(session::DEFAULTS)?, args, Recipe::Lock).await
        }
        Workload::Election(args) => {
            contend::run(&global.setup(session::DEFAULTS)?, args, Recipe::Election).await
        }
        Workload::Failover(args) => failover::run(&global.setup(failover::DEFAULTS)?, args).await,
    }
}

/// Awaits `op`, recording its latency in `recorder` when it succeeds and
/// counting it as failed when not.
async fn timed<T>(
    recorder: &mut Recorder,
    op: impl Future<Output = Result<T, BenchError>>,
) -> Option<T> {
    let start = Instant::now();
    match op.await {
        Ok(value) => {
            recorder.record(start.elapsed());
            Some(value)
        }
        Err(error) => {
            recorder.record_error(&error);
            None
        }
    }
}

/// Waits for every client and merges what they measured.
async fn join_tallies(
    mut clients: JoinSet<Result<Tally, BenchError>>,
) -> Result<Tally, BenchError> {
    let mut total = Tally::new();
    while let Some(done) = clients.join_next().await {
        total.merge(&done??);
    }
    Ok(total)
}

/// How many puts are in flight while preloading keys.
const PRELOAD_CONCURRENCY: usize = 32;

/// Writes keys 0..`keys.space()` with values of `val_size` bytes over
/// `channels`, before a measured run reads or swaps them. Any failure
/// ends the run: the measurement would not mean what it says.
async fn preload(
    channels: &[Channel],
    keys: &Arc<KeyGen>,
    val_size: usize,
    timeout: Duration,
) -> Result<(), BenchError> {
    let workers = PRELOAD_CONCURRENCY.min(keys.space() as usize).max(1);
    let mut tasks = JoinSet::new();
    for w in 0..workers {
        let mut kv = KvClient::new(channels[w % channels.len()].clone());
        let keys = keys.clone();
        tasks.spawn(async move {
            for n in (w as u64..keys.space()).step_by(workers) {
                let put = PutRequest {
                    key: keys.key(n),
                    value: keys::value(val_size, n),
                    ..Default::default()
                };
                conn::call("preload put", timeout, kv.put(put)).await?;
            }
            Ok::<(), BenchError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}
