//! `Watcher`: one watch of a stream: what it watches, the next revision it
//! owes the client, and whether it follows the live feed or catches up from
//! the history.
//!
//! Invariant: every event of the watch with a revision below `next` has
//! been delivered (or, for a new watch, precedes its start), and none at or
//! above it. Both paths deliver only changes at or above `next` and move
//! `next` past what they covered, so the switch between them neither skips
//! nor repeats an event.

use std::collections::HashMap;

use witan_proto::mvccpb::event::EventType;
use witan_proto::mvccpb::{Event, KeyValue};

use super::catchup::{self, PrevValues};
use super::spec::WatchSpec;
use crate::mvcc::{Change, HistoryError};
use crate::storage::SqliteHistory;

/// What one catch-up step produced.
#[derive(Debug)]
pub struct CaughtUp {
    /// The watch's events of the revisions read, in order.
    pub events: Vec<Event>,
    /// The last revision read: the watch's `next` becomes `through + 1`.
    pub through: i64,
}

/// One watch.
#[derive(Debug)]
pub struct Watcher {
    /// The id the client knows it by.
    pub id: i64,
    /// What it watches and how.
    pub spec: WatchSpec,
    /// The next revision to deliver.
    pub next: i64,
    /// Whether it follows the stream's live feed (etcd's "synced"); when
    /// not, it reads the history until it reaches the feed.
    pub live: bool,
    /// No event went out since the last progress tick (etcd sends a
    /// progress notification only after a quiet interval).
    pub quiet: bool,
    /// Counts the watch in `etcd_debugging_mvcc_watcher_total`.
    _gauge: crate::metrics::WatcherGauge,
}

impl Watcher {
    /// A watch delivering events from revision `start` on.
    pub fn new(id: i64, spec: WatchSpec, start: i64) -> Self {
        Watcher {
            id,
            spec,
            next: start,
            live: false,
            quiet: true,
            _gauge: crate::metrics::WatcherGauge::new(),
        }
    }

    /// Whether the watch delivers `change` (not yet delivered, in range,
    /// kept by the filters).
    pub fn wants(&self, change: &Change) -> bool {
        change.kv.mod_revision >= self.next
            && self.spec.range.contains(&change.kv.key)
            && self.spec.filter.keeps(change.deleted)
    }

    /// The watch's events among `changes`, the changes of one revision
    /// from the live feed (whose `prev` is filled in). Does not move `next`.
    ///
    /// etcd's prev_kv is the key as of the revision before the event's, so
    /// when a txn changes a key twice (put, then delete) both events carry
    /// the key from before the txn: the `prev` of its first change.
    pub fn live_events(&self, changes: &[Change]) -> Vec<Event> {
        let mut before: HashMap<&[u8], Option<&KeyValue>> = HashMap::new();
        if self.spec.prev_kv {
            for c in changes {
                before.entry(c.kv.key.as_slice()).or_insert(c.prev.as_ref());
            }
        }
        changes
            .iter()
            .filter(|c| self.wants(c))
            .map(|c| {
                let prev = before.get(c.kv.key.as_slice()).copied().flatten().cloned();
                event(c, prev)
            })
            .collect()
    }

    /// Reads the next stretch of history, from `next` to at most `to`
    /// (the published revision), with compaction revision `compact`.
    /// `next` must be at or above `compact` and at most `to`. Does not
    /// move `next`.
    pub async fn catch_up(
        &self,
        history: &SqliteHistory,
        to: i64,
        compact: i64,
        chunk: usize,
    ) -> Result<CaughtUp, HistoryError> {
        let (changes, through) = if compact > 0 && self.next == compact {
            let left = catchup::at_compaction(history, &self.spec.range, compact).await?;
            (left, compact)
        } else {
            let read = catchup::read_chunk(history, self.next, to, chunk).await?;
            (read.changes, read.through)
        };
        let mut prevs = PrevValues::new(history, compact);
        let mut events = Vec::new();
        for change in &changes {
            if !self.spec.range.contains(&change.kv.key) {
                continue;
            }
            if !self.wants(change) {
                if self.spec.prev_kv {
                    prevs.record(change);
                }
                continue;
            }
            let prev = if self.spec.prev_kv {
                prevs.before(change).await?
            } else {
                None
            };
            events.push(event(change, prev));
        }
        Ok(CaughtUp { events, through })
    }
}

