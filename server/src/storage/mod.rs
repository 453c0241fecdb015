//! Durable storage over sqlite: the raft log and vote, and the state
//! machine (history of every key, applied index, snapshots).
//!
//! A data directory holds:
//! - `raft-log.db`: the raft log, vote and committed id ([`LogStore`]),
//!   fsynced before an append is acknowledged;
//! - `state.db`: the state machine's history and metadata
//!   ([`StateMachineStore`]), committed per apply call without fsync (the
//!   log replays what a power loss took);
//! - `snapshots/`: the current snapshot, a sqlite copy of `state.db`.
//!
//! The node opens both with [`open`], hands them to `openraft::Raft::new`,
//! and keeps a [`StateReader`] (from [`StateMachineStore::reader`]) for API
//! reads. Nothing outside this module knows about SQL; this module knows
//! nothing about gRPC, and of MVCC only the `mvcc` interface (`KvState`,
//! `History`).

mod defrag;
mod error;
mod hash;
mod history;
mod log_cache;
mod log_reader;
mod log_store;
mod log_writer;
mod maintenance;
mod reader;
mod restore;
mod script;
mod snapshot;
mod snapshot_builder;
mod sqlite;
mod state_db;
mod state_machine;
mod state_writer;

use std::path::Path;

pub use defrag::DbSize;
pub use error::{DbError, StorageOpenError};
pub use hash::{HashKvError, StateHash};
pub use history::{compacted_during_read, SqliteHistory};
pub use log_reader::LogReader;
pub use log_store::LogStore;
pub use maintenance::{DefragReport, StateCopy, StorageMaintenance, StorageSizes};
pub use reader::{AppliedChanges, AppliedState, StateMachineClosed, StateReader};
pub use restore::{inspect_saved_state, install_saved_state, SavedState};
pub use snapshot_builder::SnapshotBuilder;
pub use state_machine::StateMachineStore;

/// The raft log's file name in the data directory.
const LOG_FILE: &str = "raft-log.db";

/// Opens (creating if needed) the raft log and the state machine of the
/// member whose data lives in `data_dir`.
pub async fn open(data_dir: &Path) -> Result<(LogStore, StateMachineStore), StorageOpenError> {
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(|source| StorageOpenError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let log_path = data_dir.join(LOG_FILE);
    let log = LogStore::open(&log_path, log_cache::CacheLimits::default())
        .await
        .map_err(|source| StorageOpenError::Log {
            path: log_path,
            source,
        })?;
    let state_machine = StateMachineStore::open(data_dir).await?;
    Ok((log, state_machine))
}

#[cfg(test)]
mod suite_tests;
