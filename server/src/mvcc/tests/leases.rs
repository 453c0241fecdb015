//! Lease commands through `KvState::apply`: grant, attach, keepalive,
//! tick, revoke and expiry, and what they do to keys and revisions.

use witan_proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, PutRequest};
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::{Command, CommandResponse, LeaseExpire, LeaseKeepAlive, LeaseTick};

use crate::mvcc::testing::{put_req, rejection, Store};

fn grant(id: i64, ttl: i64) -> Command {
    Command {
        op: Some(Op::LeaseGrant(LeaseGrantRequest { ttl, id })),
        ..Default::default()
    }
}

fn revoke(id: i64) -> Command {
    Command {
        op: Some(Op::LeaseRevoke(LeaseRevokeRequest { id })),
        ..Default::default()
    }
}

fn keep_alive(ids: &[i64]) -> Command {
    Command {
        op: Some(Op::LeaseKeepAlive(LeaseKeepAlive { ids: ids.to_vec() })),
        ..Default::default()
    }
}

fn tick(elapsed_ms: u64) -> Command {
    Command {
        op: Some(Op::LeaseTick(LeaseTick { elapsed_ms })),
        ..Default::default()
    }
}

fn expire(ids: &[i64]) -> Command {
    Command {
        op: Some(Op::LeaseExpire(LeaseExpire { ids: ids.to_vec() })),
        ..Default::default()
    }
}

fn put_leased(key: &str, lease: i64) -> Command {
    put_req(PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        lease,
        ..PutRequest::default()
    })
}

fn outcome(resp: CommandResponse) -> Outcome {
    resp.result.expect("a result")
}

#[tokio::test]
async fn grant_attach_and_revoke_delete_the_keys_in_one_revision() {
    let mut store = Store::default();
    match outcome(store.apply(grant(5, 10)).await) {
        Outcome::LeaseGrant(g) => assert_eq!((g.id, g.ttl, g.header.unwrap().revision), (5, 10, 1)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        rejection(&store.apply(grant(5, 10)).await),
        Some(Kind::LeaseExists)
    );
    assert_eq!(
        rejection(&store.apply(put_leased("x", 6)).await),
        Some(Kind::LeaseNotFound)
    );
    store.apply(put_leased("a", 5)).await;
    store.apply(put_leased("b", 5)).await;
    store.put("c", "plain").await;
    assert_eq!(store.state.revision(), 4);
    let info = store.state.leases().info(5).unwrap();
    assert_eq!(info.keys, [b"a".to_vec(), b"b".to_vec()]);

    match outcome(store.apply(revoke(5)).await) {
        Outcome::LeaseRevoke(r) => assert_eq!(r.header.unwrap().revision, 5),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.state.get(b"a"), None);
    assert_eq!(store.state.get(b"b"), None);
    assert!(store.state.get(b"c").is_some());
    assert_eq!(
        rejection(&store.apply(revoke(5)).await),
        Some(Kind::LeaseNotFound)
    );
}

#[tokio::test]
async fn a_put_without_lease_detaches_the_key() {
    let mut store = Store::default();
    store.apply(grant(1, 10)).await;
    store.apply(put_leased("k", 1)).await;
    store.put("k", "free").await;
    assert!(store.state.leases().info(1).unwrap().keys.is_empty());
    store.apply(revoke(1)).await;
    assert!(
        store.state.get(b"k").is_some(),
        "a detached key survives the revoke"
    );
}

#[tokio::test]
async fn keepalives_and_ticks_decide_expiry() {
    let mut store = Store::default();
    store.apply(grant(1, 2)).await;
    store.apply(grant(2, 2)).await;
    store.apply(put_leased("k1", 1)).await;
    store.apply(tick(100)).await;
    match outcome(store.apply(keep_alive(&[1, 99])).await) {
        Outcome::LeaseKeepAlive(k) => {
            let ttls: Vec<(i64, i64)> = k.responses.iter().map(|r| (r.id, r.ttl)).collect();
            assert_eq!(ttls, [(1, 2), (99, 0)]);
        }
        other => panic!("unexpected {other:?}"),
    }
    store.apply(tick(1_500)).await;
    store.apply(tick(600)).await;
    // Lease 2 counted from the tick at 100 ms: expired at 2,100. Lease 1
    // was refreshed and counts from the tick at 1,600 ms.
    assert_eq!(store.state.leases().expired(10), [2]);
    let before = store.state.revision();
    match outcome(store.apply(expire(&[1, 2])).await) {
        Outcome::LeaseExpire(e) => assert_eq!(e.revoked, [2], "only expired leases are revoked"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        store.state.revision(),
        before,
        "lease 2 had no keys: no revision"
    );
    store.apply(tick(2_000)).await;
    match outcome(store.apply(expire(&[1])).await) {
        Outcome::LeaseExpire(e) => assert_eq!(e.revoked, [1]),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.state.get(b"k1"), None);
    assert_eq!(store.state.revision(), before + 1);
}
