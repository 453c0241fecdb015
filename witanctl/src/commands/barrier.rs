//! `barrier wait|set|release NAME`: witan's Barrier service. `set` raises
//! the barrier under a lease: one given with `--lease` (then it returns at
//! once and the barrier lasts as long as that lease), or its own session
//! lease, held until Ctrl-C (then the barrier drops with the lease).

use witan_proto::recipespb::{BarrierHoldRequest, BarrierReleaseRequest, BarrierWaitRequest};

use super::hold::{self, Session};
use super::kv::parse_lease;
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output;

/// The barrier commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BarrierCommand {
    /// Waits until the barrier is not raised.
    Wait {
        /// The barrier's name.
        name: String,
    },
    /// Raises the barrier (fails if it is raised already).
    Set {
        /// The barrier's name.
        name: String,
        /// Hold it under this lease (hex) and return at once.
        #[arg(long)]
        lease: Option<String>,
        /// TTL of the session lease when no --lease is given, in seconds.
        #[arg(long, default_value_t = 10)]
        ttl: i64,
    },
    /// Lowers the barrier, whoever raised it.
    Release {
        /// The barrier's name.
        name: String,
    },
}

/// Runs a barrier command.
pub async fn run(ctx: &Ctx, command: &BarrierCommand) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    match command {
        BarrierCommand::Wait { name } => {
            let request = BarrierWaitRequest {
                name: name.clone().into_bytes(),
            };
            let mut client = conn.barrier();
            tokio::select! {
                answer = client.wait(request) => {
                    answer.map_err(|status| conn.rpc("Barrier.Wait", status))?;
                }
                _ = hold::until_signal() => {}
            }
        }
        BarrierCommand::Release { name } => {
            let request = BarrierReleaseRequest {
                name: name.clone().into_bytes(),
            };
            conn.call("Barrier.Release", conn.barrier().release(request))
                .await?;
            output::emit("OK\n");
        }
        BarrierCommand::Set { name, lease, ttl } => {
            let name = name.clone().into_bytes();
            if let Some(lease) = lease {
                let request = BarrierHoldRequest {
                    name,
                    lease: parse_lease(lease)?,
                };
                let held = conn
                    .call("Barrier.Hold", conn.barrier().hold(request))
                    .await?;
                output::emit(&format!("{}\n", output::bytes(&held.key, ctx.hex)));
                return Ok(());
            }
            let mut session = Session::start(&conn, *ttl).await?;
            let request = BarrierHoldRequest {
                name,
                lease: session.id(),
            };
            let held = match conn
                .call("Barrier.Hold", conn.barrier().hold(request))
                .await
            {
                Ok(held) => held,
                Err(error) => {
                    let _ = session.close(&conn).await;
                    return Err(error);
                }
            };
            output::emit(&format!("{}\n", output::bytes(&held.key, ctx.hex)));
            let outcome = tokio::select! {
                _ = hold::until_signal() => Ok(()),
                _ = session.lost() => Err(CtlError::LeaseLost { id: session.id() }),
            };
            let closed = session.close(&conn).await;
            return outcome.and(closed);
        }
    }
    Ok(())
}
