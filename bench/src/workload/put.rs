//! `put`: every client puts one key at a time, sequential or random keys
//! of `--key-size` bytes with `--val-size` byte values.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::task::JoinSet;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::PutRequest;

use super::{join_tallies, timed};
use crate::cli::{PutArgs, Setup};
use crate::conn;
use crate::error::BenchError;
use crate::keys::{self, KeyGen};
use crate::pace::Pace;
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// Runs the put workload.
pub async fn run(setup: &Setup, args: &PutArgs) -> Result<Report, BenchError> {
    let keys = Arc::new(KeyGen::new(
        &setup.prefix,
        args.key_size,
        args.key_space,
        args.keys,
    )?);
    let channels = conn::open(&setup.endpoints, setup.conns).await?;
    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "put", progress::visible(setup.progress));
    let mut clients = JoinSet::new();
    for c in 0..setup.clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let (pace, keys, timeout, val_size) =
            (pace.clone(), keys.clone(), setup.timeout, args.val_size);
        clients.spawn(async move {
            let mut tally = Tally::new();
            let mut rng = StdRng::from_entropy();
            while let Some(op) = pace.next().await {
                let put = PutRequest {
                    key: keys.for_op(op, &mut rng),
                    value: keys::value(val_size, op),
                    ..Default::default()
                };
                timed(tally.op("put"), conn::call("put", timeout, kv.put(put))).await;
                pace.finished();
            }
            Ok(tally)
        });
    }
    let tally = join_tallies(clients).await?;
    let elapsed = pace.elapsed();
    progress.finish();

    let mut report = setup.report("put");
    report
        .param("key_size", args.key_size)
        .param("val_size", args.val_size)
        .param("keys", serde_json::to_value(args.keys).unwrap_or_default());
    if let Some(space) = args.key_space {
        report.param("key_space", space);
    }
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    Ok(report)
}
