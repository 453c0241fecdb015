//! Why a recipe failed.

use crate::core::CoreError;

/// A recipe's failure. Every variant says what a caller should do next:
/// retry, give up the hold, or fix the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipeError {
    /// The KV core failed the call.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The caller's lease expired (or was revoked) while it waited: its key
    /// is gone, so it holds nothing.
    #[error("the lease expired while waiting: nothing is held")]
    LeaseExpired,
    /// etcd's "election: not leader": the leadership given is not (or no
    /// longer) the current one.
    #[error("election: not leader")]
    NotLeader,
    /// etcd's "election: no leader": nobody leads the election.
    #[error("election: no leader")]
    NoLeader,
    /// The barrier is already raised.
    #[error("barrier already held")]
    AlreadyHeld,
    /// Callers of one semaphore or double barrier disagree on its size.
    #[error("{what} is {recorded}, not {requested}: every participant must give the same number")]
    SizeMismatch {
        /// What was compared ("semaphore permits", "double barrier count").
        what: &'static str,
        /// The number the first participant recorded.
        recorded: u32,
        /// The number this caller gave.
        requested: u32,
    },
    /// The request is malformed (the message says how).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The core answered in a shape its contract rules out (a response
    /// without a header, a watch that ended without an error): a bug in
    /// the core, not in the request.
    #[error("unexpected response from the KV core: {0}")]
    UnexpectedResponse(&'static str),
}
