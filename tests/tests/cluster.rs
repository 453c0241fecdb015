//! A 3-member cluster of real processes: writes through followers, leader
//! kill mid-traffic, a crashed leader noticed early, full-cluster restart,
//! catching up by snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use etcd_client::GetOptions;
use tokio::sync::Mutex;
use tokio::time::Instant;
use witan_tests::{Cluster, ClusterOptions};

/// Key, value, create revision, mod revision, version.
type KvSummary = (Vec<u8>, Vec<u8>, i64, i64, i64);

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

#[tokio::test]
async fn writes_to_a_follower_are_readable_on_every_member() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = (leader + 1) % cluster.size();
    tracing::info!(leader, follower, "writing through a follower");

    let mut client = cluster.client(follower).await?;
    let put = client.put("greeting", "hello", None).await?;
    let revision = put.header().context("header")?.revision();
    assert_eq!(revision, 2, "first write of a fresh cluster is revision 2");

    for i in 0..cluster.size() {
        let mut c = cluster.client(i).await?;
        let got = c.get("greeting", None).await?;
        assert_eq!(got.kvs().len(), 1, "member {i} sees the key");
        assert_eq!(got.kvs()[0].value(), b"hello");
        assert_eq!(got.kvs()[0].mod_revision(), revision);
        assert_eq!(got.header().context("header")?.revision(), revision);
    }
    Ok(())
}

