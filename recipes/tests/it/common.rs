//! What every recipe test shares: a single witan member in a temporary
//! directory, leases, reads, and waiting on conditions with deadlines.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use witan_proto::mvccpb::KeyValue;
use witan_recipes::keys;
use witan_recipes::{CoreError, EventStream, KvCore, Lease};
use witan_server::config::Config;
use witan_server::node::Node;
use witan_server::recipes::LocalCore;

/// How long any single wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A started single-member cluster and its in-process core.
pub struct Member {
    pub node: Node,
    pub core: LocalCore,
    _dir: tempfile::TempDir,
}

impl Member {
    pub async fn start() -> Member {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.data_dir = dir.path().join("data");
        config.listen_client_urls = vec!["http://127.0.0.1:0".into()];
        config.listen_peer_urls = vec!["http://127.0.0.1:0".into()];
        config.heartbeat_interval = 50;
        config.election_timeout = 500;
        // The machine may be busy (two cores, builds alongside): give
        // requests room rather than fail on a slow fsync.
        config.request_timeout = DEADLINE;
        let node = Node::start(config).await.unwrap();
        node.raft()
            .wait(Some(DEADLINE))
            .current_leader(node.id(), "the member leads")
            .await
            .unwrap();
        let core = node.local_core();
        Member {
            node,
            core,
            _dir: dir,
        }
    }

    /// A lease of `ttl` seconds nobody keeps alive.
    pub async fn lease(&self, ttl: i64) -> i64 {
        self.core.lease_grant(ttl, 0).await.unwrap().id
    }

    /// The keys under `prefix`, oldest first.
    pub async fn keys_under(&self, prefix: &[u8]) -> Vec<KeyValue> {
        let mut kvs = self
            .core
            .range(RangeRequest {
                key: prefix.to_vec(),
                range_end: keys::prefix_end(prefix),
                ..RangeRequest::default()
            })
            .await
            .unwrap()
            .kvs;
        kvs.sort_by_key(|kv| kv.create_revision);
        kvs
    }

    /// One key, if it exists.
    pub async fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.core
            .range(RangeRequest {
                key: key.to_vec(),
                ..RangeRequest::default()
            })
            .await
            .unwrap()
            .kvs
            .into_iter()
            .next()
    }

    /// Waits until the keys under `prefix` number `n`.
    pub async fn until_keys(&self, prefix: &[u8], n: usize) {
        until(|| async { self.keys_under(prefix).await.len() == n }).await;
    }

    pub async fn stop(self) {
        self.node.shutdown().await;
    }
}

/// Polls `condition` until it holds; panics after [`DEADLINE`].
pub async fn until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `future`'s output; panics if it takes longer than [`DEADLINE`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .expect("did not finish within the deadline")
}

/// A core whose next watch, once armed, fails with `Compacted` after its
/// first batch, as a watch does whose start revision a compaction
/// overtook.
#[derive(Clone)]
pub struct CompactingCore {
    pub inner: LocalCore,
    pub armed: Arc<AtomicBool>,
}

impl KvCore for CompactingCore {
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, CoreError> {
        self.inner.range(request).await
    }

    async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, CoreError> {
        self.inner.txn(request).await
    }

    async fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<EventStream, CoreError> {
        let stream = self.inner.watch(key, range_end, start_revision).await?;
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(stream);
        }
        let compacted = futures::stream::once(async move {
            Err(CoreError::Compacted {
                revision: start_revision,
                compact_revision: start_revision + 1,
            })
        });
        Ok(Box::pin(stream.take(1).chain(compacted)))
    }

    async fn lease_grant(&self, ttl: i64, id: i64) -> Result<Lease, CoreError> {
        self.inner.lease_grant(ttl, id).await
    }

    async fn lease_revoke(&self, id: i64) -> Result<(), CoreError> {
        self.inner.lease_revoke(id).await
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, CoreError> {
        self.inner.lease_keep_alive(id).await
    }

    async fn lease_time_to_live(&self, id: i64) -> Result<i64, CoreError> {
        self.inner.lease_time_to_live(id).await
    }
}
