use openraft::testing::log_id;

use super::*;

fn meta(index: u64, id: &str) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(log_id(1, 1, index)),
        last_membership: Default::default(),
        snapshot_id: id.to_string(),
    }
}

async fn data_file(store: &SnapshotStore, content: &[u8]) -> PathBuf {
    let path = store.temp_path("test");
    tokio::fs::write(&path, content).await.unwrap();
    path
}

async fn names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await.unwrap();
    while let Some(e) = entries.next_entry().await.unwrap() {
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    names
}

async fn read_current(store: &SnapshotStore) -> (SnapshotMeta, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut snap = store.lock().await.open_current().await.unwrap().unwrap();
    let mut buf = Vec::new();
    snap.snapshot.read_to_end(&mut buf).await.unwrap();
    (snap.meta, buf)
}

#[tokio::test]
async fn publish_replaces_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).await.unwrap();
    assert!(store.lock().await.open_current().await.unwrap().is_none());

    let first = data_file(&store, b"one").await;
    store
        .lock()
        .await
        .publish(first, meta(5, "s5"), false)
        .await
        .unwrap()
        .unwrap();
    let second = data_file(&store, b"two").await;
    store
        .lock()
        .await
        .publish(second, meta(9, "s9"), false)
        .await
        .unwrap()
        .unwrap();
    // Not newer: dropped, and its file removed.
    let stale = data_file(&store, b"old").await;
    let dropped = store
        .lock()
        .await
        .publish(stale.clone(), meta(7, "s7"), false)
        .await
        .unwrap();
    assert!(dropped.is_none());
    assert!(!stale.exists());

    assert_eq!(read_current(&store).await, (meta(9, "s9"), b"two".to_vec()));
    assert_eq!(
        names(dir.path()).await.len(),
        2,
        "one data file and one meta file"
    );

    // Leftovers of interrupted work are removed on open.
    tokio::fs::write(dir.path().join("build-x.tmp"), b"partial")
        .await
        .unwrap();
    tokio::fs::write(dir.path().join("snapshot-orphan.db"), b"no meta")
        .await
        .unwrap();
    drop(store);
    let store = SnapshotStore::open(dir.path()).await.unwrap();
    assert_eq!(read_current(&store).await, (meta(9, "s9"), b"two".to_vec()));
    let left = names(dir.path()).await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|n| n.starts_with(PREFIX)), "{left:?}");
}

#[tokio::test]
async fn forced_publish_installs_an_older_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).await.unwrap();
    let a = data_file(&store, b"a").await;
    store
        .lock()
        .await
        .publish(a, meta(9, "a"), false)
        .await
        .unwrap();
    let b = data_file(&store, b"b").await;
    store
        .lock()
        .await
        .publish(b, meta(3, "b"), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_current(&store).await.0, meta(3, "b"));
}

#[tokio::test]
async fn received_files_are_kept_in_place_or_copied() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).await.unwrap();
    let mut snapshots = store.lock().await;

    let _abandoned = snapshots.begin_receiving().await.unwrap();
    let mut file = snapshots.begin_receiving().await.unwrap();
    file.write_all(b"streamed").await.unwrap();
    let path = snapshots.take_received(file).await.unwrap();
    assert_eq!(tokio::fs::read(&path).await.unwrap(), b"streamed");
    assert_eq!(
        names(dir.path()).await.len(),
        1,
        "the abandoned receive file is removed"
    );

    // A handle that is not one of ours (openraft's test suite hands over
    // the leader's snapshot file) is copied.
    let other = dir.path().join("elsewhere");
    tokio::fs::write(&other, b"foreign").await.unwrap();
    let mut handle = tokio::fs::File::open(&other).await.unwrap();
    tokio::io::AsyncReadExt::read_u8(&mut handle).await.unwrap();
    let copied = snapshots.take_received(handle).await.unwrap();
    assert_ne!(copied, other);
    assert_eq!(tokio::fs::read(&copied).await.unwrap(), b"foreign");
}
