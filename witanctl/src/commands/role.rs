//! `role add|get|list|delete|grant-permission|revoke-permission`, with
//! etcdctl's arguments and messages. A permission covers one key, a
//! range `[key, endkey)`, a prefix (`--prefix`) or every key from one on
//! (`--from-key`), computed as etcdctl does ([`perm_range`]).

use clap::{Args, Subcommand};
use witan_proto::authpb::permission::Type;
use witan_proto::authpb::Permission;
use witan_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGrantPermissionRequest,
    AuthRoleListRequest, AuthRoleRevokePermissionRequest,
};

use super::kv::prefix_end;
use super::user::need;
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::{self, auth};

/// The role commands.
#[derive(Debug, Clone, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role.
    Add {
        /// The role.
        name: Option<String>,
    },
    /// Gets detailed information of a role.
    Get {
        /// The role.
        name: Option<String>,
    },
    /// Lists all roles.
    List,
    /// Deletes a role.
    Delete {
        /// The role.
        name: Option<String>,
    },
    /// Grants a key to a role.
    GrantPermission(GrantArgs),
    /// Revokes a key from a role.
    RevokePermission(RevokeArgs),
}

/// The keys of a permission, as typed.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Grant (or revoke) a prefix permission.
    #[arg(long)]
    pub prefix: bool,
    /// A permission of keys that are greater than or equal to the given
    /// key using byte compare.
    #[arg(long)]
    pub from_key: bool,
}

/// `role grant-permission <role> <read|write|readwrite> <key> [endkey]`.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// The role, the permission type, the key and the optional end key.
    #[arg(num_args = 0..=4)]
    pub args: Vec<String>,
    /// How the key is read.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `role revoke-permission <role> <key> [endkey]`.
#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// The role, the key and the optional end key.
    #[arg(num_args = 0..=3)]
    pub args: Vec<String>,
    /// How the key is read.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Runs a role command.
pub async fn run(ctx: &Ctx, command: &RoleCommand) -> Result<(), CtlError> {
    match command {
        RoleCommand::Add { name } => {
            let name = need(name, "role add command requires role name as its argument")?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthRoleAddRequest {
                name: name.to_string(),
            };
            let resp = conn.call("RoleAdd", client.role_add(request)).await?;
            let sentence = format!("Role {name} created");
            output::emit(&auth::done(ctx.format, &sentence, resp.header.as_ref())?);
        }
        RoleCommand::Get { name } => {
            let name = need(name, "role get command requires role name as its argument")?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthRoleGetRequest {
                role: name.to_string(),
            };
            let resp = conn.call("RoleGet", client.role_get(request)).await?;
            output::emit(&auth::role_get(ctx.format, name, &resp)?);
        }
        RoleCommand::List => {
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let resp = conn
                .call("RoleList", client.role_list(AuthRoleListRequest {}))
                .await?;
            output::emit(&auth::names(
                ctx.format,
                "roles",
                &resp.roles,
                resp.header.as_ref(),
            )?);
        }
        RoleCommand::Delete { name } => {
            let name = need(
                name,
                "role delete command requires role name as its argument",
            )?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthRoleDeleteRequest {
                role: name.to_string(),
            };
            let resp = conn.call("RoleDelete", client.role_delete(request)).await?;
            let sentence = format!("Role {name} deleted");
            output::emit(&auth::done(ctx.format, &sentence, resp.header.as_ref())?);
        }
        RoleCommand::GrantPermission(args) => {
            let [role, kind, key, rest @ ..] = args.args.as_slice() else {
                return Err(UsageError::Missing(
                    "role grant command requires role name, permission type, and key [endkey] as its argument",
                )
                .into());
            };
            let perm_type = perm_type(kind)?;
            let (key, range_end) = perm_range(key, rest.first(), &args.keys)?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthRoleGrantPermissionRequest {
                name: role.clone(),
                perm: Some(Permission {
                    perm_type: perm_type as i32,
                    key,
                    range_end,
                }),
            };
            let resp = conn
                .call("RoleGrantPermission", client.role_grant_permission(request))
                .await?;
            let sentence = format!("Role {role} updated");
            output::emit(&auth::done(ctx.format, &sentence, resp.header.as_ref())?);
        }
        RoleCommand::RevokePermission(args) => {
            let [role, typed, rest @ ..] = args.args.as_slice() else {
                return Err(UsageError::Missing(
                    "role revoke-permission command requires role name and key [endkey] as its argument",
                )
                .into());
            };
            let (key, range_end) = perm_range(typed, rest.first(), &args.keys)?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthRoleRevokePermissionRequest {
                role: role.clone(),
                key,
                range_end: range_end.clone(),
            };
            let resp = conn
                .call(
                    "RoleRevokePermission",
                    client.role_revoke_permission(request),
                )
                .await?;
            let sentence = auth::revoked(typed, &range_end, role);
            output::emit(&auth::done(ctx.format, &sentence, resp.header.as_ref())?);
        }
    }
    Ok(())
}

