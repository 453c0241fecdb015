//! Test helpers: an in-memory `History` (every change, in order) and a
//! driver that applies commands the way the storage layer will.

use std::sync::atomic::{AtomicUsize, Ordering};

use witan_proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse,
};
use witan_proto::mvccpb::KeyValue;
use witan_proto::raftpb::apply_error::Kind;
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::{Command, CommandResponse};

use super::{Change, History, HistoryError, KeyRange, KvState, MvccError, RangeAt};

/// Every persisted change, oldest first. Reads below `floor` (what a
/// compaction removed) fail, so tests notice a read the compaction check
/// should have stopped.
#[derive(Debug, Default)]
pub struct MemHistory {
    changes: Vec<Change>,
    floor: i64,
    reads: AtomicUsize,
}

impl MemHistory {
    /// Persists a batch's changes.
    pub fn persist(&mut self, changes: &[Change]) {
        self.changes.extend_from_slice(changes);
    }

    /// Forgets what a compaction at `revision` makes unreadable.
    pub fn compact(&mut self, revision: i64) {
        self.floor = self.floor.max(revision);
    }

    /// How many times `range_at` was called.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

impl History for MemHistory {
    async fn range_at(
        &self,
        range: &KeyRange,
        revision: i64,
        limit: usize,
    ) -> Result<RangeAt, HistoryError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if revision < self.floor {
            return Err(HistoryError(
                format!(
                    "revision {revision} is below the compacted floor {}",
                    self.floor
                )
                .into(),
            ));
        }
        let mut latest = std::collections::BTreeMap::<Vec<u8>, Option<KeyValue>>::new();
        for change in &self.changes {
            if change.kv.mod_revision > revision || !range.contains(&change.kv.key) {
                continue;
            }
            let kv = (!change.deleted).then(|| change.kv.clone());
            latest.insert(change.kv.key.clone(), kv);
        }
        let live: Vec<KeyValue> = latest.into_values().flatten().collect();
        let count = live.len() as i64;
        let kvs = if limit > 0 {
            live.into_iter().take(limit).collect()
        } else {
            live
        };
        Ok(RangeAt { kvs, count })
    }
}

/// A history whose every read fails.
pub struct BrokenHistory;

impl History for BrokenHistory {
    async fn range_at(
        &self,
        _range: &KeyRange,
        _revision: i64,
        _limit: usize,
    ) -> Result<RangeAt, HistoryError> {
        Err(HistoryError("disk on fire".into()))
    }
}

/// A store and its history, applying commands one batch at a time.
#[derive(Debug, Default)]
pub struct Store {
    pub state: KvState,
    pub history: MemHistory,
}

impl Store {
    /// Applies one command as a batch of one, and persists its changes.
    pub async fn apply(&mut self, cmd: Command) -> CommandResponse {
        let mut responses = self.apply_batch(vec![cmd]).await;
        responses.remove(0)
    }

    /// Applies commands as one batch (history persisted only at the end).
    pub async fn apply_batch(&mut self, cmds: Vec<Command>) -> Vec<CommandResponse> {
        let mut changes = Vec::new();
        let mut responses = Vec::new();
        for cmd in &cmds {
            let resp = self
                .state
                .apply(cmd, &self.history, &mut changes)
                .await
                .unwrap();
            responses.push(resp);
        }
        self.history.persist(&changes);
        if self.state.compact_revision() > 0 {
            self.history.compact(self.state.compact_revision());
        }
        responses
    }

    /// A Range outside a txn.
    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse, MvccError> {
        self.state.range(&req, &self.history).await
    }

    /// Puts `key = value`.
    pub async fn put(&mut self, key: &str, value: &str) -> CommandResponse {
        self.apply(put(key, value)).await
    }
}

/// A Put command.
pub fn put(key: &str, value: &str) -> Command {
    put_req(PutRequest {
        key: key.into(),
        value: value.into(),
        ..PutRequest::default()
    })
}

/// A Put command from a request.
pub fn put_req(req: PutRequest) -> Command {
    Command {
        op: Some(Op::Put(req)),
        ..Default::default()
    }
}

/// A DeleteRange command.
pub fn delete(key: &str, range_end: &str, prev_kv: bool) -> Command {
    Command {
        op: Some(Op::DeleteRange(DeleteRangeRequest {
            key: key.into(),
            range_end: range_end.into(),
            prev_kv,
        })),
        ..Default::default()
    }
}

/// A Txn command.
pub fn txn(req: TxnRequest) -> Command {
    Command {
        op: Some(Op::Txn(req)),
        ..Default::default()
    }
}

/// A Compact command.
pub fn compact(revision: i64) -> Command {
    Command {
        op: Some(Op::Compact(CompactionRequest {
            revision,
            physical: false,
        })),
        ..Default::default()
    }
}

/// A Range request over `[key, range_end)`.
pub fn range(key: &str, range_end: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        ..RangeRequest::default()
    }
}

/// A key-value as the store reports it.
pub fn kv(key: &str, value: &str, create: i64, modified: i64, version: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: modified,
        version,
        value: value.into(),
        lease: 0,
    }
}

/// The keys of a range response, as strings.
pub fn keys(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

/// The Put response in `resp` (panics otherwise).
pub fn put_resp(resp: CommandResponse) -> PutResponse {
    match resp.result {
        Some(Outcome::Put(put)) => put,
        other => panic!("expected a put response, got {other:?}"),
    }
}

/// The DeleteRange response in `resp` (panics otherwise).
pub fn delete_resp(resp: CommandResponse) -> DeleteRangeResponse {
    match resp.result {
        Some(Outcome::DeleteRange(delete)) => delete,
        other => panic!("expected a delete response, got {other:?}"),
    }
}

/// The Txn response in `resp` (panics otherwise).
pub fn txn_resp(resp: CommandResponse) -> TxnResponse {
    match resp.result {
        Some(Outcome::Txn(txn)) => txn,
        other => panic!("expected a txn response, got {other:?}"),
    }
}

/// The Compact response in `resp` (panics otherwise).
pub fn compact_resp(resp: CommandResponse) -> CompactionResponse {
    match resp.result {
        Some(Outcome::Compact(compact)) => compact,
        other => panic!("expected a compact response, got {other:?}"),
    }
}

/// The rejection in `resp`, if it is one.
pub fn rejection(resp: &CommandResponse) -> Option<Kind> {
    match &resp.result {
        Some(Outcome::Error(err)) => Some(Kind::try_from(err.kind).unwrap()),
        _ => None,
    }
}

/// The header revision of a response.
pub fn rev<T: HasHeader>(resp: &T) -> i64 {
    resp.header_revision()
}

/// Responses that carry an etcd response header.
pub trait HasHeader {
    /// The revision in the header (panics without a header).
    fn header_revision(&self) -> i64;
}

macro_rules! has_header {
    ($($t:ty),*) => {$(
        impl HasHeader for $t {
            fn header_revision(&self) -> i64 {
                self.header.as_ref().expect("a response header").revision
            }
        }
    )*};
}

has_header!(
    PutResponse,
    DeleteRangeResponse,
    TxnResponse,
    CompactionResponse,
    RangeResponse
);
