//! `StateReader`: how API handlers read the state machine while apply runs.
//!
//! Apply publishes an immutable [`AppliedState`] after each committed
//! transaction; readers take the latest one without locks (an `Arc` clone;
//! the key map inside is a persistent structure) and read older revisions
//! through [`SqliteHistory`], whose read-only connections never block apply.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::history::SqliteHistory;
use crate::mvcc::{Change, KvState};
use crate::raft::LogId;

/// The key changes one apply call committed: every change with a revision
/// in `(prev_revision, revision]`, in order. An empty `changes` with
/// `revision > prev_revision` means the state jumped (a snapshot was
/// installed): the changes in between are only in the history.
#[derive(Debug, Clone)]
pub struct AppliedChanges {
    /// The revision before this apply.
    pub prev_revision: i64,
    /// The revision after it.
    pub revision: i64,
    /// The changes, in revision and sub-revision order.
    pub changes: Vec<Change>,
}

/// The state machine as of one applied log id.
#[derive(Debug, Clone)]
pub struct AppliedState {
    /// The last log entry this state includes (`None` before the first).
    pub last_applied: Option<LogId>,
    /// The live keys at the current revision.
    pub kv: KvState,
}

/// The state machine stopped (its store was dropped) before the awaited
/// index was applied.
#[derive(Debug, thiserror::Error)]
#[error("the state machine has shut down")]
pub struct StateMachineClosed;

/// A cheap, clonable read handle on the state machine.
#[derive(Debug, Clone)]
pub struct StateReader {
    state: watch::Receiver<Arc<AppliedState>>,
    feed: broadcast::Sender<Arc<AppliedChanges>>,
    history: SqliteHistory,
}

impl StateReader {
    pub(crate) fn new(
        state: watch::Receiver<Arc<AppliedState>>,
        feed: broadcast::Sender<Arc<AppliedChanges>>,
        history: SqliteHistory,
    ) -> Self {
        StateReader {
            state,
            feed,
            history,
        }
    }

    /// A receiver of every apply's changes, sent after the state that
    /// includes them is published. The channel is bounded: a receiver that
    /// falls behind gets `Lagged` and must catch up from [`Self::history`]
    /// (as it must for a gap between one message's `revision` and the
    /// next one's `prev_revision`).
    pub fn changes(&self) -> broadcast::Receiver<Arc<AppliedChanges>> {
        self.feed.subscribe()
    }

    /// The latest published state.
    pub fn current(&self) -> Arc<AppliedState> {
        Arc::clone(&self.state.borrow())
    }

    /// Waits until the log entry at `index` is applied and returns the
    /// state then published (it may include later entries too). Callers
    /// bound the wait with their own deadline (`tokio::time::timeout`).
    pub async fn wait_applied(&self, index: u64) -> Result<Arc<AppliedState>, StateMachineClosed> {
        let mut state = self.state.clone();
        let ready = state
            .wait_for(|s| s.last_applied.is_some_and(|id| id.index >= index))
            .await
            .map_err(|_| StateMachineClosed)?;
        Ok(Arc::clone(&ready))
    }

    /// A receiver that is notified of every published state (intermediate
    /// ones may be skipped by a slow receiver; the revision tells what it
    /// missed, and the history holds it).
    pub fn subscribe(&self) -> watch::Receiver<Arc<AppliedState>> {
        self.state.clone()
    }

    /// The stored history, for reads at older revisions.
    pub fn history(&self) -> &SqliteHistory {
        &self.history
    }
}
