//! `StateDb`: the writer side of `state.db`, the state machine's tables.
//!
//! Layout: `history` holds every key change (revision, sub-revision, key,
//! create revision, version, lease, value, deleted) keyed by `(revision,
//! sub)`, with an index on `(key, revision)` for historical reads; `meta`
//! holds the last applied log id, the last membership (protobuf
//! `witan.raft.v1.StoredMembership`), the current and compaction revisions,
//! and the schema version.
//!
//! Invariant: `meta` and `history` change together, in one transaction, so
//! the file always holds the state as of its last applied log id. That is
//! what lets a plain copy of the file (`VACUUM INTO`) be a snapshot.

use std::path::Path;
use std::sync::Arc;

use prost::Message;
use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use witan_proto::etcdserverpb::{AlarmResponse, AlarmType};
use witan_proto::raftpb::{self, AuthState};

use super::defrag::{self, VacuumStep};
use super::error::DbError;
use super::history;
use super::reader::AppliedChanges;
use super::script::Script;
use super::sqlite::{self, Durability, MAX_PARAMS};
use crate::mvcc::{Alarms, AuthStore, KeyRange, KvState, Lease};
use crate::raft::convert::{
    log_id_from_pb, log_id_to_pb, stored_membership_from_pb, stored_membership_to_pb,
};
use crate::raft::{LogId, StoredMembership};

/// Version of the state machine's on-disk format (also of snapshots).
pub(crate) const SCHEMA_VERSION: i64 = 1;

const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS history (
        revision INTEGER NOT NULL,
        sub INTEGER NOT NULL,
        key BLOB NOT NULL,
        create_revision INTEGER NOT NULL,
        version INTEGER NOT NULL,
        lease INTEGER NOT NULL,
        value BLOB NOT NULL,
        deleted INTEGER NOT NULL,
        PRIMARY KEY (revision, sub)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS history_key_revision ON history (key, revision)",
    "CREATE TABLE IF NOT EXISTS leases (
        id INTEGER PRIMARY KEY,
        ttl INTEGER NOT NULL,
        expires_at INTEGER,
        refreshed INTEGER NOT NULL)",
];

const META_LAST_APPLIED: &str = "last_applied";
const META_MEMBERSHIP: &str = "membership";
const META_REVISION: &str = "revision";
pub(crate) const META_COMPACT_REVISION: &str = "compact_revision";
pub(crate) const META_LEASE_CLOCK: &str = "lease_clock_ms";
/// The active alarms: a protobuf `etcdserverpb.AlarmResponse` (only its
/// `alarms`); absent means none.
pub(crate) const META_ALARMS: &str = "alarms";
/// The auth store: a protobuf `witan.raft.v1.AuthState`; absent means auth
/// was never touched (off, no users, no roles).
pub(crate) const META_AUTH: &str = "auth";

const HISTORY_COLUMNS: usize = 8;
const INSERT_HISTORY: &str =
    "history (revision, sub, key, create_revision, version, lease, value, deleted)";

/// What `meta` records about the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StateMeta {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// `None` in a fresh database (nothing applied yet).
    pub revisions: Option<Revisions>,
}

/// The current and compaction revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revisions {
    pub revision: i64,
    pub compact_revision: i64,
}

/// Everything one `apply` call changed.
#[derive(Debug)]
pub(crate) struct AppliedBatch {
    /// The key changes (shared with the watch feed).
    pub changes: Arc<AppliedChanges>,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub revisions: Revisions,
    /// Set when the compaction revision moved: drop what it compacted.
    pub compact_to: Option<i64>,
    /// Leases created or changed (`Some`) and removed (`None`).
    pub leases: Vec<(i64, Option<Lease>)>,
    /// The lease clock after the batch.
    pub lease_clock_ms: i64,
    /// The active alarms after the batch, when the batch changed them.
    pub alarms: Option<Alarms>,
    /// The auth store after the batch, when the batch changed it.
    pub auth: Option<AuthStore>,
}

/// The single writer connection of `state.db`.
#[derive(Debug)]
pub(crate) struct StateDb {
    conn: SqliteConnection,
}

