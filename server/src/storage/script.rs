//! `Script`: a write transaction sent to sqlite as one multi-statement query.
//!
//! sqlx runs a connection's statements on that connection's worker thread,
//! one request-and-reply between threads per statement. A transaction of
//! begin, a few inserts, a few meta rows and commit costs as many thread
//! hand-offs, and on the write path (every raft append, every apply) those
//! hand-offs cost more than the statements. A script carries the whole
//! transaction in one query: one hand-off, whatever its length.
//!
//! Parameters are plain `?` and bound in order: sqlx numbers them across the
//! statements of a query, so a numbered `?NNN` would refer to the whole
//! script's arguments, not its own statement's.

use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Arguments, Encode, Sqlite, Type};

use super::error::DbError;

/// A transaction being built: statements and their arguments, in order.
pub(crate) struct Script<'q> {
    sql: String,
    args: SqliteArguments<'q>,
    statements: usize,
}

impl<'q> Script<'q> {
    /// An empty transaction.
    pub(crate) fn begin() -> Self {
        Script {
            sql: String::from("BEGIN;\n"),
            args: SqliteArguments::default(),
            statements: 0,
        }
    }

    /// Appends one statement (without a trailing `;`); bind its parameters
    /// next, in order.
    pub(crate) fn statement(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.statements += 1;
        self
    }

    /// Binds the next `?`.
    pub(crate) fn bind<T>(&mut self, value: T) -> Result<&mut Self, DbError>
    where
        T: Encode<'q, Sqlite> + Type<Sqlite> + 'q,
    {
        self.args.add(value).map_err(DbError::Bind)?;
        Ok(self)
    }

    /// Whether no statement was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.statements == 0
    }

    /// Runs the transaction and commits it. On failure nothing of it stays:
    /// the statements that ran are rolled back.
    pub(crate) async fn commit(self, conn: &mut SqliteConnection) -> Result<(), DbError> {
        let Script { mut sql, args, .. } = self;
        sql.push_str("COMMIT;");
        match sqlx::query_with(&sql, args).execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(err) => {
                // A statement failed after `BEGIN` ran: the transaction is
                // still open. (If the failure was `COMMIT` itself, sqlite
                // may have rolled back already, and this fails harmlessly.)
                if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                    tracing::debug!(error = %rollback, "rollback after a failed script");
                }
                Err(err.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    async fn open() -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    async fn rows(conn: &mut SqliteConnection) -> Vec<(String, Vec<u8>)> {
        sqlx::query_as("SELECT k, v FROM t ORDER BY k")
            .fetch_all(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn binds_each_statements_parameters_in_order() {
        let mut conn = open().await;
        let mut script = Script::begin();
        script
            .statement("INSERT INTO t (k, v) VALUES (?, ?), (?, ?)")
            .bind("a")
            .unwrap()
            .bind(b"1".as_slice())
            .unwrap()
            .bind("b")
            .unwrap()
            .bind(b"2".as_slice())
            .unwrap();
        script.statement("UPDATE t SET v = ? WHERE k = ?");
        script.bind(b"3".as_slice()).unwrap().bind("a").unwrap();
        script.commit(&mut conn).await.unwrap();
        assert_eq!(
            rows(&mut conn).await,
            vec![("a".into(), b"3".to_vec()), ("b".into(), b"2".to_vec())]
        );
    }

    #[tokio::test]
    async fn a_failing_statement_leaves_nothing_and_the_connection_usable() {
        let mut conn = open().await;
        let mut script = Script::begin();
        script.statement("INSERT INTO t (k, v) VALUES (?, ?)");
        script.bind("a").unwrap().bind(b"1".as_slice()).unwrap();
        // NOT NULL violation after a statement that succeeded.
        script.statement("INSERT INTO t (k, v) VALUES (?, NULL)");
        script.bind("b").unwrap();
        assert!(script.commit(&mut conn).await.is_err());
        assert!(rows(&mut conn).await.is_empty());

        let mut script = Script::begin();
        script.statement("INSERT INTO t (k, v) VALUES (?, ?)");
        script.bind("c").unwrap().bind(b"2".as_slice()).unwrap();
        script.commit(&mut conn).await.unwrap();
        assert_eq!(rows(&mut conn).await, vec![("c".into(), b"2".to_vec())]);
    }
}
