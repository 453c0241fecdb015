//! `LogCache`: the in-memory tail of the raft log and the log's bounds.
//!
//! Invariant: every entry with index `>= start` that exists in the log is in
//! `entries` (contiguous, `entries[i]` has index `start + i`); every entry
//! below `start` is committed to sqlite. Appends enter the cache before they
//! reach the disk, so readers see them at once; the front is evicted (to
//! keep the cache bounded) only once the background writer has committed it,
//! which is tracked by the sequence number of the append that wrote each
//! entry: an index alone is not enough, since a truncate can replace an
//! entry by another with the same index that is not on disk yet.

use std::collections::VecDeque;
use std::ops::Range;

use crate::raft::{Entry, LogId};

use super::error::DbError;

/// How much of the log tail is kept in memory once it is on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheLimits {
    /// At most this many entries ...
    pub entries: usize,
    /// ... and at most this many bytes (protobuf size).
    pub bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        // Enough for a follower a few seconds behind at a high write rate,
        // small next to the state machine's memory.
        CacheLimits {
            entries: 4096,
            bytes: 32 << 20,
        }
    }
}

#[derive(Debug)]
struct Cached {
    entry: Entry,
    /// Encoded size, counted against the byte limit.
    size: usize,
    /// The append operation that wrote it.
    seq: u64,
}

/// The log tail in memory plus the log's bounds.
#[derive(Debug)]
pub(crate) struct LogCache {
    start: u64,
    entries: VecDeque<Cached>,
    bytes: usize,
    limits: CacheLimits,
    last_purged: Option<LogId>,
    last_log_id: Option<LogId>,
    flushed_seq: u64,
}

/// What a read must take from where: entries below `disk.end` from sqlite,
/// the rest (already copied) from memory.
#[derive(Debug)]
pub(crate) struct ReadPlan {
    /// Indexes to read from sqlite (empty when everything is cached).
    pub disk: Range<u64>,
    /// The cached entries of the range, in order.
    pub cached: Vec<Entry>,
}

impl LogCache {
    /// An empty cache over a log whose stored entries end at `last_log_id`
    /// (all of them on disk).
    pub fn new(
        limits: CacheLimits,
        last_purged: Option<LogId>,
        last_log_id: Option<LogId>,
    ) -> Self {
        LogCache {
            start: last_log_id.map_or(0, |id| id.index + 1),
            entries: VecDeque::new(),
            bytes: 0,
            limits,
            last_purged,
            last_log_id,
            flushed_seq: 0,
        }
    }

    /// The last purged log id.
    pub fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// The last log id (the last entry's, or the last purged one when the
    /// log is empty).
    pub fn last_log_id(&self) -> Option<LogId> {
        self.last_log_id
    }

    /// The first index served from memory; lower ones are on disk.
    #[cfg(test)]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Number of cached entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds entries written by append operation `seq`. They must continue
    /// the log.
    pub fn append(&mut self, entries: Vec<(Entry, usize)>, seq: u64) -> Result<(), DbError> {
        let mut last = self.last_log_id.map(|id| id.index);
        for (entry, _) in &entries {
            // An empty log (never purged) may start anywhere: openraft's
            // conformance suite starts logs at 1.
            if last.is_some_and(|l| entry.log_id.index != l + 1) {
                return Err(DbError::NotContiguous {
                    got: entry.log_id.index,
                    last,
                });
            }
            last = Some(entry.log_id.index);
        }
        if self.last_log_id.is_none() {
            if let Some((first, _)) = entries.first() {
                self.start = first.log_id.index;
            }
        }
        for (entry, size) in entries {
            self.last_log_id = Some(entry.log_id);
            self.bytes += size;
            self.entries.push_back(Cached { entry, size, seq });
        }
        self.evict();
        Ok(())
    }