impl StateDb {
    /// Opens (creating if missing) the state machine database.
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let mut conn = sqlite::open_writer(path, Durability::Normal).await?;
        sqlite::ensure_schema(&mut conn, SCHEMA_VERSION, TABLES).await?;
        Ok(StateDb { conn })
    }

    /// Closes the connection (sqlite checkpoints the WAL into the file).
    pub async fn close(self) -> Result<(), DbError> {
        Ok(self.conn.close().await?)
    }

    /// Reads `meta`.
    pub async fn load_meta(&mut self) -> Result<StateMeta, DbError> {
        load_meta(&mut self.conn).await
    }

    /// Rebuilds the in-memory key-value state from the stored history.
    pub async fn load_kv(&mut self, meta: &StateMeta) -> Result<KvState, DbError> {
        let Some(revs) = meta.revisions else {
            return Ok(KvState::new());
        };
        let keys = history::live_keys(
            &mut self.conn,
            &KeyRange::From(Vec::new()),
            revs.revision,
            None,
        )
        .await?;
        let leases = load_leases(&mut self.conn).await?;
        let clock = sqlite::meta_int(&mut self.conn, META_LEASE_CLOCK)
            .await?
            .unwrap_or(0);
        let alarms = load_alarms(&mut self.conn).await?;
        let auth = load_auth(&mut self.conn).await?;
        Ok(KvState::restore(keys, revs.revision, revs.compact_revision)
            .with_leases(leases, clock)
            .with_alarms(alarms)
            .with_auth(auth))
    }

    /// Writes the results of consecutive `apply` calls atomically, in
    /// order, as one script (one hand-off to sqlite's thread: this is on
    /// every write's path). `meta` ends as the last batch says.
    pub async fn write(&mut self, batches: &[AppliedBatch]) -> Result<(), DbError> {
        let Some(last) = batches.last() else {
            return Ok(());
        };
        let mut script = Script::begin();
        for batch in batches {
            for chunk in batch.changes.changes.chunks(MAX_PARAMS / HISTORY_COLUMNS) {
                script.statement(&sqlite::multi_insert(
                    INSERT_HISTORY,
                    HISTORY_COLUMNS,
                    chunk.len(),
                ));
                for change in chunk {
                    script
                        .bind(change.kv.mod_revision)?
                        .bind(change.sub)?
                        .bind(change.kv.key.as_slice())?
                        .bind(change.kv.create_revision)?
                        .bind(change.kv.version)?
                        .bind(change.kv.lease)?
                        .bind(change.kv.value.as_slice())?
                        .bind(change.deleted)?;
                }
            }
            if let Some(compact) = batch.compact_to {
                compact_history(&mut script, compact)?;
            }
            write_leases(&mut script, &batch.leases)?;
            if let Some(auth) = &batch.auth {
                script.statement("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)");
                script
                    .bind(META_AUTH)?
                    .bind(auth.to_state().encode_to_vec())?;
            }
            if let Some(alarms) = &batch.alarms {
                write_alarms(&mut script, alarms)?;
            }
        }
        write_meta(&mut script, last)?;
        script.commit(&mut self.conn).await?;
        for compact in batches.iter().filter_map(|b| b.compact_to) {
            tracing::info!(compact, "compacted history");
        }
        Ok(())
    }

    /// One defragment step (`defrag::vacuum_step`), or a WAL checkpoint
    /// when `pages` is 0 (then `free_pages` is -1: not measured).
    pub async fn vacuum(&mut self, pages: u32) -> Result<VacuumStep, DbError> {
        if pages == 0 {
            defrag::checkpoint(&mut self.conn).await?;
            return Ok(VacuumStep {
                free_pages: -1,
                full_vacuum: false,
            });
        }
        defrag::vacuum_step(&mut self.conn, pages).await
    }

    /// Drops what ties the state to its cluster (the applied log id, the
    /// membership) and the `extra` meta rows, for a restore into a new
    /// cluster.
    pub async fn forget_cluster(&mut self, extra: &[&str]) -> Result<(), DbError> {
        let mut tx = self.conn.begin().await?;
        for name in [META_LAST_APPLIED, META_MEMBERSHIP].iter().chain(extra) {
            sqlx::query("DELETE FROM meta WHERE name = ?")
                .bind(*name)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops the simple tokens from the stored auth store (users, roles
    /// and permissions stay): sessions of the cluster a snapshot came from
    /// do not carry over to a restored one, as with etcd's in-memory
    /// tokens.
    pub async fn forget_tokens(&mut self) -> Result<(), DbError> {
        let Some(blob) = sqlite::meta_blob(&mut self.conn, META_AUTH).await? else {
            return Ok(());
        };
        let mut state = AuthState::decode(blob.as_slice())?;
        state.tokens.clear();
        sqlx::query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
            .bind(META_AUTH)
            .bind(state.encode_to_vec())
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Replaces the whole state with the one stored in the database file
    /// `path` (a snapshot), in one transaction: a crash leaves the old state
    /// or the new one. The file must have been checked
    /// ([`check_snapshot_file`]).
    pub async fn replace_with(&mut self, path: &Path) -> Result<(), DbError> {
        let path = path
            .to_str()
            .ok_or_else(|| DbError::NonUtf8Path(path.to_path_buf()))?;
        sqlx::query("ATTACH DATABASE ? AS incoming")
            .bind(path)
            .execute(&mut self.conn)
            .await?;
        let copied = copy_attached(&mut self.conn).await;
        let detached = sqlx::query("DETACH DATABASE incoming")
            .execute(&mut self.conn)
            .await;
        copied?;
        detached?;
        Ok(())
    }
}

async fn copy_attached(conn: &mut SqliteConnection) -> Result<(), DbError> {
    let mut tx = conn.begin().await?;
    for sql in [
        "DELETE FROM main.history",
        "INSERT INTO main.history (revision, sub, key, create_revision, version, lease, value, deleted)
         SELECT revision, sub, key, create_revision, version, lease, value, deleted
         FROM incoming.history",
        "DELETE FROM main.leases",
        "INSERT INTO main.leases (id, ttl, expires_at, refreshed)
         SELECT id, ttl, expires_at, refreshed FROM incoming.leases",
        "DELETE FROM main.meta",
        "INSERT INTO main.meta (name, value) SELECT name, value FROM incoming.meta",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// etcd's compaction rule: for each key keep its latest change at or below
/// `compact` unless that is a deletion, and every later change.
fn compact_history(script: &mut Script<'_>, compact: i64) -> Result<(), DbError> {
    script
        .statement(
            "DELETE FROM history AS h
             WHERE h.revision <= ?
               AND (h.deleted != 0 OR EXISTS (
                   SELECT 1 FROM history AS n
                   WHERE n.key = h.key AND n.revision <= ?
                     AND (n.revision > h.revision OR (n.revision = h.revision AND n.sub > h.sub))))",
        )
        .bind(compact)?
        .bind(compact)?;
    Ok(())
}

/// Columns of a `leases` row.
const LEASE_COLUMNS: usize = 4;

// A mass expiry or a burst of grants changes thousands of leases in one
// entry: one statement per row would make the lease table the slowest part
// of applying it, so rows go in multi-row statements. `leases` names each
// id once (a diff of two states), so upserts and deletes commute.
fn write_leases<'q>(
    script: &mut Script<'q>,
    leases: &'q [(i64, Option<Lease>)],
) -> Result<(), DbError> {
    let kept: Vec<(i64, &Lease)> = leases
        .iter()
        .filter_map(|(id, lease)| lease.as_ref().map(|lease| (*id, lease)))
        .collect();
    for chunk in kept.chunks(MAX_PARAMS / LEASE_COLUMNS) {
        let mut sql = sqlite::multi_insert(
            "leases (id, ttl, expires_at, refreshed)",
            LEASE_COLUMNS,
            chunk.len(),
        );
        sql.push_str(
            " ON CONFLICT (id) DO UPDATE SET ttl = excluded.ttl,
               expires_at = excluded.expires_at, refreshed = excluded.refreshed",
        );
        script.statement(&sql);
        for (id, lease) in chunk {
            script
                .bind(*id)?
                .bind(lease.ttl)?
                .bind(lease.expires_at)?
                .bind(lease.refreshed)?;
        }
    }
    let gone: Vec<i64> = leases
        .iter()
        .filter(|(_, lease)| lease.is_none())
        .map(|(id, _)| *id)
        .collect();
    for chunk in gone.chunks(MAX_PARAMS) {
        script.statement(&format!(
            "DELETE FROM leases WHERE id IN ({})",
            vec!["?"; chunk.len()].join(",")
        ));
        for id in chunk {
            script.bind(*id)?;
        }
    }
    Ok(())
}

async fn load_leases(conn: &mut SqliteConnection) -> Result<Vec<(i64, Lease)>, DbError> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT id, ttl, expires_at, refreshed FROM leases")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                Lease {
                    ttl: row.try_get("ttl")?,
                    expires_at: row.try_get("expires_at")?,
                    refreshed: row.try_get("refreshed")?,
                },
            ))
        })
        .collect()
}

