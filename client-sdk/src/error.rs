//! The SDK's one error type, and the one place a gRPC status from a
//! member (or from the transport) becomes it.
//!
//! A program branches on the variant, never on a message: the etcd error
//! texts members send are recognised here and nowhere else.

use std::sync::Arc;

use tonic::{Code, Status};

/// Why a call failed.
///
/// Variants a program is expected to branch on carry typed fields; the
/// `message` fields only explain (they hold what the member said).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No member could serve the call before its deadline (every endpoint
    /// refused the connection, or the cluster has no leader). The call
    /// changed nothing.
    #[error("unavailable: {message}")]
    Unavailable {
        /// The last failure seen.
        message: String,
    },
    /// A write was sent but its answer was lost (the connection broke, the
    /// member lost its leader, the deadline passed): it may or may not
    /// have been applied. Read back before retrying a non-idempotent write.
    #[error("outcome unknown: {message}")]
    OutcomeUnknown {
        /// What cut the call short.
        message: String,
    },
    /// The deadline passed before an answer came; the call changed
    /// nothing (a read, or a write that never reached a member).
    #[error("deadline exceeded")]
    Timeout,
    /// The revision asked for was compacted away.
    #[error("required revision has been compacted{}", compact_revision.map(|r| format!(" (compact revision {r})")).unwrap_or_default())]
    Compacted {
        /// The compaction revision, when the member said (watches do,
        /// ranges do not).
        compact_revision: Option<i64>,
    },
    /// The revision asked for is newer than the store's.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// The lease does not exist (never granted, revoked or expired).
    #[error("requested lease not found")]
    LeaseNotFound,
    /// A lease with the requested id already exists.
    #[error("lease already exists")]
    LeaseExists,
    /// A put with `ignore_value` or `ignore_lease` on a key that does not
    /// exist.
    #[error("key not found")]
    KeyNotFound,
    /// The member refused the request as malformed.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What the member said.
        message: String,
    },
    /// The caller lacks the permission.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// What the member said.
        message: String,
    },
    /// The caller is not authenticated.
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// What the member said.
        message: String,
    },
    /// The member is overloaded ("too many requests") or a size limit was
    /// hit; retry later, with less.
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// What the member said.
        message: String,
    },
    /// The call was cancelled.
    #[error("canceled: {message}")]
    Canceled {
        /// What cancelled it.
        message: String,
    },
    /// A watch was cancelled by the member for a reason other than
    /// compaction.
    #[error("watch canceled: {reason}")]
    WatchCanceled {
        /// The member's cancel reason.
        reason: String,
    },
    /// An endpoint given to [`Client::connect`](crate::Client::connect)
    /// cannot be used.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stored value could not be decoded, or a value encoded (typed key
    /// spaces).
    #[error("cannot {action} the value of key {key:?}: {source}")]
    Codec {
        /// "decode" or "encode".
        action: &'static str,
        /// The key, lossily as text.
        key: String,
        /// The codec's error.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A member answered in a shape the SDK does not expect (a newer or
    /// broken server).
    #[error("unexpected response: {0}")]
    UnexpectedResponse(&'static str),
    /// Any other status a member answered with.
    #[error("{code:?}: {message}")]
    Other {
        /// The gRPC status code.
        code: Code,
        /// The member's message.
        message: String,
    },
}

impl Error {
    /// Whether trying the same call again later may succeed without
    /// changing it. A write whose outcome is unknown is not: it may have
    /// been applied, so the caller must read back first.
    ///
    /// ```
    /// use witan_client::Error;
    /// assert!(Error::Timeout.is_retryable());
    /// assert!(!Error::LeaseNotFound.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Timeout | Error::ResourceExhausted { .. } => true,
            Error::OutcomeUnknown { .. }
            | Error::Compacted { .. }
            | Error::FutureRevision
            | Error::LeaseNotFound
            | Error::LeaseExists
            | Error::KeyNotFound
            | Error::InvalidArgument { .. }
            | Error::PermissionDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::Canceled { .. }
            | Error::WatchCanceled { .. }
            | Error::InvalidEndpoint { .. }
            | Error::Codec { .. }
            | Error::UnexpectedResponse(_)
            | Error::Other { .. } => false,
        }
    }

    /// The error for a status a member answered with (a definite answer:
    /// transport failures are classified by `retry::classify` first).
    pub(crate) fn from_answer(status: &Status) -> Error {
        let message = status.message();
        let text = || message.to_string();
        match status.code() {
            Code::OutOfRange if message.contains(COMPACTED) => Error::Compacted {
                compact_revision: None,
            },
            Code::OutOfRange if message.contains(FUTURE_REVISION) => Error::FutureRevision,
            Code::NotFound if message.contains(LEASE_NOT_FOUND) => Error::LeaseNotFound,
            Code::FailedPrecondition if message.contains(LEASE_EXISTS) => Error::LeaseExists,
            Code::InvalidArgument if message.contains(KEY_NOT_FOUND) => Error::KeyNotFound,
            Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument { message: text() },
            Code::PermissionDenied => Error::PermissionDenied { message: text() },
            Code::Unauthenticated => Error::Unauthenticated { message: text() },
            Code::ResourceExhausted => Error::ResourceExhausted { message: text() },
            Code::Cancelled => Error::Canceled { message: text() },
            Code::Unavailable => Error::Unavailable { message: text() },
            Code::DeadlineExceeded => Error::Timeout,
            code => Error::Other {
                code,
                message: text(),
            },
        }
    }
}

