use std::collections::{BTreeMap, BTreeSet};

use futures::FutureExt;
use openraft::testing::log_id;
use openraft::RaftSnapshotBuilder;
use sqlx::Row;
use witan_proto::etcdserverpb::{RangeRequest, RangeResponse};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Outcome;
use witan_proto::raftpb::{Command, CommandBatch, CommandResponse};

use super::*;
use crate::mvcc::testing::{compact, delete, put};
use crate::mvcc::MvccError;
use crate::raft::Membership;

fn normal(index: u64, commands: Vec<Command>) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Normal(CommandBatch { commands }),
    }
}

fn blank(index: u64) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Blank,
    }
}

fn membership(index: u64, voters: &[u64]) -> Entry {
    Entry {
        log_id: log_id(1, 1, index),
        payload: EntryPayload::Membership(Membership::new(
            vec![voters.iter().copied().collect::<BTreeSet<_>>()],
            BTreeMap::new(),
        )),
    }
}

fn revision_of(resp: &CommandResponse) -> i64 {
    match &resp.result {
        Some(Outcome::Put(r)) => r.header.as_ref().map_or(-1, |h| h.revision),
        Some(Outcome::DeleteRange(r)) => r.header.as_ref().map_or(-1, |h| h.revision),
        Some(Outcome::Compact(r)) => r.header.as_ref().map_or(-1, |h| h.revision),
        other => panic!("unexpected response {other:?}"),
    }
}

async fn open(dir: &Path) -> StateMachineStore {
    StateMachineStore::open(dir).await.unwrap()
}

/// Reads `key` (or `[key, end)`) at `revision` the way the API will.
async fn range(
    reader: &StateReader,
    key: &str,
    end: &str,
    revision: i64,
) -> Result<RangeResponse, MvccError> {
    let req = RangeRequest {
        key: key.into(),
        range_end: end.into(),
        revision,
        ..Default::default()
    };
    reader.current().kv.range(&req, reader.history()).await
}

/// Waits until `state.db` holds everything the reader's state includes.
async fn persisted(reader: &StateReader) {
    let revision = reader.current().kv.revision();
    reader.history().persisted_through(revision).await.unwrap();
}

fn values(resp: &RangeResponse) -> Vec<String> {
    resp.kvs
        .iter()
        .map(|kv| {
            format!(
                "{}={}",
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value)
            )
        })
        .collect()
}

async fn history_rows(reader: &StateReader) -> Vec<(i64, i64, Vec<u8>, Vec<u8>)> {
    persisted(reader).await;
    sqlx::query("SELECT revision, sub, key, value FROM history ORDER BY revision, sub")
        .fetch_all(reader.history().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn blank_and_membership_entries_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    assert_eq!(sm.applied_state().await.unwrap().0, None);
    let responses = sm
        .apply([blank(1), membership(2, &[1, 2, 3]), blank(3)])
        .await
        .unwrap();
    assert_eq!(responses, vec![EntryResponse::default(); 3]);
    let (applied, members) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 1, 3)));
    assert_eq!(members.log_id(), &Some(log_id(1, 1, 2)));
    assert_eq!(
        members.membership().get_joint_config(),
        &vec![BTreeSet::from([1, 2, 3])]
    );
    sm.close().await.unwrap();

    let mut sm = open(dir.path()).await;
    assert_eq!(sm.applied_state().await.unwrap(), (applied, members));
    assert_eq!(sm.reader().current().last_applied, applied);
}

#[tokio::test]
async fn command_batches_apply_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    let reader = sm.reader();
    let responses = sm
        .apply([
            normal(1, vec![put("a", "1"), put("b", "1")]),
            blank(2),
            normal(
                3,
                vec![
                    put("a", "2"),
                    delete("b", "", false),
                    delete("nothing", "", false),
                ],
            ),
        ])
        .await
        .unwrap();
    let revisions: Vec<Vec<i64>> = responses
        .iter()
        .map(|r| r.0.iter().map(revision_of).collect())
        .collect();
    // Every command that changes something takes the next revision.
    assert_eq!(revisions, vec![vec![2, 3], vec![], vec![4, 5, 5]]);

    let state = reader.current();
    assert_eq!(state.last_applied, Some(log_id(1, 1, 3)));
    assert_eq!(state.kv.revision(), 5);
    assert_eq!(
        values(&range(&reader, "a", "\0", 0).await.unwrap()),
        vec!["a=2"]
    );
    assert_eq!(
        values(&range(&reader, "a", "\0", 3).await.unwrap()),
        vec!["a=1", "b=1"]
    );
    let before = history_rows(&reader).await;
    let kv_before = state.kv.clone();
    drop(state);
    sm.close().await.unwrap();

    let sm = open(dir.path()).await;
    let reader = sm.reader();
    assert_eq!(reader.current().kv, kv_before, "same keys, same revision");
    assert_eq!(history_rows(&reader).await, before);
    assert_eq!(
        values(&range(&reader, "a", "\0", 3).await.unwrap()),
        vec!["a=1", "b=1"]
    );
}

