use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::testing::log_id;
use openraft::{EntryPayload, RaftLogReader};
use witan_proto::raftpb;

use super::*;
use crate::raft::convert::entry_to_pb;
use crate::storage::log_reader::LIMITED_READ_BYTES;

fn entry(term: u64, index: u64) -> Entry {
    let batch = raftpb::CommandBatch {
        commands: vec![raftpb::Command {
            op: Some(raftpb::command::Op::Put(
                witan_proto::etcdserverpb::PutRequest {
                    key: format!("key-{index}").into_bytes(),
                    value: vec![b'v'; 100],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }],
    };
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(batch),
    }
}

fn pbs(entries: &[Entry]) -> Vec<raftpb::Entry> {
    entries.iter().map(entry_to_pb).collect()
}

fn small_cache() -> CacheLimits {
    CacheLimits {
        entries: 4,
        bytes: 1 << 20,
    }
}

async fn open(dir: &tempfile::TempDir, limits: CacheLimits) -> LogStore {
    LogStore::open(&dir.path().join("raft-log.db"), limits)
        .await
        .unwrap()
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(3, 2);
    let written: Vec<Entry> = (0..10).map(|i| entry(1 + i / 5, i)).collect();
    {
        let mut store = open(&dir, CacheLimits::default()).await;
        assert_eq!(store.read_vote().await.unwrap(), None);
        assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
        store.blocking_append(written.clone()).await.unwrap();
        store.save_vote(&vote).await.unwrap();
        store.save_committed(Some(log_id(2, 1, 7))).await.unwrap();
        store.truncate(log_id(2, 1, 8)).await.unwrap();
        store.purge(log_id(1, 1, 2)).await.unwrap();
        store.sync().await.unwrap();
    }
    let mut store = open(&dir, CacheLimits::default()).await;
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 1, 7)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 7)));
    let read = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(pbs(&read), pbs(&written[3..8]));
}

/// The committed id rides along with other writes; on its own it is still
/// written when the store closes.
#[tokio::test]
async fn committed_id_alone_is_saved_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, CacheLimits::default()).await;
    store
        .blocking_append((0..3).map(|i| entry(1, i)))
        .await
        .unwrap();
    store.save_committed(Some(log_id(1, 1, 2))).await.unwrap();
    store.close().await.unwrap();
    let mut store = open(&dir, CacheLimits::default()).await;
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 1, 2)));
}

#[tokio::test]
async fn purge_past_the_end_keeps_the_purged_id_as_last() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(&dir, CacheLimits::default()).await;
        store
            .blocking_append((0..3).map(|i| entry(1, i)))
            .await
            .unwrap();
        // As after installing a snapshot that is ahead of the log.
        store.purge(log_id(2, 1, 9)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 9)));
        store.sync().await.unwrap();
    }
    let mut store = open(&dir, CacheLimits::default()).await;
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(2, 1, 9)));
    assert_eq!(state.last_log_id, Some(log_id(2, 1, 9)));
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    // Purged entries are already applied and in a snapshot: appending
    // them again writes nothing.
    store
        .blocking_append([entry(2, 8), entry(2, 9), entry(2, 10)])
        .await
        .unwrap();
    let read = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(pbs(&read), pbs(&[entry(2, 10)]));
}

#[tokio::test]
async fn appends_must_continue_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, CacheLimits::default()).await;
    store.blocking_append([entry(1, 0)]).await.unwrap();
    assert!(store.blocking_append([entry(1, 2)]).await.is_err());
}

#[tokio::test]
async fn truncating_everything_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, small_cache()).await;
    store
        .blocking_append((1..10).map(|i| entry(1, i)))
        .await
        .unwrap();
    store.truncate(log_id(1, 1, 1)).await.unwrap();
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    store.blocking_append([entry(2, 1)]).await.unwrap();
    store.sync().await.unwrap();
    drop(store);
    let mut store = open(&dir, small_cache()).await;
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 1, 1))
    );
}

/// The tail cache, the disk and a plain model agree on every range after
/// appends, truncates and purges (with a cache small enough to evict).
#[tokio::test]
async fn cache_and_disk_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: Vec<Entry> = Vec::new();
    let mut store = open(&dir, small_cache()).await;
    let mut reader = store.get_log_reader().await;

    let batch: Vec<Entry> = (0..20).map(|i| entry(1, i)).collect();
    model.extend(batch.clone());
    store.blocking_append(batch).await.unwrap();

    // Truncate below the cache (the new last entry is on disk) ...
    store.truncate(log_id(1, 1, 12)).await.unwrap();
    model.truncate(12);
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(1, 1, 11))
    );
    // ... append a new term ...
    let batch: Vec<Entry> = (12..18).map(|i| entry(2, i)).collect();
    model.extend(batch.clone());
    store.blocking_append(batch).await.unwrap();
    // ... truncate inside the cache, then purge the front.
    store.truncate(log_id(2, 1, 16)).await.unwrap();
    model.truncate(16);
    let batch: Vec<Entry> = (16..25).map(|i| entry(3, i)).collect();
    model.extend(batch.clone());
    store.blocking_append(batch).await.unwrap();
    store.purge(log_id(1, 1, 4)).await.unwrap();
    model.drain(..5);

    let check = |read: Vec<Entry>, lo: u64, hi: u64| {
        let want: Vec<&Entry> = model
            .iter()
            .filter(|e| e.log_id.index >= lo && e.log_id.index < hi)
            .collect();
        let want: Vec<raftpb::Entry> = want.into_iter().map(entry_to_pb).collect();
        assert_eq!(pbs(&read), want, "range {lo}..{hi}");
    };
    for lo in 0..26 {
        for hi in lo..27 {
            check(reader.try_get_log_entries(lo..hi).await.unwrap(), lo, hi);
        }
    }
    store.sync().await.unwrap();
    drop(reader);
    drop(store);

    // Everything from disk now.
    let mut store = open(&dir, small_cache()).await;
    for lo in 0..26 {
        check(store.try_get_log_entries(lo..).await.unwrap(), lo, 100);
    }
}

#[tokio::test]
async fn limited_reads_return_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, small_cache()).await;
    let big = |index: u64| {
        let mut e = entry(1, index);
        if let EntryPayload::Normal(batch) = &mut e.payload {
            if let Some(raftpb::command::Op::Put(put)) = &mut batch.commands[0].op {
                put.value = vec![0; LIMITED_READ_BYTES / 2 + 1];
            }
        }
        e
    };
    store.blocking_append((0..8).map(big)).await.unwrap();
    let mut reader = store.get_log_reader().await;
    // Disk part (evicted) and cached part.
    for start in [0, 6] {
        let read = reader.limited_get_log_entries(start, 8).await.unwrap();
        assert_eq!(read.len(), 1, "from {start}");
        assert_eq!(read[0].log_id.index, start);
    }
}
