//! The watches kv-diff keeps open on both servers during a run, and the
//! comparison of everything each of them delivered.
//!
//! Each side gets one watch stream. Before the first operation it creates
//! the [`early`] watches (a prefix watch with prev_kv, a from-key watch,
//! single-key watches with NOPUT and NODELETE filters, every key from
//! the first revision, a plain range); after the last one it adds the [`late`]
//! watches (every key from an old revision that was not compacted, and one
//! from a compacted revision, which the server must cancel). A task per
//! side reads the stream all along, so no server ever sees a slow consumer.
//!
//! The run then writes the [`closing_writes`], which every watch is built
//! to see (so each watch has a known last event to wait for), waits until
//! both sides delivered them, asks each stream for a progress report, and
//! compares every watch's whole history: events in order with their kvs and
//! prev_kvs, and how it was created and cancelled. How events are batched
//! into responses, and the headers of event responses, depend on timing and
//! are not compared.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, EventType, WatchFilterType, WatchOptions, WatchRequestSender, WatchResponse,
    WatchResponseStream,
};

use crate::generate::prefix_end;
use crate::outcome::Kv;
use crate::request::{Bytes, DeleteReq, Op, PutReq};

/// How long a side may take to deliver the closing writes to every watch
/// (and to answer a progress request) once they are acknowledged.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(15);
/// How often the waits look at what the stream reader collected.
const POLL: Duration = Duration::from_millis(20);

/// One watch to create on both sides.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    pub name: String,
    pub key: Bytes,
    /// As on the wire: empty for one key, "\0" for every key from `key` on.
    pub range_end: Bytes,
    pub start_revision: i64,
    pub prev_kv: bool,
    pub no_put: bool,
    pub no_delete: bool,
    /// Created at a compacted revision: the server must cancel it.
    pub compacted: bool,
}

/// One event as a watch delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub put: bool,
    pub kv: Kv,
    pub prev_kv: Option<Kv>,
}

/// How a watch was cancelled by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancel {
    pub compact_revision: i64,
    pub reason: String,
}

/// Everything one watch delivered, in the form both sides must agree on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Header revision of the `created` response (None: never created).
    pub created_revision: Option<i64>,
    pub events: Vec<Event>,
    pub cancel: Option<Cancel>,
}

/// What the reader task of one side collected.
#[derive(Default)]
struct Collected {
    /// By creation order (the order the create requests were sent).
    watches: Vec<History>,
    /// Server watch id of each created watch, by creation order.
    ids: Vec<i64>,
    /// Progress responses: (watch id, header revision).
    progress: Vec<(i64, i64)>,
    /// Responses that fit nowhere (events for an unknown watch id, ...).
    strays: Vec<String>,
    /// Set when the stream ended or failed.
    ended: Option<String>,
}

/// One side's watch stream and what it delivered so far.
pub struct Side {
    pub role: &'static str,
    sender: WatchRequestSender,
    collected: Arc<Mutex<Collected>>,
    reader: tokio::task::JoinHandle<()>,
    /// How many create requests were sent.
    sent: usize,
}

impl WatchSpec {
    fn options(&self) -> WatchOptions {
        let mut o = WatchOptions::new().with_start_revision(self.start_revision);
        if !self.range_end.0.is_empty() {
            o = o.with_range(self.range_end.0.clone());
        }
        if self.prev_kv {
            o = o.with_prev_key();
        }
        let mut filters = Vec::new();
        if self.no_put {
            filters.push(WatchFilterType::NoPut);
        }
        if self.no_delete {
            filters.push(WatchFilterType::NoDelete);
        }
        if !filters.is_empty() {
            o = o.with_filters(filters);
        }
        o
    }

    /// Whether the watch covers `key`.
    fn covers(&self, key: &[u8]) -> bool {
        let (start, end) = (&self.key.0[..], &self.range_end.0[..]);
        match end {
            [] => key == start,
            [0] => key >= start,
            _ => key >= start && key < end,
        }
    }

    /// Whether the watch delivers a write of `key` (a put, or a delete).
    pub fn sees(&self, key: &[u8], put: bool) -> bool {
        let filtered = if put { self.no_put } else { self.no_delete };
        self.covers(key) && !filtered
    }
}

fn spec(name: &str, key: &[u8], range_end: &[u8], start_revision: i64) -> WatchSpec {
    WatchSpec {
        name: name.to_string(),
        key: Bytes(key.to_vec()),
        range_end: Bytes(range_end.to_vec()),
        start_revision,
        prev_kv: false,
        no_put: false,
        no_delete: false,
        compacted: false,
    }
}

