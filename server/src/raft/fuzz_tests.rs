//! Fuzz targets of the peer transport's decoder: arbitrary bytes decoded as
//! every `witan.raft.v1` request (and as a raft log entry, the log's disk
//! format) and converted to openraft's types give errors, never panics; and
//! AppendEntries with arbitrary log ids is accepted exactly when a leader
//! could have sent it.

use proptest::prelude::*;
use prost::Message;
use witan_proto::raftpb;

use super::convert::{self, ConvertError};
use crate::fuzzing;

fn decode_and_convert(bytes: &[u8]) {
    if let Ok(req) = raftpb::AppendEntriesRequest::decode(bytes) {
        let _ = convert::append_request_from_pb(req);
    }
    if let Ok(req) = raftpb::VoteRequest::decode(bytes) {
        let _ = convert::vote_request_from_pb(&req);
    }
    if let Ok(req) = raftpb::InstallSnapshotRequest::decode(bytes) {
        let _ = convert::snapshot_request_from_pb(req);
    }
    if let Ok(entry) = raftpb::Entry::decode(bytes) {
        let _ = convert::entry_from_pb(entry);
    }
    if let Ok(m) = raftpb::StoredMembership::decode(bytes) {
        let _ = convert::stored_membership_from_pb(&m);
    }
    // Decoded only: their handlers read the fields directly.
    let _ = raftpb::ForwardRequest::decode(bytes);
    let _ = raftpb::TimeoutNowRequest::decode(bytes);
    let _ = raftpb::ChangeMembersRequest::decode(bytes);
    let _ = raftpb::ReadIndexRequest::decode(bytes);
    let _ = raftpb::MembersRequest::decode(bytes);
}

#[test]
fn arbitrary_bytes_as_every_peer_message() {
    fuzzing::run(
        "peer decoder, arbitrary bytes",
        2048,
        prop::collection::vec(any::<u8>(), 0..512),
        |bytes| {
            decode_and_convert(&bytes);
            Ok(())
        },
    );
}

/// Well-formed AppendEntries messages with one field mutated: decoding
/// reaches deeper than with random bytes.
#[test]
fn mutated_append_entries() {
    let strategy = (append_entries(), any::<prop::sample::Index>(), any::<u8>());
    fuzzing::run(
        "peer decoder, mutated AppendEntries",
        2048,
        strategy,
        |(req, at, byte)| {
            let mut bytes = req.encode_to_vec();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b = byte;
                }
            }
            decode_and_convert(&bytes);
            Ok(())
        },
    );
}

fn log_id() -> impl Strategy<Value = raftpb::LogId> {
    (0u64..4, 0u64..3, 0u64..6).prop_map(|(term, node_id, index)| raftpb::LogId {
        term,
        node_id,
        index,
    })
}

fn append_entries() -> impl Strategy<Value = raftpb::AppendEntriesRequest> {
    let entry = (log_id(), any::<bool>()).prop_map(|(id, blank)| raftpb::Entry {
        log_id: Some(id),
        payload: Some(if blank {
            raftpb::entry::Payload::Blank(raftpb::Blank {})
        } else {
            raftpb::entry::Payload::Batch(raftpb::CommandBatch::default())
        }),
    });
    (
        0u64..4,
        prop::option::of(log_id()),
        prop::collection::vec(entry, 0..4),
        prop::option::of(log_id()),
    )
        .prop_map(
            |(term, prev_log_id, entries, leader_commit)| raftpb::AppendEntriesRequest {
                vote: Some(raftpb::Vote {
                    term,
                    node_id: 1,
                    committed: true,
                }),
                prev_log_id,
                entries,
                leader_commit,
            },
        )
}

/// What a leader could send: consecutive indexes after `prev_log_id`,
/// terms never going back, none past the vote's.
fn well_formed(req: &raftpb::AppendEntriesRequest) -> bool {
    let vote = req.vote.as_ref().map_or(0, |v| v.term);
    let mut prev = req.prev_log_id;
    if prev.as_ref().is_some_and(|p| p.term > vote) {
        return false;
    }
    for e in &req.entries {
        let Some(id) = e.log_id else {
            return false;
        };
        let expected = prev.as_ref().map_or(0, |p| p.index + 1);
        let term_ok = prev.as_ref().is_none_or(|p| id.term >= p.term) && id.term <= vote;
        if id.index != expected || !term_ok {
            return false;
        }
        prev = Some(id);
    }
    true
}

#[test]
fn append_entries_is_accepted_exactly_when_well_formed() {
    fuzzing::run(
        "peer AppendEntries log ids",
        2048,
        append_entries(),
        |req| {
            let expected = well_formed(&req);
            match convert::append_request_from_pb(req.clone()) {
                Ok(_) => prop_assert!(expected, "accepted {req:?}"),
                Err(ConvertError::BadLogIds(_)) => prop_assert!(!expected, "refused {req:?}"),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
            Ok(())
        },
    );
}

#[test]
fn bogus_log_ids_are_refused() {
    let entry = |term, index| raftpb::Entry {
        log_id: Some(raftpb::LogId {
            term,
            node_id: 1,
            index,
        }),
        payload: Some(raftpb::entry::Payload::Blank(raftpb::Blank {})),
    };
    let request = |prev: Option<(u64, u64)>, entries| raftpb::AppendEntriesRequest {
        vote: Some(raftpb::Vote {
            term: 3,
            node_id: 1,
            committed: true,
        }),
        prev_log_id: prev.map(|(term, index)| raftpb::LogId {
            term,
            node_id: 1,
            index,
        }),
        entries,
        leader_commit: None,
    };
    let refused = |req| {
        matches!(
            convert::append_request_from_pb(req),
            Err(ConvertError::BadLogIds(_))
        )
    };
    // A gap, a repeat, a term going back, a term past the vote, an
    // overflowing index.
    assert!(refused(request(Some((1, 4)), vec![entry(1, 6)])));
    assert!(refused(request(
        Some((1, 4)),
        vec![entry(1, 5), entry(1, 5)]
    )));
    assert!(refused(request(Some((2, 4)), vec![entry(1, 5)])));
    assert!(refused(request(Some((1, 4)), vec![entry(4, 5)])));
    assert!(refused(request(Some((4, 4)), vec![])));
    assert!(refused(request(Some((1, u64::MAX)), vec![entry(1, 0)])));
    // What a leader sends passes.
    assert!(convert::append_request_from_pb(request(None, vec![entry(0, 0), entry(1, 1)])).is_ok());
    assert!(convert::append_request_from_pb(request(Some((1, 4)), vec![])).is_ok());
}
