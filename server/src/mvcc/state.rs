//! `KvState`: the live keys at the current revision, and applying commands
//! to them. (Interface fixed; bodies are being written.)

use witan_proto::etcdserverpb::{RangeRequest, RangeResponse};
use witan_proto::mvccpb::KeyValue;
use witan_proto::raftpb::{Command, CommandResponse};

use super::{Change, History, HistoryError, MvccError};

/// The key-value state at one revision.
#[derive(Debug, Clone, Default)]
pub struct KvState {}

impl KvState {
    /// An empty store: revision 1, nothing compacted.
    pub fn new() -> Self {
        todo!()
    }

    /// Rebuilds the state from the live keys stored at `revision`.
    pub fn restore(
        _keys: impl IntoIterator<Item = KeyValue>,
        _revision: i64,
        _compact_revision: i64,
    ) -> Self {
        todo!()
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        todo!()
    }

    /// The compaction revision (0 when nothing was compacted).
    pub fn compact_revision(&self) -> i64 {
        todo!()
    }

    /// Applies one command. A rejection (compacted, key not found ...) is a
    /// `CommandResponse` carrying an `ApplyError` and changes nothing; only
    /// a failed history read is an `Err`. The changes the command made are
    /// appended to `changes`, which holds the changes of the earlier
    /// commands of the same batch (not yet in `history`).
    pub async fn apply<H: History>(
        &mut self,
        _cmd: &Command,
        _history: &H,
        _changes: &mut Vec<Change>,
    ) -> Result<CommandResponse, HistoryError> {
        todo!()
    }

    /// Serves a Range request (outside a transaction) at this state.
    pub async fn range<H: History>(
        &self,
        _req: &RangeRequest,
        _history: &H,
    ) -> Result<RangeResponse, MvccError> {
        todo!()
    }
}