/// Writers keep writing unique keys through every member while the leader is
/// killed; every acknowledged write must be readable on every member after.
#[tokio::test]
async fn killing_the_leader_loses_no_acknowledged_write() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut writers = Vec::new();
    for w in 0..cluster.size() {
        let endpoint = cluster.endpoint(w);
        let acked = acked.clone();
        let stopped = stopped.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!("w{w}/{n:06}");
                let value = format!("v{n}");
                let Ok(mut client) = etcd_client::Client::connect(
                    [endpoint.clone()],
                    Some(etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(3))),
                )
                .await
                else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if client.put(key.clone(), value.clone(), None).await.is_ok() {
                    acked.lock().await.insert(key, value);
                }
            }
        }));
    }

    // Let some writes land, then kill the leader for real.
    wait_until(Duration::from_secs(10), || async {
        acked.lock().await.len() >= 50
    })
    .await?;
    tracing::info!(leader, "killing the leader");
    cluster.kill(leader)?;
    let before_kill = acked.lock().await.len();
    let new_leader = cluster.leader(Duration::from_secs(10)).await?;
    assert_ne!(new_leader, leader);
    tracing::info!(new_leader, "new leader elected");
    // Writes keep succeeding after the failover.
    wait_until(Duration::from_secs(10), || async {
        acked.lock().await.len() >= before_kill + 50
    })
    .await?;
    stopped.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await?;
    }

    cluster.start_member(leader)?;
    cluster.wait_all_ready(Duration::from_secs(20)).await?;
    let acked = acked.lock().await.clone();
    tracing::info!(
        writes = acked.len(),
        "checking every acknowledged write on every member"
    );
    for i in 0..cluster.size() {
        let mut client = cluster.client(i).await?;
        let all = client
            .get("w", Some(GetOptions::new().with_prefix()))
            .await?;
        let stored: BTreeMap<String, String> = all
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap_or_default().to_string(),
                    kv.value_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (key, value) in &acked {
            assert_eq!(
                stored.get(key),
                Some(value),
                "member {i} lost acknowledged write {key}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_restarted_cluster_keeps_its_keys_and_revision() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut client = cluster.client(0).await?;
    for i in 0..100 {
        client
            .put(format!("k{i:03}"), format!("v{i}"), None)
            .await?;
    }
    client.delete("k050", None).await?;
    let before = client
        .get("k", Some(GetOptions::new().with_prefix()))
        .await?;
    let revision = before.header().context("header")?.revision();

    for i in 0..cluster.size() {
        cluster.kill(i)?;
    }
    for i in 0..cluster.size() {
        cluster.start_member(i)?;
    }
    cluster.wait_all_ready(Duration::from_secs(30)).await?;
    for i in 0..cluster.size() {
        let mut c = cluster.client(i).await?;
        let after = c.get("k", Some(GetOptions::new().with_prefix())).await?;
        assert_eq!(after.header().context("header")?.revision(), revision);
        let summary = |r: &etcd_client::GetResponse| -> Vec<KvSummary> {
            r.kvs()
                .iter()
                .map(|kv| {
                    let (k, v) = (kv.key().to_vec(), kv.value().to_vec());
                    (k, v, kv.create_revision(), kv.mod_revision(), kv.version())
                })
                .collect()
        };
        assert_eq!(
            summary(&after),
            summary(&before),
            "member {i} has the same keys"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_member_that_missed_truncated_log_catches_up_by_snapshot() -> Result<()> {
    init_tracing();
    let options = ClusterOptions {
        extra_args: vec![
            "--snapshot-count".into(),
            "50".into(),
            "--snapshot-catchup-entries".into(),
            "5".into(),
        ],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(NODE, options).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let lagging = (leader + 1) % cluster.size();
    cluster.kill(lagging)?;
    let mut client = cluster.client(leader).await?;
    // Sequential writes: each is its own log entry, so the log grows well
    // past the snapshot threshold and gets truncated.
    for i in 0..400 {
        client
            .put(format!("s{i:04}"), format!("v{i}"), None)
            .await?;
    }
    let expected = client
        .get("s", Some(GetOptions::new().with_prefix().with_count_only()))
        .await?;
    assert_eq!(expected.count(), 400);

    cluster.start_member(lagging)?;
    wait_until(Duration::from_secs(30), || async {
        cluster.local_get(lagging, "s0399").await.ok().flatten() == Some(b"v399".to_vec())
    })
    .await?;
    let mut c = cluster.client(lagging).await?;
    let local = c
        .get(
            "s",
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await?;
    assert_eq!(local.kvs().len(), 400, "the restarted member has every key");
    Ok(())
}

async fn wait_until<F, Fut>(within: Duration, mut condition: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("condition not met within {within:?}")
}

#[tokio::test]
async fn a_cut_off_leader_refuses_requests_and_catches_up_after_rejoining() -> Result<()> {
    init_tracing();
    let options = ClusterOptions {
        extra_args: vec!["--request-timeout".into(), "2s".into()],
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(NODE, options).await?;
    let old_leader = cluster.leader(Duration::from_secs(10)).await?;
    let mut cut_off = cluster.client(old_leader).await?;
    cut_off.put("before", "1", None).await?;

    tracing::info!(old_leader, "cutting the leader off");
    cluster.isolate(old_leader).await?;

    let started = Instant::now();
    let err = cut_off
        .put("during", "lost?", None)
        .await
        .expect_err("minority write must fail");
    assert_unavailable(&err);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "write failed within the request timeout"
    );
    let err = cut_off
        .get("before", None)
        .await
        .expect_err("minority linearizable read must fail");
    assert_unavailable(&err);

    // The majority elects a new leader and goes on.
    let other = (old_leader + 1) % cluster.size();
    let mut majority = cluster.client(other).await?;
    wait_until(Duration::from_secs(15), || {
        let mut majority = majority.clone();
        async move { majority.put("after", "2", None).await.is_ok() }
    })
    .await?;
    majority.put("after", "3", None).await?;

    tracing::info!("healing the partition");
    cluster.heal().await?;
    wait_until(Duration::from_secs(15), || async {
        cluster.local_get(old_leader, "after").await.ok().flatten() == Some(b"3".to_vec())
    })
    .await?;
    let got = cut_off.get("after", None).await?;
    assert_eq!(
        got.kvs()[0].value(),
        b"3",
        "linearizable reads work again after rejoining"
    );
    Ok(())
}

fn assert_unavailable(err: &etcd_client::Error) {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            assert_eq!(
                status.code(),
                tonic::Code::Unavailable,
                "unexpected status {status:?}"
            )
        }
        other => panic!("expected a gRPC Unavailable status, got {other:?}"),
    }
}

#[tokio::test]
async fn sigterm_shuts_a_member_down_cleanly_and_it_restarts() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            ..ClusterOptions::default()
        },
    )
    .await?;
    let mut client = cluster.client(0).await?;
    client.put("kept", "yes", None).await?;
    assert!(
        cluster.terminate(0, Duration::from_secs(10)).await?,
        "a member stopped with SIGTERM exits with success"
    );
    cluster.start_member(0)?;
    cluster.wait_ready(0, Duration::from_secs(20)).await?;
    assert_eq!(cluster.local_get(0, "kept").await?, Some(b"yes".to_vec()));
    Ok(())
}

/// A leader whose process died is replaced before any election timer could
/// fire: the followers find its peer port closed and campaign as soon as
/// the dead leader's lease has run out (0.6 E), where a timer-driven
/// election needs at least E of silence.
#[tokio::test]
async fn a_crashed_leader_is_replaced_before_the_election_timeout() -> Result<()> {
    init_tracing();
    let election = Duration::from_millis(4000);
    let options = ClusterOptions {
        heartbeat_ms: 50,
        election_ms: 4000,
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(NODE, options).await?;
    let old_leader = cluster.leader(Duration::from_secs(20)).await?;
    let mut client = cluster.client((old_leader + 1) % cluster.size()).await?;
    client.put("before", "1", None).await?;

    cluster.kill(old_leader)?;
    let killed = Instant::now();
    let new_leader = cluster.leader(election * 3).await?;
    let took = killed.elapsed();
    assert_ne!(new_leader, old_leader);
    assert!(
        took < election,
        "a new leader took {took:?} after the old one's process died: no faster than \
         the {election:?} election timeout, so the crash was not noticed"
    );
    client.put("after", "2", None).await?;
    assert_eq!(client.get("before", None).await?.kvs()[0].value(), b"1");
    Ok(())
}
