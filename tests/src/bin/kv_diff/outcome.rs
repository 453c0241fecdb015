//! What a server answered to one request, reduced to the fields that must
//! agree between two etcd-compatible servers, and the one place where two
//! answers may legitimately differ (unstable sorts).
//!
//! Left out on purpose: cluster_id, member_id and raft_term, in every header
//! (including the headers of txn sub-responses). Everything else is kept,
//! including whether a header is present at all: Go clients read
//! `resp.Header.Revision` and would crash on a missing header.

use etcd_client::{
    DeleteResponse, Error, GetResponse, KeyValue, LeaseGrantResponse, LeaseLeasesResponse,
    LeaseRevokeResponse, LeaseTimeToLiveResponse, PutResponse, ResponseHeader, SortTarget,
    TxnOpResponse, TxnResponse,
};

use crate::request::{Bytes, Op, RangeReq, TxnOpReq, TxnReq};

/// Go's `sort.Sort` (pdqsort since Go 1.19) is an insertion sort, hence
/// stable, for at most this many elements, and unstable above it.
const GO_STABLE_SORT_MAX: i64 = 12;

/// One key-value as a response carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub key: Bytes,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

/// A response, or the gRPC error that replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A gRPC status: its code and message text both must match.
    Error {
        code: String,
        message: String,
    },
    Put {
        revision: Option<i64>,
        prev_kv: Option<Kv>,
    },
    Range {
        revision: Option<i64>,
        kvs: Vec<Kv>,
        more: bool,
        count: i64,
    },
    Delete {
        revision: Option<i64>,
        deleted: i64,
        prev_kvs: Vec<Kv>,
    },
    Txn {
        revision: Option<i64>,
        succeeded: bool,
        responses: Vec<Outcome>,
    },
    Compact {
        revision: Option<i64>,
    },
    LeaseGrant {
        revision: Option<i64>,
        id: i64,
        ttl: i64,
        error: String,
    },
    LeaseRevoke {
        revision: Option<i64>,
    },
    /// The remaining TTL depends on timing, so only its sign is kept: 1
    /// for a live lease, -1 for a missing one (etcd's answer), 0 for one
    /// at its very last second.
    LeaseTimeToLive {
        revision: Option<i64>,
        id: i64,
        ttl_sign: i64,
        granted_ttl: i64,
        /// Sorted: etcd lists a lease's keys in Go map order.
        keys: Vec<Bytes>,
    },
    LeaseLeases {
        revision: Option<i64>,
        /// Sorted: etcd lists leases in map (or expiry) order.
        ids: Vec<i64>,
    },
}

fn rev(h: Option<&ResponseHeader>) -> Option<i64> {
    h.map(ResponseHeader::revision)
}

impl From<&KeyValue> for Kv {
    fn from(kv: &KeyValue) -> Self {
        Kv {
            key: Bytes(kv.key().to_vec()),
            value: Bytes(kv.value().to_vec()),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: kv.lease(),
        }
    }
}

impl From<&PutResponse> for Outcome {
    fn from(r: &PutResponse) -> Self {
        Outcome::Put {
            revision: rev(r.header()),
            prev_kv: r.prev_key().map(Kv::from),
        }
    }
}

impl From<&GetResponse> for Outcome {
    fn from(r: &GetResponse) -> Self {
        Outcome::Range {
            revision: rev(r.header()),
            kvs: r.kvs().iter().map(Kv::from).collect(),
            more: r.more(),
            count: r.count(),
        }
    }
}

impl From<&DeleteResponse> for Outcome {
    fn from(r: &DeleteResponse) -> Self {
        Outcome::Delete {
            revision: rev(r.header()),
            deleted: r.deleted(),
            prev_kvs: r.prev_kvs().iter().map(Kv::from).collect(),
        }
    }
}

