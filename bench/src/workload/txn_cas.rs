//! `txn-cas`: compare-and-swap on `--keys` keys. Each operation reads a
//! random key's value and mod_revision (linearizable), then sends a Txn
//! that puts a new value if mod_revision is still the one read. A swap
//! that loses to another client's is a conflict, not a failure.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::task::JoinSet;
use tokio::time::Instant;
use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::{Compare, PutRequest, RangeRequest, RequestOp, TxnRequest};

use super::{join_tallies, preload, timed};
use crate::cli::{Setup, TxnCasArgs};
use crate::conn;
use crate::error::BenchError;
use crate::keys::{self, KeyGen, KeyOrder};
use crate::pace::Pace;
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::Tally;

/// The Txn that swaps `key` to `value` if its mod_revision is `seen`.
fn swap(key: Vec<u8>, seen: i64, value: Vec<u8>) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal as i32,
            target: CompareTarget::Mod as i32,
            key: key.clone(),
            target_union: Some(TargetUnion::ModRevision(seen)),
            ..Default::default()
        }],
        success: vec![RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key,
                value,
                ..Default::default()
            })),
        }],
        failure: Vec::new(),
    }
}

/// Runs the txn-cas workload.
pub async fn run(setup: &Setup, args: &TxnCasArgs) -> Result<Report, BenchError> {
    let keys = Arc::new(KeyGen::new(
        &setup.prefix,
        args.key_size,
        Some(args.keys),
        KeyOrder::Random,
    )?);
    let channels = conn::open(&setup.endpoints, setup.conns).await?;
    preload(&channels, &keys, args.val_size, setup.timeout).await?;

    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "txn-cas", progress::visible(setup.progress));
    let mut clients = JoinSet::new();
    for c in 0..setup.clients {
        let mut kv = KvClient::new(channels[c % channels.len()].clone());
        let (pace, keys, timeout, val_size) =
            (pace.clone(), keys.clone(), setup.timeout, args.val_size);
        clients.spawn(async move {
            let mut tally = Tally::new();
            // Register the report's rows in order, the whole cycle first.
            tally.op("cas");
            let mut rng = StdRng::from_entropy();
            while let Some(op) = pace.next().await {
                let start = Instant::now();
                let key = keys.for_op(op, &mut rng);
                let get = RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                };
                let Some(got) =
                    timed(tally.op("read"), conn::call("read", timeout, kv.range(get))).await
                else {
                    tally.op("cas").record_error(&"the read failed");
                    pace.finished();
                    continue;
                };
                let seen = got.kvs.first().map_or(0, |kv| kv.mod_revision);
                let txn = swap(key, seen, keys::value(val_size, op));
                match timed(tally.op("txn"), conn::call("txn", timeout, kv.txn(txn))).await {
                    Some(done) => {
                        tally.op("cas").record(start.elapsed());
                        tally.count(
                            if done.succeeded {
                                "swapped"
                            } else {
                                "conflicts"
                            },
                            1,
                        );
                    }
                    None => tally.op("cas").record_error(&"the txn failed"),
                }
                pace.finished();
            }
            Ok(tally)
        });
    }
    let tally = join_tallies(clients).await?;
    let elapsed = pace.elapsed();
    progress.finish();

    let mut report = setup.report("txn-cas");
    report
        .param("keys", args.keys)
        .param("key_size", args.key_size)
        .param("val_size", args.val_size);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = tally.summaries(elapsed);
    let swapped = tally.counter("swapped") as f64;
    report
        .extra("swapped", swapped)
        .extra("conflicts", tally.counter("conflicts") as f64)
        .extra(
            "swapped_per_sec",
            swapped / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swap_compares_the_mod_revision_and_puts() {
        let txn = swap(b"k".to_vec(), 42, b"v".to_vec());
        assert_eq!(txn.compare.len(), 1);
        let cmp = &txn.compare[0];
        assert_eq!(cmp.result, CompareResult::Equal as i32);
        assert_eq!(cmp.target, CompareTarget::Mod as i32);
        assert_eq!(cmp.key, b"k");
        assert!(cmp.range_end.is_empty());
        assert_eq!(cmp.target_union, Some(TargetUnion::ModRevision(42)));
        match &txn.success[..] {
            [RequestOp {
                request: Some(Request::RequestPut(put)),
            }] => {
                assert_eq!(
                    (put.key.as_slice(), put.value.as_slice()),
                    (&b"k"[..], &b"v"[..])
                );
            }
            other => panic!("success ops {other:?}"),
        }
        assert!(txn.failure.is_empty());
    }
}
