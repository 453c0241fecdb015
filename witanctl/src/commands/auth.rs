//! `auth enable|disable|status`: switches authentication on and off, as
//! etcdctl does. `enable` first gives the root user the root role when
//! the server says it lacks it (etcdctl does the same, so `user add root`
//! then `auth enable` is all it takes). `status` is etcdctl 3.5's.

use clap::Subcommand;
use witan_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthStatusRequest,
    AuthUserGrantRoleRequest,
};

use crate::conn::{Conn, Ctx};
use crate::error::CtlError;
use crate::output::{self, auth};

/// etcd's answer to `AuthEnable` while user root exists without role root.
const ROOT_ROLE_MISSING: &str = "etcdserver: root user does not have root role";
/// etcd's answer to `RoleAdd` for a role that exists.
const ROLE_EXISTS: &str = "etcdserver: role name already exists";

/// The auth commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication.
    Enable,
    /// Disables authentication.
    Disable,
    /// Returns authentication status.
    Status,
}

/// Runs an auth command.
pub async fn run(ctx: &Ctx, command: &AuthCommand) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    match command {
        AuthCommand::Enable => {
            enable(&conn).await?;
            output::emit("Authentication Enabled\n");
        }
        AuthCommand::Disable => {
            let mut client = conn.auth();
            conn.call("AuthDisable", client.auth_disable(AuthDisableRequest {}))
                .await?;
            output::emit("Authentication Disabled\n");
        }
        AuthCommand::Status => {
            let mut client = conn.auth();
            let resp = conn
                .call("AuthStatus", client.auth_status(AuthStatusRequest {}))
                .await?;
            output::emit(&auth::auth_status(
                ctx.format,
                resp.enabled,
                resp.auth_revision,
                resp.header.as_ref(),
            )?);
        }
    }
    Ok(())
}

/// Enables authentication, granting role root to user root first when
/// that is all that stands in the way.
async fn enable(conn: &Conn) -> Result<(), CtlError> {
    let mut client = conn.auth();
    match conn
        .call("AuthEnable", client.auth_enable(AuthEnableRequest {}))
        .await
    {
        Err(CtlError::Rpc { status, .. }) if status.message() == ROOT_ROLE_MISSING => {}
        other => return other.map(drop),
    }
    let add = AuthRoleAddRequest {
        name: "root".to_string(),
    };
    match conn.call("RoleAdd", client.role_add(add)).await {
        Err(CtlError::Rpc { status, .. }) if status.message() == ROLE_EXISTS => {}
        other => drop(other?),
    }
    let grant = AuthUserGrantRoleRequest {
        user: "root".to_string(),
        role: "root".to_string(),
    };
    conn.call("UserGrantRole", client.user_grant_role(grant))
        .await?;
    conn.call("AuthEnable", client.auth_enable(AuthEnableRequest {}))
        .await
        .map(drop)
}
