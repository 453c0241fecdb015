use std::path::Path;
use std::sync::Arc;

use sqlx::Row;

use super::*;
use crate::raft::StoredMembership;
use crate::storage::reader::AppliedChanges;
use crate::storage::sqlite;
use crate::storage::state_db::{AppliedBatch, Revisions, StateDb};

pub(crate) fn put(
    key: &str,
    revision: i64,
    sub: i64,
    create: i64,
    version: i64,
    value: &str,
) -> Change {
    Change {
        kv: KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: revision,
            version,
            value: value.as_bytes().to_vec(),
            lease: 0,
        },
        sub,
        deleted: false,
        prev: None,
    }
}

pub(crate) fn del(key: &str, revision: i64, sub: i64) -> Change {
    Change {
        kv: KeyValue {
            key: key.as_bytes().to_vec(),
            mod_revision: revision,
            ..KeyValue::default()
        },
        sub,
        deleted: true,
        prev: None,
    }
}

pub(crate) async fn write(
    db: &mut StateDb,
    changes: &[Change],
    revision: i64,
    compact: Option<i64>,
) {
    db.write(&[AppliedBatch {
        changes: Arc::new(AppliedChanges {
            prev_revision: 0,
            revision,
            changes: changes.to_vec(),
        }),
        last_applied: None,
        membership: StoredMembership::default(),
        revisions: Revisions {
            revision,
            compact_revision: compact.unwrap_or(0),
        },
        compact_to: compact,
        leases: Vec::new(),
        lease_clock_ms: 0,
        alarms: None,
        auth: None,
    }])
    .await
    .unwrap();
}

async fn open(dir: &Path) -> (StateDb, SqliteHistory) {
    let path = dir.join("state.db");
    let db = StateDb::open(&path).await.unwrap();
    let pool = sqlite::open_read_pool(&path, 2).await.unwrap();
    // Every revision written here is in the file at once.
    let (_, persisted) = tokio::sync::watch::channel(i64::MAX);
    (db, SqliteHistory::new(pool, persisted))
}

/// `a` put at 2 and 4, `b` put at 3 and deleted at 6, `c` put at 5.
fn sample() -> Vec<Change> {
    vec![
        put("a", 2, 0, 2, 1, "a1"),
        put("b", 3, 0, 3, 1, "b1"),
        put("a", 4, 0, 2, 2, "a2"),
        put("c", 5, 0, 5, 1, "c1"),
        del("b", 6, 0),
    ]
}

async fn view(
    h: &SqliteHistory,
    range: &KeyRange,
    revision: i64,
    limit: usize,
) -> (Vec<String>, i64) {
    let got = h.range_at(range, revision, limit).await.unwrap();
    let kvs = got
        .kvs
        .iter()
        .map(|kv| {
            format!(
                "{}={}@{}/{}/v{}",
                String::from_utf8_lossy(&kv.key),
                String::from_utf8_lossy(&kv.value),
                kv.mod_revision,
                kv.create_revision,
                kv.version
            )
        })
        .collect();
    (kvs, got.count)
}

fn all() -> KeyRange {
    KeyRange::From(Vec::new())
}

