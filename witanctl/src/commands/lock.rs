//! `lock NAME [command...]`: acquires a named lock through the Lock
//! service (etcd's key layout, so etcdctl and witanctl contend on the same
//! locks) under a session lease, then either runs the command while
//! holding it, or prints the lock key and witan's fencing token and holds
//! the lock until Ctrl-C.
//!
//! The command gets etcdctl's `ETCD_LOCK_KEY` and `ETCD_LOCK_REV`, and
//! `WITAN_LOCK_KEY`, `WITAN_LOCK_REV` and `WITAN_FENCING_TOKEN` (the lock
//! key's create revision: a guarded resource can refuse a smaller one).

use witan_proto::etcdserverpb::RangeRequest;
use witan_proto::v3lockpb::{LockRequest, UnlockRequest};

use super::hold::{self, Session};
use crate::conn::{Conn, Ctx};
use crate::error::CtlError;
use crate::output;

/// The response metadata key in which witan's Lock service sends the
/// fencing token (etcd sends none).
const FENCING_TOKEN_METADATA: &str = "witan-fencing-token";

/// `lock` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// The lock's name.
    pub name: String,
    /// A command to run while holding the lock (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Timeout for the session (its lease's TTL, in seconds).
    #[arg(long, default_value_t = 10)]
    pub ttl: i64,
}

/// `lock`.
pub async fn run(ctx: &Ctx, args: &LockArgs) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    let mut session = Session::start(&conn, args.ttl).await?;
    let request = LockRequest {
        name: args.name.clone().into_bytes(),
        lease: session.id(),
    };
    let mut client = conn.lock();
    let answer = tokio::select! {
        answer = client.lock(request) => answer,
        _ = session.lost() => return Err(CtlError::LeaseLost { id: session.id() }),
        _ = hold::until_signal() => return session.close(&conn).await,
    };
    let response = match answer {
        Ok(response) => response,
        Err(status) => {
            let _ = session.close(&conn).await;
            return Err(conn.rpc("Lock", status));
        }
    };
    let metadata_token = response
        .metadata()
        .get(FENCING_TOKEN_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let locked = response.into_inner();
    let revision = locked.header.as_ref().map_or(0, |h| h.revision);
    let token = match metadata_token {
        Some(token) => token,
        None => create_revision(&conn, &locked.key).await?,
    };
    let key = String::from_utf8_lossy(&locked.key).into_owned();
    let outcome = if args.command.is_empty() {
        output::emit(&format!("{key}\nfencing token {token}\n"));
        tokio::select! {
            _ = hold::until_signal() => Ok(()),
            _ = session.lost() => Err(CtlError::LeaseLost { id: session.id() }),
        }
    } else {
        let env = [
            ("ETCD_LOCK_KEY".to_string(), key.clone()),
            ("ETCD_LOCK_REV".to_string(), revision.to_string()),
            ("WITAN_LOCK_KEY".to_string(), key.clone()),
            ("WITAN_LOCK_REV".to_string(), revision.to_string()),
            ("WITAN_FENCING_TOKEN".to_string(), token.to_string()),
        ];
        hold::run_command(&args.command, &env).await
    };
    let unlock = UnlockRequest { key: locked.key };
    let unlocked = conn.call("Unlock", conn.lock().unlock(unlock)).await;
    let closed = session.close(&conn).await;
    outcome.and(unlocked.map(|_| ())).and(closed)
}

/// The create revision of `key` (the fencing token, when the server did
/// not send it).
pub async fn create_revision(conn: &Conn, key: &[u8]) -> Result<i64, CtlError> {
    let request = RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    };
    let resp = conn.call("Range", conn.kv().range(request)).await?;
    Ok(resp.kvs.first().map_or(0, |kv| kv.create_revision))
}
