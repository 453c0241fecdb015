//! Writes of one key: the [`Put`] builder and its [`PutResponse`].

use std::future::IntoFuture;

use futures::future::BoxFuture;
use witan_proto::etcdserverpb::{PutRequest, PutResponse as RawPutResponse};

use super::Detached;
use super::key_value::{Header, KeyValue};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

/// A write of one key.
///
/// Made by [`Client::put`] (await it to run it) or [`Put::new`] (for a
/// [`Txn`](crate::Txn)).
#[derive(Debug, Clone)]
#[must_use = "a Put does nothing until awaited (or put in a Txn)"]
pub struct Put<C = Detached> {
    pub(crate) target: C,
    pub(crate) request: PutRequest,
}

impl Put<Detached> {
    /// A write of `value` at `key`, for a transaction.
    ///
    /// ```
    /// use witan_client::{Op, Put};
    /// let op = Op::from(Put::new("/config/mode", "on").prev_kv());
    /// # let _ = op;
    /// ```
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Put {
            target: Detached,
            request: PutRequest {
                key: key.into(),
                value: value.into(),
                ..PutRequest::default()
            },
        }
    }
}

impl<C> Put<C> {
    /// Attaches the key to lease `id`: it is deleted when the lease ends.
    pub fn lease(mut self, id: i64) -> Self {
        self.request.lease = id;
        self
    }

    /// Returns the key-value as it was before the write.
    pub fn prev_kv(mut self) -> Self {
        self.request.prev_kv = true;
        self
    }

    /// Keeps the current value (only the lease changes); fails with
    /// [`Error::KeyNotFound`] if the key does not exist.
    pub fn ignore_value(mut self) -> Self {
        self.request.ignore_value = true;
        self
    }

    /// Keeps the current lease (only the value changes); fails with
    /// [`Error::KeyNotFound`] if the key does not exist.
    pub fn ignore_lease(mut self) -> Self {
        self.request.ignore_lease = true;
        self
    }

    /// The key written.
    pub fn key(&self) -> &[u8] {
        &self.request.key
    }
}

impl IntoFuture for Put<Client> {
    type Output = Result<PutResponse, Error>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let response = self.target.put_raw(self.request).await?;
            Ok(PutResponse::from(response))
        })
    }
}

impl Client {
    /// Writes `value` at `key`.
    ///
    /// A write is repeated on another member only if it certainly was not
    /// applied; otherwise it fails with [`Error::OutcomeUnknown`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// let first = client.put("/config/mode", "blue").await?;
    /// let second = client.put("/config/mode", "green").prev_kv().await?;
    /// let before = second.prev_kv.expect("the key existed");
    /// assert_eq!(before.value_str()?, "blue");
    /// assert_eq!(before.mod_revision, first.header.revision);
    ///
    /// let lease = client.lease_grant(30).await?;
    /// client.put("/workers/w1", "alive").lease(lease.id).await?;
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn put(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Put<Client> {
        Put {
            target: self.clone(),
            request: Put::new(key, value).request,
        }
    }

    /// An etcd Put, repeated only if it certainly was not applied.
    pub(crate) async fn put_raw(&self, request: PutRequest) -> Result<RawPutResponse, Error> {
        self.execute(Idempotence::Write, |channel| {
            let request = request.clone();
            async move { Ok(grpc::kv(channel).put(request).await?.into_inner()) }
        })
        .await
    }
}

/// What a [`Put`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PutResponse {
    /// `header.revision` is the revision the write created.
    pub header: Header,
    /// The key-value before the write, when asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

impl From<RawPutResponse> for PutResponse {
    fn from(response: RawPutResponse) -> Self {
        PutResponse {
            header: Header::from(response.header),
            prev_kv: response.prev_kv.map(KeyValue::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_land_in_the_put_request() {
        let request = Put::new("k", "v")
            .lease(42)
            .prev_kv()
            .ignore_value()
            .ignore_lease()
            .request;
        assert_eq!(
            request,
            PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                lease: 42,
                prev_kv: true,
                ignore_value: true,
                ignore_lease: true,
            }
        );
    }
}