#[tokio::test]
async fn range_at_reads_each_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, h) = open(dir.path()).await;
    write(&mut db, &sample(), 6, None).await;

    assert_eq!(view(&h, &all(), 1, 0).await, (vec![], 0));
    assert_eq!(
        view(&h, &all(), 2, 0).await,
        (vec!["a=a1@2/2/v1".into()], 1)
    );
    assert_eq!(
        view(&h, &all(), 4, 0).await,
        (vec!["a=a2@4/2/v2".into(), "b=b1@3/3/v1".into()], 2)
    );
    assert_eq!(
        view(&h, &all(), 5, 0).await.0,
        vec!["a=a2@4/2/v2", "b=b1@3/3/v1", "c=c1@5/5/v1"]
    );
    assert_eq!(
        view(&h, &all(), 6, 0).await,
        (vec!["a=a2@4/2/v2".into(), "c=c1@5/5/v1".into()], 2)
    );
    // Limits cut the keys, not the count.
    assert_eq!(view(&h, &all(), 5, 2).await.0.len(), 2);
    assert_eq!(view(&h, &all(), 5, 2).await.1, 3);
    assert_eq!(view(&h, &all(), 5, 5).await.1, 3);
    // Single keys and bounded ranges.
    let b = KeyRange::Key(b"b".to_vec());
    assert_eq!(view(&h, &b, 5, 0).await, (vec!["b=b1@3/3/v1".into()], 1));
    assert_eq!(view(&h, &b, 6, 0).await, (vec![], 0));
    let b_to_c = KeyRange::Between(b"b".to_vec(), b"c".to_vec());
    assert_eq!(view(&h, &b_to_c, 5, 0).await.0, vec!["b=b1@3/3/v1"]);
    let from_b = KeyRange::From(b"b".to_vec());
    assert_eq!(view(&h, &from_b, 5, 0).await.1, 2);
    let empty = KeyRange::Between(b"c".to_vec(), b"a".to_vec());
    assert_eq!(view(&h, &empty, 5, 0).await, (vec![], 0));
}

#[tokio::test]
async fn later_sub_revision_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, h) = open(dir.path()).await;
    write(
        &mut db,
        &[
            put("k", 2, 0, 2, 1, "first"),
            put("k", 2, 1, 2, 2, "second"),
            del("j", 2, 2),
        ],
        2,
        None,
    )
    .await;
    assert_eq!(
        view(&h, &all(), 2, 0).await,
        (vec!["k=second@2/2/v2".into()], 1)
    );
}

#[tokio::test]
async fn compaction_keeps_what_later_revisions_need() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, h) = open(dir.path()).await;
    write(&mut db, &sample(), 6, None).await;
    let before: Vec<_> = [
        view(&h, &all(), 4, 0).await,
        view(&h, &all(), 5, 0).await,
        view(&h, &all(), 6, 0).await,
    ]
    .into();

    write(&mut db, &[], 6, Some(4)).await;
    // a@2 is superseded by a@4; everything else is still needed.
    assert_eq!(rows(&h).await, vec!["b@3", "a@4", "c@5", "b@6"]);
    let after: Vec<_> = [
        view(&h, &all(), 4, 0).await,
        view(&h, &all(), 5, 0).await,
        view(&h, &all(), 6, 0).await,
    ]
    .into();
    assert_eq!(before, after);

    // A reader whose state predates the compaction is refused, not
    // answered from incomplete history.
    let err = h.range_at(&all(), 3, 0).await.unwrap_err();
    assert!(compacted_during_read(&err), "{err}");
    let err = h.changes(4, 6, 0).await.unwrap_err();
    assert!(compacted_during_read(&err), "{err}");
    assert_eq!(h.changes(5, 6, 0).await.unwrap().len(), 2);

    // Compacting past b's deletion drops b entirely.
    write(&mut db, &[put("d", 7, 0, 7, 1, "d1")], 7, Some(6)).await;
    assert_eq!(rows(&h).await, vec!["a@4", "c@5", "d@7"]);
    assert_eq!(view(&h, &all(), 6, 0).await, before[2]);
}

async fn rows(h: &SqliteHistory) -> Vec<String> {
    sqlx::query("SELECT key, revision FROM history ORDER BY revision, sub")
        .fetch_all(h.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let key: Vec<u8> = r.get(0);
            let rev: i64 = r.get(1);
            format!("{}@{rev}", String::from_utf8_lossy(&key))
        })
        .collect()
}

