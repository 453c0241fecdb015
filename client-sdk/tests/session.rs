//! Sessions against real clusters: a session is lost when its keepalives
//! cannot reach the cluster for a TTL, survives one member stopping, and
//! revokes its lease when closed or dropped.

mod common;

use std::time::Duration;

use common::{client_on, wait_until, within};
use witan_client::{Error, Session, SessionLost};
use witan_client_testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_lost_when_no_keepalive_reaches_the_cluster() {
    let mut cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;
    let session = Session::new(&client, 2).await.unwrap();
    let lost = session.lost();
    assert!(!session.is_lost());

    cluster.stop_member(0).await;
    let reason = within(
        Duration::from_secs(2 + 3),
        "the session reports it is lost",
        lost,
    )
    .await;
    assert_eq!(reason, SessionLost::Unreachable);
    assert!(session.is_lost());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_survives_its_member_stopping() {
    let mut cluster = Cluster::start(3).await;
    let client = client_on(&cluster, &[0, 1, 2]).await;
    let observer = client_on(&cluster, &[2, 1, 0]).await;
    let session = Session::new(&client, 2).await.unwrap();
    client
        .put("/held", "yes")
        .lease(session.lease_id())
        .await
        .unwrap();

    cluster.stop_member(0).await;
    // For three TTLs the session must not be lost: keepalives move to
    // another member.
    let lost = tokio::time::timeout(Duration::from_secs(6), session.lost()).await;
    assert!(lost.is_err(), "the session was lost: {lost:?}");
    let info = observer
        .lease_time_to_live(session.lease_id(), true)
        .await
        .unwrap();
    assert_eq!(info.keys, vec![b"/held".to_vec()]);
    session.close().await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_or_dropping_a_session_revokes_its_lease() {
    let cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;

    let closed = Session::new(&client, 30).await.unwrap();
    let id = closed.lease_id();
    closed.close().await.unwrap();
    assert!(matches!(
        client.lease_time_to_live(id, false).await,
        Err(Error::LeaseNotFound)
    ));

    let dropped = Session::new(&client, 30).await.unwrap();
    let id = dropped.lease_id();
    client.put("/k", "v").lease(id).await.unwrap();
    drop(dropped);
    wait_until(
        Duration::from_secs(5),
        "the dropped session's lease is revoked",
        || async { !client.leases().await.unwrap().contains(&id) },
    )
    .await;
    assert!(client.get("/k").await.unwrap().kvs.is_empty());
    cluster.stop().await;
}
