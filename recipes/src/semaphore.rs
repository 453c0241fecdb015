//! A counting semaphore: at most `permits` holders at once, served in
//! arrival order. Holders' keys are `name/holders/<lease in hex>` under
//! their leases; `name/size` records the number of permits (see
//! [`crate::size`]). A waiter watches only the keys it depends on (see
//! [`crate::queue`]).

use crate::acquire::{self, Spec};
use crate::core::KvCore;
use crate::error::RecipeError;
use crate::held::Held;
use crate::keys::{self, Span};
use crate::ops;
use crate::queue::Ticket;
use crate::size::Size;

/// Acquires a permit of semaphore `name` (admitting `permits` holders at
/// once; every caller must give the same number) for `lease`, waiting in
/// arrival order. The permit is held while the returned key exists: until
/// [`release`] or the lease ends. One permit per lease: acquiring again
/// with the same lease resumes the same key.
pub async fn acquire<C: KvCore>(
    core: &C,
    name: &[u8],
    permits: u32,
    lease: i64,
) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    if permits == 0 {
        return Err(RecipeError::InvalidArgument("permits must be at least 1"));
    }
    let prefix = keys::prefix(name);
    let holders = [prefix.as_slice(), b"holders/"].concat();
    let key = keys::lease_key(&holders, lease);
    let holders = Span::prefix(holders);
    let spec = Spec {
        ticket: Ticket {
            key: &key,
            value: b"",
            lease,
        },
        ahead: holders.clone(),
        slots: permits,
        size: Some(Size {
            key: [prefix.as_slice(), b"size"].concat(),
            members: holders,
            what: "semaphore permits",
            size: permits,
        }),
        announce: permits > 1,
    };
    acquire::acquire(core, &spec).await
}

/// Releases the permit `key` (a key [`acquire`] returned); returns the
/// revision. Releasing a permit that is not held succeeds.
pub async fn release<C: KvCore>(core: &C, key: &[u8]) -> Result<i64, RecipeError> {
    keys::check_key(key)?;
    ops::write(core, ops::delete_op(key)).await
}