/// etcd's event for a change: the full key-value for a put, the tombstone
/// (key and mod_revision) for a delete.
fn event(change: &Change, prev_kv: Option<KeyValue>) -> Event {
    let kind = if change.deleted {
        EventType::Delete
    } else {
        EventType::Put
    };
    // etcd gives a put that creates the key no prev_kv, even when a txn
    // deleted and re-created it within one revision.
    let creates = !change.deleted && change.kv.create_revision == change.kv.mod_revision;
    Event {
        r#type: kind as i32,
        kv: Some(change.kv.clone()),
        prev_kv: if creates { None } else { prev_kv },
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::WatchCreateRequest;

    use super::*;

    fn change(key: &str, revision: i64, deleted: bool, prev: Option<&str>) -> Change {
        let kv = |value: &str, revision| KeyValue {
            key: key.into(),
            value: value.into(),
            mod_revision: revision,
            create_revision: 2,
            version: 1,
            lease: 0,
        };
        Change {
            kv: if deleted {
                KeyValue {
                    key: key.into(),
                    mod_revision: revision,
                    ..Default::default()
                }
            } else {
                kv("new", revision)
            },
            sub: 0,
            deleted,
            prev: prev.map(|v| kv(v, revision - 1)),
        }
    }

    fn watcher(request: WatchCreateRequest, next: i64) -> Watcher {
        Watcher::new(0, WatchSpec::new(&request).unwrap(), next)
    }

    #[test]
    fn live_events_match_range_filters_and_revision() {
        let w = watcher(
            WatchCreateRequest {
                key: b"a/".to_vec(),
                range_end: b"a0".to_vec(),
                filters: vec![1],
                ..Default::default()
            },
            5,
        );
        let changes = [
            change("a/1", 4, false, None),       // already delivered
            change("a/2", 5, false, None),       // delivered
            change("b", 5, false, None),         // out of range
            change("a/3", 5, true, Some("old")), // NODELETE
            change("a/4", 6, false, Some("old")),
        ];
        let events = w.live_events(&changes);
        let keys: Vec<&[u8]> = events
            .iter()
            .map(|e| e.kv.as_ref().unwrap().key.as_slice())
            .collect();
        assert_eq!(keys, [&b"a/2"[..], b"a/4"]);
        assert!(events.iter().all(|e| e.prev_kv.is_none()), "not asked");
    }

    #[test]
    fn events_have_etcds_shape_and_prev_kv_when_asked() {
        let w = watcher(
            WatchCreateRequest {
                key: b"k".to_vec(),
                prev_kv: true,
                ..Default::default()
            },
            1,
        );
        let events = w.live_events(&[change("k", 3, true, Some("v"))]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].r#type, EventType::Delete as i32);
        let kv = events[0].kv.as_ref().unwrap();
        assert_eq!(
            (kv.key.as_slice(), kv.mod_revision, kv.version),
            (&b"k"[..], 3, 0)
        );
        assert_eq!(events[0].prev_kv.as_ref().unwrap().value, b"v");
    }

    #[test]
    fn prev_kv_is_the_key_before_the_revision_and_none_for_a_creation() {
        let w = watcher(
            WatchCreateRequest {
                key: b"k".to_vec(),
                prev_kv: true,
                ..Default::default()
            },
            2,
        );
        // One txn at revision 7: put k (was "old"), then delete k.
        let put = change("k", 7, false, Some("old"));
        let mut delete = change("k", 7, true, None);
        delete.prev = put.kv.clone().into();
        let events = w.live_events(&[put, delete]);
        let prevs: Vec<&[u8]> = events
            .iter()
            .map(|e| e.prev_kv.as_ref().unwrap().value.as_slice())
            .collect();
        assert_eq!(
            prevs,
            [&b"old"[..], b"old"],
            "both see the key from before the txn"
        );

        // A put that re-creates the key (create == mod revision): no prev_kv.
        let mut recreate = change("k", 8, false, Some("old"));
        recreate.kv.create_revision = 8;
        assert!(w.live_events(&[recreate])[0].prev_kv.is_none());
    }
}
