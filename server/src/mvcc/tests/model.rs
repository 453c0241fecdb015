//! Randomized check of the read paths: whatever mix of batches, puts,
//! deletes and txns ran, a read at revision R (from the live map, by
//! rolling back pending changes, or from the history; inside a txn or not)
//! returns exactly the live keys the state had at R.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{
    DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse, RequestOp, TxnRequest,
};
use witan_proto::mvccpb::KeyValue;
use witan_proto::raftpb::Command;

use crate::mvcc::testing::{delete, put, range, txn, txn_resp, Store};
use crate::mvcc::KeyRange;

const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

fn random_key(rng: &mut StdRng) -> &'static str {
    KEYS[rng.gen_range(0..KEYS.len())]
}

fn random_range(rng: &mut StdRng) -> (String, String) {
    let start = random_key(rng);
    let end = match rng.gen_range(0..3) {
        0 => String::new(),
        1 => "\0".to_string(),
        _ => random_key(rng).to_string(),
    };
    (start.to_string(), end)
}

/// The live keys of `range` in a snapshot.
fn expected(snapshot: &[KeyValue], start: &str, end: &str) -> Vec<KeyValue> {
    let range = KeyRange::new(start.as_bytes(), end.as_bytes());
    snapshot
        .iter()
        .filter(|kv| range.contains(&kv.key))
        .cloned()
        .collect()
}

struct Read {
    revision: i64,
    start: String,
    end: String,
    limit: i64,
}

impl Read {
    fn random(rng: &mut StdRng, current: i64) -> Self {
        let (start, end) = random_range(rng);
        Read {
            revision: rng.gen_range(1..=current),
            start,
            end,
            limit: rng.gen_range(0..3),
        }
    }

    fn request(&self) -> RangeRequest {
        RangeRequest {
            revision: self.revision,
            limit: self.limit,
            ..range(&self.start, &self.end)
        }
    }

    fn check(&self, resp: &RangeResponse, snapshots: &BTreeMap<i64, Vec<KeyValue>>) {
        let all = expected(&snapshots[&self.revision], &self.start, &self.end);
        let limit = usize::try_from(self.limit).unwrap();
        let mut want = all.clone();
        if limit > 0 {
            want.truncate(limit);
        }
        assert_eq!(
            resp.kvs, want,
            "range [{:?}, {:?}) at {}",
            self.start, self.end, self.revision
        );
        assert_eq!(resp.count, all.len() as i64);
        assert_eq!(resp.more, limit > 0 && all.len() > limit);
    }
}

fn random_write(rng: &mut StdRng) -> RequestOp {
    if rng.gen_bool(0.7) {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: random_key(rng).into(),
                value: format!("v{}", rng.gen_range(0..100)).into(),
                ..PutRequest::default()
            })),
        }
    } else {
        let (key, range_end) = random_range(rng);
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                prev_kv: false,
            })),
        }
    }
}

#[tokio::test]
async fn reads_at_any_revision_match_the_state_at_that_revision() {
    for seed in 0..20 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut store = Store::default();
        let mut snapshots = BTreeMap::from([(1, Vec::new())]);
        for _batch in 0..15 {
            // Txn reads are checked after the batch, when the snapshots of
            // its revisions are all known.
            let mut pending_reads = Vec::new();
            let mut changes = Vec::new();
            for _ in 0..rng.gen_range(1..6) {
                let start = store.state.revision();
                let (cmd, reads) = random_command(&mut rng, start);
                let resp = store
                    .state
                    .apply(&cmd, &store.history, &mut changes)
                    .await
                    .unwrap();
                snapshots.insert(store.state.revision(), store.state.iter().collect());
                if !reads.is_empty() {
                    pending_reads.push((txn_resp(resp), reads));
                }
            }
            store.history.persist(&changes);
            for (resp, reads) in pending_reads {
                for (op, read) in resp.responses.iter().zip(&reads) {
                    let Some(Response::ResponseRange(got)) = &op.response else {
                        panic!("expected a range response");
                    };
                    read.check(got, &snapshots);
                }
            }
            // And outside any txn, after the batch is persisted.
            let current = store.state.revision();
            for _ in 0..5 {
                let read = Read::random(&mut rng, current);
                let got = store.range(read.request()).await.unwrap();
                read.check(&got, &snapshots);
            }
        }
    }
}

/// A put, a delete, or a txn whose first ops read at revisions up to
/// `start` (returned with it) followed by a few writes.
fn random_command(rng: &mut StdRng, start: i64) -> (Command, Vec<Read>) {
    match rng.gen_range(0..4) {
        0 => (put(random_key(rng), "p"), Vec::new()),
        1 => {
            let (key, end) = random_range(rng);
            (delete(&key, &end, false), Vec::new())
        }
        _ => {
            let reads: Vec<Read> = (0..rng.gen_range(1..4))
                .map(|_| Read::random(rng, start))
                .collect();
            let mut ops: Vec<RequestOp> = reads
                .iter()
                .map(|read| RequestOp {
                    request: Some(Request::RequestRange(read.request())),
                })
                .collect();
            ops.extend((0..rng.gen_range(0..3)).map(|_| random_write(rng)));
            let req = TxnRequest {
                compare: Vec::new(),
                success: ops,
                failure: Vec::new(),
            };
            (txn(req), reads)
        }
    }
}
