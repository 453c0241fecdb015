//! Lease lookups the key-value commands need. There is no lease table yet,
//! so every lease is unknown; this is the one place a lease table plugs in.

use super::{KvState, MvccError};

impl KvState {
    /// Checks that a put may attach `lease` (0: no lease).
    pub(super) fn check_lease(&self, lease: i64) -> Result<(), MvccError> {
        if lease == 0 {
            Ok(())
        } else {
            Err(MvccError::LeaseNotFound)
        }
    }
}
