//! Watch streams over a real state machine (sqlite in a temp dir): entries
//! are applied directly, responses read from the stream's channel.

use std::convert::Infallible;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::testing::log_id;
use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use witan_proto::etcdserverpb::{
    request_op, PutRequest, RequestOp, TxnRequest, WatchCreateRequest,
};
use witan_proto::mvccpb::event::EventType;
use witan_proto::mvccpb::Event;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::{Command, CommandBatch};

use super::*;
use crate::mvcc::testing::{compact, delete, put};
use crate::raft::Entry;
use crate::storage::StateMachineStore;

const DEADLINE: Duration = Duration::from_secs(10);

fn txn_puts(keys: &[&str]) -> Command {
    let success = keys
        .iter()
        .map(|k| RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: (*k).into(),
                value: b"t".to_vec(),
                ..Default::default()
            })),
        })
        .collect();
    Command {
        op: Some(Op::Txn(TxnRequest {
            success,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn create(key: &str, range_end: &str, start_revision: i64) -> WatchCreateRequest {
    WatchCreateRequest {
        key: key.into(),
        range_end: range_end.into(),
        start_revision,
        ..Default::default()
    }
}

/// A state machine in a temp dir and a hub over it.
struct Harness {
    sm: StateMachineStore,
    index: u64,
    hub: WatchHub,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(settings: WatchSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachineStore::open(dir.path()).await.unwrap();
        let (stop, stopping) = watch::channel(false);
        let hub = WatchHub::new(sm.reader(), settings, stopping);
        Harness {
            sm,
            index: 0,
            hub,
            stop,
            _dir: dir,
        }
    }

    async fn default() -> Self {
        Harness::new(WatchSettings::default()).await
    }

    /// Applies one log entry holding `commands`.
    async fn apply(&mut self, commands: Vec<Command>) {
        self.index += 1;
        let entry = Entry {
            log_id: log_id(1, 1, self.index),
            payload: EntryPayload::Normal(CommandBatch { commands }),
        };
        self.sm.apply([entry]).await.unwrap();
    }

    fn revision(&self) -> i64 {
        self.sm.reader().current().kv.revision()
    }

    /// Opens a stream whose response buffer holds `buffer` responses.
    fn open(&self, buffer: usize) -> Client {
        let (requests, incoming) = mpsc::channel(16);
        let (out, responses) = mpsc::channel(buffer);
        let hub = self.hub.clone();
        let task = tokio::spawn(async move { hub.serve(ReceiverStream::new(incoming), out).await });
        Client {
            requests,
            responses,
            task,
        }
    }
}

type Served = Result<(), StreamError<Infallible>>;

struct Client {
    requests: mpsc::Sender<Result<Request, Infallible>>,
    responses: mpsc::Receiver<Response>,
    task: JoinHandle<Served>,
}

impl Client {
    async fn send(&self, request: Request) {
        self.requests.send(Ok(request)).await.unwrap();
    }

    async fn create(&self, request: WatchCreateRequest) {
        self.send(Request::Create(request)).await;
    }

    async fn next(&mut self) -> Response {
        tokio::time::timeout(DEADLINE, self.responses.recv())
            .await
            .expect("a response within the deadline")
            .expect("the stream is open")
    }

    /// Reads responses until watch `id` has received events up to
    /// `revision`; returns them and the other responses seen.
    async fn events_until(&mut self, id: i64, revision: i64) -> (Vec<Event>, Vec<Response>) {
        let mut events = Vec::new();
        let mut others = Vec::new();
        while events
            .last()
            .is_none_or(|e: &Event| e.kv.as_ref().unwrap().mod_revision < revision)
        {
            let response = self.next().await;
            match response.kind {
                ResponseKind::Events { events: got, .. } if response.watch_id == id => {
                    events.extend(got)
                }
                _ => others.push(response),
            }
        }
        (events, others)
    }
}

/// Event type, key, previous value.
type Summary = (i32, String, Option<String>);

fn revisions(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.kv.as_ref().unwrap().mod_revision)
        .collect()
}

fn value(kv: Option<&witan_proto::mvccpb::KeyValue>) -> Option<String> {
    kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
}

#[tokio::test]
async fn live_events_come_one_revision_per_response_with_prev_kv() {
    let mut h = Harness::default().await;
    let mut c = h.open(16);
    c.create(WatchCreateRequest {
        prev_kv: true,
        ..create("a/", "a0", 0)
    })
    .await;
    let created = c.next().await;
    assert_eq!(
        created,
        Response {
            watch_id: 0,
            revision: 1,
            kind: ResponseKind::Created
        }
    );
    // One entry, several commands: one response per revision.
    h.apply(vec![
        put("a/1", "x"),
        put("b", "y"),
        put("a/1", "z"),
        delete("a/1", "", false),
    ])
    .await;
    h.apply(vec![txn_puts(&["a/2", "a/3", "c"])]).await;

    let mut got = Vec::new();
    for _ in 0..4 {
        let r = c.next().await;
        let ResponseKind::Events { events, fragment } = r.kind else {
            panic!("unexpected {r:?}");
        };
        assert!(!fragment);
        got.push((r.revision, events));
    }
    let summary: Vec<(i64, Vec<Summary>)> = got
        .iter()
        .map(|(rev, events)| {
            let events = events
                .iter()
                .map(|e| {
                    let kv = e.kv.as_ref().unwrap();
                    (
                        e.r#type,
                        String::from_utf8_lossy(&kv.key).into_owned(),
                        value(e.prev_kv.as_ref()),
                    )
                })
                .collect();
            (*rev, events)
        })
        .collect();
    let put = EventType::Put as i32;
    let del = EventType::Delete as i32;
    assert_eq!(
        summary,
        vec![
            (2, vec![(put, "a/1".into(), None)]),
            (4, vec![(put, "a/1".into(), Some("x".into()))]),
            (5, vec![(del, "a/1".into(), Some("z".into()))]),
            (
                6,
                vec![(put, "a/2".into(), None), (put, "a/3".into(), None)]
            ),
        ]
    );
    // A deletion carries etcd's tombstone: key and mod_revision only.
    let tombstone = got[2].1[0].kv.clone().unwrap();
    assert_eq!(
        (
            tombstone.create_revision,
            tombstone.version,
            tombstone.value.len()
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn a_past_start_catches_up_from_history_while_writes_continue() {
    let mut h = Harness::new(WatchSettings {
        catch_up_chunk: 7,
        ..WatchSettings::default()
    })
    .await;
    for i in 0..50 {
        h.apply(vec![put(&format!("k{}", i % 5), &format!("v{i}"))])
            .await;
    }
    let mut c = h.open(2);
    c.create(WatchCreateRequest {
        prev_kv: true,
        ..create("k", "\0", 2)
    })
    .await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    // Writes keep landing while the watch reads the history.
    for i in 50..100 {
        h.apply(vec![put(&format!("k{}", i % 5), &format!("v{i}"))])
            .await;
        if i % 10 == 0 {
            let _ = c.next().await;
        }
    }
    let last = h.revision();
    assert_eq!(last, 101);
    // Reopen to collect from the start: the reads above consumed some.
    let mut c = h.open(2);
    c.create(WatchCreateRequest {
        prev_kv: true,
        ..create("k", "\0", 2)
    })
    .await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    let writer = async {
        for i in 100..150 {
            h.apply(vec![put(&format!("k{}", i % 5), &format!("v{i}"))])
                .await;
        }
    };
    let (_, (events, others)) = tokio::join!(writer, c.events_until(0, 151));
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(revisions(&events), (2..=151).collect::<Vec<_>>());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(value(e.kv.as_ref()), Some(format!("v{i}")));
        let prev = (i >= 5).then(|| format!("v{}", i - 5));
        assert_eq!(value(e.prev_kv.as_ref()), prev, "prev of event {i}");
    }
}

#[tokio::test]
async fn a_stream_that_stops_reading_falls_back_to_history_and_loses_nothing() {
    let mut h = Harness::default().await;
    let mut c = h.open(1);
    c.create(create("", "\0", 0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    // Far more applies than the feed holds, none read meanwhile: writes do
    // not wait for the stream.
    for i in 0..1500 {
        h.apply(vec![put(&format!("k{:03}", i % 300), "v")]).await;
    }
    let (events, others) = c.events_until(0, 1501).await;
    assert!(others.is_empty());
    assert_eq!(revisions(&events), (2..=1501).collect::<Vec<_>>());
    // And it is live again afterwards.
    h.apply(vec![put("late", "v")]).await;
    let r = c.next().await;
    assert_eq!(r.revision, 1502);
}

#[tokio::test]
async fn a_compacted_start_is_created_then_canceled_as_etcd() {
    let mut h = Harness::default().await;
    for i in 0..5 {
        h.apply(vec![put("p", &format!("v{i}"))]).await;
    }
    h.apply(vec![delete("p", "", false)]).await;
    h.apply(vec![compact(4)]).await;
    let mut c = h.open(16);
    c.create(create("p", "", 2)).await;
    assert_eq!(
        c.next().await,
        Response {
            watch_id: 0,
            revision: 7,
            kind: ResponseKind::Created
        }
    );
    assert_eq!(
        c.next().await,
        Response {
            watch_id: 0,
            revision: 0,
            kind: ResponseKind::Compacted {
                compact_revision: 4
            }
        }
    );
    // Exactly at the compaction revision: what is left of it, then the rest
    // (prev_kv below the compaction revision is gone, as in etcd).
    c.create(WatchCreateRequest {
        prev_kv: true,
        ..create("p", "", 4)
    })
    .await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    let (events, _) = c.events_until(1, 7).await;
    assert_eq!(revisions(&events), [4, 5, 6, 7]);
    let prevs: Vec<Option<String>> = events.iter().map(|e| value(e.prev_kv.as_ref())).collect();
    assert_eq!(
        prevs,
        [
            None,
            Some("v2".into()),
            Some("v3".into()),
            Some("v4".into())
        ]
    );
}

#[tokio::test]
async fn ids_refusals_and_cancels_follow_etcd() {
    let h = Harness::default().await;
    let mut c = h.open(16);
    c.create(create("a", "", 0)).await;
    c.create(WatchCreateRequest {
        watch_id: 5,
        ..create("a", "", 0)
    })
    .await;
    c.create(WatchCreateRequest {
        watch_id: 5,
        ..create("a", "", 0)
    })
    .await;
    c.create(create("a", "", 0)).await;
    c.create(create("b", "a", 0)).await;
    c.send(Request::Cancel(99)).await;
    c.send(Request::Cancel(5)).await;
    let seen: Vec<(i64, ResponseKind)> = {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let r = c.next().await;
            seen.push((r.watch_id, r.kind));
        }
        seen
    };
    assert_eq!(
        seen,
        vec![
            (0, ResponseKind::Created),
            (5, ResponseKind::Created),
            (NO_WATCH_ID, ResponseKind::Refused(CreateError::DuplicateId)),
            (1, ResponseKind::Created),
            (NO_WATCH_ID, ResponseKind::Refused(CreateError::EmptyRange)),
            // Cancelling 99 answered nothing.
            (5, ResponseKind::Canceled),
        ]
    );
    // The client may reuse a cancelled id.
    c.create(WatchCreateRequest {
        watch_id: 5,
        ..create("a", "", 0)
    })
    .await;
    assert_eq!(c.next().await.watch_id, 5);
}

#[tokio::test]
async fn a_progress_request_is_answered_once_every_watch_is_live() {
    let mut h = Harness::new(WatchSettings {
        catch_up_chunk: 1,
        ..WatchSettings::default()
    })
    .await;
    let mut c = h.open(1);
    // No watch: answered at once with the current revision.
    c.send(Request::Progress).await;
    assert_eq!(
        c.next().await,
        Response {
            watch_id: NO_WATCH_ID,
            revision: 1,
            kind: ResponseKind::Progress
        }
    );
    for i in 0..40 {
        h.apply(vec![put("k", &format!("v{i}"))]).await;
    }
    // A watch catching up in 40 steps: the answer comes after all of it.
    c.create(create("k", "", 2)).await;
    c.send(Request::Progress).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    let (events, others) = c.events_until(0, 41).await;
    assert_eq!(events.len(), 40);
    assert!(others.is_empty(), "no answer before the watch is live");
    assert_eq!(
        c.next().await,
        Response {
            watch_id: NO_WATCH_ID,
            revision: 41,
            kind: ResponseKind::Progress
        }
    );
}

#[tokio::test]
async fn idle_watches_that_asked_get_progress_notifications() {
    let mut h = Harness::new(WatchSettings {
        progress_notify_interval: Duration::from_millis(100),
        ..WatchSettings::default()
    })
    .await;
    h.apply(vec![put("other", "v")]).await;
    let mut c = h.open(16);
    c.create(create("quiet", "", 0)).await;
    c.create(WatchCreateRequest {
        progress_notify: true,
        ..create("k", "", 0)
    })
    .await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    let first = c.next().await;
    assert_eq!(
        first,
        Response {
            watch_id: 1,
            revision: 2,
            kind: ResponseKind::Progress
        }
    );
    // Writes elsewhere move the notified revision on.
    h.apply(vec![put("other", "w")]).await;
    loop {
        let r = c.next().await;
        assert_eq!((r.watch_id, &r.kind), (1, &ResponseKind::Progress));
        if r.revision == 3 {
            break;
        }
    }
}

#[tokio::test]
async fn a_stream_ends_and_is_freed_when_the_client_leaves() {
    let mut h = Harness::default().await;
    let mut c = h.open(1);
    c.create(create("k", "", 0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    assert_eq!(h.hub.open_streams(), 1);
    // The stream is blocked on a full buffer when the client leaves.
    for i in 0..5 {
        h.apply(vec![put("k", &format!("v{i}"))]).await;
    }
    let Client {
        requests,
        responses,
        task,
    } = c;
    drop(responses);
    let served = tokio::time::timeout(DEADLINE, task).await.unwrap().unwrap();
    assert!(served.is_ok());
    assert_eq!(h.hub.open_streams(), 0);
    drop(requests);
}

#[tokio::test]
async fn shutdown_ends_every_stream_even_a_blocked_one() {
    let mut h = Harness::default().await;
    let mut c = h.open(1);
    c.create(create("k", "", 0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    for i in 0..5 {
        h.apply(vec![put("k", &format!("v{i}"))]).await;
    }
    h.stop.send(true).unwrap();
    let served = tokio::time::timeout(DEADLINE, c.task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(served, Err(StreamError::Shutdown)));
}

#[tokio::test]
async fn a_snapshot_install_is_caught_up_from_history() {
    let mut h = Harness::default().await;
    let mut other = Harness::default().await;
    for i in 0..10 {
        other.apply(vec![put(&format!("k{i}"), "theirs")]).await;
    }
    let mut c = h.open(16);
    c.create(create("k", "\0", 0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
    h.apply(vec![put("k0", "mine")]).await;
    let (events, _) = c.events_until(0, 2).await;
    assert_eq!(revisions(&events), [2]);

    // Installing a snapshot jumps the state (an empty feed message): the
    // stream reads what it skipped from the installed history.
    let built = other
        .sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut data = other
        .sm
        .get_current_snapshot()
        .await
        .unwrap()
        .unwrap()
        .snapshot;
    let mut receiving = h.sm.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut data, &mut *receiving).await.unwrap();
    h.sm.install_snapshot(&built.meta, receiving).await.unwrap();
    let (events, _) = c.events_until(0, 11).await;
    assert_eq!(revisions(&events), (3..=11).collect::<Vec<_>>());
    assert!(events
        .iter()
        .all(|e| value(e.kv.as_ref()).as_deref() == Some("theirs")));
}

#[tokio::test]
async fn history_is_read_in_chunks_of_whole_revisions() {
    let mut h = Harness::default().await;
    h.apply(vec![txn_puts(&["a", "b", "c", "d", "e"])]).await; // 2
    h.apply(vec![put("a", "x")]).await; // 3
    h.apply(vec![put("b", "x")]).await; // 4
    h.apply(vec![txn_puts(&["c", "d", "e"])]).await; // 5
    let reader = h.sm.reader();
    let history = reader.history();
    let mut from = 2;
    let mut chunks = Vec::new();
    while from <= 5 {
        let chunk = super::catchup::read_chunk(history, from, 5, 2)
            .await
            .unwrap();
        chunks.push(revisions_of(&chunk.changes));
        assert!(chunk.through >= from);
        from = chunk.through + 1;
    }
    assert_eq!(
        chunks,
        vec![
            vec![2, 2, 2, 2, 2], // larger than the limit: read whole
            vec![3],             // 4 may be cut short at the limit: left for later
            vec![4],
            vec![5, 5, 5],
        ]
    );
    // An empty stretch still advances to its end.
    let chunk = super::catchup::read_chunk(history, 6, 5, 2).await.unwrap();
    assert_eq!((chunk.changes.len(), chunk.through), (0, 5));
}

fn revisions_of(changes: &[crate::mvcc::Change]) -> Vec<i64> {
    changes.iter().map(|c| c.kv.mod_revision).collect()
}

#[tokio::test]
async fn a_stream_holds_at_most_max_watches_per_stream() {
    let h = Harness::new(WatchSettings {
        max_watches_per_stream: 2,
        ..WatchSettings::default()
    })
    .await;
    let mut c = h.open(1);
    for _ in 0..3 {
        c.create(create("a", "", 0)).await;
    }
    let kinds = [c.next().await, c.next().await, c.next().await].map(|r| (r.watch_id, r.kind));
    assert_eq!(
        kinds,
        [
            (0, ResponseKind::Created),
            (1, ResponseKind::Created),
            (
                NO_WATCH_ID,
                ResponseKind::Refused(CreateError::TooManyWatches(2))
            ),
        ]
    );
    // A cancel makes room again.
    c.send(Request::Cancel(0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Canceled);
    c.create(create("a", "", 0)).await;
    assert_eq!(c.next().await.kind, ResponseKind::Created);
}
