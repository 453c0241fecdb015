//! Conditional writes built on one transaction: create-if-absent (the
//! primitive locks and elections rest on) and compare-and-swap on a key's
//! mod revision or value.

use std::future::IntoFuture;

use futures::future::BoxFuture;

use crate::client::Client;
use crate::error::Error;
use crate::kv::{Cmp, Compare, KeyValue, Op, OpResponse, Put, TxnResponse};

/// What [`Client::put_if_absent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The key did not exist and now holds the value.
    Created {
        /// The revision that created it (its create revision).
        revision: i64,
    },
    /// The key exists: it was left alone. Its current holder.
    Exists(KeyValue),
}

/// A create-if-absent, made by [`Client::put_if_absent`]; await it.
#[derive(Debug, Clone)]
#[must_use = "a PutIfAbsent does nothing until awaited"]
pub struct PutIfAbsent {
    client: Client,
    put: Put,
}

impl PutIfAbsent {
    /// Attaches the created key to lease `id`.
    pub fn lease(mut self, id: i64) -> Self {
        self.put = self.put.lease(id);
        self
    }
}

impl IntoFuture for PutIfAbsent {
    type Output = Result<CreateOutcome, Error>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let key = self.put.key().to_vec();
            let response = self
                .client
                .txn()
                .when([Compare::absent(key.clone())])
                .then([Op::Put(self.put)])
                .or_else([Op::get(key)])
                .commit()
                .await?;
            if response.succeeded {
                return Ok(CreateOutcome::Created {
                    revision: response.header.revision,
                });
            }
            current_holder(response)?
                .map(CreateOutcome::Exists)
                .ok_or(Error::UnexpectedResponse(
                    "put-if-absent failed its guard but found no key",
                ))
        })
    }
}

/// What a [`Client::compare_and_swap`] expects the key to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Last modified at this revision (0: absent).
    ModRevision(i64),
    /// Holding this value.
    Value(Vec<u8>),
}

/// What [`Client::compare_and_swap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    /// The key was as expected and now holds the new value.
    Swapped {
        /// The revision of the write.
        revision: i64,
    },
    /// The key was not as expected: nothing was written.
    Mismatch {
        /// The key as it is (`None`: absent).
        current: Option<KeyValue>,
    },
}

impl Client {
    /// Creates `key` with `value` unless it exists, atomically (a Txn:
    /// `create_revision == 0` then put, else get).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::CreateOutcome;
    ///
    /// let first = client.put_if_absent("/leader", "node-a").await?;
    /// assert!(matches!(first, CreateOutcome::Created { .. }));
    ///
    /// match client.put_if_absent("/leader", "node-b").await? {
    ///     CreateOutcome::Exists(holder) => assert_eq!(holder.value_str()?, "node-a"),
    ///     CreateOutcome::Created { .. } => unreachable!("the key exists"),
    /// }
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_if_absent(&self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> PutIfAbsent {
        PutIfAbsent {
            client: self.clone(),
            put: Put::new(key, value),
        }
    }

    /// Writes `put` only if its key is as `expect`ed, atomically.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Expect, Put, Swap};
    ///
    /// let rev = client.put("/counter", "1").await?.header.revision;
    /// let swap = client
    ///     .compare_and_swap(Put::new("/counter", "2"), Expect::ModRevision(rev))
    ///     .await?;
    /// assert!(matches!(swap, Swap::Swapped { .. }));
    ///
    /// // A second writer still holding the old revision loses.
    /// let stale = client
    ///     .compare_and_swap(Put::new("/counter", "2"), Expect::ModRevision(rev))
    ///     .await?;
    /// let Swap::Mismatch { current: Some(now) } = stale else { unreachable!() };
    /// assert_eq!(now.value_str()?, "2");
    ///
    /// let by_value = client
    ///     .compare_and_swap(Put::new("/counter", "3"), Expect::Value(b"2".to_vec()))
    ///     .await?;
    /// assert!(matches!(by_value, Swap::Swapped { .. }));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn compare_and_swap(&self, put: Put, expect: Expect) -> Result<Swap, Error> {
        let key = put.key().to_vec();
        let guard = match expect {
            Expect::ModRevision(revision) => {
                Compare::mod_revision(key.clone(), Cmp::Equal, revision)
            }
            Expect::Value(value) => Compare::value(key.clone(), Cmp::Equal, value),
        };
        let response = self
            .txn()
            .when([guard])
            .then([Op::Put(put)])
            .or_else([Op::get(key)])
            .commit()
            .await?;
        if response.succeeded {
            return Ok(Swap::Swapped {
                revision: response.header.revision,
            });
        }
        Ok(Swap::Mismatch {
            current: current_holder(response)?,
        })
    }
}

/// The key-value read by the `or_else` get of a failed guard.
fn current_holder(response: TxnResponse) -> Result<Option<KeyValue>, Error> {
    match response.responses.into_iter().next() {
        Some(OpResponse::Get(get)) => Ok(get.kvs.into_iter().next()),
        _ => Err(Error::UnexpectedResponse(
            "a failed guard's get answered with another kind",
        )),
    }
}
