//! Cluster membership through etcd's Cluster API on real member processes:
//! growing and shrinking under writes, replacing a dead member (catching up
//! by snapshot), removing the leader, learners and their promotion.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use etcd_client::{Client, ConnectOptions, GetOptions};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");
const WITHIN: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

/// Writes unique keys continuously through whichever endpoints are current,
/// recording every acknowledged write.
struct Writer {
    endpoints: Arc<Mutex<Vec<String>>>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Writer {
    fn start(endpoints: Vec<String>) -> Writer {
        let endpoints = Arc::new(Mutex::new(endpoints));
        let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (endpoints, acked, stop) = (endpoints.clone(), acked.clone(), stop.clone());
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let eps = endpoints.lock().unwrap().clone();
                    let endpoint = eps[(n as usize) % eps.len()].clone();
                    let options = ConnectOptions::new()
                        .with_connect_timeout(Duration::from_secs(1))
                        .with_timeout(Duration::from_secs(3));
                    let Ok(mut client) = Client::connect([endpoint], Some(options)).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let (key, value) = (format!("w/{n:06}"), format!("v{n}"));
                    if client.put(key.clone(), value.clone(), None).await.is_ok() {
                        acked.lock().unwrap().insert(key, value);
                    }
                }
            }
        });
        Writer {
            endpoints,
            acked,
            stop,
            task,
        }
    }

    fn set_endpoints(&self, endpoints: Vec<String>) {
        *self.endpoints.lock().unwrap() = endpoints;
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` further writes were acknowledged.
    async fn wait_more(&self, more: usize) -> Result<()> {
        let target = self.acked() + more;
        let deadline = Instant::now() + WITHIN;
        while self.acked() < target {
            if Instant::now() >= deadline {
                bail!("writes stalled at {} acknowledged", self.acked());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn stop(self) -> Result<BTreeMap<String, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?;
        Ok(Arc::try_unwrap(self.acked)
            .map_err(|_| anyhow::anyhow!("writer still shared"))?
            .into_inner()
            .unwrap())
    }
}

/// Every acknowledged write is readable with a linearizable read on member
/// `i`.
async fn check_acked(cluster: &Cluster, i: usize, acked: &BTreeMap<String, String>) -> Result<()> {
    let mut client = cluster.client(i).await?;
    let got = client
        .get("w/", Some(GetOptions::new().with_prefix()))
        .await?;
    let seen: BTreeMap<String, String> = got
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect();
    for (key, value) in acked {
        match seen.get(key) {
            Some(v) if v == value => {}
            other => bail!("member {i}: acknowledged {key}={value} reads as {other:?}"),
        }
    }
    Ok(())
}

/// Every running member in `members` lists the same members, `expected`
/// of them, all started (named, with client URLs) and voters.
async fn check_member_lists(cluster: &Cluster, members: &[usize]) -> Result<()> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut lists = Vec::new();
        for &i in members {
            lists.push(cluster.member_list(i).await?);
        }
        let agree = lists.windows(2).all(|w| w[0] == w[1]);
        let complete = lists[0].len() == members.len()
            && lists[0].iter().all(|(_, name, _, clients, learner)| {
                !name.is_empty() && !clients.is_empty() && !learner
            });
        if agree && complete {
            let mut ids: Vec<u64> = members.iter().map(|&i| cluster.id(i)).collect();
            ids.sort_unstable();
            let listed: Vec<u64> = lists[0].iter().map(|m| m.0).collect();
            assert_eq!(listed, ids, "MemberList names exactly the members");
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("member lists never agreed: {lists:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn endpoints(cluster: &Cluster, members: &[usize]) -> Vec<String> {
    members.iter().map(|&i| cluster.endpoint(i)).collect()
}

#[tokio::test]
async fn growing_to_five_and_shrinking_to_one_under_writes_loses_nothing() -> Result<()> {
    init_tracing();
    let options = ClusterOptions {
        size: 1,
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(NODE, options).await?;
    let mut live = vec![0];
    let writer = Writer::start(endpoints(&cluster, &live));
    writer.wait_more(20).await?;

    for _ in 0..4 {
        let via = *live.last().unwrap();
        let i = cluster.add_member(via, false).await?;
        tracing::info!(member = i, "added a voter; starting it");
        cluster.start_member(i)?;
        cluster.wait_voter(i, WITHIN).await?;
        live.push(i);
        writer.set_endpoints(endpoints(&cluster, &live));
        writer.wait_more(20).await?;
    }
    tracing::info!("five members; checking them");
    check_member_lists(&cluster, &live).await?;
    let so_far = writer.acked.lock().unwrap().clone();
    for &i in &live {
        check_acked(&cluster, i, &so_far).await?;
    }

    // Shrink from the oldest member (the first leader) down to the newest.
    for _ in 0..4 {
        let gone = live.remove(0);
        writer.set_endpoints(endpoints(&cluster, &live));
        tracing::info!(member = gone, "removing");
        cluster.remove_member(*live.last().unwrap(), gone).await?;
        cluster.kill(gone)?;
        writer.wait_more(20).await?;
    }
    let acked = writer.stop().await?;
    tracing::info!(acked = acked.len(), "one member left; checking it");
    check_member_lists(&cluster, &live).await?;
    for &i in &live {
        check_acked(&cluster, i, &acked).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_dead_member_is_replaced_by_a_new_one_that_catches_up_by_snapshot() -> Result<()> {
    init_tracing();
    let options = ClusterOptions {
        extra_args: ["--snapshot-count", "20", "--snapshot-catchup-entries", "5"]
            .map(String::from)
            .to_vec(),
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(NODE, options).await?;
    let writer = Writer::start(endpoints(&cluster, &[0, 1]));
    writer.wait_more(100).await?;

    tracing::info!("killing member 2 and replacing it");
    cluster.kill(2)?;
    writer.wait_more(50).await?;
    cluster.remove_member(0, 2).await?;
    let new = cluster.add_member(1, false).await?;
    // The log moves well past the last snapshot before the new member starts.
    writer.wait_more(50).await?;
    cluster.start_member(new)?;
    cluster.wait_voter(new, WITHIN).await?;
    writer.set_endpoints(endpoints(&cluster, &[0, 1, new]));
    writer.wait_more(30).await?;

    let acked = writer.stop().await?;
    check_member_lists(&cluster, &[0, 1, new]).await?;
    for i in [0, 1, new] {
        check_acked(&cluster, i, &acked).await?;
    }
    // The log before the last snapshot was purged long before the new
    // member started, so it caught up from a snapshot.
    assert!(
        cluster.log_contains(new, "installing snapshot")?,
        "the new member installed a snapshot from the leader"
    );

    tracing::info!("the replaced cluster keeps its quorum without any one member");
    cluster.kill(0)?;
    let mut client = cluster.client(new).await?;
    let deadline = Instant::now() + WITHIN;
    while client.put("after", "quorum", None).await.is_err() {
        if Instant::now() >= deadline {
            bail!("no write succeeded after losing one of three members");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn removing_the_leader_elects_a_new_one_and_writes_continue() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(WITHIN).await?;
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let writer = Writer::start(endpoints(&cluster, &others));
    writer.wait_more(20).await?;

    tracing::info!(leader, "removing the leader");
    cluster.remove_member(others[0], leader).await?;
    writer.wait_more(20).await?;

    // The removed member stops serving: clients get an error from it.
    let deadline = Instant::now() + WITHIN;
    loop {
        let refused = match cluster.client(leader).await {
            Ok(mut c) => c.put("from-removed", "x", None).await.is_err(),
            Err(_) => true,
        };
        if refused {
            break;
        }
        if Instant::now() >= deadline {
            bail!("the removed leader still accepts writes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.kill(leader)?;
    let new_leader = cluster.leader(WITHIN).await?;
    assert_ne!(new_leader, leader);

    let acked = writer.stop().await?;
    check_member_lists(&cluster, &others).await?;
    for &i in &others {
        check_acked(&cluster, i, &acked).await?;
    }
    Ok(())
}

fn status_code(err: &etcd_client::Error) -> Option<(tonic::Code, String)> {
    match err {
        etcd_client::Error::GRpcStatus(s) => Some((s.code(), s.message().to_string())),
        _ => None,
    }
}

#[tokio::test]
async fn a_learner_receives_data_without_voting_and_is_promoted_once_caught_up() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut client = cluster.client(0).await?;
    for n in 0..50 {
        client.put(format!("k{n}"), "v", None).await?;
    }
    let learner = cluster.add_member(1, true).await?;
    let id = cluster.id(learner);
    let listed = cluster.member_list(2).await?;
    let entry = listed
        .iter()
        .find(|m| m.0 == id)
        .context("learner listed")?;
    assert!(entry.4, "listed as a learner");
    assert!(entry.1.is_empty(), "not started: no name yet");

    // Not started, so not caught up: promotion fails as in etcd.
    let err = client.member_promote(id).await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some((
            tonic::Code::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader".into()
        ))
    );

    cluster.start_member(learner)?;
    let deadline = Instant::now() + WITHIN;
    while cluster.local_get(learner, "k49").await.ok().flatten() != Some(b"v".to_vec()) {
        if Instant::now() >= deadline {
            bail!("the learner never received the data");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = cluster.client(learner).await?.status().await?;
    assert!(status.is_learner(), "a learner does not vote");

    let deadline = Instant::now() + WITHIN;
    loop {
        match client.member_promote(id).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tracing::info!(error = %e, "promotion refused; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    cluster.wait_voter(learner, WITHIN).await?;
    let err = client.member_promote(id).await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some((
            tonic::Code::FailedPrecondition,
            "etcdserver: can only promote a learner member".into()
        ))
    );
    let err = client.member_remove(0x1234).await.unwrap_err();
    assert_eq!(
        status_code(&err),
        Some((tonic::Code::NotFound, "etcdserver: member not found".into()))
    );
    check_member_lists(&cluster, &[0, 1, 2, learner]).await?;

    tracing::info!("peer URLs follow MemberUpdate");
    let updated = client
        .member_update(id, ["http://127.0.0.1:1".to_string()])
        .await?;
    let member = updated
        .members()
        .iter()
        .find(|m| m.id() == id)
        .context("updated member listed")?;
    assert_eq!(member.peer_urls(), ["http://127.0.0.1:1".to_string()]);
    let url = cluster.peer_url(learner);
    client.member_update(id, [url.clone()]).await?;
    let err = client
        .member_update(cluster.id(0), [url])
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&err),
        Some((
            tonic::Code::FailedPrecondition,
            "etcdserver: Peer URLs already exists".into()
        ))
    );
    // Back on its real URL, the member takes part again.
    client.put("after-update", "x", None).await?;
    let deadline = Instant::now() + WITHIN;
    while cluster
        .local_get(learner, "after-update")
        .await
        .ok()
        .flatten()
        != Some(b"x".to_vec())
    {
        if Instant::now() >= deadline {
            bail!("the member does not receive writes after its peer URL was restored");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check_member_lists(&cluster, &[0, 1, 2, learner]).await?;
    Ok(())
}

#[tokio::test]
async fn auto_promotion_makes_a_caught_up_learner_a_voter() -> Result<()> {
    init_tracing();
    let options = ClusterOptions {
        size: 1,
        extra_args: vec!["--auto-promote-learners".into()],
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start(NODE, options).await?;
    let learner = cluster.add_member(0, true).await?;
    cluster.start_member(learner)?;
    cluster.wait_voter(learner, WITHIN).await?;
    check_member_lists(&cluster, &[0, learner]).await?;
    Ok(())
}

#[tokio::test]
async fn a_member_that_was_not_added_refuses_to_join() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            ..ClusterOptions::default()
        },
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            Ok(l.local_addr()?.port())
        })
        .collect::<std::io::Result<_>>()?;
    let client = format!("http://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let initial = format!("m1={},stranger={peer}", cluster.peer_url(0));
    let output = tokio::process::Command::new(NODE)
        .args(["--name", "stranger", "--initial-cluster", &initial])
        .args(["--initial-cluster-state", "existing"])
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .arg("--data-dir")
        .arg(dir.path().join("stranger.data"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WITHIN, output)
        .await
        .context("the stranger kept running")??;
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the stranger must not start: {log}"
    );
    assert!(
        log.contains("member not added to the cluster: run `etcdctl member add` first"),
        "clear error expected, got: {log}"
    );
    Ok(())
}

#[tokio::test]
async fn a_member_removed_while_down_stops_when_it_comes_back() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    cluster.kill(2)?;
    cluster.remove_member(0, 2).await?;
    cluster.start_member(2)?;
    // Its peers refuse it as removed; it records that and stops.
    let marker = cluster.data_dir(2).join("member-removed");
    let deadline = Instant::now() + WITHIN;
    while !marker.exists() {
        if Instant::now() >= deadline {
            bail!("the removed member came back and never noticed its removal");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = match cluster.client(2).await {
        Ok(mut c) => c.put("from-removed", "x", None).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a removed member serves no writes");
    assert!(
        cluster.log_contains(2, "a peer answered that this member was removed")?,
        "the peers told it"
    );
    cluster.kill(2)?;
    check_member_lists(&cluster, &[0, 1]).await?;
    Ok(())
}

/// Every member of a new cluster ends up with the same membership, naming
/// every member's client URLs: the bootstrap entry (written by every
/// initial member as entry 0) carries only what all of them know, and each
/// member publishes its own URLs through a membership change. (A bootstrap
/// entry holding a member's own URLs left each member with a different
/// list, so `etcdctl endpoint status --cluster` reached only one member.)
#[tokio::test]
async fn every_member_lists_every_started_members_client_urls() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut expected: Vec<Vec<String>> = (0..cluster.size())
        .map(|i| vec![cluster.endpoint(i)])
        .collect();
    expected.sort();
    let deadline = Instant::now() + WITHIN;
    for i in 0..cluster.size() {
        loop {
            let mut urls: Vec<Vec<String>> = cluster
                .member_list(i)
                .await?
                .into_iter()
                .map(|(_, _, _, client_urls, _)| client_urls)
                .collect();
            urls.sort();
            if urls == expected {
                break;
            }
            if Instant::now() > deadline {
                bail!("member {i} lists client URLs {urls:?}, expected {expected:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
