//! `watch`: `--watchers` watch streams on one prefix, over `--conns`
//! connections to the first endpoint, and one writer putting keys under
//! that prefix through the second endpoint (the first when there is only
//! one). An event's latency at a watcher is the time from the put's
//! acknowledgement to the event's arrival there (0 when the event came
//! first), taken at every watcher for every put.
//!
//! The run also checks what it measures: each watcher must see every put
//! once, in revision order; what it missed or saw out of order is
//! reported.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::watch_client::WatchClient;
use witan_proto::etcdserverpb::watch_request::RequestUnion;
use witan_proto::etcdserverpb::{PutRequest, WatchCreateRequest, WatchRequest};

use super::timed;
use crate::cli::{Defaults, Setup, WatchArgs};
use crate::conn;
use crate::error::BenchError;
use crate::keys;
use crate::pace::{Pace, Stop};
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::stats::{Recorder, Tally};

/// Defaults of the watch workload: 1,000 puts at 100 per second (a
/// writer as fast as it can would measure the fan-out's saturation, not
/// its latency), 10 s per request.
pub const DEFAULTS: Defaults = Defaults {
    stop: Stop::Total(1000),
    rate: Some(100.0),
    timeout: Duration::from_secs(10),
};

/// Arrival times of the events one watcher saw, by revision, in the
/// order they came.
type Arrivals = Vec<(i64, Instant)>;

/// What one watcher shares with the run.
#[derive(Debug, Default)]
struct Seen {
    /// Every event's arrival. Locked once per message by its watcher and
    /// once by the run at the end, so never contended.
    arrivals: Mutex<Arrivals>,
    /// The highest revision seen so far.
    last: AtomicI64,
}

/// How the run learns that the watchers have caught up with the writer.
/// A watcher checks an atomic after each message instead of also awaiting
/// a shared stop signal: with a thousand watchers, registering and
/// dropping a waiter on one shared channel per event showed up as extra
/// latency (against the earlier single-purpose watch bench at the same
/// put rate).
#[derive(Debug)]
struct Drain {
    /// The writer's last revision; `i64::MAX` while it writes.
    target: AtomicI64,
    /// Woken by a watcher that has reached the target.
    caught_up: Notify,
}

/// Runs the watch workload.
pub async fn run(setup: &Setup, args: &WatchArgs) -> Result<Report, BenchError> {
    if args.watchers == 0 {
        return Err(BenchError::InvalidOption {
            option: "watchers",
            why: "must be at least 1",
        });
    }
    let watch_endpoint = setup.endpoints[0].clone();
    let writer_endpoint = setup.endpoints[1 % setup.endpoints.len()].clone();
    let channels = conn::open(std::slice::from_ref(&watch_endpoint), setup.conns).await?;
    let prefix = setup.prefix.clone().into_bytes();

    let drain = Arc::new(Drain {
        target: AtomicI64::new(i64::MAX),
        caught_up: Notify::new(),
    });
    let seen: Vec<Arc<Seen>> = (0..args.watchers).map(|_| Arc::default()).collect();
    let (ready_tx, mut ready_rx) = mpsc::channel(args.watchers);
    let mut watchers = JoinSet::new();
    for w in 0..args.watchers {
        let channel = channels[w % channels.len()].clone();
        let (prefix, ready) = (prefix.clone(), ready_tx.clone());
        watchers.spawn(watcher(
            channel,
            prefix,
            ready,
            seen[w].clone(),
            drain.clone(),
        ));
    }
    drop(ready_tx);
    // Every watch created before the first put.
    let mut created = 0;
    while created < args.watchers {
        tokio::select! {
            Some(()) = ready_rx.recv() => created += 1,
            Some(ended) = watchers.join_next() => {
                ended??;
                return Err(BenchError::StreamClosed { op: "watch" });
            }
        }
    }

    let mut writer = KvClient::new(conn::connect(&writer_endpoint).await?);
    let pace = Pace::start(setup.stop, setup.rate);
    let progress = Progress::start(&pace, "watch", progress::visible(setup.progress));
    let mut puts = Tally::new();
    let mut acked: HashMap<i64, Instant> = HashMap::new();
    let mut last = 0;
    while let Some(op) = pace.next().await {
        let mut key = prefix.clone();
        key.extend_from_slice(format!("{op:012}").as_bytes());
        let put = PutRequest {
            key,
            value: keys::value(args.val_size, op),
            ..Default::default()
        };
        let call = conn::call("put", setup.timeout, writer.put(put));
        if let Some(done) = timed(puts.op("put"), call).await {
            let at = Instant::now();
            let revision = done.header.map_or(0, |h| h.revision);
            acked.insert(revision, at);
            last = last.max(revision);
        }
        pace.finished();
    }
    let elapsed = pace.elapsed();
    progress.finish();

    // SeqCst on both sides: either a watcher sees the target after
    // storing its last revision, or this count sees that revision.
    drain.target.store(last, Ordering::SeqCst);
    let deadline = Instant::now() + args.drain_timeout;
    let mut gave_up = false;
    while seen.iter().any(|s| s.last.load(Ordering::SeqCst) < last) {
        tokio::select! {
            () = drain.caught_up.notified() => {}
            () = tokio::time::sleep_until(deadline) => {
                gave_up = true;
                break;
            }
            Some(ended) = watchers.join_next() => {
                ended??;
                return Err(BenchError::StreamClosed { op: "watch" });
            }
        }
    }
    watchers.abort_all();
    let arrivals: Vec<Arrivals> = seen
        .iter()
        .map(|s| std::mem::take(&mut *s.arrivals.lock().unwrap_or_else(|e| e.into_inner())))
        .collect();

    let check = check(&acked, &arrivals);
    let mut report = setup.report("watch");
    report
        .param("watchers", args.watchers)
        .param("watch_endpoint", watch_endpoint)
        .param("writer_endpoint", writer_endpoint)
        .param("val_size", args.val_size);
    report.elapsed_s = elapsed.as_secs_f64();
    report.ops = vec![check.events.summary("event", elapsed)];
    report.ops.extend(puts.summaries(elapsed));
    report
        .extra("events", check.events.count() as f64)
        .extra("missing_events", check.missing as f64)
        .extra("out_of_order_events", check.out_of_order as f64);
    if gave_up {
        report.notes.push(format!(
            "some watchers had not seen the last put {:?} after it was acknowledged",
            args.drain_timeout
        ));
    }
    Ok(report)
}

