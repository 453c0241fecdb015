//! Sending one [`Op`] to one server and turning its answer into an
//! [`Outcome`].

use etcd_client::{
    Client, CompactionOptions, ConnectOptions, Error, LeaseGrantOptions, LeaseTimeToLiveOptions,
};
use std::time::Duration;

use crate::outcome::Outcome;
use crate::request::Op;

/// Per-request deadline: a server that hangs fails the run instead of
/// hanging CI.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One server under test.
pub struct Server {
    /// What the reports call it ("reference", "candidate").
    pub role: &'static str,
    pub endpoint: String,
    client: Client,
    /// Watch streams get their own connection so that the requests' timing
    /// does not depend on watch traffic: witan's listeners leave Nagle's
    /// algorithm on (tonic ignores `tcp_nodelay` with
    /// `serve_with_incoming`), and on a connection that also carries a busy
    /// watch stream each small response then waits for a delayed ACK
    /// (about 3x slower runs).
    watch_client: Client,
}

impl Server {
    /// Connects to `endpoint`.
    pub async fn connect(role: &'static str, endpoint: &str) -> anyhow::Result<Server> {
        let opts = ConnectOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT);
        let client = Client::connect([endpoint], Some(opts.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("{role}: cannot connect to {endpoint}: {e}"))?;
        let watch_client = Client::connect([endpoint], Some(opts))
            .await
            .map_err(|e| anyhow::anyhow!("{role}: cannot connect to {endpoint}: {e}"))?;
        Ok(Server {
            role,
            endpoint: endpoint.to_string(),
            client,
            watch_client,
        })
    }

    /// A client on its own connection, for the watch streams.
    pub fn watch_client(&self) -> &Client {
        &self.watch_client
    }

    /// Sends `op`; a gRPC status is an [`Outcome::Error`], any other failure
    /// (transport, timeout) is an error of the run itself.
    pub async fn run(&self, op: &Op) -> anyhow::Result<Outcome> {
        let answer = self.send(op).await;
        answer.or_else(Outcome::from_error).map_err(|e| {
            anyhow::anyhow!(
                "{} ({}) failed without a gRPC status on {}: {e}",
                self.role,
                self.endpoint,
                op.summary()
            )
        })
    }

    async fn send(&self, op: &Op) -> Result<Outcome, Error> {
        let mut kv = self.client.kv_client();
        Ok(match op {
            Op::Put(p) => {
                let (k, v, o) = p.to_client();
                Outcome::from(&kv.put(k, v, Some(o)).await?)
            }
            Op::Range(r) => {
                let (k, o) = r.to_client();
                Outcome::from(&kv.get(k, Some(o)).await?)
            }
            Op::Delete(d) => {
                let (k, o) = d.to_client();
                Outcome::from(&kv.delete(k, Some(o)).await?)
            }
            Op::Txn(t) => Outcome::from(&kv.txn(t.to_client()).await?),
            Op::Compact { revision, physical } => {
                let mut o = CompactionOptions::new();
                if *physical {
                    o = o.with_physical();
                }
                let r = kv.compact(*revision, Some(o)).await?;
                Outcome::Compact {
                    revision: r.header().map(|h| h.revision()),
                }
            }
            Op::LeaseGrant { id, ttl } => {
                let mut lease = self.client.lease_client();
                let o = LeaseGrantOptions::new().with_id(*id);
                Outcome::from(&lease.grant(*ttl, Some(o)).await?)
            }
            Op::LeaseRevoke { id } => {
                let mut lease = self.client.lease_client();
                Outcome::from(&lease.revoke(*id).await?)
            }
            Op::LeaseTimeToLive { id, keys } => {
                let mut lease = self.client.lease_client();
                let mut o = LeaseTimeToLiveOptions::new();
                if *keys {
                    o = o.with_keys();
                }
                Outcome::from(&lease.time_to_live(*id, Some(o)).await?)
            }
            Op::LeaseLeases => {
                let mut lease = self.client.lease_client();
                Outcome::from(&lease.leases().await?)
            }
        })
    }
}
