//! The figures of one member, read at scrape time from what it already
//! keeps, and the whole `/metrics` page.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use super::{expose_process, Exposition, GrpcStats};
use crate::raft::leader::Metrics;
use crate::storage::StateReader;
use crate::watch::WatchHub;

/// Counts the leader changes this member sees
/// (`etcd_server_leader_changes_seen_total`), from raft's metrics channel.
#[derive(Debug, Clone, Default)]
pub struct LeaderChanges {
    seen: Arc<AtomicU64>,
}

impl LeaderChanges {
    /// Follows `metrics` until `stopped` turns true.
    pub fn spawn(metrics: Metrics, mut stopped: watch::Receiver<bool>) -> Self {
        let changes = LeaderChanges::default();
        let seen = changes.seen.clone();
        let mut metrics = metrics;
        tokio::spawn(async move {
            let mut leader = None;
            loop {
                let current = metrics.borrow_and_update().current_leader;
                // etcd counts every new leader it learns of, the first too.
                if current.is_some() && current != leader {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                leader = current;
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return },
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        });
        changes
    }

    /// Leader changes seen so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

/// Where one member's figures come from.
#[derive(Clone)]
pub struct MemberMetrics {
    /// Raft's state: leader, term, indexes.
    pub raft: Metrics,
    /// The published state: keys, leases, revision.
    pub state: StateReader,
    /// Open watch streams.
    pub watches: WatchHub,
    /// The data directory, whose files are the database.
    pub data_dir: PathBuf,
    /// gRPC call counts of the client listeners.
    pub grpc: Arc<GrpcStats>,
    /// Leader changes seen.
    pub leader_changes: LeaderChanges,
}

impl MemberMetrics {
    /// The `/metrics` page.
    pub fn render(&self) -> String {
        let mut e = Exposition::default();
        let (has_leader, is_leader, term, last_log, applied) = {
            let m = self.raft.borrow();
            (
                m.current_leader.is_some(),
                m.current_leader == Some(m.id) && m.state == openraft::ServerState::Leader,
                m.current_term,
                m.last_log_index.unwrap_or(0),
                m.last_applied.map_or(0, |id| id.index),
            )
        };
        let bool_value = |b: bool| if b { 1.0 } else { 0.0 };
        e.gauge(
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            bool_value(has_leader),
        );
        e.gauge(
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            bool_value(is_leader),
        );
        e.counter(
            "etcd_server_leader_changes_seen_total",
            "The number of leader changes seen.",
            self.leader_changes.seen() as f64,
        );
        e.gauge(
            "etcd_server_term",
            "The current term of this member.",
            term as f64,
        );
        // openraft's metrics carry the last log index, not the commit
        // index; on a healthy member they differ by the entries in flight.
        e.gauge(
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
            last_log.max(applied) as f64,
        );
        e.gauge(
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
            applied as f64,
        );
        let state = self.state.current();
        e.gauge(
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys.",
            state.kv.len() as f64,
        );
        e.gauge(
            "etcd_debugging_mvcc_current_revision",
            "The current revision of store.",
            state.kv.revision() as f64,
        );
        e.gauge(
            "etcd_debugging_mvcc_compact_revision",
            "The revision of the last compaction in store.",
            state.kv.compact_revision() as f64,
        );
        e.gauge(
            "etcd_debugging_lease_total",
            "The number of leases alive (witan).",
            state.kv.leases().len() as f64,
        );
        e.gauge(
            "etcd_debugging_mvcc_watch_stream_total",
            "Total number of watch streams.",
            self.watches.open_streams() as f64,
        );
        let db_size = dir_size(&self.data_dir) as f64;
        e.gauge(
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            db_size,
        );
        // sqlite's free pages are not tracked yet: in use = allocated.
        e.gauge(
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
            db_size,
        );
        expose_process(&mut e);
        self.grpc.expose(&mut e);
        e.finish()
    }
}

/// Bytes the files directly in `dir` hold (the sqlite databases and their
/// WAL files).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
