//! Transaction guards: [`Compare`] one key's (or range's) version,
//! revisions, value or lease with a [`Cmp`].

use witan_proto::etcdserverpb::Compare as RawCompare;
use witan_proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};

use super::key_value::prefix_end;

/// How a [`Compare`] relates the stored field to the given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Stored == given.
    Equal,
    /// Stored != given.
    NotEqual,
    /// Stored > given.
    Greater,
    /// Stored < given.
    Less,
}

impl Cmp {
    fn raw(self) -> CompareResult {
        match self {
            Cmp::Equal => CompareResult::Equal,
            Cmp::NotEqual => CompareResult::NotEqual,
            Cmp::Greater => CompareResult::Greater,
            Cmp::Less => CompareResult::Less,
        }
    }
}

/// One guard of a [`Txn`](crate::Txn): a field of a key compared with a
/// value. A key that does not exist has version, revisions and lease 0
/// and an empty value.
///
/// ```
/// use witan_client::{Cmp, Compare};
///
/// let absent = Compare::create_revision("/lock", Cmp::Equal, 0);
/// let unchanged = Compare::mod_revision("/config", Cmp::Equal, 42);
/// let enabled = Compare::value("/flags/beta", Cmp::Equal, "on");
/// let none_leased = Compare::lease("/workers/", Cmp::Equal, 0).prefix();
/// # let _ = (absent, unchanged, enabled, none_leased);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Compare(pub(crate) RawCompare);

impl Compare {
    fn new(key: impl Into<Vec<u8>>, cmp: Cmp, target: CompareTarget, value: TargetUnion) -> Self {
        Compare(RawCompare {
            result: cmp.raw() as i32,
            target: target as i32,
            key: key.into(),
            target_union: Some(value),
            range_end: Vec::new(),
        })
    }

    /// Compares the key's version (0: absent).
    pub fn version(key: impl Into<Vec<u8>>, cmp: Cmp, version: i64) -> Self {
        Compare::new(
            key,
            cmp,
            CompareTarget::Version,
            TargetUnion::Version(version),
        )
    }

    /// Compares the key's create revision (0: absent).
    pub fn create_revision(key: impl Into<Vec<u8>>, cmp: Cmp, revision: i64) -> Self {
        Compare::new(
            key,
            cmp,
            CompareTarget::Create,
            TargetUnion::CreateRevision(revision),
        )
    }

    /// Compares the key's mod revision (0: absent).
    pub fn mod_revision(key: impl Into<Vec<u8>>, cmp: Cmp, revision: i64) -> Self {
        Compare::new(
            key,
            cmp,
            CompareTarget::Mod,
            TargetUnion::ModRevision(revision),
        )
    }

    /// Compares the key's value.
    pub fn value(key: impl Into<Vec<u8>>, cmp: Cmp, value: impl Into<Vec<u8>>) -> Self {
        Compare::new(
            key,
            cmp,
            CompareTarget::Value,
            TargetUnion::Value(value.into()),
        )
    }

    /// Compares the key's lease (0: none).
    pub fn lease(key: impl Into<Vec<u8>>, cmp: Cmp, lease: i64) -> Self {
        Compare::new(key, cmp, CompareTarget::Lease, TargetUnion::Lease(lease))
    }

    /// The key does not exist: `create_revision == 0`, the guard of
    /// put-if-absent, locks and elections.
    pub fn absent(key: impl Into<Vec<u8>>) -> Self {
        Compare::create_revision(key, Cmp::Equal, 0)
    }

    /// Applies the comparison to every key starting with the key given
    /// (each must satisfy it).
    pub fn prefix(mut self) -> Self {
        self.0.range_end = prefix_end(&self.0.key);
        self
    }

    /// Applies the comparison to every key from the key given up to `end`
    /// (exclusive).
    pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.0.range_end = end.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_name_their_target_and_result() {
        let c = Compare::mod_revision("k", Cmp::Less, 9).0;
        assert_eq!(c.key, b"k");
        assert_eq!(c.target, CompareTarget::Mod as i32);
        assert_eq!(c.result, CompareResult::Less as i32);
        assert_eq!(c.target_union, Some(TargetUnion::ModRevision(9)));

        let c = Compare::value("k", Cmp::NotEqual, "v").0;
        assert_eq!(c.target, CompareTarget::Value as i32);
        assert_eq!(c.result, CompareResult::NotEqual as i32);
        assert_eq!(c.target_union, Some(TargetUnion::Value(b"v".to_vec())));

        let c = Compare::absent("k").0;
        assert_eq!(c.target, CompareTarget::Create as i32);
        assert_eq!(c.result, CompareResult::Equal as i32);
        assert_eq!(c.target_union, Some(TargetUnion::CreateRevision(0)));

        let c = Compare::version("k", Cmp::Greater, 1).prefix().0;
        assert_eq!(c.target_union, Some(TargetUnion::Version(1)));
        assert_eq!(c.range_end, b"l");

        let c = Compare::lease("k", Cmp::Equal, 5).range_end("m").0;
        assert_eq!(c.target_union, Some(TargetUnion::Lease(5)));
        assert_eq!(c.range_end, b"m");
    }
}
