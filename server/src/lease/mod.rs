//! Leases on the leader's clock: the lessor task that, on the leader only,
//! advances the replicated lease clock and proposes the revocation of
//! expired leases. The lease state itself is replicated (`mvcc::LeaseTable`);
//! docs/LEASES.md explains the expiry guarantee.
//!
//! Nothing here knows about gRPC or SQL.

mod lessor;

pub use lessor::{Lessor, LessorSettings, MAX_EXPIRE_BATCH};

/// etcd's largest lease TTL, in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// etcd's minimum lease TTL for an election timeout: ⌈1.5 × election⌉ in
/// seconds, so a lease cannot expire during a single election.
pub fn min_lease_ttl(election_timeout_ms: u64) -> i64 {
    let ms = election_timeout_ms.saturating_mul(3) / 2;
    i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_ttl_is_one_and_a_half_elections_rounded_up() {
        assert_eq!(min_lease_ttl(1000), 2);
        assert_eq!(min_lease_ttl(500), 1);
        assert_eq!(min_lease_ttl(2000), 3);
        assert_eq!(min_lease_ttl(5000), 8);
    }
}
