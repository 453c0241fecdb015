//! Leases end to end with real member processes and the `etcd-client`
//! crate: the Lease API, keys deleted on revoke and on expiry, and the
//! expiry bounds across a leader kill (docs/LEASES.md).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::{GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions};
use tokio::sync::Mutex;
use tokio::time::Instant;
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

fn single() -> ClusterOptions {
    ClusterOptions {
        size: 1,
        ..ClusterOptions::default()
    }
}

#[tokio::test]
async fn the_lease_api() -> Result<()> {
    let cluster = Cluster::start(NODE, single()).await?;
    let mut c = cluster.client(0).await?;

    let chosen = c
        .lease_grant(60, Some(LeaseGrantOptions::new().with_id(4242)))
        .await?;
    assert_eq!((chosen.id(), chosen.ttl()), (4242, 60));
    let taken = c
        .lease_grant(60, Some(LeaseGrantOptions::new().with_id(4242)))
        .await;
    match taken {
        Err(etcd_client::Error::GRpcStatus(s)) => {
            assert_eq!(s.code(), tonic::Code::FailedPrecondition);
            assert_eq!(s.message(), "etcdserver: lease already exists");
        }
        other => panic!("expected lease already exists, got {other:?}"),
    }
    let short = c.lease_grant(0, None).await?;
    assert!(short.id() > 0, "a generated ID is positive");
    assert_eq!(
        short.ttl(),
        1,
        "a TTL below 1.5 election timeouts is raised to it"
    );

    c.put("held", "v", Some(PutOptions::new().with_lease(4242)))
        .await?;
    let ttl = c
        .lease_time_to_live(4242, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await?;
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(ttl.ttl() > 55 && ttl.ttl() <= 60, "remaining {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"held".to_vec()]);

    let (mut keeper, mut responses) = c.lease_keep_alive(4242).await?;
    keeper.keep_alive().await?;
    let answer = responses.message().await?.context("a keepalive answer")?;
    assert_eq!((answer.id(), answer.ttl()), (4242, 60));

    let listed: BTreeSet<i64> = c.leases().await?.leases().iter().map(|l| l.id()).collect();
    assert_eq!(listed, BTreeSet::from([4242, short.id()]));

    let revision = c
        .get("held", None)
        .await?
        .header()
        .context("header")?
        .revision();
    c.lease_revoke(4242).await?;
    let after = c.get("held", None).await?;
    assert_eq!(after.count(), 0, "revoking deletes the attached keys");
    assert_eq!(after.header().context("header")?.revision(), revision + 1);
    assert_eq!(c.lease_time_to_live(4242, None).await?.ttl(), -1);
    match c.lease_revoke(4242).await {
        Err(etcd_client::Error::GRpcStatus(s)) => {
            assert_eq!(s.code(), tonic::Code::NotFound);
            assert_eq!(s.message(), "etcdserver: requested lease not found");
        }
        other => panic!("expected lease not found, got {other:?}"),
    }
    match c
        .put("k", "v", Some(PutOptions::new().with_lease(4242)))
        .await
    {
        Err(etcd_client::Error::GRpcStatus(s)) => assert_eq!(s.code(), tonic::Code::NotFound),
        other => panic!("expected lease not found, got {other:?}"),
    }
    Ok(())
}

/// While 100 leases are kept alive through a follower and 100 are not, the
/// leader is killed: none of the kept-alive expire; every other one expires
/// no earlier than its TTL after its grant and no later than the documented
/// bound (TTL + 1.5 election timeouts + 3 ticks, plus up to 2 s for commits
/// on a loaded test machine).
#[tokio::test]
async fn leader_kill_neither_forgives_nor_forgets() -> Result<()> {
    // Long enough that a leader which forgave (restarted every lease at its
    // full TTL, as etcd without checkpoints) would miss the bound by seconds.
    const TTL: i64 = 6;
    const LEASES: usize = 100;
    let options = ClusterOptions::default();
    let election = Duration::from_millis(options.election_ms);
    let tick = Duration::from_millis(250);
    let mut cluster = Cluster::start(NODE, options).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = (leader + 1) % cluster.size();
    let client = cluster.client(follower).await?;

    // Grants and puts run concurrently, so setting up takes well under a TTL.
    let grant_all = |prefix: &'static str| {
        let client = client.clone();
        async move {
            let grants = (0..LEASES).map(|i| {
                let mut c = client.clone();
                async move {
                    let id = c.lease_grant(TTL, None).await?.id();
                    let key = format!("{prefix}/{i:03}");
                    c.put(key, "v", Some(PutOptions::new().with_lease(id)))
                        .await?;
                    Ok::<i64, etcd_client::Error>(id)
                }
            });
            futures::future::join_all(grants)
                .await
                .into_iter()
                .collect::<Result<Vec<i64>, _>>()
        }
    };
    let kept = grant_all("kept").await?;

    // Keep those alive through the follower, every TTL/3, one keepalive
    // stream per lease, as a client library does: a broken stream (the
    // cluster is electing) is reopened; an answer with TTL 0 means expired.
    let endpoint = cluster.endpoint(follower);
    let expired = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, ready) = tokio::sync::mpsc::channel::<()>(LEASES);
    let keepers: Vec<_> = kept
        .iter()
        .map(|id| {
            let (id, endpoint, expired, ready) =
                (*id, endpoint.clone(), expired.clone(), ready_tx.clone());
            tokio::spawn(async move {
                let mut announced = false;
                loop {
                    let Ok(mut client) =
                        etcd_client::Client::connect([endpoint.clone()], None).await
                    else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let (mut keeper, mut answers) = match client.lease_keep_alive(id).await {
                        Ok(stream) => stream,
                        Err(etcd_client::Error::LeaseKeepAliveError(_)) => {
                            expired.lock().await.push(id);
                            return;
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if !announced {
                        announced = true;
                        let _ = ready.send(()).await;
                    }
                    loop {
                        tokio::time::sleep(Duration::from_millis(2000)).await;
                        if keeper.keep_alive().await.is_err() {
                            break;
                        }
                        match answers.message().await {
                            Ok(Some(answer)) if answer.ttl() > 0 => {}
                            Ok(Some(_)) => {
                                expired.lock().await.push(id);
                                return;
                            }
                            _ => break,
                        }
                    }
                }
            })
        })
        .collect();
    drop(ready_tx);
    let mut ready = ready;
    for _ in 0..LEASES {
        ready
            .recv()
            .await
            .context("a keeper gave up before starting")?;
    }

    let granted = Instant::now();
    grant_all("free").await?;
    let last_free_granted = Instant::now();

    tokio::time::sleep_until(granted + Duration::from_secs(4)).await;
    tracing::info!(leader, "killing the leader");
    cluster.kill(leader)?;

    let count = |prefix: &'static str| {
        let endpoint = cluster.endpoint(follower);
        async move {
            let mut client = etcd_client::Client::connect([endpoint], None).await.ok()?;
            let options = GetOptions::new()
                .with_prefix()
                .with_count_only()
                .with_serializable();
            let r = client.get(prefix, Some(options)).await.ok()?;
            Some(r.count())
        }
    };
    let bound =
        Duration::from_secs(TTL as u64) + election * 3 / 2 + tick * 3 + Duration::from_secs(2);
    let deadline = last_free_granted + bound;
    let mut gone_at = None;
    while Instant::now() < deadline + Duration::from_secs(5) {
        if count("free/").await == Some(0) {
            gone_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone_at = gone_at.context("leases that were not kept alive never expired")?;
    eprintln!(
        "leases not kept alive were gone {:?} after their grants began and {:?} after they ended (TTL {TTL}s, bound {bound:?})",
        gone_at - granted,
        gone_at - last_free_granted
    );
    assert!(
        gone_at >= granted + Duration::from_secs(TTL as u64),
        "leases expired before their TTL"
    );
    assert!(
        gone_at <= deadline,
        "leases expired {:?} after the last grant, later than the bound {bound:?}",
        gone_at - last_free_granted
    );

    // Two more TTLs: the kept-alive leases and their keys are all still there.
    tokio::time::sleep(Duration::from_secs(2 * TTL as u64)).await;
    for keeper in &keepers {
        keeper.abort();
    }
    assert_eq!(
        *expired.lock().await,
        Vec::<i64>::new(),
        "kept-alive leases expired"
    );
    assert_eq!(count("kept/").await, Some(LEASES as i64));
    Ok(())
}