    /// Removes every entry with index `>= index`. Returns `Some(index)`
    /// when the new last entry is not in memory: the caller finds the last
    /// entry below `index` on disk (or, when there is none, the last purged
    /// id) and calls [`Self::set_last_log_id`].
    pub fn truncate(&mut self, index: u64) -> Option<u64> {
        if self.last_log_id.is_none_or(|last| index > last.index) {
            return None;
        }
        if index >= self.start {
            let keep = usize::try_from(index - self.start).unwrap_or(usize::MAX);
            while self.entries.len() > keep {
                if let Some(dropped) = self.entries.pop_back() {
                    self.bytes -= dropped.size;
                }
            }
        } else {
            self.entries.clear();
            self.bytes = 0;
            self.start = index;
        }
        if let Some(last) = self.entries.back() {
            self.last_log_id = Some(last.entry.log_id);
            return None;
        }
        match (index.checked_sub(1), self.last_purged) {
            (None, _) => {
                self.last_log_id = None;
                None
            }
            (Some(prev), Some(purged)) if purged.index >= prev => {
                self.last_log_id = Some(purged);
                None
            }
            (Some(_), _) => Some(index),
        }
    }

    /// Sets the last log id after a truncate that emptied the cache.
    pub fn set_last_log_id(&mut self, id: Option<LogId>) {
        self.last_log_id = id;
    }

    /// Forgets every entry up to and including `upto`.
    pub fn purge(&mut self, upto: LogId) {
        while self
            .entries
            .front()
            .is_some_and(|c| c.entry.log_id.index <= upto.index)
        {
            if let Some(dropped) = self.entries.pop_front() {
                self.bytes -= dropped.size;
            }
        }
        self.start = self.start.max(upto.index + 1);
        if self.last_purged.is_none_or(|p| p < upto) {
            self.last_purged = Some(upto);
        }
        if self.last_log_id.is_none_or(|l| l < upto) {
            self.last_log_id = Some(upto);
        }
    }

    /// Records that every append up to `seq` is committed to disk, which
    /// lets their entries be evicted.
    pub fn flushed(&mut self, seq: u64) {
        self.flushed_seq = self.flushed_seq.max(seq);
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > self.limits.entries || self.bytes > self.limits.bytes {
            match self.entries.front() {
                Some(front) if front.seq <= self.flushed_seq => {
                    self.bytes -= front.size;
                    self.entries.pop_front();
                    self.start += 1;
                }
                _ => break,
            }
        }
    }

