//! `endpoint status|health|hashkv [--cluster]`: one call per endpoint
//! (every member's client URLs with `--cluster`), each endpoint's failure
//! reported and the others still shown, as etcdctl does.

use std::time::{Duration, Instant};

use crate::output::json::Json;
use witan_proto::etcdserverpb::{
    HashKvRequest, HashKvResponse, MemberListRequest, RangeRequest, StatusRequest, StatusResponse,
};

use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output::{self, human, json, table::Table};

/// The endpoint commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum EndpointCommand {
    /// Prints out the status of endpoints.
    Status {
        /// Use all endpoints from the cluster member list.
        #[arg(long)]
        cluster: bool,
    },
    /// Checks the healthiness of endpoints.
    Health {
        /// Use all endpoints from the cluster member list.
        #[arg(long)]
        cluster: bool,
    },
    /// Prints the KV history hash for each endpoint.
    Hashkv {
        /// Use all endpoints from the cluster member list.
        #[arg(long)]
        cluster: bool,
        /// Maximum revision to hash (default: the latest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
}

/// Runs an endpoint command.
pub async fn run(ctx: &Ctx, command: &EndpointCommand) -> Result<(), CtlError> {
    match command {
        EndpointCommand::Status { cluster } => status(ctx, &endpoints(ctx, *cluster).await?).await,
        EndpointCommand::Health { cluster } => health(ctx, &endpoints(ctx, *cluster).await?).await,
        EndpointCommand::Hashkv { cluster, rev } => {
            hash_kv(ctx, &endpoints(ctx, *cluster).await?, *rev).await
        }
    }
}

/// The endpoints a command covers: those given, or with `--cluster` every
/// client URL of every member.
pub async fn endpoints(ctx: &Ctx, cluster: bool) -> Result<Vec<String>, CtlError> {
    if !cluster {
        return Ok(ctx.endpoints.clone());
    }
    let conn = ctx.connect().await?;
    let resp = conn
        .call(
            "MemberList",
            conn.cluster().member_list(MemberListRequest {
                linearizable: false,
            }),
        )
        .await?;
    let mut urls: Vec<String> = resp
        .members
        .iter()
        .flat_map(|m| m.client_ur_ls.iter().cloned())
        .collect();
    urls.dedup();
    Ok(urls)
}

async fn status(ctx: &Ctx, endpoints: &[String]) -> Result<(), CtlError> {
    let mut found: Vec<(String, StatusResponse)> = Vec::new();
    let mut failed = 0;
    for endpoint in endpoints {
        let answer = async {
            let conn = ctx.connect_to(endpoint).await?;
            conn.call("Status", conn.maintenance().status(StatusRequest {}))
                .await
        };
        match answer.await {
            Ok(resp) => found.push((endpoint.clone(), resp)),
            Err(error) => {
                failed += 1;
                eprintln!("Failed to get the status of endpoint {endpoint} ({error})");
            }
        }
    }
    match ctx.format {
        Format::Table => output::emit(&status_table(&found)),
        Format::Json => output::emit_json(&per_endpoint(&found, "Status", json::status)),
        Format::Simple | Format::Fields => output::emit(
            &found
                .iter()
                .map(|(ep, resp)| status_row(ep, resp).join(", ") + "\n")
                .collect::<String>(),
        ),
    }
    done(failed, endpoints.len())
}

/// etcdctl's JSON for a per-endpoint answer: `[{"Endpoint": ep, key: answer}]`.
fn per_endpoint<R>(found: &[(String, R)], key: &str, answer: impl Fn(&R) -> Json) -> Json {
    Json::Arr(
        found
            .iter()
            .map(|(ep, resp)| {
                json::Obj::new()
                    .always("Endpoint", ep.as_str().into())
                    .always(key, answer(resp))
                    .done()
            })
            .collect(),
    )
}

fn done(failed: usize, total: usize) -> Result<(), CtlError> {
    if failed == 0 {
        Ok(())
    } else {
        Err(CtlError::SomeEndpointsFailed { failed, total })
    }
}

/// One endpoint's status, cell by cell, as etcdctl lists it.
fn status_row(endpoint: &str, resp: &StatusResponse) -> Vec<String> {
    let member = resp.header.as_ref().map_or(0, |h| h.member_id);
    vec![
        endpoint.to_string(),
        format!("{member:x}"),
        resp.version.clone(),
        human::bytes(u64::try_from(resp.db_size).unwrap_or(0)),
        (member != 0 && resp.leader == member).to_string(),
        resp.is_learner.to_string(),
        resp.raft_term.to_string(),
        resp.raft_index.to_string(),
        resp.raft_applied_index.to_string(),
        resp.errors.join(", "),
    ]
}

/// `endpoint status -w table`.
pub fn status_table(found: &[(String, StatusResponse)]) -> String {
    let mut table = Table::new(&[
        "ENDPOINT",
        "ID",
        "VERSION",
        "DB SIZE",
        "IS LEADER",
        "IS LEARNER",
        "RAFT TERM",
        "RAFT INDEX",
        "RAFT APPLIED INDEX",
        "ERRORS",
    ]);
    for (endpoint, resp) in found {
        table.row(status_row(endpoint, resp));
    }
    table.render()
}

