//! What a Jepsen-style run records: every client operation with its invoke
//! and completion time and outcome, the lock holds and fenced writes made
//! under them, the events each watch stream delivered, and what the cluster
//! held at the end. The workload fills a [`Recording`]; the checks read it.

use std::collections::BTreeMap;

/// Time since the start of the run, in nanoseconds, on one monotonic clock
/// (every client of a run lives in one process).
pub type Nanos = u64;

/// How an operation ended, as far as its client knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The cluster acknowledged it.
    Ok,
    /// It certainly took no effect (refused before it could be applied, or a
    /// compare that did not hold).
    Fail,
    /// The client gave up without an answer (timeout, connection lost): it
    /// may take effect at any later time, or never.
    Unknown,
}

/// An operation on one register: a key holding an optional `u64`, where every
/// value written to a key during a run is unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp {
    /// A linearizable read; `observed` is meaningful only when the outcome is
    /// [`Outcome::Ok`] (`None`: the key did not exist).
    Read {
        /// The value the read returned.
        observed: Option<u64>,
    },
    /// A put of `value`.
    Write {
        /// The value written.
        value: u64,
    },
    /// A Txn that puts `new` if the key holds `expected` (`None`: if the key
    /// does not exist). Ok means it swapped; Fail means the compare did not
    /// hold (or it was refused), so it took no effect.
    Cas {
        /// The value the compare requires.
        expected: Option<u64>,
        /// The value put when the compare holds.
        new: u64,
    },
}

/// One register operation as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOperation {
    /// The client (logical process) that ran it; a client runs one operation
    /// at a time.
    pub process: usize,
    /// The key.
    pub key: String,
    /// What it did.
    pub op: RegisterOp,
    /// When the client sent it.
    pub invoke: Nanos,
    /// When the client got the answer, or gave up on it (for
    /// [`Outcome::Unknown`], the operation may still take effect later).
    pub complete: Nanos,
    /// How it ended.
    pub outcome: Outcome,
}

/// A write made under a lock: a Txn that puts `(token, seq)` on the shared
/// resource key only if the writer's lock key still exists with
/// `create_revision == token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencedWrite {
    /// The client that made it.
    pub process: usize,
    /// The fencing token of the hold it was made under.
    pub token: i64,
    /// A number unique to this write.
    pub seq: u64,
    /// When the client sent it.
    pub invoke: Nanos,
    /// When the client got the answer or gave up.
    pub complete: Nanos,
    /// Ok: the fence held and the put applied; Fail: the fence refused it.
    pub outcome: Outcome,
}

/// One version of the resource key that fenced writes go to, read back at
/// the end of the run (every version, in revision order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceVersion {
    /// The revision that wrote it.
    pub revision: i64,
    /// The token the write carried.
    pub token: i64,
    /// The write's `seq`.
    pub seq: u64,
}

/// A lock hold as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHold {
    /// The client that held it.
    pub process: usize,
    /// The lease (session) the lock key was attached to.
    pub lease: i64,
    /// The fencing token (the lock key's create revision).
    pub token: i64,
    /// When the acquire returned.
    pub acquired: Nanos,
    /// The earliest of: when the client sent the release, and when the
    /// client's session knew its lease might have expired (its local
    /// deadline passed). Until then the client believed it held the lock.
    pub released: Nanos,
}

/// What a watch event did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A put.
    Put,
    /// A delete.
    Delete,
}

/// One event as a watch stream delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The event's mod revision (a delete's revision for a delete).
    pub revision: i64,
    /// The key.
    pub key: String,
    /// Put or delete.
    pub kind: EventKind,
}

/// Everything one watch delivered, in delivery order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchLog {
    /// The watching client.
    pub process: usize,
    /// The member index the stream was opened on (the SDK may have resumed
    /// it on others).
    pub member: usize,
    /// The first revision the watch asked for.
    pub start_revision: i64,
    /// Every event delivered, in order.
    pub events: Vec<WatchEvent>,
}

/// A whole run, as recorded.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every register operation.
    pub registers: Vec<RegisterOperation>,
    /// For each register key, every version it had (mod revision, value),
    /// read back at the end of the run with no compaction in between.
    pub final_register_versions: BTreeMap<String, Vec<(i64, u64)>>,
    /// Every fenced write.
    pub fenced_writes: Vec<FencedWrite>,
    /// Every version of the fenced resource key, read back at the end.
    pub resource_versions: Vec<ResourceVersion>,
    /// Every lock hold.
    pub lock_holds: Vec<LockHold>,
    /// Every watch stream's deliveries.
    pub watch_logs: Vec<WatchLog>,
    /// The events of the watched range from the smallest start revision on,
    /// read back at the end on a healthy cluster: what every watch log must
    /// match from its own start revision up to its last event.
    pub reference_events: Vec<WatchEvent>,
}
