//! Every KV option and every request error, end to end: a real member
//! process and the `etcd-client` crate.

use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse,
};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

async fn single_member() -> Result<(Cluster, Client)> {
    let cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            ..ClusterOptions::default()
        },
    )
    .await?;
    let client = cluster.client(0).await?;
    Ok((cluster, client))
}

fn keys(response: &etcd_client::GetResponse) -> Vec<String> {
    response
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect()
}

fn revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(-1)
}

/// Asserts a gRPC error with etcd's code and exact message.
fn assert_status(
    result: Result<impl std::fmt::Debug, etcd_client::Error>,
    code: tonic::Code,
    message: &str,
) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(status.code(), code, "code for {message:?}");
            assert_eq!(status.message(), message);
        }
        other => panic!("expected {code:?} {message:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn put_options() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    let first = c.put("k", "v1", None).await?;
    assert_eq!(revision(first.header()), 2);
    assert!(first.prev_key().is_none());

    let second = c
        .put("k", "v2", Some(PutOptions::new().with_prev_key()))
        .await?;
    let prev = second.prev_key().context("prev_kv")?;
    assert_eq!(
        (prev.value(), prev.version(), prev.mod_revision()),
        (&b"v1"[..], 1, 2)
    );

    c.put("k", "", Some(PutOptions::new().with_ignore_value()))
        .await?;
    let got = c.get("k", None).await?;
    let kv = &got.kvs()[0];
    assert_eq!(
        (
            kv.value(),
            kv.version(),
            kv.create_revision(),
            kv.mod_revision()
        ),
        (&b"v2"[..], 3, 2, 4)
    );

    c.put("k", "v3", Some(PutOptions::new().with_ignore_lease()))
        .await?;
    assert_status(
        c.put("missing", "", Some(PutOptions::new().with_ignore_value()))
            .await,
        tonic::Code::InvalidArgument,
        "etcdserver: key not found",
    );
    assert_status(
        c.put("k", "x", Some(PutOptions::new().with_lease(42)))
            .await,
        tonic::Code::NotFound,
        "etcdserver: requested lease not found",
    );
    assert_status(
        c.put("k", "x", Some(PutOptions::new().with_ignore_value()))
            .await,
        tonic::Code::InvalidArgument,
        "etcdserver: value is provided",
    );
    assert_status(
        c.put(
            "k",
            "x",
            Some(PutOptions::new().with_lease(1).with_ignore_lease()),
        )
        .await,
        tonic::Code::InvalidArgument,
        "etcdserver: lease is provided",
    );
    // The refused requests changed nothing.
    assert_eq!(revision(c.get("k", None).await?.header()), 5);
    Ok(())
}

