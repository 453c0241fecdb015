//! The Watch service end to end: real member processes and the
//! `etcd-client` crate (raw gRPC where the crate hides a field): every
//! create option, many watches on one stream, catch-up from history while
//! writes continue, a consumer that stops reading, a watch on a follower
//! across a leader kill, shutdown with open watches.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use etcd_client::{
    Client, DeleteOptions, EventType, GetOptions, WatchFilterType, WatchOptions, WatchResponse,
    WatchStream,
};
use tokio::sync::Mutex;
use tokio::time::{timeout, Instant};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");

/// How long any single expected response may take.
const DEADLINE: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

async fn single_member(extra_args: &[&str]) -> Result<(Cluster, Client)> {
    init_tracing();
    let cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            ..ClusterOptions::default()
        },
    )
    .await?;
    let client = cluster.client(0).await?;
    Ok((cluster, client))
}

/// One event, flattened for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ev {
    delete: bool,
    key: String,
    value: String,
    revision: i64,
    prev: Option<String>,
}

fn flatten(response: &WatchResponse) -> Vec<Ev> {
    response
        .events()
        .iter()
        .map(|e| {
            let kv = e.kv().expect("an event has a kv");
            Ev {
                delete: e.event_type() == EventType::Delete,
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: String::from_utf8_lossy(kv.value()).into_owned(),
                revision: kv.mod_revision(),
                prev: e
                    .prev_kv()
                    .map(|p| String::from_utf8_lossy(p.value()).into_owned()),
            }
        })
        .collect()
}

fn put_ev(key: &str, value: &str, revision: i64, prev: Option<&str>) -> Ev {
    Ev {
        delete: false,
        key: key.into(),
        value: value.into(),
        revision,
        prev: prev.map(Into::into),
    }
}

fn del_ev(key: &str, revision: i64, prev: Option<&str>) -> Ev {
    Ev {
        delete: true,
        key: key.into(),
        value: String::new(),
        revision,
        prev: prev.map(Into::into),
    }
}

fn header_revision(response: &WatchResponse) -> i64 {
    response.header().map_or(-1, |h| h.revision())
}

/// A progress answer to a progress request (not a notification, which
/// names its watch).
fn is_progress_answer(response: &WatchResponse) -> bool {
    response.watch_id() == -1
        && !response.created()
        && !response.canceled()
        && response.events().is_empty()
}

async fn next(stream: &mut WatchStream) -> Result<WatchResponse> {
    timeout(DEADLINE, stream.message())
        .await
        .context("no watch response within the deadline")??
        .context("the watch stream ended")
}

/// Reads the created answers of `count` creates, in order; returns their
/// watch ids.
async fn created(stream: &mut WatchStream, count: usize) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let r = next(stream).await?;
        ensure!(r.created() && !r.canceled(), "expected created, got {r:?}");
        ids.push(r.watch_id());
    }
    Ok(ids)
}

/// Collects every watch's events until a progress answer at `revision` or
/// later: such an answer comes only when every watch of the stream has
/// received every event up to its revision.
async fn events_through(
    stream: &mut WatchStream,
    revision: i64,
) -> Result<(BTreeMap<i64, Vec<Ev>>, Vec<WatchResponse>)> {
    let mut events: BTreeMap<i64, Vec<Ev>> = BTreeMap::new();
    let mut others = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    stream.request_progress().await?;
    loop {
        ensure!(Instant::now() < deadline, "no progress to {revision}");
        let r = next(stream).await?;
        if is_progress_answer(&r) {
            if header_revision(&r) >= revision {
                return Ok((events, others));
            }
            stream.request_progress().await?;
        } else if !r.events().is_empty() {
            events.entry(r.watch_id()).or_default().extend(flatten(&r));
        } else {
            others.push(r);
        }
    }
}

/// Reads watch `id`'s events until one at `revision` or later.
async fn events_until(stream: &mut WatchStream, id: i64, revision: i64) -> Result<Vec<Ev>> {
    let mut events: Vec<Ev> = Vec::new();
    while events.last().is_none_or(|e| e.revision < revision) {
        let r = next(stream).await?;
        ensure!(!r.canceled(), "watch canceled: {r:?}");
        if r.watch_id() == id {
            events.extend(flatten(&r));
        }
    }
    Ok(events)
}

