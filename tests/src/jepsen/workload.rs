//! What every client task of a run shares: the key layout, the run's clock,
//! the stop signal, unique process ids and values, connecting a client that
//! prefers one member, and what a failed write's error says about its
//! outcome.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use witan_client::{Client, ClientOptions, Error};

use super::clock::RunClock;
use super::history::Outcome;

/// Every key a run touches starts with this (watches watch all of it).
pub const PREFIX: &str = "jepsen/";
/// The register keys: `jepsen/reg/<n>`.
pub const REGISTER_PREFIX: &str = "jepsen/reg/";
/// The lock the lock clients contend on (holder keys below it).
pub const LOCK_NAME: &str = "jepsen/lock";
/// The resource key the fenced writes go to.
pub const RESOURCE_KEY: &str = "jepsen/resource";
/// Written once after the run: every watch reads up to it.
pub const END_KEY: &str = "jepsen/zz-end";

/// The register key `n`.
pub fn register_key(n: usize) -> String {
    format!("{REGISTER_PREFIX}{n}")
}

/// What the client tasks of one run share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The run's clock.
    pub clock: RunClock,
    /// Every member's client URL, by member index.
    pub endpoints: Vec<String>,
    /// The deadline of one operation; past it, a write's outcome is
    /// unknown.
    pub op_timeout: Duration,
    stop: watch::Receiver<bool>,
    processes: Arc<AtomicUsize>,
    values: Arc<AtomicU64>,
}

impl Shared {
    /// State for a run's clients, and the sender that stops them.
    pub fn new(
        clock: RunClock,
        endpoints: Vec<String>,
        op_timeout: Duration,
    ) -> (Shared, watch::Sender<bool>) {
        let (stop_tx, stop) = watch::channel(false);
        let shared = Shared {
            clock,
            endpoints,
            op_timeout,
            stop,
            processes: Arc::default(),
            // Values start at 1 so a stray 0 is never mistaken for a write.
            values: Arc::new(AtomicU64::new(1)),
        };
        (shared, stop_tx)
    }

    /// A process id never used before in the run. A client takes a new one
    /// after an operation with an unknown outcome, which may still be in
    /// flight (as Jepsen does: a process runs one operation at a time).
    pub fn new_process(&self) -> usize {
        self.processes.fetch_add(1, Ordering::Relaxed)
    }

    /// A number never used before in the run (register values, fenced
    /// write sequence numbers).
    pub fn unique(&self) -> u64 {
        self.values.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the workload should stop.
    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the workload should stop.
    pub async fn until_stopped(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone: stop too.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Waits `pause`, or less if the workload stops first. Pacing between
    /// operations, never a wait for a condition.
    pub async fn pace(&self, pause: Duration) {
        if pause.is_zero() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.until_stopped() => {}
        }
    }

    /// A client that talks to member `preferred` first and fails over to
    /// the others in order, with the run's short deadlines.
    pub async fn connect(&self, preferred: usize) -> Result<Client> {
        connect_rotated(&self.endpoints, preferred, self.op_timeout).await
    }
}

/// A client over `endpoints`, starting with `preferred`, with `timeout` per
/// call and quick detection of dead connections.
pub async fn connect_rotated(
    endpoints: &[String],
    preferred: usize,
    timeout: Duration,
) -> Result<Client> {
    let mut rotated = endpoints.to_vec();
    rotated.rotate_left(preferred % endpoints.len().max(1));
    let options = ClientOptions::default()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(timeout)
        .keep_alive(Duration::from_secs(1), Duration::from_secs(1));
    Client::connect(rotated, options)
        .await
        .with_context(|| format!("connecting to {endpoints:?}"))
}

/// What a write's error says about whether it took effect. Only errors the
/// SDK reports for a call that certainly changed nothing are failures;
/// everything else may have been applied.
pub fn write_outcome(err: &Error) -> Outcome {
    match err {
        Error::Unavailable { .. } | Error::Timeout => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_that_changed_nothing_fail() {
        let unavailable = Error::Unavailable {
            message: "no leader".into(),
        };
        assert_eq!(write_outcome(&unavailable), Outcome::Fail);
        assert_eq!(write_outcome(&Error::Timeout), Outcome::Fail);
        let unknown = Error::OutcomeUnknown {
            message: "connection reset".into(),
        };
        assert_eq!(write_outcome(&unknown), Outcome::Unknown);
        assert_eq!(write_outcome(&Error::LeaseNotFound), Outcome::Unknown);
    }

    #[tokio::test]
    async fn processes_and_values_are_never_reused() {
        let (shared, stop) = Shared::new(RunClock::start(), vec![], Duration::from_secs(1));
        let other = shared.clone();
        assert_ne!(shared.new_process(), other.new_process());
        let first = shared.unique();
        assert!(first >= 1);
        assert_ne!(first, other.unique());
        assert!(!shared.stopped());
        stop.send(true).unwrap();
        assert!(other.stopped());
        other.until_stopped().await;
    }
}