fn write_alarms(script: &mut Script<'_>, alarms: &Alarms) -> Result<(), DbError> {
    let encoded = AlarmResponse {
        header: None,
        alarms: alarms.list(AlarmType::None as i32),
    }
    .encode_to_vec();
    script.statement("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)");
    script.bind(META_ALARMS)?.bind(encoded)?;
    Ok(())
}

/// Reads the active alarms stored in `meta`.
pub(crate) async fn load_alarms(conn: &mut SqliteConnection) -> Result<Alarms, DbError> {
    Ok(match sqlite::meta_blob(&mut *conn, META_ALARMS).await? {
        Some(blob) => Alarms::restore(AlarmResponse::decode(blob.as_slice())?.alarms),
        None => Alarms::default(),
    })
}

/// Reads the auth store kept in `meta`.
pub(crate) async fn load_auth(conn: &mut SqliteConnection) -> Result<AuthStore, DbError> {
    Ok(match sqlite::meta_blob(&mut *conn, META_AUTH).await? {
        Some(blob) => AuthStore::from_state(AuthState::decode(blob.as_slice())?),
        None => AuthStore::default(),
    })
}

fn write_meta(script: &mut Script<'_>, batch: &AppliedBatch) -> Result<(), DbError> {
    match &batch.last_applied {
        Some(id) => {
            script.statement("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)");
            script
                .bind(META_LAST_APPLIED)?
                .bind(log_id_to_pb(id).encode_to_vec())?;
        }
        None => {
            script.statement("DELETE FROM meta WHERE name = ?");
            script.bind(META_LAST_APPLIED)?;
        }
    }
    script.statement(
        "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?), (?, ?), (?, ?), (?, ?)",
    );
    script
        .bind(META_MEMBERSHIP)?
        .bind(stored_membership_to_pb(&batch.membership).encode_to_vec())?
        .bind(META_REVISION)?
        .bind(batch.revisions.revision)?
        .bind(META_LEASE_CLOCK)?
        .bind(batch.lease_clock_ms)?
        .bind(META_COMPACT_REVISION)?
        .bind(batch.revisions.compact_revision)?;
    Ok(())
}

