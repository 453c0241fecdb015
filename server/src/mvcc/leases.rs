//! The replicated lease table: every lease's TTL and expiry on the
//! replicated lease clock, the keys attached to each, and the lease
//! commands (grant, revoke, keepalive, tick, expire). See docs/LEASES.md
//! for why expiry is expressed on a clock that only ticks by time a leader
//! measured.
//!
//! Deterministic like the rest of `mvcc`: no wall clock here.

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};

use super::{Change, MvccError};

/// One lease's replicated state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The granted TTL in seconds.
    pub ttl: i64,
    /// When it expires on the lease clock (ms); `None` until the first tick
    /// after its grant.
    pub expires_at: Option<i64>,
    /// Granted or kept alive since the last tick: the next tick restarts
    /// its TTL.
    pub refreshed: bool,
}

/// What a caller may see of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease ID.
    pub id: i64,
    /// The granted TTL in seconds.
    pub ttl: i64,
    /// Milliseconds left on the lease clock as of the last tick (the full
    /// TTL while a refresh waits for its tick).
    pub remaining_ms: i64,
    /// The keys attached to it, in key order.
    pub keys: Vec<Vec<u8>>,
}

/// Every lease, the keys attached to each, and the lease clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaseTable {
    leases: OrdMap<i64, Lease>,
    /// Lease → attached keys; rebuilt from the live keys on restore.
    keys: OrdMap<i64, OrdSet<Bytes>>,
    /// (expires_at, id) of every lease with an expiry, soonest first.
    by_expiry: OrdSet<(i64, i64)>,
    /// Leases granted or refreshed since the last tick.
    refreshed: OrdSet<i64>,
    /// The lease clock in ms: advanced only by ticks.
    clock_ms: i64,
}

impl LeaseTable {
    /// Rebuilds the table from persisted leases, the clock, and the live
    /// keys with their leases.
    pub fn restore(
        leases: impl IntoIterator<Item = (i64, Lease)>,
        clock_ms: i64,
        attached: impl IntoIterator<Item = (Bytes, i64)>,
    ) -> Self {
        let mut table = LeaseTable {
            clock_ms,
            ..LeaseTable::default()
        };
        for (id, lease) in leases {
            table.insert(id, lease);
        }
        for (key, lease) in attached {
            table.attach(lease, key);
        }
        table
    }

    /// The lease clock (ms).
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    /// Every lease by ID, for persistence (a persistent map: `diff` against
    /// an older table finds what changed).
    pub fn leases(&self) -> &OrdMap<i64, Lease> {
        &self.leases
    }

    /// Whether lease `id` exists.
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// What a caller may see of lease `id`.
    pub fn info(&self, id: i64) -> Option<LeaseInfo> {
        let lease = self.leases.get(&id)?;
        let remaining_ms = match lease.expires_at {
            Some(at) if !lease.refreshed => (at - self.clock_ms).max(0),
            _ => lease.ttl.saturating_mul(1000),
        };
        let keys = self
            .keys
            .get(&id)
            .map(|keys| keys.iter().map(|k| k.to_vec()).collect())
            .unwrap_or_default();
        Some(LeaseInfo {
            id,
            ttl: lease.ttl,
            remaining_ms,
            keys,
        })
    }

    /// Every lease ID, ascending.
    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.leases.keys().copied()
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// Whether there is no lease.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Up to `limit` leases expired on the clock, soonest first.
    pub fn expired(&self, limit: usize) -> Vec<i64> {
        self.by_expiry
            .iter()
            .take_while(|(at, _)| *at <= self.clock_ms)
            .take(limit)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Checks that a put may attach `lease` (0: no lease).
    pub fn check(&self, lease: i64) -> Result<(), MvccError> {
        if lease == 0 || self.contains(lease) {
            Ok(())
        } else {
            Err(MvccError::LeaseNotFound)
        }
    }

    /// Creates lease `id` with `ttl` seconds; it counts from the next tick.
    pub fn grant(&mut self, id: i64, ttl: i64) -> Result<(), MvccError> {
        // 0 is "no lease" (etcd's NoLease, refused the same way): granted,
        // revoking it would delete every key without a lease. The API
        // never proposes it, but a forwarded batch comes from a peer.
        if id == 0 {
            return Err(MvccError::LeaseNotFound);
        }
        if self.contains(id) {
            return Err(MvccError::LeaseExists);
        }
        self.insert(
            id,
            Lease {
                ttl,
                expires_at: None,
                refreshed: true,
            },
        );
        Ok(())
    }

    /// Marks lease `id` kept alive; returns its TTL, or `None` if it does
    /// not exist.
    pub fn keep_alive(&mut self, id: i64) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        lease.refreshed = true;
        let ttl = lease.ttl;
        self.refreshed.insert(id);
        Some(ttl)
    }

    /// Advances the clock by `elapsed_ms`, then restarts the TTL of every
    /// lease refreshed since the previous tick.
    pub fn tick(&mut self, elapsed_ms: i64) {
        self.clock_ms = self.clock_ms.saturating_add(elapsed_ms.max(0));
        let refreshed: Vec<(i64, Lease)> = std::mem::take(&mut self.refreshed)
            .into_iter()
            .filter_map(|id| self.leases.get(&id).map(|lease| (id, *lease)))
            .collect();
        for (id, lease) in refreshed {
            let expires_at = self.clock_ms.saturating_add(lease.ttl.saturating_mul(1000));
            self.insert(
                id,
                Lease {
                    ttl: lease.ttl,
                    expires_at: Some(expires_at),
                    refreshed: false,
                },
            );
        }
    }

