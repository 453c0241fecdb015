//! What reads return: [`KeyValue`] and the response [`Header`], our own
//! types over etcd's protobuf messages.

use witan_proto::{etcdserverpb, mvccpb};

/// One key as stored at some revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty in a `keys_only` read).
    pub value: Vec<u8>,
    /// The revision that created the key (since its last deletion).
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// How many times it was put since it was created (1 on creation).
    pub version: i64,
    /// The lease it is attached to (0: none).
    pub lease: i64,
}

impl KeyValue {
    /// The key as UTF-8 text.
    ///
    /// ```
    /// let kv = witan_client::KeyValue { key: b"app/mode".to_vec(), value: b"on".to_vec(), ..Default::default() };
    /// assert_eq!(kv.key_str()?, "app/mode");
    /// assert_eq!(kv.value_str()?, "on");
    /// # Ok::<(), std::str::Utf8Error>(())
    /// ```
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }

    /// The value as UTF-8 text (see [`KeyValue::key_str`]).
    pub fn value_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.value)
    }
}

impl From<mvccpb::KeyValue> for KeyValue {
    fn from(kv: mvccpb::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

impl From<KeyValue> for mvccpb::KeyValue {
    fn from(kv: KeyValue) -> Self {
        mvccpb::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

/// Where and when a response was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The cluster's id.
    pub cluster_id: u64,
    /// The id of the member that answered.
    pub member_id: u64,
    /// The store's revision when the request was served (for a write:
    /// the revision it created, if it changed anything).
    pub revision: i64,
    /// The raft term when the request was served.
    pub raft_term: u64,
}

impl From<Option<etcdserverpb::ResponseHeader>> for Header {
    fn from(header: Option<etcdserverpb::ResponseHeader>) -> Self {
        let header = header.unwrap_or_default();
        Header {
            cluster_id: header.cluster_id,
            member_id: header.member_id,
            revision: header.revision,
            raft_term: header.raft_term,
        }
    }
}

/// Converts a list of protobuf key-values.
pub(crate) fn convert_all(kvs: Vec<mvccpb::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(KeyValue::from).collect()
}

/// The end of the range holding every key that starts with `prefix`
/// (etcd's rule: the prefix with its last byte below 0xff incremented;
/// "\0", every key, when there is no such byte).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_follows_etcd() {
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
        assert_eq!(prefix_end(b""), b"\0");
    }

    #[test]
    fn key_values_round_trip_through_protobuf() {
        let kv = KeyValue {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            lease: 9,
        };
        let back = KeyValue::from(mvccpb::KeyValue::from(kv.clone()));
        assert_eq!(back, kv);
    }

    #[test]
    fn a_missing_header_reads_as_zeroes() {
        assert_eq!(Header::from(None), Header::default());
    }
}
