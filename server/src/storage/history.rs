//! `SqliteHistory`: the stored history of every key (table `history` of
//! `state.db`), read through a pool of read-only connections while apply
//! writes (WAL lets both run at once).
//!
//! A historical read is "for each key of the range, its latest change at or
//! below revision R, unless that change is a deletion". The SQL below finds
//! the latest revision per key from the `(key, revision)` index alone
//! (`GROUP BY key` over an index range scan, no table lookups), then fetches
//! just those rows by primary key.

use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Row, Sqlite};
use tokio::sync::watch;
use witan_proto::mvccpb::KeyValue;

use super::error::DbError;
use super::sqlite;
use super::state_db::META_COMPACT_REVISION;
use crate::mvcc::{Change, History, HistoryError, KeyRange, RangeAt};

/// The latest change per key at or below `?3`, in `[?1, ?2)`; `{end}` is
/// replaced by the upper-bound condition (or nothing for an open range).
/// Reads only the `(key, revision)` index.
const LATEST: &str = "
    SELECT key, MAX(revision) AS rev FROM history
    WHERE key >= ?1 {end} AND revision <= ?3
    GROUP BY key";

/// Resolves several changes of one key in one revision (sub-revisions) to
/// the last one.
const LAST_SUB: &str = "h.sub = (
    SELECT MAX(s.sub) FROM history AS s WHERE s.key = h.key AND s.revision = h.revision)";

/// Every live key of the range: the latest revisions from the index, then
/// one primary-key lookup per key.
fn select_all_sql(bounded: bool) -> String {
    format!(
        "SELECT h.key, h.create_revision, h.revision, h.version, h.lease, h.value
         FROM ({latest}) AS latest
         JOIN history AS h ON h.revision = latest.rev AND h.key = latest.key
         WHERE {LAST_SUB} AND h.deleted = 0
         ORDER BY h.key",
        latest = latest_sql(bounded),
    )
}

/// The first `?4` live keys of the range: walks the `(key, revision)` index
/// in key order and keeps each key's latest change, so it stops after `?4`
/// keys instead of visiting the whole range.
fn select_limited_sql(bounded: bool) -> String {
    format!(
        "SELECT h.key, h.create_revision, h.revision, h.version, h.lease, h.value
         FROM history AS h
         WHERE h.key >= ?1 {end} AND h.revision <= ?3
           AND h.revision = (
               SELECT MAX(s.revision) FROM history AS s
               WHERE s.key = h.key AND s.revision <= ?3)
           AND {LAST_SUB} AND h.deleted = 0
         ORDER BY h.key
         LIMIT ?4",
        end = if bounded { "AND h.key < ?2" } else { "" },
    )
}

fn count_sql(bounded: bool) -> String {
    format!(
        "SELECT COUNT(*)
         FROM ({latest}) AS latest
         JOIN history AS h ON h.revision = latest.rev AND h.key = latest.key
         WHERE {LAST_SUB} AND h.deleted = 0",
        latest = latest_sql(bounded),
    )
}

fn latest_sql(bounded: bool) -> String {
    LATEST.replace("{end}", if bounded { "AND key < ?2" } else { "" })
}

/// Reads the live keys of `range` at `revision`: at most `limit` of them
/// (all when `None`).
pub(crate) async fn live_keys<'c, E>(
    conn: E,
    range: &KeyRange,
    revision: i64,
    limit: Option<i64>,
) -> Result<Vec<KeyValue>, DbError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let end = range.end();
    let sql = match limit {
        Some(_) => select_limited_sql(end.is_some()),
        None => select_all_sql(end.is_some()),
    };
    let mut query = sqlx::query(&sql)
        .bind(range.start())
        .bind(end)
        .bind(revision);
    if let Some(limit) = limit {
        query = query.bind(limit);
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter().map(key_value).collect()
}

/// Counts the live keys of `range` at `revision`.
pub(crate) async fn count_live<'c, E>(
    conn: E,
    range: &KeyRange,
    revision: i64,
) -> Result<i64, DbError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let end = range.end();
    let sql = count_sql(end.is_some());
    Ok(sqlx::query_scalar(&sql)
        .bind(range.start())
        .bind(end)
        .bind(revision)
        .fetch_one(conn)
        .await?)
}

/// Refuses a read at `revision` when the stored compaction revision is
/// above it. The caller checked its own (published) compaction revision,
/// but a compaction applied since may already have removed what it reads.
async fn check_not_compacted(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    revision: i64,
) -> Result<(), DbError> {
    let compact_revision = sqlite::meta_int(&mut **tx, META_COMPACT_REVISION)
        .await?
        .unwrap_or(0);
    if revision < compact_revision {
        return Err(DbError::CompactedDuringRead {
            revision,
            compact_revision,
        });
    }
    Ok(())
}