#[tokio::test]
async fn range_options() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    // Revisions 2..=6: a/1 a/2 a/3 b/1, then a/2 again.
    for key in ["a/1", "a/2", "a/3", "b/1"] {
        c.put(key, format!("value of {key}"), None).await?;
    }
    c.put("a/2", "z", None).await?;

    let prefix = c.get("a/", Some(GetOptions::new().with_prefix())).await?;
    assert_eq!(keys(&prefix), ["a/1", "a/2", "a/3"]);
    assert_eq!(prefix.count(), 3);
    assert_eq!(revision(prefix.header()), 6);

    let from = c
        .get("a/3", Some(GetOptions::new().with_from_key()))
        .await?;
    assert_eq!(keys(&from), ["a/3", "b/1"]);
    let all = c.get("", Some(GetOptions::new().with_all_keys())).await?;
    assert_eq!(all.count(), 4);
    let between = c
        .get("a/2", Some(GetOptions::new().with_range("b/1")))
        .await?;
    assert_eq!(keys(&between), ["a/2", "a/3"]);

    let limited = c
        .get("a/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await?;
    assert_eq!(keys(&limited), ["a/1", "a/2"]);
    assert!(limited.more());
    assert_eq!(limited.count(), 3);

    let old = c
        .get("a/2", Some(GetOptions::new().with_revision(3)))
        .await?;
    assert_eq!(old.kvs()[0].value(), b"value of a/2");
    assert_eq!(
        revision(old.header()),
        6,
        "header carries the current revision"
    );

    let by_mod_desc = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Mod, SortOrder::Descend),
            ),
        )
        .await?;
    assert_eq!(keys(&by_mod_desc), ["a/2", "b/1", "a/3", "a/1"]);
    let by_create = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_sort(SortTarget::Create, SortOrder::Ascend),
            ),
        )
        .await?;
    assert_eq!(keys(&by_create), ["a/1", "a/2", "a/3", "b/1"]);
    let by_value = c
        .get(
            "a/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend)
                    .with_limit(1),
            ),
        )
        .await?;
    assert_eq!(keys(&by_value), ["a/2"]);
    assert!(by_value.more());
    let by_version = c
        .get(
            "a/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Version, SortOrder::Descend),
            ),
        )
        .await?;
    assert_eq!(keys(&by_version)[0], "a/2");

    let keys_only = c
        .get("a/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await?;
    assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
    let count_only = c
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await?;
    assert!(count_only.kvs().is_empty());
    assert_eq!(count_only.count(), 4);

    let filtered = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_min_mod_revision(4)
                    .with_max_mod_revision(5),
            ),
        )
        .await?;
    assert_eq!(keys(&filtered), ["a/3", "b/1"]);
    assert_eq!(filtered.count(), 4, "count ignores the filters, as etcd");
    let created = c
        .get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_min_create_revision(3)
                    .with_max_create_revision(4),
            ),
        )
        .await?;
    assert_eq!(keys(&created), ["a/2", "a/3"]);

    let serializable = c
        .get("b/1", Some(GetOptions::new().with_serializable()))
        .await?;
    assert_eq!(serializable.kvs()[0].value(), b"value of b/1");

    assert_status(
        c.get("a/1", Some(GetOptions::new().with_revision(100)))
            .await,
        tonic::Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
    );
    assert_status(
        c.get("", None).await,
        tonic::Code::InvalidArgument,
        "etcdserver: key is not provided",
    );
    Ok(())
}

#[tokio::test]
async fn delete_options() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    for key in ["d/1", "d/2", "d/3", "e"] {
        c.put(key, "v", None).await?;
    }
    let one = c.delete("e", None).await?;
    assert_eq!(one.deleted(), 1);
    let none = c.delete("e", None).await?;
    assert_eq!(none.deleted(), 0);
    assert_eq!(
        revision(none.header()),
        revision(one.header()),
        "deleting nothing keeps the revision"
    );

    let prefix = c
        .delete(
            "d/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await?;
    assert_eq!(prefix.deleted(), 3);
    let prev: Vec<&[u8]> = prefix.prev_kvs().iter().map(|kv| kv.key()).collect();
    assert_eq!(prev, [&b"d/1"[..], b"d/2", b"d/3"]);
    assert_eq!(
        c.get(
            "d/",
            Some(GetOptions::new().with_prefix().with_count_only())
        )
        .await?
        .count(),
        0
    );
    assert_status(
        c.delete("", None).await,
        tonic::Code::InvalidArgument,
        "etcdserver: key is not provided",
    );
    Ok(())
}

