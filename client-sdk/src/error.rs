//! The SDK's one error type, and the one place a gRPC status from a
//! member (or from the transport) becomes it.
//!
//! A program branches on the variant, never on a message: the etcd error
//! texts members send are recognised here and nowhere else.

use std::sync::Arc;

use tonic::{Code, Status};
use witan_recipes::{CoreError, RecipeError};

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
    /// The caller is not authenticated: auth is on and the call carried
    /// neither a token nor a client certificate naming a user (etcd's
    /// "user name is empty"). Give [`ClientOptions::credentials`](crate::ClientOptions::credentials).
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// What the member said.
        message: String,
    },
    /// The user name or password was refused (by
    /// [`Client::connect`](crate::Client::connect), or when logging in
    /// again after a token expired). Never retried: the same credentials
    /// would be refused again.
    #[error("authentication failed, invalid user ID or password")]
    AuthenticationFailed,
    /// The call's token was refused (unknown or past its TTL) and logging
    /// in again did not help, or the client has no credentials to log in
    /// with.
    #[error("invalid auth token")]
    InvalidToken,
    /// The member refused the call because the users, roles or
    /// permissions changed while it was in flight (etcd's "revision of
    /// auth store is old"); it changed nothing. The client repeats such a
    /// call once by itself; this is the second refusal.
    #[error("revision of auth store is old: the permissions changed while the call was in flight")]
    AuthRevisionOld,
    /// Credentials were given but the cluster has authentication off (only
    /// seen inside the client, which then calls without a token).
    #[error("authentication is not enabled")]
    AuthNotEnabled,
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
    /// The session's lease expired (or was revoked, or can no longer be
    /// shown alive) while a recipe call waited: nothing is held.
    #[error("the lease expired while waiting: nothing is held")]
    LeaseExpired,
    /// The leadership given is not (or no longer) the current one (etcd's
    /// "election: not leader").
    #[error("election: not leader")]
    NotLeader,
    /// Nobody leads the election (etcd's "election: no leader").
    #[error("election: no leader")]
    NoLeader,
    /// The barrier is already raised under another lease.
    #[error("barrier already held")]
    AlreadyHeld,
    /// Participants of one semaphore or double barrier gave different
    /// sizes; the numbers are known when the member said them.
    #[error("size mismatch: {} recorded, {} requested; every participant must give the same number", show(*recorded), show(*requested))]
    SizeMismatch {
        /// The size the first participants recorded.
        recorded: Option<u32>,
        /// The size this call gave.
        requested: Option<u32>,
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
            Error::Unavailable { .. }
            | Error::Timeout
            | Error::ResourceExhausted { .. }
            | Error::AuthRevisionOld => true,
            Error::OutcomeUnknown { .. }
            | Error::Compacted { .. }
            | Error::FutureRevision
            | Error::LeaseNotFound
            | Error::LeaseExists
            | Error::KeyNotFound
            | Error::InvalidArgument { .. }
            | Error::PermissionDenied { .. }
            | Error::Unauthenticated { .. }
            | Error::AuthenticationFailed
            | Error::InvalidToken
            | Error::AuthNotEnabled
            | Error::Canceled { .. }
            | Error::WatchCanceled { .. }
            | Error::InvalidEndpoint { .. }
            | Error::LeaseExpired
            | Error::NotLeader
            | Error::NoLeader
            | Error::AlreadyHeld
            | Error::SizeMismatch { .. }
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
            Code::FailedPrecondition if message.contains(LEASE_EXPIRED_WAITING) => {
                Error::LeaseExpired
            }
            Code::FailedPrecondition if message.contains(SIZE_MISMATCH) => size_mismatch(message),
            Code::AlreadyExists if message.contains(BARRIER_HELD) => Error::AlreadyHeld,
            Code::Unknown if message.contains(NOT_LEADER) => Error::NotLeader,
            Code::Unknown if message.contains(NO_LEADER) => Error::NoLeader,
            Code::InvalidArgument if message.contains(AUTH_FAILED) => Error::AuthenticationFailed,
            Code::InvalidArgument if message.contains(AUTH_OLD_REVISION) => Error::AuthRevisionOld,
            Code::InvalidArgument if message.contains(USER_EMPTY) => {
                Error::Unauthenticated { message: text() }
            }
            Code::Unauthenticated if message.contains(INVALID_TOKEN) => Error::InvalidToken,
            Code::FailedPrecondition if message.contains(AUTH_NOT_ENABLED) => Error::AuthNotEnabled,
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

impl Error {
    /// The error for a watch the member cancelled with `reason` (etcd
    /// refuses a watch create it may not serve this way, with its
    /// status's text as the reason).
    pub(crate) fn from_cancel_reason(reason: String) -> Error {
        if reason.contains(PERMISSION_DENIED) {
            Error::PermissionDenied { message: reason }
        } else if reason.contains(INVALID_TOKEN) {
            Error::InvalidToken
        } else if reason.contains(AUTH_OLD_REVISION) {
            Error::AuthRevisionOld
        } else if reason.contains(USER_EMPTY) {
            Error::Unauthenticated { message: reason }
        } else {
            Error::WatchCanceled { reason }
        }
    }
}

/// The error for a recipe run client-side (over the SDK's own KV core).
impl From<RecipeError> for Error {
    fn from(err: RecipeError) -> Error {
        match err {
            RecipeError::Core(core) => Error::from(core),
            RecipeError::LeaseExpired => Error::LeaseExpired,
            RecipeError::NotLeader => Error::NotLeader,
            RecipeError::NoLeader => Error::NoLeader,
            RecipeError::AlreadyHeld => Error::AlreadyHeld,
            RecipeError::SizeMismatch {
                recorded,
                requested,
                ..
            } => Error::SizeMismatch {
                recorded: Some(recorded),
                requested: Some(requested),
            },
            RecipeError::InvalidArgument(message) => Error::InvalidArgument {
                message: message.to_string(),
            },
            RecipeError::UnexpectedResponse(what) => Error::UnexpectedResponse(what),
        }
    }
}

/// The error back from the recipes' core error (the SDK's `KvCore`
/// implementation made it from an [`Error`] in `core::core_error`; this
/// undoes that, as far as the core's kinds allow).
impl From<CoreError> for Error {
    fn from(err: CoreError) -> Error {
        match err {
            CoreError::Compacted {
                compact_revision, ..
            } => Error::Compacted {
                compact_revision: (compact_revision > 0).then_some(compact_revision),
            },
            CoreError::LeaseNotFound => Error::LeaseNotFound,
            CoreError::Unavailable(message) => match message.strip_prefix(OUTCOME_UNKNOWN) {
                Some(rest) => Error::OutcomeUnknown {
                    message: rest.to_string(),
                },
                None => Error::Unavailable { message },
            },
            CoreError::Timeout(_) => Error::Timeout,
            CoreError::InvalidRequest(message) => Error::InvalidArgument { message },
            // `core::core_error` passed these on as their text: read the
            // variant back from it, so a recipe run client-side is refused
            // with the same typed error as one run by the service.
            CoreError::Other(message) => {
                if let Some(rest) = message.strip_prefix(PERMISSION_DENIED_SHOWN) {
                    Error::PermissionDenied {
                        message: rest.to_string(),
                    }
                } else if let Some(rest) = message.strip_prefix(UNAUTHENTICATED_SHOWN) {
                    Error::Unauthenticated {
                        message: rest.to_string(),
                    }
                } else if message == Error::InvalidToken.to_string() {
                    Error::InvalidToken
                } else {
                    Error::Other {
                        code: Code::Unknown,
                        message,
                    }
                }
            }
        }
    }
}

/// How `core::core_error` marks a write whose outcome is unknown (the core
/// has no kind for it, and the recipes treat it as unavailability).
pub(crate) const OUTCOME_UNKNOWN: &str = "outcome unknown: ";

/// How [`Error::PermissionDenied`] and [`Error::Unauthenticated`] start
/// when shown (their `#[error]` texts), as `core::core_error` passes them
/// to the recipes.
const PERMISSION_DENIED_SHOWN: &str = "permission denied: ";
const UNAUTHENTICATED_SHOWN: &str = "unauthenticated: ";

/// [`Error::SizeMismatch`] from the member's text, "... is R, not Q: ...".
fn size_mismatch(message: &str) -> Error {
    let numbers = message.split_once(" is ").and_then(|(_, rest)| {
        let (recorded, rest) = rest.split_once(", not ")?;
        let requested = rest.split(':').next()?;
        Some((recorded.trim().parse().ok(), requested.trim().parse().ok()))
    });
    let (recorded, requested) = numbers.unwrap_or((None, None));
    Error::SizeMismatch {
        recorded,
        requested,
    }
}

fn show(size: Option<u32>) -> String {
    size.map_or_else(|| "?".to_string(), |n| n.to_string())
}

/// etcd's texts, as members send them (with an "etcdserver: " prefix).
const COMPACTED: &str = "required revision has been compacted";
const FUTURE_REVISION: &str = "required revision is a future revision";
const LEASE_NOT_FOUND: &str = "requested lease not found";
const LEASE_EXISTS: &str = "lease already exists";
const KEY_NOT_FOUND: &str = "etcdserver: key not found";
/// etcd's auth texts.
const AUTH_FAILED: &str = "authentication failed, invalid user ID or password";
const AUTH_OLD_REVISION: &str = "revision of auth store is old";
const USER_EMPTY: &str = "etcdserver: user name is empty";
const INVALID_TOKEN: &str = "invalid auth token";
const PERMISSION_DENIED: &str = "etcdserver: permission denied";
const AUTH_NOT_ENABLED: &str = "authentication is not enabled";
/// etcd's election errors, sent as gRPC `Unknown` with the Go error's text.
const NOT_LEADER: &str = "election: not leader";
const NO_LEADER: &str = "election: no leader";
/// witan's recipe services' texts.
const LEASE_EXPIRED_WAITING: &str = "the lease expired while waiting";
const SIZE_MISMATCH: &str = "every participant must give the same number";
const BARRIER_HELD: &str = "barrier already held";

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
    fn recipe_statuses_become_typed_variants() {
        assert!(matches!(
            answer(
                Code::FailedPrecondition,
                "witan: the lease expired while waiting: nothing is held"
            ),
            Error::LeaseExpired
        ));
        assert!(matches!(
            answer(Code::Unknown, "election: not leader"),
            Error::NotLeader
        ));
        assert!(matches!(
            answer(Code::Unknown, "election: no leader"),
            Error::NoLeader
        ));
        assert!(matches!(
            answer(Code::AlreadyExists, "witan: barrier already held"),
            Error::AlreadyHeld
        ));
        assert!(matches!(
            answer(
                Code::FailedPrecondition,
                "witan: semaphore permits is 3, not 2: every participant must give the same number"
            ),
            Error::SizeMismatch {
                recorded: Some(3),
                requested: Some(2)
            }
        ));
        // The server's own text, through the same recipe error.
        let server_text = format!(
            "witan: {}",
            RecipeError::SizeMismatch {
                what: "double barrier count",
                recorded: 4,
                requested: 5
            }
        );
        assert!(matches!(
            answer(Code::FailedPrecondition, &server_text),
            Error::SizeMismatch {
                recorded: Some(4),
                requested: Some(5)
            }
        ));
        // "no leader" of the cluster is not the election's.
        assert!(matches!(
            answer(Code::Unavailable, "etcdserver: no leader"),
            Error::Unavailable { .. }
        ));
    }

    #[test]
    fn recipe_errors_run_client_side_map_alike() {
        assert!(matches!(
            Error::from(RecipeError::LeaseExpired),
            Error::LeaseExpired
        ));
        assert!(matches!(
            Error::from(RecipeError::NotLeader),
            Error::NotLeader
        ));
        assert!(matches!(
            Error::from(RecipeError::NoLeader),
            Error::NoLeader
        ));
        assert!(matches!(
            Error::from(RecipeError::AlreadyHeld),
            Error::AlreadyHeld
        ));
        assert!(matches!(
            Error::from(RecipeError::SizeMismatch {
                what: "semaphore permits",
                recorded: 3,
                requested: 2
            }),
            Error::SizeMismatch {
                recorded: Some(3),
                requested: Some(2)
            }
        ));
        assert!(matches!(
            Error::from(RecipeError::Core(CoreError::LeaseNotFound)),
            Error::LeaseNotFound
        ));
        assert!(matches!(
            Error::from(RecipeError::Core(CoreError::Unavailable(format!(
                "{OUTCOME_UNKNOWN}connection reset"
            )))),
            Error::OutcomeUnknown { message } if message == "connection reset"
        ));
        assert!(matches!(
            Error::from(RecipeError::Core(CoreError::Unavailable("down".into()))),
            Error::Unavailable { .. }
        ));
        assert!(matches!(
            Error::from(RecipeError::InvalidArgument("the count must be at least 1")),
            Error::InvalidArgument { .. }
        ));
        assert!(!Error::LeaseExpired.is_retryable());
        assert!(!Error::NoLeader.is_retryable());
        // Auth refusals keep their variant through the recipes.
        for err in [
            Error::PermissionDenied {
                message: "etcdserver: permission denied".into(),
            },
            Error::Unauthenticated {
                message: "etcdserver: user name is empty".into(),
            },
            Error::InvalidToken,
        ] {
            let back = Error::from(RecipeError::Core(CoreError::Other(err.to_string())));
            assert_eq!(back.to_string(), err.to_string());
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&err));
        }
    }

    #[test]
    fn auth_texts_become_typed_variants() {
        assert!(matches!(
            answer(
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password"
            ),
            Error::AuthenticationFailed
        ));
        assert!(matches!(
            answer(Code::Unauthenticated, "etcdserver: invalid auth token"),
            Error::InvalidToken
        ));
        assert!(matches!(
            answer(
                Code::InvalidArgument,
                "etcdserver: revision of auth store is old"
            ),
            Error::AuthRevisionOld
        ));
        assert!(matches!(
            answer(Code::InvalidArgument, "etcdserver: user name is empty"),
            Error::Unauthenticated { .. }
        ));
        assert!(matches!(
            answer(
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled"
            ),
            Error::AuthNotEnabled
        ));
        assert!(matches!(
            Error::from_cancel_reason("etcdserver: permission denied".into()),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(
            Error::from_cancel_reason("etcdserver: invalid auth token".into()),
            Error::InvalidToken
        ));
        assert!(matches!(
            Error::from_cancel_reason("something else".into()),
            Error::WatchCanceled { .. }
        ));
        assert!(Error::AuthRevisionOld.is_retryable());
        assert!(!Error::AuthenticationFailed.is_retryable());
        assert!(!Error::InvalidToken.is_retryable());
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
