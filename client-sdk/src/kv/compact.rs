//! Compaction: dropping history older than a revision.

use witan_proto::etcdserverpb::CompactionRequest;

use super::key_value::Header;
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

impl Client {
    /// Drops the history before `revision`: reads and watches at older
    /// revisions then fail with [`Error::Compacted`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::Error;
    ///
    /// let old = client.put("k", "v1").await?.header.revision;
    /// let new = client.put("k", "v2").await?.header.revision;
    /// client.compact(new).await?;
    /// let err = client.get("k").revision(old).await.unwrap_err();
    /// assert!(matches!(err, Error::Compacted { .. }));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn compact(&self, revision: i64) -> Result<Header, Error> {
        let request = CompactionRequest {
            revision,
            physical: false,
        };
        let response = self
            .execute(Idempotence::Write, |channel| async move {
                Ok(grpc::kv(channel).compact(request).await?.into_inner())
            })
            .await?;
        Ok(Header::from(response.header))
    }
}
