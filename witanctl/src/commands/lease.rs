//! `lease grant|revoke|timetolive|list|keep-alive`.

use crate::output::json::Json;
use clap::Subcommand;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use witan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest,
    LeaseRevokeRequest, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

use super::kv::parse_lease;
use crate::cli::Format;
use crate::conn::{Conn, Ctx};
use crate::error::{CtlError, UsageError};
use crate::output::{self, json};

/// The lease commands.
#[derive(Debug, Clone, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases.
    Grant {
        /// Time to live, in seconds.
        ttl: String,
    },
    /// Revokes leases (and deletes their keys).
    Revoke {
        /// Lease ID, in hex.
        id: String,
    },
    /// Gets lease information.
    Timetolive {
        /// Lease ID, in hex.
        id: String,
        /// Get keys attached to this lease.
        #[arg(long)]
        keys: bool,
    },
    /// Lists all active leases.
    List,
    /// Keeps leases alive (renew).
    KeepAlive {
        /// Lease ID, in hex.
        id: String,
        /// Resets the keep-alive time to its original value and exits immediately.
        #[arg(long)]
        once: bool,
    },
}

/// Runs a lease command.
pub async fn run(ctx: &Ctx, command: &LeaseCommand) -> Result<(), CtlError> {
    if ctx.format == Format::Table || ctx.format == Format::Fields {
        return Err(CtlError::UnsupportedFormat { format: ctx.format });
    }
    match command {
        LeaseCommand::Grant { ttl } => {
            let ttl: i64 = ttl.parse().map_err(|_| UsageError::Ttl(ttl.clone()))?;
            let conn = ctx.connect().await?;
            let resp = conn
                .call(
                    "LeaseGrant",
                    conn.lease().lease_grant(LeaseGrantRequest { ttl, id: 0 }),
                )
                .await?;
            if !resp.error.is_empty() {
                return Err(conn.rpc("LeaseGrant", tonic::Status::unknown(resp.error)));
            }
            emit(
                ctx,
                format!("lease {:016x} granted with TTL({}s)\n", resp.id, resp.ttl),
                json::header_obj(resp.header.as_ref())
                    .always("ID", resp.id.into())
                    .always("TTL", resp.ttl.into())
                    .always("Error", "".into())
                    .done(),
            );
        }
        LeaseCommand::Revoke { id } => {
            let id = parse_lease(id)?;
            let conn = ctx.connect().await?;
            let resp = conn
                .call(
                    "LeaseRevoke",
                    conn.lease().lease_revoke(LeaseRevokeRequest { id }),
                )
                .await?;
            emit(
                ctx,
                format!("lease {id:016x} revoked\n"),
                json::Obj::new()
                    .opt("header", json::header(resp.header.as_ref()))
                    .done(),
            );
        }
        LeaseCommand::Timetolive { id, keys } => {
            let id = parse_lease(id)?;
            let conn = ctx.connect().await?;
            let request = LeaseTimeToLiveRequest { id, keys: *keys };
            let resp = conn
                .call("LeaseTimeToLive", conn.lease().lease_time_to_live(request))
                .await?;
            emit(ctx, time_to_live_simple(&resp), time_to_live_json(&resp));
        }
        LeaseCommand::List => {
            let conn = ctx.connect().await?;
            let resp = conn
                .call(
                    "LeaseLeases",
                    conn.lease().lease_leases(LeaseLeasesRequest {}),
                )
                .await?;
            let mut text = format!("found {} leases\n", resp.leases.len());
            for lease in &resp.leases {
                text.push_str(&format!("{:016x}\n", lease.id));
            }
            let leases = resp
                .leases
                .iter()
                .map(|l| json::Obj::new().int("id", l.id).done())
                .collect();
            emit(
                ctx,
                text,
                json::header_obj(resp.header.as_ref())
                    .list("leases", leases)
                    .done(),
            );
        }
        LeaseCommand::KeepAlive { id, once } => {
            let id = parse_lease(id)?;
            let conn = ctx.connect().await?;
            keep_alive(ctx, &conn, id, *once).await?;
        }
    }
    Ok(())
}