    /// Whether lease `id` exists and has expired on the clock.
    pub fn is_expired(&self, id: i64) -> bool {
        self.leases
            .get(&id)
            .is_some_and(|l| !l.refreshed && l.expires_at.is_some_and(|at| at <= self.clock_ms))
    }

    /// Removes lease `id`; returns its attached keys (to delete), or `None`
    /// if it does not exist.
    pub fn remove(&mut self, id: i64) -> Option<Vec<Bytes>> {
        let lease = self.leases.remove(&id)?;
        self.refreshed.remove(&id);
        if let Some(at) = lease.expires_at {
            self.by_expiry.remove(&(at, id));
        }
        let keys = self.keys.remove(&id).unwrap_or_default();
        Some(keys.into_iter().collect())
    }

    /// Keeps the lease → keys index in step with committed key changes.
    pub fn track(&mut self, changes: &[Change]) {
        for change in changes {
            let key = change.kv.key.as_slice();
            if let Some(prev) = &change.prev {
                if prev.lease != 0 {
                    self.detach(prev.lease, key);
                }
            }
            if !change.deleted && change.kv.lease != 0 {
                self.attach(change.kv.lease, Bytes::copy_from_slice(key));
            }
        }
    }

    fn insert(&mut self, id: i64, lease: Lease) {
        if let Some(old) = self.leases.insert(id, lease) {
            if let Some(at) = old.expires_at {
                self.by_expiry.remove(&(at, id));
            }
        }
        if let Some(at) = lease.expires_at {
            self.by_expiry.insert((at, id));
        }
        if lease.refreshed {
            self.refreshed.insert(id);
        }
    }

    fn attach(&mut self, lease: i64, key: Bytes) {
        self.keys.entry(lease).or_default().insert(key);
    }

    fn detach(&mut self, lease: i64, key: &[u8]) {
        if let Some(keys) = self.keys.get_mut(&lease) {
            keys.remove(key);
            if keys.is_empty() {
                self.keys.remove(&lease);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::mvccpb::KeyValue;

    use super::*;

    fn put(key: &str, lease: i64, prev_lease: Option<i64>) -> Change {
        Change {
            kv: KeyValue {
                key: key.into(),
                lease,
                ..KeyValue::default()
            },
            sub: 0,
            deleted: false,
            prev: prev_lease.map(|lease| KeyValue {
                key: key.into(),
                lease,
                ..KeyValue::default()
            }),
        }
    }

    #[test]
    fn a_lease_counts_from_the_tick_after_its_grant_or_keepalive() {
        let mut t = LeaseTable::default();
        t.grant(7, 5).unwrap();
        assert!(matches!(t.grant(7, 5), Err(MvccError::LeaseExists)));
        t.tick(10_000);
        assert!(t.expired(10).is_empty(), "no expiry before its first tick");
        assert_eq!(t.info(7).unwrap().remaining_ms, 5_000);
        t.tick(4_999);
        assert!(t.expired(10).is_empty());
        assert_eq!(t.keep_alive(7), Some(5));
        t.tick(1);
        assert!(
            t.expired(10).is_empty(),
            "a keepalive restarts the TTL at the next tick"
        );
        t.tick(5_000);
        assert_eq!(t.expired(10), [7]);
        assert!(t.is_expired(7));
        assert_eq!(t.keep_alive(8), None);
    }

    #[test]
    fn keys_follow_puts_and_deletes() {
        let mut t = LeaseTable::default();
        t.grant(1, 10).unwrap();
        t.grant(2, 10).unwrap();
        t.track(&[put("a", 1, None), put("b", 1, None)]);
        t.track(&[put("b", 2, Some(1))]);
        assert_eq!(t.info(1).unwrap().keys, [b"a".to_vec()]);
        assert_eq!(t.info(2).unwrap().keys, [b"b".to_vec()]);
        let mut delete = put("a", 0, Some(1));
        delete.deleted = true;
        t.track(&[delete]);
        assert!(t.info(1).unwrap().keys.is_empty());
        assert_eq!(t.remove(2), Some(vec![Bytes::from_static(b"b")]));
        assert_eq!(t.remove(2), None);
        assert!(matches!(t.check(2), Err(MvccError::LeaseNotFound)));
    }

    #[test]
    fn restore_rebuilds_the_expiry_order_and_key_index() {
        let mut t = LeaseTable::default();
        t.grant(1, 1).unwrap();
        t.grant(2, 2).unwrap();
        t.tick(100);
        t.track(&[put("k", 2, None)]);
        let restored = LeaseTable::restore(
            t.leases().iter().map(|(id, l)| (*id, *l)),
            t.clock_ms(),
            [(Bytes::from_static(b"k"), 2)],
        );
        assert_eq!(restored, t);
        let mut later = restored.clone();
        later.tick(1_000);
        assert_eq!(later.expired(10), [1]);
    }
}
