//! `/health` (etcd's: `{"health":"true","reason":""}`, 503 when this
//! member cannot serve a linearizable read: no leader, cut off from the
//! quorum, or an alarm raised), `/livez`, `/readyz` (etcd 3.5's plain-text probes) and
//! `/version`.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::json_response;
use super::{Gateway, HEALTH_TIMEOUT};
use witan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use witan_proto::etcdserverpb::{AlarmRequest, AlarmType};

use crate::api::{ApiCore, API_VERSION};
use crate::raft::leader::Metrics;

/// What the health checks look at.
#[derive(Clone)]
pub struct HealthSource {
    /// Raft's view: is there a leader.
    pub raft: Metrics,
    /// The read barrier, to prove the leader answers.
    pub core: ApiCore,
}

/// `/health`'s answer.
#[derive(Debug, Serialize)]
struct Health {
    health: &'static str,
    reason: String,
}

/// `/health`'s options (etcd 3.5).
#[derive(Debug, Default, Deserialize)]
pub struct HealthQuery {
    /// Skip the read barrier: only ask whether a leader is known.
    #[serde(default)]
    serializable: bool,
}

impl Gateway {
    /// `Err(reason)` when this member cannot serve; the reason uses etcd's
    /// words where etcd has them.
    async fn check(&self, serializable: bool) -> Result<(), String> {
        let health = &self.inner.health;
        if health.raft.borrow().current_leader.is_none() {
            return Err("RAFT NO LEADER".into());
        }
        self.check_alarms().await?;
        if serializable {
            return Ok(());
        }
        match tokio::time::timeout(HEALTH_TIMEOUT, health.core.readable_state(false)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(format!("RANGE ERROR: {err}")),
            Err(_) => Err("RANGE ERROR: timed out".into()),
        }
    }

    /// An active alarm (NOSPACE, CORRUPT) makes a member unhealthy, as in
    /// etcd. Asked of the Maintenance service like any client would; a
    /// member whose service cannot answer (not serving alarms) has none.
    async fn check_alarms(&self) -> Result<(), String> {
        let mut client = MaintenanceClient::new(self.grpc());
        let request = AlarmRequest::default();
        let alarms = match tokio::time::timeout(HEALTH_TIMEOUT, client.alarm(request)).await {
            Ok(Ok(answer)) => answer.into_inner().alarms,
            Ok(Err(status)) => {
                tracing::trace!(%status, "alarms not known for the health check");
                return Ok(());
            }
            Err(_) => return Err("ALARM ERROR: timed out".into()),
        };
        match alarms.iter().find(|a| a.alarm != AlarmType::None as i32) {
            None => Ok(()),
            Some(active) => {
                let name = AlarmType::try_from(active.alarm)
                    .map_or("UNKNOWN", |alarm| alarm.as_str_name());
                Err(format!("ALARM {name}"))
            }
        }
    }
}

/// `GET /health`.
pub async fn health(State(gw): State<Gateway>, Query(query): Query<HealthQuery>) -> Response {
    let serializable = query.serializable;
    match gw.check(serializable).await {
        Ok(()) => json_response(
            StatusCode::OK,
            &Health {
                health: "true",
                reason: String::new(),
            },
        ),
        Err(reason) => {
            tracing::debug!(%reason, "health check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &Health {
                    health: "false",
                    reason,
                },
            )
        }
    }
}

/// `GET /livez`: the process serves HTTP.
pub async fn livez() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: a leader is known (so writes and reads can be served).
pub async fn readyz(State(gw): State<Gateway>) -> Response {
    match gw.check(true).await {
        Ok(()) => "ok\n".into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("[-]leader failed: {reason}\nreadyz check failed\n"),
        )
            .into_response(),
    }
}

/// `/version`'s answer.
#[derive(Debug, Serialize)]
struct Version {
    etcdserver: &'static str,
    etcdcluster: &'static str,
    witan: &'static str,
}

/// `GET /version`: the etcd API version witan speaks, and its own.
pub async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &Version {
            etcdserver: API_VERSION,
            etcdcluster: API_VERSION,
            witan: env!("CARGO_PKG_VERSION"),
        },
    )
}
