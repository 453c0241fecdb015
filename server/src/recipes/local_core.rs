//! [`LocalCore`]: `witan_recipes::KvCore` over this member, in-process.
//! Every call takes the same path a client request does (limits,
//! validation, read barrier, proposal), minus gRPC.

use std::sync::Arc;

use futures::{stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use witan_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, RangeRequest, RangeResponse,
    TxnRequest, TxnResponse, WatchCreateRequest,
};
use witan_recipes::{CoreError, EventStream, KvCore, Lease, WatchBatch};

use crate::api::{ApiError, KvService, LeaseService};
use crate::auth::Caller;
use crate::mvcc::MvccError;
use crate::raft::proposer::ProposeError;
use crate::raft::read_index::ReadIndexError;
use crate::storage::StateReader;
use crate::watch::{self, ResponseKind, WatchHub};

/// Responses buffered per in-process watch before its stream waits (and
/// the watch falls back to catching up from history).
const WATCH_BUFFER: usize = 16;

/// The member's KV core for the recipes. Cheap to clone.
#[derive(Clone)]
pub struct LocalCore {
    kv: Arc<KvService>,
    leases: Arc<LeaseService>,
    watches: WatchHub,
    state: StateReader,
}

impl LocalCore {
    /// A core over the member's KV and Lease services and its watches.
    pub fn new(
        kv: Arc<KvService>,
        leases: Arc<LeaseService>,
        watches: WatchHub,
        state: StateReader,
    ) -> Self {
        LocalCore {
            kv,
            leases,
            watches,
            state,
        }
    }

    fn core_error(&self, err: ApiError, revision: i64) -> CoreError {
        let message = err.to_string();
        match err {
            ApiError::Mvcc(MvccError::Compacted) => CoreError::Compacted {
                revision,
                compact_revision: self.state.current().kv.compact_revision(),
            },
            ApiError::Mvcc(MvccError::LeaseNotFound) => CoreError::LeaseNotFound,
            ApiError::Request(_) | ApiError::RequestTooLarge | ApiError::LeaseTtlTooLarge => {
                CoreError::InvalidRequest(message)
            }
            ApiError::Mvcc(MvccError::FutureRevision) | ApiError::Mvcc(MvccError::KeyNotFound) => {
                CoreError::InvalidRequest(message)
            }
            ApiError::Propose(ProposeError::Timeout)
            | ApiError::ReadIndex(ReadIndexError::Timeout)
            | ApiError::ApplyTimeout
            | ApiError::Propose(ProposeError::LeaderLost) => CoreError::Timeout(message),
            ApiError::Propose(_) | ApiError::ReadIndex(_) => CoreError::Unavailable(message),
            ApiError::Transfer(_) | ApiError::Storage(_) | ApiError::TooManyLeases => {
                CoreError::Other(message)
            }
            ApiError::Mvcc(_)
            | ApiError::Auth(_)
            | ApiError::Password(_)
            | ApiError::Recipe(_)
            | ApiError::Member(_)
            | ApiError::MissingLeaderKey
            | ApiError::UnexpectedResponse(_) => CoreError::Other(message),
        }
    }
}

impl KvCore for LocalCore {
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, CoreError> {
        let revision = request.revision;
        self.kv
            .serve_range(request, &Caller::member())
            .await
            .map_err(|e| self.core_error(e, revision))
    }

    async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, CoreError> {
        self.kv
            .serve_txn(request, &Caller::member())
            .await
            .map_err(|e| self.core_error(e, 0))
    }

    async fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<EventStream, CoreError> {
        let create = WatchCreateRequest {
            key,
            range_end,
            start_revision,
            ..WatchCreateRequest::default()
        };
        // The request stream ends after the create; the watch lives on
        // until the receiver of its answers is dropped.
        let requests =
            stream::once(async move { Ok::<_, ApiError>(watch::Request::Create(create)) });
        let (out, answers) = mpsc::channel(WATCH_BUFFER);
        let hub = self.watches.clone();
        tokio::spawn(async move {
            if let Err(err) = hub.serve(requests, out).await {
                tracing::debug!(%err, "in-process watch ended");
            }
        });
        let mut answers = ReceiverStream::new(answers);
        match answers.next().await.map(|a| a.kind) {
            Some(ResponseKind::Created) => {}
            Some(ResponseKind::Compacted { compact_revision }) => {
                return Err(CoreError::Compacted {
                    revision: start_revision,
                    compact_revision,
                })
            }
            Some(ResponseKind::Refused(reason)) => {
                return Err(CoreError::InvalidRequest(reason.to_string()))
            }
            Some(other) => {
                return Err(CoreError::Other(format!(
                    "watch answered its create with {other:?}"
                )))
            }
            None => return Err(CoreError::Unavailable("etcdserver: server stopped".into())),
        }
        let batches = answers
            .filter_map(move |answer| {
                std::future::ready(match answer.kind {
                    ResponseKind::Events { events, .. } => Some(Ok(WatchBatch {
                        revision: answer.revision,
                        events,
                    })),
                    ResponseKind::Compacted { compact_revision } => {
                        Some(Err(CoreError::Compacted {
                            revision: start_revision,
                            compact_revision,
                        }))
                    }
                    _ => None,
                })
            })
            // The stream of answers closes when the member stops: say so
            // rather than end quietly, so no waiter takes it for a change.
            .chain(stream::once(async {
                Err(CoreError::Unavailable("etcdserver: server stopped".into()))
            }))
            .scan(false, |ended, item| {
                let last = *ended;
                *ended = item.is_err();
                std::future::ready((!last).then_some(item))
            });
        Ok(Box::pin(batches))
    }

