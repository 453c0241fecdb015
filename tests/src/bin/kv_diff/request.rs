//! The operations kv-diff replays, as plain data, and their translation into
//! `etcd-client` calls.
//!
//! Requests are kept as our own structs (not the client's builders) so a
//! mismatch report can print exactly what was sent, and so the generator can
//! look at a request again when it judges the responses (the sort target of
//! a range decides how its kvs are compared).
//!
//! Keys and range ends are raw bytes: `range_end` empty means one key,
//! `"\0"` means "from key", anything else is the end of `[key, range_end)`,
//! exactly as on the wire. Every range is sent through
//! `GetOptions::with_range` / `DeleteOptions::with_range` /
//! `Compare::with_range`, which put the bytes on the wire unchanged.

use std::fmt;

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
};

/// Bytes printed as an escaped string, so reports stay readable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Self {
        Bytes(s.as_bytes().to_vec())
    }
}

/// A Put request.
#[derive(Clone, Debug)]
pub struct PutReq {
    pub key: Bytes,
    pub value: Bytes,
    pub lease: i64,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

/// A Range request with every field the API has.
#[derive(Clone, Debug, Default)]
pub struct RangeReq {
    pub key: Bytes,
    pub range_end: Bytes,
    pub limit: i64,
    pub revision: i64,
    /// `None` sends the protobuf defaults (order NONE, target KEY).
    pub sort: Option<(SortTarget, SortOrder)>,
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

/// A DeleteRange request.
#[derive(Clone, Debug)]
pub struct DeleteReq {
    pub key: Bytes,
    pub range_end: Bytes,
    pub prev_kv: bool,
}

/// What a txn compare looks at, with the operand.
#[derive(Clone, Debug)]
pub enum CompareTarget {
    Value(Bytes),
    Version(i64),
    Create(i64),
    Mod(i64),
    Lease(i64),
}

/// One txn compare.
#[derive(Clone, Debug)]
pub struct CompareReq {
    pub key: Bytes,
    pub range_end: Bytes,
    pub result: CompareOp,
    pub target: CompareTarget,
}

/// One operation inside a txn branch.
#[derive(Clone, Debug)]
pub enum TxnOpReq {
    Put(PutReq),
    Range(RangeReq),
    Delete(DeleteReq),
    Txn(TxnReq),
}

/// A Txn request.
#[derive(Clone, Debug, Default)]
pub struct TxnReq {
    pub compare: Vec<CompareReq>,
    pub success: Vec<TxnOpReq>,
    pub failure: Vec<TxnOpReq>,
}

/// One step of a run: a request to both servers.
#[derive(Clone, Debug)]
pub enum Op {
    Put(PutReq),
    Range(RangeReq),
    Delete(DeleteReq),
    Txn(TxnReq),
    Compact { revision: i64, physical: bool },
    LeaseGrant { id: i64, ttl: i64 },
    LeaseRevoke { id: i64 },
    LeaseTimeToLive { id: i64, keys: bool },
    LeaseLeases,
}

impl PutReq {
    /// The client call's key, value and options.
    pub fn to_client(&self) -> (Vec<u8>, Vec<u8>, PutOptions) {
        let mut opts = PutOptions::new().with_lease(self.lease);
        if self.prev_kv {
            opts = opts.with_prev_key();
        }
        if self.ignore_value {
            opts = opts.with_ignore_value();
        }
        if self.ignore_lease {
            opts = opts.with_ignore_lease();
        }
        (self.key.0.clone(), self.value.0.clone(), opts)
    }
}

impl RangeReq {
    /// The client call's key and options.
    pub fn to_client(&self) -> (Vec<u8>, GetOptions) {
        let mut opts = GetOptions::new()
            .with_limit(self.limit)
            .with_revision(self.revision)
            .with_min_mod_revision(self.min_mod_revision)
            .with_max_mod_revision(self.max_mod_revision)
            .with_min_create_revision(self.min_create_revision)
            .with_max_create_revision(self.max_create_revision);
        if !self.range_end.0.is_empty() {
            opts = opts.with_range(self.range_end.0.clone());
        }
        if let Some((target, order)) = self.sort {
            opts = opts.with_sort(target, order);
        }
        if self.serializable {
            opts = opts.with_serializable();
        }
        if self.keys_only {
            opts = opts.with_keys_only();
        }
        if self.count_only {
            opts = opts.with_count_only();
        }
        (self.key.0.clone(), opts)
    }

