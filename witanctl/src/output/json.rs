//! Responses as the JSON etcdctl prints: the protobuf field names of
//! etcd's API (`cluster_id`, `dbSize`, `peerURLs`, ...), 64-bit integers as
//! JSON numbers, bytes as base64, and empty fields left out (Go's
//! `omitempty`). The lease and watch commands print clientv3's wrapper
//! structs, whose shape is kept too (a flattened header, Go field names).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use witan_proto::etcdserverpb::{
    response_op, AlarmResponse, DeleteRangeResponse, HashKvResponse, Member, PutResponse,
    RangeResponse, ResponseHeader, StatusResponse, TxnResponse,
};
use witan_proto::mvccpb::{Event, KeyValue};

/// A JSON value whose objects keep their fields in the order written
/// (etcdctl's order: the struct's field order), which `serde_json`'s map
/// does not without a feature that would change every crate's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `true` or `false`.
    Bool(bool),
    /// A signed number.
    Int(i64),
    /// An unsigned number.
    UInt(u64),
    /// A string.
    Str(String),
    /// A list.
    Arr(Vec<Json>),
    /// An object, fields in order.
    Obj(Vec<(String, Json)>),
}

impl From<bool> for Json {
    fn from(value: bool) -> Json {
        Json::Bool(value)
    }
}

impl From<i64> for Json {
    fn from(value: i64) -> Json {
        Json::Int(value)
    }
}

impl From<u64> for Json {
    fn from(value: u64) -> Json {
        Json::UInt(value)
    }
}

impl From<u32> for Json {
    fn from(value: u32) -> Json {
        Json::UInt(u64::from(value))
    }
}

impl From<&str> for Json {
    fn from(value: &str) -> Json {
        Json::Str(value.to_string())
    }
}