    async fn lease_grant(&self, ttl: i64, id: i64) -> Result<Lease, CoreError> {
        let response = self
            .leases
            .grant(LeaseGrantRequest { ttl, id }, &Caller::member())
            .await
            .map_err(|e| self.core_error(e, 0))?;
        Ok(Lease {
            id: response.id,
            ttl: response.ttl,
        })
    }

    async fn lease_revoke(&self, id: i64) -> Result<(), CoreError> {
        self.leases
            .revoke(LeaseRevokeRequest { id }, &Caller::member())
            .await
            .map(drop)
            .map_err(|e| self.core_error(e, 0))
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, CoreError> {
        let response = self
            .leases
            .keep_alive_once(id)
            .await
            .map_err(|e| self.core_error(e, 0))?;
        if response.ttl <= 0 {
            return Err(CoreError::LeaseNotFound);
        }
        Ok(response.ttl)
    }

    async fn lease_time_to_live(&self, id: i64) -> Result<i64, CoreError> {
        let response = self
            .leases
            .time_to_live(LeaseTimeToLiveRequest { id, keys: false })
            .await
            .map_err(|e| self.core_error(e, 0))?;
        if response.ttl < 0 {
            return Err(CoreError::LeaseNotFound);
        }
        Ok(response.ttl)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use futures::StreamExt;
    use witan_proto::etcdserverpb::{compare, request_op, Compare, PutRequest, RequestOp};
    use witan_proto::mvccpb::event::EventType;

    use super::*;
    use crate::config::Config;
    use crate::node::Node;

    async fn single_member(dir: &std::path::Path) -> Node {
        let config = Config::parse_from([
            "witan",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen-client-urls",
            "http://127.0.0.1:0",
            "--listen-peer-urls",
            "http://127.0.0.1:0",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ]);
        Node::start(config).await.unwrap()
    }

    fn put_if_absent(key: &[u8], value: &[u8], lease: i64) -> TxnRequest {
        TxnRequest {
            compare: vec![Compare {
                key: key.to_vec(),
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Create as i32,
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
                ..Compare::default()
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.to_vec(),
                    value: value.to_vec(),
                    lease,
                    ..PutRequest::default()
                })),
            }],
            failure: vec![],
        }
    }

    #[tokio::test]
    async fn calls_take_the_member_write_and_read_paths() {
        let dir = tempfile::tempdir().unwrap();
        let node = single_member(dir.path()).await;
        let core = node.local_core();

        let mut watch = core.watch(b"k".to_vec(), vec![], 0).await.unwrap();
        let lease = core.lease_grant(60, 0).await.unwrap();
        assert!(lease.ttl >= 60);
        assert!(core.lease_time_to_live(lease.id).await.unwrap() > 0);
        assert!(core.lease_keep_alive(lease.id).await.unwrap() > 0);

        let created = core.txn(put_if_absent(b"k", b"v", lease.id)).await.unwrap();
        assert!(created.succeeded);
        let again = core.txn(put_if_absent(b"k", b"w", lease.id)).await.unwrap();
        assert!(!again.succeeded);
        let range = core
            .range(RangeRequest {
                key: b"k".to_vec(),
                ..RangeRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(range.kvs[0].value, b"v");
        assert_eq!(range.kvs[0].lease, lease.id);

        let batch = watch.next().await.unwrap().unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].r#type(), EventType::Put);

        // Revoking deletes the key, and the watch sees the delete.
        core.lease_revoke(lease.id).await.unwrap();
        let batch = watch.next().await.unwrap().unwrap();
        assert_eq!(batch.events[0].r#type(), EventType::Delete);
        assert_eq!(
            core.lease_time_to_live(lease.id).await,
            Err(CoreError::LeaseNotFound)
        );
        assert_eq!(
            core.txn(put_if_absent(b"x", b"v", lease.id)).await,
            Err(CoreError::LeaseNotFound)
        );

        // A watch from an old revision catches up from history.
        let mut replay = core.watch(b"k".to_vec(), vec![], 1).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.extend(replay.next().await.unwrap().unwrap().events);
        }
        assert_eq!(seen[0].r#type(), EventType::Put);
        assert_eq!(seen[1].r#type(), EventType::Delete);
        node.shutdown().await;
    }
}