/// Reads the `meta` of a state database (ours or a snapshot copy).
pub(crate) async fn load_meta(conn: &mut SqliteConnection) -> Result<StateMeta, DbError> {
    let last_applied = match sqlite::meta_blob(&mut *conn, META_LAST_APPLIED).await? {
        Some(blob) => Some(log_id_from_pb(&raftpb::LogId::decode(blob.as_slice())?)),
        None => None,
    };
    let membership = match sqlite::meta_blob(&mut *conn, META_MEMBERSHIP).await? {
        Some(blob) => {
            stored_membership_from_pb(&raftpb::StoredMembership::decode(blob.as_slice())?)?
        }
        None => StoredMembership::default(),
    };
    let revision = sqlite::meta_int(&mut *conn, META_REVISION).await?;
    let compact = sqlite::meta_int(&mut *conn, META_COMPACT_REVISION).await?;
    let revisions = match (revision, compact) {
        (Some(revision), Some(compact_revision)) => Some(Revisions {
            revision,
            compact_revision,
        }),
        (None, None) => None,
        (None, Some(_)) => return Err(DbError::Missing("current revision")),
        (Some(_), None) => return Err(DbError::Missing("compaction revision")),
    };
    Ok(StateMeta {
        last_applied,
        membership,
        revisions,
    })
}

/// Checks a snapshot file before it is used: sqlite's integrity check, the
/// schema version, and that its data was taken at `expected` (its
/// metadata's last log id). Returns what its `meta` says.
pub(crate) async fn check_snapshot_file(
    path: &Path,
    expected: Option<Option<LogId>>,
) -> Result<StateMeta, DbError> {
    let mut conn = sqlite::open_file(path).await?;
    let checked = async {
        let verdict: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut conn)
            .await?;
        if verdict != "ok" {
            tracing::error!(path = %path.display(), %verdict, "snapshot file is corrupt");
            return Err(DbError::SnapshotCorrupt);
        }
        sqlite::check_schema(&mut conn, SCHEMA_VERSION).await?;
        let meta = load_meta(&mut conn).await?;
        if let Some(expected) = expected {
            if meta.last_applied != expected {
                return Err(DbError::SnapshotMismatch {
                    data: meta.last_applied,
                    meta: expected,
                });
            }
        }
        Ok(meta)
    }
    .await;
    conn.close().await?;
    checked
}

#[cfg(test)]
#[path = "state_db_tests.rs"]
mod tests;
