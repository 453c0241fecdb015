//! Withdrawing a waiter's key when its call ends without a hold (the
//! client cancelled, the deadline passed, the core failed), so that a
//! waiter that gave up does not block the line until its lease expires.
//!
//! The key is put in a task of its own ([`join`]): a call dropped while
//! its put is in flight cannot know whether the put took effect, but the
//! task runs on and, its answer unwanted, drops the guard it returns,
//! which withdraws the key.

use tracing::{debug, warn};

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::fence::fenced_txn;
use crate::held::FencingToken;
use crate::ops;
use crate::queue::{self, Entry, Ticket};
use crate::size::{self, Size};

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

/// Puts (or resumes) the ticket's key, checking `size` first if given, in
/// a task of its own; returns the entry and its guard, armed if this call
/// created the key. If the caller is dropped first, the task's output is
/// dropped with the guard in it, so the key does not outlive the call.
pub(crate) async fn join<C: KvCore>(
    core: &C,
    ticket: &Ticket<'_>,
    size: Option<&Size>,
) -> Result<(Entry, Withdrawal<C>), RecipeError> {
    let core = core.clone();
    let (key, value, lease) = (ticket.key.to_vec(), ticket.value.to_vec(), ticket.lease);
    let size = size.cloned();
    let task = tokio::spawn(async move {
        let ticket = Ticket {
            key: &key,
            value: &value,
            lease,
        };
        let entry = match &size {
            Some(size) => size::join(&core, size, &ticket).await?,
            None => queue::enqueue(&core, &ticket).await?,
        };
        let guard = Withdrawal::new(&core, &entry.key, entry.create_revision, entry.created);
        Ok((entry, guard))
    });
    match task.await {
        Ok(joined) => joined,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(RecipeError::UnexpectedResponse(
            "the runtime cancelled the task joining the line",
        )),
    }
}