impl From<String> for Json {
    fn from(value: String) -> Json {
        Json::Str(value)
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(n) => write!(f, "{n}"),
            Json::UInt(n) => write!(f, "{n}"),
            // serde_json escapes strings as JSON wants.
            Json::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Obj(fields) => {
                f.write_str("{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", serde_json::Value::from(name.as_str()))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A JSON object that leaves out zero and empty values, as Go's
/// `omitempty` does.
#[derive(Debug, Default)]
pub struct Obj(Vec<(String, Json)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj::default()
    }

    /// A signed number, left out when 0.
    pub fn int(mut self, name: &str, value: i64) -> Obj {
        if value != 0 {
            self.0.push((name.into(), value.into()));
        }
        self
    }

    /// An unsigned number, left out when 0.
    pub fn uint(mut self, name: &str, value: u64) -> Obj {
        if value != 0 {
            self.0.push((name.into(), value.into()));
        }
        self
    }

    /// A flag, left out when false.
    pub fn flag(mut self, name: &str, value: bool) -> Obj {
        if value {
            self.0.push((name.into(), true.into()));
        }
        self
    }

    /// A string, left out when empty.
    pub fn text(mut self, name: &str, value: &str) -> Obj {
        if !value.is_empty() {
            self.0.push((name.into(), value.into()));
        }
        self
    }

    /// Bytes as base64, left out when empty.
    pub fn bytes(mut self, name: &str, value: &[u8]) -> Obj {
        if !value.is_empty() {
            self.0.push((name.into(), STANDARD.encode(value).into()));
        }
        self
    }

    /// A nested value, left out when absent.
    pub fn opt(mut self, name: &str, value: Option<Json>) -> Obj {
        if let Some(value) = value {
            self.0.push((name.into(), value));
        }
        self
    }

    /// A list, left out when empty.
    pub fn list(mut self, name: &str, values: Vec<Json>) -> Obj {
        if !values.is_empty() {
            self.0.push((name.into(), Json::Arr(values)));
        }
        self
    }

    /// Any value, always present (Go fields without `omitempty`).
    pub fn always(mut self, name: &str, value: Json) -> Obj {
        self.0.push((name.into(), value));
        self
    }

    /// Every field of `other`, after this object's.
    pub fn merge(mut self, other: Obj) -> Obj {
        self.0.extend(other.0);
        self
    }

    /// The finished value.
    pub fn done(self) -> Json {
        Json::Obj(self.0)
    }
}

/// The header's fields (what clientv3 wrappers flatten into themselves).
pub fn header_obj(header: Option<&ResponseHeader>) -> Obj {
    let h = header.cloned().unwrap_or_default();
    Obj::new()
        .uint("cluster_id", h.cluster_id)
        .uint("member_id", h.member_id)
        .int("revision", h.revision)
        .uint("raft_term", h.raft_term)
}

/// A response header.
pub fn header(header: Option<&ResponseHeader>) -> Option<Json> {
    header.map(|h| header_obj(Some(h)).done())
}

/// A key-value.
pub fn kv(kv: &KeyValue) -> Json {
    Obj::new()
        .bytes("key", &kv.key)
        .int("create_revision", kv.create_revision)
        .int("mod_revision", kv.mod_revision)
        .int("version", kv.version)
        .bytes("value", &kv.value)
        .int("lease", kv.lease)
        .done()
}

/// A Range response.
pub fn range(resp: &RangeResponse) -> Json {
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .list("kvs", resp.kvs.iter().map(kv).collect())
        .flag("more", resp.more)
        .int("count", resp.count)
        .done()
}

/// A Put response.
pub fn put(resp: &PutResponse) -> Json {
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .opt("prev_kv", resp.prev_kv.as_ref().map(kv))
        .done()
}

/// A DeleteRange response.
pub fn delete(resp: &DeleteRangeResponse) -> Json {
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .int("deleted", resp.deleted)
        .list("prev_kvs", resp.prev_kvs.iter().map(kv).collect())
        .done()
}

/// A Txn response; each response is wrapped as Go's oneof struct
/// (`{"Response":{"ResponsePut":{...}}}`).
pub fn txn(resp: &TxnResponse) -> Json {
    let responses = resp
        .responses
        .iter()
        .map(|op| {
            let inner = match &op.response {
                Some(response_op::Response::ResponseRange(r)) => Some(("ResponseRange", range(r))),
                Some(response_op::Response::ResponsePut(r)) => Some(("ResponsePut", put(r))),
                Some(response_op::Response::ResponseDeleteRange(r)) => {
                    Some(("ResponseDeleteRange", delete(r)))
                }
                Some(response_op::Response::ResponseTxn(r)) => Some(("ResponseTxn", txn(r))),
                None => None,
            };
            let wrapped = inner.map(|(name, value)| Obj::new().always(name, value).done());
            Obj::new().opt("Response", wrapped).done()
        })
        .collect();
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .flag("succeeded", resp.succeeded)
        .list("responses", responses)
        .done()
}

/// A watch event (`type` is 0 for PUT, left out as Go does; 1 for DELETE).
pub fn event(event: &Event) -> Json {
    Obj::new()
        .int("type", i64::from(event.r#type))
        .opt("kv", event.kv.as_ref().map(kv))
        .opt("prev_kv", event.prev_kv.as_ref().map(kv))
        .done()
}

/// A member.
pub fn member(member: &Member) -> Json {
    let urls = |urls: &[String]| urls.iter().map(|u| Json::from(u.as_str())).collect();
    Obj::new()
        .uint("ID", member.id)
        .text("name", &member.name)
        .list("peerURLs", urls(&member.peer_ur_ls))
        .list("clientURLs", urls(&member.client_ur_ls))
        .flag("isLearner", member.is_learner)
        .done()
}

/// A Status response.
pub fn status(resp: &StatusResponse) -> Json {
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .text("version", &resp.version)
        .int("dbSize", resp.db_size)
        .uint("leader", resp.leader)
        .uint("raftIndex", resp.raft_index)
        .uint("raftTerm", resp.raft_term)
        .uint("raftAppliedIndex", resp.raft_applied_index)
        .list(
            "errors",
            resp.errors.iter().map(|e| Json::from(e.as_str())).collect(),
        )
        .int("dbSizeInUse", resp.db_size_in_use)
        .flag("isLearner", resp.is_learner)
        .done()
}

/// A HashKV response.
pub fn hash_kv(resp: &HashKvResponse) -> Json {
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .uint("hash", u64::from(resp.hash))
        .int("compact_revision", resp.compact_revision)
        .done()
}

/// An Alarm response.
pub fn alarm(resp: &AlarmResponse) -> Json {
    let alarms = resp
        .alarms
        .iter()
        .map(|a| {
            Obj::new()
                .uint("memberID", a.member_id)
                .int("alarm", i64::from(a.alarm))
                .done()
        })
        .collect();
    Obj::new()
        .opt("header", header(resp.header.as_ref()))
        .list("alarms", alarms)
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd_header(revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: 324952591200643719,
            member_id: 3319814642761637952,
            revision,
            raft_term: 2,
        })
    }

    #[test]
    fn a_range_response_prints_as_etcdctl_prints_it() {
        // etcdctl 3.4's output for the same response, byte for byte.
        let resp = RangeResponse {
            header: etcd_header(10),
            kvs: vec![KeyValue {
                key: b"foo".to_vec(),
                create_revision: 10,
                mod_revision: 10,
                version: 1,
                value: b"bar".to_vec(),
                lease: 0,
            }],
            more: false,
            count: 1,
        };
        assert_eq!(
            range(&resp).to_string(),
            r#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":10,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":10,"mod_revision":10,"version":1,"value":"YmFy"}],"count":1}"#
        );
    }

    #[test]
    fn a_txn_response_wraps_each_response_like_go() {
        let resp = TxnResponse {
            header: etcd_header(18),
            succeeded: true,
            responses: vec![witan_proto::etcdserverpb::ResponseOp {
                response: Some(response_op::Response::ResponsePut(PutResponse {
                    header: Some(ResponseHeader {
                        revision: 18,
                        ..Default::default()
                    }),
                    prev_kv: None,
                })),
            }],
        };
        assert_eq!(
            txn(&resp).to_string(),
            r#"{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":18,"raft_term":2},"succeeded":true,"responses":[{"Response":{"ResponsePut":{"header":{"revision":18}}}}]}"#
        );
    }

    #[test]
    fn a_member_uses_etcds_camel_case_names() {
        let m = Member {
            id: 3319814642761637952,
            name: "e1".into(),
            peer_ur_ls: vec!["http://127.0.0.1:23800".into()],
            client_ur_ls: vec![],
            is_learner: true,
        };
        assert_eq!(
            member(&m).to_string(),
            r#"{"ID":3319814642761637952,"name":"e1","peerURLs":["http://127.0.0.1:23800"],"isLearner":true}"#
        );
    }
}
