//! The KV core the recipes run on: the few calls they need (range, txn,
//! watch, leases), implemented by the server over its local member and by
//! the SDK over the network.

use std::future::Future;
use std::pin::Pin;

use futures::Stream;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use witan_proto::mvccpb::Event;

/// Why a call into the core failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The revision asked for was compacted away.
    #[error(
        "required revision {revision} has been compacted (compact revision {compact_revision})"
    )]
    Compacted {
        /// The revision asked for.
        revision: i64,
        /// The store's compaction revision.
        compact_revision: i64,
    },
    /// The lease does not exist (never granted, revoked or expired).
    #[error("requested lease not found")]
    LeaseNotFound,
    /// The core cannot serve the call now (no leader, member stopping,
    /// connection lost). Whether a write took effect is unknown unless
    /// the implementation knows it did not.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call's deadline passed; whether a write took effect is unknown.
    #[error("deadline exceeded: {0}")]
    Timeout(String),
    /// The core refused the request as malformed (a bug in the recipe, or
    /// bad input passed through it).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Anything else (the message says what).
    #[error("{0}")]
    Other(String),
}

/// One batch of watch events: every event of one or more whole revisions,
/// in order.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchBatch {
    /// The revision of the store when the batch was sent.
    pub revision: i64,
    /// The events, in revision (then sub-revision) order.
    pub events: Vec<Event>,
}

/// A watch: batches of events in order, each event exactly once. It ends
/// with an error when the core cannot go on (a compacted start revision is
/// [`CoreError::Compacted`]); dropping it cancels the watch.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<WatchBatch, CoreError>> + Send>>;

/// What a lease grant gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease id.
    pub id: i64,
    /// The TTL granted, in seconds (the server may raise the one asked for).
    pub ttl: i64,
}

/// The KV core: every recipe is written against this trait only.
///
/// Reads are linearizable unless the request asks otherwise; a watch
/// delivers every event of its range from its start revision on.
pub trait KvCore: Clone + Send + Sync + 'static {
    /// An etcd Range.
    fn range(
        &self,
        request: RangeRequest,
    ) -> impl Future<Output = Result<RangeResponse, CoreError>> + Send;

    /// An etcd Txn.
    fn txn(
        &self,
        request: TxnRequest,
    ) -> impl Future<Output = Result<TxnResponse, CoreError>> + Send;

    /// Watches `[key, range_end)` (etcd's range_end rules) from
    /// `start_revision` (0: from the next revision). Resolves once the
    /// watch is established, so an event at a revision after the caller's
    /// last read is never missed when `start_revision` is that read's
    /// revision + 1.
    fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> impl Future<Output = Result<EventStream, CoreError>> + Send;

    /// Grants a lease of `ttl` seconds (id 0: the server picks one).
    fn lease_grant(
        &self,
        ttl: i64,
        id: i64,
    ) -> impl Future<Output = Result<Lease, CoreError>> + Send;

    /// Revokes a lease, deleting its keys.
    fn lease_revoke(&self, id: i64) -> impl Future<Output = Result<(), CoreError>> + Send;

    /// Renews a lease once; returns its TTL from now, or
    /// [`CoreError::LeaseNotFound`].
    fn lease_keep_alive(&self, id: i64) -> impl Future<Output = Result<i64, CoreError>> + Send;

    /// The seconds a lease has left, or [`CoreError::LeaseNotFound`].
    fn lease_time_to_live(&self, id: i64) -> impl Future<Output = Result<i64, CoreError>> + Send;
}