impl From<&TxnResponse> for Outcome {
    fn from(r: &TxnResponse) -> Self {
        let responses = r
            .op_responses()
            .iter()
            .map(|op| match op {
                TxnOpResponse::Put(p) => Outcome::from(p),
                TxnOpResponse::Get(g) => Outcome::from(g),
                TxnOpResponse::Delete(d) => Outcome::from(d),
                TxnOpResponse::Txn(t) => Outcome::from(t),
            })
            .collect();
        Outcome::Txn {
            revision: rev(r.header()),
            succeeded: r.succeeded(),
            responses,
        }
    }
}

impl From<&LeaseGrantResponse> for Outcome {
    fn from(r: &LeaseGrantResponse) -> Self {
        Outcome::LeaseGrant {
            revision: rev(r.header()),
            id: r.id(),
            ttl: r.ttl(),
            error: r.error().to_string(),
        }
    }
}

impl From<&LeaseRevokeResponse> for Outcome {
    fn from(r: &LeaseRevokeResponse) -> Self {
        Outcome::LeaseRevoke {
            revision: rev(r.header()),
        }
    }
}

impl From<&LeaseTimeToLiveResponse> for Outcome {
    fn from(r: &LeaseTimeToLiveResponse) -> Self {
        let mut keys: Vec<Bytes> = r.keys().iter().map(|k| Bytes(k.clone())).collect();
        keys.sort();
        Outcome::LeaseTimeToLive {
            revision: rev(r.header()),
            id: r.id(),
            ttl_sign: r.ttl().signum(),
            granted_ttl: r.granted_ttl(),
            keys,
        }
    }
}

impl From<&LeaseLeasesResponse> for Outcome {
    fn from(r: &LeaseLeasesResponse) -> Self {
        let mut ids: Vec<i64> = r.leases().iter().map(|l| l.id()).collect();
        ids.sort_unstable();
        Outcome::LeaseLeases {
            revision: rev(r.header()),
            ids,
        }
    }
}

impl Outcome {
    /// The outcome for a client error, or the error back when it is not a
    /// server's answer (a transport failure, a timeout) and so says nothing
    /// about the server's semantics.
    pub fn from_error(e: Error) -> Result<Outcome, Error> {
        match e {
            Error::GRpcStatus(s) => Ok(Outcome::Error {
                code: format!("{:?}", s.code()),
                message: s.message().to_string(),
            }),
            other => Err(other),
        }
    }

    /// True for a gRPC status that says the server is down or broken
    /// rather than answering the request (a crash, a timeout, an internal
    /// error): no single-member KV request should ever get one.
    pub fn is_server_failure(&self) -> bool {
        match self {
            Outcome::Error { code, .. } => matches!(
                code.as_str(),
                "Unavailable"
                    | "Unknown"
                    | "Internal"
                    | "DeadlineExceeded"
                    | "Cancelled"
                    | "DataLoss"
            ),
            _ => false,
        }
    }

    /// The store revision in the response header, when there is one.
    pub fn header_revision(&self) -> Option<i64> {
        match self {
            Outcome::Error { .. } => None,
            Outcome::Put { revision, .. }
            | Outcome::Range { revision, .. }
            | Outcome::Delete { revision, .. }
            | Outcome::Txn { revision, .. }
            | Outcome::Compact { revision }
            | Outcome::LeaseGrant { revision, .. }
            | Outcome::LeaseRevoke { revision }
            | Outcome::LeaseTimeToLive { revision, .. }
            | Outcome::LeaseLeases { revision, .. } => *revision,
        }
    }

    /// Every kv this outcome carries (range results, prev kvs), including
    /// those of txn sub-responses.
    pub fn kvs(&self) -> Vec<&Kv> {
        match self {
            Outcome::Put { prev_kv, .. } => prev_kv.iter().collect(),
            Outcome::Range { kvs, .. } => kvs.iter().collect(),
            Outcome::Delete { prev_kvs, .. } => prev_kvs.iter().collect(),
            Outcome::Txn { responses, .. } => responses.iter().flat_map(Outcome::kvs).collect(),
            _ => Vec::new(),
        }
    }

