//! Reads: the [`Get`] builder (one key, a prefix, a range; at a revision;
//! limited, sorted, counted) and its [`GetResponse`].

use std::future::IntoFuture;

use futures::future::BoxFuture;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, range_request};

use super::Detached;
use super::key_value::{Header, KeyValue, convert_all, prefix_end};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

/// What a range is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortTarget {
    /// The key bytes.
    Key,
    /// The key's version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value bytes.
    Value,
}

/// Which way a range is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Smallest first.
    Ascend,
    /// Largest first.
    Descend,
}

/// A read of one key or a range of keys.
///
/// Made by [`Client::get`] (await it to run it) or [`Get::new`] (a
/// detached read, to put in a [`Txn`](crate::Txn) with
/// [`Op::from`](crate::Op)). By default it reads the one key, at the
/// latest revision, linearizably.
#[derive(Debug, Clone)]
#[must_use = "a Get does nothing until awaited (or put in a Txn)"]
pub struct Get<C = Detached> {
    pub(crate) target: C,
    pub(crate) request: RangeRequest,
}

impl Get<Detached> {
    /// A read of `key`, for a transaction.
    ///
    /// ```
    /// use witan_client::{Get, Op};
    /// let op = Op::from(Get::new("/jobs/").prefix().limit(10));
    /// # let _ = op;
    /// ```
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Get {
            target: Detached,
            request: RangeRequest {
                key: key.into(),
                ..RangeRequest::default()
            },
        }
    }
}

impl<C> Get<C> {
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

    /// At most `limit` keys (0: no limit); `more` in the response says
    /// whether keys were left out.
    pub fn limit(mut self, limit: i64) -> Self {
        self.request.limit = limit;
        self
    }

    /// The keys as they were at `revision` (0: the latest).
    pub fn revision(mut self, revision: i64) -> Self {
        self.request.revision = revision;
        self
    }

    /// Served by the member called from its own state, without asking the
    /// leader: faster, available without a leader, and possibly stale.
    pub fn serializable(mut self) -> Self {
        self.request.serializable = true;
        self
    }

    /// Keys and revisions only, no values.
    pub fn keys_only(mut self) -> Self {
        self.request.keys_only = true;
        self
    }

    /// Only the number of keys (in `count`), no key-values.
    pub fn count_only(mut self) -> Self {
        self.request.count_only = true;
        self
    }

    /// Sorted by `target` in `order`.
    pub fn sort(mut self, target: SortTarget, order: SortOrder) -> Self {
        self.request.sort_target = match target {
            SortTarget::Key => range_request::SortTarget::Key,
            SortTarget::Version => range_request::SortTarget::Version,
            SortTarget::Create => range_request::SortTarget::Create,
            SortTarget::Mod => range_request::SortTarget::Mod,
            SortTarget::Value => range_request::SortTarget::Value,
        } as i32;
        self.request.sort_order = match order {
            SortOrder::Ascend => range_request::SortOrder::Ascend,
            SortOrder::Descend => range_request::SortOrder::Descend,
        } as i32;
        self
    }

    /// Only keys last modified at or after `revision`.
    pub fn min_mod_revision(mut self, revision: i64) -> Self {
        self.request.min_mod_revision = revision;
        self
    }

    /// Only keys last modified at or before `revision`.
    pub fn max_mod_revision(mut self, revision: i64) -> Self {
        self.request.max_mod_revision = revision;
        self
    }

    /// Only keys created at or after `revision`.
    pub fn min_create_revision(mut self, revision: i64) -> Self {
        self.request.min_create_revision = revision;
        self
    }

    /// Only keys created at or before `revision`.
    pub fn max_create_revision(mut self, revision: i64) -> Self {
        self.request.max_create_revision = revision;
        self
    }
}

impl IntoFuture for Get<Client> {
    type Output = Result<GetResponse, Error>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let response = self.target.range_raw(self.request).await?;
            Ok(GetResponse::from(response))
        })
    }
}

