//! A read-write lock, after etcd's recipes `RWMutex`: readers' keys are
//! `name/read/<lease in hex>`, writers' `name/write/<lease in hex>`, each
//! under its lease. A reader waits for the last writer that arrived before
//! it; a writer waits for the last key of either kind that arrived before
//! it. So readers share, a writer is alone, and a waiting writer holds
//! back readers that arrive after it.
//!
//! One read hold and one write hold per lease and name: reading again
//! with the same lease resumes the same key. A lease that holds the read
//! side and asks for the write side waits for itself (no upgrades).

use crate::acquire::{acquire, Spec};
use crate::core::KvCore;
use crate::error::RecipeError;
use crate::held::Held;
use crate::keys::{self, Span};
use crate::ops;
use crate::queue::Ticket;

/// Takes the read side of lock `name` for `lease`, waiting for earlier
/// writers. Held while the returned key exists: until [`unlock`] or the
/// lease ends.
pub async fn read_lock<C: KvCore>(core: &C, name: &[u8], lease: i64) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    let prefix = keys::prefix(name);
    let ahead = Span::prefix([prefix.as_slice(), b"write/"].concat());
    take(core, &prefix, b"read/", ahead, lease).await
}

/// Takes the write side of lock `name` for `lease`, waiting for every
/// earlier reader and writer. Held while the returned key exists: until
/// [`unlock`] or the lease ends.
pub async fn write_lock<C: KvCore>(core: &C, name: &[u8], lease: i64) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    let prefix = keys::prefix(name);
    let ahead = Span::prefix(prefix.clone());
    take(core, &prefix, b"write/", ahead, lease).await
}

/// Puts the caller's key under `prefix` + `side` and waits behind `ahead`.
async fn take<C: KvCore>(
    core: &C,
    prefix: &[u8],
    side: &[u8],
    ahead: Span,
    lease: i64,
) -> Result<Held, RecipeError> {
    keys::check_lease(lease)?;
    let key = keys::lease_key(&[prefix, side].concat(), lease);
    let spec = Spec {
        ticket: Ticket {
            key: &key,
            value: b"",
            lease,
        },
        ahead,
        slots: 1,
        size: None,
        announce: false,
    };
    acquire(core, &spec).await
}

/// Releases the hold `key` (a key [`read_lock`] or [`write_lock`]
/// returned); returns the revision.
pub async fn unlock<C: KvCore>(core: &C, key: &[u8]) -> Result<i64, RecipeError> {
    keys::check_key(key)?;
    ops::write(core, ops::delete_op(key)).await
}
