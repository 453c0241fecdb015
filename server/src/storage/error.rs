//! Errors of the storage layer: what can go wrong reading or writing the
//! database files, and opening them at startup.
//!
//! Every failure here is a node failure (disk, corruption, a bug), never a
//! rejected request: openraft receives them as `StorageError` and stops the
//! member.

use std::path::PathBuf;
use std::sync::Arc;

use crate::raft::convert::ConvertError;
use crate::raft::LogId;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// sqlite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// A file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A value could not be bound to a statement parameter.
    #[error("binding a statement parameter: {0}")]
    Bind(sqlx::error::BoxDynError),
    /// A stored protobuf record does not decode.
    #[error("corrupt record: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A stored record decodes but lacks a required field.
    #[error("corrupt record: {0}")]
    Convert(#[from] ConvertError),
    /// A stored record that must exist is absent.
    #[error("corrupt database: missing {0}")]
    Missing(&'static str),
    /// A number does not fit the column (or a stored one does not fit its
    /// type).
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// Which number.
        what: &'static str,
        /// Its value.
        value: i128,
    },
    /// The file was written by a version with another on-disk format.
    #[error("unsupported schema version {found} (this build reads version {supported})")]
    SchemaVersion {
        /// The version stored in the file.
        found: i64,
        /// The version this build reads and writes.
        supported: i64,
    },
    /// An append does not continue the log (it would leave a hole).
    #[error("log entry {got} does not follow the last log index {last:?}")]
    NotContiguous {
        /// The index of the appended entry.
        got: u64,
        /// The last index in the log before it.
        last: Option<u64>,
    },
    /// A snapshot's data does not match its metadata.
    #[error("snapshot data was taken at {data:?}, its metadata says {meta:?}")]
    SnapshotMismatch {
        /// Last applied log id stored in the snapshot's data.
        data: Option<LogId>,
        /// Last log id of the snapshot's metadata.
        meta: Option<LogId>,
    },
    /// A database path that sqlite cannot be given (not UTF-8).
    #[error("path is not valid UTF-8: {0:?}")]
    NonUtf8Path(PathBuf),
    /// sqlite's integrity check rejected a snapshot file.
    #[error("snapshot file failed sqlite's integrity check")]
    SnapshotCorrupt,
    /// A history read at a revision that a compaction removed after the
    /// reader checked (see `storage::compacted_during_read`).
    #[error("revision {revision} was compacted (to {compact_revision}) during the read")]
    CompactedDuringRead {
        /// The revision read.
        revision: i64,
        /// The compaction revision found.
        compact_revision: i64,
    },
    /// The background raft-log writer is gone (it stopped after a failure or
    /// the runtime is shutting down).
    #[error("the raft log writer has stopped")]
    WriterStopped,
    /// An earlier raft-log write failed; the log on disk no longer matches
    /// memory, so every later write is refused.
    #[error("an earlier raft log write failed: {0}")]
    WriterFailed(Arc<DbError>),
    /// The background `state.db` writer stopped (after a failed write,
    /// logged when it happened, or at shutdown).
    #[error("the state database writer has stopped")]
    StateWriterStopped,
}

impl DbError {
    /// A conversion of `value` into the integer type of `what` failed.
    pub(crate) fn out_of_range(what: &'static str, value: impl Into<i128>) -> Self {
        DbError::OutOfRange {
            what,
            value: value.into(),
        }
    }
}

/// Converts a `u64` (raft index, term, revision ...) to sqlite's integer.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64, DbError> {
    i64::try_from(value).map_err(|_| DbError::out_of_range(what, value))
}

/// Opening the storage at startup failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageOpenError {
    /// The data directory (or its snapshot directory) could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The raft log database could not be opened or loaded.
    #[error("raft log {path}: {source}")]
    Log {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DbError,
    },
    /// The state machine database could not be opened, loaded or recovered.
    #[error("state machine {path}: {source}")]
    StateMachine {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: DbError,
    },
    /// The snapshot directory could not be read.
    #[error("snapshots in {path}: {source}")]
    Snapshots {
        /// The snapshot directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: DbError,
    },
}