fn assert_contiguous(events: &[Ev], from: i64, to: i64) {
    let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
    let expected: Vec<i64> = (from..=to).collect();
    if revisions != expected {
        let first_bad = revisions
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(revisions.len().min(expected.len()));
        panic!(
            "events are not exactly revisions {from}..={to}: {} events, first difference at \
             position {first_bad}: {:?} vs {:?}",
            revisions.len(),
            revisions.get(first_bad),
            expected.get(first_bad)
        );
    }
}

async fn current_revision(client: &mut Client) -> Result<i64> {
    let got = client.get("witan-test/revision", None).await?;
    Ok(got.header().context("header")?.revision())
}

#[tokio::test]
async fn one_stream_carries_many_watches_of_every_range_kind() -> Result<()> {
    let (_cluster, mut c) = single_member(&[]).await?;
    let mut stream = c
        .watch("a/", Some(WatchOptions::new().with_prefix()))
        .await?;
    stream
        .watch("b", Some(WatchOptions::new().with_from_key()))
        .await?;
    stream.watch("a/1", None).await?;
    stream
        .watch("a/2", Some(WatchOptions::new().with_range("a/4")))
        .await?;
    for i in 0..100 {
        let options = WatchOptions::new().with_watch_id(1000 + i);
        stream.watch(format!("m/{i:03}"), Some(options)).await?;
    }
    let ids = created(&mut stream, 104).await?;
    let mut expected_ids = vec![0, 1, 2, 3];
    expected_ids.extend(1000..1100);
    assert_eq!(ids, expected_ids);

    for key in ["a/1", "a/2", "a/3", "a/4", "b", "c", "0"] {
        c.put(key, "v", None).await?;
    }
    c.delete("a/2", None).await?;
    for i in 0..100 {
        c.put(format!("m/{i:03}"), format!("{i}"), None).await?;
    }
    let last = current_revision(&mut c).await?;
    assert_eq!(last, 109, "7 puts, a delete, 100 puts after revision 1");

    let (events, others) = events_through(&mut stream, last).await?;
    assert!(others.is_empty(), "unexpected responses: {others:?}");
    let keys = |id: i64| -> Vec<(String, bool)> {
        events
            .get(&id)
            .map(|evs| evs.iter().map(|e| (e.key.clone(), e.delete)).collect())
            .unwrap_or_default()
    };
    let owned = |list: &[(&str, bool)]| -> Vec<(String, bool)> {
        list.iter().map(|(k, d)| (k.to_string(), *d)).collect()
    };
    assert_eq!(
        keys(0),
        owned(&[
            ("a/1", false),
            ("a/2", false),
            ("a/3", false),
            ("a/4", false),
            ("a/2", true)
        ])
    );
    let from_b = keys(1);
    assert_eq!(from_b[..2], owned(&[("b", false), ("c", false)]));
    assert_eq!(from_b.len(), 102, "b, c and the m/ keys");
    assert_eq!(keys(2), owned(&[("a/1", false)]));
    assert_eq!(
        keys(3),
        owned(&[("a/2", false), ("a/3", false), ("a/2", true)])
    );
    for i in 0..100 {
        let got = &events[&(1000 + i)];
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].key.as_str(), got[0].value.as_str()),
            (format!("m/{i:03}").as_str(), format!("{i}").as_str())
        );
    }
    Ok(())
}

