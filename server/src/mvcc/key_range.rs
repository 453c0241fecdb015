//! The key range of a request, decoded once from etcd's (key, range_end)
//! convention.

/// The keys a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly one key (`range_end` empty).
    Key(Vec<u8>),
    /// Every key `>= start` (`range_end` is `"\0"`).
    From(Vec<u8>),
    /// Every key in `[start, end)`; empty when `end <= start`.
    Between(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    /// Decodes etcd's `(key, range_end)` pair.
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => KeyRange::Key(key.to_vec()),
            [0] => KeyRange::From(key.to_vec()),
            end => KeyRange::Between(key.to_vec(), end.to_vec()),
        }
    }

    /// The first key of the range (inclusive).
    pub fn start(&self) -> &[u8] {
        match self {
            KeyRange::Key(k) | KeyRange::From(k) | KeyRange::Between(k, _) => k,
        }
    }

    /// The exclusive end of the range; `None` means unbounded. A single key
    /// `k` ends at `k\0`.
    pub fn end(&self) -> Option<Vec<u8>> {
        match self {
            KeyRange::Key(k) => {
                let mut end = k.clone();
                end.push(0);
                Some(end)
            }
            KeyRange::From(_) => None,
            KeyRange::Between(_, end) => Some(end.clone()),
        }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::Key(k) => key == k.as_slice(),
            KeyRange::From(start) => key >= start.as_slice(),
            KeyRange::Between(start, end) => key >= start.as_slice() && key < end.as_slice(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_etcd_conventions() {
        assert_eq!(KeyRange::new(b"a", b""), KeyRange::Key(b"a".to_vec()));
        assert_eq!(KeyRange::new(b"a", b"\0"), KeyRange::From(b"a".to_vec()));
        let prefix = KeyRange::new(b"a/", b"a0");
        assert!(prefix.contains(b"a/x"));
        assert!(!prefix.contains(b"a0"));
        assert!(!KeyRange::new(b"b", b"a").contains(b"b"));
        assert_eq!(KeyRange::new(b"a", b"").end(), Some(b"a\0".to_vec()));
    }
}
