//! Endpoint failover against a real 3-member cluster: a stopped member's
//! calls move to another member, writes included when they never left.

mod common;

use std::time::Duration;

use common::{client_on, options, within};
use witan_client::{Client, Error};
use witan_client_testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_continue_on_another_member_when_one_stops() {
    let mut cluster = Cluster::start(3).await;
    let client = client_on(&cluster, &[0, 1, 2]).await;
    client.put("k", "before").await.unwrap();

    tracing::info!("stopping the member the client uses");
    cluster.stop_member(0).await;

    // The first call after the stop finds the connection gone, fails over,
    // and succeeds: a read, then writes (the stopped member refuses
    // connections, so they certainly never reached it).
    let found = client.get("k").await.unwrap();
    assert_eq!(found.kvs[0].value_str().unwrap(), "before");
    for i in 0..20 {
        client.put("k", format!("after-{i}")).await.unwrap();
    }
    let found = client.get("k").await.unwrap();
    assert_eq!(found.kvs[0].value_str().unwrap(), "after-19");

    tracing::info!("restarting it and stopping another");
    cluster.restart_member(0).await;
    cluster.stop_member(1).await;
    client.put("k", "again").await.unwrap();
    assert_eq!(client.get("k").await.unwrap().kvs[0].value, b"again");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_on_after_the_leader_stops() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    // The client talks to the leader first.
    let order: Vec<usize> = (0..3).map(|i| (leader + i) % 3).collect();
    let client = client_on(&cluster, &order).await;
    client.put("k", "1").await.unwrap();

    cluster.stop_member(leader).await;
    // The survivors elect a new leader; until then writes are answered
    // "no leader" (never proposed) and repeated.
    within(
        Duration::from_secs(10),
        "a write after the leader stopped",
        async {
            client.put("k", "2").await.unwrap();
        },
    )
    .await;
    assert_eq!(client.get("k").await.unwrap().kvs[0].value, b"2");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_skips_members_that_are_down() {
    let mut cluster = Cluster::start(3).await;
    cluster.stop_member(0).await;
    let client = client_on(&cluster, &[0, 1, 2]).await;
    client.put("k", "v").await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reachable_member_fails_clearly_and_in_time() {
    let mut cluster = Cluster::start(1).await;
    let endpoint = cluster.endpoint(0);
    let err = Client::connect(["127.0.0.1:1"], options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");

    let client = Client::connect([endpoint], options()).await.unwrap();
    cluster.stop_member(0).await;
    let quick = client.with_timeout(Duration::from_millis(800));
    let started = tokio::time::Instant::now();
    let err = quick.get("k").await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout),
        "{err:?}"
    );
    // A write that could not connect anywhere changed nothing: it says
    // unavailable, not "outcome unknown".
    let err = quick.put("k", "v").await.unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    cluster.stop().await;
}
