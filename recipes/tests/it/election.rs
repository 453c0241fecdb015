//! Election: campaign, proclaim, resign, leader, and observe in order
//! across leader changes and a compacted watch.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures::StreamExt;
use witan_proto::mvccpb::KeyValue;
use witan_recipes::election::{campaign, leader, observe, proclaim, resign};
use witan_recipes::{KvCore, RecipeError};

use crate::common::{within, CompactingCore, Member};

/// The observed (key, value) pairs.
fn seen(kvs: &[KeyValue]) -> Vec<(Vec<u8>, Vec<u8>)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_proclaim_resign_and_observe_in_order() {
    let member = Member::start().await;
    let core = &member.core;
    assert_eq!(leader(core, b"db").await, Err(RecipeError::NoLeader));

    let a = member.lease(60).await;
    let (a_lead, _) = campaign(core, b"db", a, b"a1".to_vec()).await.unwrap();
    assert_eq!(a_lead.key, format!("db/{a:x}").into_bytes());
    assert_eq!(
        a_lead.rev,
        member.get(&a_lead.key).await.unwrap().create_revision
    );
    // The observer starts from what it reads first (the stream is lazy),
    // then follows every change from there.
    let mut observer = Box::pin(observe(core.clone(), b"db".to_vec()));
    let (first, first_revision) = within(observer.next()).await.unwrap().unwrap();
    let mut observed = vec![first];
    let mut revisions = vec![first_revision];

    let b = member.lease(60).await;
    let b_core = core.clone();
    let b_campaign = tokio::spawn(async move { campaign(&b_core, b"db", b, b"b1".to_vec()).await });
    member.until_keys(b"db/", 2).await;
    assert!(!b_campaign.is_finished());

    proclaim(core, &a_lead, b"a2".to_vec()).await.unwrap();
    let (now, _) = leader(core, b"db").await.unwrap();
    assert_eq!(now.value, b"a2");
    resign(core, &a_lead).await.unwrap();
    let (b_lead, _) = within(b_campaign).await.unwrap().unwrap();
    assert!(b_lead.rev > a_lead.rev);

    // The old leadership can neither proclaim nor resign the new one.
    assert_eq!(
        proclaim(core, &a_lead, b"stale".to_vec()).await,
        Err(RecipeError::NotLeader)
    );
    resign(core, &a_lead).await.unwrap();
    proclaim(core, &b_lead, b"b2".to_vec()).await.unwrap();
    let (now, _) = leader(core, b"db").await.unwrap();
    assert_eq!(
        (now.key.clone(), now.value.clone()),
        (b_lead.key.clone(), b"b2".to_vec())
    );

    while observed.len() < 4 {
        let (kv, revision) = within(observer.next()).await.unwrap().unwrap();
        observed.push(kv);
        revisions.push(revision);
    }
    assert_eq!(
        seen(&observed),
        vec![
            (a_lead.key.clone(), b"a1".to_vec()),
            (a_lead.key.clone(), b"a2".to_vec()),
            (b_lead.key.clone(), b"b1".to_vec()),
            (b_lead.key.clone(), b"b2".to_vec()),
        ]
    );
    assert!(revisions.windows(2).all(|w| w[0] <= w[1]), "{revisions:?}");

    resign(core, &b_lead).await.unwrap();
    assert_eq!(leader(core, b"db").await, Err(RecipeError::NoLeader));
    // With no leader, the observer waits for the next one (a consumer
    // that is already waiting, as a server's Observe call is).
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let consumer = tokio::spawn(async move {
        while let Some(item) = observer.next().await {
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let c = member.lease(60).await;
    let (c_lead, _) = campaign(core, b"db", c, b"c1".to_vec()).await.unwrap();
    let (kv, _) = within(rx.recv()).await.unwrap().unwrap();
    assert_eq!((kv.key, kv.value), (c_lead.key, b"c1".to_vec()));
    consumer.abort();
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigning_again_with_the_same_lease_resumes_with_the_new_value() {
    let member = Member::start().await;
    let core = &member.core;
    let lease = member.lease(60).await;
    let (first, _) = campaign(core, b"e", lease, b"v1".to_vec()).await.unwrap();
    let (again, _) = campaign(core, b"e", lease, b"v2".to_vec()).await.unwrap();
    assert_eq!(again, first);
    let (kv, _) = leader(core, b"e").await.unwrap();
    assert_eq!(kv.value, b"v2");
    assert_eq!(kv.lease, lease);
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_ends_hands_over_and_observers_follow() {
    let member = Member::start().await;
    let core = &member.core;
    let a = member.lease(60).await;
    let (a_lead, _) = campaign(core, b"ha", a, b"a".to_vec()).await.unwrap();
    let mut observer = Box::pin(observe(core.clone(), b"ha".to_vec()));
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!(kv.key, a_lead.key);

    let b = member.lease(60).await;
    let b_core = core.clone();
    let b_campaign = tokio::spawn(async move { campaign(&b_core, b"ha", b, b"b".to_vec()).await });
    member.until_keys(b"ha/", 2).await;
    core.lease_revoke(a).await.unwrap();
    let (b_lead, _) = within(b_campaign).await.unwrap().unwrap();
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!((kv.key, kv.value), (b_lead.key, b"b".to_vec()));
    member.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reads_again_after_its_watch_is_compacted() {
    let member = Member::start().await;
    let armed = Arc::new(AtomicBool::new(false));
    let core = CompactingCore {
        inner: member.core.clone(),
        armed: armed.clone(),
    };
    let lease = member.lease(60).await;
    let (lead, _) = campaign(&core, b"cmp", lease, b"v0".to_vec())
        .await
        .unwrap();
    let mut observer = Box::pin(observe(core.clone(), b"cmp".to_vec()));
    // The observer's first watch (on the leader's key) will deliver one
    // batch, then fail as compacted.
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!(kv.value, b"v0");

    for value in ["v1", "v2", "v3"] {
        proclaim(&core, &lead, value.as_bytes().to_vec())
            .await
            .unwrap();
    }
    // v1 comes through the watch; then the watch fails and the observer
    // reads the present (v3), skipping what the compaction took (v2).
    let mut values = Vec::new();
    while values.last().map(Vec::as_slice) != Some(b"v3".as_slice()) {
        let (kv, _) = within(observer.next()).await.unwrap().unwrap();
        values.push(kv.value);
    }
    assert_eq!(values.first().unwrap(), b"v1");
    assert!(
        !armed.load(std::sync::atomic::Ordering::SeqCst),
        "the watch was never armed"
    );
    proclaim(&core, &lead, b"v4".to_vec()).await.unwrap();
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!(kv.value, b"v4");
    member.stop().await;
}

/// `etcdctl elect` campaigns client-side with Txn, Range and Watch on the
/// same keys: it waits behind our leader, leads when ours resigns, and our
/// observer sees its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_elect_campaigns_in_the_same_election() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    if !std::path::Path::new("/usr/bin/etcdctl").exists() {
        eprintln!("etcdctl not installed: skipping");
        return;
    }
    let member = Member::start().await;
    let core = &member.core;
    let endpoint = member.node.client_addrs()[0].to_string();
    let (ours, _) = campaign(core, b"el", member.lease(60).await, b"ours".to_vec())
        .await
        .unwrap();
    let mut observer = Box::pin(observe(core.clone(), b"el".to_vec()));
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!(kv.value, b"ours");

    let mut etcdctl = tokio::process::Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "elect", "el", "theirs"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    member.until_keys(b"el/", 2).await;
    let mut lines = BufReader::new(etcdctl.stdout.take().unwrap()).lines();
    resign(core, &ours).await.unwrap();

    // etcdctl prints its key, then its value, once it leads.
    let key = within(lines.next_line()).await.unwrap().unwrap();
    let value = within(lines.next_line()).await.unwrap().unwrap();
    assert_eq!(value, "theirs");
    let (kv, _) = within(observer.next()).await.unwrap().unwrap();
    assert_eq!((kv.key, kv.value), (key.into_bytes(), b"theirs".to_vec()));
    let (now, _) = leader(core, b"el").await.unwrap();
    core.lease_revoke(now.lease).await.unwrap();
    etcdctl.kill().await.unwrap();
    member.stop().await;
}
