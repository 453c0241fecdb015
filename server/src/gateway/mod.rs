//! The HTTP/1.1 side of the client port: etcd's grpc-gateway JSON API under
//! `/v3/` (and `/v3beta/`, `/v3alpha/`), `/health`, `/livez`, `/readyz`,
//! `/version` and `/metrics`, served on the same listener as gRPC.
//!
//! A JSON call is decoded into the gRPC request message, sent to the
//! member's own gRPC services *in process* (a tonic client whose transport
//! is the client router itself, no socket), and the answer encoded back.
//! So HTTP and gRPC share every rule (validation, size limits, errors,
//! metrics) and streaming calls (watch, keepalive, snapshot, observe) work
//! unchanged; unlike etcd's gateway, which dials the member's own client
//! URL, nothing depends on a reachable address or on TLS settings.
//!
//! This module knows HTTP and JSON; it must not reach below `api`'s
//! services (no raft, storage or mvcc calls) except for health checks.

mod codec;
mod credentials;
mod error;
#[cfg(test)]
mod fuzz_tests;
mod health;
mod routes;
mod rpc;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;

pub use error::{http_status, ErrorBody, GatewayError};
pub use health::HealthSource;
pub use routes::fallback;

use crate::metrics::{GrpcMetered, MemberMetrics};
use credentials::{Credentialed, Credentials};

/// The member's gRPC services as an in-process transport.
pub type Loopback = Credentialed<GrpcMetered<tonic::service::Routes>>;

/// Headroom over `--max-request-bytes` for JSON's base64 and field names.
const JSON_OVERHEAD_BYTES: usize = 1024 * 1024;

/// What the gateway serves from.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
    /// The HTTP caller's credentials (set per request by the routes).
    credentials: Credentials,
}

struct Inner {
    grpc: GrpcMetered<tonic::service::Routes>,
    health: HealthSource,
    metrics: MemberMetrics,
    max_body_bytes: usize,
}

impl Gateway {
    /// A gateway calling `grpc`; request bodies are limited to
    /// `max_request_bytes` plus room for the JSON encoding's growth.
    pub fn new(
        grpc: GrpcMetered<tonic::service::Routes>,
        health: HealthSource,
        metrics: MemberMetrics,
        max_request_bytes: usize,
    ) -> Self {
        Gateway {
            inner: Arc::new(Inner {
                grpc,
                health,
                metrics,
                max_body_bytes: max_request_bytes
                    .saturating_mul(4)
                    .div_ceil(3)
                    .saturating_add(JSON_OVERHEAD_BYTES),
            }),
            credentials: Credentials::default(),
        }
    }

    /// The HTTP routes, to merge with the gRPC services.
    pub fn router(self) -> Router {
        routes::router(self)
    }

    fn grpc(&self) -> Loopback {
        Credentialed::new(self.inner.grpc.clone(), self.credentials.clone())
    }

    /// This gateway, calling on behalf of the sender of `parts`.
    fn on_behalf_of(&self, parts: &http::request::Parts) -> Gateway {
        Gateway {
            inner: Arc::clone(&self.inner),
            credentials: Credentials::of(parts),
        }
    }
}

/// How long `/health` waits for the read barrier before saying unhealthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
