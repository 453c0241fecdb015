//! openraft's storage conformance suite, run against our stores.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;

use super::{open, LogStore, StateMachineStore};
use crate::raft::{StorageError, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let (log, sm) = open(dir.path())
            .await
            .map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

/// Every check of openraft 0.9's suite (log, vote, membership recovery,
/// apply, snapshot transfer), each on a fresh data directory.
#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}
