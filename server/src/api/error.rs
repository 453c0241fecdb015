//! Everything a client request can fail with, and its one mapping to a
//! gRPC status carrying etcd's code and exact message text (etcd clients
//! recognise errors by their text and retry only on `Unavailable`).

use tonic::{Code, Status};
use tracing::error;

use witan_recipes::{CoreError, RecipeError};

use crate::auth::PasswordError;
use crate::mvcc::{AuthError, MvccError, RequestError};
use crate::raft::membership::MemberError;
use crate::raft::proposer::ProposeError;
use crate::raft::read_index::ReadIndexError;
use crate::raft::transfer::TransferError;
use crate::storage::DbError;

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks one of etcd's request rules.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A lease TTL above the largest one etcd accepts.
    #[error("too large lease TTL")]
    LeaseTtlTooLarge,
    /// The cluster holds `--max-leases` leases already.
    #[error("too many leases")]
    TooManyLeases,
    /// The encoded request is larger than `--max-request-bytes`.
    #[error("request is too large")]
    RequestTooLarge,
    /// Authentication or a permission check failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A password could not be hashed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The key-value store refused or failed the request.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
    /// The write could not be committed.
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// The linearizable read barrier could not be passed.
    #[error(transparent)]
    ReadIndex(#[from] ReadIndexError),
    /// This member did not apply up to the read index before the deadline.
    #[error("request timed out waiting for this member to catch up")]
    ApplyTimeout,
    /// A coordination recipe (lock, election, barrier, ...) failed.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// An election request without its `leader` field (etcd's text).
    #[error("\"leader\" field must be provided")]
    MissingLeaderKey,
    /// A membership request (Cluster service) failed.
    #[error(transparent)]
    Member(#[from] MemberError),
    /// A leader transfer (MoveLeader) failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// Reading or maintaining this member's storage failed (Status, Hash,
    /// Defragment, Snapshot).
    #[error("storage failure: {0}")]
    Storage(#[source] DbError),
    /// A replicated response this member cannot interpret (written by a
    /// newer member, or a bug).
    #[error("unexpected response from the state machine: {0}")]
    UnexpectedResponse(&'static str),
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let (code, message): (Code, String) = match &err {
            ApiError::Request(e) => (Code::InvalidArgument, e.to_string()),
            ApiError::LeaseTtlTooLarge => {
                (Code::OutOfRange, "etcdserver: too large lease TTL".into())
            }
            ApiError::TooManyLeases => (
                Code::ResourceExhausted,
                "etcdserver: too many leases".into(),
            ),
            ApiError::RequestTooLarge => (
                Code::InvalidArgument,
                "etcdserver: request is too large".into(),
            ),
            ApiError::Mvcc(MvccError::Compacted) => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted".into(),
            ),
            ApiError::Mvcc(MvccError::FutureRevision) => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision".into(),
            ),
            ApiError::Mvcc(MvccError::KeyNotFound) => {
                (Code::InvalidArgument, "etcdserver: key not found".into())
            }
            ApiError::Mvcc(MvccError::LeaseNotFound) => (
                Code::NotFound,
                "etcdserver: requested lease not found".into(),
            ),
            ApiError::Mvcc(MvccError::LeaseExists) => (
                Code::FailedPrecondition,
                "etcdserver: lease already exists".into(),
            ),
            ApiError::Mvcc(MvccError::NoSpace) => (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded".into(),
            ),
            ApiError::Mvcc(MvccError::Auth(e)) | ApiError::Auth(e) => auth_status(*e),
            ApiError::Password(PasswordError::Hash(_)) => {
                (Code::InvalidArgument, format!("etcdserver: {err}"))
            }
            ApiError::Password(PasswordError::Interrupted) => {
                (Code::Unavailable, "etcdserver: server stopped".into())
            }
            ApiError::Mvcc(MvccError::History(e)) => {
                error!(%e, "storage failure while serving a read");
                (Code::Internal, format!("witan: storage failure: {e}"))
            }
            ApiError::Propose(ProposeError::NoLeader)
            | ApiError::ReadIndex(ReadIndexError::NoLeader) => {
                (Code::Unavailable, "etcdserver: no leader".into())
            }
            ApiError::Propose(ProposeError::Timeout)
            | ApiError::ReadIndex(ReadIndexError::Timeout)
            | ApiError::ApplyTimeout => (Code::Unavailable, "etcdserver: request timed out".into()),
            ApiError::Propose(ProposeError::LeaderLost) => (
                Code::Unavailable,
                "etcdserver: request timed out, possibly due to previous leader failure".into(),
            ),
            ApiError::Propose(ProposeError::TooManyRequests) => (
                Code::ResourceExhausted,
                "etcdserver: too many requests".into(),
            ),
            ApiError::Propose(ProposeError::Stopped)
            | ApiError::ReadIndex(ReadIndexError::Stopped) => {
                (Code::Unavailable, "etcdserver: server stopped".into())
            }
            ApiError::Recipe(e) => recipe_status(e),
            ApiError::Member(e) => member_status(e),
            ApiError::Transfer(TransferError::NotLeader) => {
                (Code::FailedPrecondition, "etcdserver: not leader".into())
            }
            ApiError::Transfer(TransferError::BadTransferee) => (
                Code::FailedPrecondition,
                "etcdserver: bad leader transferee".into(),
            ),
            ApiError::Transfer(TransferError::Timeout) => (
                Code::Unavailable,
                "etcdserver: request timed out, leader transfer took too long".into(),
            ),
            ApiError::Transfer(TransferError::Stopped) => {
                (Code::Unavailable, "etcdserver: server stopped".into())
            }
            ApiError::Storage(e) => {
                error!(%e, "storage failure while serving a maintenance request");
                (Code::Internal, format!("witan: storage failure: {e}"))
            }
            // etcd returns these as plain Go errors, which gRPC sends as
            // Unknown with the error's text; clients match on the text.
            ApiError::MissingLeaderKey => (Code::Unknown, err.to_string()),
            ApiError::UnexpectedResponse(what) => {
                error!(what, "unexpected state machine response");
                (Code::Internal, err.to_string())
            }
        };
        Status::new(code, message)
    }
}