#[tokio::test]
async fn txn_compares_branches_and_nesting() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    c.put("t/a", "1", None).await?; // rev 2
    c.put("t/b", "2", None).await?; // rev 3

    let txn = Txn::new()
        .when([
            Compare::value("t/a", CompareOp::Equal, "1"),
            Compare::version("t/a", CompareOp::Greater, 0),
            Compare::create_revision("t/b", CompareOp::Equal, 3),
            Compare::mod_revision("t/", CompareOp::Less, 4).with_prefix(),
            Compare::lease("t/a", CompareOp::Equal, 0),
        ])
        .and_then([
            TxnOp::put("t/a", "10", None),
            TxnOp::put("t/c", "30", None),
            TxnOp::get("t/", Some(GetOptions::new().with_prefix())),
            TxnOp::txn(
                Txn::new()
                    .when([Compare::value("t/b", CompareOp::NotEqual, "2")])
                    .or_else([TxnOp::delete("t/b", None)]),
            ),
        ])
        .or_else([TxnOp::put("t/failed", "x", None)]);
    let response = c.txn(txn).await?;
    assert!(response.succeeded());
    assert_eq!(
        revision(response.header()),
        4,
        "every write of a txn shares one revision"
    );
    let ops = response.op_responses();
    match &ops[2] {
        TxnOpResponse::Get(get) => {
            let values: Vec<&[u8]> = get.kvs().iter().map(|kv| kv.value()).collect();
            assert_eq!(
                values,
                [&b"10"[..], b"2", b"30"],
                "a read sees the txn's earlier writes"
            );
        }
        other => panic!("expected a get response, got {other:?}"),
    }
    match &ops[3] {
        TxnOpResponse::Txn(nested) => assert!(!nested.succeeded()),
        other => panic!("expected a txn response, got {other:?}"),
    }
    assert_eq!(
        c.get("t/b", None).await?.count(),
        0,
        "the nested failure branch ran"
    );
    for kv in c
        .get("t/", Some(GetOptions::new().with_prefix()))
        .await?
        .kvs()
    {
        assert_eq!(kv.mod_revision(), 4);
    }

    let failed = c
        .txn(
            Txn::new()
                .when([Compare::value("t/missing", CompareOp::Equal, "")])
                .or_else([TxnOp::put("t/else", "e", None)]),
        )
        .await?;
    assert!(
        !failed.succeeded(),
        "a value compare on a missing key fails"
    );
    assert_eq!(c.get("t/else", None).await?.kvs()[0].value(), b"e");

    let read_only = c
        .txn(Txn::new().and_then([TxnOp::get("t/a", None)]))
        .await?;
    assert_eq!(
        revision(read_only.header()),
        5,
        "a read-only txn does not bump the revision"
    );

    assert_status(
        c.txn(Txn::new().and_then([TxnOp::put("dup", "1", None), TxnOp::put("dup", "2", None)]))
            .await,
        tonic::Code::InvalidArgument,
        "etcdserver: duplicate key given in txn request",
    );
    let too_many: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("many/{i}"), "v", None))
        .collect();
    assert_status(
        c.txn(Txn::new().and_then(too_many)).await,
        tonic::Code::InvalidArgument,
        "etcdserver: too many operations in txn request",
    );
    assert_eq!(
        revision(c.get("t/a", None).await?.header()),
        5,
        "refused txns changed nothing"
    );
    Ok(())
}

#[tokio::test]
async fn compaction() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    for i in 0..5 {
        c.put("c", format!("v{i}"), None).await?; // revisions 2..=6
    }
    c.compact(
        4,
        Some(etcd_client::CompactionOptions::new().with_physical()),
    )
    .await?;
    assert_status(
        c.get("c", Some(GetOptions::new().with_revision(3))).await,
        tonic::Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
    );
    let at = c.get("c", Some(GetOptions::new().with_revision(4))).await?;
    assert_eq!(at.kvs()[0].value(), b"v2");
    assert_status(
        c.compact(4, None).await,
        tonic::Code::OutOfRange,
        "etcdserver: mvcc: required revision has been compacted",
    );
    assert_status(
        c.compact(100, None).await,
        tonic::Code::OutOfRange,
        "etcdserver: mvcc: required revision is a future revision",
    );
    assert_eq!(revision(c.get("c", None).await?.header()), 6);
    Ok(())
}

#[tokio::test]
async fn oversized_requests_are_refused() -> Result<()> {
    let (_cluster, mut c) = single_member().await?;
    let value = vec![b'x'; 1_600_000];
    assert_status(
        c.put("big", value, None).await,
        tonic::Code::InvalidArgument,
        "etcdserver: request is too large",
    );
    assert_eq!(c.get("big", None).await?.count(), 0);
    // Well under the limit is fine.
    c.put("big", vec![b'x'; 1_000_000], None).await?;
    tokio::time::timeout(Duration::from_secs(5), c.get("big", None)).await??;
    Ok(())
}