#[tokio::test]
async fn compaction_removes_history_but_keeps_later_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    let reader = sm.reader();
    // Revisions 2..=7; compaction at 5 in the same apply call.
    sm.apply([
        normal(1, vec![put("a", "1"), put("b", "1"), put("c", "1")]),
        normal(
            2,
            vec![put("a", "2"), delete("c", "", false), put("b", "2")],
        ),
        normal(3, vec![compact(5)]),
    ])
    .await
    .unwrap();
    assert_eq!(reader.current().kv.compact_revision(), 5);
    assert!(matches!(
        range(&reader, "a", "\0", 4).await,
        Err(MvccError::Compacted)
    ));
    assert_eq!(
        values(&range(&reader, "a", "\0", 5).await.unwrap()),
        vec!["a=2", "b=1", "c=1"]
    );
    assert_eq!(
        values(&range(&reader, "a", "\0", 7).await.unwrap()),
        vec!["a=2", "b=2"]
    );
    // Only a@2 is gone: superseded by a@5. c@4 is still c's value at 5.
    let rows: Vec<(i64, Vec<u8>)> = history_rows(&reader)
        .await
        .into_iter()
        .map(|(rev, _, key, _)| (rev, key))
        .collect();
    assert_eq!(
        rows,
        vec![
            (3, b"b".to_vec()),
            (4, b"c".to_vec()),
            (5, b"a".to_vec()),
            (6, b"c".to_vec()),
            (7, b"b".to_vec())
        ]
    );
    sm.close().await.unwrap();

    let sm = open(dir.path()).await;
    let reader = sm.reader();
    assert_eq!(reader.current().kv.compact_revision(), 5);
    assert_eq!(
        values(&range(&reader, "a", "\0", 5).await.unwrap()),
        vec!["a=2", "b=1", "c=1"]
    );
}

async fn populate(sm: &mut StateMachineStore) {
    sm.apply([
        membership(1, &[1]),
        normal(2, vec![put("x", "1"), put("y", "1")]),
        normal(3, vec![put("x", "2"), delete("y", "", false), compact(3)]),
        normal(4, vec![put("z", "1")]),
    ])
    .await
    .unwrap();
}

#[tokio::test]
async fn snapshot_installs_identically_into_a_fresh_store() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path()).await;
    populate(&mut leader).await;
    let built = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 1, 4)));
    let mut current = leader.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);

    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = open(follower_dir.path()).await;
    let mut receiving = follower.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut current.snapshot, &mut *receiving)
        .await
        .unwrap();
    follower
        .install_snapshot(&current.meta, receiving)
        .await
        .unwrap();

    assert_eq!(
        follower.applied_state().await.unwrap(),
        leader.applied_state().await.unwrap()
    );
    let (l, f) = (leader.reader(), follower.reader());
    assert_eq!(f.current().kv, l.current().kv);
    assert_eq!(f.current().last_applied, Some(log_id(1, 1, 4)));
    assert_eq!(history_rows(&f).await, history_rows(&l).await);
    assert_eq!(
        values(&range(&f, "a", "\0", 3).await.unwrap()),
        values(&range(&l, "a", "\0", 3).await.unwrap())
    );
    assert_eq!(
        follower.get_current_snapshot().await.unwrap().unwrap().meta,
        built.meta
    );
    follower.close().await.unwrap();

    // The follower keeps the installed state across a restart.
    let follower = open(follower_dir.path()).await;
    assert_eq!(follower.reader().current().kv, l.current().kv);
}

#[tokio::test]
async fn a_snapshot_that_does_not_match_its_metadata_is_refused() {
    let leader_dir = tempfile::tempdir().unwrap();
    let mut leader = open(leader_dir.path()).await;
    populate(&mut leader).await;
    let mut snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();

    let follower_dir = tempfile::tempdir().unwrap();
    let mut follower = open(follower_dir.path()).await;
    let mut receiving = follower.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut snapshot.snapshot, &mut *receiving)
        .await
        .unwrap();
    let mut meta = snapshot.meta.clone();
    meta.last_log_id = Some(log_id(1, 1, 9));
    assert!(follower.install_snapshot(&meta, receiving).await.is_err());
    assert!(follower.get_current_snapshot().await.unwrap().is_none());
    assert_eq!(follower.applied_state().await.unwrap().0, None);
}

