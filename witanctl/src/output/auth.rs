//! How the `auth`, `user` and `role` commands print, byte for byte as
//! etcdctl 3.4 does: `simple` sentences ("Role r1 created"), a role's
//! permissions as ranges ("[/a/, /a0) (prefix /a/)"), `json` with etcd's
//! field names, and `fields` lines. None of them prints a `table` (nor
//! does etcdctl).

use witan_proto::authpb::permission::Type;
use witan_proto::authpb::Permission;
use witan_proto::etcdserverpb::{AuthRoleGetResponse, ResponseHeader};

use super::json::{self, Json, Obj};
use crate::cli::Format;
use crate::commands::kv::prefix_end;
use crate::error::CtlError;

/// What a command that only changes something prints: `simple` says what
/// was done, `json` and `fields` show the response header.
pub fn done(
    format: Format,
    sentence: &str,
    header: Option<&ResponseHeader>,
) -> Result<String, CtlError> {
    match format {
        Format::Simple => Ok(format!("{sentence}\n")),
        Format::Json => Ok(format!("{}\n", header_json(header))),
        Format::Fields => Ok(super::header_fields(header)),
        Format::Table => Err(CtlError::UnsupportedFormat { format }),
    }
}

/// The response header as its own JSON object, the only field of most
/// auth responses (`{"header":{...}}`).
fn header_json(header: Option<&ResponseHeader>) -> Json {
    Obj::new().opt("header", json::header(header)).done()
}

/// A list of names (`user list`, `role list`): one per line, or JSON
/// under `field`; `fields` only for roles, as etcdctl.
pub fn names(
    format: Format,
    field: &str,
    names: &[String],
    header: Option<&ResponseHeader>,
) -> Result<String, CtlError> {
    match format {
        Format::Simple => Ok(names.iter().map(|n| format!("{n}\n")).collect()),
        Format::Json => Ok(format!("{}\n", names_json(field, names, header))),
        Format::Fields if field == "roles" => {
            let quoted: String = names.iter().map(|n| format!(" {n:?}")).collect();
            Ok(format!(
                "{}\"Roles\" :{quoted}\n",
                super::header_fields(header)
            ))
        }
        Format::Fields | Format::Table => Err(CtlError::UnsupportedFormat { format }),
    }
}

fn names_json(field: &str, names: &[String], header: Option<&ResponseHeader>) -> Json {
    let names = names.iter().map(|n| Json::from(n.as_str())).collect();
    Obj::new()
        .opt("header", json::header(header))
        .list(field, names)
        .done()
}

/// `user get` without `--detail`: the user's roles.
pub fn user_get(
    format: Format,
    name: &str,
    roles: &[String],
    header: Option<&ResponseHeader>,
) -> Result<String, CtlError> {
    match format {
        Format::Simple => {
            let roles: String = roles.iter().map(|r| format!(" {r}")).collect();
            Ok(format!("User: {name}\nRoles:{roles}\n"))
        }
        Format::Json => Ok(format!("{}\n", names_json("roles", roles, header))),
        Format::Fields | Format::Table => Err(CtlError::UnsupportedFormat { format }),
    }
}

/// `role get`: the role's permissions, readable ones then writable ones.
pub fn role_get(
    format: Format,
    role: &str,
    resp: &AuthRoleGetResponse,
) -> Result<String, CtlError> {
    match format {
        Format::Simple => {
            let mut text = format!("Role {role}\nKV Read:\n");
            for perm in resp.perm.iter().filter(|p| p.perm_type() != Type::Write) {
                text.push_str(&format!("\t{}\n", perm_range(perm)));
            }
            text.push_str("KV Write:\n");
            for perm in resp.perm.iter().filter(|p| p.perm_type() != Type::Read) {
                text.push_str(&format!("\t{}\n", perm_range(perm)));
            }
            Ok(text)
        }
        Format::Json => {
            let perms = resp.perm.iter().map(perm_json).collect();
            let value = Obj::new()
                .opt("header", json::header(resp.header.as_ref()))
                .list("perm", perms)
                .done();
            Ok(format!("{value}\n"))
        }
        Format::Fields => {
            let mut text = super::header_fields(resp.header.as_ref());
            for perm in &resp.perm {
                text.push_str(&format!(
                    "\"PermType\" :  {}\n\"Key\" : {}\n\"RangeEnd\" : {}\n",
                    perm.perm_type().as_str_name(),
                    go_quote(&perm.key),
                    go_quote(&perm.range_end)
                ));
            }
            Ok(text)
        }
        Format::Table => Err(CtlError::UnsupportedFormat { format }),
    }
}

