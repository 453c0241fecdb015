//! Prometheus metrics, served at `/metrics` on the client port, named as
//! etcd names them so that existing dashboards and alerts work.
//!
//! Most figures are read when scraped from what the member already keeps
//! (raft's metrics channel, the published state, the watch hub, the data
//! directory): see [`MemberMetrics`]. A few need a hook where the event
//! happens: the raft log's fsync, the state writer's commit, apply, the
//! proposer and the watchers record into the process-wide statics below.
//! Those statics are shared by every member in one process (in-process test
//! clusters); a production process runs one member.
//!
//! This module must not import `api` or `gateway`: they call into it.

mod exposition;
mod grpc;
mod histogram;
mod member;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub use exposition::Exposition;
pub use grpc::{CountedBody, GrpcLayer, GrpcMetered, GrpcStats, MeteredBody};
pub use histogram::{Histogram, HistogramSnapshot, Timer};
pub use member::{LeaderChanges, MemberMetrics};

use histogram::{APPLY_BUCKETS, DISK_BUCKETS};

/// Raft log commits, each an fsync (`etcd_disk_wal_fsync_duration_seconds`).
pub static WAL_FSYNC: Histogram<{ DISK_BUCKETS.len() }> = Histogram::new(DISK_BUCKETS);

/// State writer commits (`etcd_disk_backend_commit_duration_seconds`).
pub static BACKEND_COMMIT: Histogram<{ DISK_BUCKETS.len() }> = Histogram::new(DISK_BUCKETS);

/// Applies of committed entries to the state machine
/// (`etcd_server_apply_duration_seconds`).
pub static APPLY: Histogram<{ APPLY_BUCKETS.len() }> = Histogram::new(APPLY_BUCKETS);

/// Proposals waiting for their outcome (`etcd_server_proposals_pending`).
static PROPOSALS_PENDING: AtomicI64 = AtomicI64::new(0);

/// Proposals that failed (`etcd_server_proposals_failed_total`).
static PROPOSALS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Watches open on this process (`etcd_debugging_mvcc_watcher_total`).
static WATCHERS: AtomicI64 = AtomicI64::new(0);

/// Counts a proposal as pending while `proposal` runs, and as failed if it
/// returns an error.
pub async fn proposal<T, E>(
    proposal: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    struct Pending;
    impl Drop for Pending {
        fn drop(&mut self) {
            PROPOSALS_PENDING.fetch_sub(1, Ordering::Relaxed);
        }
    }
    PROPOSALS_PENDING.fetch_add(1, Ordering::Relaxed);
    let _pending = Pending;
    let result = proposal.await;
    if result.is_err() {
        PROPOSALS_FAILED.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Counts one open watch while it lives (a field of the watch).
#[derive(Debug)]
pub struct WatcherGauge(());

impl WatcherGauge {
    /// Counts a new watch.
    pub fn new() -> Self {
        WatcherGauge::default()
    }
}

impl Default for WatcherGauge {
    fn default() -> Self {
        WATCHERS.fetch_add(1, Ordering::Relaxed);
        WatcherGauge(())
    }
}

impl Clone for WatcherGauge {
    fn clone(&self) -> Self {
        WatcherGauge::new()
    }
}

impl Drop for WatcherGauge {
    fn drop(&mut self) {
        WATCHERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes the process-wide families.
fn expose_process(e: &mut Exposition) {
    e.histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        &WAL_FSYNC.snapshot(),
    );
    e.histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        &BACKEND_COMMIT.snapshot(),
    );
    e.histogram(
        "etcd_server_apply_duration_seconds",
        "The latency distributions of v2 apply called by backend.",
        &APPLY.snapshot(),
    );
    e.gauge(
        "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.",
        PROPOSALS_PENDING.load(Ordering::Relaxed) as f64,
    );
    e.counter(
        "etcd_server_proposals_failed_total",
        "The total number of failed proposals seen.",
        PROPOSALS_FAILED.load(Ordering::Relaxed) as f64,
    );
    e.gauge(
        "etcd_debugging_mvcc_watcher_total",
        "Total number of watchers.",
        WATCHERS.load(Ordering::Relaxed) as f64,
    );
    if let Some(rss) = resident_memory_bytes() {
        e.gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
}

/// This process' resident set size, from `/proc/self/statm` (Linux).
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size is 4 KiB on every platform witan runs on with /proc.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn proposals_are_pending_until_done_and_failures_counted() {
        let failed = PROPOSALS_FAILED.load(Ordering::Relaxed);
        let r: Result<(), ()> = proposal(async { Err(()) }).await;
        assert!(r.is_err());
        assert!(PROPOSALS_FAILED.load(Ordering::Relaxed) > failed);
        let ok: Result<u8, ()> = proposal(async { Ok(1) }).await;
        assert_eq!(ok, Ok(1));
    }

    #[test]
    fn watcher_gauges_count_while_alive() {
        let a = WatcherGauge::new();
        let b = a.clone();
        assert!(WATCHERS.load(Ordering::Relaxed) >= 2);
        drop((a, b));
    }
}