    /// This outcome in the form two correct servers must agree on exactly,
    /// given the request that produced it.
    pub fn canonical(&self, op: &Op) -> Outcome {
        match (op, self) {
            (Op::Range(req), _) => self.canonical_range(req),
            (Op::Txn(req), _) => self.canonical_txn(req),
            _ => self.clone(),
        }
    }

    fn canonical_txn(&self, req: &TxnReq) -> Outcome {
        let Outcome::Txn {
            revision,
            succeeded,
            responses,
        } = self
        else {
            return self.clone();
        };
        let branch = req.branch(*succeeded);
        let responses = responses
            .iter()
            .enumerate()
            .map(|(i, resp)| match branch.get(i) {
                Some(TxnOpReq::Range(r)) => resp.canonical_range(r),
                Some(TxnOpReq::Txn(t)) => resp.canonical_txn(t),
                _ => resp.clone(),
            })
            .collect();
        Outcome::Txn {
            revision: *revision,
            succeeded: *succeeded,
            responses,
        }
    }

    /// Why this exists: etcd sorts a range with Go's `sort.Sort`, which is
    /// not stable once it sorts more than 12 elements (pdqsort switches from
    /// insertion sort). kvs with equal sort values (same version, same value,
    /// same mod revision from one txn, ...) then come back in an order that
    /// depends on the algorithm's internals, not on the data, and a
    /// compatible server cannot be asked to reproduce it. So, when a range
    /// sorted by anything but the key may have sorted more than 12 kvs
    /// (`count` bounds the number sorted: it counts the whole range before
    /// the revision filters), compare its kvs as consecutive groups of equal
    /// sort value, each group in key order. When the limit cut the result
    /// (`more`), which members of the last group made it in is arbitrary
    /// too, so that group is compared by size and sort value only.
    fn canonical_range(&self, req: &RangeReq) -> Outcome {
        let Outcome::Range {
            revision,
            kvs,
            more,
            count,
        } = self
        else {
            return self.clone();
        };
        let Some(target) = req.non_key_sort_target() else {
            return self.clone();
        };
        if *count <= GO_STABLE_SORT_MAX {
            return self.clone();
        }
        let mut groups: Vec<Vec<Kv>> = Vec::new();
        for kv in kvs {
            match groups.last_mut() {
                Some(g) if same_sort_value(target, &g[0], kv) => g.push(kv.clone()),
                _ => groups.push(vec![kv.clone()]),
            }
        }
        for g in &mut groups {
            g.sort_by(|a, b| a.key.cmp(&b.key));
        }
        if *more {
            if let Some(last) = groups.last_mut() {
                for kv in last.iter_mut() {
                    *kv = sort_value_only(target, kv);
                }
            }
        }
        Outcome::Range {
            revision: *revision,
            kvs: groups.into_iter().flatten().collect(),
            more: *more,
            count: *count,
        }
    }
}

fn same_sort_value(target: SortTarget, a: &Kv, b: &Kv) -> bool {
    match target {
        SortTarget::Key => a.key == b.key,
        SortTarget::Version => a.version == b.version,
        SortTarget::Create => a.create_revision == b.create_revision,
        SortTarget::Mod => a.mod_revision == b.mod_revision,
        SortTarget::Value => a.value == b.value,
    }
}

