//! etcd's Maintenance service on real 3-member clusters: HashKV as a
//! corruption check, the NOSPACE alarm, defragment under load, snapshot
//! save and restore into a new cluster, auto-compaction, MoveLeader.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use etcd_client::{AlarmAction, AlarmType, Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use witan_server::restore::{restore_snapshot, snapshot_status, RestoreOptions};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

/// Key, value, create revision, mod revision, version.
type KvSummary = (Vec<u8>, Vec<u8>, i64, i64, i64);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

fn options(extra: &[&str]) -> ClusterOptions {
    ClusterOptions {
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        ..ClusterOptions::default()
    }
}

/// The gRPC status of a failed call (none for a transport failure).
fn status_of(err: &etcd_client::Error) -> Option<(tonic::Code, String)> {
    match err {
        etcd_client::Error::GRpcStatus(s) => Some((s.code(), s.message().to_string())),
        _ => None,
    }
}

fn is_no_space(err: &etcd_client::Error) -> bool {
    status_of(err).is_some_and(|(code, message)| {
        code == tonic::Code::ResourceExhausted
            && message == "etcdserver: mvcc: database space exceeded"
    })
}

/// Waits until every member has applied `revision` (serializable reads).
async fn wait_applied(cluster: &Cluster, revision: i64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..cluster.size() {
        let mut client = cluster.client(i).await?;
        loop {
            let got = client
                .get(
                    "witan-test/none",
                    Some(GetOptions::new().with_serializable()),
                )
                .await?;
            if got.header().context("header")?.revision() >= revision {
                break;
            }
            if Instant::now() >= deadline {
                bail!("member {i} did not apply revision {revision}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Every key (with its revisions) as of `revision`, read from member `i`.
async fn all_keys(client: &mut Client, revision: i64) -> Result<Vec<KvSummary>> {
    let got = client
        .get(
            "",
            Some(GetOptions::new().with_all_keys().with_revision(revision)),
        )
        .await?;
    Ok(got
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key().to_vec(),
                kv.value().to_vec(),
                kv.create_revision(),
                kv.mod_revision(),
                kv.version(),
            )
        })
        .collect())
}

/// Puts, deletes, txns and compactions from random members; equal data on
/// every member means equal HashKV at every revision, and a revision with
/// more versions hashes differently.
#[tokio::test]
async fn hash_kv_is_equal_on_every_member_after_a_random_workload() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut clients = Vec::new();
    for i in 0..cluster.size() {
        clients.push(cluster.client(i).await?);
    }
    let mut rng = StdRng::seed_from_u64(7);
    let mut revision = 1;
    for step in 0..240 {
        let client = &mut clients[rng.gen_range(0..cluster.size())];
        let key = format!("k{}", rng.gen_range(0..24));
        let header = match rng.gen_range(0..10) {
            0..=4 => {
                let value = format!("v{}", rng.gen::<u32>());
                client.put(key, value, None).await?.take_header()
            }
            5..=6 => client.delete(key, None).await?.take_header(),
            _ => {
                let txn = Txn::new()
                    .when([Compare::version(key.clone(), CompareOp::Greater, 1)])
                    .and_then([TxnOp::delete(key.clone(), None)])
                    .or_else([TxnOp::put(key, format!("t{step}"), None)]);
                client.txn(txn).await?.take_header()
            }
        };
        revision = header.context("header")?.revision();
        if step % 60 == 59 {
            client.compact(revision - 20, None).await?;
        }
    }
    wait_applied(&cluster, revision).await?;
    tracing::info!(revision, "workload done; comparing hashes");

    let mut at_revision = Vec::new();
    let mut earlier = Vec::new();
    for client in &mut clients {
        let hkv = client.hash_kv(revision).await?;
        at_revision.push((hkv.hash(), hkv.compact_version()));
        earlier.push(client.hash_kv(revision - 1).await?.hash());
    }
    assert!(
        at_revision.iter().all(|h| *h == at_revision[0]),
        "HashKV at {revision} differs across members: {at_revision:?}"
    );
    assert!(earlier.iter().all(|h| *h == earlier[0]), "{earlier:?}");
    assert_ne!(
        at_revision[0].0, earlier[0],
        "one more revision of data must change the hash"
    );

    // Compacted and future revisions are refused as etcd refuses them.
    let err = clients[0].hash_kv(1).await.unwrap_err();
    assert_eq!(
        status_of(&err).map(|s| s.1),
        Some("etcdserver: mvcc: required revision has been compacted".into())
    );
    let err = clients[0].hash_kv(revision + 100).await.unwrap_err();
    assert_eq!(
        status_of(&err).map(|s| s.0),
        Some(tonic::Code::OutOfRange),
        "{err}"
    );

    // The whole-state hash agrees too once every member persisted the same.
    let mut hashes = Vec::new();
    for client in &mut clients {
        hashes.push(client.hash().await?.hash());
    }
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");
    Ok(())
}

/// A small quota: writes fill it, NOSPACE is raised and refuses puts,
/// txns that write and lease grants on every member with etcd's error;
/// deletes, compaction and defragment still work, and the alarm then
/// clears itself.
#[tokio::test]
async fn nospace_alarm_refuses_writes_until_space_is_freed() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, options(&["--quota-backend-bytes", "1048576"])).await?;
    let mut client = cluster.client(0).await?;
    let value = vec![b'x'; 100 * 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut written: i64 = 0;
    loop {
        match client
            .put(format!("big/{written}"), value.clone(), None)
            .await
        {
            Ok(_) => written += 1,
            Err(e) if is_no_space(&e) => break,
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            bail!("NOSPACE never raised after {written} puts");
        }
    }
    tracing::info!(written, "quota reached");
    assert!(written >= 8, "the quota holds about 1 MiB: {written} puts");

    let alarms = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await?;
    assert!(
        alarms
            .alarms()
            .iter()
            .any(|a| a.alarm() == AlarmType::Nospace),
        "alarm list: {} alarms, none NOSPACE",
        alarms.alarms().len()
    );
    for i in 0..cluster.size() {
        let mut member = cluster.client(i).await?;
        let err = member.put("small", "v", None).await.unwrap_err();
        assert!(is_no_space(&err), "member {i}: {err}");
        let txn = Txn::new().and_then([TxnOp::put("small", "v", None)]);
        let err = member.txn(txn).await.unwrap_err();
        assert!(is_no_space(&err), "member {i}: {err}");
        let err = member.lease_grant(60, None).await.unwrap_err();
        assert!(is_no_space(&err), "member {i}: {err}");
        // Reads still work.
        member.get("big/0", None).await?;
    }
    let status = client.status().await?;
    assert!(
        status
            .errors()
            .iter()
            .any(|e| e.ends_with("alarm:NOSPACE ")),
        "status errors: {:?}",
        status.errors()
    );

    // Free the space: delete, compact away the history, defragment.
    let deleted = client
        .delete(
            "big/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    assert_eq!(deleted.deleted(), written);
    let revision = deleted.header().context("header")?.revision();
    client.compact(revision, None).await?;
    for i in 0..cluster.size() {
        cluster.client(i).await?.defragment().await?;
    }

    // The alarm clears itself (beyond etcd), and writes work again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alarms = client
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await?;
        if alarms.alarms().is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            bail!("{} alarms still active", alarms.alarms().len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.put("small", "v", None).await?;
    client.lease_grant(60, None).await?;

    // An alarm of a member that is not in the cluster (one removed, say):
    // nobody could clear it from below the quota, so the leader does.
    let mut stranger = etcd_client::AlarmOptions::new();
    stranger.with_member(42);
    client
        .alarm(AlarmAction::Activate, AlarmType::Nospace, Some(stranger))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await?
        .alarms()
        .is_empty()
    {
        if Instant::now() >= deadline {
            bail!("the alarm of a member that is not in the cluster stays");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.put("small", "w", None).await?;
    Ok(())
}

/// Defragment every member repeatedly while clients read and write: no
/// request fails, none waits long, and the files shrink.
#[tokio::test]
async fn defragment_while_clients_read_and_write() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut client = cluster.client(0).await?;
    // Garbage to return: 8 MiB of values, deleted and compacted away.
    let value = vec![b'g'; 4096];
    for batch in 0..32 {
        let puts: Vec<TxnOp> = (0..64)
            .map(|i| TxnOp::put(format!("garbage/{batch}/{i}"), value.clone(), None))
            .collect();
        client.txn(Txn::new().and_then(puts)).await?;
    }
    let deleted = client
        .delete(
            "garbage/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await?;
    let revision = deleted.header().context("header")?.revision();
    client.compact(revision, None).await?;
    wait_applied(&cluster, revision).await?;
    let before = client.status().await?;

    let stop = Arc::new(AtomicBool::new(false));
    let worst_ms = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..cluster.size() {
        let mut c = cluster.client(w).await?;
        let stop = stop.clone();
        let worst_ms = worst_ms.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                c.put(format!("live/{w}/{}", n % 50), format!("{n}"), None)
                    .await?;
                c.get(format!("live/{w}/{}", n % 50), None).await?;
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                worst_ms.fetch_max(ms, Ordering::Relaxed);
                n += 1;
            }
            Ok::<u64, etcd_client::Error>(n)
        }));
    }
    for round in 0..3 {
        for i in 0..cluster.size() {
            let started = Instant::now();
            cluster.client(i).await?.defragment().await?;
            tracing::info!(round, member = i, took = ?started.elapsed(), "defragmented");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    for worker in workers {
        requests += worker
            .await?
            .context("a request failed during defragment")?;
    }
    let after = client.status().await?;
    tracing::info!(
        requests,
        worst_ms = worst_ms.load(Ordering::Relaxed),
        before = before.db_size(),
        after = after.db_size(),
        "defragment under load"
    );
    assert!(requests > 0);
    assert!(
        after.db_size() < before.db_size(),
        "defragment shrinks the files: {} -> {}",
        before.db_size(),
        after.db_size()
    );
    assert!(
        worst_ms.load(Ordering::Relaxed) < 2000,
        "a request waited {} ms",
        worst_ms.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Saves a snapshot through the gRPC stream of a live cluster under
/// writes, restores it into a fresh 3-member cluster, and finds every key
/// as it was at the saved revision.
#[tokio::test]
async fn snapshot_saved_under_writes_restores_into_a_new_cluster() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let mut client = cluster.client(1).await?;
    for i in 0..100 {
        client
            .put(format!("base/{i:03}"), format!("v{i}"), None)
            .await?;
    }
    client.delete("base/050", None).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writer_client = cluster.client(2).await?;
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                writer_client
                    .put(format!("during/{}", n % 40), format!("{n}"), None)
                    .await?;
                n += 1;
            }
            Ok::<_, etcd_client::Error>(n)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("snapshot.db");
    let mut stream = client.snapshot().await?;
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        bytes.extend_from_slice(message.blob());
    }
    std::fs::write(&file, &bytes)?;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await??;
    let status = snapshot_status(&file).await?;
    tracing::info!(?status, writes, "snapshot saved");
    let saved = all_keys(&mut client, status.revision).await?;
    assert!(saved.len() >= 99, "{} keys", saved.len());
    assert_eq!(status.total_keys as usize, saved.len());

    let mut restored = Cluster::prepare(NODE, ClusterOptions::default())?;
    for i in 0..restored.size() {
        let summary = restore_snapshot(
            &file,
            &RestoreOptions {
                data_dir: restored.data_dir(i).to_path_buf(),
                name: restored.name(i).to_string(),
                initial_cluster: restored.initial_cluster().to_string(),
                initial_cluster_token: "witan-cluster".into(),
                initial_advertise_peer_urls: vec![restored.peer_url(i)],
            },
        )
        .await?;
        assert_eq!(summary.revision, status.revision);
    }
    restored.launch().await?;
    for i in 0..restored.size() {
        let mut c = restored.client(i).await?;
        let now = c.get("base/000", None).await?;
        assert_eq!(
            now.header().context("header")?.revision(),
            status.revision,
            "member {i} starts at the saved revision"
        );
        assert_eq!(
            all_keys(&mut c, status.revision).await?,
            saved,
            "member {i}"
        );
    }
    let mut c = restored.client(0).await?;
    let put = c.put("after-restore", "x", None).await?;
    assert_eq!(
        put.header().context("header")?.revision(),
        status.revision + 1
    );
    Ok(())
}

/// `--auto-compaction-mode revision` keeps the last N revisions.
#[tokio::test]
async fn auto_compaction_by_revision_keeps_the_last_revisions() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(
        NODE,
        options(&[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "10",
            "--auto-compaction-interval",
            "100ms",
        ]),
    )
    .await?;
    let mut client = cluster.client(0).await?;
    let mut revision = 1;
    for i in 0..40 {
        revision = client
            .put(format!("k{}", i % 5), format!("{i}"), None)
            .await?
            .header()
            .context("header")?
            .revision();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let compacted = client.hash_kv(0).await?.compact_version();
        if compacted == revision - 10 {
            break;
        }
        assert!(compacted <= revision - 10, "compacted too far: {compacted}");
        if Instant::now() >= deadline {
            bail!("not compacted to {} (at {compacted})", revision - 10);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = client
        .get("k0", Some(GetOptions::new().with_revision(revision - 11)))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err).map(|s| s.0), Some(tonic::Code::OutOfRange));
    client
        .get("k0", Some(GetOptions::new().with_revision(revision - 10)))
        .await?;
    Ok(())
}

