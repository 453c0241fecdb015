//! `Record`: what the in-memory index keeps for one live key (everything of
//! etcd's `KeyValue` except the key, which is the map key), and the map type.

use bytes::Bytes;
use imbl::OrdMap;
use witan_proto::mvccpb::KeyValue;

/// The live keys at one revision: key → record. A persistent map, so a
/// clone is O(1) and copy-on-write; keys and values are `Bytes` so that
/// cloning a shared tree node only bumps reference counts.
pub(super) type LiveMap = OrdMap<Bytes, Record>;

/// One live key's metadata and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// Revision of the put that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last put of the key.
    pub mod_revision: i64,
    /// Number of puts since the key was created (1 for a new key).
    pub version: i64,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
    /// The value.
    pub value: Bytes,
}

impl Record {
    /// The etcd form of this record under `key`.
    pub fn to_kv(&self, key: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: self.value.to_vec(),
            lease: self.lease,
        }
    }

    /// Splits an etcd `KeyValue` into its key and record.
    pub fn from_kv(kv: KeyValue) -> (Bytes, Record) {
        let record = Record {
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
            value: Bytes::from(kv.value),
        };
        (Bytes::from(kv.key), record)
    }
}
