//! Keys and values for the workloads. A key is the run's prefix followed
//! by a zero-padded decimal number that fills it to exactly `--key-size`
//! bytes, so every key of a run has the same size and sorts in number
//! order; the numbers come from a key space `[0, space)`, in order
//! (wrapping) or uniformly at random.

use rand::Rng;

/// Why a key layout cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The prefix and the widest number do not fit in the key size.
    #[error("--key-size {key_size} is too small: keys under prefix {prefix:?} need at least {needed} bytes for {space} keys")]
    TooSmall {
        /// The key size asked for.
        key_size: usize,
        /// The run's prefix.
        prefix: String,
        /// The number of distinct keys asked for.
        space: u64,
        /// The smallest key size that fits.
        needed: usize,
    },
    /// A key space must hold at least one key.
    #[error("--key-space must be at least 1")]
    EmptySpace,
}

/// The order in which a workload walks its key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyOrder {
    /// Operation `i` uses key `i mod space`.
    Sequential,
    /// Every operation draws a key uniformly from the space.
    Random,
}

/// The largest power of ten a `u64` holds: a key space wider than this
/// is as good as unbounded.
const MAX_DIGITS: usize = 19;

/// Makes the keys of one run.
#[derive(Debug, Clone)]
pub struct KeyGen {
    prefix: Vec<u8>,
    width: usize,
    space: u64,
    order: KeyOrder,
}

impl KeyGen {
    /// Keys of `key_size` bytes under `prefix`, drawn from `space`
    /// distinct numbers (`None`: as many as the padding can write).
    pub fn new(
        prefix: &str,
        key_size: usize,
        space: Option<u64>,
        order: KeyOrder,
    ) -> Result<KeyGen, KeyError> {
        let width = key_size.saturating_sub(prefix.len());
        let space = match space {
            Some(0) => return Err(KeyError::EmptySpace),
            Some(space) => space,
            None => 10u64.pow(width.clamp(1, MAX_DIGITS) as u32),
        };
        let needed = prefix.len() + digits(space - 1);
        if key_size < needed {
            return Err(KeyError::TooSmall {
                key_size,
                prefix: prefix.to_owned(),
                space,
                needed,
            });
        }
        Ok(KeyGen {
            prefix: prefix.as_bytes().to_vec(),
            width,
            space,
            order,
        })
    }

    /// The number of distinct keys.
    pub fn space(&self) -> u64 {
        self.space
    }

    /// The key for number `n` (taken modulo the space).
    pub fn key(&self, n: u64) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + self.width);
        key.extend_from_slice(&self.prefix);
        key.extend_from_slice(format!("{:0width$}", n % self.space, width = self.width).as_bytes());
        key
    }

    /// The key for the `op`-th operation of the run.
    pub fn for_op(&self, op: u64, rng: &mut impl Rng) -> Vec<u8> {
        match self.order {
            KeyOrder::Sequential => self.key(op),
            KeyOrder::Random => self.key(rng.gen_range(0..self.space)),
        }
    }
}

/// Decimal digits of `n`.
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// The end of the range holding every key that starts with `prefix`
/// (etcd's `range_end` for a prefix): the prefix with its last byte that
/// is not 0xff incremented and what follows it dropped.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: "\0" means "to the end of the keyspace".
    vec![0]
}

/// A value of `size` bytes that is the same for every run (printable, so
/// a human reading the store sees what it is) with `stamp` written over
/// its start, so successive writes of one key differ.
pub fn value(size: usize, stamp: u64) -> Vec<u8> {
    let mut value: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let stamp = stamp.to_string();
    let n = stamp.len().min(size);
    value[..n].copy_from_slice(&stamp.as_bytes()[..n]);
    value
}

/// A prefix no other run shares: `witan-bench/<8 hex digits>/`.
pub fn run_prefix() -> String {
    format!("witan-bench/{:08x}/", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keys_have_the_asked_size_and_pad_the_number() {
        let keys = KeyGen::new("p/", 8, Some(1000), KeyOrder::Sequential).unwrap();
        assert_eq!(keys.key(7), b"p/000007".to_vec());
        assert_eq!(keys.key(999).len(), 8);
    }

    #[test]
    fn sequential_keys_wrap_at_the_space() {
        let keys = KeyGen::new("k", 4, Some(3), KeyOrder::Sequential).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let seen: Vec<Vec<u8>> = (0..4).map(|i| keys.for_op(i, &mut rng)).collect();
        assert_eq!(
            seen,
            vec![
                b"k000".to_vec(),
                b"k001".to_vec(),
                b"k002".to_vec(),
                b"k000".to_vec()
            ]
        );
    }

    #[test]
    fn random_keys_stay_in_the_space_and_cover_it() {
        let keys = KeyGen::new("k/", 6, Some(10), KeyOrder::Random).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..1000 {
            let key = keys.for_op(i, &mut rng);
            assert!(key.starts_with(b"k/"));
            let n: u64 = std::str::from_utf8(&key[2..]).unwrap().parse().unwrap();
            assert!(n < 10);
            seen.insert(n);
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn an_unbounded_space_is_as_wide_as_the_padding() {
        let keys = KeyGen::new("ab", 6, None, KeyOrder::Sequential).unwrap();
        assert_eq!(keys.space(), 10_000);
        assert_eq!(keys.key(12_345), b"ab2345".to_vec());
        let wide = KeyGen::new("", 40, None, KeyOrder::Random).unwrap();
        assert_eq!(wide.space(), 10u64.pow(19));
        assert_eq!(wide.key(5).len(), 40);
    }

    #[test]
    fn a_key_size_too_small_for_the_space_is_refused() {
        let err = KeyGen::new("witan/", 8, Some(1000), KeyOrder::Random).unwrap_err();
        assert_eq!(
            err,
            KeyError::TooSmall {
                key_size: 8,
                prefix: "witan/".into(),
                space: 1000,
                needed: 9
            }
        );
        assert!(KeyGen::new("witan/", 6, None, KeyOrder::Random).is_err());
        assert_eq!(
            KeyGen::new("k", 4, Some(0), KeyOrder::Random).unwrap_err(),
            KeyError::EmptySpace
        );
    }

    #[test]
    fn prefix_end_covers_exactly_the_prefix() {
        assert_eq!(prefix_end(b"a/"), b"a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn values_have_the_size_and_carry_the_stamp() {
        assert_eq!(value(5, 0), b"0bcde".to_vec());
        assert_eq!(value(8, 1234), b"1234efgh".to_vec());
        assert_eq!(value(2, 98765), b"98".to_vec());
        assert_eq!(value(256, 3).len(), 256);
        assert!(value(0, 3).is_empty());
    }

    #[test]
    fn run_prefixes_differ() {
        let a = run_prefix();
        assert!(a.starts_with("witan-bench/") && a.ends_with('/'));
        assert_eq!(a.len(), "witan-bench/".len() + 9);
        assert_ne!(a, run_prefix());
    }
}