#[tokio::test]
async fn past_start_revision_prev_kv_and_filters() -> Result<()> {
    let (_cluster, mut c) = single_member(&[]).await?;
    c.put("k", "v1", None).await?; // 2
    c.put("k", "v2", None).await?; // 3
    c.delete("k", None).await?; // 4
    c.put("k", "v3", None).await?; // 5
    c.put("other", "x", None).await?; // 6

    let from_2 = WatchOptions::new().with_start_revision(2);
    let mut stream = c.watch("k", Some(from_2.clone().with_prev_key())).await?;
    stream
        .watch(
            "k",
            Some(from_2.clone().with_filters([WatchFilterType::NoPut])),
        )
        .await?;
    stream
        .watch("k", Some(from_2.with_filters([WatchFilterType::NoDelete])))
        .await?;
    // A start in the future waits for its revision.
    stream
        .watch("k", Some(WatchOptions::new().with_start_revision(8)))
        .await?;
    let first = next(&mut stream).await?;
    assert!(first.created());
    assert_eq!(
        header_revision(&first),
        6,
        "created at the current revision"
    );

    c.put("k", "v4", None).await?; // 7
    c.put("k", "v5", None).await?; // 8
    let (events, others) = events_through(&mut stream, 8).await?;
    // The first watch's history may come before the others are created.
    let ids: Vec<(i64, bool)> = others.iter().map(|r| (r.watch_id(), r.created())).collect();
    assert_eq!(ids, [(1, true), (2, true), (3, true)]);
    assert_eq!(
        events[&0],
        vec![
            put_ev("k", "v1", 2, None),
            put_ev("k", "v2", 3, Some("v1")),
            del_ev("k", 4, Some("v2")),
            put_ev("k", "v3", 5, None),
            put_ev("k", "v4", 7, Some("v3")),
            put_ev("k", "v5", 8, Some("v4")),
        ]
    );
    assert_eq!(events[&1], vec![del_ev("k", 4, None)]);
    let puts: Vec<i64> = events[&2].iter().map(|e| e.revision).collect();
    assert_eq!(puts, [2, 3, 5, 7, 8]);
    assert_eq!(events[&3], vec![put_ev("k", "v5", 8, None)]);
    Ok(())
}

#[tokio::test]
async fn client_chosen_ids_refusals_and_cancel() -> Result<()> {
    let (_cluster, mut c) = single_member(&[]).await?;
    let mut stream = c
        .watch("x", Some(WatchOptions::new().with_watch_id(7)))
        .await?;
    stream
        .watch("x", Some(WatchOptions::new().with_watch_id(7)))
        .await?;
    stream.watch("x", None).await?;
    stream
        .watch("b", Some(WatchOptions::new().with_range("a")))
        .await?;
    assert_eq!(created(&mut stream, 1).await?, [7]);
    let duplicate = next(&mut stream).await?;
    assert!(duplicate.created() && duplicate.canceled());
    assert_eq!(duplicate.watch_id(), -1);
    assert_eq!(
        duplicate.cancel_reason(),
        "mvcc: duplicate watch ID provided on the WatchStream"
    );
    assert_eq!(created(&mut stream, 1).await?, [0]);
    let empty = next(&mut stream).await?;
    assert!(empty.created() && empty.canceled());
    assert_eq!(empty.cancel_reason(), "mvcc: watcher range is empty");

    c.put("x", "1", None).await?;
    let (events, _) = events_through(&mut stream, 2).await?;
    assert_eq!(events.keys().copied().collect::<Vec<_>>(), [0, 7]);

    // Cancelling an unknown id answers nothing; a known one is confirmed
    // and its events stop.
    stream.cancel(99).await?;
    stream.cancel(7).await?;
    let canceled = next(&mut stream).await?;
    assert!(canceled.canceled() && !canceled.created());
    assert_eq!(canceled.watch_id(), 7);
    c.put("x", "2", None).await?;
    let (events, others) = events_through(&mut stream, 3).await?;
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(events.keys().copied().collect::<Vec<_>>(), [0]);
    Ok(())
}

#[tokio::test]
async fn progress_requests_and_notifications() -> Result<()> {
    let (_cluster, mut c) = single_member(&["--watch-progress-notify-interval", "300ms"]).await?;
    c.put("elsewhere", "1", None).await?; // 2
    let mut stream = c
        .watch("p", Some(WatchOptions::new().with_progress_notify()))
        .await?;
    stream.watch("q", None).await?;
    assert_eq!(created(&mut stream, 2).await?, [0, 1]);

    // The idle watch that asked is notified, with the current revision;
    // the other never is.
    let notified = next(&mut stream).await?;
    assert_eq!(
        (
            notified.watch_id(),
            notified.created(),
            notified.canceled(),
            notified.events().len()
        ),
        (0, false, false, 0)
    );
    assert_eq!(header_revision(&notified), 2);
    c.put("elsewhere", "2", None).await?; // 3
    let deadline = Instant::now() + DEADLINE;
    loop {
        ensure!(Instant::now() < deadline, "no notification at revision 3");
        let r = next(&mut stream).await?;
        assert_eq!((r.watch_id(), r.events().len()), (0, 0), "only watch 0");
        if header_revision(&r) == 3 {
            break;
        }
    }

    // A progress request is answered for the whole stream (watch id -1).
    stream.request_progress().await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        ensure!(Instant::now() < deadline, "no progress answer");
        let r = next(&mut stream).await?;
        if is_progress_answer(&r) {
            assert_eq!(header_revision(&r), 3);
            break;
        }
        assert_eq!(r.watch_id(), 0, "only notifications in between");
    }
    Ok(())
}

