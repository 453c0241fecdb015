//! Reading the stored history for watchers that are behind the live feed:
//! bounded chunks of whole revisions (a revision's events are never split
//! across responses), the events left at the compaction revision itself,
//! and previous values (`prev_kv`) of historical changes.

use std::collections::HashMap;

use witan_proto::mvccpb::KeyValue;

use crate::mvcc::{Change, History, HistoryError, KeyRange};
use crate::storage::{compacted_during_read, SqliteHistory};

/// Whole revisions of history, in order.
#[derive(Debug)]
pub struct Chunk {
    /// Every change of the revisions covered, in revision and sub-revision
    /// order (every key: the caller filters).
    pub changes: Vec<Change>,
    /// The last revision covered; the next chunk starts after it.
    pub through: i64,
}

/// Reads the changes with revisions in `[from, to]`, at most about `limit`
/// of them but always whole revisions: a revision with more than `limit`
/// changes is read alone and whole. `to` must be a revision the history
/// already holds completely (a published state's revision).
pub async fn read_chunk(
    history: &SqliteHistory,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Chunk, HistoryError> {
    let limit = limit.max(1);
    let mut changes = history.changes(from, to, limit).await?;
    let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
        return Ok(Chunk {
            changes,
            through: to,
        });
    };
    if changes.len() < limit {
        return Ok(Chunk {
            changes,
            through: to,
        });
    }
    // The read stopped at the limit: its last revision may be cut short.
    let (first, last) = (first.kv.mod_revision, last.kv.mod_revision);
    if first == last {
        let whole = history.changes(first, first, 0).await?;
        return Ok(Chunk {
            changes: whole,
            through: first,
        });
    }
    changes.retain(|c| c.kv.mod_revision < last);
    Ok(Chunk {
        changes,
        through: last - 1,
    })
}

/// The changes of `range` still stored at the compaction revision itself.
///
/// The history below the compaction revision is gone and the rows at it
/// are incomplete (compaction keeps each key's latest put, drops
/// tombstones), so `SqliteHistory::changes` refuses to start there. etcd
/// still serves a watch starting exactly at the compaction revision with
/// what is left, and clients re-watch from there after a "compacted"
/// answer; so do we: the keys whose latest change at that revision is a
/// put at that very revision (in key order: the sub-revision order is not
/// recoverable from a range read).
pub async fn at_compaction(
    history: &SqliteHistory,
    range: &KeyRange,
    revision: i64,
) -> Result<Vec<Change>, HistoryError> {
    let live = history.range_at(range, revision, 0).await?;
    Ok(live
        .kvs
        .into_iter()
        .filter(|kv| kv.mod_revision == revision)
        .map(|kv| Change {
            kv,
            sub: 0,
            deleted: false,
            prev: None,
        })
        .collect())
}

/// Previous values of historical changes, for `prev_kv`.
///
/// The history does not store them: the first change of a key in a chunk
/// looks up the key one revision earlier; later changes of the same key
/// take the value the chunk itself produced (so several changes of one key
/// in one revision chain up, as on the live path).
pub struct PrevValues<'h> {
    history: &'h SqliteHistory,
    /// Below this revision the history is gone: no previous value (as etcd
    /// answers when the lookup hits a compacted revision).
    compact_revision: i64,
    /// Each key's value after the latest change seen (`None`: deleted).
    seen: HashMap<Vec<u8>, Option<KeyValue>>,
}

impl<'h> PrevValues<'h> {
    /// Lookups in `history`, compacted at `compact_revision`.
    pub fn new(history: &'h SqliteHistory, compact_revision: i64) -> Self {
        PrevValues {
            history,
            compact_revision,
            seen: HashMap::new(),
        }
    }

    /// The key's value just before `change`; records the change.
    pub async fn before(&mut self, change: &Change) -> Result<Option<KeyValue>, HistoryError> {
        let prev = match self.seen.get(&change.kv.key) {
            Some(prev) => prev.clone(),
            None => {
                self.lookup(&change.kv.key, change.kv.mod_revision - 1)
                    .await?
            }
        };
        self.record(change);
        Ok(prev)
    }

    /// Records a change whose previous value nobody asked for, so that a
    /// later change of the same key finds it.
    pub fn record(&mut self, change: &Change) {
        let after = (!change.deleted).then(|| change.kv.clone());
        self.seen.insert(change.kv.key.clone(), after);
    }

    async fn lookup(&self, key: &[u8], revision: i64) -> Result<Option<KeyValue>, HistoryError> {
        if revision < self.compact_revision.max(1) {
            return Ok(None);
        }
        match self
            .history
            .range_at(&KeyRange::Key(key.to_vec()), revision, 1)
            .await
        {
            Ok(found) => Ok(found.kvs.into_iter().next()),
            Err(e) if compacted_during_read(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
