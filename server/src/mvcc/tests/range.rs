//! Range options outside a txn: limit / more / count, revisions, sorting,
//! filters, keys_only / count_only, and the etcd range conventions.

use witan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use witan_proto::etcdserverpb::RangeRequest;

use crate::mvcc::testing::{keys, kv, range, rev, Store};
use crate::mvcc::MvccError;

/// a(c2 m2 v1 "x") b(c3 m7 v2 "y2") c(c4 m4 v1 "x") d(c5 m8 v2 "z2")
/// e(c6 m6 v1 "y") at revision 8.
async fn store() -> Store {
    let mut store = Store::default();
    for (key, value) in [
        ("a", "x"),
        ("b", "y"),
        ("c", "x"),
        ("d", "z"),
        ("e", "y"),
        ("b", "y2"),
        ("d", "z2"),
    ] {
        store.put(key, value).await;
    }
    assert_eq!(store.state.revision(), 8);
    store
}

fn all() -> RangeRequest {
    range("a", "\0")
}

fn sorted(order: SortOrder, target: SortTarget) -> RangeRequest {
    RangeRequest {
        sort_order: order as i32,
        sort_target: target as i32,
        ..all()
    }
}

#[tokio::test]
async fn single_key_prefix_and_from_key() {
    let store = store().await;
    let one = store.range(range("b", "")).await.unwrap();
    assert_eq!(one.kvs, vec![kv("b", "y2", 3, 7, 2)]);
    assert_eq!((one.count, one.more), (1, false));
    assert_eq!(rev(&one), 8);

    let none = store.range(range("zz", "")).await.unwrap();
    assert!(none.kvs.is_empty());
    assert_eq!(none.count, 0);

    assert_eq!(
        keys(&store.range(range("a", "c")).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        keys(&store.range(range("c", "\0")).await.unwrap()),
        ["c", "d", "e"]
    );
    let every = store.range(range("\0", "\0")).await.unwrap();
    assert_eq!(keys(&every), ["a", "b", "c", "d", "e"]);
    assert_eq!(every.count, 5);
    // An inverted range is empty.
    assert_eq!(store.range(range("d", "b")).await.unwrap().count, 0);
}

#[tokio::test]
async fn limit_more_and_count() {
    let store = store().await;
    for (limit, expect, more) in [
        (2, vec!["a", "b"], true),
        (4, vec!["a", "b", "c", "d"], true),
        (5, vec!["a", "b", "c", "d", "e"], false),
        (6, vec!["a", "b", "c", "d", "e"], false),
        (0, vec!["a", "b", "c", "d", "e"], false),
        (-3, vec!["a", "b", "c", "d", "e"], false),
    ] {
        let resp = store.range(RangeRequest { limit, ..all() }).await.unwrap();
        assert_eq!(keys(&resp), expect, "limit {limit}");
        assert_eq!(resp.more, more, "limit {limit}");
        assert_eq!(resp.count, 5, "limit {limit}");
    }
}

#[tokio::test]
async fn keys_only_and_count_only() {
    let store = store().await;
    let resp = store
        .range(RangeRequest {
            keys_only: true,
            ..range("b", "")
        })
        .await
        .unwrap();
    assert_eq!(resp.kvs, vec![kv("b", "", 3, 7, 2)]);

    let resp = store
        .range(RangeRequest {
            count_only: true,
            limit: 1,
            ..all()
        })
        .await
        .unwrap();
    assert!(resp.kvs.is_empty());
    assert_eq!((resp.count, resp.more), (5, false));
    assert_eq!(rev(&resp), 8);
}

#[tokio::test]
async fn sorts_every_target_both_ways_with_stable_ties() {
    let store = store().await;
    use SortOrder::{Ascend, Descend, None};
    use SortTarget::{Create, Key, Mod, Value, Version};
    let cases = [
        (None, Key, ["a", "b", "c", "d", "e"]),
        (Ascend, Key, ["a", "b", "c", "d", "e"]),
        (Descend, Key, ["e", "d", "c", "b", "a"]),
        // Ties (versions 1: a c e, 2: b d) keep key order both ways.
        (Ascend, Version, ["a", "c", "e", "b", "d"]),
        (Descend, Version, ["b", "d", "a", "c", "e"]),
        (None, Version, ["a", "c", "e", "b", "d"]),
        (Ascend, Create, ["a", "b", "c", "d", "e"]),
        (Descend, Create, ["e", "d", "c", "b", "a"]),
        (Ascend, Mod, ["a", "c", "e", "b", "d"]),
        (Descend, Mod, ["d", "b", "e", "c", "a"]),
        (None, Mod, ["a", "c", "e", "b", "d"]),
        // Values: a "x", c "x", e "y", b "y2", d "z2".
        (Ascend, Value, ["a", "c", "e", "b", "d"]),
        (Descend, Value, ["d", "b", "e", "a", "c"]),
        (None, Value, ["a", "c", "e", "b", "d"]),
    ];
    for (order, target, expect) in cases {
        let resp = store.range(sorted(order, target)).await.unwrap();
        assert_eq!(keys(&resp), expect, "{order:?} {target:?}");
        assert_eq!(resp.count, 5);
    }
}

#[tokio::test]
async fn sorted_results_are_truncated_after_sorting() {
    let store = store().await;
    let resp = store
        .range(RangeRequest {
            limit: 2,
            ..sorted(SortOrder::Descend, SortTarget::Mod)
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["d", "b"]);
    assert!(resp.more);
    assert_eq!(resp.count, 5);
}

#[tokio::test]
async fn target_with_order_none_sorts_only_the_first_limit_plus_one_keys() {
    // etcd fetches limit+1 keys in key order when the order is NONE, then
    // sorts them: a b c d have mods 2 7 4 8, so e (mod 6) is never seen.
    let store = store().await;
    let resp = store
        .range(RangeRequest {
            limit: 3,
            ..sorted(SortOrder::None, SortTarget::Mod)
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a", "c", "b"]);
    assert!(resp.more);
    let resp = store
        .range(RangeRequest {
            limit: 3,
            ..sorted(SortOrder::Ascend, SortTarget::Mod)
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a", "c", "e"]);
}

#[tokio::test]
async fn unknown_sort_values_do_not_panic() {
    let store = store().await;
    for (order, target) in [(7, 0), (0, 9), (-1, -1), (1, 42)] {
        let resp = store
            .range(RangeRequest {
                sort_order: order,
                sort_target: target,
                limit: 2,
                ..all()
            })
            .await
            .unwrap();
        assert_eq!(keys(&resp), ["a", "b"]);
        assert!(resp.more);
    }
}

#[tokio::test]
async fn min_and_max_filters() {
    let store = store().await;
    let filtered = |f: fn(&mut RangeRequest)| {
        let mut req = all();
        f(&mut req);
        req
    };
    type Filter = fn(&mut RangeRequest);
    let cases: [(Filter, Vec<&str>); 6] = [
        (|r| r.max_mod_revision = 6, vec!["a", "c", "e"]),
        (|r| r.min_mod_revision = 7, vec!["b", "d"]),
        (|r| r.max_create_revision = 3, vec!["a", "b"]),
        (|r| r.min_create_revision = 5, vec!["d", "e"]),
        (
            |r| {
                r.min_mod_revision = 4;
                r.max_mod_revision = 7;
            },
            vec!["b", "c", "e"],
        ),
        (
            |r| {
                r.min_create_revision = 3;
                r.max_mod_revision = 6;
            },
            vec!["c", "e"],
        ),
    ];
    for (f, expect) in cases {
        let resp = store.range(filtered(f)).await.unwrap();
        assert_eq!(keys(&resp), expect);
        // The count is taken before filtering.
        assert_eq!(resp.count, 5);
        assert!(!resp.more);
    }
    // The limit applies after filtering.
    let resp = store
        .range(RangeRequest {
            limit: 2,
            max_mod_revision: 6,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a", "c"]);
    assert!(resp.more);
    let resp = store
        .range(RangeRequest {
            limit: 3,
            max_mod_revision: 6,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a", "c", "e"]);
    assert!(!resp.more);
    // Filters then sort.
    let resp = store
        .range(RangeRequest {
            min_mod_revision: 4,
            ..sorted(SortOrder::Descend, SortTarget::Value)
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["d", "b", "e", "c"]);
}

#[tokio::test]
async fn revisions() {
    let store = store().await;
    let at4 = store
        .range(RangeRequest {
            revision: 4,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(
        at4.kvs,
        vec![
            kv("a", "x", 2, 2, 1),
            kv("b", "y", 3, 3, 1),
            kv("c", "x", 4, 4, 1)
        ]
    );
    assert_eq!(at4.count, 3);
    // The header carries the current revision, not the one read.
    assert_eq!(rev(&at4), 8);

    let at1 = store
        .range(RangeRequest {
            revision: 1,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(at1.count, 0);

    for current in [0, -1, 8] {
        let resp = store
            .range(RangeRequest {
                revision: current,
                ..all()
            })
            .await
            .unwrap();
        assert_eq!(resp.count, 5, "revision {current}");
    }
    let future = store
        .range(RangeRequest {
            revision: 9,
            ..all()
        })
        .await;
    assert!(matches!(future, Err(MvccError::FutureRevision)));
}

#[tokio::test]
async fn old_revisions_with_options() {
    let store = store().await;
    // At revision 7: a(m2) b(m7 "y2") c(m4) d(m5 "z") e(m6).
    let resp = store
        .range(RangeRequest {
            revision: 7,
            limit: 2,
            ..sorted(SortOrder::Descend, SortTarget::Mod)
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["b", "e"]);
    assert!(resp.more);
    let resp = store
        .range(RangeRequest {
            revision: 7,
            limit: 2,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!(keys(&resp), ["a", "b"]);
    assert!(resp.more);
    assert_eq!(resp.count, 5);
    let resp = store
        .range(RangeRequest {
            revision: 5,
            count_only: true,
            ..all()
        })
        .await
        .unwrap();
    assert_eq!((resp.count, resp.kvs.len()), (4, 0));
}
