//! Deletes: the [`Delete`] builder (one key, a prefix, a range) and its
//! [`DeleteResponse`].

use std::future::IntoFuture;

use futures::future::BoxFuture;
use witan_proto::etcdserverpb::{DeleteRangeRequest, DeleteRangeResponse};

use super::Detached;
use super::key_value::{Header, KeyValue, convert_all, prefix_end};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

/// A delete of one key or a range of keys.
///
/// Made by [`Client::delete`] (await it to run it) or [`Delete::new`]
/// (for a [`Txn`](crate::Txn)).
#[derive(Debug, Clone)]
#[must_use = "a Delete does nothing until awaited (or put in a Txn)"]
pub struct Delete<C = Detached> {
    pub(crate) target: C,
    pub(crate) request: DeleteRangeRequest,
}

impl Delete<Detached> {
    /// A delete of `key`, for a transaction.
    ///
    /// ```
    /// use witan_client::{Delete, Op};
    /// let op = Op::from(Delete::new("/tmp/").prefix());
    /// # let _ = op;
    /// ```
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Delete {
            target: Detached,
            request: DeleteRangeRequest {
                key: key.into(),
                ..DeleteRangeRequest::default()
            },
        }
    }
}

impl<C> Delete<C> {
    /// Every key starting with the key given.
    pub fn prefix(mut self) -> Self {
        self.request.range_end = prefix_end(&self.request.key);
        self
    }

    /// Keys from the key given up to `end` (exclusive).
    pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.request.range_end = end.into();
        self
    }

    /// Every key from the key given on.
    pub fn from_key(mut self) -> Self {
        self.request.range_end = vec![0];
        self
    }

    /// Returns the deleted key-values.
    pub fn prev_kv(mut self) -> Self {
        self.request.prev_kv = true;
        self
    }
}

impl IntoFuture for Delete<Client> {
    type Output = Result<DeleteResponse, Error>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let response = self.target.delete_raw(self.request).await?;
            Ok(DeleteResponse::from(response))
        })
    }
}

impl Client {
    /// Deletes `key` (or, with the builder's options, a prefix or range).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// client.put("/tmp/a", "1").await?;
    /// client.put("/tmp/b", "2").await?;
    /// let deleted = client.delete("/tmp/").prefix().prev_kv().await?;
    /// assert_eq!(deleted.deleted, 2);
    /// assert_eq!(deleted.prev_kvs[0].value_str()?, "1");
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete(&self, key: impl Into<Vec<u8>>) -> Delete<Client> {
        Delete {
            target: self.clone(),
            request: Delete::new(key).request,
        }
    }

    /// An etcd DeleteRange, repeated only if it certainly was not applied.
    pub(crate) async fn delete_raw(
        &self,
        request: DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse, Error> {
        self.execute(Idempotence::Write, |channel| {
            let request = request.clone();
            async move { Ok(grpc::kv(channel).delete_range(request).await?.into_inner()) }
        })
        .await
    }
}

/// What a [`Delete`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteResponse {
    /// `header.revision` is the revision the delete created (if it
    /// deleted anything).
    pub header: Header,
    /// How many keys were deleted.
    pub deleted: i64,
    /// The deleted key-values, when asked for.
    pub prev_kvs: Vec<KeyValue>,
}

impl From<DeleteRangeResponse> for DeleteResponse {
    fn from(response: DeleteRangeResponse) -> Self {
        DeleteResponse {
            header: Header::from(response.header),
            deleted: response.deleted,
            prev_kvs: convert_all(response.prev_kvs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_land_in_the_delete_request() {
        let request = Delete::new("/p/").prefix().prev_kv().request;
        assert_eq!(
            request,
            DeleteRangeRequest {
                key: b"/p/".to_vec(),
                range_end: b"/p0".to_vec(),
                prev_kv: true,
            }
        );
        assert_eq!(Delete::new("a").from_key().request.range_end, b"\0");
        assert_eq!(Delete::new("a").range_end("b").request.range_end, b"b");
    }
}
