//! Txn: compares, branches, nesting, one revision for all writes, the
//! sub-response headers, and rejections that leave the state untouched.

use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::response_op::Response;
use witan_proto::etcdserverpb::{
    Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, ResponseHeader, TxnRequest,
    TxnResponse,
};
use witan_proto::raftpb::apply_error::Kind;

use crate::mvcc::testing::{compact, kv, range, rejection, rev, txn, txn_resp, Store};
use crate::mvcc::Change;

fn cmp(key: &str, target: CompareTarget, result: CompareResult, union: TargetUnion) -> Compare {
    Compare {
        result: result as i32,
        target: target as i32,
        key: key.into(),
        target_union: Some(union),
        range_end: Vec::new(),
    }
}

fn get(key: &str) -> RequestOp {
    get_with(range(key, ""))
}

fn get_with(req: RangeRequest) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestRange(req)),
    }
}

fn put(key: &str, value: &str) -> RequestOp {
    put_with(PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    })
}

fn put_with(req: PutRequest) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestPut(req)),
    }
}

fn del(key: &str, range_end: &str) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv: true,
        })),
    }
}

fn nested(req: TxnRequest) -> RequestOp {
    RequestOp {
        request: Some(Request::RequestTxn(req)),
    }
}

fn when(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

/// k = "v" (create 2, mod 3, version 2) and other = "o" (create 4).
async fn store() -> Store {
    let mut store = Store::default();
    store.put("k", "first").await;
    store.put("k", "v").await;
    store.put("other", "o").await;
    store
}

/// Whether the txn with `compares` takes its success branch.
async fn succeeds(store: &mut Store, compares: Vec<Compare>) -> bool {
    let resp = txn_resp(
        store
            .apply(txn(when(compares, Vec::new(), Vec::new())))
            .await,
    );
    resp.succeeded
}

#[tokio::test]
async fn compare_every_target_and_result() {
    use CompareResult::{Equal, Greater, Less, NotEqual};
    use CompareTarget::{Create, Lease, Mod, Value, Version};
    let mut store = store().await;
    let value = |v: &str| TargetUnion::Value(v.into());
    let cases = [
        (Value, Equal, value("v"), true),
        (Value, Equal, value("w"), false),
        (Value, NotEqual, value("w"), true),
        (Value, Greater, value("u"), true),
        (Value, Greater, value("v"), false),
        (Value, Less, value("w"), true),
        (Value, Less, value("v"), false),
        (Value, Greater, value(""), true),
        (Create, Equal, TargetUnion::CreateRevision(2), true),
        (Create, Less, TargetUnion::CreateRevision(2), false),
        (Create, Greater, TargetUnion::CreateRevision(1), true),
        (Create, NotEqual, TargetUnion::CreateRevision(2), false),
        (Mod, Equal, TargetUnion::ModRevision(3), true),
        (Mod, Less, TargetUnion::ModRevision(4), true),
        (Mod, Greater, TargetUnion::ModRevision(3), false),
        (Mod, NotEqual, TargetUnion::ModRevision(2), true),
        (Version, Equal, TargetUnion::Version(2), true),
        (Version, Greater, TargetUnion::Version(1), true),
        (Version, Less, TargetUnion::Version(2), false),
        (Version, NotEqual, TargetUnion::Version(2), false),
        (Lease, Equal, TargetUnion::Lease(0), true),
        (Lease, Greater, TargetUnion::Lease(0), false),
        (Lease, Less, TargetUnion::Lease(1), true),
        (Lease, NotEqual, TargetUnion::Lease(5), true),
    ];
    for (target, result, union, expect) in cases {
        let c = cmp("k", target, result, union.clone());
        assert_eq!(
            succeeds(&mut store, vec![c]).await,
            expect,
            "{target:?} {result:?} {union:?}"
        );
    }
    // Read-only txns do not move the revision.
    assert_eq!(store.state.revision(), 4);
}

#[tokio::test]
async fn compares_on_a_missing_key() {
    use CompareResult::{Equal, Greater, Less, NotEqual};
    use CompareTarget::{Create, Lease, Mod, Value, Version};
    let mut store = store().await;
    // A VALUE compare on a missing key always fails.
    for result in [Equal, NotEqual, Greater, Less] {
        let c = cmp("missing", Value, result, TargetUnion::Value(Vec::new()));
        assert!(!succeeds(&mut store, vec![c]).await, "{result:?}");
    }
    // The others compare a zero key-value.
    let cases = [
        (Version, Equal, TargetUnion::Version(0), true),
        (Create, Equal, TargetUnion::CreateRevision(0), true),
        (Mod, Less, TargetUnion::ModRevision(1), true),
        (Lease, Equal, TargetUnion::Lease(0), true),
        (Version, Greater, TargetUnion::Version(0), false),
    ];
    for (target, result, union, expect) in cases {
        let c = cmp("missing", target, result, union);
        assert_eq!(succeeds(&mut store, vec![c]).await, expect);
    }
}

#[tokio::test]
async fn compare_operands_and_unknown_enums() {
    use CompareResult::Equal;
    use CompareTarget::{Mod, Value, Version};
    let mut store = store().await;
    // An operand of another kind than the target counts as 0 / empty.
    let c = cmp("k", Mod, Equal, TargetUnion::Version(3));
    assert!(!succeeds(&mut store, vec![c]).await);
    let c = cmp("k", Version, CompareResult::Greater, TargetUnion::Lease(9));
    assert!(succeeds(&mut store, vec![c]).await);
    let mut c = cmp(
        "k",
        Value,
        CompareResult::Greater,
        TargetUnion::Value(Vec::new()),
    );
    c.target_union = None;
    assert!(succeeds(&mut store, vec![c]).await);
    // Unknown target: compares as equal. Unknown result: holds.
    let mut c = cmp("k", Version, Equal, TargetUnion::Version(99));
    c.target = 17;
    assert!(succeeds(&mut store, vec![c.clone()]).await);
    c.result = CompareResult::NotEqual as i32;
    assert!(!succeeds(&mut store, vec![c]).await);
    let mut c = cmp("k", Version, Equal, TargetUnion::Version(99));
    c.result = 8;
    assert!(succeeds(&mut store, vec![c]).await);
}

#[tokio::test]
async fn compares_over_ranges() {
    use CompareResult::{Equal, Greater};
    use CompareTarget::{Create, Value, Version};
    let mut store = store().await;
    store.put("p/1", "x").await;
    store.put("p/2", "x").await;
    let mut all_x = cmp("p/", Value, Equal, TargetUnion::Value("x".into()));
    all_x.range_end = "p0".into();
    assert!(succeeds(&mut store, vec![all_x.clone()]).await);
    store.put("p/3", "y").await;
    assert!(!succeeds(&mut store, vec![all_x]).await);

    // From-key, and every key.
    let mut created = cmp("a", Create, Greater, TargetUnion::CreateRevision(1));
    created.range_end = "\0".into();
    assert!(succeeds(&mut store, vec![created.clone()]).await);
    created.key = "\0".into();
    assert!(succeeds(&mut store, vec![created]).await);
    let mut recent = cmp("\0", Create, Greater, TargetUnion::CreateRevision(4));
    recent.range_end = "\0".into();
    assert!(!succeeds(&mut store, vec![recent]).await);

    // An empty range compares a zero key-value (and fails on VALUE).
    let mut none = cmp("x", Version, Equal, TargetUnion::Version(0));
    none.range_end = "y".into();
    assert!(succeeds(&mut store, vec![none.clone()]).await);
    none.target = Value as i32;
    none.target_union = Some(TargetUnion::Value(Vec::new()));
    assert!(!succeeds(&mut store, vec![none]).await);

    // All compares must hold.
    let yes = cmp("k", Version, Equal, TargetUnion::Version(2));
    let no = cmp("k", Version, Equal, TargetUnion::Version(3));
    assert!(succeeds(&mut store, vec![yes.clone(), yes.clone()]).await);
    assert!(!succeeds(&mut store, vec![yes, no]).await);
    assert!(succeeds(&mut store, Vec::new()).await);
}

#[tokio::test]
async fn runs_the_chosen_branch_only() {
    let mut store = store().await;
    let version_is = |v| {
        vec![cmp(
            "k",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(v),
        )]
    };
    let resp = txn_resp(
        store
            .apply(txn(when(
                version_is(2),
                vec![put("s", "1")],
                vec![put("f", "1"), get("k")],
            )))
            .await,
    );
    assert!(resp.succeeded);
    assert_eq!(resp.responses.len(), 1);
    let resp = txn_resp(
        store
            .apply(txn(when(
                version_is(7),
                vec![put("s", "2")],
                vec![put("f", "1"), get("k")],
            )))
            .await,
    );
    assert!(!resp.succeeded);
    assert_eq!(resp.responses.len(), 2);
    assert_eq!(store.state.get(b"s"), Some(kv("s", "1", 5, 5, 1)));
    assert_eq!(store.state.get(b"f"), Some(kv("f", "1", 6, 6, 1)));
}

#[tokio::test]
async fn all_writes_share_one_revision() {
    let mut store = store().await;
    let mut changes = Vec::new();
    let req = when(
        Vec::new(),
        vec![put("a", "1"), put("b", "1"), del("k", ""), put("k", "new")],
        Vec::new(),
    );
    let resp = store
        .state
        .apply(&txn(req), &store.history, &mut changes)
        .await
        .unwrap();
    let resp = txn_resp(resp);
    assert_eq!(rev(&resp), 5);
    assert_eq!(store.state.revision(), 5);
    let subs: Vec<(String, i64, i64, bool)> = changes
        .iter()
        .map(|c: &Change| {
            (
                String::from_utf8_lossy(&c.kv.key).into_owned(),
                c.kv.mod_revision,
                c.sub,
                c.deleted,
            )
        })
        .collect();
    assert_eq!(
        subs,
        vec![
            ("a".to_string(), 5, 0, false),
            ("b".to_string(), 5, 1, false),
            ("k".to_string(), 5, 2, true),
            ("k".to_string(), 5, 3, false),
        ]
    );
    // Deleted then put again in one txn: a new incarnation.
    assert_eq!(store.state.get(b"k"), Some(kv("k", "new", 5, 5, 1)));
    assert_eq!(changes[3].prev, None);
    assert_eq!(changes[2].prev, Some(kv("k", "v", 2, 3, 2)));
}

fn sub_revisions(resp: &TxnResponse) -> Vec<i64> {
    resp.responses
        .iter()
        .map(|op| match &op.response {
            Some(Response::ResponseRange(r)) => rev(r),
            Some(Response::ResponsePut(r)) => rev(r),
            Some(Response::ResponseDeleteRange(r)) => rev(r),
            Some(Response::ResponseTxn(r)) => rev(r),
            None => -1,
        })
        .collect()
}

#[tokio::test]
async fn sub_response_headers_follow_etcd() {
    let mut store = store().await; // revision 4
    let req = when(
        Vec::new(),
        vec![
            get("k"),
            del("nothing", ""),
            put("a", "1"),
            get("a"),
            del("nothing", ""),
            del("a", ""),
        ],
        Vec::new(),
    );
    let resp = txn_resp(store.apply(txn(req)).await);
    assert_eq!(sub_revisions(&resp), vec![4, 4, 5, 5, 5, 5]);
    assert_eq!(rev(&resp), 5);
    // Each op sees the earlier ones.
    let Some(Response::ResponseRange(seen)) = &resp.responses[3].response else {
        panic!("expected a range response");
    };
    assert_eq!(seen.kvs, vec![kv("a", "1", 5, 5, 1)]);

    // A txn that changes nothing keeps the revision.
    let req = when(Vec::new(), vec![get("k"), del("nothing", "")], Vec::new());
    let resp = txn_resp(store.apply(txn(req)).await);
    assert_eq!(sub_revisions(&resp), vec![5, 5]);
    assert_eq!(rev(&resp), 5);
    assert_eq!(store.state.revision(), 5);
}

#[tokio::test]
async fn deletes_see_earlier_puts_and_report_prev_kvs() {
    let mut store = store().await;
    let req = when(Vec::new(), vec![put("a", "1"), del("a", "b")], Vec::new());
    let resp = txn_resp(store.apply(txn(req)).await);
    let Some(Response::ResponseDeleteRange(deleted)) = &resp.responses[1].response else {
        panic!("expected a delete response");
    };
    assert_eq!(deleted.deleted, 1);
    assert_eq!(deleted.prev_kvs, vec![kv("a", "1", 5, 5, 1)]);
    assert_eq!(store.state.get(b"a"), None);
    assert_eq!(store.state.revision(), 5);
}

#[tokio::test]
async fn nested_txns_decide_their_branch_at_txn_start() {
    // etcd evaluates every compare, nested ones included, before running
    // any op: the nested compare does not see the put before it.
    let mut store = store().await;
    let exists = vec![cmp(
        "n",
        CompareTarget::Version,
        CompareResult::Greater,
        TargetUnion::Version(0),
    )];
    let inner = when(
        exists,
        vec![put("m", "then")],
        vec![put("m", "else"), get("n")],
    );
    let req = when(Vec::new(), vec![put("n", "1"), nested(inner)], Vec::new());
    let resp = txn_resp(store.apply(txn(req)).await);
    assert!(resp.succeeded);
    assert_eq!(store.state.get(b"m"), Some(kv("m", "else", 5, 5, 1)));
    let Some(Response::ResponseTxn(inner)) = &resp.responses[1].response else {
        panic!("expected a txn response");
    };
    assert!(!inner.succeeded);
    // etcd leaves a nested txn's header empty.
    assert_eq!(inner.header, Some(ResponseHeader::default()));
    assert_eq!(sub_revisions(inner), vec![5, 5]);
    // ... while its ops still see the earlier writes.
    let Some(Response::ResponseRange(seen)) = &inner.responses[1].response else {
        panic!("expected a range response");
    };
    assert_eq!(seen.kvs, vec![kv("n", "1", 5, 5, 1)]);
}

#[tokio::test]
async fn nested_txns_in_both_branches_and_deeper() {
    let mut store = store().await;
    let yes = || {
        vec![cmp(
            "k",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(2),
        )]
    };
    let no = || {
        vec![cmp(
            "k",
            CompareTarget::Version,
            CompareResult::Equal,
            TargetUnion::Version(9),
        )]
    };
    let deepest = when(yes(), vec![put("d3", "x")], Vec::new());
    let deeper = when(no(), Vec::new(), vec![nested(deepest), put("d2", "x")]);
    let req = when(
        no(),
        vec![put("never", "x")],
        vec![
            nested(when(yes(), vec![put("d1", "x")], vec![put("never", "x")])),
            nested(deeper),
            get("d3"),
        ],
    );
    let resp = txn_resp(store.apply(txn(req)).await);
    assert!(!resp.succeeded);
    assert_eq!(resp.responses.len(), 3);
    for key in ["d1", "d2", "d3"] {
        assert_eq!(
            store.state.get(key.as_bytes()).map(|kv| kv.mod_revision),
            Some(5)
        );
    }
    assert_eq!(store.state.get(b"never"), None);
    let Some(Response::ResponseTxn(deeper)) = &resp.responses[1].response else {
        panic!("expected a txn response");
    };
    assert!(!deeper.succeeded);
    let Some(Response::ResponseTxn(deepest)) = &deeper.responses[0].response else {
        panic!("expected a txn response");
    };
    assert!(deepest.succeeded);
    assert_eq!(sub_revisions(deepest), vec![5]);
    assert_eq!(sub_revisions(&resp), vec![0, 0, 5]);
}

async fn assert_rejected(store: &mut Store, req: TxnRequest, kind: Kind) {
    let before = store.state.clone();
    let mut changes = Vec::new();
    let resp = store
        .state
        .apply(&txn(req), &store.history, &mut changes)
        .await
        .unwrap();
    assert_eq!(rejection(&resp), Some(kind));
    assert!(changes.is_empty());
    assert_eq!(store.state, before);
}

#[tokio::test]
async fn rejections_change_nothing() {
    let mut store = store().await;
    let ignore_value = |key: &str| {
        put_with(PutRequest {
            key: key.into(),
            ignore_value: true,
            ..PutRequest::default()
        })
    };
    let at = |revision| {
        get_with(RangeRequest {
            revision,
            ..range("k", "")
        })
    };
    let leased = put_with(PutRequest {
        key: "k".into(),
        lease: 3,
        ..PutRequest::default()
    });
    assert_rejected(
        &mut store,
        when(
            Vec::new(),
            vec![put("a", "1"), ignore_value("missing")],
            Vec::new(),
        ),
        Kind::KeyNotFound,
    )
    .await;
    assert_rejected(
        &mut store,
        when(Vec::new(), vec![put("a", "1"), at(5)], Vec::new()),
        Kind::FutureRevision,
    )
    .await;
    assert_rejected(
        &mut store,
        when(Vec::new(), vec![put("a", "1"), leased.clone()], Vec::new()),
        Kind::LeaseNotFound,
    )
    .await;
    // In a nested txn too.
    assert_rejected(
        &mut store,
        when(
            Vec::new(),
            vec![
                put("a", "1"),
                nested(when(Vec::new(), vec![leased], Vec::new())),
            ],
            Vec::new(),
        ),
        Kind::LeaseNotFound,
    )
    .await;
    // Puts are checked before ranges, whatever their order.
    assert_rejected(
        &mut store,
        when(
            Vec::new(),
            vec![at(99), ignore_value("missing")],
            Vec::new(),
        ),
        Kind::KeyNotFound,
    )
    .await;
    // A key deleted earlier in the txn: etcd panics here; we reject.
    assert_rejected(
        &mut store,
        when(
            Vec::new(),
            vec![del("a", "\0"), ignore_value("k")],
            Vec::new(),
        ),
        Kind::KeyNotFound,
    )
    .await;
    // Only the chosen branch is checked.
    let resp = txn_resp(
        store
            .apply(txn(when(
                Vec::new(),
                vec![put("a", "1")],
                vec![ignore_value("missing"), at(99)],
            )))
            .await,
    );
    assert!(resp.succeeded);
    assert_eq!(store.state.revision(), 5);
    // ignore_value on a key that exists at txn start is fine.
    let resp = txn_resp(
        store
            .apply(txn(when(Vec::new(), vec![ignore_value("k")], Vec::new())))
            .await,
    );
    assert_eq!(rev(&resp), 6);
    assert_eq!(store.state.get(b"k"), Some(kv("k", "v", 2, 6, 3)));
}

#[tokio::test]
async fn ranges_inside_a_txn_at_revisions() {
    let mut store = store().await; // revision 4
    let at = |revision| {
        get_with(RangeRequest {
            revision,
            ..range("k", "")
        })
    };
    let req = when(
        Vec::new(),
        vec![put("k", "new"), at(4), at(2), at(0), get("k")],
        Vec::new(),
    );
    let resp = txn_resp(store.apply(txn(req)).await);
    let values: Vec<Vec<String>> = resp.responses[1..]
        .iter()
        .map(|op| match &op.response {
            Some(Response::ResponseRange(r)) => r
                .kvs
                .iter()
                .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                .collect(),
            other => panic!("expected a range response, got {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        vec![vec!["v"], vec!["first"], vec!["new"], vec!["new"]]
    );
    // The header is the revision the range ran at, not the one it read.
    assert_eq!(sub_revisions(&resp), vec![5, 5, 5, 5, 5]);
}

#[tokio::test]
async fn negative_revisions_inside_a_txn_follow_etcd() {
    // Outside a txn a negative revision means current; inside, etcd checks
    // it against the compaction revision as is (-1 before any compaction).
    let mut store = store().await;
    let at = |revision| {
        when(
            Vec::new(),
            vec![get_with(RangeRequest {
                revision,
                ..range("k", "")
            })],
            Vec::new(),
        )
    };
    let resp = txn_resp(store.apply(txn(at(-1))).await);
    let Some(Response::ResponseRange(current)) = &resp.responses[0].response else {
        panic!("expected a range response");
    };
    assert_eq!(current.kvs, vec![kv("k", "v", 2, 3, 2)]);
    assert_rejected(&mut store, at(-2), Kind::Compacted).await;
    store.apply(compact(2)).await;
    assert_rejected(&mut store, at(-1), Kind::Compacted).await;
    assert_rejected(&mut store, at(1), Kind::Compacted).await;
    let resp = txn_resp(store.apply(txn(at(2))).await);
    assert_eq!(resp.responses.len(), 1);
}

#[tokio::test]
async fn an_empty_op_gets_an_empty_response() {
    let mut store = store().await;
    let req = when(
        Vec::new(),
        vec![RequestOp::default(), put("a", "1")],
        Vec::new(),
    );
    let resp = txn_resp(store.apply(txn(req)).await);
    assert_eq!(resp.responses[0].response, None);
    assert_eq!(sub_revisions(&resp), vec![-1, 5]);
}
