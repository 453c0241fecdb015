//! Withdrawing a waiter's key when its call ends without a hold (the
//! client cancelled, the deadline passed, the core failed), so that a
//! waiter that gave up does not block the line until its lease expires.
//!
//! The key is put in a task of its own ([`join`]): a call dropped while
//! its put is in flight cannot know whether the put took effect, but the
//! task runs on and, its answer unwanted, drops the guard it returns,
//! which withdraws the key.
//!
//! A withdrawal may reach the store late (its member was cut off, a leader
//! changed) — after a retried call of the same lease has resumed the key
//! and even been granted the hold. So every call makes a write of its own
//! to the key (the create, or a rewrite when it resumes one), and its
//! withdrawal deletes the key only while the key's last write is still
//! that one: a late withdrawal of an earlier call finds a newer write and
//! changes nothing.

use tracing::{debug, warn};
use witan_proto::etcdserverpb::compare::CompareResult;

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::fence::fenced_txn;
use crate::held::FencingToken;
use crate::ops;
use crate::queue::{self, Entry, Ticket};
use crate::size::{self, Size};

/// Deletes a waiting key when dropped while armed. The delete is fenced on
/// the key's create revision and on this call's own write of it (its mod
/// revision), so it never removes a later key of the same name nor a key a
/// later call resumed. It runs as a task on the current tokio runtime,
/// since `Drop` cannot wait.
pub(crate) struct Withdrawal<C: KvCore> {
    core: C,
    key: Vec<u8>,
    token: FencingToken,
    mod_revision: i64,
    armed: bool,
}

impl<C: KvCore> Withdrawal<C> {
    /// An armed guard for `entry`'s key as this call last wrote it.
    pub fn new(core: &C, entry: &Entry) -> Self {
        Withdrawal {
            core: core.clone(),
            key: entry.key.clone(),
            token: FencingToken(entry.create_revision),
            mod_revision: entry.mod_revision,
            armed: true,
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
        let mut txn = fenced_txn(&key, self.token, vec![ops::delete_op(&key)]);
        txn.compare.push(ops::compare_mod(
            &key,
            CompareResult::Equal,
            self.mod_revision,
        ));
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

/// Puts (or resumes and rewrites) the ticket's key, checking `size` first
/// if given, in a task of its own; returns the entry and its armed guard.
/// If the caller is dropped first, the task's output is dropped with the
/// guard in it, so the key does not outlive the call.
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
        loop {
            let mut entry = match &size {
                Some(size) => size::join(&core, size, &ticket).await?,
                None => queue::enqueue(&core, &ticket).await?,
            };
            if !entry.created {
                // Claim the resumed key with a write of this call's own
                // (keeping its place in line: same create revision), with
                // this call's value (a campaign again proclaims it).
                let put = vec![ops::put_op(&key, &value, lease)];
                let token = FencingToken(entry.create_revision);
                let resp = core.txn(fenced_txn(&key, token, put)).await?;
                if !resp.succeeded {
                    // The key went away in between: join afresh.
                    continue;
                }
                entry.mod_revision = ops::revision(&resp.header)?;
                entry.value = value.clone();
            }
            let guard = Withdrawal::new(&core, &entry);
            return Ok((entry, guard));
        }
    });
    match task.await {
        Ok(joined) => joined,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(RecipeError::UnexpectedResponse(
            "the runtime cancelled the task joining the line",
        )),
    }
}