/// `read`, `write` or `readwrite`, in any case.
fn perm_type(text: &str) -> Result<Type, UsageError> {
    Type::from_str_name(&text.to_ascii_uppercase()).ok_or_else(|| UsageError::Choice {
        flag: "permission type",
        value: text.to_string(),
        expected: "read, write, readwrite",
    })
}

/// The (key, range_end) of a permission, etcdctl's way: a prefix's end is
/// the prefix's successor; `--from-key` ends at "\0" (no end); an empty
/// key with either flag means every key ("\0" to "\0").
fn perm_range(
    key: &str,
    end: Option<&String>,
    keys: &KeyArgs,
) -> Result<(Vec<u8>, Vec<u8>), UsageError> {
    if keys.prefix && keys.from_key {
        return Err(UsageError::Missing(
            "--from-key and --prefix flags are mutually exclusive",
        ));
    }
    match end {
        Some(_) if keys.prefix => Err(UsageError::Missing(
            "unexpected endkey argument with --prefix flag",
        )),
        Some(_) if keys.from_key => Err(UsageError::Missing(
            "unexpected endkey argument with --from-key flag",
        )),
        Some(end) => Ok((key.as_bytes().to_vec(), end.as_bytes().to_vec())),
        None if (keys.prefix || keys.from_key) && key.is_empty() => Ok((vec![0], vec![0])),
        None if keys.prefix => Ok((key.as_bytes().to_vec(), prefix_end(key.as_bytes()))),
        None if keys.from_key => Ok((key.as_bytes().to_vec(), vec![0])),
        None => Ok((key.as_bytes().to_vec(), Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prefix: bool, from_key: bool) -> KeyArgs {
        KeyArgs { prefix, from_key }
    }

    #[test]
    fn permission_ranges_follow_etcdctl() {
        let range = |key: &str, end: Option<&str>, k: KeyArgs| {
            perm_range(key, end.map(str::to_string).as_ref(), &k)
        };
        assert_eq!(
            range("/a/", None, keys(true, false)).unwrap(),
            (b"/a/".to_vec(), b"/a0".to_vec())
        );
        assert_eq!(
            range("/b", Some("/c"), keys(false, false)).unwrap(),
            (b"/b".to_vec(), b"/c".to_vec())
        );
        assert_eq!(
            range("/d", None, keys(false, true)).unwrap(),
            (b"/d".to_vec(), vec![0])
        );
        assert_eq!(
            range("", None, keys(true, false)).unwrap(),
            (vec![0], vec![0])
        );
        assert_eq!(
            range("/e", None, keys(false, false)).unwrap(),
            (b"/e".to_vec(), Vec::new())
        );
        assert_eq!(
            range("/k", Some("/l"), keys(true, false))
                .unwrap_err()
                .to_string(),
            "unexpected endkey argument with --prefix flag"
        );
        assert_eq!(
            range("/k", None, keys(true, true)).unwrap_err().to_string(),
            "--from-key and --prefix flags are mutually exclusive"
        );
    }

    #[test]
    fn permission_types_are_read_write_readwrite_in_any_case() {
        assert_eq!(perm_type("read").unwrap(), Type::Read);
        assert_eq!(perm_type("READ").unwrap(), Type::Read);
        assert_eq!(perm_type("readwrite").unwrap(), Type::Readwrite);
        assert_eq!(perm_type("Write").unwrap(), Type::Write);
        assert!(perm_type("foo").is_err());
    }
}
