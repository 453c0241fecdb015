//! Defragmenting a database file without stopping its writer for long.
//!
//! Both databases are created with `auto_vacuum = INCREMENTAL`: pages that
//! deletes and compactions free stay on sqlite's freelist (reused by later
//! writes) until `PRAGMA incremental_vacuum(N)` moves up to N of them to
//! the end of the file and truncates it. Each step runs on the database's
//! single writer connection, queued like a write, so writes queued meanwhile
//! go in between steps: a defragment never holds the writer for more than
//! one step ([`STEP_PAGES`] pages, a few milliseconds), however large the
//! file. (A full `VACUUM` would rewrite the whole file in one go and block
//! every write for its duration; `VACUUM INTO` a copy and swapping the file
//! under open readers is not safe with WAL.)
//!
//! A file created before incremental auto-vacuum (mode NONE) needs one full
//! `VACUUM` to switch modes; that first defragment blocks writes while it
//! runs, later ones do not.
//!
//! Readers are never blocked: WAL readers keep their snapshot while a step
//! commits.

use sqlx::sqlite::SqliteConnection;

use super::error::DbError;

/// Free pages returned to the file system per step: 256 pages of 4 KiB is
/// 1 MiB, a short pause for the writer.
pub(crate) const STEP_PAGES: u32 = 256;

/// sqlite's `auto_vacuum` value for INCREMENTAL.
const INCREMENTAL: i64 = 2;

/// What one step left to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VacuumStep {
    /// Pages still on the freelist after the step.
    pub free_pages: i64,
    /// Whether this step was the one-time full VACUUM of an older file.
    pub full_vacuum: bool,
}

/// Runs one defragment step on a writer connection (outside a transaction).
pub(crate) async fn vacuum_step(
    conn: &mut SqliteConnection,
    pages: u32,
) -> Result<VacuumStep, DbError> {
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
        .fetch_one(&mut *conn)
        .await?;
    let full_vacuum = mode != INCREMENTAL;
    if full_vacuum {
        tracing::warn!("database predates incremental vacuum: one full VACUUM (blocks writes)");
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM").execute(&mut *conn).await?;
    } else {
        sqlx::query(&format!("PRAGMA incremental_vacuum({pages})"))
            .execute(&mut *conn)
            .await?;
    }
    let free_pages: i64 = sqlx::query_scalar("PRAGMA freelist_count")
        .fetch_one(&mut *conn)
        .await?;
    Ok(VacuumStep {
        free_pages,
        full_vacuum,
    })
}

/// Copies what it can of the WAL back into the file. PASSIVE: it never
/// waits for readers (RESTART / TRUNCATE would, holding up the writer and so
/// every write for as long as a long read runs); the WAL file is reused,
/// not shrunk, and is not part of the reported sizes.
pub(crate) async fn checkpoint(conn: &mut SqliteConnection) -> Result<(), DbError> {
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    if busy != 0 {
        tracing::debug!("WAL checkpoint incomplete: readers still use it");
    }
    Ok(())
}

/// Size figures of one database file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    /// Bytes the file's pages take (`page_count * page_size`).
    pub size: u64,
    /// Bytes of pages in use (`(page_count - freelist_count) * page_size`):
    /// what a defragment would shrink the file to.
    pub in_use: u64,
}

impl DbSize {
    /// Both figures of two files added up.
    pub fn plus(self, other: DbSize) -> DbSize {
        DbSize {
            size: self.size.saturating_add(other.size),
            in_use: self.in_use.saturating_add(other.in_use),
        }
    }
}

/// Reads the size figures of a database through `conn` (one read
/// transaction, so the counts agree).
pub(crate) async fn db_size<'c, E>(conn: E) -> Result<DbSize, DbError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let (pages, free, page_size): (i64, i64, i64) = sqlx::query_as(
        "SELECT p.page_count, f.freelist_count, s.page_size
         FROM pragma_page_count() AS p, pragma_freelist_count() AS f, pragma_page_size() AS s",
    )
    .fetch_one(conn)
    .await?;
    let bytes = |pages: i64| u64::try_from(pages.max(0).saturating_mul(page_size)).unwrap_or(0);
    Ok(DbSize {
        size: bytes(pages),
        in_use: bytes(pages - free),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::{open_writer, Durability};

    #[tokio::test]
    async fn incremental_steps_return_freed_pages() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("d.db"), Durability::Normal)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&mut conn)
            .await
            .unwrap();
        for _ in 0..200 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(16384))")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let full = db_size(&mut conn).await.unwrap();
        sqlx::query("DELETE FROM t")
            .execute(&mut conn)
            .await
            .unwrap();
        let deleted = db_size(&mut conn).await.unwrap();
        assert_eq!(deleted.size, full.size, "deleting keeps the pages");
        assert!(deleted.in_use < full.in_use / 10, "{deleted:?}");

        let mut steps = 0;
        loop {
            let step = vacuum_step(&mut conn, 64).await.unwrap();
            assert!(!step.full_vacuum, "created with incremental auto-vacuum");
            steps += 1;
            if step.free_pages == 0 {
                break;
            }
        }
        assert!(steps > 1, "freed in several small steps");
        checkpoint(&mut conn).await.unwrap();
        let after = db_size(&mut conn).await.unwrap();
        assert_eq!(after.size, after.in_use);
        assert!(after.size < full.size / 10, "{after:?}");
    }

    #[tokio::test]
    async fn an_older_file_switches_to_incremental_once() {
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // A file created without incremental auto-vacuum, as before.
        let mut old = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&mut old)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (zeroblob(100000))")
            .execute(&mut old)
            .await
            .unwrap();
        sqlx::query("DELETE FROM t")
            .execute(&mut old)
            .await
            .unwrap();
        old.close().await.unwrap();

        let mut conn = open_writer(&path, Durability::Normal).await.unwrap();
        let first = vacuum_step(&mut conn, 8).await.unwrap();
        assert!(first.full_vacuum);
        assert_eq!(first.free_pages, 0);
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, INCREMENTAL);
        assert!(!vacuum_step(&mut conn, 8).await.unwrap().full_vacuum);
    }
}
