//! What an acquisition gives: the holder key and its fencing token.

use std::fmt;

/// A fencing token: the create revision of the holder key. Every
/// acquisition of any recipe creates a new key, and the store's revision
/// only grows, so a later hold always has a larger token than an earlier
/// one. A guarded resource that remembers the largest token it has seen
/// (or a [`fenced_txn`](crate::fenced_txn) that compares the holder key's
/// create revision) refuses a holder that lost its hold without knowing:
/// a process paused past its lease's TTL cannot tell it was paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub i64);

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A hold on a lock, permit, read-write lock side or double barrier: the
/// key that exists (under the caller's lease) while the hold lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The holder key: pass it back to release the hold.
    pub key: Vec<u8>,
    /// The hold's fencing token (the key's create revision).
    pub token: FencingToken,
    /// The store revision at which the hold was confirmed.
    pub revision: i64,
}
