//! What can go wrong in a command, each error saying which endpoint, what
//! failed and, where there is one, what to do about it. Every error ends
//! the command with exit status 1 (as etcdctl), printed as `Error: ...`.

use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No connection could be made to an endpoint.
    #[error("cannot reach {endpoint}: {reason} — is a member running there? check --endpoints")]
    Unreachable {
        /// The endpoint as given.
        endpoint: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// An endpoint is not a valid URL.
    #[error("invalid endpoint {endpoint:?}: {source}")]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it is not valid.
        source: tonic::transport::Error,
    },
    /// The server answered a call with an error status.
    #[error("{}", rpc_message(endpoint, what, status))]
    Rpc {
        /// The endpoint that answered.
        endpoint: String,
        /// The call, e.g. `Range`.
        what: &'static str,
        /// The status it answered.
        status: tonic::Status,
    },
    /// A call did not finish within `--command-timeout`.
    #[error("{what} at {endpoint}: no answer within {} — is the cluster up and has it a leader? raise --command-timeout for slow calls", humantime::format_duration(*after))]
    Timeout {
        /// The endpoint called.
        endpoint: String,
        /// The call.
        what: &'static str,
        /// The timeout that passed.
        after: Duration,
    },
    /// The server closed a stream the command needed.
    #[error(
        "{what} at {endpoint}: the stream ended early — the member may have stopped; try again"
    )]
    StreamEnded {
        /// The endpoint.
        endpoint: String,
        /// The stream.
        what: &'static str,
    },
    /// A local file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `could not write`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Standard input or output failed.
    #[error("{what}: {source}")]
    Stdio {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A command-line argument is not valid.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// The output format is not one this command prints.
    #[error("{} not supported as output format", format.name())]
    UnsupportedFormat {
        /// The format asked for.
        format: crate::cli::Format,
    },
    /// The command given to `lock` or `semaphore acquire` failed.
    #[error("{}", exit_text(.0))]
    Exec(std::process::ExitStatus),
    /// The command given to `lock` or `semaphore acquire` could not start.
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A snapshot's trailing sha256 does not match its content.
    #[error("snapshot from {endpoint} is corrupt: its sha256 is {expected} but its content hashes to {actual}; {} was not written — try again, or take the snapshot from another member", path.display())]
    SnapshotChecksum {
        /// The endpoint it came from.
        endpoint: String,
        /// The file that would have been written.
        path: PathBuf,
        /// The sha256 the stream carried (hex).
        expected: String,
        /// The sha256 of what arrived (hex).
        actual: String,
    },
    /// A snapshot stream too short to carry its sha256.
    #[error(
        "snapshot from {endpoint} is truncated ({bytes} bytes, not even its sha256) — try again"
    )]
    SnapshotTruncated {
        /// The endpoint it came from.
        endpoint: String,
        /// How many bytes arrived.
        bytes: u64,
    },
    /// A lease the command holds expired or was revoked.
    #[error("lease {id:016x} expired or revoked")]
    LeaseLost {
        /// The lease.
        id: i64,
    },
    /// `endpoint health` found an unhealthy endpoint.
    #[error("unhealthy cluster")]
    Unhealthy,
    /// A command over several endpoints failed on at least one (each
    /// failure was printed already).
    #[error("{failed} of {total} endpoints failed")]
    SomeEndpointsFailed {
        /// How many failed.
        failed: usize,
        /// How many were tried.
        total: usize,
    },
    /// `move-leader` found no leader among the endpoints.
    #[error("no leader endpoint given at {endpoints:?} — pass the leader's client URL in --endpoints (see `witanctl endpoint status --cluster`)")]
    NoLeaderEndpoint {
        /// The endpoints given.
        endpoints: Vec<String>,
    },
    /// The server does not do authentication (yet).
    #[error(
        "{endpoint} does not do authentication (it answered: {message}) — drop --user/--password"
    )]
    AuthUnsupported {
        /// The endpoint.
        endpoint: String,
        /// What it answered.
        message: String,
    },
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// `witanctl bench` failed.
    #[error("bench: {0}")]
    Bench(#[from] witan_bench::error::BenchError),
    /// `witanctl bench` arguments were not valid (clap prints them itself).
    #[error("{0}")]
    BenchUsage(#[from] clap::Error),
    /// Restoring or reading a snapshot file failed.
    #[error("{0}")]
    Restore(#[from] witan_server::restore::RestoreError),
}

/// A malformed command-line argument.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A lease ID that is not hexadecimal.
    #[error("bad lease ID arg ({0:?}), expecting ID in hex")]
    LeaseId(String),
    /// A member ID that is not hexadecimal.
    #[error("bad member ID arg ({0:?}), expecting ID in hex")]
    MemberId(String),
    /// A txn compare line etcdctl would not accept.
    #[error("malformed comparison: {0}")]
    Compare(String),
    /// A txn operation line that does not parse.
    #[error("malformed operation {line:?}: {reason}")]
    TxnOp {
        /// The line.
        line: String,
        /// Why.
        reason: String,
    },
    /// A value that must be given is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// `--sort-by` / `--order` spelled wrong.
    #[error("bad {flag} {value:?}: expected one of {expected}")]
    Choice {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
        /// The accepted values.
        expected: &'static str,
    },
    /// A TTL that is not a positive number of seconds.
    #[error("bad TTL ({0:?}): expecting a whole number of seconds")]
    Ttl(String),
    /// A watch command line in `watch -i` that does not parse.
    #[error("invalid watch command {line:?}: {reason}")]
    WatchLine {
        /// The line.
        line: String,
        /// Why.
        reason: String,
    },
}

/// How etcdctl reports a command that failed: `exit status 7`, or the
/// signal that ended it.
fn exit_text(status: &std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal: {signal}");
        }
    }
    status.to_string()
}

/// The text of an error status: etcd's own message (clients match on
/// it), where it came from, and a hint for the codes that have one.
fn rpc_message(endpoint: &str, what: &str, status: &tonic::Status) -> String {
    let hint = match status.code() {
        Code::Unavailable => {
            " — the member may be down or without a leader; check `witanctl endpoint status --cluster`"
        }
        Code::Unimplemented => " — this member does not serve that call (yet)",
        Code::DeadlineExceeded => " — raise --command-timeout, or check the cluster has a leader",
        Code::Unauthenticated | Code::PermissionDenied => " — check --user/--password",
        _ => "",
    };
    format!("{} ({what} at {endpoint}){hint}", status.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rpc_error_keeps_etcds_text_first_and_names_the_endpoint() {
        let error = CtlError::Rpc {
            endpoint: "127.0.0.1:2379".into(),
            what: "Range",
            status: tonic::Status::out_of_range(
                "etcdserver: mvcc: required revision has been compacted",
            ),
        };
        assert_eq!(
            error.to_string(),
            "etcdserver: mvcc: required revision has been compacted (Range at 127.0.0.1:2379)"
        );
    }

    #[test]
    fn an_unreachable_endpoint_says_what_to_check() {
        let error = CtlError::Unreachable {
            endpoint: "127.0.0.1:2379".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            error.to_string(),
            "cannot reach 127.0.0.1:2379: connection refused — is a member running there? check --endpoints"
        );
    }
}