/// One watcher: creates its watch, says so on `ready`, then records
/// every event's arrival in `seen` until the run aborts it.
async fn watcher(
    channel: Channel,
    prefix: Vec<u8>,
    ready: mpsc::Sender<()>,
    seen: Arc<Seen>,
    drain: Arc<Drain>,
) -> Result<(), BenchError> {
    let create = WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: prefix.clone(),
            range_end: keys::prefix_end(&prefix),
            ..Default::default()
        })),
    };
    // The create request goes in before the call: a server may send its
    // response headers only with its first message. The sender stays open
    // for the whole run, since closing it ends the watch.
    let (requests, rx) = mpsc::channel(1);
    requests
        .send(create)
        .await
        .map_err(|_| BenchError::StreamClosed { op: "watch" })?;
    let mut stream = WatchClient::new(channel)
        .watch(ReceiverStream::new(rx))
        .await
        .map_err(|source| BenchError::Rpc {
            op: "watch",
            source,
        })?
        .into_inner();
    let mut created = false;
    let mut last = 0;
    loop {
        let response = stream
            .message()
            .await
            .map_err(|source| BenchError::Rpc {
                op: "watch",
                source,
            })?
            .ok_or(BenchError::StreamClosed { op: "watch" })?;
        let now = Instant::now();
        if response.canceled {
            return Err(BenchError::WatchRefused {
                prefix: String::from_utf8_lossy(&prefix).into_owned(),
                reason: response.cancel_reason,
            });
        }
        if response.created && !created {
            created = true;
            let _ = ready.send(()).await;
        }
        if response.events.is_empty() {
            continue;
        }
        {
            let mut arrivals = seen.arrivals.lock().unwrap_or_else(|e| e.into_inner());
            for kv in response.events.into_iter().filter_map(|e| e.kv) {
                arrivals.push((kv.mod_revision, now));
                last = last.max(kv.mod_revision);
            }
        }
        seen.last.store(last, Ordering::SeqCst);
        if last >= drain.target.load(Ordering::SeqCst) {
            drain.caught_up.notify_one();
        }
    }
}

/// What the watchers saw, against what was written.
struct Check {
    /// Latency of each event at each watcher.
    events: Recorder,
    /// Acknowledged puts a watcher never saw, summed over watchers.
    missing: u64,
    /// Events that came at or below a revision the same watcher had
    /// already seen (repeats or reordering).
    out_of_order: u64,
}

fn check(acked: &HashMap<i64, Instant>, arrivals: &[Arrivals]) -> Check {
    let mut check = Check {
        events: Recorder::new(),
        missing: 0,
        out_of_order: 0,
    };
    for seen in arrivals {
        let mut last = 0;
        let mut matched = 0u64;
        for &(revision, at) in seen {
            if revision <= last {
                check.out_of_order += 1;
                continue;
            }
            last = revision;
            if let Some(ack) = acked.get(&revision) {
                check.events.record(at.saturating_duration_since(*ack));
                matched += 1;
            }
        }
        check.missing += (acked.len() as u64).saturating_sub(matched);
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_from_ack_to_arrival_and_gaps_are_counted() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let acked: HashMap<i64, Instant> = [(5, t0), (6, t0 + ms(10))].into();
        let arrivals = vec![
            // Both events, the first 2 ms after its ack, the second
            // before its ack (counted as 0).
            vec![(5, t0 + ms(2)), (6, t0 + ms(9))],
            // A repeat, and the second put missing.
            vec![(5, t0 + ms(4)), (5, t0 + ms(4))],
            // An event for a put that was not acknowledged (timed out):
            // neither latency nor a miss of an acknowledged one.
            vec![(5, t0 + ms(1)), (6, t0 + ms(11)), (7, t0 + ms(12))],
        ];
        let check = check(&acked, &arrivals);
        assert_eq!(check.events.count(), 5);
        assert_eq!(check.missing, 1);
        assert_eq!(check.out_of_order, 1);
        let s = check.events.summary("event", Duration::from_secs(1));
        assert_eq!(s.p50_ms, 1.0);
        assert!((s.max_ms - 4.0).abs() < 0.01);
    }
}
