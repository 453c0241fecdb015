//! A hostile peer against a real member's transport service: AppendEntries
//! messages with log ids no leader could send (random terms and indexes
//! with a gap, a repeat or a term going back, some with a vote far in the
//! future) are refused, and change nothing: the member keeps its term, its
//! log, its data and its leadership.

use std::time::Duration;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use witan_proto::raftpb::{self, raft_transport_client::RaftTransportClient};
use witan_tests::{Cluster, ClusterOptions};

const NODE: &str = env!("CARGO_BIN_EXE_witan-test-node");
const HOSTILE_REQUESTS: usize = 300;

fn entry(term: u64, index: u64) -> raftpb::Entry {
    raftpb::Entry {
        log_id: Some(raftpb::LogId {
            term,
            node_id: 7,
            index,
        }),
        payload: Some(raftpb::entry::Payload::Batch(raftpb::CommandBatch {
            commands: vec![raftpb::Command {
                op: Some(raftpb::command::Op::Put(
                    witan_proto::etcdserverpb::PutRequest {
                        key: b"k".to_vec(),
                        value: b"hostile".to_vec(),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }],
        })),
    }
}

/// A random AppendEntries whose entries break the log-id rule somewhere.
fn hostile(rng: &mut impl Rng) -> raftpb::AppendEntriesRequest {
    let term = rng.gen_range(0..1_000_000u64);
    let prev_index = rng.gen_range(0..1000u64);
    let prev_term = rng.gen_range(0..=term);
    let mut entries: Vec<raftpb::Entry> = (0..rng.gen_range(1..5u64))
        .map(|i| entry(prev_term, prev_index + 1 + i))
        .collect();
    let at = rng.gen_range(0..entries.len());
    let broken = match rng.gen_range(0..3) {
        // A gap.
        0 => entry(
            prev_term,
            prev_index + 1 + at as u64 + rng.gen_range(1..100u64),
        ),
        // An index going back.
        1 => entry(
            prev_term,
            prev_index.saturating_sub(rng.gen_range(0..10u64)),
        ),
        // A term past the vote.
        _ => entry(
            term + 1 + rng.gen_range(0..100u64),
            prev_index + 1 + at as u64,
        ),
    };
    if let Some(slot) = entries.get_mut(at) {
        *slot = broken;
    }
    raftpb::AppendEntriesRequest {
        vote: Some(raftpb::Vote {
            term,
            node_id: 7,
            committed: true,
        }),
        prev_log_id: Some(raftpb::LogId {
            term: prev_term,
            node_id: 7,
            index: prev_index,
        }),
        entries,
        leader_commit: Some(raftpb::LogId {
            term: prev_term,
            node_id: 7,
            index: prev_index + 4,
        }),
    }
}

#[tokio::test]
async fn hostile_append_entries_are_refused_and_change_nothing() -> Result<()> {
    let cluster = Cluster::start(
        NODE,
        ClusterOptions {
            size: 1,
            ..ClusterOptions::default()
        },
    )
    .await?;
    cluster.wait_all_ready(Duration::from_secs(10)).await?;
    let mut c = cluster.client(0).await?;
    let written = c.put("k", "v", None).await?;
    let revision = written.header().context("no header")?.revision();
    let before = c.status().await?;

    let mut peer = RaftTransportClient::connect(cluster.peer_url(0)).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for i in 0..HOSTILE_REQUESTS {
        let request = hostile(&mut rng);
        let refused = peer.append_entries(request.clone()).await;
        let status = refused
            .err()
            .with_context(|| format!("hostile request {i} accepted: {request:?}"))?;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    eprintln!("fuzz peer transport: {HOSTILE_REQUESTS} hostile AppendEntries executed");

    let after = c.status().await?;
    assert_eq!(after.raft_term(), before.raft_term());
    // The leader's own lease-clock ticks go on appending; nothing hostile
    // was appended (the revision did not move) and nothing was truncated.
    assert!(after.raft_index() >= before.raft_index());
    let now = c.get("k", None).await?;
    assert_eq!(now.header().context("no header")?.revision(), revision);
    assert_eq!(after.leader(), before.leader());
    assert_eq!(cluster.local_get(0, "k").await?, Some(b"v".to_vec()));
    // Still the leader, still writable.
    c.put("k", "v2", None).await?;
    assert_eq!(cluster.local_get(0, "k").await?, Some(b"v2".to_vec()));
    Ok(())
}
