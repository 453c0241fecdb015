//! Connections and calls: each `tonic` [`Channel`] is one HTTP/2
//! connection to one endpoint; [`call`] bounds a unary RPC by the run's
//! timeout on the client side only.
//!
//! The timeout is a local one on purpose: a `grpc-timeout` header would
//! also reach the server, and on streams (watch, keepalive) it would end
//! the stream itself when it fires.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::BenchError;

/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens one connection to `endpoint`.
pub async fn connect(endpoint: &str) -> Result<Channel, BenchError> {
    let target =
        Endpoint::from_shared(endpoint.to_owned()).map_err(|source| BenchError::Endpoint {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    target
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|source| BenchError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })
}

/// Opens `count` connections, connection i to endpoint i mod endpoints.
pub async fn open(endpoints: &[String], count: usize) -> Result<Vec<Channel>, BenchError> {
    let mut channels = Vec::with_capacity(count);
    for endpoint in endpoints.iter().cycle().take(count) {
        channels.push(connect(endpoint).await?);
    }
    Ok(channels)
}

/// Awaits a unary RPC for at most `timeout`, and takes the message out.
pub async fn call<T>(
    op: &'static str,
    timeout: Duration,
    rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, BenchError> {
    match tokio::time::timeout(timeout, rpc).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(source)) => Err(BenchError::Rpc { op, source }),
        Err(_) => Err(BenchError::Timeout { op, after: timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_url_is_refused_before_dialling() {
        let err = connect("http://bad host:1").await.unwrap_err();
        assert!(matches!(err, BenchError::Endpoint { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        // Bind then drop, so the port is (very likely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_err();
        assert!(matches!(err, BenchError::Connect { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn call_times_out_and_maps_statuses() {
        let slow = std::future::pending::<Result<tonic::Response<()>, tonic::Status>>();
        let err = call("put", Duration::from_millis(10), slow)
            .await
            .unwrap_err();
        assert!(matches!(err, BenchError::Timeout { op: "put", .. }));

        let refused =
            async { Err::<tonic::Response<()>, _>(tonic::Status::unavailable("no leader")) };
        let err = call("put", Duration::from_secs(1), refused)
            .await
            .unwrap_err();
        let expected = format!("put: {}", tonic::Status::unavailable("no leader"));
        assert_eq!(err.to_string(), expected);

        let ok = async { Ok(tonic::Response::new(7)) };
        assert_eq!(call("put", Duration::from_secs(1), ok).await.unwrap(), 7);
    }
}
