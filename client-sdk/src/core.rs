//! The SDK as the recipes' KV core: `witan_recipes::KvCore` over the
//! network, so the recipes (locks, elections, barriers, ...) run
//! client-side with the same code the server runs them with.

use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse, TxnRequest, TxnResponse};
use witan_recipes::{CoreError, EventStream, KvCore, Lease, WatchBatch};

use crate::client::Client;
use crate::error::{Error, OUTCOME_UNKNOWN};
use crate::watch::task::{self, WatchSpec};

impl KvCore for Client {
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, CoreError> {
        let revision = request.revision;
        self.range_raw(request)
            .await
            .map_err(|e| core_error(e, revision))
    }

    async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, CoreError> {
        self.txn_raw(request).await.map_err(|e| core_error(e, 0))
    }

    async fn watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: i64,
    ) -> Result<EventStream, CoreError> {
        let spec = WatchSpec {
            key,
            range_end,
            start_revision,
            ..WatchSpec::default()
        };
        let (batches, task) = task::open(self, spec)
            .await
            .map_err(|e| core_error(e, start_revision))?;
        let stream = ReceiverStream::new(batches).map(move |item| {
            // The stream owns the task: dropping it cancels the watch.
            let _owner = &task;
            item.map(|batch| WatchBatch {
                revision: batch.revision,
                events: batch.events,
            })
            .map_err(|e| core_error(e, start_revision))
        });
        Ok(Box::pin(stream))
    }

    async fn lease_grant(&self, ttl: i64, id: i64) -> Result<Lease, CoreError> {
        let grant = self
            .lease_grant_id(ttl, id)
            .await
            .map_err(|e| core_error(e, 0))?;
        Ok(Lease {
            id: grant.id,
            ttl: grant.ttl,
        })
    }

    async fn lease_revoke(&self, id: i64) -> Result<(), CoreError> {
        Client::lease_revoke(self, id)
            .await
            .map_err(|e| core_error(e, 0))
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, CoreError> {
        self.lease_keep_alive_once(id)
            .await
            .map_err(|e| core_error(e, 0))
    }

    async fn lease_time_to_live(&self, id: i64) -> Result<i64, CoreError> {
        let info = Client::lease_time_to_live(self, id, false)
            .await
            .map_err(|e| core_error(e, 0))?;
        Ok(info.ttl)
    }
}

/// The core's error for an SDK error; `revision` is the revision the call
/// asked for (for [`CoreError::Compacted`]).
fn core_error(err: Error, revision: i64) -> CoreError {
    match err {
        Error::Compacted { compact_revision } => CoreError::Compacted {
            revision,
            compact_revision: compact_revision.unwrap_or(0),
        },
        Error::LeaseNotFound => CoreError::LeaseNotFound,
        Error::Unavailable { message } => CoreError::Unavailable(message),
        Error::OutcomeUnknown { message } => {
            CoreError::Unavailable(format!("{OUTCOME_UNKNOWN}{message}"))
        }
        Error::Timeout => CoreError::Timeout("the client's deadline passed".into()),
        Error::InvalidArgument { message } => CoreError::InvalidRequest(message),
        Error::FutureRevision | Error::KeyNotFound | Error::LeaseExists => {
            CoreError::InvalidRequest(err.to_string())
        }
        other => CoreError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_core_kinds() {
        assert_eq!(
            core_error(
                Error::Compacted {
                    compact_revision: Some(5)
                },
                3
            ),
            CoreError::Compacted {
                revision: 3,
                compact_revision: 5
            }
        );
        assert_eq!(
            core_error(Error::LeaseNotFound, 0),
            CoreError::LeaseNotFound
        );
        assert!(matches!(
            core_error(
                Error::OutcomeUnknown {
                    message: "x".into()
                },
                0
            ),
            CoreError::Unavailable(_)
        ));
        assert!(matches!(
            core_error(Error::Timeout, 0),
            CoreError::Timeout(_)
        ));
        assert!(matches!(
            core_error(Error::InvalidArgument { message: "bad".into() }, 0),
            CoreError::InvalidRequest(m) if m == "bad"
        ));
        assert!(matches!(
            core_error(
                Error::PermissionDenied {
                    message: "no".into()
                },
                0
            ),
            CoreError::Other(_)
        ));
    }
}
