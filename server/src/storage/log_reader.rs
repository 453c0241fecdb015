//! Reading the raft log: the state `LogStore` shares with its readers (the
//! in-memory tail and a read-only sqlite pool), and `LogReader`, the handle
//! openraft's replication tasks read entries through.

use std::fmt::Debug;
use std::ops::{Bound, Range, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::TryStreamExt;
use openraft::{OptionalSend, RaftLogReader, StorageIOError};
use prost::Message;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use witan_proto::raftpb;

use super::error::{to_i64, DbError};
use super::log_cache::LogCache;
use crate::raft::convert::entry_from_pb;
use crate::raft::{Entry, LogId, StorageError, TypeConfig};

/// Upper bound on the bytes one `limited_get_log_entries` returns (at least
/// one entry is always returned), so one replication message stays well
/// below the transport's message size limit.
pub(crate) const LIMITED_READ_BYTES: usize = 2 << 20;

/// What the log store shares with its readers and its writer.
#[derive(Debug)]
pub(crate) struct LogShared {
    cache: Mutex<LogCache>,
    pool: SqlitePool,
}

impl LogShared {
    pub(crate) fn new(cache: LogCache, pool: SqlitePool) -> Self {
        LogShared {
            cache: Mutex::new(cache),
            pool,
        }
    }

    /// Locks the cache. Critical sections are short and never await; a
    /// panic while holding the lock cannot leave the cache half-updated in
    /// a way later readers would misread (each method restores its
    /// invariant before it can panic), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, LogCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the read connections.
    /// The read pool (maintenance reads sizes through it).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Reads the entries of `range` that exist, from memory and disk.
    pub(crate) async fn read<RB: RangeBounds<u64>>(
        &self,
        range: RB,
        max_bytes: Option<usize>,
    ) -> Result<Vec<Entry>, DbError> {
        let plan = {
            let cache = self.lock();
            let end = cache.last_log_id().map_or(0, |id| id.index + 1);
            let range = bounds(&range, end);
            cache.plan(range, max_bytes)
        };
        if plan.disk.is_empty() {
            return Ok(plan.cached);
        }
        let (mut entries, full) = self.read_disk(plan.disk.clone(), max_bytes).await?;
        if full {
            return Ok(entries);
        }
        // A truncate racing with this read could remove the end of the disk
        // part; never return a log with a hole (a purge only removes a
        // prefix, which keeps the result contiguous).
        if entries
            .last()
            .is_none_or(|e| e.log_id.index + 1 == plan.disk.end)
        {
            entries.extend(plan.cached);
        }
        Ok(entries)
    }

    /// Reads entries from sqlite. Returns them and whether `max_bytes`
    /// stopped the read early.
    async fn read_disk(
        &self,
        range: Range<u64>,
        max_bytes: Option<usize>,
    ) -> Result<(Vec<Entry>, bool), DbError> {
        let mut rows = sqlx::query(
            "SELECT entry FROM raft_entries WHERE log_index >= ? AND log_index < ? \
             ORDER BY log_index",
        )
        .bind(to_i64("log index", range.start)?)
        .bind(to_i64("log index", range.end)?)
        .fetch(&self.pool);
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.try_next().await? {
            let blob: &[u8] = row.try_get(0)?;
            bytes += blob.len();
            if !entries.is_empty() && max_bytes.is_some_and(|max| bytes > max) {
                return Ok((entries, true));
            }
            entries.push(decode_entry(blob)?);
        }
        Ok((entries, false))
    }

    /// The log id of the last stored entry below `index` and above
    /// `purged`, if there is one.
    pub(crate) async fn last_log_id_below(
        &self,
        index: u64,
        purged: Option<LogId>,
    ) -> Result<Option<LogId>, DbError> {
        let above = match purged {
            Some(id) => to_i64("log index", id.index)?,
            None => -1,
        };
        let row = sqlx::query(
            "SELECT entry FROM raft_entries WHERE log_index < ? AND log_index > ? \
             ORDER BY log_index DESC LIMIT 1",
        )
        .bind(to_i64("log index", index)?)
        .bind(above)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(decode_entry(row.try_get(0)?)?.log_id)),
            None => Ok(None),
        }
    }
}

/// Decodes an entry in its on-disk form.
pub(crate) fn decode_entry(blob: &[u8]) -> Result<Entry, DbError> {
    Ok(entry_from_pb(raftpb::Entry::decode(blob)?)?)
}

/// `[start, end)` of a range, an unbounded end meaning `end`.
fn bounds<RB: RangeBounds<u64>>(range: &RB, end: u64) -> Range<u64> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let stop = match range.end_bound() {
        Bound::Included(e) => e.saturating_add(1).min(end),
        Bound::Excluded(e) => (*e).min(end),
        Bound::Unbounded => end,
    };
    start..stop.max(start)
}

/// A read handle on the raft log, for openraft's replication tasks. It
/// sees every entry `LogStore` has accepted, on disk or not yet.
#[derive(Debug, Clone)]
pub struct LogReader {
    shared: Arc<LogShared>,
}

impl LogReader {
    pub(crate) fn new(shared: Arc<LogShared>) -> Self {
        LogReader { shared }
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.shared
            .read(range, None)
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.shared
            .read(start..end, Some(LIMITED_READ_BYTES))
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_clamp_to_the_log() {
        assert_eq!(bounds(&(..), 10), 0..10);
        assert_eq!(bounds(&(3..=4), 10), 3..5);
        assert_eq!(bounds(&(3..20), 10), 3..10);
        assert_eq!(bounds(&(12..), 10), 12..12);
    }
}
