//! Resumable watches against real clusters: a member stopped under a
//! watch loses no event and repeats none; compaction is reported.

mod common;

use std::time::Duration;

use common::{client_on, within};
use futures::StreamExt;
use tokio::sync::mpsc;
use witan_client::{Error, WatchEvent, WatchStream};
use witan_client_testkit::Cluster;

/// Reads events until `count` arrived; panics after `limit`.
async fn collect(events: &mut WatchStream, count: usize, limit: Duration) -> Vec<WatchEvent> {
    let mut seen = Vec::with_capacity(count);
    within(limit, "every event", async {
        while seen.len() < count {
            let event = events.next().await.expect("the stream goes on").unwrap();
            seen.push(event);
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_its_member_stopping_without_loss_or_repeats() {
    let mut cluster = Cluster::start(3).await;
    let watcher = client_on(&cluster, &[0, 1, 2]).await;
    let writer = client_on(&cluster, &[2, 1, 0]).await;
    let mut events = watcher.watch("/w/").prefix().prev_kv().await.unwrap();

    // The writer reports after each phase; the test stops members between
    // phases while the watch is live.
    let (phase_done, mut phases) = mpsc::channel(1);
    let (go_on, mut go) = mpsc::channel::<()>(1);
    let writes = tokio::spawn(async move {
        let mut revisions = Vec::new();
        for phase in 0..3 {
            for i in 0..40 {
                let key = format!("/w/{}", i % 7);
                let put = writer.put(key, format!("{phase}-{i}")).await.unwrap();
                revisions.push(put.header.revision);
            }
            phase_done.send(phase).await.unwrap();
            if go.recv().await.is_none() {
                break;
            }
        }
        revisions
    });

    assert_eq!(phases.recv().await, Some(0));
    tracing::info!("stopping the watch's member");
    cluster.stop_member(0).await;
    go_on.send(()).await.unwrap();

    assert_eq!(phases.recv().await, Some(1));
    tracing::info!("restarting it; stopping the member the watch moved to");
    cluster.restart_member(0).await;
    cluster.stop_member(1).await;
    go_on.send(()).await.unwrap();

    assert_eq!(phases.recv().await, Some(2));
    drop(go_on);
    let revisions = writes.await.unwrap();

    let seen = collect(&mut events, revisions.len(), Duration::from_secs(20)).await;
    let seen_revisions: Vec<i64> = seen.iter().map(WatchEvent::revision).collect();
    assert_eq!(seen_revisions, revisions, "every write once, in order");
    assert!(seen.iter().all(WatchEvent::is_put));
    // prev_kv chains: each update of a key saw the value written before.
    let mut last = std::collections::HashMap::new();
    for event in &seen {
        let key = event.kv().key.clone();
        let before = event.prev_kv().map(|kv| kv.value.clone());
        assert_eq!(before, last.get(&key).cloned(), "prev_kv of {key:?}");
        last.insert(key, event.kv().value.clone());
    }

    // Nothing more is pending: the next event is the next write.
    let marker = watcher
        .put("/w/marker", "end")
        .await
        .unwrap()
        .header
        .revision;
    let next = collect(&mut events, 1, Duration::from_secs(10)).await;
    assert_eq!(next[0].revision(), marker);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_past_revision_replays_then_follows() {
    let cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;
    let first = client.put("/p/a", "1").await.unwrap().header.revision;
    client.put("/p/b", "2").await.unwrap();
    client.delete("/p/a").await.unwrap();

    let mut events = client
        .watch("/p/")
        .prefix()
        .start_revision(first)
        .await
        .unwrap();
    let replayed = collect(&mut events, 3, Duration::from_secs(10)).await;
    assert_eq!(
        replayed
            .iter()
            .map(WatchEvent::revision)
            .collect::<Vec<_>>(),
        [first, first + 1, first + 2]
    );
    assert!(matches!(replayed[2], WatchEvent::Delete { .. }));

    let live = client.put("/p/c", "3").await.unwrap().header.revision;
    let next = collect(&mut events, 1, Duration::from_secs(10)).await;
    assert_eq!(next[0].revision(), live);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_start_revision_is_an_error_not_a_gap() {
    let cluster = Cluster::start(1).await;
    let client = client_on(&cluster, &[0]).await;
    let old = client.put("k", "1").await.unwrap().header.revision;
    client.put("k", "2").await.unwrap();
    let compacted_at = client.put("k", "3").await.unwrap().header.revision;
    client.compact(compacted_at).await.unwrap();

    let outcome = match client.watch("k").start_revision(old).await {
        Err(err) => err,
        Ok(mut events) => {
            within(Duration::from_secs(10), "the compaction error", async {
                events.next().await.expect("an item").unwrap_err()
            })
            .await
        }
    };
    match outcome {
        Error::Compacted { compact_revision } => assert_eq!(compact_revision, Some(compacted_at)),
        other => panic!("expected Compacted, got {other:?}"),
    }
    cluster.stop().await;
}
