//! Historical reads (from the history, and inside a batch from changes not
//! yet persisted), compaction, and history failures.

use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, RequestOp, TxnRequest};
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::CommandResponse;

use crate::mvcc::testing::{
    compact, compact_resp, delete, keys, kv, put, range, rejection, rev, txn, txn_resp,
    BrokenHistory, MemHistory, Store,
};
use crate::mvcc::{KvState, MvccError};

fn at(revision: i64, limit: i64) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            revision,
            limit,
            ..range("a", "\0")
        })),
    }
}

fn ranges(resp: CommandResponse) -> Vec<RangeResponse> {
    txn_resp(resp)
        .responses
        .into_iter()
        .map(|op| match op.response {
            Some(Response::ResponseRange(r)) => r,
            other => panic!("expected a range response, got {other:?}"),
        })
        .collect()
}

fn reads(ops: Vec<RequestOp>) -> witan_proto::raftpb::Command {
    txn(TxnRequest {
        compare: Vec::new(),
        success: ops,
        failure: Vec::new(),
    })
}

#[tokio::test]
async fn reads_inside_a_batch_merge_history_and_pending_changes() {
    let mut store = Store::default();
    // Persisted: a=0 (2), b=0 (3).
    store.apply_batch(vec![put("a", "0"), put("b", "0")]).await;
    // One batch: a=1 (4), delete b (5), c=1 (6), then reads at every
    // revision; revisions 4..=6 are only in the batch's pending changes.
    let responses = store
        .apply_batch(vec![
            put("a", "1"),
            delete("b", "", false),
            put("c", "1"),
            reads(vec![
                at(2, 0),
                at(3, 0),
                at(4, 0),
                at(5, 0),
                at(6, 0),
                at(0, 0),
                at(4, 1),
            ]),
        ])
        .await;
    let got = ranges(responses.into_iter().nth(3).unwrap());
    let values = |r: &RangeResponse| {
        r.kvs
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&kv.key),
                    String::from_utf8_lossy(&kv.value)
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&got[0]), ["a=0"]);
    assert_eq!(values(&got[1]), ["a=0", "b=0"]);
    assert_eq!(values(&got[2]), ["a=1", "b=0"]);
    assert_eq!(values(&got[3]), ["a=1"]);
    assert_eq!(values(&got[4]), ["a=1", "c=1"]);
    assert_eq!(values(&got[5]), ["a=1", "c=1"]);
    assert_eq!(got[2].kvs[0], kv("a", "1", 2, 4, 2));
    assert_eq!(got[2].kvs[1], kv("b", "0", 3, 3, 1));
    // Limit and count on a rolled-back read.
    assert_eq!(values(&got[6]), ["a=1"]);
    assert_eq!((got[6].count, got[6].more), (2, true));
    // A read-only txn reports the current revision everywhere.
    assert!(got.iter().all(|r| rev(r) == 6));
    // Only the read below the persisted revision hits the history.
    assert_eq!(store.history.reads(), 1);
}

#[tokio::test]
async fn a_txn_in_the_middle_of_a_batch_reads_its_start_state() {
    let mut store = Store::default();
    store.apply_batch(vec![put("a", "0")]).await; // 2
    let responses = store
        .apply_batch(vec![
            put("a", "1"), // 3
            reads(vec![
                RequestOp {
                    request: Some(Request::RequestPut(witan_proto::etcdserverpb::PutRequest {
                        key: "a".into(),
                        value: "2".into(),
                        ..Default::default()
                    })),
                },
                at(3, 0),
                at(2, 0),
                at(0, 0),
            ]), // 4
            put("a", "3"), // 5
        ])
        .await;
    let resp = txn_resp(responses[1].clone());
    let values: Vec<String> = resp.responses[1..]
        .iter()
        .map(|op| match &op.response {
            Some(Response::ResponseRange(r)) => {
                String::from_utf8_lossy(&r.kvs[0].value).into_owned()
            }
            other => panic!("expected a range response, got {other:?}"),
        })
        .collect();
    assert_eq!(values, ["1", "0", "2"]);
    assert_eq!(store.state.get(b"a"), Some(kv("a", "3", 2, 5, 4)));
    // After the batch is persisted, every revision reads from the history.
    for (revision, value) in [(2, "0"), (3, "1"), (4, "2"), (5, "3")] {
        let resp = store
            .range(RangeRequest {
                revision,
                ..range("a", "")
            })
            .await
            .unwrap();
        assert_eq!(resp.kvs[0].value, value.as_bytes(), "revision {revision}");
        assert_eq!(rev(&resp), 5);
    }
}