/// After a power loss `state.db` may have lost its last commits while the
/// snapshot (fsynced) is newer; the log entries it covers may be purged, so
/// opening must install the snapshot.
#[tokio::test]
async fn recovers_from_a_snapshot_ahead_of_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let old_copy = dir.path().join("old-state.db");
    let mut sm = open(dir.path()).await;
    sm.apply([normal(1, vec![put("a", "1")])]).await.unwrap();
    persisted(&sm.reader()).await;
    sqlx::query("VACUUM INTO ?")
        .bind(old_copy.to_str().unwrap())
        .execute(sm.reader().history().pool())
        .await
        .unwrap();
    sm.apply([normal(2, vec![put("a", "2"), put("b", "1")])])
        .await
        .unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let expected = sm.reader().current().kv.clone();
    sm.close().await.unwrap();

    // Lose the writes after the copy.
    let state = dir.path().join(STATE_FILE);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("{STATE_FILE}{suffix}")));
    }
    std::fs::copy(&old_copy, &state).unwrap();
    let mut behind = StateDb::open(&state).await.unwrap();
    assert_eq!(
        behind.load_meta().await.unwrap().last_applied,
        Some(log_id(1, 1, 1))
    );
    behind.close().await.unwrap();

    let mut sm = open(dir.path()).await;
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 1, 2)));
    assert_eq!(sm.reader().current().kv, expected);
}

#[tokio::test]
async fn readers_wait_for_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    let reader = sm.reader();
    let waiting = reader.wait_applied(2);
    tokio::pin!(waiting);
    assert!((&mut waiting).now_or_never().is_none());
    sm.apply([blank(1)]).await.unwrap();
    assert!((&mut waiting).now_or_never().is_none());
    sm.apply([normal(2, vec![put("k", "v")])]).await.unwrap();
    let state = waiting.await.unwrap();
    assert_eq!(state.last_applied, Some(log_id(1, 1, 2)));
    assert!(state.kv.get(b"k").is_some());

    let later = reader.wait_applied(10);
    drop(sm);
    assert!(later.await.is_err(), "the store is gone");
}

#[tokio::test]
async fn the_change_feed_carries_every_apply_in_order_and_marks_jumps() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    let mut feed = sm.reader().changes();
    populate(&mut sm).await;

    let first = feed.recv().await.unwrap();
    assert_eq!((first.prev_revision, first.revision), (1, 6));
    let changes: Vec<(i64, &[u8], bool)> = first
        .changes
        .iter()
        .map(|c| (c.kv.mod_revision, c.kv.key.as_slice(), c.deleted))
        .collect();
    assert_eq!(
        changes,
        [
            (2, &b"x"[..], false),
            (3, b"y", false),
            (4, b"x", false),
            (5, b"y", true),
            (6, b"z", false)
        ]
    );
    assert!(feed.try_recv().is_err(), "one message per apply call");

    // A snapshot install is announced as a jump with no changes.
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = open(other_dir.path()).await;
    let mut jumps = other.reader().changes();
    let mut data = sm.get_current_snapshot().await.unwrap().unwrap().snapshot;
    let mut receiving = other.begin_receiving_snapshot().await.unwrap();
    tokio::io::copy(&mut data, &mut *receiving).await.unwrap();
    other
        .install_snapshot(&built.meta, receiving)
        .await
        .unwrap();
    let jump = jumps.recv().await.unwrap();
    assert_eq!(
        (jump.prev_revision, jump.revision),
        (1, sm.reader().current().kv.revision())
    );
    assert!(jump.changes.is_empty());
}

#[tokio::test]
async fn leases_and_the_lease_clock_survive_a_reopen() {
    use witan_proto::etcdserverpb::LeaseGrantRequest;
    use witan_proto::raftpb::LeaseTick;
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path()).await;
    let grant = Command {
        op: Some(Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 9 })),
        ..Default::default()
    };
    let tick = Command {
        op: Some(Op::LeaseTick(LeaseTick { elapsed_ms: 1_234 })),
        ..Default::default()
    };
    let mut leased = put("held", "v");
    if let Some(Op::Put(p)) = &mut leased.op {
        p.lease = 9;
    }
    sm.apply([normal(1, vec![grant, leased]), normal(2, vec![tick])])
        .await
        .unwrap();
    let before = sm.reader().current().kv.clone();
    assert_eq!(before.leases().clock_ms(), 1_234);
    sm.close().await.unwrap();

    let sm = open(dir.path()).await;
    let after = sm.reader().current().kv.clone();
    assert_eq!(after.leases(), before.leases());
    let info = after.leases().info(9).unwrap();
    assert_eq!((info.ttl, info.remaining_ms), (30, 30_000));
    assert_eq!(info.keys, [b"held".to_vec()]);
}