/// The status of an auth rejection: etcd's code and text.
fn auth_status(err: AuthError) -> (Code, String) {
    let code = match err {
        AuthError::PermissionDenied => Code::PermissionDenied,
        AuthError::InvalidAuthToken => Code::Unauthenticated,
        AuthError::AuthFailed
        | AuthError::InvalidAuthMgmt
        | AuthError::UserEmpty
        | AuthError::RoleEmpty
        | AuthError::OldRevision => Code::InvalidArgument,
        AuthError::NotEnabled
        | AuthError::RootUserNotExist
        | AuthError::RootRoleNotExist
        | AuthError::UserAlreadyExist
        | AuthError::UserNotFound
        | AuthError::RoleAlreadyExist
        | AuthError::RoleNotFound
        | AuthError::RoleNotGranted
        | AuthError::PermissionNotGranted => Code::FailedPrecondition,
    };
    (code, format!("etcdserver: {err}"))
}

/// The status of a membership failure: etcd's code and text.
fn member_status(err: &MemberError) -> (Code, String) {
    let etcd = |code, text: &str| (code, format!("etcdserver: {text}"));
    match err {
        MemberError::NotFound => etcd(Code::NotFound, "member not found"),
        MemberError::PeerUrlExists => etcd(Code::FailedPrecondition, "Peer URLs already exists"),
        MemberError::NotLearner => etcd(
            Code::FailedPrecondition,
            "can only promote a learner member",
        ),
        MemberError::LearnerNotReady => etcd(
            Code::FailedPrecondition,
            "can only promote a learner member which is in sync with leader",
        ),
        MemberError::IdExists => etcd(Code::FailedPrecondition, "member ID already exist"),
        MemberError::BadUrls => etcd(Code::InvalidArgument, "given member URLs are invalid"),
        MemberError::LastVoter => (
            Code::FailedPrecondition,
            "witan: cannot remove the last voting member".into(),
        ),
        MemberError::NoLeader => etcd(Code::Unavailable, "no leader"),
        MemberError::Timeout => etcd(Code::Unavailable, "request timed out"),
        MemberError::LeaderLost => etcd(
            Code::Unavailable,
            "request timed out, possibly due to previous leader failure",
        ),
        MemberError::Stopped => etcd(Code::Unavailable, "server stopped"),
    }
}

/// The status of a recipe failure: the KV core's errors keep the code and
/// text the same request made directly would get.
fn recipe_status(err: &RecipeError) -> (Code, String) {
    match err {
        RecipeError::Core(core) => match core {
            CoreError::Compacted { .. } => (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted".into(),
            ),
            CoreError::LeaseNotFound => (
                Code::NotFound,
                "etcdserver: requested lease not found".into(),
            ),
            CoreError::Unavailable(m) | CoreError::Timeout(m) => (Code::Unavailable, m.clone()),
            CoreError::InvalidRequest(m) => (Code::InvalidArgument, m.clone()),
            CoreError::Other(m) => (Code::Internal, m.clone()),
        },
        RecipeError::NotLeader | RecipeError::NoLeader => (Code::Unknown, err.to_string()),
        RecipeError::LeaseExpired | RecipeError::SizeMismatch { .. } => {
            (Code::FailedPrecondition, format!("witan: {err}"))
        }
        RecipeError::AlreadyHeld => (Code::AlreadyExists, format!("witan: {err}")),
        RecipeError::InvalidArgument(_) => (Code::InvalidArgument, format!("witan: {err}")),
        RecipeError::UnexpectedResponse(_) => {
            error!(%err, "recipe got an unexpected response from the core");
            (Code::Internal, format!("witan: {err}"))
        }
    }
}
