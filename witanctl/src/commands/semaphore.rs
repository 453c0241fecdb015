//! `semaphore acquire NAME --permits N [command...]`: takes a permit of
//! witan's counting semaphore under a session lease, then runs the command
//! while holding it (with `WITAN_SEMAPHORE_KEY` and `WITAN_FENCING_TOKEN`
//! in its environment), or prints the permit's key and fencing token and
//! holds it until Ctrl-C.

use witan_proto::recipespb::{SemaphoreAcquireRequest, SemaphoreReleaseRequest};

use super::hold::{self, Session};
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output;

/// The semaphore commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SemaphoreCommand {
    /// Acquires a permit (waiting for one), then runs the command or holds it.
    Acquire(AcquireArgs),
}

/// `semaphore acquire` options.
#[derive(Debug, Clone, clap::Args)]
pub struct AcquireArgs {
    /// The semaphore's name.
    pub name: String,
    /// How many holders the semaphore admits at once (every caller must
    /// give the same number).
    #[arg(long)]
    pub permits: u32,
    /// A command to run while holding the permit (after `--`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Timeout for the session (its lease's TTL, in seconds).
    #[arg(long, default_value_t = 10)]
    pub ttl: i64,
}

/// Runs a semaphore command.
pub async fn run(ctx: &Ctx, command: &SemaphoreCommand) -> Result<(), CtlError> {
    let SemaphoreCommand::Acquire(args) = command;
    let conn = ctx.connect().await?;
    let mut session = Session::start(&conn, args.ttl).await?;
    let request = SemaphoreAcquireRequest {
        name: args.name.clone().into_bytes(),
        permits: args.permits,
        lease: session.id(),
    };
    let mut client = conn.semaphore();
    let answer = tokio::select! {
        answer = client.acquire(request) => answer,
        _ = session.lost() => return Err(CtlError::LeaseLost { id: session.id() }),
        _ = hold::until_signal() => return session.close(&conn).await,
    };
    let permit = match answer {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = session.close(&conn).await;
            return Err(conn.rpc("Semaphore.Acquire", status));
        }
    };
    let key = String::from_utf8_lossy(&permit.key).into_owned();
    let outcome = if args.command.is_empty() {
        output::emit(&format!("{key}\nfencing token {}\n", permit.token));
        tokio::select! {
            _ = hold::until_signal() => Ok(()),
            _ = session.lost() => Err(CtlError::LeaseLost { id: session.id() }),
        }
    } else {
        let env = [
            ("WITAN_SEMAPHORE_KEY".to_string(), key),
            ("WITAN_FENCING_TOKEN".to_string(), permit.token.to_string()),
        ];
        hold::run_command(&args.command, &env).await
    };
    let release = SemaphoreReleaseRequest { key: permit.key };
    let released = conn
        .call("Semaphore.Release", conn.semaphore().release(release))
        .await;
    let closed = session.close(&conn).await;
    outcome.and(released.map(|_| ())).and(closed)
}
