//! The SDK as the recipes' KV core (`witan_recipes::KvCore`) against a
//! real member: the calls the recipes make, and the errors they branch on.

mod common;

use std::time::Duration;

use common::{client_on, within};
use futures::StreamExt;
use witan_client_testkit::Cluster;
use witan_proto::etcdserverpb::request_op::Request;
use witan_proto::etcdserverpb::{PutRequest, RangeRequest, RequestOp, TxnRequest};
use witan_recipes::{CoreError, KvCore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_core_calls_work_over_the_network() {
    let cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;

    let lease = KvCore::lease_grant(&client, 5, 0).await.unwrap();
    assert!(lease.id > 0 && lease.ttl >= 5);
    let put = |key: &str| RequestOp {
        request: Some(Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value: b"v".to_vec(),
            lease: lease.id,
            ..Default::default()
        })),
    };
    let txn = KvCore::txn(
        &client,
        TxnRequest {
            success: vec![put("/core/a")],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let after = txn.header.unwrap().revision + 1;

    let mut watch = KvCore::watch(&client, b"/core/".to_vec(), b"/core0".to_vec(), after)
        .await
        .unwrap();
    KvCore::txn(
        &client,
        TxnRequest {
            success: vec![put("/core/b")],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let batch = within(Duration::from_secs(10), "a watch batch", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].kv.as_ref().unwrap().key, b"/core/b");

    let range = KvCore::range(
        &client,
        RangeRequest {
            key: b"/core/".to_vec(),
            range_end: b"/core0".to_vec(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(range.count, 2);

    assert!(KvCore::lease_keep_alive(&client, lease.id).await.unwrap() > 0);
    assert!(KvCore::lease_time_to_live(&client, lease.id).await.unwrap() > 0);
    KvCore::lease_revoke(&client, lease.id).await.unwrap();
    assert_eq!(
        KvCore::lease_keep_alive(&client, lease.id).await,
        Err(CoreError::LeaseNotFound)
    );
    assert_eq!(
        KvCore::lease_time_to_live(&client, lease.id).await,
        Err(CoreError::LeaseNotFound)
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_reaches_the_core_as_compacted() {
    let cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;
    let old = client.put("k", "1").await.unwrap().header.revision;
    let now = client.put("k", "2").await.unwrap().header.revision;
    client.compact(now).await.unwrap();

    let ranged = KvCore::range(
        &client,
        RangeRequest {
            key: b"k".to_vec(),
            revision: old,
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(ranged, Err(CoreError::Compacted { revision, .. }) if revision == old),
        "{ranged:?}"
    );

    let watched = match KvCore::watch(&client, b"k".to_vec(), Vec::new(), old).await {
        Err(err) => err,
        Ok(mut stream) => within(
            Duration::from_secs(10),
            "the compaction error",
            stream.next(),
        )
        .await
        .expect("an item")
        .unwrap_err(),
    };
    assert_eq!(
        watched,
        CoreError::Compacted {
            revision: old,
            compact_revision: now
        }
    );
    cluster.stop().await;
}
