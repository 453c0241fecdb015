//! Put and DeleteRange on their own: revisions, versions, options, the
//! changes they report, and rejections.

use witan_proto::etcdserverpb::PutRequest;
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::Command;

use crate::mvcc::testing::{
    delete, delete_resp, keys, kv, put, put_req, put_resp, range, rejection, rev, Store,
};
use crate::mvcc::{Change, KvState};

fn put_with(key: &str, f: impl FnOnce(&mut PutRequest)) -> Command {
    let mut req = PutRequest {
        key: key.into(),
        ..PutRequest::default()
    };
    f(&mut req);
    put_req(req)
}

#[tokio::test]
async fn a_new_store_is_at_revision_one() {
    let state = KvState::new();
    assert_eq!((state.revision(), state.compact_revision()), (1, 0));
    assert!(state.is_empty());
    assert_eq!(KvState::default(), state);
}

#[tokio::test]
async fn put_creates_then_updates() {
    let mut store = Store::default();
    let first = put_resp(store.put("k", "v1").await);
    assert_eq!(rev(&first), 2);
    assert_eq!(first.prev_kv, None);
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v1", 2, 2, 1)));

    let second = put_resp(
        store
            .apply(put_with("k", |r| {
                r.value = b"v2".to_vec();
                r.prev_kv = true;
            }))
            .await,
    );
    assert_eq!(rev(&second), 3);
    assert_eq!(second.prev_kv, Some(kv("k", "v1", 2, 2, 1)));
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v2", 2, 3, 2)));
    assert_eq!(store.state.revision(), 3);
    assert_eq!(store.state.len(), 1);
}

#[tokio::test]
async fn put_reports_its_change() {
    let mut state = KvState::new();
    let history = crate::mvcc::testing::MemHistory::default();
    let mut changes = Vec::new();
    state
        .apply(&put("k", "v1"), &history, &mut changes)
        .await
        .unwrap();
    state
        .apply(&put("k", "v2"), &history, &mut changes)
        .await
        .unwrap();
    assert_eq!(
        changes,
        vec![
            Change {
                kv: kv("k", "v1", 2, 2, 1),
                sub: 0,
                deleted: false,
                prev: None,
            },
            Change {
                kv: kv("k", "v2", 2, 3, 2),
                sub: 0,
                deleted: false,
                prev: Some(kv("k", "v1", 2, 2, 1)),
            },
        ]
    );
}

#[tokio::test]
async fn ignore_value_and_ignore_lease_keep_the_old_ones() {
    let mut store = Store::default();
    store.put("k", "v1").await;
    let resp = put_resp(store.apply(put_with("k", |r| r.ignore_value = true)).await);
    assert_eq!(rev(&resp), 3);
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v1", 2, 3, 2)));

    let resp = put_resp(
        store
            .apply(put_with("k", |r| {
                r.value = b"v3".to_vec();
                r.ignore_lease = true;
                r.prev_kv = true;
            }))
            .await,
    );
    assert_eq!(resp.prev_kv, Some(kv("k", "v1", 2, 3, 2)));
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v3", 2, 4, 3)));
}

#[tokio::test]
async fn ignore_flags_need_the_key() {
    let mut store = Store::default();
    store.put("other", "v").await;
    let before = store.state.clone();
    for cmd in [
        put_with("k", |r| r.ignore_value = true),
        put_with("k", |r| r.ignore_lease = true),
    ] {
        let mut changes = Vec::new();
        let resp = store
            .state
            .apply(&cmd, &store.history, &mut changes)
            .await
            .unwrap();
        assert_eq!(rejection(&resp), Some(Kind::KeyNotFound));
        assert!(changes.is_empty());
        assert_eq!(store.state, before);
    }
}

#[tokio::test]
async fn leases_are_not_found_yet() {
    let mut store = Store::default();
    let resp = store.apply(put_with("k", |r| r.lease = 7)).await;
    assert_eq!(rejection(&resp), Some(Kind::LeaseNotFound));
    // The lease is checked before the key.
    let resp = store
        .apply(put_with("k", |r| {
            r.lease = 7;
            r.ignore_value = true;
        }))
        .await;
    assert_eq!(rejection(&resp), Some(Kind::LeaseNotFound));
    assert_eq!(store.state.revision(), 1);
}

