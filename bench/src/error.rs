//! The errors that end a benchmark run. A failed operation *during* a
//! measured run is not one of these: it is counted in the run's report
//! (see `stats`), because servers failing under load is what a benchmark
//! is there to show. These are the failures that leave nothing to report:
//! bad arguments, an endpoint that never answers, setup that cannot finish.

use std::path::PathBuf;
use std::time::Duration;

use crate::keys::KeyError;

/// Why a run could not be made or finished.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An option's value cannot work.
    #[error("--{option}: {why}")]
    InvalidOption {
        /// The option's long name.
        option: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The key layout asked for does not fit.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// An endpoint is not a usable URL.
    #[error("endpoint {endpoint:?} is not a valid URL: {source}")]
    Endpoint {
        /// The endpoint as given.
        endpoint: String,
        /// The parser's complaint.
        source: tonic::transport::Error,
    },
    /// A connection could not be opened.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint dialled.
        endpoint: String,
        /// The transport's error.
        source: tonic::transport::Error,
    },
    /// An RPC failed where the run cannot go on without it (setup,
    /// preloading, opening a stream).
    #[error("{op}: {source}")]
    Rpc {
        /// The operation, e.g. `preload put`.
        op: &'static str,
        /// The server's status.
        source: tonic::Status,
    },
    /// An RPC took longer than `--timeout`.
    #[error("{op}: no answer within {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The timeout that passed.
        after: Duration,
    },
    /// A server stream ended while the run still needed it.
    #[error("{op}: the server closed the stream")]
    StreamClosed {
        /// The stream's operation, e.g. `watch`.
        op: &'static str,
    },
    /// A response lacked something every etcd v3 server sends.
    #[error("{op}: the response has no {missing}")]
    Incomplete {
        /// The operation.
        op: &'static str,
        /// The missing part.
        missing: &'static str,
    },
    /// A server refused to create a watch.
    #[error("watch on {prefix:?} was not created (canceled: {reason:?})")]
    WatchRefused {
        /// The watched prefix.
        prefix: String,
        /// The server's cancel reason.
        reason: String,
    },
    /// No member named a leader that is one of the endpoints.
    #[error("no endpoint is the leader (members report leader id {leader:#x})")]
    NoLeader {
        /// The leader id the members report (0 when none).
        leader: u64,
    },
    /// The kill-leader command could not be run.
    #[error("cannot run --kill-leader-cmd: {0}")]
    KillCommand(#[source] std::io::Error),
    /// A file given to `compare` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A report could not be appended to `--json-file`.
    #[error("cannot append the report to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line of a results file is not a report.
    #[error("{path}:{line}: not a witan-bench JSON report: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A `compare --row` spec cannot be parsed.
    #[error("--row {spec:?}: {why}")]
    RowSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A client task panicked or was cancelled.
    #[error("a client task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