/// One endpoint's health check.
struct Health {
    endpoint: String,
    healthy: bool,
    took: Duration,
    error: String,
}

async fn health(ctx: &Ctx, endpoints: &[String]) -> Result<(), CtlError> {
    let mut checks = Vec::new();
    for endpoint in endpoints {
        let start = Instant::now();
        let answer = async {
            let conn = ctx.connect_to(endpoint).await?;
            // A linearizable read commits through the leader: the member
            // is part of a working cluster. etcd's own check reads the
            // same key; "permission denied" also proves the path works.
            let probe = RangeRequest {
                key: b"health".to_vec(),
                ..Default::default()
            };
            conn.call("Range", conn.kv().range(probe)).await
        };
        let result = answer.await;
        let took = start.elapsed();
        let (healthy, error) = match result {
            Ok(_) => (true, String::new()),
            Err(CtlError::Rpc { status, .. }) if status.code() == tonic::Code::PermissionDenied => {
                (true, String::new())
            }
            Err(error) => (false, error.to_string()),
        };
        checks.push(Health {
            endpoint: endpoint.clone(),
            healthy,
            took,
            error,
        });
    }
    match ctx.format {
        Format::Table => {
            let mut table = Table::new(&["ENDPOINT", "HEALTH", "TOOK", "ERROR"]);
            for c in &checks {
                table.row(vec![
                    c.endpoint.clone(),
                    c.healthy.to_string(),
                    human::go_duration(c.took),
                    c.error.clone(),
                ]);
            }
            output::emit(&table.render());
        }
        Format::Json => output::emit_json(&Json::Arr(
            checks
                .iter()
                .map(|c| {
                    json::Obj::new()
                        .always("endpoint", c.endpoint.as_str().into())
                        .always("health", c.healthy.into())
                        .always("took", human::go_duration(c.took).into())
                        .text("error", &c.error)
                        .done()
                })
                .collect(),
        )),
        // etcdctl writes these lines to stderr; scripts rely on it.
        Format::Simple | Format::Fields => {
            for c in &checks {
                if c.healthy {
                    eprintln!(
                        "{} is healthy: successfully committed proposal: took = {}",
                        c.endpoint,
                        human::go_duration(c.took)
                    );
                } else {
                    eprintln!(
                        "{} is unhealthy: failed to commit proposal: {}",
                        c.endpoint, c.error
                    );
                }
            }
        }
    }
    if checks.iter().all(|c| c.healthy) {
        Ok(())
    } else {
        Err(CtlError::Unhealthy)
    }
}

async fn hash_kv(ctx: &Ctx, endpoints: &[String], revision: i64) -> Result<(), CtlError> {
    let mut found: Vec<(String, HashKvResponse)> = Vec::new();
    let mut failed = 0;
    for endpoint in endpoints {
        let answer = async {
            let conn = ctx.connect_to(endpoint).await?;
            conn.call(
                "HashKV",
                conn.maintenance().hash_kv(HashKvRequest { revision }),
            )
            .await
        };
        match answer.await {
            Ok(resp) => found.push((endpoint.clone(), resp)),
            Err(error) => {
                failed += 1;
                eprintln!("Failed to get the hash of endpoint {endpoint} ({error})");
            }
        }
    }
    match ctx.format {
        Format::Table => {
            let mut table = Table::new(&["ENDPOINT", "HASH"]);
            for (ep, resp) in &found {
                table.row(vec![ep.clone(), resp.hash.to_string()]);
            }
            output::emit(&table.render());
        }
        Format::Json => output::emit_json(&per_endpoint(&found, "HashKV", json::hash_kv)),
        Format::Simple | Format::Fields => output::emit(
            &found
                .iter()
                .map(|(ep, resp)| format!("{ep}, {}\n", resp.hash))
                .collect::<String>(),
        ),
    }
    done(failed, endpoints.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use witan_proto::etcdserverpb::ResponseHeader;

    #[test]
    fn status_reads_like_etcdctl() {
        let resp = StatusResponse {
            header: Some(ResponseHeader {
                member_id: 0x2e1259d415f2a040,
                ..Default::default()
            }),
            version: "3.4.23".into(),
            db_size: 24576,
            leader: 0x2e1259d415f2a040,
            raft_index: 55,
            raft_term: 2,
            raft_applied_index: 55,
            ..Default::default()
        };
        assert_eq!(
            status_row("127.0.0.1:23790", &resp).join(", "),
            "127.0.0.1:23790, 2e1259d415f2a040, 3.4.23, 25 kB, true, false, 2, 55, 55, "
        );
        let expected = "\
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
| 127.0.0.1:23790 | 2e1259d415f2a040 |  3.4.23 |   25 kB |      true |      false |         2 |         55 |                 55 |        |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
";
        assert_eq!(status_table(&[("127.0.0.1:23790".into(), resp)]), expected);
    }
}