/// Whether a history read failed only because a compaction overtook it:
/// the reader's state predates the compaction. Retrying with the current
/// state ([`super::StateReader::current`]) gives etcd's "compacted" answer.
pub fn compacted_during_read(e: &HistoryError) -> bool {
    matches!(
        e.0.downcast_ref::<DbError>(),
        Some(DbError::CompactedDuringRead { .. })
    )
}

fn key_value(row: &SqliteRow) -> Result<KeyValue, DbError> {
    Ok(KeyValue {
        key: row.try_get("key")?,
        create_revision: row.try_get("create_revision")?,
        mod_revision: row.try_get("revision")?,
        version: row.try_get("version")?,
        lease: row.try_get("lease")?,
        value: row.try_get("value")?,
    })
}

/// Read access to the stored history, shared by apply and API readers.
#[derive(Debug, Clone)]
pub struct SqliteHistory {
    pool: SqlitePool,
    /// The latest revision the file holds: the state writer may be behind
    /// what apply published, so a read waits until its revision is in.
    persisted: watch::Receiver<i64>,
}

impl SqliteHistory {
    pub(crate) fn new(pool: SqlitePool, persisted: watch::Receiver<i64>) -> Self {
        SqliteHistory { pool, persisted }
    }

    /// Waits until the file holds every change up to `revision`.
    pub(crate) async fn persisted_through(&self, revision: i64) -> Result<(), DbError> {
        let mut persisted = self.persisted.clone();
        persisted
            .wait_for(|p| *p >= revision)
            .await
            .map_err(|_| DbError::StateWriterStopped)?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn range(
        &self,
        range: &KeyRange,
        revision: i64,
        limit: usize,
    ) -> Result<RangeAt, DbError> {
        let limit = match limit {
            0 => None,
            n => Some(i64::try_from(n).map_err(|_| DbError::out_of_range("limit", n as u64))?),
        };
        self.persisted_through(revision).await?;
        // One read transaction: the compaction check, the keys and the
        // count all see the same state of the file.
        let mut tx = self.pool.begin().await?;
        check_not_compacted(&mut tx, revision).await?;
        let kvs = live_keys(&mut *tx, range, revision, limit).await?;
        let returned = i64::try_from(kvs.len())
            .map_err(|_| DbError::out_of_range("count", kvs.len() as u64))?;
        let count = match limit {
            Some(limit) if returned >= limit => count_live(&mut *tx, range, revision).await?,
            _ => returned,
        };
        tx.commit().await?;
        Ok(RangeAt { kvs, count })
    }

    /// Every change with a revision in `[from, to]`, in revision order, at
    /// most `limit` of them (all when 0): the catch-up feed of watchers.
    /// `prev` is not filled in. Fails (see [`compacted_during_read`]) when
    /// `from` is at or below the stored compaction revision, whose changes
    /// are no longer complete.
    pub async fn changes(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Change>, HistoryError> {
        self.changes_inner(from, to, limit)
            .await
            .map_err(|e| HistoryError(Box::new(e)))
    }

    async fn changes_inner(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Change>, DbError> {
        let limit = match limit {
            0 => -1,
            n => i64::try_from(n).map_err(|_| DbError::out_of_range("limit", n as u64))?,
        };
        self.persisted_through(to).await?;
        let mut tx = self.pool.begin().await?;
        // Changes above the compaction revision are complete.
        check_not_compacted(&mut tx, from - 1).await?;
        let rows = sqlx::query(
            "SELECT revision, sub, key, create_revision, version, lease, value, deleted
             FROM history WHERE revision >= ? AND revision <= ?
             ORDER BY revision, sub LIMIT ?",
        )
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                let deleted: bool = row.try_get("deleted")?;
                let mut kv = key_value(row)?;
                if deleted {
                    kv = KeyValue {
                        key: kv.key,
                        mod_revision: kv.mod_revision,
                        ..KeyValue::default()
                    };
                }
                Ok(Change {
                    kv,
                    sub: row.try_get("sub")?,
                    deleted,
                    prev: None,
                })
            })
            .collect()
    }
}

impl History for SqliteHistory {
    async fn range_at(
        &self,
        range: &KeyRange,
        revision: i64,
        limit: usize,
    ) -> Result<RangeAt, HistoryError> {
        self.range(range, revision, limit)
            .await
            .map_err(|e| HistoryError(Box::new(e)))
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
pub(crate) mod tests;
