//! A mutex with etcd's v3lock semantics: the caller's key is
//! `name/<lease in hex>` (etcd's layout, so `etcdctl lock NAME` contends on
//! the same keys), the oldest key holds the lock, and each waiter waits
//! for the key just ahead of it to go.

use crate::acquire::{acquire, Spec};
use crate::core::KvCore;
use crate::error::RecipeError;
use crate::held::Held;
use crate::keys::{self, Span};
use crate::ops;
use crate::queue::Ticket;

/// Acquires lock `name` for `lease`, waiting in arrival order. The lock is
/// held while the returned key exists: until [`unlock`] or the lease ends.
/// Locking again with the same lease resumes the same key (a lock already
/// held is returned at once, as etcd does).
pub async fn lock<C: KvCore>(core: &C, name: &[u8], lease: i64) -> Result<Held, RecipeError> {
    keys::check_name(name)?;
    keys::check_lease(lease)?;
    let prefix = keys::prefix(name);
    let key = keys::lease_key(&prefix, lease);
    let spec = Spec {
        ticket: Ticket {
            key: &key,
            value: b"",
            lease,
        },
        ahead: Span::prefix(prefix),
        slots: 1,
        size: None,
        announce: false,
    };
    acquire(core, &spec).await
}

/// Releases the hold `key` (a key [`lock`] returned); returns the
/// revision. Unlocking a key that is not held succeeds, as in etcd.
pub async fn unlock<C: KvCore>(core: &C, key: &[u8]) -> Result<i64, RecipeError> {
    keys::check_key(key)?;
    ops::write(core, ops::delete_op(key)).await
}
