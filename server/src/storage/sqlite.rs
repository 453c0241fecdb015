//! The sqlite specifics in one place: connection pragmas per durability
//! level, the read pools, and the small `meta` name/value table both
//! databases keep (with the schema-version row that lets the on-disk format
//! evolve).
//!
//! Both databases run in WAL mode with one writer connection each, so
//! readers (log replication, API reads, snapshot copies) never block the
//! writer and never see a half-committed transaction.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row, Sqlite};

use super::error::DbError;

/// How long a connection waits for a lock held by another connection
/// (checkpoints, a snapshot copy) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-connection page cache, in KiB (sqlite's negative `cache_size`).
const CACHE_KIB: i64 = 16 * 1024;

/// sqlite's limit on bound parameters per statement (the bundled library
/// allows 32766; staying well below keeps statements small).
pub(crate) const MAX_PARAMS: usize = 8000;

/// When a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Every commit is fsynced before it returns (the raft log: an append is
    /// acknowledged only once it survives a power loss).
    Full,
    /// A commit survives a process kill, not necessarily a power loss (the
    /// state machine: the raft log replays what a power loss took).
    Normal,
}

fn options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    let synchronous = match durability {
        Durability::Full => SqliteSynchronous::Full,
        Durability::Normal => SqliteSynchronous::Normal,
    };
    SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(false)
        .pragma("temp_store", "memory")
        .pragma("cache_size", (-CACHE_KIB).to_string())
}

/// Opens (creating if missing) the single writer connection of a database.
pub(crate) async fn open_writer(
    path: &Path,
    durability: Durability,
) -> Result<SqliteConnection, DbError> {
    // Incremental auto-vacuum lets Defragment return free pages in small
    // steps between writes (`defrag`); sqlite honours it only for a database
    // created with it (an older file keeps NONE until one full VACUUM).
    Ok(options(path, durability)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .create_if_missing(true)
        .connect()
        .await?)
}

/// Opens a pool of read-only connections to a database whose writer is
/// already open (WAL readers need the writer's shared-memory file).
pub(crate) async fn open_read_pool(path: &Path, connections: u32) -> Result<SqlitePool, DbError> {
    let options = options(path, Durability::Normal).read_only(true);
    Ok(SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(connections)
        // Idle read connections cost little; keeping them avoids reopening
        // files under load.
        .idle_timeout(None)
        .connect_with(options)
        .await?)
}

/// Opens a plain (rollback-journal) connection to a standalone database
/// file: a snapshot copy being checked or read.
pub(crate) async fn open_file(path: &Path) -> Result<SqliteConnection, DbError> {
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await?)
}

/// The name of the schema-version row in `meta`.
const SCHEMA_VERSION: &str = "schema_version";

const CREATE_META: &str =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID";

/// Creates the tables of a fresh database, or checks that an existing one
/// has the format this build understands.
pub(crate) async fn ensure_schema(
    conn: &mut SqliteConnection,
    version: i64,
    tables: &[&str],
) -> Result<(), DbError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    sqlx::query(CREATE_META).execute(&mut *tx).await?;
    match meta_int(&mut *tx, SCHEMA_VERSION).await? {
        Some(found) if found != version => {
            return Err(DbError::SchemaVersion {
                found,
                supported: version,
            })
        }
        Some(_) => {}
        None => put_meta(&mut *tx, SCHEMA_VERSION, version).await?,
    }
    for ddl in tables {
        sqlx::query(ddl).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Reads the schema version of a database (a snapshot file) and checks it.
pub(crate) async fn check_schema(conn: &mut SqliteConnection, version: i64) -> Result<(), DbError> {
    match meta_int(conn, SCHEMA_VERSION).await? {
        Some(found) if found == version => Ok(()),
        Some(found) => Err(DbError::SchemaVersion {
            found,
            supported: version,
        }),
        None => Err(DbError::Missing("schema version")),
    }
}

/// Reads a blob from `meta`.
pub(crate) async fn meta_blob<'c, E>(conn: E, name: &str) -> Result<Option<Vec<u8>>, DbError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let row = sqlx::query("SELECT value FROM meta WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get::<Vec<u8>, _>(0)).transpose()?)
}

/// Reads an integer from `meta`.
pub(crate) async fn meta_int<'c, E>(conn: E, name: &str) -> Result<Option<i64>, DbError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
{
    let row = sqlx::query("SELECT value FROM meta WHERE name = ?")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

/// Writes (inserts or replaces) a `meta` row.
pub(crate) async fn put_meta<'c, 'q, E, V>(conn: E, name: &'q str, value: V) -> Result<(), DbError>
where
    E: sqlx::Executor<'c, Database = Sqlite>,
    V: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + 'q,
{
    sqlx::query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
        .bind(name)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// `INSERT INTO <table> (<columns>) VALUES (?, ...), (?, ...) ...` for
/// `rows` rows: one statement writes many rows, which is what makes a large
/// group commit cheap.
pub(crate) fn multi_insert(table_and_columns: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(","));
    let mut sql = String::with_capacity(table_and_columns.len() + 32 + rows * (one.len() + 1));
    sql.push_str("INSERT INTO ");
    sql.push_str(table_and_columns);
    sql.push_str(" VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql
}

/// fsyncs a directory so a rename or a new file in it survives a power
/// loss.
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), DbError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| DbError::Io(std::io::Error::other(e)))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_insert_has_one_group_per_row() {
        assert_eq!(
            multi_insert("t (a, b)", 2, 3),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?),(?,?)"
        );
    }

    #[tokio::test]
    async fn schema_version_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let mut conn = open_writer(&path, Durability::Normal).await.unwrap();
        ensure_schema(&mut conn, 1, &["CREATE TABLE IF NOT EXISTS t (a)"])
            .await
            .unwrap();
        ensure_schema(&mut conn, 1, &[]).await.unwrap();
        let err = ensure_schema(&mut conn, 2, &[]).await.unwrap_err();
        assert!(matches!(
            err,
            DbError::SchemaVersion {
                found: 1,
                supported: 2
            }
        ));
    }
}