/// The watches created before the first operation, over the generated key
/// space (prefixes a/, b/, c/, keys k0..k7).
pub fn early() -> Vec<WatchSpec> {
    vec![
        WatchSpec {
            prev_kv: true,
            ..spec("prefix a/ with prev_kv", b"a/", &prefix_end(b"a/"), 0)
        },
        spec("from key b/k3", b"b/k3", b"\0", 0),
        WatchSpec {
            prev_kv: true,
            no_put: true,
            ..spec("key c/k1, NOPUT, prev_kv", b"c/k1", b"", 0)
        },
        WatchSpec {
            no_delete: true,
            ..spec("key c/k2, NODELETE", b"c/k2", b"", 0)
        },
        // From revision 2, the first one a write can make. Not 1: etcd
        // 3.4 treats a watch starting at its current revision as one that
        // must catch up (synced only when start > current), syncs it within
        // 100 ms, and cancels it if a compaction comes first, which a fast
        // run does.
        WatchSpec {
            prev_kv: true,
            ..spec("every key from revision 2, prev_kv", b"\0", b"\0", 2)
        },
        spec("range [a/k3, b/k5)", b"a/k3", b"b/k5", 0),
    ]
}

/// The watches created after the last operation: every key from an old
/// revision that is not compacted, and (once something was compacted past
/// revision 1) one from a compacted revision, which must be cancelled.
pub fn late(current_rev: i64, compact_rev: i64) -> Vec<WatchSpec> {
    let floor = compact_rev + 1;
    let old = floor.max((floor + current_rev) / 2).min(current_rev);
    let mut specs = vec![WatchSpec {
        prev_kv: true,
        ..spec(
            &format!("late: every key from revision {old}, prev_kv"),
            b"\0",
            b"\0",
            old,
        )
    }];
    if compact_rev > 1 {
        specs.push(WatchSpec {
            compacted: true,
            ..spec(
                &format!(
                    "late: prefix b/ from compacted revision {}",
                    compact_rev - 1
                ),
                b"b/",
                &prefix_end(b"b/"),
                compact_rev - 1,
            )
        });
    }
    specs
}

/// Writes after the last operation that every watch sees at least one of:
/// outside the generated keys except c/k1 and c/k2 (for the single-key
/// watches; the delete is for the NOPUT one).
pub fn closing_writes() -> Vec<Op> {
    let put = |key: &str| {
        Op::Put(PutReq {
            key: Bytes::from(key),
            value: Bytes::from("end"),
            lease: 0,
            prev_kv: false,
            ignore_value: false,
            ignore_lease: false,
        })
    };
    vec![
        put("c/k1"),
        Op::Delete(DeleteReq {
            key: Bytes::from("c/k1"),
            range_end: Bytes::default(),
            prev_kv: false,
        }),
        put("c/k2"),
        put("a/~end"),
        put("~end"),
    ]
}

/// The key a closing write touches and whether it is a put.
pub fn write_key(op: &Op) -> Option<(&[u8], bool)> {
    match op {
        Op::Put(p) => Some((&p.key.0, true)),
        Op::Delete(d) if d.range_end.0.is_empty() => Some((&d.key.0, false)),
        _ => None,
    }
}

impl Side {
    /// Opens the stream on `client` and creates `specs` on it.
    pub async fn open(
        role: &'static str,
        client: &Client,
        specs: &[WatchSpec],
    ) -> anyhow::Result<Side> {
        let first = specs
            .first()
            .ok_or_else(|| anyhow::anyhow!("no watches to open"))?;
        let stream = client
            .watch_client()
            .watch(first.key.0.clone(), Some(first.options()))
            .await
            .map_err(|e| anyhow::anyhow!("{role}: cannot open a watch stream: {e}"))?;
        let (sender, responses) = stream.split();
        let collected = Arc::new(Mutex::new(Collected::default()));
        let reader = tokio::spawn(read(responses, Arc::clone(&collected)));
        let mut side = Side {
            role,
            sender,
            collected,
            reader,
            sent: 1,
        };
        side.add(&specs[1..]).await?;
        Ok(side)
    }

