//! Withdrawing a waiter's key when its call ends without a hold (the
//! client cancelled, the deadline passed, the core failed), so that a
//! waiter that gave up does not block the line until its lease expires.

use tracing::{debug, warn};

use crate::core::KvCore;
use crate::fence::fenced_txn;
use crate::held::FencingToken;
use crate::ops;

/// Deletes a waiting key when dropped while armed. The delete is fenced on
/// the key's create revision, so it never removes a later key of the same
/// name (a new wait by the same lease). It runs as a task on the current
/// tokio runtime, since `Drop` cannot wait.
pub(crate) struct Withdrawal<C: KvCore> {
    core: C,
    key: Vec<u8>,
    token: FencingToken,
    armed: bool,
}

impl<C: KvCore> Withdrawal<C> {
    /// A guard for `key` created at `create_revision`; armed only if this
    /// call created the key (a key it resumed belongs to an earlier call,
    /// which may still want it).
    pub fn new(core: &C, key: &[u8], create_revision: i64, armed: bool) -> Self {
        Withdrawal {
            core: core.clone(),
            key: key.to_vec(),
            token: FencingToken(create_revision),
            armed,
        }
    }

    /// Keeps the key: the call got its hold (or the key is gone anyway).
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<C: KvCore> Drop for Withdrawal<C> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let key = std::mem::take(&mut self.key);
        let txn = fenced_txn(&key, self.token, vec![ops::delete_op(&key)]);
        let core = self.core.clone();
        let token = self.token;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    match core.txn(txn).await {
                        Ok(resp) => debug!(
                            key = %String::from_utf8_lossy(&key),
                            %token,
                            deleted = resp.succeeded,
                            "withdrew a waiting key"
                        ),
                        Err(error) => warn!(
                            key = %String::from_utf8_lossy(&key),
                            %token,
                            %error,
                            "could not withdraw a waiting key: it stays until its lease expires"
                        ),
                    }
                });
            }
            Err(_) => warn!(
                key = %String::from_utf8_lossy(&key),
                %token,
                "no tokio runtime to withdraw a waiting key: it stays until its lease expires"
            ),
        }
    }
}