impl Client {
    /// Reads `key` (or, with the builder's options, a prefix or range).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{SortOrder, SortTarget};
    ///
    /// client.put("/jobs/1", "build").await?;
    /// client.put("/jobs/2", "test").await?;
    ///
    /// let one = client.get("/jobs/1").await?;
    /// assert_eq!(one.kvs[0].value_str()?, "build");
    ///
    /// let newest = client
    ///     .get("/jobs/")
    ///     .prefix()
    ///     .sort(SortTarget::Mod, SortOrder::Descend)
    ///     .limit(1)
    ///     .await?;
    /// assert_eq!(newest.kvs[0].key_str()?, "/jobs/2");
    /// assert!(newest.more);
    ///
    /// let count = client.get("/jobs/").prefix().count_only().await?;
    /// assert_eq!(count.count, 2);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, key: impl Into<Vec<u8>>) -> Get<Client> {
        Get {
            target: self.clone(),
            request: Get::new(key).request,
        }
    }

    /// Reads the keys in `[key, range_end)`: the same as
    /// `client.get(key).range_end(range_end)`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// for key in ["a", "b", "c"] {
    ///     client.put(key, "x").await?;
    /// }
    /// let found = client.range("a", "c").keys_only().await?;
    /// let keys: Vec<_> = found.kvs.iter().map(|kv| kv.key_str().unwrap()).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn range(&self, key: impl Into<Vec<u8>>, range_end: impl Into<Vec<u8>>) -> Get<Client> {
        self.get(key).range_end(range_end)
    }

    /// An etcd Range, repeated on another member if one fails.
    pub(crate) async fn range_raw(&self, request: RangeRequest) -> Result<RangeResponse, Error> {
        self.execute(Idempotence::Safe, |channel| {
            let request = request.clone();
            async move { Ok(grpc::kv(channel).range(request).await?.into_inner()) }
        })
        .await
    }
}

/// What a [`Get`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetResponse {
    /// Where and at which revision it was read.
    pub header: Header,
    /// The keys found, in key order unless sorted otherwise.
    pub kvs: Vec<KeyValue>,
    /// Whether a limit left keys out.
    pub more: bool,
    /// How many keys are in the range (ignoring the limit).
    pub count: i64,
}

impl GetResponse {
    /// The first key-value found, if any (the one key of a single-key
    /// read).
    pub fn first(&self) -> Option<&KeyValue> {
        self.kvs.first()
    }
}

impl From<RangeResponse> for GetResponse {
    fn from(response: RangeResponse) -> Self {
        GetResponse {
            header: Header::from(response.header),
            kvs: convert_all(response.kvs),
            more: response.more,
            count: response.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_get_reads_one_key_linearizably() {
        let request = Get::new("k").request;
        assert_eq!(
            request,
            RangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn options_land_in_the_range_request() {
        let request = Get::new("/p/")
            .prefix()
            .limit(5)
            .revision(7)
            .serializable()
            .keys_only()
            .count_only()
            .sort(SortTarget::Mod, SortOrder::Descend)
            .min_mod_revision(1)
            .max_mod_revision(2)
            .min_create_revision(3)
            .max_create_revision(4)
            .request;
        assert_eq!(
            request,
            RangeRequest {
                key: b"/p/".to_vec(),
                range_end: b"/p0".to_vec(),
                limit: 5,
                revision: 7,
                sort_order: range_request::SortOrder::Descend as i32,
                sort_target: range_request::SortTarget::Mod as i32,
                serializable: true,
                keys_only: true,
                count_only: true,
                min_mod_revision: 1,
                max_mod_revision: 2,
                min_create_revision: 3,
                max_create_revision: 4,
            }
        );
        assert_eq!(Get::new("a").from_key().request.range_end, b"\0");
        assert_eq!(Get::new("a").range_end("c").request.range_end, b"c");
    }
}
