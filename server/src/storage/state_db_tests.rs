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
        alarms: None,
        auth: None,
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

/// A point-in-time copy of `db`'s file, as the Snapshot stream sends it.
async fn copy_of(db: &mut StateDb, to: &Path) {
    sqlx::query("VACUUM INTO ?")
        .bind(to.to_str().unwrap())
        .execute(&mut db.conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn hashes_follow_the_stored_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = populated(dir.path()).await;
    let at4 = crate::storage::hash::hash_kv(&mut db.conn, 0)
        .await
        .unwrap();
    let at3 = crate::storage::hash::hash_kv(&mut db.conn, 3)
        .await
        .unwrap();
    assert_eq!((at4.revision, at4.current_revision), (4, 4));
    assert_ne!(at4.hash, at3.hash, "a later revision hashes more versions");
    assert_eq!(
        crate::storage::hash::hash_kv(&mut db.conn, 3)
            .await
            .unwrap(),
        at3,
        "deterministic"
    );
    assert!(matches!(
        crate::storage::hash::hash_kv(&mut db.conn, 5).await,
        Err(crate::storage::HashKvError::FutureRevision)
    ));

    // Same data in another file: same hashes. A changed value: different.
    let copy = dir.path().join("copy.db");
    copy_of(&mut db, &copy).await;
    let mut other = StateDb::open(&copy).await.unwrap();
    assert_eq!(
        crate::storage::hash::hash_kv(&mut other.conn, 0)
            .await
            .unwrap(),
        at4
    );
    let whole = crate::storage::hash::hash_state(&mut db.conn)
        .await
        .unwrap();
    assert_eq!(
        crate::storage::hash::hash_state(&mut other.conn)
            .await
            .unwrap(),
        whole
    );
    sqlx::query("UPDATE history SET value = X'00' WHERE revision = 3")
        .execute(&mut other.conn)
        .await
        .unwrap();
    assert_ne!(
        crate::storage::hash::hash_kv(&mut other.conn, 0)
            .await
            .unwrap()
            .hash,
        at4.hash,
        "divergence on disk shows"
    );
}

/// A batch on top of `populated` that changes no key, only the alarms or
/// the auth store.
fn meta_only_batch(
    alarms: Option<crate::mvcc::Alarms>,
    auth: Option<crate::mvcc::AuthStore>,
) -> AppliedBatch {
    AppliedBatch {
        changes: Arc::new(AppliedChanges {
            prev_revision: 4,
            revision: 4,
            changes: Vec::new(),
        }),
        last_applied: Some(log_id(2, 1, 8)),
        membership: membership(),
        revisions: Revisions {
            revision: 4,
            compact_revision: 0,
        },
        compact_to: None,
        leases: Vec::new(),
        lease_clock_ms: 0,
        alarms,
        auth,
    }
}

#[tokio::test]
async fn alarms_persist_with_the_state() {
    use witan_proto::etcdserverpb::{AlarmMember, AlarmType};
    let dir = tempfile::tempdir().unwrap();
    let mut db = populated(dir.path()).await;
    let alarms = crate::mvcc::Alarms::restore([AlarmMember {
        member_id: 9,
        alarm: AlarmType::Nospace as i32,
    }]);
    db.write(&[meta_only_batch(Some(alarms.clone()), None)])
        .await
        .unwrap();
    let meta = db.load_meta().await.unwrap();
    assert_eq!(db.load_kv(&meta).await.unwrap().alarms(), &alarms);
}

#[tokio::test]
async fn auth_persists_with_the_state_and_restores_without_tokens() {
    use witan_proto::authpb::User;
    use witan_proto::raftpb::{AuthState, SimpleToken};
    let dir = tempfile::tempdir().unwrap();
    let mut db = populated(dir.path()).await;
    let auth = crate::mvcc::AuthStore::from_state(AuthState {
        enabled: true,
        revision: 7,
        users: vec![User {
            name: b"root".to_vec(),
            password: b"$2b$04$hash".to_vec(),
            roles: vec!["root".into()],
            options: None,
        }],
        roles: Vec::new(),
        tokens: vec![SimpleToken {
            token: "t".into(),
            name: "root".into(),
            expires_at_ms: 1_000,
        }],
    });
    db.write(&[meta_only_batch(None, Some(auth.clone()))])
        .await
        .unwrap();
    let meta = db.load_meta().await.unwrap();
    assert_eq!(db.load_kv(&meta).await.unwrap().auth(), &auth);

    db.forget_tokens().await.unwrap();
    let kv = db.load_kv(&meta).await.unwrap();
    assert!(kv.auth().enabled());
    assert!(kv.auth().is_root("root"));
    assert!(!kv.auth().has_tokens());
}

#[tokio::test]
async fn a_saved_state_installs_without_its_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = populated(dir.path()).await;
    let saved = dir.path().join("saved.db");
    copy_of(&mut db, &saved).await;
    let whole = crate::storage::hash::hash_state(&mut db.conn)
        .await
        .unwrap();

    let described = crate::storage::inspect_saved_state(&saved).await.unwrap();
    assert_eq!(
        (
            described.revision,
            described.compact_revision,
            described.keys
        ),
        (4, 0, 1),
        "only b is live at 4"
    );
    assert_eq!(described.hash, whole.hash);

    let new_dir = dir.path().join("new");
    std::fs::create_dir(&new_dir).unwrap();
    crate::storage::install_saved_state(&saved, &new_dir)
        .await
        .unwrap();
    let mut restored = StateDb::open(&new_dir.join("state.db")).await.unwrap();
    let meta = restored.load_meta().await.unwrap();
    assert_eq!(
        meta.last_applied, None,
        "a new raft log starts from scratch"
    );
    assert_eq!(meta.membership, StoredMembership::default());
    let kv = restored.load_kv(&meta).await.unwrap();
    assert_eq!(kv.revision(), 4);
    assert_eq!(kv.get(b"b").map(|k| k.value), Some(b"y".to_vec()));
    assert_eq!(kv.get(b"a"), None);
    assert_eq!(history_rows(&mut restored).await.len(), 3, "history kept");
}
