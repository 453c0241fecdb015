//! Conversions between openraft's types and their `witan.raft.v1` protobuf
//! messages. The same messages are the raft log's on-disk format, so a
//! message missing a required field is reported, never assumed.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{CommittedLeaderId, EntryPayload, LeaderId};
use witan_proto::raftpb;

use super::types::{
    Entry, LogId, Membership, NodeId, SnapshotMeta, StoredMembership, TypeConfig, Vote,
};

/// A protobuf message could not be turned into its openraft type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    /// A field that must be present was absent.
    #[error("malformed raft message: missing field `{0}`")]
    MissingField(&'static str),
    /// AppendEntries whose log ids no leader could send: entries not
    /// numbered one after the other from `prev_log_id`, or of a term
    /// before `prev_log_id`'s, after an earlier entry's, or past the
    /// sender's vote. openraft expects its peers to be well behaved; a
    /// hostile or broken one is refused here, before it reaches the log.
    #[error("malformed raft message: {0}")]
    BadLogIds(&'static str),
}

/// Converts a log id to its message.
pub fn log_id_to_pb(id: &LogId) -> raftpb::LogId {
    raftpb::LogId {
        term: id.leader_id.term,
        node_id: id.leader_id.node_id,
        index: id.index,
    }
}

/// Converts a log id message.
pub fn log_id_from_pb(id: &raftpb::LogId) -> LogId {
    LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
}

/// Converts an optional log id to an optional message.
pub fn opt_log_id_to_pb(id: Option<&LogId>) -> Option<raftpb::LogId> {
    id.map(log_id_to_pb)
}

/// Converts an optional log id message.
pub fn opt_log_id_from_pb(id: Option<&raftpb::LogId>) -> Option<LogId> {
    id.map(log_id_from_pb)
}

/// Converts a vote to its message.
pub fn vote_to_pb(vote: &Vote) -> raftpb::Vote {
    raftpb::Vote {
        term: vote.leader_id.term,
        node_id: vote.leader_id.node_id,
        committed: vote.committed,
    }
}

/// Converts a vote message.
pub fn vote_from_pb(vote: &raftpb::Vote) -> Vote {
    Vote {
        leader_id: LeaderId::new(vote.term, vote.node_id),
        committed: vote.committed,
    }
}

fn required_vote(vote: Option<&raftpb::Vote>) -> Result<Vote, ConvertError> {
    vote.map(vote_from_pb)
        .ok_or(ConvertError::MissingField("vote"))
}

/// Converts a membership configuration to its message.
pub fn membership_to_pb(m: &Membership) -> raftpb::Membership {
    raftpb::Membership {
        configs: m
            .get_joint_config()
            .iter()
            .map(|set| raftpb::VoterSet {
                ids: set.iter().copied().collect(),
            })
            .collect(),
        nodes: m.nodes().map(|(id, node)| (*id, node.clone())).collect(),
    }
}

/// Converts a membership message.
pub fn membership_from_pb(m: &raftpb::Membership) -> Membership {
    let configs: Vec<BTreeSet<NodeId>> = m
        .configs
        .iter()
        .map(|set| set.ids.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<NodeId, raftpb::Node> =
        m.nodes.iter().map(|(id, n)| (*id, n.clone())).collect();
    Membership::new(configs, nodes)
}

/// Converts a stored membership (membership plus the log id that set it).
pub fn stored_membership_to_pb(m: &StoredMembership) -> raftpb::StoredMembership {
    raftpb::StoredMembership {
        log_id: opt_log_id_to_pb(m.log_id().as_ref()),
        membership: Some(membership_to_pb(m.membership())),
    }
}

/// Converts a stored membership message.
pub fn stored_membership_from_pb(
    m: &raftpb::StoredMembership,
) -> Result<StoredMembership, ConvertError> {
    let membership = m
        .membership
        .as_ref()
        .ok_or(ConvertError::MissingField("membership"))?;
    Ok(StoredMembership::new(
        opt_log_id_from_pb(m.log_id.as_ref()),
        membership_from_pb(membership),
    ))
}

/// Converts a log entry to its message (also its on-disk form).
pub fn entry_to_pb(entry: &Entry) -> raftpb::Entry {
    let payload = match &entry.payload {
        EntryPayload::Blank => raftpb::entry::Payload::Blank(raftpb::Blank {}),
        EntryPayload::Normal(batch) => raftpb::entry::Payload::Batch(batch.clone()),
        EntryPayload::Membership(m) => raftpb::entry::Payload::Membership(membership_to_pb(m)),
    };
    raftpb::Entry {
        log_id: Some(log_id_to_pb(&entry.log_id)),
        payload: Some(payload),
    }
}

/// Converts a log entry message.
pub fn entry_from_pb(entry: raftpb::Entry) -> Result<Entry, ConvertError> {
    let log_id = entry
        .log_id
        .as_ref()
        .map(log_id_from_pb)
        .ok_or(ConvertError::MissingField("entry.log_id"))?;
    let payload = match entry.payload {
        Some(raftpb::entry::Payload::Blank(_)) => EntryPayload::Blank,
        Some(raftpb::entry::Payload::Batch(batch)) => EntryPayload::Normal(batch),
        Some(raftpb::entry::Payload::Membership(m)) => {
            EntryPayload::Membership(membership_from_pb(&m))
        }
        None => return Err(ConvertError::MissingField("entry.payload")),
    };
    Ok(Entry { log_id, payload })
}

/// Converts snapshot metadata to its message.
pub fn snapshot_meta_to_pb(meta: &SnapshotMeta) -> raftpb::SnapshotMeta {
    raftpb::SnapshotMeta {
        last_log_id: opt_log_id_to_pb(meta.last_log_id.as_ref()),
        last_membership: Some(stored_membership_to_pb(&meta.last_membership)),
        snapshot_id: meta.snapshot_id.clone(),
    }
}

/// Converts a snapshot metadata message.
pub fn snapshot_meta_from_pb(meta: &raftpb::SnapshotMeta) -> Result<SnapshotMeta, ConvertError> {
    let membership = meta
        .last_membership
        .as_ref()
        .ok_or(ConvertError::MissingField("meta.last_membership"))?;
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_pb(meta.last_log_id.as_ref()),
        last_membership: stored_membership_from_pb(membership)?,
        snapshot_id: meta.snapshot_id.clone(),
    })
}

