//! How results are written: etcdctl's formats. `simple` lines and
//! `fields` are built beside each command from the helpers here; `json`
//! from [`json`] (etcd's field names, bytes as base64, numbers as JSON
//! numbers, empty fields left out, as etcdctl prints them); `table` from
//! [`table`]. Output goes to stdout through [`emit`], which ignores a
//! closed pipe (`witanctl get --prefix "" | head` must not fail).

pub mod auth;
pub mod human;
pub mod json;
pub mod table;

use std::io::Write;

use witan_proto::etcdserverpb::ResponseHeader;

use self::json::Json;
use witan_proto::mvccpb::KeyValue;

/// Writes `text` to stdout as is (it carries its own newlines).
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    // A reader that went away (a pipe into `head`) is not an error of ours.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `value` as one line of JSON.
pub fn emit_json(value: &Json) {
    emit(&format!("{value}\n"));
}

/// Bytes as etcdctl prints them: as they are (lossy UTF-8), or with
/// `--hex` every byte as `\xNN`.
pub fn bytes(data: &[u8], hex: bool) -> String {
    if hex {
        data.iter().map(|b| format!("\\x{b:02x}")).collect()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

/// A key-value as `simple` prints it: the key on one line (unless only
/// the value is wanted), the value on the next.
pub fn kv_lines(kv: &KeyValue, hex: bool, value_only: bool) -> String {
    let mut text = String::new();
    if !value_only {
        text.push_str(&bytes(&kv.key, hex));
        text.push('\n');
    }
    text.push_str(&bytes(&kv.value, hex));
    text.push('\n');
    text
}

/// The header lines of the `fields` format.
pub fn header_fields(header: Option<&ResponseHeader>) -> String {
    let header = header.cloned().unwrap_or_default();
    format!(
        "\"ClusterID\" : {}\n\"MemberID\" : {}\n\"Revision\" : {}\n\"RaftTerm\" : {}\n",
        header.cluster_id, header.member_id, header.revision, header.raft_term
    )
}

/// A key-value's lines in the `fields` format.
pub fn kv_fields(kv: &KeyValue, hex: bool) -> String {
    format!(
        "\"Key\" : {:?}\n\"CreateRevision\" : {}\n\"ModRevision\" : {}\n\"Version\" : {}\n\"Value\" : {:?}\n\"Lease\" : {}\n",
        bytes(&kv.key, hex),
        kv.create_revision,
        kv.mod_revision,
        kv.version,
        bytes(&kv.value, hex),
        kv.lease
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_prints_every_byte_escaped() {
        assert_eq!(bytes(b"foo", true), "\\x66\\x6f\\x6f");
        assert_eq!(bytes(b"foo", false), "foo");
    }

    #[test]
    fn a_kv_prints_key_then_value_or_the_value_alone() {
        let kv = KeyValue {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            ..Default::default()
        };
        assert_eq!(kv_lines(&kv, false, false), "foo\nbar\n");
        assert_eq!(kv_lines(&kv, false, true), "bar\n");
    }

    #[test]
    fn fields_print_like_etcdctl() {
        let kv = KeyValue {
            key: b"foo".to_vec(),
            value: b"bar2".to_vec(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        };
        assert_eq!(
            kv_fields(&kv, false),
            "\"Key\" : \"foo\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 3\n\"Version\" : 2\n\"Value\" : \"bar2\"\n\"Lease\" : 0\n"
        );
    }
}
