use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::testing::log_id;
use openraft::RaftSnapshotBuilder;
use sqlx::Row;

use super::*;
use crate::raft::Membership;
use crate::storage::history::tests::{del, put};
use crate::storage::snapshot::SnapshotStore;
use crate::storage::snapshot_builder::SnapshotBuilder;

fn membership() -> StoredMembership {
    StoredMembership::new(
        Some(log_id(1, 1, 1)),
        Membership::new(vec![BTreeSet::from([1, 2, 3])], BTreeMap::new()),
    )
}

async fn history_rows(db: &mut StateDb) -> Vec<(i64, i64, Vec<u8>, Vec<u8>, bool)> {
    sqlx::query("SELECT revision, sub, key, value, deleted FROM history ORDER BY revision, sub")
        .fetch_all(&mut db.conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

async fn populated(dir: &Path) -> StateDb {
    let mut db = StateDb::open(&dir.join("state.db")).await.unwrap();
    let changes = [
        put("a", 2, 0, 2, 1, "x"),
        put("b", 3, 0, 3, 1, "y"),
        del("a", 4, 0),
    ];
    db.write(&[AppliedBatch {
        changes: Arc::new(AppliedChanges {
            prev_revision: 0,
            revision: 4,
            changes: changes.to_vec(),
        }),
        last_applied: Some(log_id(2, 1, 7)),
        membership: membership(),
        revisions: Revisions {
            revision: 4,
            compact_revision: 0,
        },
        compact_to: None,
        leases: Vec::new(),
        lease_clock_ms: 0,
    }])
    .await
    .unwrap();
    db
}

#[tokio::test]
async fn meta_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = StateDb::open(&dir.path().join("fresh.db")).await.unwrap();
    assert_eq!(fresh.load_meta().await.unwrap(), StateMeta::default());
    drop(populated(dir.path()).await);
    let mut db = StateDb::open(&dir.path().join("state.db")).await.unwrap();
    assert_eq!(
        db.load_meta().await.unwrap(),
        StateMeta {
            last_applied: Some(log_id(2, 1, 7)),
            membership: membership(),
            revisions: Some(Revisions {
                revision: 4,
                compact_revision: 0
            }),
        }
    );
}

/// A built snapshot carries the copy's own metadata, passes the checks, and
/// installs into another database as an identical state.
#[tokio::test]
async fn snapshot_copy_installs_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = populated(dir.path()).await;
    let pool = sqlite::open_read_pool(&dir.path().join("state.db"), 1)
        .await
        .unwrap();
    let snapshots = Arc::new(
        SnapshotStore::open(&dir.path().join("snapshots"))
            .await
            .unwrap(),
    );
    let mut builder = SnapshotBuilder::new(pool, Arc::clone(&snapshots));
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 1, 7)));
    assert_eq!(snapshot.meta.last_membership, membership());

    let guard = snapshots.lock().await;
    let stored = guard.current().unwrap().clone();
    drop(guard);
    assert_eq!(stored.meta, snapshot.meta);
    let header = tokio::fs::read(&stored.data).await.unwrap();
    assert_eq!(
        &header[18..20],
        &[1, 1],
        "a rollback-journal file, readable alone"
    );

    check_snapshot_file(&stored.data, Some(Some(log_id(2, 1, 7))))
        .await
        .unwrap();
    let wrong = check_snapshot_file(&stored.data, Some(Some(log_id(2, 1, 8)))).await;
    assert!(matches!(wrong, Err(DbError::SnapshotMismatch { .. })));

    let other = tempfile::tempdir().unwrap();
    let mut target = StateDb::open(&other.path().join("state.db")).await.unwrap();
    target.replace_with(&stored.data).await.unwrap();
    assert_eq!(
        target.load_meta().await.unwrap(),
        source.load_meta().await.unwrap()
    );
    assert_eq!(
        history_rows(&mut target).await,
        history_rows(&mut source).await
    );
}

#[tokio::test]
async fn garbage_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage");
    tokio::fs::write(&path, vec![7u8; 8192]).await.unwrap();
    assert!(check_snapshot_file(&path, None).await.is_err());

    // A valid sqlite file without our tables.
    let empty = dir.path().join("empty.db");
    let mut conn = sqlite::open_writer(&empty, sqlite::Durability::Normal)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (x)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    assert!(check_snapshot_file(&empty, None).await.is_err());
}