#[tokio::test]
async fn a_compacted_start_revision_is_created_then_canceled() -> Result<()> {
    let (_cluster, mut c) = single_member(&[]).await?;
    for i in 0..5 {
        c.put("k", format!("v{i}"), None).await?; // 2..=6
    }
    c.compact(4, None).await?;
    let mut stream = c
        .watch("k", Some(WatchOptions::new().with_start_revision(3)))
        .await?;
    let first = next(&mut stream).await?;
    assert!(first.created() && !first.canceled());
    assert_eq!(header_revision(&first), 6);
    let compacted = next(&mut stream).await?;
    assert_eq!(
        (
            compacted.watch_id(),
            compacted.canceled(),
            compacted.compact_revision(),
            compacted.cancel_reason()
        ),
        (first.watch_id(), true, 4, "")
    );
    // Watching from the compaction revision itself works.
    stream
        .watch("k", Some(WatchOptions::new().with_start_revision(4)))
        .await?;
    let id = created(&mut stream, 1).await?[0];
    let events = events_until(&mut stream, id, 6).await?;
    let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [4, 5, 6]);
    Ok(())
}

#[tokio::test]
async fn large_responses_are_fragmented_for_watches_that_ask() -> Result<()> {
    use tokio::sync::mpsc;
    use witan_proto::etcdserverpb::watch_client::WatchClient as RawWatchClient;
    use witan_proto::etcdserverpb::watch_request::RequestUnion;
    use witan_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse as Raw};

    const LIMIT: usize = 64 * 1024;
    let (cluster, mut c) = single_member(&["--max-request-bytes", &LIMIT.to_string()]).await?;
    for i in 0..40 {
        c.put(format!("f/{i:02}"), vec![b'x'; 4096], None).await?; // 2..=41
    }
    let create = |start_revision, fragment, prev_kv| WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: b"f/".to_vec(),
            range_end: b"f0".to_vec(),
            start_revision,
            fragment,
            prev_kv,
            ..Default::default()
        })),
    };
    let (requests, mut incoming) = mpsc::channel::<WatchRequest>(8);
    // Sent before the call: the call returns once the server answers.
    requests.send(create(2, true, false)).await?; // 0: history, split
    requests.send(create(0, true, true)).await?; // 1: live, split
    requests.send(create(0, false, true)).await?; // 2: live, whole
    let mut raw = RawWatchClient::connect(cluster.endpoint(0))
        .await?
        .max_decoding_message_size(16 * 1024 * 1024);
    let mut responses = raw
        .watch(futures::stream::poll_fn(move |cx| incoming.poll_recv(cx)))
        .await?
        .into_inner();
    let mut parts: BTreeMap<i64, Vec<Raw>> = BTreeMap::new();
    let count = |parts: &BTreeMap<i64, Vec<Raw>>, id: i64| {
        parts
            .get(&id)
            .map_or(0, |p| p.iter().map(|r| r.events.len()).sum::<usize>())
    };
    let mut read_until = async |parts: &mut BTreeMap<i64, Vec<Raw>>, want: [usize; 3]| {
        while (0..3).any(|id| count(parts, id) < want[id as usize]) {
            let r = timeout(DEADLINE, responses.message())
                .await
                .context("no response")??
                .context("stream ended")?;
            if !r.events.is_empty() {
                parts.entry(r.watch_id).or_default().push(r);
            }
        }
        anyhow::Ok(())
    };
    // The history first (so that the delete is not part of its read).
    read_until(&mut parts, [40, 0, 0]).await?;
    c.delete("f/", Some(DeleteOptions::new().with_prefix()))
        .await?; // 42
    read_until(&mut parts, [80, 40, 40]).await?;

    let size = |part: &Raw| -> usize {
        part.events
            .iter()
            .map(|e| {
                e.kv.as_ref().map_or(0, |kv| kv.value.len())
                    + e.prev_kv.as_ref().map_or(0, |kv| kv.value.len())
            })
            .sum()
    };
    for id in [0, 1] {
        let split = &parts[&id];
        ensure!(split.len() > 2, "watch {id} got {} parts", split.len());
        // Runs of fragments, each ended by a part without the flag: the
        // history read and the delete for watch 0, the delete for 1.
        assert!(!split.last().context("parts")?.fragment);
        let ends = split.iter().filter(|p| !p.fragment).count();
        assert_eq!(ends, if id == 0 { 2 } else { 1 });
        for part in split {
            assert!(size(part) < LIMIT || part.events.len() == 1);
        }
    }
    let joined: Vec<i64> = parts[&0]
        .iter()
        .flat_map(|p| {
            p.events
                .iter()
                .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
        })
        .collect();
    let mut expected: Vec<i64> = (2..=41).collect();
    expected.extend([42; 40]);
    assert_eq!(joined, expected);
    let prevs: usize = parts[&1]
        .iter()
        .flat_map(|p| &p.events)
        .filter(|e| e.prev_kv.as_ref().is_some_and(|kv| kv.value.len() == 4096))
        .count();
    assert_eq!(prevs, 40, "every delete carries its previous value");
    // Without `fragment` the revision travels whole.
    assert_eq!(parts[&2].len(), 1);
    assert!(!parts[&2][0].fragment);
    drop(requests);
    Ok(())
}

