//! `user add|get|list|delete|passwd|grant-role|revoke-role`, with
//! etcdctl's arguments, messages and password prompts: `user add` takes
//! `name:password`, `--new-user-password`, or asks (on the terminal with
//! echo off, twice; with `--interactive=false` it reads one word from
//! standard input).

use clap::{ArgAction, Args, Subcommand};
use witan_proto::authpb::UserAddOptions;
use witan_proto::etcdserverpb::{
    AuthRoleGetRequest, AuthUserAddRequest, AuthUserChangePasswordRequest, AuthUserDeleteRequest,
    AuthUserGetRequest, AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};

use crate::cli::Format;
use crate::conn::prompt::{prompt, read_line};
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::{self, auth};

/// The user commands.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Adds a new user.
    Add(UserAddArgs),
    /// Gets detailed information of a user.
    Get {
        /// The user.
        name: Option<String>,
        /// Show permissions of roles granted to the user.
        #[arg(long)]
        detail: bool,
    },
    /// Lists all users.
    List,
    /// Deletes a user.
    Delete {
        /// The user.
        name: Option<String>,
    },
    /// Changes password of user.
    Passwd {
        /// The user.
        name: Option<String>,
        /// If true, read password from stdin instead of interactive terminal.
        #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
        interactive: bool,
    },
    /// Grants a role to a user.
    GrantRole {
        /// The user (not `user`: that is the global `--user`).
        name: Option<String>,
        /// The role.
        role: Option<String>,
    },
    /// Revokes a role from a user.
    RevokeRole {
        /// The user.
        name: Option<String>,
        /// The role.
        role: Option<String>,
    },
}

/// `user add` options.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// `name` or `name:password` (not `user`, the global `--user`'s name).
    #[arg(value_name = "USER")]
    pub name: Option<String>,
    /// Read password from stdin instead of interactive terminal.
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub interactive: bool,
    /// Supply password from the command line flag.
    #[arg(long)]
    pub new_user_password: Option<String>,
    /// Create a user without password (CN based auth only).
    #[arg(long)]
    pub no_password: bool,
}

/// Runs a user command.
pub async fn run(ctx: &Ctx, command: &UserCommand) -> Result<(), CtlError> {
    match command {
        UserCommand::Add(args) => add(ctx, args).await,
        UserCommand::Get { name, detail } => {
            let name = need(name, "user get command requires user name as its argument")?;
            get(ctx, name, *detail).await
        }
        UserCommand::List => {
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let resp = conn
                .call("UserList", client.user_list(AuthUserListRequest {}))
                .await?;
            output::emit(&auth::names(
                ctx.format,
                "users",
                &resp.users,
                resp.header.as_ref(),
            )?);
            Ok(())
        }
        UserCommand::Delete { name } => {
            let name = need(
                name,
                "user delete command requires user name as its argument",
            )?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthUserDeleteRequest {
                name: name.to_string(),
            };
            let resp = conn.call("UserDelete", client.user_delete(request)).await?;
            let text = auth::done(
                ctx.format,
                &format!("User {name} deleted"),
                resp.header.as_ref(),
            )?;
            output::emit(&text);
            Ok(())
        }
        UserCommand::Passwd { name, interactive } => {
            let name = need(
                name,
                "user passwd command requires user name as its argument",
            )?;
            let password = ask_password(name, *interactive)?;
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthUserChangePasswordRequest {
                name: name.to_string(),
                password,
                hashed_password: String::new(),
            };
            let resp = conn
                .call("UserChangePassword", client.user_change_password(request))
                .await?;
            let text = auth::done(ctx.format, "Password updated", resp.header.as_ref())?;
            output::emit(&text);
            Ok(())
        }
        UserCommand::GrantRole { name: user, role } => {
            const USAGE: &str =
                "user grant command requires user name and role name as its argument";
            let (user, role) = (need(user, USAGE)?, need(role, USAGE)?);
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthUserGrantRoleRequest {
                user: user.to_string(),
                role: role.to_string(),
            };
            let resp = conn
                .call("UserGrantRole", client.user_grant_role(request))
                .await?;
            let text = auth::done(
                ctx.format,
                &format!("Role {role} is granted to user {user}"),
                resp.header.as_ref(),
            )?;
            output::emit(&text);
            Ok(())
        }
        UserCommand::RevokeRole { name: user, role } => {
            const USAGE: &str = "user revoke-role requires user name and role name as its argument";
            let (user, role) = (need(user, USAGE)?, need(role, USAGE)?);
            let conn = ctx.connect().await?;
            let mut client = conn.auth();
            let request = AuthUserRevokeRoleRequest {
                name: user.to_string(),
                role: role.to_string(),
            };
            let resp = conn
                .call("UserRevokeRole", client.user_revoke_role(request))
                .await?;
            let text = auth::done(
                ctx.format,
                &format!("Role {role} is revoked from user {user}"),
                resp.header.as_ref(),
            )?;
            output::emit(&text);
            Ok(())
        }
    }
}

