//! Reading the keys of a range as of a revision: etcd's `rangeKeys` checks,
//! a scan of the live map, and `Past`, which answers for older revisions
//! from the live map, the changes not yet in the history, or the history.

use std::ops::Bound;

use bytes::Bytes;

use super::record::{LiveMap, Record};
use super::{Change, History, HistoryError, KeyRange, MvccError, RangeAt};

/// Resolves the revision a read asks for against the revision it reads at
/// (`current`) and etcd's first readable revision (`first`: the compaction
/// revision, -1 before any compaction), in etcd's order: a future revision
/// is checked before `<= 0` means current, which is checked before
/// compaction (so `<= 0` never fails as compacted).
pub(super) fn resolve_revision(requested: i64, current: i64, first: i64) -> Result<i64, MvccError> {
    if requested > current {
        return Err(MvccError::FutureRevision);
    }
    let revision = if requested <= 0 { current } else { requested };
    if revision < first {
        return Err(MvccError::Compacted);
    }
    Ok(revision)
}

/// The entries of `map` in `range`, in key order.
pub(super) fn entries<'m>(
    map: &'m LiveMap,
    range: &'m KeyRange,
) -> impl Iterator<Item = (&'m Bytes, &'m Record)> + 'm {
    let bounds: (Bound<&[u8]>, Bound<&[u8]>) = match range {
        KeyRange::Key(key) => (Bound::Included(key), Bound::Included(key)),
        KeyRange::From(start) => (Bound::Included(start), Bound::Unbounded),
        KeyRange::Between(start, end) if end > start => {
            (Bound::Included(start), Bound::Excluded(end))
        }
        // An empty range: etcd returns nothing when end <= start.
        KeyRange::Between(start, _) => (Bound::Included(start), Bound::Excluded(start)),
    };
    map.range::<_, [u8]>(bounds)
        .filter(move |(key, _)| range.contains(key))
}

/// The live keys of `range` in `map`: at most `limit` of them when
/// `limit > 0`, and how many there are in total.
pub(super) fn scan(map: &LiveMap, range: &KeyRange, limit: usize) -> RangeAt {
    let mut kvs = Vec::new();
    let mut count = 0i64;
    for (key, record) in entries(map, range) {
        if limit == 0 || kvs.len() < limit {
            kvs.push(record.to_kv(key));
        }
        count += 1;
    }
    RangeAt { kvs, count }
}

/// The store as of one revision (`revision`, whose live keys are `live`)
/// and every revision before it.
pub(super) struct Past<'a, H> {
    /// The live keys at `revision`.
    pub live: &'a LiveMap,
    /// The revision `live` is at.
    pub revision: i64,
    /// The changes that are in `live` but not yet in the history, oldest
    /// first (earlier commands of the batch being applied).
    pub pending: &'a [Change],
    /// Every change older than the first of `pending`.
    pub history: &'a H,
}

impl<H: History> Past<'_, H> {
    /// The live keys of `range` as of `revision` (`<= self.revision`, not
    /// compacted), at most `limit` of them when `limit > 0`.
    pub async fn range(
        &self,
        range: &KeyRange,
        revision: i64,
        limit: usize,
    ) -> Result<RangeAt, HistoryError> {
        if revision >= self.revision {
            return Ok(scan(self.live, range, limit));
        }
        match self.pending.first() {
            // The history has everything before the first pending change;
            // anything newer is rebuilt from memory by undoing the pending
            // changes made after `revision`, which `Change::prev` allows.
            Some(first) if revision >= first.kv.mod_revision - 1 => {
                Ok(scan(&self.rolled_back(range, revision), range, limit))
            }
            _ => self.history.range_at(range, revision, limit).await,
        }
    }

    /// `live` with the pending changes newer than `revision` undone, for
    /// the keys of `range` only.
    fn rolled_back(&self, range: &KeyRange, revision: i64) -> LiveMap {
        let mut map = self.live.clone();
        let newer = self
            .pending
            .iter()
            .rev()
            .take_while(|change| change.kv.mod_revision > revision);
        for change in newer {
            if !range.contains(&change.kv.key) {
                continue;
            }
            match &change.prev {
                Some(prev) => {
                    let (key, record) = Record::from_kv(prev.clone());
                    map.insert(key, record);
                }
                None => {
                    map.remove(change.kv.key.as_slice());
                }
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> LiveMap {
        keys.iter()
            .map(|k| {
                let record = Record {
                    create_revision: 2,
                    mod_revision: 2,
                    version: 1,
                    lease: 0,
                    value: Bytes::from_static(b"v"),
                };
                (Bytes::copy_from_slice(k.as_bytes()), record)
            })
            .collect()
    }

    fn keys(map: &LiveMap, range: KeyRange) -> Vec<String> {
        entries(map, &range)
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn entries_follow_etcd_ranges() {
        let m = map(&["\0", "a", "a/1", "a/2", "b", "c"]);
        assert_eq!(keys(&m, KeyRange::new(b"a", b"")), ["a"]);
        assert_eq!(keys(&m, KeyRange::new(b"x", b"")), Vec::<String>::new());
        assert_eq!(keys(&m, KeyRange::new(b"a/", b"a0")), ["a/1", "a/2"]);
        assert_eq!(keys(&m, KeyRange::new(b"b", b"\0")), ["b", "c"]);
        assert_eq!(
            keys(&m, KeyRange::new(b"\0", b"\0")),
            ["\0", "a", "a/1", "a/2", "b", "c"]
        );
        // end <= start is empty, never a panic.
        assert_eq!(keys(&m, KeyRange::new(b"c", b"a")), Vec::<String>::new());
        assert_eq!(keys(&m, KeyRange::new(b"b", b"b")), Vec::<String>::new());
        assert_eq!(
            keys(&LiveMap::new(), KeyRange::new(b"a", b"z")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn scan_limits_but_counts_all() {
        let m = map(&["a", "b", "c", "d"]);
        let got = scan(&m, &KeyRange::new(b"a", b"\0"), 2);
        assert_eq!(got.count, 4);
        assert_eq!(got.kvs.len(), 2);
        assert_eq!(got.kvs[1].key, b"b");
        assert_eq!(scan(&m, &KeyRange::new(b"a", b"\0"), 0).kvs.len(), 4);
    }

    #[test]
    fn resolve_revision_follows_etcd_order() {
        assert!(matches!(
            resolve_revision(6, 5, -1),
            Err(MvccError::FutureRevision)
        ));
        assert_eq!(resolve_revision(0, 5, 3).ok(), Some(5));
        assert_eq!(resolve_revision(-7, 5, 5).ok(), Some(5));
        assert_eq!(resolve_revision(3, 5, 3).ok(), Some(3));
        assert!(matches!(
            resolve_revision(2, 5, 3),
            Err(MvccError::Compacted)
        ));
    }
}
