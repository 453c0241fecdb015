//! Key layout. Locks and elections use etcd's client-side concurrency
//! layout (`name/<lease in hex>`), so `etcdctl lock NAME`, `etcdctl elect
//! NAME` and witan's services contend on the same keys; the recipes etcd
//! lacks keep every key of one name under `name/`.

use crate::error::RecipeError;

/// The prefix every key of recipe `name` lives under: `name/`.
pub fn prefix(name: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(name.len() + 1);
    prefix.extend_from_slice(name);
    prefix.push(b'/');
    prefix
}

/// A lease id as Go's `%x` prints it (what etcd's concurrency package puts
/// in key names): lowercase hex, a minus sign for a negative id.
pub fn lease_hex(lease: i64) -> String {
    if lease < 0 {
        format!("-{:x}", lease.unsigned_abs())
    } else {
        format!("{lease:x}")
    }
}

/// The key of the holder (or waiter) with `lease` under `prefix`.
pub fn lease_key(prefix: &[u8], lease: i64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(lease_hex(lease).as_bytes());
    key
}

/// etcd's prefix range end: `prefix` with its last byte below 0xff
/// incremented (and what follows it dropped); `[0]` (every key from
/// `prefix` on) when there is no such byte.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A key range `[start, end)` in etcd's terms (an empty `end`: the key
/// `start` alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    /// The first key.
    pub start: Vec<u8>,
    /// The end (exclusive).
    pub end: Vec<u8>,
}

impl Span {
    /// Every key under `prefix`.
    pub fn prefix(prefix: Vec<u8>) -> Self {
        let end = prefix_end(&prefix);
        Span { start: prefix, end }
    }
}

/// Refuses an empty recipe name (its keys would sit at the root).
pub(crate) fn check_name(name: &[u8]) -> Result<(), RecipeError> {
    if name.is_empty() {
        return Err(RecipeError::InvalidArgument("the name is empty"));
    }
    Ok(())
}

/// Refuses lease 0: every holder and waiter must live under a lease, so
/// that one that dies lets go when its lease expires.
pub(crate) fn check_lease(lease: i64) -> Result<(), RecipeError> {
    if lease == 0 {
        return Err(RecipeError::InvalidArgument("a lease is required"));
    }
    Ok(())
}

/// Refuses an empty holder key.
pub(crate) fn check_key(key: &[u8]) -> Result<(), RecipeError> {
    if key.is_empty() {
        return Err(RecipeError::InvalidArgument("the key is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_match_etcds_concurrency_package() {
        // What `etcdctl lock mylock` creates for lease 0x390da1fc91633107.
        assert_eq!(
            lease_key(&prefix(b"mylock"), 0x390d_a1fc_9163_3107),
            b"mylock/390da1fc91633107"
        );
        assert_eq!(lease_hex(255), "ff");
        assert_eq!(lease_hex(-255), "-ff");
        assert_eq!(lease_hex(i64::MIN), "-8000000000000000");
    }

    #[test]
    fn prefix_end_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_end(b"lock/"), b"lock0");
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b");
        assert_eq!(prefix_end(&[0xff, 0xff]), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
        assert_eq!(
            Span::prefix(b"x/".to_vec()),
            Span {
                start: b"x/".to_vec(),
                end: b"x0".to_vec()
            }
        );
    }

    #[test]
    fn names_leases_and_keys_are_checked() {
        assert!(matches!(
            check_name(b""),
            Err(RecipeError::InvalidArgument(_))
        ));
        assert!(check_name(b"n").is_ok());
        assert!(matches!(
            check_lease(0),
            Err(RecipeError::InvalidArgument(_))
        ));
        assert!(check_lease(7).is_ok());
        assert!(matches!(
            check_key(b""),
            Err(RecipeError::InvalidArgument(_))
        ));
    }
}