/// etcd's texts, as members send them (with an "etcdserver: " prefix).
const COMPACTED: &str = "required revision has been compacted";
const FUTURE_REVISION: &str = "required revision is a future revision";
const LEASE_NOT_FOUND: &str = "requested lease not found";
const LEASE_EXISTS: &str = "lease already exists";
const KEY_NOT_FOUND: &str = "etcdserver: key not found";

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: Code, message: &str) -> Error {
        Error::from_answer(&Status::new(code, message))
    }

    #[test]
    fn etcd_texts_become_typed_variants() {
        assert!(matches!(
            answer(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            ),
            Error::Compacted {
                compact_revision: None
            }
        ));
        assert!(matches!(
            answer(
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision"
            ),
            Error::FutureRevision
        ));
        assert!(matches!(
            answer(Code::NotFound, "etcdserver: requested lease not found"),
            Error::LeaseNotFound
        ));
        assert!(matches!(
            answer(Code::FailedPrecondition, "etcdserver: lease already exists"),
            Error::LeaseExists
        ));
        assert!(matches!(
            answer(Code::InvalidArgument, "etcdserver: key not found"),
            Error::KeyNotFound
        ));
    }

    #[test]
    fn other_codes_keep_the_message() {
        match answer(Code::InvalidArgument, "etcdserver: key is not provided") {
            Error::InvalidArgument { message } => {
                assert_eq!(message, "etcdserver: key is not provided")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            answer(Code::OutOfRange, "etcdserver: too large lease TTL"),
            Error::InvalidArgument { .. }
        ));
        assert!(matches!(
            answer(Code::ResourceExhausted, "etcdserver: too many requests"),
            Error::ResourceExhausted { .. }
        ));
        assert!(matches!(
            answer(Code::PermissionDenied, "etcdserver: permission denied"),
            Error::PermissionDenied { .. }
        ));
        match answer(Code::Unimplemented, "unknown service") {
            Error::Other { code, message } => {
                assert_eq!(code, Code::Unimplemented);
                assert_eq!(message, "unknown service");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(
            Error::Unavailable {
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            !Error::OutcomeUnknown {
                message: String::new()
            }
            .is_retryable()
        );
        assert!(
            !Error::Compacted {
                compact_revision: Some(3)
            }
            .is_retryable()
        );
    }

    #[test]
    fn compacted_says_the_revision_when_known() {
        let known = Error::Compacted {
            compact_revision: Some(7),
        };
        assert_eq!(
            known.to_string(),
            "required revision has been compacted (compact revision 7)"
        );
    }
}
