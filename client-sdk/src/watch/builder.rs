//! The [`Watch`] builder: what to watch, from which revision, with which
//! options.

use std::future::IntoFuture;

use futures::future::BoxFuture;
use witan_proto::etcdserverpb::watch_create_request::FilterType;

use super::stream::WatchStream;
use super::task::{self, WatchSpec};
use crate::client::Client;
use crate::error::Error;
use crate::kv::prefix_end;

/// A watch to start, made by [`Client::watch`]; await it to get the
/// [`WatchStream`].
#[derive(Debug, Clone)]
#[must_use = "a Watch does nothing until awaited"]
pub struct Watch {
    client: Client,
    spec: WatchSpec,
}

impl Watch {
    /// Every key starting with the key given.
    pub fn prefix(mut self) -> Self {
        self.spec.range_end = prefix_end(&self.spec.key);
        self
    }

    /// Keys from the key given up to `end` (exclusive).
    pub fn range_end(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.spec.range_end = end.into();
        self
    }

    /// Every key from the key given on.
    pub fn from_key(mut self) -> Self {
        self.spec.range_end = vec![0];
        self
    }

    /// Starts with the events of `revision` (0, the default: with those
    /// after the watch is created). A revision already compacted fails the
    /// stream with [`Error::Compacted`].
    pub fn start_revision(mut self, revision: i64) -> Self {
        self.spec.start_revision = revision;
        self
    }

    /// Events carry the key as it was before them.
    pub fn prev_kv(mut self) -> Self {
        self.spec.prev_kv = true;
        self
    }

    /// Leaves puts out.
    pub fn no_put(mut self) -> Self {
        self.spec.filters.push(FilterType::Noput as i32);
        self
    }

    /// Leaves deletes out.
    pub fn no_delete(mut self) -> Self {
        self.spec.filters.push(FilterType::Nodelete as i32);
        self
    }
}

impl IntoFuture for Watch {
    type Output = Result<WatchStream, Error>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (batches, task) = task::open(&self.client, self.spec).await?;
            Ok(WatchStream::new(batches, task))
        })
    }
}

impl Client {
    /// Watches `key` (or, with the builder's options, a prefix or range).
    /// The stream survives member failures: it resumes on another member
    /// from the revision after the last event it delivered, so no event is
    /// lost or repeated.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use futures::StreamExt;
    /// use witan_client::WatchEvent;
    ///
    /// let start = client.put("/flags/beta", "off").await?.header.revision;
    /// client.put("/flags/beta", "on").await?;
    /// client.delete("/flags/beta").await?;
    ///
    /// let mut events = client.watch("/flags/").prefix().start_revision(start).prev_kv().await?;
    /// let first = events.next().await.expect("an event")?;
    /// assert_eq!(first.kv().value_str()?, "off");
    /// let second = events.next().await.expect("an event")?;
    /// assert_eq!(second.prev_kv().map(|kv| kv.value.clone()), Some(b"off".to_vec()));
    /// let third = events.next().await.expect("an event")?;
    /// assert!(matches!(third, WatchEvent::Delete { .. }));
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(&self, key: impl Into<Vec<u8>>) -> Watch {
        Watch {
            client: self.clone(),
            spec: WatchSpec {
                key: key.into(),
                ..WatchSpec::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_land_in_the_spec() {
        let client = Client::unconnected(["127.0.0.1:1"]);
        let watch = client
            .watch("/p/")
            .prefix()
            .start_revision(9)
            .prev_kv()
            .no_put()
            .no_delete();
        assert_eq!(
            watch.spec,
            WatchSpec {
                key: b"/p/".to_vec(),
                range_end: b"/p0".to_vec(),
                start_revision: 9,
                prev_kv: true,
                filters: vec![FilterType::Noput as i32, FilterType::Nodelete as i32],
            }
        );
        assert_eq!(client.watch("a").from_key().spec.range_end, b"\0");
        assert_eq!(client.watch("a").range_end("b").spec.range_end, b"b");
    }
}
