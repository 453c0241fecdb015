//! The Alarm command and the NOSPACE cap through `KvState::apply`.

use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{
    request_op, AlarmRequest, AlarmType, DeleteRangeRequest, LeaseGrantRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest,
};
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::Command;

use crate::mvcc::testing::{compact, delete, put, rejection, txn, Store};

fn alarm(action: AlarmAction, member: u64) -> Command {
    Command {
        op: Some(Op::Alarm(AlarmRequest {
            action: action as i32,
            member_id: member,
            alarm: AlarmType::Nospace as i32,
        })),
        ..Default::default()
    }
}

fn alarms_of(store: &Store) -> Vec<u64> {
    store
        .state
        .alarms()
        .list(AlarmType::None as i32)
        .iter()
        .map(|a| a.member_id)
        .collect()
}

fn txn_of(op: request_op::Request) -> Command {
    txn(TxnRequest {
        success: vec![RequestOp { request: Some(op) }],
        ..TxnRequest::default()
    })
}

#[tokio::test]
async fn nospace_refuses_growth_and_allows_freeing_space() {
    let mut store = Store::default();
    store.put("a", "1").await;
    store.put("b", "2").await;
    match store.apply(alarm(AlarmAction::Activate, 7)).await.result {
        Some(Outcome::Alarm(r)) => assert_eq!(r.alarms.len(), 1, "the activated alarm"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(alarms_of(&store), [7]);
    let revision = store.state.revision();

    let refused = [
        put("c", "3"),
        // A put in a nested txn of the failure branch still grows the store.
        txn(TxnRequest {
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestTxn(TxnRequest {
                    success: vec![RequestOp {
                        request: Some(request_op::Request::RequestPut(PutRequest {
                            key: b"c".to_vec(),
                            ..PutRequest::default()
                        })),
                    }],
                    ..TxnRequest::default()
                })),
            }],
            ..TxnRequest::default()
        }),
        Command {
            op: Some(Op::LeaseGrant(LeaseGrantRequest { ttl: 10, id: 1 })),
            ..Default::default()
        },
    ];
    for cmd in refused {
        let resp = store.apply(cmd).await;
        assert_eq!(rejection(&resp), Some(Kind::NoSpace));
    }
    assert_eq!(store.state.revision(), revision, "nothing written");

    // Reads, deletes (also in a txn) and compaction still go through.
    let read = txn_of(request_op::Request::RequestRange(RangeRequest {
        key: b"a".to_vec(),
        ..RangeRequest::default()
    }));
    assert_eq!(rejection(&store.apply(read).await), None);
    let txn_delete = txn_of(request_op::Request::RequestDeleteRange(
        DeleteRangeRequest {
            key: b"b".to_vec(),
            ..DeleteRangeRequest::default()
        },
    ));
    assert_eq!(rejection(&store.apply(txn_delete).await), None);
    assert_eq!(rejection(&store.apply(delete("a", "", false)).await), None);
    assert_eq!(rejection(&store.apply(compact(revision)).await), None);

    match store.apply(alarm(AlarmAction::Deactivate, 7)).await.result {
        Some(Outcome::Alarm(r)) => assert_eq!(r.alarms.len(), 1, "the cleared alarm"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(alarms_of(&store).is_empty());
    assert_eq!(rejection(&store.apply(put("c", "3")).await), None);
}

#[tokio::test]
async fn alarm_get_lists_and_repeats_change_nothing() {
    let mut store = Store::default();
    store.apply(alarm(AlarmAction::Activate, 2)).await;
    store.apply(alarm(AlarmAction::Activate, 1)).await;
    match store.apply(alarm(AlarmAction::Activate, 1)).await.result {
        Some(Outcome::Alarm(r)) => assert!(r.alarms.is_empty(), "already active"),
        other => panic!("unexpected {other:?}"),
    }
    match store.apply(alarm(AlarmAction::Get, 0)).await.result {
        Some(Outcome::Alarm(r)) => {
            let ids: Vec<u64> = r.alarms.iter().map(|a| a.member_id).collect();
            assert_eq!(ids, [1, 2]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.state.revision(), 1, "alarms do not move the revision");
}
