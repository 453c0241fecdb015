//! `range`: every client reads one key at a time, drawn at random from
//! `--keys` keys written before the run, linearizable or serializable.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::task::JoinSet;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::RangeRequest;

use super::{join_tallies, preload, timed};
use crate::cli::{Consistency, RangeArgs, Setup};
use crate::conn;
use crate::error::BenchError;
use crate::keys::{KeyGen, KeyOrder};
use crate::pace::Pace;
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// Runs the range workload.
pub async fn run(setup: &Setup, args: &RangeArgs) -> Result<Report, BenchError> {
    let keys = Arc::new(KeyGen::new(
        &setup.prefix,
        args.key_size,
        Some(args.keys),
        KeyOrder::Random,
    )?);
    let channels = conn::open(&setup.endpoints, setup.conns).await?;
    preload(&channels, &keys, args.val_size, setup.timeout).await?;

    let serializable = args.consistency == Consistency::Serializable;
    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "range", progress::visible(setup.progress));
    let mut clients = JoinSet::new();
    for c in 0..setup.clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let (pace, keys, timeout) = (pace.clone(), keys.clone(), setup.timeout);
        clients.spawn(async move {
            let mut tally = Tally::new();
            let mut rng = StdRng::from_entropy();
            while let Some(op) = pace.next().await {
                let get = RangeRequest {
                    key: keys.for_op(op, &mut rng),
                    serializable,
                    ..Default::default()
                };
                if let Some(got) = timed(
                    tally.op("range"),
                    conn::call("range", timeout, kv.range(get)),
                )
                .await
                {
                    // Every key was written before the run: a miss is a
                    // wrong answer, worth seeing in the report.
                    if got.kvs.is_empty() {
                        tally.count("missing_keys", 1);
                    }
                }
                pace.finished();
            }
            Ok(tally)
        });
    }
    let tally = join_tallies(clients).await?;
    let elapsed = pace.elapsed();
    progress.finish();

    let mut report = setup.report("range");
    report
        .param("consistency", if serializable { "s" } else { "l" })
        .param("keys", args.keys)
        .param("key_size", args.key_size)
        .param("val_size", args.val_size);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    report.extra("missing_keys", tally.counter("missing_keys") as f64);
    Ok(report)
}
