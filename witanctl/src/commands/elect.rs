//! `elect NAME [proposal]`: campaigns in an election through the Election
//! service under a session lease; once leader, prints the leader key, the
//! proposal and the leadership's fencing token, and stays leader until
//! Ctrl-C (then resigns). `elect -l NAME` observes: prints every leader
//! as it changes.

use tokio_stream::StreamExt;
use witan_proto::v3electionpb::{CampaignRequest, LeaderRequest, ResignRequest};

use super::hold::{self, Session};
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output;

/// `elect` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ElectArgs {
    /// The election's name.
    pub name: String,
    /// The value to proclaim once leader.
    pub proposal: Option<String>,
    /// Observe the election's leaders instead of campaigning.
    #[arg(short, long)]
    pub listen: bool,
    /// Timeout for the session (its lease's TTL, in seconds).
    #[arg(long, default_value_t = 10)]
    pub ttl: i64,
}

/// `elect`.
pub async fn run(ctx: &Ctx, args: &ElectArgs) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    let name = args.name.clone().into_bytes();
    if args.listen {
        let mut leaders = conn
            .wait("Observe", conn.election().observe(LeaderRequest { name }))
            .await?;
        loop {
            let next = tokio::select! {
                next = leaders.next() => next,
                _ = hold::until_signal() => return Ok(()),
            };
            match next {
                Some(Ok(resp)) => {
                    if let Some(kv) = &resp.kv {
                        output::emit(&output::kv_lines(kv, ctx.hex, false));
                    }
                }
                Some(Err(status)) => return Err(conn.rpc("Observe", status)),
                None => {
                    return Err(CtlError::StreamEnded {
                        endpoint: conn.endpoint.clone(),
                        what: "Observe",
                    })
                }
            }
        }
    }
    let Some(proposal) = &args.proposal else {
        return Err(
            crate::error::UsageError::Missing("no proposal argument but -l not set").into(),
        );
    };
    let mut session = Session::start(&conn, args.ttl).await?;
    let request = CampaignRequest {
        name,
        lease: session.id(),
        value: proposal.clone().into_bytes(),
    };
    let mut client = conn.election();
    let answer = tokio::select! {
        answer = client.campaign(request) => answer,
        _ = session.lost() => return Err(CtlError::LeaseLost { id: session.id() }),
        _ = hold::until_signal() => return session.close(&conn).await,
    };
    let won = match answer {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let _ = session.close(&conn).await;
            return Err(conn.rpc("Campaign", status));
        }
    };
    let leader = won.leader.unwrap_or_default();
    output::emit(&format!(
        "{}\n{}\nfencing token {}\n",
        output::bytes(&leader.key, ctx.hex),
        output::bytes(proposal.as_bytes(), ctx.hex),
        leader.rev
    ));
    let outcome = tokio::select! {
        _ = hold::until_signal() => Ok(()),
        _ = session.lost() => Err(CtlError::LeaseLost { id: session.id() }),
    };
    let resign = ResignRequest {
        leader: Some(leader),
    };
    let resigned = conn.call("Resign", conn.election().resign(resign)).await;
    let closed = session.close(&conn).await;
    outcome.and(resigned.map(|_| ())).and(closed)
}