fn emit(ctx: &Ctx, simple: String, json: Json) {
    match ctx.format {
        Format::Json => output::emit_json(&json),
        _ => output::emit(&simple),
    }
}

/// `lease timetolive` in the simple format.
pub fn time_to_live_simple(resp: &LeaseTimeToLiveResponse) -> String {
    if resp.ttl == -1 {
        return format!("lease {:016x} already expired\n", resp.id);
    }
    let mut text = format!(
        "lease {:016x} granted with TTL({}s), remaining({}s)",
        resp.id, resp.granted_ttl, resp.ttl
    );
    if !resp.keys.is_empty() {
        let keys: Vec<String> = resp
            .keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        text.push_str(&format!(", attached keys([{}])", keys.join(" ")));
    }
    text.push('\n');
    text
}

fn time_to_live_json(resp: &LeaseTimeToLiveResponse) -> Json {
    use base64::Engine as _;
    let keys = resp
        .keys
        .iter()
        .map(|k| Json::from(base64::engine::general_purpose::STANDARD.encode(k)))
        .collect();
    json::header_obj(resp.header.as_ref())
        .always("id", resp.id.into())
        .always("ttl", resp.ttl.into())
        .always("granted-ttl", resp.granted_ttl.into())
        .always("keys", Json::Arr(keys))
        .done()
}

/// `lease keep-alive`: renews every third of the TTL and prints each
/// renewal, until the lease is gone, Ctrl-C, or once with `--once`.
async fn keep_alive(ctx: &Ctx, conn: &Conn, id: i64, once: bool) -> Result<(), CtlError> {
    let (tx, rx) = mpsc::channel(1);
    // Sent before the call: etcd answers the call (headers) only with its
    // first keepalive response.
    if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
        return Ok(());
    }
    let mut responses = conn
        .wait(
            "LeaseKeepAlive",
            conn.lease().lease_keep_alive(ReceiverStream::new(rx)),
        )
        .await?;
    loop {
        let next = tokio::select! {
            next = responses.next() => next,
            _ = super::hold::until_signal() => return Ok(()),
        };
        let resp: LeaseKeepAliveResponse = match next {
            Some(Ok(resp)) => resp,
            Some(Err(status)) => return Err(conn.rpc("LeaseKeepAlive", status)),
            None => {
                return Err(CtlError::StreamEnded {
                    endpoint: conn.endpoint.clone(),
                    what: "LeaseKeepAlive",
                })
            }
        };
        if resp.ttl <= 0 {
            output::emit(&format!("lease {id:016x} expired or revoked.\n"));
            return Ok(());
        }
        emit(
            ctx,
            format!("lease {:016x} keepalived with TTL({})\n", resp.id, resp.ttl),
            json::header_obj(resp.header.as_ref())
                .always("ID", resp.id.into())
                .always("TTL", resp.ttl.into())
                .done(),
        );
        if once {
            return Ok(());
        }
        let every = std::time::Duration::from_millis((resp.ttl as u64 * 1000 / 3).max(500));
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = super::hold::until_signal() => return Ok(()),
        }
        if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_to_live_reads_like_etcdctl() {
        let resp = LeaseTimeToLiveResponse {
            header: None,
            id: 0x2040a1fd9d76071d,
            ttl: 99,
            granted_ttl: 100,
            keys: vec![b"k1".to_vec(), b"k2".to_vec()],
        };
        assert_eq!(
            time_to_live_simple(&resp),
            "lease 2040a1fd9d76071d granted with TTL(100s), remaining(99s), attached keys([k1 k2])\n"
        );
        let gone = LeaseTimeToLiveResponse {
            id: 0x2040a1fd9d76071d,
            ttl: -1,
            ..Default::default()
        };
        assert_eq!(
            time_to_live_simple(&gone),
            "lease 2040a1fd9d76071d already expired\n"
        );
    }
}