async fn plan(h: &SqliteHistory, sql: &str) -> String {
    sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .bind(b"a".as_slice())
        .bind(b"z".as_slice())
        .bind(10i64)
        .bind(5i64)
        .fetch_all(h.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn range_queries_use_the_key_index() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, h) = open(dir.path()).await;
    for bounded in [true, false] {
        let range = if bounded {
            "(key>? AND key<?)"
        } else {
            "(key>?)"
        };
        let all = plan(&h, &select_all_sql(bounded)).await;
        assert!(
            all.contains(&format!("COVERING INDEX history_key_revision {range}")),
            "{all}"
        );
        assert!(!all.contains("SCAN history"), "{all}");
        // The limited query walks the index in key order: no sort, so it
        // stops after the limit.
        let limited = plan(&h, &select_limited_sql(bounded)).await;
        assert!(
            limited.contains(&format!("INDEX history_key_revision {range}")),
            "{limited}"
        );
        assert!(!limited.contains("TEMP B-TREE"), "{limited}");
        let count = plan(&h, &count_sql(bounded)).await;
        assert!(!count.contains("SCAN history"), "{count}");
    }
}

/// Random histories: every query shape agrees with a plain model at every
/// revision, before and after compaction.
#[tokio::test]
async fn range_at_matches_a_model() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let (mut db, h) = open(dir.path()).await;
    let keys = ["a", "b", "ba", "c", "d", "e"];
    let mut changes = Vec::new();
    let mut live: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    let last = 80;
    for revision in 2..=last {
        let key = keys[rng.gen_range(0..keys.len())];
        if rng.gen_bool(0.25) {
            if live.remove(key).is_some() {
                changes.push(del(key, revision, 0));
            }
        } else {
            let (create, version) = live.get(key).map_or((revision, 1), |(c, v)| (*c, v + 1));
            live.insert(key, (create, version));
            changes.push(put(
                key,
                revision,
                0,
                create,
                version,
                &format!("{key}{revision}"),
            ));
        }
    }
    write(&mut db, &changes, last, None).await;

    let model = |range: &KeyRange, revision: i64| -> Vec<String> {
        let mut latest: std::collections::BTreeMap<Vec<u8>, &Change> = Default::default();
        for c in changes.iter().filter(|c| c.kv.mod_revision <= revision) {
            latest.insert(c.kv.key.clone(), c);
        }
        latest
            .values()
            .filter(|c| !c.deleted && range.contains(&c.kv.key))
            .map(|c| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&c.kv.key),
                    String::from_utf8_lossy(&c.kv.value)
                )
            })
            .collect()
    };
    let ranges = [
        all(),
        KeyRange::Key(b"b".to_vec()),
        KeyRange::Between(b"b".to_vec(), b"d".to_vec()),
        KeyRange::From(b"c".to_vec()),
    ];
    let check = |from: i64| {
        let h = h.clone();
        let ranges = ranges.clone();
        let model = &model;
        async move {
            for revision in from..=last {
                for range in &ranges {
                    let want = model(range, revision);
                    for limit in [0, 1, 2, 10] {
                        let got = h.range_at(range, revision, limit).await.unwrap();
                        let names: Vec<String> = got
                            .kvs
                            .iter()
                            .map(|kv| {
                                format!(
                                    "{}={}",
                                    String::from_utf8_lossy(&kv.key),
                                    String::from_utf8_lossy(&kv.value)
                                )
                            })
                            .collect();
                        let expect = if limit == 0 {
                            want.clone()
                        } else {
                            want.iter().take(limit).cloned().collect()
                        };
                        assert_eq!(names, expect, "{range:?} at {revision} limit {limit}");
                        assert_eq!(got.count, want.len() as i64, "{range:?} at {revision}");
                    }
                }
            }
        }
    };
    check(1).await;
    write(&mut db, &[], last, Some(40)).await;
    check(40).await;
}

#[tokio::test]
async fn changes_lists_a_revision_span() {
    let dir = tempfile::tempdir().unwrap();
    let (mut db, h) = open(dir.path()).await;
    write(&mut db, &sample(), 6, None).await;
    let changes = h.changes(3, 5, 0).await.unwrap();
    let got: Vec<(i64, bool)> = changes
        .iter()
        .map(|c| (c.kv.mod_revision, c.deleted))
        .collect();
    assert_eq!(got, vec![(3, false), (4, false), (5, false)]);
    let changes = h.changes(5, 100, 1).await.unwrap();
    assert_eq!(changes.len(), 1);
    let last = h.changes(6, 6, 0).await.unwrap();
    assert_eq!(last, vec![del("b", 6, 0)]);
}