#[tokio::test]
async fn delete_range_with_prev_kv() {
    let mut store = Store::default();
    for key in ["a", "b", "c"] {
        store.put(key, "v").await;
    }
    let mut changes = Vec::new();
    let resp = store
        .state
        .apply(&delete("a", "c", true), &store.history, &mut changes)
        .await
        .unwrap();
    let resp = delete_resp(resp);
    assert_eq!(rev(&resp), 5);
    assert_eq!(resp.deleted, 2);
    assert_eq!(
        resp.prev_kvs,
        vec![kv("a", "v", 2, 2, 1), kv("b", "v", 3, 3, 1)]
    );
    let tombstone = |key: &str| witan_proto::mvccpb::KeyValue {
        key: key.into(),
        mod_revision: 5,
        ..Default::default()
    };
    assert_eq!(
        changes,
        vec![
            Change {
                kv: tombstone("a"),
                sub: 0,
                deleted: true,
                prev: Some(kv("a", "v", 2, 2, 1)),
            },
            Change {
                kv: tombstone("b"),
                sub: 1,
                deleted: true,
                prev: Some(kv("b", "v", 3, 3, 1)),
            },
        ]
    );
    assert_eq!(store.state.revision(), 5);
    assert_eq!(
        store.state.iter().collect::<Vec<_>>(),
        vec![kv("c", "v", 4, 4, 1)]
    );
}

#[tokio::test]
async fn delete_without_prev_kv_and_single_key() {
    let mut store = Store::default();
    store.put("a", "v").await;
    store.put("b", "v").await;
    let resp = delete_resp(store.apply(delete("a", "", false)).await);
    assert_eq!((resp.deleted, rev(&resp)), (1, 4));
    assert!(resp.prev_kvs.is_empty());
    assert_eq!(store.state.get(b"a"), None);
}

#[tokio::test]
async fn deleting_nothing_keeps_the_revision() {
    let mut store = Store::default();
    store.put("a", "v").await;
    let mut changes = Vec::new();
    let resp = store
        .state
        .apply(&delete("x", "z", true), &store.history, &mut changes)
        .await
        .unwrap();
    let resp = delete_resp(resp);
    assert_eq!((resp.deleted, rev(&resp)), (0, 2));
    assert!(resp.prev_kvs.is_empty());
    assert!(changes.is_empty());
    assert_eq!(store.state.revision(), 2);
}

#[tokio::test]
async fn delete_from_key_and_everything() {
    let mut store = Store::default();
    for key in ["a", "b", "c", "d"] {
        store.put(key, "v").await;
    }
    let resp = delete_resp(store.apply(delete("c", "\0", false)).await);
    assert_eq!(resp.deleted, 2);
    let resp = delete_resp(store.apply(delete("\0", "\0", false)).await);
    assert_eq!(resp.deleted, 2);
    assert!(store.state.is_empty());
    assert_eq!(store.state.revision(), 7);
}

#[tokio::test]
async fn a_key_recreated_after_deletion_starts_over() {
    let mut store = Store::default();
    store.put("k", "v1").await;
    store.put("k", "v2").await;
    store.apply(delete("k", "", false)).await;
    store.put("k", "v3").await;
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v3", 5, 5, 1)));
    // The old incarnation is still readable at its revisions.
    let old = store
        .range(witan_proto::etcdserverpb::RangeRequest {
            revision: 3,
            ..range("k", "")
        })
        .await
        .unwrap();
    assert_eq!(old.kvs, vec![kv("k", "v2", 2, 3, 2)]);
    let gone = store
        .range(witan_proto::etcdserverpb::RangeRequest {
            revision: 4,
            ..range("k", "")
        })
        .await
        .unwrap();
    assert_eq!(keys(&gone), Vec::<String>::new());
}

#[tokio::test]
async fn a_command_without_an_op_is_rejected_as_unknown() {
    let mut store = Store::default();
    let resp = store
        .apply(Command {
            op: None,
            ..Default::default()
        })
        .await;
    assert_eq!(rejection(&resp), Some(Kind::Unknown));
    assert_eq!(store.state.revision(), 1);
}

#[tokio::test]
async fn restore_rebuilds_the_state() {
    let state = KvState::restore(vec![kv("b", "2", 3, 5, 2), kv("a", "1", 2, 2, 1)], 9, 4);
    assert_eq!((state.revision(), state.compact_revision()), (9, 4));
    assert_eq!(
        state.iter().collect::<Vec<_>>(),
        vec![kv("a", "1", 2, 2, 1), kv("b", "2", 3, 5, 2)]
    );
    let fresh = KvState::restore(Vec::new(), 1, 0);
    assert_eq!(fresh, KvState::new());
}