/// A stand-in for a kv of which only the sort value is meaningful.
fn sort_value_only(target: SortTarget, kv: &Kv) -> Kv {
    let mut out = Kv {
        key: Bytes::from("<any key with this sort value>"),
        value: Bytes::default(),
        create_revision: 0,
        mod_revision: 0,
        version: 0,
        lease: 0,
    };
    match target {
        SortTarget::Key => out.key = kv.key.clone(),
        SortTarget::Version => out.version = kv.version,
        SortTarget::Create => out.create_revision = kv.create_revision,
        SortTarget::Mod => out.mod_revision = kv.mod_revision,
        SortTarget::Value => out.value = kv.value.clone(),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_client::SortOrder;

    fn kv(key: &str, version: i64) -> Kv {
        Kv {
            key: Bytes::from(key),
            value: Bytes::from("v"),
            create_revision: 2,
            mod_revision: 3,
            version,
            lease: 0,
        }
    }

    fn range(kvs: Vec<Kv>, more: bool, count: i64) -> Outcome {
        Outcome::Range {
            revision: Some(9),
            kvs,
            more,
            count,
        }
    }

    fn by_version() -> Op {
        Op::Range(RangeReq {
            sort: Some((SortTarget::Version, SortOrder::Ascend)),
            ..RangeReq::default()
        })
    }

    #[test]
    fn unstable_sort_ignores_order_within_a_group() {
        let a = range(vec![kv("b", 1), kv("a", 1), kv("c", 2)], false, 13);
        let b = range(vec![kv("a", 1), kv("b", 1), kv("c", 2)], false, 13);
        assert_eq!(a.canonical(&by_version()), b.canonical(&by_version()));
    }

    #[test]
    fn unstable_sort_still_checks_group_order_and_members() {
        let a = range(vec![kv("a", 1), kv("c", 2)], false, 13);
        let b = range(vec![kv("c", 2), kv("a", 1)], false, 13);
        assert_ne!(a.canonical(&by_version()), b.canonical(&by_version()));
        let c = range(vec![kv("a", 1), kv("b", 2)], false, 13);
        assert_ne!(a.canonical(&by_version()), c.canonical(&by_version()));
    }

    #[test]
    fn transport_like_statuses_are_server_failures() {
        let err = |code: &str| Outcome::Error {
            code: code.to_string(),
            message: String::new(),
        };
        assert!(err("Unavailable").is_server_failure());
        assert!(err("Unknown").is_server_failure());
        assert!(!err("InvalidArgument").is_server_failure());
        assert!(!err("OutOfRange").is_server_failure());
        assert!(!range(vec![], false, 0).is_server_failure());
    }

    #[test]
    fn small_sorts_must_match_exactly() {
        let a = range(vec![kv("b", 1), kv("a", 1)], false, 12);
        let b = range(vec![kv("a", 1), kv("b", 1)], false, 12);
        assert_ne!(a.canonical(&by_version()), b.canonical(&by_version()));
    }

    #[test]
    fn truncated_last_group_compares_size_and_sort_value() {
        let a = range(vec![kv("a", 1), kv("x", 2)], true, 20);
        let b = range(vec![kv("a", 1), kv("y", 2)], true, 20);
        assert_eq!(a.canonical(&by_version()), b.canonical(&by_version()));
        let c = range(vec![kv("a", 1), kv("y", 3)], true, 20);
        assert_ne!(a.canonical(&by_version()), c.canonical(&by_version()));
    }

    #[test]
    fn key_sorts_are_never_relaxed() {
        let op = Op::Range(RangeReq {
            sort: Some((SortTarget::Key, SortOrder::Descend)),
            ..RangeReq::default()
        });
        let a = range(vec![kv("b", 1), kv("a", 1)], false, 20);
        let b = range(vec![kv("a", 1), kv("b", 1)], false, 20);
        assert_ne!(a.canonical(&op), b.canonical(&op));
    }

    #[test]
    fn txn_sub_ranges_are_canonicalized_along_the_branch_taken() {
        let sub = RangeReq {
            sort: Some((SortTarget::Version, SortOrder::Descend)),
            ..RangeReq::default()
        };
        let op = Op::Txn(TxnReq {
            compare: vec![],
            success: vec![TxnOpReq::Range(sub)],
            failure: vec![],
        });
        let txn = |kvs| Outcome::Txn {
            revision: Some(9),
            succeeded: true,
            responses: vec![range(kvs, false, 13)],
        };
        let a = txn(vec![kv("b", 1), kv("a", 1)]);
        let b = txn(vec![kv("a", 1), kv("b", 1)]);
        assert_eq!(a.canonical(&op), b.canonical(&op));
    }
}