    /// Creates more watches on the stream.
    pub async fn add(&mut self, specs: &[WatchSpec]) -> anyhow::Result<()> {
        for s in specs {
            self.sender
                .watch(s.key.0.clone(), Some(s.options()))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{}: cannot create watch {}: {e}", self.role, s.name)
                })?;
            self.sent += 1;
        }
        Ok(())
    }

    /// Waits until every watch sent so far is created (or the deadline).
    pub async fn wait_created(&self) -> Result<(), String> {
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        loop {
            {
                let c = self.lock();
                if c.watches.len() >= self.sent {
                    return Ok(());
                }
                if let Some(why) = &c.ended {
                    return Err(format!("{}: the watch stream ended: {why}", self.role));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: only {} of {} watches created within {DELIVERY_DEADLINE:?}",
                    self.role,
                    self.lock().watches.len(),
                    self.sent
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until watch `i` delivered an event at revision `rev` or later,
    /// or was cancelled; `None` waits for the cancellation only.
    pub async fn wait_for(&self, i: usize, rev: Option<i64>) -> Result<(), String> {
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        loop {
            {
                let c = self.lock();
                if let Some(h) = c.watches.get(i) {
                    let last = h.events.last().map(|e| e.kv.mod_revision).unwrap_or(0);
                    if h.cancel.is_some() || rev.is_some_and(|r| last >= r) {
                        return Ok(());
                    }
                }
                if let Some(why) = &c.ended {
                    return Err(format!("{}: the watch stream ended: {why}", self.role));
                }
            }
            if Instant::now() >= deadline {
                return Err(match rev {
                    Some(r) => format!(
                        "{}: watch #{i} did not deliver revision {r} within {DELIVERY_DEADLINE:?}",
                        self.role
                    ),
                    None => format!(
                        "{}: watch #{i} was not cancelled within {DELIVERY_DEADLINE:?}",
                        self.role
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends a progress request and waits for a progress response with a
    /// header revision of at least `rev`; returns that response's watch id
    /// (etcd 3.4 answers with -1: not any one watch's).
    pub async fn progress(&mut self, rev: i64) -> Result<i64, String> {
        let before = self.lock().progress.len();
        self.sender
            .request_progress()
            .await
            .map_err(|e| format!("{}: cannot request progress: {e}", self.role))?;
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        loop {
            {
                let c = self.lock();
                if let Some(&(id, _)) = c.progress[before..].iter().find(|(_, r)| *r >= rev) {
                    return Ok(id);
                }
                if let Some(why) = &c.ended {
                    return Err(format!("{}: the watch stream ended: {why}", self.role));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: no progress response at revision >= {rev} within {DELIVERY_DEADLINE:?} (got {:?})",
                    self.role,
                    &self.lock().progress[before..]
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every watch's history so far, by creation order, and the responses
    /// that fit no watch.
    pub fn histories(&self) -> (Vec<History>, Vec<String>) {
        let c = self.lock();
        (c.watches.clone(), c.strays.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        // A poisoned lock only means the reader panicked; what it collected
        // is still the best evidence there is.
        self.collected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The reader task: files every response under its watch.
async fn read(mut responses: WatchResponseStream, collected: Arc<Mutex<Collected>>) {
    loop {
        let next = responses.message().await;
        let mut c = collected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match next {
            Ok(Some(r)) => c.file(&r),
            Ok(None) => {
                c.ended = Some("closed by the server".to_string());
                return;
            }
            Err(e) => {
                c.ended = Some(e.to_string());
                return;
            }
        }
    }
}

impl Collected {
    fn file(&mut self, r: &WatchResponse) {
        let header_rev = r.header().map(|h| h.revision());
        if r.created() {
            self.ids.push(r.watch_id());
            self.watches.push(History {
                created_revision: Some(header_rev.unwrap_or(0)),
                ..History::default()
            });
        }
        let slot = self.ids.iter().position(|&id| id == r.watch_id());
        let is_progress =
            !r.created() && !r.canceled() && r.events().is_empty() && r.compact_revision() == 0;
        if is_progress {
            // etcd 3.4 answers a progress request with watch id -1; a
            // progress notification for one watch carries its id.
            self.progress.push((r.watch_id(), header_rev.unwrap_or(0)));
            return;
        }
        let Some(slot) = slot else {
            self.strays.push(format!("{r:?}"));
            return;
        };
        let h = &mut self.watches[slot];
        for e in r.events() {
            let Some(kv) = e.kv() else {
                self.strays.push(format!("event without a kv: {e:?}"));
                continue;
            };
            h.events.push(Event {
                put: e.event_type() == EventType::Put,
                kv: Kv::from(kv),
                prev_kv: e.prev_kv().map(Kv::from),
            });
        }
        if r.canceled() {
            h.cancel = Some(Cancel {
                compact_revision: r.compact_revision(),
                reason: r.cancel_reason().to_string(),
            });
            // A cancelled id may be reused by a later watch.
            self.ids[slot] = i64::MIN;
        }
    }
}

/// Compares two histories of watch `spec` event by event: `Ok` when they
/// are equal, else the first difference described for a report.
pub fn compare(spec: &WatchSpec, reference: &History, candidate: &History) -> Result<(), String> {
    let (r, c) = (&reference.events, &candidate.events);
    let first = (0..r.len().max(c.len())).find(|i| r.get(*i) != c.get(*i));
    if first.is_none()
        && reference.created_revision == candidate.created_revision
        && reference.cancel == candidate.cancel
    {
        return Ok(());
    }
    let mut out = format!("watch \"{}\": {spec:?}\n", spec.name);
    if reference.created_revision != candidate.created_revision {
        out.push_str(&format!(
            "created at header revision: reference {:?}, candidate {:?}\n",
            reference.created_revision, candidate.created_revision
        ));
    }
    if reference.cancel != candidate.cancel {
        out.push_str(&format!(
            "cancellation: reference {:?}, candidate {:?}\n",
            reference.cancel, candidate.cancel
        ));
    }
    out.push_str(&format!(
        "events: reference {}, candidate {}\n",
        r.len(),
        c.len()
    ));
    if let Some(i) = first {
        out.push_str(&format!("first different event: #{i}\n"));
        if i > 0 {
            out.push_str(&format!("previous event (reference): {:?}\n", r[i - 1]));
        }
        out.push_str(&format!(
            "reference: {:#?}\ncandidate: {:#?}\n",
            r.get(i),
            c.get(i)
        ));
    }
    Err(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_follows_range_and_filters() {
        let s = early();
        let prefix = &s[0];
        assert!(prefix.sees(b"a/~end", true));
        assert!(!prefix.sees(b"b/k1", true));
        let from = &s[1];
        assert!(from.sees(b"b/k3", false) && from.sees(b"~end", true));
        assert!(!from.sees(b"b/k2", true));
        let no_put = &s[2];
        assert!(!no_put.sees(b"c/k1", true) && no_put.sees(b"c/k1", false));
        assert!(!no_put.sees(b"c/k2", false));
        let no_delete = &s[3];
        assert!(no_delete.sees(b"c/k2", true) && !no_delete.sees(b"c/k2", false));
        assert!(s[4].sees(b"\0", true) && s[4].sees(b"~end", false));
        assert!(s[5].sees(b"a/~end", true) && !s[5].sees(b"b/k5", true));
    }

    #[test]
    fn every_watch_sees_a_closing_write() {
        let writes = closing_writes();
        for s in early().iter().chain(&late(100, 0)) {
            let seen = writes
                .iter()
                .filter_map(write_key)
                .any(|(k, put)| s.sees(k, put));
            assert!(seen, "{} sees no closing write", s.name);
        }
    }

    #[test]
    fn late_watches_start_above_the_compaction() {
        let l = late(100, 40);
        assert_eq!(l[0].start_revision, 70);
        assert_eq!(l[1].start_revision, 39);
        let l = late(10, 0);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].start_revision, 5);
        let l = late(41, 40);
        assert_eq!(l[0].start_revision, 41);
    }

    fn kv(key: &str, create: i64, rev: i64, version: i64) -> Kv {
        Kv {
            key: Bytes::from(key),
            value: Bytes::from("x"),
            create_revision: create,
            mod_revision: rev,
            version,
            lease: 0,
        }
    }

    fn put(rev: i64) -> Event {
        Event {
            put: true,
            kv: kv("a/k1", 2, rev, 1),
            prev_kv: None,
        }
    }

    #[test]
    fn compare_points_at_the_first_different_event() {
        let r = History {
            created_revision: Some(1),
            events: vec![put(2), put(3)],
            cancel: None,
        };
        assert_eq!(compare(&early()[0], &r, &r.clone()), Ok(()));
        let mut c = r.clone();
        c.events[1] = put(4);
        let d = compare(&early()[0], &r, &c).unwrap_err();
        assert!(d.contains("first different event: #1"), "{d}");
        let mut c = r.clone();
        c.cancel = Some(Cancel {
            compact_revision: 3,
            reason: String::new(),
        });
        assert!(compare(&early()[0], &r, &c).is_err());
    }

    #[test]
    fn a_different_prev_kv_is_a_difference() {
        let deleted = Kv {
            value: Bytes::default(),
            create_revision: 0,
            version: 0,
            ..kv("c/k3", 0, 53, 0)
        };
        let etcd = Event {
            put: false,
            kv: deleted,
            prev_kv: Some(kv("c/k3", 4, 51, 3)),
        };
        let witan = Event {
            prev_kv: Some(kv("c/k3", 4, 53, 4)),
            ..etcd.clone()
        };
        let h = |e: &Event| History {
            created_revision: Some(1),
            events: vec![e.clone()],
            cancel: None,
        };
        assert_eq!(compare(&early()[4], &h(&etcd), &h(&etcd)), Ok(()));
        assert!(compare(&early()[4], &h(&etcd), &h(&witan)).is_err());
    }
}