    /// The sort target when the server sorts by something other than the
    /// key; etcd sorts then even when the order is NONE (it means ASCEND).
    pub fn non_key_sort_target(&self) -> Option<SortTarget> {
        match self.sort {
            Some((SortTarget::Key, _)) | None => None,
            Some((target, _)) => Some(target),
        }
    }
}

impl DeleteReq {
    /// The client call's key and options.
    pub fn to_client(&self) -> (Vec<u8>, DeleteOptions) {
        let mut opts = DeleteOptions::new();
        if !self.range_end.0.is_empty() {
            opts = opts.with_range(self.range_end.0.clone());
        }
        if self.prev_kv {
            opts = opts.with_prev_key();
        }
        (self.key.0.clone(), opts)
    }
}

impl CompareReq {
    fn to_client(&self) -> Compare {
        let key = self.key.0.clone();
        let cmp = match &self.target {
            CompareTarget::Value(v) => Compare::value(key, self.result, v.0.clone()),
            CompareTarget::Version(v) => Compare::version(key, self.result, *v),
            CompareTarget::Create(r) => Compare::create_revision(key, self.result, *r),
            CompareTarget::Mod(r) => Compare::mod_revision(key, self.result, *r),
            CompareTarget::Lease(l) => Compare::lease(key, self.result, *l),
        };
        if self.range_end.0.is_empty() {
            cmp
        } else {
            cmp.with_range(self.range_end.0.clone())
        }
    }
}

impl TxnOpReq {
    fn to_client(&self) -> TxnOp {
        match self {
            TxnOpReq::Put(p) => {
                let (k, v, o) = p.to_client();
                TxnOp::put(k, v, Some(o))
            }
            TxnOpReq::Range(r) => {
                let (k, o) = r.to_client();
                TxnOp::get(k, Some(o))
            }
            TxnOpReq::Delete(d) => {
                let (k, o) = d.to_client();
                TxnOp::delete(k, Some(o))
            }
            TxnOpReq::Txn(t) => TxnOp::txn(t.to_client()),
        }
    }
}

impl TxnReq {
    /// The client's txn builder for this request.
    pub fn to_client(&self) -> Txn {
        let compares: Vec<Compare> = self.compare.iter().map(CompareReq::to_client).collect();
        let success: Vec<TxnOp> = self.success.iter().map(TxnOpReq::to_client).collect();
        let failure: Vec<TxnOp> = self.failure.iter().map(TxnOpReq::to_client).collect();
        Txn::new().when(compares).and_then(success).or_else(failure)
    }

    /// The branch the server ran, given whether the compares succeeded.
    pub fn branch(&self, succeeded: bool) -> &[TxnOpReq] {
        if succeeded {
            &self.success
        } else {
            &self.failure
        }
    }
}

impl Op {
    /// A one-line description for progress and context output.
    pub fn summary(&self) -> String {
        match self {
            Op::Put(p) => format!("put {:?}={:?} lease={}", p.key, p.value, p.lease),
            Op::Range(r) => format!("range {:?}..{:?} rev={}", r.key, r.range_end, r.revision),
            Op::Delete(d) => format!("delete {:?}..{:?}", d.key, d.range_end),
            Op::Txn(t) => format!(
                "txn {} compares, {} success ops, {} failure ops",
                t.compare.len(),
                t.success.len(),
                t.failure.len()
            ),
            Op::Compact { revision, .. } => format!("compact {revision}"),
            Op::LeaseGrant { id, ttl } => format!("lease grant id={id} ttl={ttl}"),
            Op::LeaseRevoke { id } => format!("lease revoke id={id}"),
            Op::LeaseTimeToLive { id, keys } => format!("lease timetolive id={id} keys={keys}"),
            Op::LeaseLeases => "lease leases".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_debug_escapes() {
        assert_eq!(format!("{:?}", Bytes(b"a/k1\0".to_vec())), "\"a/k1\\x00\"");
    }

    #[test]
    fn non_key_sort_target_treats_key_and_none_as_stable() {
        let mut r = RangeReq::default();
        assert_eq!(r.non_key_sort_target(), None);
        r.sort = Some((SortTarget::Key, SortOrder::Descend));
        assert_eq!(r.non_key_sort_target(), None);
        r.sort = Some((SortTarget::Version, SortOrder::None));
        assert_eq!(r.non_key_sort_target(), Some(SortTarget::Version));
    }

    #[test]
    fn branch_picks_by_outcome() {
        let t = TxnReq {
            compare: vec![],
            success: vec![TxnOpReq::Range(RangeReq::default())],
            failure: vec![],
        };
        assert_eq!(t.branch(true).len(), 1);
        assert!(t.branch(false).is_empty());
    }
}
