//! `WriteTxn`: one command's writes in progress (etcd's `storeTxnWrite`).
//!
//! Every write of a command goes to a copy of the live map and shares one
//! revision (the state's revision + 1), with sub-revisions in op order.
//! Nothing reaches the `KvState` until `commit`, so a command rejected
//! half-way leaves the state untouched.

use bytes::Bytes;
use witan_proto::mvccpb::KeyValue;

use super::range::Fetch;
use super::record::{LiveMap, Record};
use super::view::{entries, resolve_revision, scan, Past};
use super::{Change, History, KeyRange, KvState, MvccError, RangeAt};

/// The writes of one command, not yet applied to its `KvState`.
pub(super) struct WriteTxn<'a, H> {
    /// The live keys when the command started.
    start: LiveMap,
    /// The revision the command started at.
    begin: i64,
    /// etcd's first readable revision (see `KvState::first_revision`).
    first: i64,
    /// The live keys including this command's writes so far.
    live: LiveMap,
    /// This command's changes so far.
    changes: Vec<Change>,
    /// Earlier changes of the batch, not yet in `history`.
    pending: &'a [Change],
    history: &'a H,
}

impl<'a, H: History> WriteTxn<'a, H> {
    /// Starts a command on `start`.
    pub fn new(start: &KvState, pending: &'a [Change], history: &'a H) -> Self {
        WriteTxn {
            start: start.live().clone(),
            begin: start.revision(),
            first: start.first_revision(),
            live: start.live().clone(),
            changes: Vec::new(),
            pending,
            history,
        }
    }

    /// The revision the command started at.
    pub fn begin(&self) -> i64 {
        self.begin
    }

    /// The revision this command's writes get.
    pub fn write_revision(&self) -> i64 {
        self.begin() + 1
    }

    /// Whether the command changed anything so far.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The revision reads see now: the start revision until the command
    /// changes something, then the write revision.
    pub fn read_revision(&self) -> i64 {
        if self.changed() {
            self.write_revision()
        } else {
            self.begin()
        }
    }

    /// The live key `key`, including this command's writes.
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.live.get(key).map(|record| record.to_kv(key))
    }

    /// The live keys of `range`, including this command's writes.
    pub fn get_range(&self, range: &KeyRange) -> Vec<KeyValue> {
        scan(&self.live, range, 0).kvs
    }

    /// Reads what `fetch` asks for (etcd's `rangeKeys` at the read
    /// revision); returns it with the read revision.
    pub async fn range(&self, fetch: &Fetch) -> Result<(RangeAt, i64), MvccError> {
        let current = self.read_revision();
        let revision = resolve_revision(fetch.revision, current, self.first)?;
        if revision == current {
            return Ok((scan(&self.live, &fetch.range, fetch.limit), current));
        }
        let past = Past {
            live: &self.start,
            revision: self.begin,
            pending: self.pending,
            history: self.history,
        };
        let got = past.range(&fetch.range, revision, fetch.limit).await?;
        Ok((got, current))
    }

    /// Puts `key`: a new key starts at version 1, an existing one keeps
    /// its create revision. Returns the write revision.
    pub fn put(&mut self, key: &[u8], value: Bytes, lease: i64) -> i64 {
        let revision = self.write_revision();
        let prev = self.live.get(key);
        let record = Record {
            create_revision: prev.map_or(revision, |p| p.create_revision),
            mod_revision: revision,
            version: prev.map_or(1, |p| p.version + 1),
            lease,
            value,
        };
        let change = Change {
            kv: record.to_kv(key),
            sub: self.next_sub(),
            deleted: false,
            prev: prev.map(|p| p.to_kv(key)),
        };
        self.live.insert(Bytes::copy_from_slice(key), record);
        self.changes.push(change);
        revision
    }

    /// Deletes the live keys of `range`; returns how many, and the header
    /// revision etcd reports: the write revision if this command changed
    /// anything so far, the start revision otherwise.
    pub fn delete_range(&mut self, range: &KeyRange) -> (i64, i64) {
        let revision = self.write_revision();
        let doomed: Vec<(Bytes, Record)> = entries(&self.live, range)
            .map(|(key, record)| (key.clone(), record.clone()))
            .collect();
        for (key, record) in &doomed {
            let change = Change {
                kv: KeyValue {
                    key: key.to_vec(),
                    mod_revision: revision,
                    ..KeyValue::default()
                },
                sub: self.next_sub(),
                deleted: true,
                prev: Some(record.to_kv(key)),
            };
            self.live.remove(key.as_ref());
            self.changes.push(change);
        }
        let deleted = i64::try_from(doomed.len()).unwrap_or(i64::MAX);
        (deleted, self.read_revision())
    }

    /// Ends the command, releasing the batch's pending changes so that the
    /// writes can be committed.
    pub fn finish(self) -> Writes {
        Writes {
            revision: self.write_revision(),
            live: self.live,
            changes: self.changes,
        }
    }

    fn next_sub(&self) -> i64 {
        i64::try_from(self.changes.len()).unwrap_or(i64::MAX)
    }
}

/// The writes of a finished command, ready to commit.
pub(super) struct Writes {
    revision: i64,
    live: LiveMap,
    changes: Vec<Change>,
}

impl Writes {
    /// Applies the writes to `state` (which must be the state the command
    /// started from) and appends the changes to `changes`. A command that
    /// changed nothing leaves the revision alone.
    pub fn commit(self, state: &mut KvState, changes: &mut Vec<Change>) {
        if self.changes.is_empty() {
            return;
        }
        state.install(self.live, self.revision, &self.changes);
        changes.extend(self.changes);
    }
}