/// A permission as JSON: etcd's `permType` (left out for READ, which is
/// 0), `key` and `range_end` as base64.
fn perm_json(perm: &Permission) -> Json {
    Obj::new()
        .int("permType", i64::from(perm.perm_type))
        .bytes("key", &perm.key)
        .bytes("range_end", &perm.range_end)
        .done()
}

/// The keys a permission covers, as `role get` shows them: a single key,
/// `[key, end)` (noting a prefix), or `[key, <open ended>` for
/// `--from-key`.
pub fn perm_range(perm: &Permission) -> String {
    let (key, end) = (&perm.key, &perm.range_end);
    if end.is_empty() {
        return lossy(key);
    }
    if end.as_slice() == [0] {
        return format!("[{}, <open ended>", lossy(key));
    }
    let mut text = format!("[{}, {})", lossy(key), lossy(end));
    if prefix_end(key) == *end {
        text.push_str(&format!(" (prefix {})", lossy(key)));
    }
    text
}

/// What `role revoke-permission` says it revoked (the key as typed).
pub fn revoked(key: &str, end: &[u8], role: &str) -> String {
    if end.is_empty() {
        format!("Permission of key {key} is revoked from role {role}")
    } else if end == [0] {
        format!("Permission of range [{key}, <open ended> is revoked from role {role}")
    } else {
        format!(
            "Permission of range [{key}, {}) is revoked from role {role}",
            lossy(end)
        )
    }
}

/// `auth status`, as etcdctl 3.5 prints it.
pub fn auth_status(
    format: Format,
    enabled: bool,
    revision: u64,
    header: Option<&ResponseHeader>,
) -> Result<String, CtlError> {
    match format {
        Format::Simple => Ok(format!(
            "Authentication Status: {enabled}\nAuthRevision: {revision}\n"
        )),
        Format::Json => {
            let value = Obj::new()
                .opt("header", json::header(header))
                .flag("enabled", enabled)
                .uint("authRevision", revision)
                .done();
            Ok(format!("{value}\n"))
        }
        Format::Fields | Format::Table => Err(CtlError::UnsupportedFormat { format }),
    }
}

