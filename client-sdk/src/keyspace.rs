//! Typed key spaces (feature `serde`): every key under a prefix holds a
//! JSON-encoded `T`; get, put, list and watch them as `T`.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::Error;
use crate::kv::KeyValue;
use crate::watch::{WatchEvent, WatchStream};

/// Keys under one prefix, each holding a JSON-encoded `T`, addressed by
/// name (the key without the prefix). Made by [`Client::keyspace`].
#[derive(Debug)]
pub struct KeySpace<T> {
    client: Client,
    prefix: Vec<u8>,
    values: PhantomData<fn() -> T>,
}

impl<T> Clone for KeySpace<T> {
    fn clone(&self) -> Self {
        KeySpace {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            values: PhantomData,
        }
    }
}

/// A decoded value and the revisions of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// The revision that created the key.
    pub create_revision: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// Puts since it was created.
    pub version: i64,
    /// Its lease (0: none).
    pub lease: i64,
}

/// Every entry of a key space at one revision (see [`KeySpace::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The revision read at: watch from `revision + 1` to follow on.
    pub revision: i64,
    /// The entries by name.
    pub entries: BTreeMap<String, Versioned<T>>,
}

/// A change in a key space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpaceEvent<T> {
    /// `name` was set.
    Put {
        /// The entry's name.
        name: String,
        /// Its new value.
        value: Versioned<T>,
    },
    /// `name` was removed.
    Delete {
        /// The entry's name.
        name: String,
        /// The revision of the delete.
        revision: i64,
    },
}

impl Client {
    /// The typed key space under `prefix`, with JSON values.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use futures::StreamExt;
    /// use serde::{Deserialize, Serialize};
    /// use witan_client::KeySpaceEvent;
    ///
    /// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    /// struct Flag {
    ///     enabled: bool,
    ///     rollout: u8,
    /// }
    ///
    /// let flags = client.keyspace::<Flag>("/flags/");
    /// flags.put("beta", &Flag { enabled: true, rollout: 10 }).await?;
    ///
    /// let listing = flags.list().await?;
    /// assert_eq!(listing.entries["beta"].value.rollout, 10);
    ///
    /// let mut changes = flags.watch(listing.revision + 1).await?;
    /// flags.put("beta", &Flag { enabled: true, rollout: 50 }).await?;
    /// match changes.next().await.expect("a change")? {
    ///     KeySpaceEvent::Put { name, value } => {
    ///         assert_eq!((name.as_str(), value.value.rollout), ("beta", 50));
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// assert_eq!(flags.get("beta").await?.map(|v| v.value.rollout), Some(50));
    /// assert!(flags.delete("beta").await?);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn keyspace<T>(&self, prefix: impl Into<Vec<u8>>) -> KeySpace<T> {
        KeySpace {
            client: self.clone(),
            prefix: prefix.into(),
            values: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> KeySpace<T> {
    fn key(&self, name: &str) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(name.as_bytes());
        key
    }

    /// The entry `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Versioned<T>>, Error> {
        let found = self.client.get(self.key(name)).await?;
        found.kvs.into_iter().next().map(decode).transpose()
    }

    /// Sets `name` to `value`; returns the revision of the write.
    pub async fn put(&self, name: &str, value: &T) -> Result<i64, Error> {
        let key = self.key(name);
        let encoded = serde_json::to_vec(value).map_err(|e| codec_error("encode", &key, e))?;
        Ok(self.client.put(key, encoded).await?.header.revision)
    }

    /// Removes `name`; returns whether it existed.
    pub async fn delete(&self, name: &str) -> Result<bool, Error> {
        Ok(self.client.delete(self.key(name)).await?.deleted > 0)
    }

    /// Every entry, at one revision.
    pub async fn list(&self) -> Result<Listing<T>, Error> {
        let found = self.client.get(self.prefix.clone()).prefix().await?;
        let mut entries = BTreeMap::new();
        for kv in found.kvs {
            let name = name_of(&self.prefix, &kv.key);
            entries.insert(name, decode(kv)?);
        }
        Ok(Listing {
            revision: found.header.revision,
            entries,
        })
    }

    /// The changes from `start_revision` on (0: from now), resumed across
    /// member failures like [`Client::watch`]. A value that cannot be
    /// decoded is reported as an [`Error::Codec`] item and the stream goes
    /// on.
    pub async fn watch(&self, start_revision: i64) -> Result<KeySpaceStream<T>, Error> {
        let events = self
            .client
            .watch(self.prefix.clone())
            .prefix()
            .start_revision(start_revision)
            .await?;
        Ok(KeySpaceStream {
            events,
            prefix: self.prefix.clone(),
            values: PhantomData,
        })
    }
}

/// The changes of a key space (see [`KeySpace::watch`]).
#[derive(Debug)]
pub struct KeySpaceStream<T> {
    events: WatchStream,
    prefix: Vec<u8>,
    values: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Stream for KeySpaceStream<T> {
    type Item = Result<KeySpaceEvent<T>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let event = match Pin::new(&mut self.events).poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => event,
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let item = match event {
            WatchEvent::Put { kv, .. } => {
                let name = name_of(&self.prefix, &kv.key);
                decode(kv).map(|value| KeySpaceEvent::Put { name, value })
            }
            WatchEvent::Delete { kv, .. } => Ok(KeySpaceEvent::Delete {
                name: name_of(&self.prefix, &kv.key),
                revision: kv.mod_revision,
            }),
        };
        Poll::Ready(Some(item))
    }
}

/// The name of `key` under `prefix` (lossily as text: names written
/// through a key space are text).
fn name_of(prefix: &[u8], key: &[u8]) -> String {
    String::from_utf8_lossy(key.strip_prefix(prefix).unwrap_or(key)).into_owned()
}

fn decode<T: DeserializeOwned>(kv: KeyValue) -> Result<Versioned<T>, Error> {
    let value = serde_json::from_slice(&kv.value).map_err(|e| codec_error("decode", &kv.key, e))?;
    Ok(Versioned {
        value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    })
}

fn codec_error(action: &'static str, key: &[u8], err: serde_json::Error) -> Error {
    Error::Codec {
        action,
        key: String::from_utf8_lossy(key).into_owned(),
        source: Arc::new(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_keys_without_the_prefix() {
        assert_eq!(name_of(b"/flags/", b"/flags/beta"), "beta");
        assert_eq!(name_of(b"/flags/", b"/other"), "/other");
    }

    #[test]
    fn values_decode_with_their_revisions_or_explain_why_not() {
        let kv = KeyValue {
            key: b"/n/a".to_vec(),
            value: b"[1,2]".to_vec(),
            create_revision: 2,
            mod_revision: 4,
            version: 3,
            lease: 0,
        };
        let decoded: Versioned<Vec<u8>> = decode(kv.clone()).unwrap();
        assert_eq!(decoded.value, vec![1, 2]);
        assert_eq!((decoded.create_revision, decoded.mod_revision), (2, 4));
        let err = decode::<String>(kv).unwrap_err();
        assert!(
            matches!(&err, Error::Codec { action: "decode", key, .. } if key == "/n/a"),
            "{err:?}"
        );
    }
}
