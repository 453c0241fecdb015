//! openraft's type configuration for witan and the aliases the rest of the
//! server uses for raft types.

use witan_proto::raftpb;

/// A member's raft id (etcd calls it the member ID).
pub type NodeId = u64;

/// A member's name and addresses, as stored in the raft membership.
pub type Member = raftpb::Node;

openraft::declare_raft_types!(
    /// witan's openraft type configuration: log entries carry batches of
    /// commands (group commit); snapshots are sqlite database files.
    pub TypeConfig:
        D = raftpb::CommandBatch,
        R = EntryResponse,
        NodeId = NodeId,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// What applying one log entry produced: one response per command of the
/// entry's batch, in order (empty for blank and membership entries).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryResponse(pub Vec<raftpb::CommandResponse>);

/// The raft handle of a member.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id (leader id and index).
pub type LogId = openraft::LogId<NodeId>;
/// A raft log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A vote (term, candidate, committed).
pub type Vote = openraft::Vote<NodeId>;
/// A membership configuration with member addresses.
pub type Membership = openraft::Membership<NodeId, Member>;
/// A membership configuration with the log id that introduced it.
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
/// Snapshot metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
/// A storage failure reported to openraft (fatal for the member).
pub type StorageError = openraft::StorageError<NodeId>;
