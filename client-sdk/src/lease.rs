//! Lease calls: grant, revoke, a single keepalive, time-to-live and the
//! list of leases. [`Session`](crate::Session) keeps a lease alive in the
//! background.

use tonic::{Code, Status};
use witan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
};

use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The lease id, to attach keys with [`Put::lease`](crate::Put::lease).
    pub id: i64,
    /// The TTL granted, in seconds (a member raises TTLs below its
    /// minimum).
    pub ttl: i64,
}

/// A lease's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease id.
    pub id: i64,
    /// Seconds left.
    pub ttl: i64,
    /// The TTL it was granted, in seconds.
    pub granted_ttl: i64,
    /// Its keys, when asked for.
    pub keys: Vec<Vec<u8>>,
}

impl Client {
    /// Grants a lease of `ttl` seconds, with an id the cluster picks.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// let lease = client.lease_grant(60).await?;
    /// client.put("/workers/w1", "alive").lease(lease.id).await?;
    ///
    /// let info = client.lease_time_to_live(lease.id, true).await?;
    /// assert_eq!(info.keys, vec![b"/workers/w1".to_vec()]);
    /// assert!(info.ttl <= 60);
    /// assert!(client.leases().await?.contains(&lease.id));
    ///
    /// client.lease_keep_alive_once(lease.id).await?;
    /// client.lease_revoke(lease.id).await?;
    /// assert!(client.get("/workers/w1").await?.kvs.is_empty());
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn lease_grant(&self, ttl: i64) -> Result<LeaseGrant, Error> {
        self.lease_grant_id(ttl, 0).await
    }

    /// Grants a lease of `ttl` seconds with id `id` (0: the cluster picks
    /// one); fails with [`Error::LeaseExists`] if the id is taken.
    pub async fn lease_grant_id(&self, ttl: i64, id: i64) -> Result<LeaseGrant, Error> {
        let request = LeaseGrantRequest { ttl, id };
        let response = self
            .execute(Idempotence::Write, |channel| async move {
                Ok(grpc::lease(channel)
                    .lease_grant(request)
                    .await?
                    .into_inner())
            })
            .await?;
        if !response.error.is_empty() {
            return Err(Error::Other {
                code: Code::Unknown,
                message: response.error,
            });
        }
        Ok(LeaseGrant {
            id: response.id,
            ttl: response.ttl,
        })
    }

    /// Revokes lease `id`, deleting its keys (see [`Client::lease_grant`]).
    pub async fn lease_revoke(&self, id: i64) -> Result<(), Error> {
        let request = LeaseRevokeRequest { id };
        self.execute(Idempotence::Write, |channel| async move {
            Ok(grpc::lease(channel)
                .lease_revoke(request)
                .await?
                .into_inner())
        })
        .await?;
        Ok(())
    }

    /// Renews lease `id` once; returns its new TTL in seconds (see
    /// [`Client::lease_grant`]).
    pub async fn lease_keep_alive_once(&self, id: i64) -> Result<i64, Error> {
        let ttl = self
            .execute(Idempotence::Safe, |channel| async move {
                let requests = futures::stream::iter([LeaseKeepAliveRequest { id }]);
                let mut answers = grpc::lease(channel)
                    .lease_keep_alive(requests)
                    .await?
                    .into_inner();
                match answers.message().await? {
                    Some(answer) => Ok(answer.ttl),
                    None => Err(Status::unavailable(
                        "keepalive stream ended without an answer",
                    )),
                }
            })
            .await?;
        // etcd answers a keepalive of an unknown lease with TTL 0.
        if ttl <= 0 {
            return Err(Error::LeaseNotFound);
        }
        Ok(ttl)
    }

    /// The state of lease `id`, with its keys if `keys` (see
    /// [`Client::lease_grant`]).
    pub async fn lease_time_to_live(&self, id: i64, keys: bool) -> Result<LeaseInfo, Error> {
        let request = LeaseTimeToLiveRequest { id, keys };
        let response = self
            .execute(Idempotence::Safe, |channel| async move {
                Ok(grpc::lease(channel)
                    .lease_time_to_live(request)
                    .await?
                    .into_inner())
            })
            .await?;
        // etcd answers an unknown (or expired) lease with TTL -1.
        if response.ttl < 0 {
            return Err(Error::LeaseNotFound);
        }
        Ok(LeaseInfo {
            id: response.id,
            ttl: response.ttl,
            granted_ttl: response.granted_ttl,
            keys: response.keys,
        })
    }

    /// The ids of every lease (see [`Client::lease_grant`]).
    pub async fn leases(&self) -> Result<Vec<i64>, Error> {
        let response = self
            .execute(Idempotence::Safe, |channel| async move {
                Ok(grpc::lease(channel)
                    .lease_leases(LeaseLeasesRequest {})
                    .await?
                    .into_inner())
            })
            .await?;
        Ok(response.leases.into_iter().map(|l| l.id).collect())
    }
}