/// A positional argument etcdctl requires, with its message when absent.
pub fn need<'a>(arg: &'a Option<String>, usage: &'static str) -> Result<&'a str, UsageError> {
    arg.as_deref().ok_or(UsageError::Missing(usage))
}

/// `user add`.
async fn add(ctx: &Ctx, args: &UserAddArgs) -> Result<(), CtlError> {
    let given = need(
        &args.name,
        "user add command requires user name as its argument",
    )?;
    let (name, password) = user_and_password(given, args)?;
    let conn = ctx.connect().await?;
    let mut client = conn.auth();
    let request = AuthUserAddRequest {
        name: name.clone(),
        password,
        options: Some(UserAddOptions {
            no_password: args.no_password,
        }),
        hashed_password: String::new(),
    };
    let resp = conn.call("UserAdd", client.user_add(request)).await?;
    let text = auth::done(
        ctx.format,
        &format!("User {name} created"),
        resp.header.as_ref(),
    )?;
    output::emit(&text);
    Ok(())
}

/// The user name and password `user add` was given, asking for the
/// password when the argument does not carry one (etcdctl's rules).
fn user_and_password(given: &str, args: &UserAddArgs) -> Result<(String, String), CtlError> {
    if let Some(password) = args.new_user_password.as_ref().filter(|p| !p.is_empty()) {
        return Ok((given.to_string(), password.clone()));
    }
    match given.split_once(':') {
        Some(("", _)) => Err(UsageError::Missing("empty user name is not allowed").into()),
        Some((name, password)) => Ok((name.to_string(), password.to_string())),
        None if args.no_password => Ok((given.to_string(), String::new())),
        None => Ok((given.to_string(), ask_password(given, args.interactive)?)),
    }
}

/// `user get`, with `--detail` every granted role's permissions.
async fn get(ctx: &Ctx, name: &str, detail: bool) -> Result<(), CtlError> {
    if detail && ctx.format == Format::Table {
        return Err(CtlError::UnsupportedFormat { format: ctx.format });
    }
    let conn = ctx.connect().await?;
    let mut client = conn.auth();
    let request = AuthUserGetRequest {
        name: name.to_string(),
    };
    let resp = conn.call("UserGet", client.user_get(request)).await?;
    if !detail {
        output::emit(&auth::user_get(
            ctx.format,
            name,
            &resp.roles,
            resp.header.as_ref(),
        )?);
        return Ok(());
    }
    let mut text = format!("User: {name}\n");
    for role in &resp.roles {
        let request = AuthRoleGetRequest { role: role.clone() };
        let role_resp = conn.call("RoleGet", client.role_get(request)).await?;
        text.push('\n');
        text.push_str(&auth::role_get(ctx.format, role, &role_resp)?);
    }
    output::emit(&text);
    Ok(())
}

/// The password of `name`: asked twice on the terminal (etcdctl's
/// prompts, echo off) when `interactive`, else the first word of one line
/// of standard input.
fn ask_password(name: &str, interactive: bool) -> Result<String, CtlError> {
    if !interactive {
        let line = read_line(false)?;
        return Ok(line.split_whitespace().next().unwrap_or("").to_string());
    }
    let first = prompt(&format!("Password of {name}: "))?;
    if first.is_empty() {
        return Err(UsageError::Missing("empty password").into());
    }
    let second = prompt(&format!("Type password of {name} again for confirmation: "))?;
    if first != second {
        return Err(UsageError::Missing("given passwords are different").into());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(user: &str) -> UserAddArgs {
        UserAddArgs {
            name: Some(user.to_string()),
            interactive: true,
            new_user_password: None,
            no_password: false,
        }
    }

    #[test]
    fn the_password_comes_from_the_flag_or_after_the_colon() {
        assert_eq!(
            user_and_password("u1:pw:x", &args("u1:pw:x")).unwrap(),
            ("u1".to_string(), "pw:x".to_string())
        );
        let flagged = UserAddArgs {
            new_user_password: Some("secret".into()),
            ..args("u1:x")
        };
        assert_eq!(
            user_and_password("u1:x", &flagged).unwrap(),
            ("u1:x".to_string(), "secret".to_string())
        );
        let none = UserAddArgs {
            no_password: true,
            ..args("cn")
        };
        assert_eq!(
            user_and_password("cn", &none).unwrap(),
            ("cn".to_string(), String::new())
        );
        let error = user_and_password(":x", &args(":x")).unwrap_err();
        assert_eq!(error.to_string(), "empty user name is not allowed");
    }
}