/// MoveLeader hands leadership to the chosen member; asked on a follower
/// or with a bad target it fails with etcd's errors.
#[tokio::test]
async fn move_leader_to_a_chosen_member() -> Result<()> {
    init_tracing();
    let cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let target = (leader + 1) % cluster.size();
    let other = (leader + 2) % cluster.size();

    let mut follower = cluster.client(other).await?;
    let err = follower.move_leader(cluster.id(target)).await.unwrap_err();
    assert_eq!(
        status_of(&err),
        Some((
            tonic::Code::FailedPrecondition,
            "etcdserver: not leader".into()
        ))
    );
    let mut client = cluster.client(leader).await?;
    let err = client.move_leader(12345).await.unwrap_err();
    assert_eq!(
        status_of(&err),
        Some((
            tonic::Code::FailedPrecondition,
            "etcdserver: bad leader transferee".into()
        ))
    );

    client.put("before", "1", None).await?;
    // A lease makes the leader tick the lease clock (a write every 250 ms),
    // and a client keeps writing: the transfer holds writes, which then
    // reach the new leader; none fails.
    client.lease_grant(60, None).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer_client = cluster.client(other).await?;
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                writer_client.put("during", format!("{n}"), None).await?;
                n += 1;
            }
            Ok::<_, etcd_client::Error>(n)
        })
    };
    // On a machine so loaded that an election happens during the transfer
    // (or the new leader's disk stalls past the deadline), the call fails
    // with etcd's "leader transfer took too long", as etcd's would; a
    // client asks again, of the leader of the moment.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let leader_now = cluster.leader(Duration::from_secs(10)).await?;
        if leader_now == target {
            break;
        }
        let mut c = cluster.client(leader_now).await?;
        match c.move_leader(cluster.id(target)).await {
            Ok(_) => break,
            Err(e)
                if attempt < 3
                    && status_of(&e).is_some_and(|s| s.0 == tonic::Code::Unavailable) =>
            {
                tracing::warn!(attempt, %e, "move-leader timed out; asking again");
            }
            // A panic (not an error): the cluster then prints its logs.
            Err(e) => panic!("move-leader: {e}"),
        }
    }
    assert_eq!(cluster.leader(Duration::from_secs(10)).await?, target);
    stop.store(true, Ordering::Relaxed);
    let writes = writer
        .await?
        .context("a write failed across the transfer")?;
    assert!(writes > 0);
    // The cluster serves writes under its new leader, through any member.
    let mut c = cluster.client(leader).await?;
    c.put("after", "2", None).await?;
    let got = c.get("before", None).await?;
    assert_eq!(got.kvs().len(), 1);
    Ok(())
}