#[tokio::test]
async fn a_watch_from_an_old_revision_gets_the_whole_history_once_while_writes_continue(
) -> Result<()> {
    let (cluster, mut c) = single_member(&[]).await?;
    let written: Arc<Mutex<BTreeMap<i64, (String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut c = cluster.client(0).await?;
        let written = written.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 3000 {
                let (key, value) = (format!("h/{:02}", i % 40), format!("v{i}"));
                let put = c.put(key.clone(), value.clone(), None).await?;
                let revision = put.header().context("header")?.revision();
                written.lock().await.insert(revision, (key, value));
                i += 1;
            }
            anyhow::Ok(())
        })
    };
    wait_until(|| async { written.lock().await.len() >= 300 }).await?;
    tracing::info!("starting a watch from revision 2 while the writer writes");
    let mut stream = c
        .watch(
            "h/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(2)
                    .with_prev_key(),
            ),
        )
        .await?;
    let id = created(&mut stream, 1).await?[0];
    let midway = events_until(&mut stream, id, 200).await?;
    wait_until(|| async { written.lock().await.len() >= 1500 }).await?;
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    let last = current_revision(&mut c).await?;
    let mut events = midway;
    let reached = events.last().map_or(0, |e| e.revision);
    events.extend(events_until(&mut stream, id, last).await?);
    tracing::info!(events = events.len(), last, reached, "checking the history");

    assert_contiguous(&events, 2, last);
    let written = written.lock().await;
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for e in &events {
        let (key, value) = &written[&e.revision];
        assert_eq!((&e.key, &e.value), (key, value), "event at {}", e.revision);
        assert_eq!(
            e.prev.as_ref(),
            latest.get(&e.key),
            "prev at {}",
            e.revision
        );
        latest.insert(e.key.clone(), e.value.clone());
    }
    // And the events rebuild what a linearizable read sees now.
    let now = c.get("h/", Some(GetOptions::new().with_prefix())).await?;
    let stored: BTreeMap<String, String> = now
        .kvs()
        .iter()
        .map(|kv| {
            (
                String::from_utf8_lossy(kv.key()).into_owned(),
                String::from_utf8_lossy(kv.value()).into_owned(),
            )
        })
        .collect();
    assert_eq!(stored, latest);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_stalls_nobody_and_loses_nothing() -> Result<()> {
    let (cluster, mut c) = single_member(&[]).await?;
    let options = || Some(WatchOptions::new().with_prefix());
    let mut slow = c.watch("s/", options()).await?;
    let slow_id = created(&mut slow, 1).await?[0];
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 1000;
    let mut fast = cluster.client(0).await?.watch("s/", options()).await?;
    let fast_id = created(&mut fast, 1).await?[0];
    let start = current_revision(&mut c).await? + 1;
    let last = start + (WRITERS * PER_WRITER) as i64 - 1;
    // The fast watcher reads all along.
    let fast = tokio::spawn(async move { events_until(&mut fast, fast_id, last).await });

    // A burst of writes from several writers while `slow` is not read:
    // more data than the client's and the server's buffers hold, and more
    // applies than the change feed keeps.
    let value = "x".repeat(4096);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let mut c = cluster.client(0).await?;
        let value = value.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                c.put(format!("s/{w}/{i:04}"), value.clone(), None).await?;
            }
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    assert_eq!(current_revision(&mut c).await?, last);
    let fast_events = timeout(DEADLINE, fast).await???;
    assert_contiguous(&fast_events, start, last);
    tracing::info!(last, "burst written; the fast watcher has it all");

    tracing::info!("the slow watcher reads again");
    let slow_events = events_until(&mut slow, slow_id, last).await?;
    assert_contiguous(&slow_events, start, last);
    assert_eq!(slow_events, fast_events);
    // It is live again: the next write arrives.
    c.put("s/late", "v", None).await?;
    let late = events_until(&mut slow, slow_id, last + 1).await?;
    assert_eq!(late.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_watch_on_a_follower_sees_the_full_history_across_a_leader_kill() -> Result<()> {
    init_tracing();
    let mut cluster = Cluster::start(NODE, ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = (leader + 1) % cluster.size();
    tracing::info!(leader, follower, "watching on a follower");
    let mut on_follower = cluster.client(follower).await?;
    let mut stream = on_follower
        .watch(
            "w/",
            Some(WatchOptions::new().with_prefix().with_prev_key()),
        )
        .await?;
    let id = created(&mut stream, 1).await?[0];
    let start = current_revision(&mut on_follower).await? + 1;

    // The writer writes through the follower (forwarded to whoever leads).
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let endpoint = cluster.endpoint(follower);
        let acked = acked.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let options = etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(3));
            let mut client = Client::connect([endpoint], Some(options)).await?;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("w/{n:06}");
                if client.put(key.clone(), format!("v{n}"), None).await.is_ok() {
                    acked.lock().await.push(key);
                }
            }
            anyhow::Ok(())
        })
    };
    wait_until(|| async { acked.lock().await.len() >= 100 }).await?;
    tracing::info!(leader, "killing the leader");
    cluster.kill(leader)?;
    let before = acked.lock().await.len();
    wait_until(|| async { acked.lock().await.len() >= before + 100 }).await?;
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    let last = current_revision(&mut on_follower).await?;
    tracing::info!(last, "writer stopped; checking the follower's watch");

    let events = events_until(&mut stream, id, last).await?;
    assert_contiguous(&events, start, last);
    let mut keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    assert!(events.iter().all(|e| !e.delete && e.prev.is_none()));
    let acked = acked.lock().await;
    for key in acked.iter() {
        assert!(keys.contains(&key.as_str()), "acknowledged {key} missing");
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), events.len(), "each key written once");
    let now = on_follower
        .get("w/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await?;
    assert_eq!(
        now.kvs().len(),
        events.len(),
        "the store holds what was seen"
    );
    Ok(())
}

#[tokio::test]
async fn a_member_with_open_watches_shuts_down_cleanly() -> Result<()> {
    let (mut cluster, mut c) = single_member(&[]).await?;
    let mut idle = c.watch("k", None).await?;
    created(&mut idle, 1).await?;
    let mut stuck = c.watch("k", None).await?;
    created(&mut stuck, 1).await?;
    // More than the client's stream window and the server's buffer hold:
    // `stuck`, never read again, keeps unsent data on the server.
    for i in 0..150 {
        c.put("k", "x".repeat(64 * 1024 + i), None).await?;
    }
    assert!(
        cluster.terminate(0, Duration::from_secs(10)).await?,
        "clean exit with open watches"
    );
    let ended = timeout(DEADLINE, async {
        loop {
            match idle.message().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    ensure!(ended.is_ok(), "the watch stream ends with the member");
    drop(stuck);
    Ok(())
}

async fn wait_until<F, Fut>(condition: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        if Instant::now() >= deadline {
            bail!("condition not met within 60s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