    /// Splits a read of `range` into its disk part and copies its cached
    /// part. `max_bytes` bounds the cached part (at least one entry is
    /// returned when any is in range).
    pub fn plan(&self, range: Range<u64>, max_bytes: Option<usize>) -> ReadPlan {
        // Purged entries may linger on disk until the writer gets to them.
        let first = self.last_purged.map_or(0, |p| p.index + 1);
        let range = range.start.max(first)..range.end;
        let disk = range.start..range.end.min(self.start);
        let mut cached = Vec::new();
        let from = range.start.max(self.start);
        if from < range.end {
            let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
            let mut bytes = 0usize;
            for c in self.entries.iter().skip(skip) {
                if c.entry.log_id.index >= range.end {
                    break;
                }
                bytes += c.size;
                if !cached.is_empty() && max_bytes.is_some_and(|max| bytes > max) {
                    break;
                }
                cached.push(c.entry.clone());
            }
        }
        ReadPlan {
            disk: if disk.start < disk.end { disk } else { 0..0 },
            cached,
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::testing::log_id;

    use super::*;

    fn blank(term: u64, index: u64) -> (Entry, usize) {
        (Entry::new_blank(log_id(term, 1, index)), 10)
    }

    fn indexes(plan: &ReadPlan) -> Vec<u64> {
        plan.cached.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn evicts_only_flushed_entries() {
        let limits = CacheLimits {
            entries: 3,
            bytes: 1 << 20,
        };
        let mut cache = LogCache::new(limits, None, None);
        cache
            .append((0..5).map(|i| blank(1, i)).collect(), 1)
            .unwrap();
        assert_eq!(cache.len(), 5, "nothing is on disk yet");
        cache.flushed(1);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.start(), 2);
        let plan = cache.plan(0..5, None);
        assert_eq!(plan.disk, 0..2);
        assert_eq!(indexes(&plan), vec![2, 3, 4]);
    }

    #[test]
    fn an_empty_log_may_start_anywhere() {
        let mut cache = LogCache::new(CacheLimits::default(), None, None);
        cache.append(vec![blank(1, 3), blank(1, 4)], 1).unwrap();
        assert_eq!(indexes(&cache.plan(0..10, None)), vec![3, 4]);
    }

    #[test]
    fn rejects_holes() {
        let mut cache = LogCache::new(CacheLimits::default(), None, Some(log_id(1, 1, 4)));
        assert!(matches!(
            cache.append(vec![blank(1, 6)], 1),
            Err(DbError::NotContiguous {
                got: 6,
                last: Some(4)
            })
        ));
        cache.append(vec![blank(1, 5)], 1).unwrap();
    }

    #[test]
    fn truncate_then_append_replaces_unflushed_tail() {
        let limits = CacheLimits {
            entries: 2,
            bytes: 1 << 20,
        };
        let mut cache = LogCache::new(limits, None, None);
        cache
            .append((0..4).map(|i| blank(1, i)).collect(), 1)
            .unwrap();
        assert_eq!(cache.truncate(2), None);
        assert_eq!(cache.last_log_id(), Some(log_id(1, 1, 1)));
        cache.append(vec![blank(2, 2), blank(2, 3)], 2).unwrap();
        // The first append reached the disk, the second did not: the
        // term-2 entries must stay in memory.
        cache.flushed(1);
        let plan = cache.plan(0..4, None);
        assert_eq!(plan.disk, 0..2);
        assert!(plan.cached.iter().all(|e| e.log_id.leader_id.term == 2));
    }

    #[test]
    fn truncate_below_cache_asks_for_disk_lookup() {
        let limits = CacheLimits {
            entries: 1,
            bytes: 1 << 20,
        };
        let mut cache = LogCache::new(limits, None, None);
        cache
            .append((0..5).map(|i| blank(1, i)).collect(), 1)
            .unwrap();
        cache.flushed(1);
        assert_eq!(cache.start(), 4);
        assert_eq!(cache.truncate(2), Some(2));
        assert_eq!(cache.start(), 2);
        assert!(cache.plan(2..5, None).cached.is_empty());
        assert_eq!(cache.plan(0..5, None).disk, 0..2);
        assert_eq!(cache.truncate(0), None);
        assert_eq!(cache.last_log_id(), None);
    }

    #[test]
    fn purge_moves_bounds() {
        let mut cache = LogCache::new(CacheLimits::default(), None, None);
        cache
            .append((0..5).map(|i| blank(1, i)).collect(), 1)
            .unwrap();
        cache.purge(log_id(1, 1, 2));
        assert_eq!(cache.start(), 3);
        assert_eq!(cache.last_purged(), Some(log_id(1, 1, 2)));
        assert_eq!(indexes(&cache.plan(0..10, None)), vec![3, 4]);
        // Purging past the end (after installing a snapshot) empties the
        // log; the next append continues after the purged id.
        cache.purge(log_id(3, 1, 9));
        assert_eq!(cache.last_log_id(), Some(log_id(3, 1, 9)));
        cache.append(vec![blank(3, 10)], 2).unwrap();
        assert_eq!(indexes(&cache.plan(0..20, None)), vec![10]);
    }

    #[test]
    fn plan_respects_byte_limit_but_returns_one_entry() {
        let mut cache = LogCache::new(CacheLimits::default(), None, None);
        cache
            .append((0..5).map(|i| blank(1, i)).collect(), 1)
            .unwrap();
        assert_eq!(indexes(&cache.plan(1..5, Some(25))), vec![1, 2]);
        assert_eq!(indexes(&cache.plan(1..5, Some(1))), vec![1]);
    }
}
