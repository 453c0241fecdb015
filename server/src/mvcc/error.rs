//! Errors of the MVCC layer: deterministic rejections of a request, and a
//! failed history read.

use witan_proto::raftpb::apply_error::Kind;

use super::auth::AuthError;
use super::HistoryError;

/// Why the MVCC layer refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    /// The requested revision is older than the compaction revision.
    #[error("required revision has been compacted")]
    Compacted,
    /// The requested revision is newer than the current revision.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// `ignore_value` / `ignore_lease` on a key that does not exist.
    #[error("key not found")]
    KeyNotFound,
    /// The request names a lease that does not exist.
    #[error("requested lease not found")]
    LeaseNotFound,
    /// A grant names a lease ID that is taken.
    #[error("lease already exists")]
    LeaseExists,
    /// A write that grows the store while the NOSPACE alarm is active.
    #[error("database space exceeded")]
    NoSpace,
    /// The auth store refused the request.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The stored history could not be read.
    #[error(transparent)]
    History(#[from] HistoryError),
}

impl MvccError {
    /// The replicated form of a rejection; `None` for a failed read, which is
    /// a local failure and never part of a replicated response.
    pub fn to_apply_error(&self) -> Option<Kind> {
        match self {
            MvccError::Compacted => Some(Kind::Compacted),
            MvccError::FutureRevision => Some(Kind::FutureRevision),
            MvccError::KeyNotFound => Some(Kind::KeyNotFound),
            MvccError::LeaseNotFound => Some(Kind::LeaseNotFound),
            MvccError::LeaseExists => Some(Kind::LeaseExists),
            MvccError::NoSpace => Some(Kind::NoSpace),
            MvccError::Auth(e) => e.to_kind(),
            MvccError::History(_) => None,
        }
    }

    /// The rejection a replicated apply error stands for; `None` for a kind
    /// this version does not know (written by a newer member).
    pub fn from_apply_error(kind: Kind) -> Option<MvccError> {
        match kind {
            Kind::Compacted => Some(MvccError::Compacted),
            Kind::FutureRevision => Some(MvccError::FutureRevision),
            Kind::KeyNotFound => Some(MvccError::KeyNotFound),
            Kind::LeaseNotFound => Some(MvccError::LeaseNotFound),
            Kind::LeaseExists => Some(MvccError::LeaseExists),
            Kind::NoSpace => Some(MvccError::NoSpace),
            Kind::Unknown => None,
            auth => AuthError::from_kind(auth).map(MvccError::Auth),
        }
    }
}