/// openraft's AppendEntries request as a message.
pub fn append_request_to_pb(
    req: &openraft::raft::AppendEntriesRequest<TypeConfig>,
) -> raftpb::AppendEntriesRequest {
    raftpb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&req.vote)),
        prev_log_id: opt_log_id_to_pb(req.prev_log_id.as_ref()),
        entries: req.entries.iter().map(entry_to_pb).collect(),
        leader_commit: opt_log_id_to_pb(req.leader_commit.as_ref()),
    }
}

/// An AppendEntries request message as openraft's type; refused unless
/// its log ids are ones a leader could send (see
/// [`ConvertError::BadLogIds`]).
pub fn append_request_from_pb(
    req: raftpb::AppendEntriesRequest,
) -> Result<openraft::raft::AppendEntriesRequest<TypeConfig>, ConvertError> {
    let request = openraft::raft::AppendEntriesRequest {
        vote: required_vote(req.vote.as_ref())?,
        prev_log_id: opt_log_id_from_pb(req.prev_log_id.as_ref()),
        entries: req
            .entries
            .into_iter()
            .map(entry_from_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_from_pb(req.leader_commit.as_ref()),
    };
    check_log_ids(&request)?;
    Ok(request)
}

/// The entries follow `prev_log_id` one index at a time, with terms that
/// never go back and never pass the sender's vote.
fn check_log_ids(
    req: &openraft::raft::AppendEntriesRequest<TypeConfig>,
) -> Result<(), ConvertError> {
    let vote_term = req.vote.leader_id.term;
    let mut previous = req.prev_log_id;
    if previous.is_some_and(|p| p.leader_id.term > vote_term) {
        return Err(ConvertError::BadLogIds(
            "prev_log_id is of a term after the vote",
        ));
    }
    for entry in &req.entries {
        let id = entry.log_id;
        let expected = match previous {
            Some(p) => p
                .index
                .checked_add(1)
                .ok_or(ConvertError::BadLogIds("log index overflow"))?,
            None => 0,
        };
        if id.index != expected {
            return Err(ConvertError::BadLogIds("entries are not consecutive"));
        }
        if previous.is_some_and(|p| id.leader_id.term < p.leader_id.term) {
            return Err(ConvertError::BadLogIds("an entry's term goes back"));
        }
        if id.leader_id.term > vote_term {
            return Err(ConvertError::BadLogIds(
                "an entry is of a term after the vote",
            ));
        }
        previous = Some(id);
    }
    Ok(())
}

/// openraft's AppendEntries response as a message.
pub fn append_response_to_pb(
    resp: &openraft::raft::AppendEntriesResponse<NodeId>,
) -> raftpb::AppendEntriesResponse {
    use openraft::raft::AppendEntriesResponse as R;
    use raftpb::append_entries_response::Result as P;
    let result = match resp {
        R::Success => P::Success(raftpb::Blank {}),
        R::PartialSuccess(matching) => P::PartialSuccess(raftpb::PartialSuccess {
            matching: opt_log_id_to_pb(matching.as_ref()),
        }),
        R::Conflict => P::Conflict(raftpb::Blank {}),
        R::HigherVote(vote) => P::HigherVote(vote_to_pb(vote)),
    };
    raftpb::AppendEntriesResponse {
        result: Some(result),
    }
}

/// An AppendEntries response message as openraft's type.
pub fn append_response_from_pb(
    resp: &raftpb::AppendEntriesResponse,
) -> Result<openraft::raft::AppendEntriesResponse<NodeId>, ConvertError> {
    use openraft::raft::AppendEntriesResponse as R;
    use raftpb::append_entries_response::Result as P;
    Ok(match &resp.result {
        Some(P::Success(_)) => R::Success,
        Some(P::PartialSuccess(p)) => R::PartialSuccess(opt_log_id_from_pb(p.matching.as_ref())),
        Some(P::Conflict(_)) => R::Conflict,
        Some(P::HigherVote(v)) => R::HigherVote(vote_from_pb(v)),
        None => return Err(ConvertError::MissingField("append_entries.result")),
    })
}

/// openraft's Vote request as a message.
pub fn vote_request_to_pb(req: &openraft::raft::VoteRequest<NodeId>) -> raftpb::VoteRequest {
    raftpb::VoteRequest {
        vote: Some(vote_to_pb(&req.vote)),
        last_log_id: opt_log_id_to_pb(req.last_log_id.as_ref()),
    }
}

/// A Vote request message as openraft's type.
pub fn vote_request_from_pb(
    req: &raftpb::VoteRequest,
) -> Result<openraft::raft::VoteRequest<NodeId>, ConvertError> {
    Ok(openraft::raft::VoteRequest {
        vote: required_vote(req.vote.as_ref())?,
        last_log_id: opt_log_id_from_pb(req.last_log_id.as_ref()),
    })
}

/// openraft's Vote response as a message.
pub fn vote_response_to_pb(resp: &openraft::raft::VoteResponse<NodeId>) -> raftpb::VoteResponse {
    raftpb::VoteResponse {
        vote: Some(vote_to_pb(&resp.vote)),
        vote_granted: resp.vote_granted,
        last_log_id: opt_log_id_to_pb(resp.last_log_id.as_ref()),
    }
}

/// A Vote response message as openraft's type.
pub fn vote_response_from_pb(
    resp: &raftpb::VoteResponse,
) -> Result<openraft::raft::VoteResponse<NodeId>, ConvertError> {
    Ok(openraft::raft::VoteResponse {
        vote: required_vote(resp.vote.as_ref())?,
        vote_granted: resp.vote_granted,
        last_log_id: opt_log_id_from_pb(resp.last_log_id.as_ref()),
    })
}

/// openraft's InstallSnapshot chunk as a message.
pub fn snapshot_request_to_pb(
    req: &openraft::raft::InstallSnapshotRequest<TypeConfig>,
) -> raftpb::InstallSnapshotRequest {
    raftpb::InstallSnapshotRequest {
        vote: Some(vote_to_pb(&req.vote)),
        meta: Some(snapshot_meta_to_pb(&req.meta)),
        offset: req.offset,
        data: req.data.clone(),
        done: req.done,
    }
}

/// An InstallSnapshot chunk message as openraft's type.
pub fn snapshot_request_from_pb(
    req: raftpb::InstallSnapshotRequest,
) -> Result<openraft::raft::InstallSnapshotRequest<TypeConfig>, ConvertError> {
    let meta = req
        .meta
        .as_ref()
        .ok_or(ConvertError::MissingField("install_snapshot.meta"))?;
    Ok(openraft::raft::InstallSnapshotRequest {
        vote: required_vote(req.vote.as_ref())?,
        meta: snapshot_meta_from_pb(meta)?,
        offset: req.offset,
        data: req.data,
        done: req.done,
    })
}

/// Converts a snapshot segment id to its message.
pub fn segment_to_pb(s: &openraft::SnapshotSegmentId) -> raftpb::SnapshotSegmentId {
    raftpb::SnapshotSegmentId {
        id: s.id.clone(),
        offset: s.offset,
    }
}

/// Converts a snapshot segment id message.
pub fn segment_from_pb(s: &raftpb::SnapshotSegmentId) -> openraft::SnapshotSegmentId {
    openraft::SnapshotSegmentId {
        id: s.id.clone(),
        offset: s.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership() -> Membership {
        let node = |name: &str| raftpb::Node {
            name: name.to_string(),
            peer_urls: vec![format!("http://{name}:2380")],
            client_urls: vec![format!("http://{name}:2379")],
            pending_voter: name == "d",
        };
        Membership::new(
            vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])],
            BTreeMap::from([
                (1, node("a")),
                (2, node("b")),
                (3, node("c")),
                (4, node("d")),
            ]),
        )
    }

    #[test]
    fn entries_round_trip() {
        let log_id = LogId::new(CommittedLeaderId::new(7, 2), 42);
        let batch = raftpb::CommandBatch {
            commands: vec![raftpb::Command {
                op: Some(raftpb::command::Op::Put(
                    witan_proto::etcdserverpb::PutRequest {
                        key: b"k".to_vec(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }],
        };
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(batch),
            EntryPayload::Membership(membership()),
        ] {
            let entry = Entry { log_id, payload };
            let back = entry_from_pb(entry_to_pb(&entry)).expect("round trip");
            assert_eq!(back.log_id, entry.log_id);
            assert_eq!(
                format!("{:?}", back.payload),
                format!("{:?}", entry.payload)
            );
        }
    }

    #[test]
    fn membership_keeps_joint_config_and_learners() {
        let m = membership();
        let back = membership_from_pb(&membership_to_pb(&m));
        assert_eq!(back, m);
    }

    #[test]
    fn missing_fields_are_errors() {
        assert_eq!(
            entry_from_pb(raftpb::Entry::default()).unwrap_err(),
            ConvertError::MissingField("entry.log_id")
        );
        let no_payload = raftpb::Entry {
            log_id: Some(raftpb::LogId::default()),
            payload: None,
        };
        assert_eq!(
            entry_from_pb(no_payload).unwrap_err(),
            ConvertError::MissingField("entry.payload")
        );
        assert!(vote_request_from_pb(&raftpb::VoteRequest::default()).is_err());
    }
}
