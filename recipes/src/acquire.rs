//! Getting a hold through the queue: join the line, wait for the turn,
//! confirm the key is still there, withdraw it if the call ends first.
//! Lock, semaphore, read-write lock and election campaign are each one
//! [`Spec`] passed to [`acquire`].

use crate::core::{CoreError, KvCore};
use crate::error::RecipeError;
use crate::fence::fenced_txn;
use crate::held::{FencingToken, Held};
use crate::keys::Span;
use crate::ops;
use crate::queue::{wait_turn, Entry, Ticket, Turn};
use crate::size::Size;
use crate::withdraw;

/// One blocking acquisition.
#[derive(Debug, Clone)]
pub(crate) struct Spec<'a> {
    /// The caller's key, value and lease.
    pub ticket: Ticket<'a>,
    /// The keys the caller queues behind (its own key is ahead of nothing:
    /// only keys created before it count).
    pub ahead: Span,
    /// How many holders at once.
    pub slots: u32,
    /// A recorded size to agree on before joining.
    pub size: Option<Size>,
    /// Touch the key once the turn comes, to wake a successor waiting on
    /// it (needed with more than one slot: see [`crate::queue`]).
    pub announce: bool,
}

/// Joins the line and waits for the turn; returns the hold. A key this
/// call created is withdrawn if the call ends without the hold. If the key
/// disappears while waiting, the call joins again (a fresh place at the
/// back), which fails with [`RecipeError::LeaseExpired`] once the lease is
/// gone; a lease unknown from the start is [`CoreError::LeaseNotFound`].
pub(crate) async fn acquire<C: KvCore>(core: &C, spec: &Spec<'_>) -> Result<Held, RecipeError> {
    let ticket = &spec.ticket;
    let mut first = true;
    loop {
        let (entry, mut withdrawal) = match withdraw::join(core, ticket, spec.size.as_ref()).await {
            Ok(joined) => joined,
            // The key vanished while waiting and the lease is gone too.
            Err(RecipeError::Core(CoreError::LeaseNotFound)) if !first => {
                return Err(RecipeError::LeaseExpired)
            }
            Err(error) => return Err(error),
        };
        first = false;
        match take_turn(core, spec, &entry).await? {
            Some(revision) => {
                withdrawal.disarm();
                return Ok(Held {
                    key: entry.key,
                    token: FencingToken(entry.create_revision),
                    revision,
                });
            }
            None => {
                // The key is gone: nothing to withdraw.
                withdrawal.disarm();
                tracing::debug!(
                    key = %String::from_utf8_lossy(&entry.key),
                    "the waiting key disappeared; joining again"
                );
            }
        }
    }
}

/// Waits for the entry's turn; `None` if its key disappeared.
async fn take_turn<C: KvCore>(
    core: &C,
    spec: &Spec<'_>,
    entry: &Entry,
) -> Result<Option<i64>, RecipeError> {
    let ticket = &spec.ticket;
    let token = FencingToken(entry.create_revision);
    // (A resumed key already carries the caller's value: joining rewrote
    // it, which is how a campaign again proclaims its new value.)
    let revision = match wait_turn(core, entry, &spec.ahead, spec.slots).await? {
        Turn::Granted(revision) => revision,
        Turn::Gone => return Ok(None),
    };
    if !spec.announce {
        return Ok(Some(revision));
    }
    let touch = vec![ops::put_op(ticket.key, ticket.value, ticket.lease)];
    let resp = core.txn(fenced_txn(ticket.key, token, touch)).await?;
    if !resp.succeeded {
        return Ok(None);
    }
    Ok(Some(ops::revision(&resp.header)?))
}