/// Bytes quoted as Go's `%q` quotes a string: printable ASCII as is,
/// C escapes for the usual controls, `\xNN` for other bytes below 0x80,
/// and other UTF-8 as is.
fn go_quote(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\u{7}' => text.push_str("\\a"),
            '\u{8}' => text.push_str("\\b"),
            '\u{c}' => text.push_str("\\f"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            '\t' => text.push_str("\\t"),
            '\u{b}' => text.push_str("\\v"),
            c if c.is_ascii_control() => text.push_str(&format!("\\x{:02x}", c as u32)),
            c => text.push(c),
        }
    }
    text.push('"');
    text
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(kind: Type, key: &str, end: &[u8]) -> Permission {
        Permission {
            perm_type: kind as i32,
            key: key.as_bytes().to_vec(),
            range_end: end.to_vec(),
        }
    }

    fn header() -> ResponseHeader {
        ResponseHeader {
            cluster_id: 15118495548433857066,
            member_id: 13668033151171901709,
            revision: 1,
            raft_term: 2,
        }
    }

    /// What etcdctl 3.4.23 printed for a role with these grants.
    fn role() -> AuthRoleGetResponse {
        AuthRoleGetResponse {
            header: Some(header()),
            perm: vec![
                perm(Type::Read, "/a/", b"/a0"),
                perm(Type::Write, "/b", b"/c"),
                perm(Type::Readwrite, "/d", b"\0"),
                perm(Type::Read, "/e", b""),
            ],
        }
    }

    #[test]
    fn role_get_prints_like_etcdctl() {
        assert_eq!(
            role_get(Format::Simple, "r1", &role()).unwrap(),
            "Role r1\nKV Read:\n\t[/a/, /a0) (prefix /a/)\n\t[/d, <open ended>\n\t/e\nKV Write:\n\t[/b, /c) (prefix /b)\n\t[/d, <open ended>\n"
        );
        assert_eq!(
            role_get(Format::Json, "r1", &role()).unwrap(),
            "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":1,\"raft_term\":2},\"perm\":[{\"key\":\"L2Ev\",\"range_end\":\"L2Ew\"},{\"permType\":1,\"key\":\"L2I=\",\"range_end\":\"L2M=\"},{\"permType\":2,\"key\":\"L2Q=\",\"range_end\":\"AA==\"},{\"key\":\"L2U=\"}]}\n"
        );
        let one = AuthRoleGetResponse {
            header: Some(header()),
            perm: vec![perm(Type::Read, "/a/", b"/a0")],
        };
        assert_eq!(
            role_get(Format::Fields, "r1", &one).unwrap(),
            "\"ClusterID\" : 15118495548433857066\n\"MemberID\" : 13668033151171901709\n\"Revision\" : 1\n\"RaftTerm\" : 2\n\"PermType\" :  READ\n\"Key\" : \"/a/\"\n\"RangeEnd\" : \"/a0\"\n"
        );
        let empty = AuthRoleGetResponse::default();
        assert_eq!(
            role_get(Format::Simple, "e", &empty).unwrap(),
            "Role e\nKV Read:\nKV Write:\n"
        );
        assert!(role_get(Format::Table, "r1", &role()).is_err());
    }

    #[test]
    fn users_and_roles_print_like_etcdctl() {
        let h = header();
        assert_eq!(
            user_get(Format::Simple, "u1", &["r1".into()], Some(&h)).unwrap(),
            "User: u1\nRoles: r1\n"
        );
        assert_eq!(
            user_get(Format::Simple, "u2", &[], Some(&h)).unwrap(),
            "User: u2\nRoles:\n"
        );
        assert_eq!(
            user_get(Format::Json, "u1", &["r1".into()], Some(&h)).unwrap(),
            "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":1,\"raft_term\":2},\"roles\":[\"r1\"]}\n"
        );
        let users = ["root".to_string(), "u1".to_string()];
        assert_eq!(
            names(Format::Simple, "users", &users, Some(&h)).unwrap(),
            "root\nu1\n"
        );
        assert!(names(Format::Fields, "users", &users, Some(&h)).is_err());
        assert_eq!(
            names(Format::Fields, "roles", &["r1".into()], Some(&h)).unwrap(),
            "\"ClusterID\" : 15118495548433857066\n\"MemberID\" : 13668033151171901709\n\"Revision\" : 1\n\"RaftTerm\" : 2\n\"Roles\" : \"r1\"\n"
        );
        assert_eq!(
            done(Format::Json, "Role x created", Some(&h)).unwrap(),
            "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":1,\"raft_term\":2}}\n"
        );
        assert_eq!(
            done(Format::Simple, "Role x created", Some(&h)).unwrap(),
            "Role x created\n"
        );
    }

    #[test]
    fn fields_quote_as_go_does() {
        assert_eq!(go_quote(b"/a/"), "\"/a/\"");
        assert_eq!(go_quote(b"\0"), "\"\\x00\"");
        assert_eq!(go_quote(b"a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
    }

    #[test]
    fn revocations_name_the_range_as_typed() {
        assert_eq!(
            revoked("/a/", b"/a0", "r1"),
            "Permission of range [/a/, /a0) is revoked from role r1"
        );
        assert_eq!(
            revoked("/k", b"", "r2"),
            "Permission of key /k is revoked from role r2"
        );
        assert_eq!(
            revoked("/m", b"\0", "r2"),
            "Permission of range [/m, <open ended> is revoked from role r2"
        );
    }

    #[test]
    fn auth_status_prints_like_etcdctl_3_5() {
        assert_eq!(
            auth_status(Format::Simple, true, 7, None).unwrap(),
            "Authentication Status: true\nAuthRevision: 7\n"
        );
        assert_eq!(
            auth_status(Format::Json, false, 0, Some(&header())).unwrap(),
            "{\"header\":{\"cluster_id\":15118495548433857066,\"member_id\":13668033151171901709,\"revision\":1,\"raft_term\":2}}\n"
        );
    }
}