#[tokio::test]
async fn compaction_rules() {
    let mut store = Store::default();
    for value in ["1", "2", "3"] {
        store.put("k", value).await; // 2, 3, 4
    }
    // Future, then a real compaction reporting the current revision.
    assert_eq!(
        rejection(&store.apply(compact(5)).await),
        Some(Kind::FutureRevision)
    );
    let resp = compact_resp(store.apply(compact(3)).await);
    assert_eq!(rev(&resp), 4);
    assert_eq!(
        (store.state.compact_revision(), store.state.revision()),
        (3, 4)
    );
    // At or below the compaction revision.
    for revision in [3, 2, 0, -1] {
        let resp = store.apply(compact(revision)).await;
        assert_eq!(
            rejection(&resp),
            Some(Kind::Compacted),
            "compact {revision}"
        );
    }
    assert_eq!(store.state.compact_revision(), 3);
    // Compacting to the current revision is fine.
    compact_resp(store.apply(compact(4)).await);
    assert_eq!(store.state.compact_revision(), 4);
}

#[tokio::test]
async fn compaction_at_zero_is_accepted_once() {
    // etcd accepts one compaction at revision 0 on a fresh store.
    let mut store = Store::default();
    let resp = compact_resp(store.apply(compact(0)).await);
    assert_eq!(rev(&resp), 1);
    assert_eq!(
        rejection(&store.apply(compact(0)).await),
        Some(Kind::Compacted)
    );
    let mut fresh = Store::default();
    assert_eq!(
        rejection(&fresh.apply(compact(-1)).await),
        Some(Kind::Compacted)
    );
}

#[tokio::test]
async fn reads_below_the_compaction_fail_without_touching_history() {
    let mut store = Store::default();
    for value in ["1", "2", "3"] {
        store.put("k", value).await; // 2, 3, 4
    }
    store.apply(compact(3)).await;
    let reads_before = store.history.reads();
    let below = store
        .range(RangeRequest {
            revision: 2,
            ..range("k", "")
        })
        .await;
    assert!(matches!(below, Err(MvccError::Compacted)));
    assert_eq!(store.history.reads(), reads_before);
    let at = store
        .range(RangeRequest {
            revision: 3,
            ..range("k", "")
        })
        .await
        .unwrap();
    assert_eq!(at.kvs, vec![kv("k", "2", 2, 3, 2)]);
    // Negative means current outside a txn, compacted or not.
    let current = store
        .range(RangeRequest {
            revision: -5,
            ..range("k", "")
        })
        .await
        .unwrap();
    assert_eq!(current.kvs, vec![kv("k", "3", 2, 4, 3)]);
    let resp = store.apply(reads(vec![at_key(2)])).await;
    assert_eq!(rejection(&resp), Some(Kind::Compacted));
}

fn at_key(revision: i64) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(RangeRequest {
            revision,
            ..range("k", "")
        })),
    }
}

#[tokio::test]
async fn restored_state_reads_old_revisions_from_history() {
    let mut store = Store::default();
    store.put("a", "1").await;
    store.put("b", "1").await;
    store.apply(compact(2)).await;
    let restored = KvState::restore(
        store.state.iter().collect::<Vec<_>>(),
        store.state.revision(),
        store.state.compact_revision(),
    );
    assert_eq!(restored, store.state);
    let resp = restored
        .range(
            &RangeRequest {
                revision: 2,
                ..range("a", "\0")
            },
            &store.history,
        )
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a"]);
}

#[tokio::test]
async fn history_failures_are_errors_not_rejections() {
    let mut state = KvState::new();
    let mut changes = Vec::new();
    for value in ["1", "2"] {
        state
            .apply(&put("a", value), &BrokenHistory, &mut changes)
            .await
            .unwrap();
    }
    // Current reads and reads of pending changes need no history.
    let resp = state
        .apply(
            &reads(vec![at(0, 0), at(2, 0), at(1, 0)]),
            &BrokenHistory,
            &mut changes,
        )
        .await
        .unwrap();
    assert_eq!(ranges(resp).len(), 3);
    // With the changes persisted, an old revision needs the history.
    let err = state
        .range(
            &RangeRequest {
                revision: 2,
                ..range("a", "")
            },
            &BrokenHistory,
        )
        .await;
    assert!(matches!(err, Err(MvccError::History(_))));
    let before = state.clone();
    let mut fresh = Vec::new();
    let err = state
        .apply(&reads(vec![at(0, 0), at(2, 0)]), &BrokenHistory, &mut fresh)
        .await;
    assert!(err.is_err());
    assert_eq!(state, before);
    // The current revision never reads the history.
    let resp = state.range(&range("a", ""), &BrokenHistory).await.unwrap();
    assert_eq!(resp.kvs, vec![kv("a", "2", 2, 3, 2)]);
}

#[test]
fn apply_and_range_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut state = KvState::new();
    let history = MemHistory::default();
    let mut changes = Vec::new();
    let cmd = put("a", "1");
    assert_send(&state.apply(&cmd, &history, &mut changes));
    let state = KvState::new();
    let req = range("a", "");
    assert_send(&state.range(&req, &history));
}
