//! Leases as clients hold them: [`KeepAlive`], one LeaseKeepAlive stream
//! that refreshes a lease a request at a time, and [`Session`], a lease
//! kept alive in the background while a contender locks or campaigns
//! with it (what etcd's `concurrency.Session` does).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
};

use crate::cli::Defaults;
use crate::conn;
use crate::error::BenchError;
use crate::pace::Stop;

/// Defaults of the lock and election workloads: 10 s of cycles, no rate
/// limit, 10 s per request (a Lock or Campaign call includes the wait).
pub const DEFAULTS: Defaults = Defaults {
    stop: Stop::After(Duration::from_secs(10)),
    rate: None,
    timeout: Duration::from_secs(10),
};

/// One LeaseKeepAlive stream, opened on first use and reopened after a
/// failure.
pub struct KeepAlive {
    client: LeaseClient<Channel>,
    open: Option<(
        mpsc::Sender<LeaseKeepAliveRequest>,
        Streaming<LeaseKeepAliveResponse>,
    )>,
}

impl KeepAlive {
    /// A stream over `channel` (not opened yet).
    pub fn new(channel: Channel) -> KeepAlive {
        KeepAlive {
            client: LeaseClient::new(channel),
            open: None,
        }
    }

    /// Refreshes lease `id` and returns the TTL the server reports (0:
    /// the lease is gone).
    pub async fn refresh(&mut self, id: i64, timeout: Duration) -> Result<i64, BenchError> {
        let result = tokio::time::timeout(timeout, self.exchange(id)).await;
        let result = result.unwrap_or(Err(BenchError::Timeout {
            op: "keepalive",
            after: timeout,
        }));
        if result.is_err() {
            // A late answer would be taken for the next request's: start
            // over on a fresh stream.
            self.open = None;
        }
        result
    }

    async fn exchange(&mut self, id: i64) -> Result<i64, BenchError> {
        let closed = || BenchError::StreamClosed { op: "keepalive" };
        let request = LeaseKeepAliveRequest { id };
        if let Some((requests, _)) = &self.open {
            requests.send(request).await.map_err(|_| closed())?;
        } else {
            // The first request goes in before the call: a server may send
            // its response headers only with its first message.
            let (tx, rx) = mpsc::channel(1);
            tx.send(request).await.map_err(|_| closed())?;
            let responses = self
                .client
                .lease_keep_alive(ReceiverStream::new(rx))
                .await
                .map_err(|source| BenchError::Rpc {
                    op: "keepalive",
                    source,
                })?
                .into_inner();
            self.open = Some((tx, responses));
        }
        let Some((_, responses)) = &mut self.open else {
            return Err(closed());
        };
        loop {
            let response = responses
                .message()
                .await
                .map_err(|source| BenchError::Rpc {
                    op: "keepalive",
                    source,
                })?
                .ok_or_else(closed)?;
            if response.id == id {
                return Ok(response.ttl);
            }
        }
    }
}

/// A lease kept alive in the background until closed.
pub struct Session {
    lease: i64,
    client: LeaseClient<Channel>,
    timeout: Duration,
    keeper: JoinHandle<()>,
}

impl Session {
    /// Grants a lease of `ttl` seconds over `channel` and keeps it alive
    /// every third of its TTL.
    pub async fn open(
        channel: Channel,
        ttl: i64,
        timeout: Duration,
    ) -> Result<Session, BenchError> {
        let mut client = LeaseClient::new(channel.clone());
        let grant = LeaseGrantRequest { ttl, id: 0 };
        let lease = conn::call("lease grant", timeout, client.lease_grant(grant))
            .await?
            .id;
        let every = Duration::from_secs(ttl.max(1) as u64) / 3;
        let keeper = tokio::spawn(async move {
            let mut keepalive = KeepAlive::new(channel);
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                interval.tick().await;
                match keepalive.refresh(lease, timeout).await {
                    Ok(0) => {
                        tracing::warn!(lease, "the session's lease is gone");
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(lease, %error, "session keepalive failed"),
                }
            }
        });
        Ok(Session {
            lease,
            client,
            timeout,
            keeper,
        })
    }

    /// The lease's id.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Stops the keepalives and revokes the lease, which releases
    /// whatever the contender still holds.
    pub async fn close(mut self) {
        self.keeper.abort();
        let revoke = LeaseRevokeRequest { id: self.lease };
        if let Err(error) = conn::call(
            "lease revoke",
            self.timeout,
            self.client.lease_revoke(revoke),
        )
        .await
        {
            tracing::warn!(lease = self.lease, %error, "revoking a session's lease failed");
        }
    }
}
