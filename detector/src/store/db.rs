//! One way to talk to either database. Statements are written once, with `?` placeholders and
//! PostgreSQL's `LEAST`/`GREATEST`: SQLite runs them with its two-argument `min`/`max`,
//! PostgreSQL with `$n` placeholders. Values are integers and text (times are Unix seconds),
//! so every statement means the same on both.
use std::time::Duration;

use rusqlite::types::ValueRef;

/// A value of a statement or of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Text(String),
    /// A NULL of an integer column.
    NullInt,
    /// A NULL of a text column.
    NullText,
}

impl Value {
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn opt_int(value: Option<i64>) -> Value {
        value.map_or(Value::NullInt, Value::Int)
    }

    pub fn opt_text(value: Option<&str>) -> Value {
        value.map_or(Value::NullText, |s| Value::Text(s.to_string()))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Int(i64::from(b))
    }
}

pub type Row = Vec<Value>;

/// What a database said, in one line.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another writer holds the store past the bounded wait.
    #[error("locked by another writer for {0:?}")]
    Locked(Duration),
    /// The server gave up this transaction to let another through (a deadlock, a
    /// serialization failure): writing it again succeeds.
    #[error("{0}")]
    Retry(String),
    #[error("{0}")]
    Failed(String),
}

/// How long a writer waits for another one to finish before it gives up.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// An open connection to one of the two backends.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Postgres),
}

pub struct Postgres {
    client: tokio_postgres::Client,
    runtime: tokio::runtime::Runtime,
    /// Statements prepared on this connection, by their text (as SQLite's `prepare_cached`):
    /// a statement run again costs one round trip, not two.
    statements: std::collections::HashMap<String, tokio_postgres::Statement>,
}

/// Prepared statements a connection keeps; past this many, the cache starts afresh.
const STATEMENT_CACHE: usize = 128;

/// Parameters of one statement of [`Db::insert_rows`]: under SQLite's limit (32,766) and
/// PostgreSQL's (65,535).
const MAX_PARAMS: usize = 16_000;

impl Postgres {
    fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .runtime
            .block_on(self.client.prepare(sql))
            .map_err(pg_error)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

impl Db {
    /// A SQLite database file (made when missing), in WAL mode, waiting up to [`LOCK_WAIT`]
    /// for another writer.
    pub fn sqlite(path: &std::path::Path) -> Result<Db, DbError> {
        let connection = rusqlite::Connection::open(path).map_err(sqlite_error)?;
        connection.busy_timeout(LOCK_WAIT).map_err(sqlite_error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(sqlite_error)?;
        Ok(Db::Sqlite(connection))
    }

    /// A PostgreSQL server, by its `postgres://` URL (no TLS: a server on this host or a
    /// private network; a connection times out after 10 s).
    pub fn postgres(url: &str) -> Result<Db, DbError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::Failed(e.to_string()))?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| DbError::Failed(e.to_string()))?;
        config.connect_timeout(Duration::from_secs(10));
        let client = runtime.block_on(async {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(pg_error)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(%err, "the store's connection ended");
                }
            });
            let lock_wait = format!("SET lock_timeout = '{}s'", LOCK_WAIT.as_secs());
            client.batch_execute(&lock_wait).await.map_err(pg_error)?;
            Ok::<_, DbError>(client)
        })?;
        Ok(Db::Postgres(Postgres {
            client,
            runtime,
            statements: std::collections::HashMap::new(),
        }))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Statements with no parameters and no rows (schema changes).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).map_err(sqlite_error),
            Db::Postgres(pg) => pg
                .runtime
                .block_on(pg.client.batch_execute(sql))
                .map_err(pg_error),
        }
    }

    /// Start a write transaction: SQLite takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// that a writer waits at the start rather than failing halfway.
    pub fn begin(&mut self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(_) => self.batch("BEGIN IMMEDIATE"),
            Db::Postgres(_) => self.batch("BEGIN"),
        }
    }

    pub fn commit(&mut self) -> Result<(), DbError> {
        self.batch("COMMIT")
    }

    pub fn rollback(&mut self) {
        let _ = self.batch("ROLLBACK");
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut statement = c.prepare_cached(&sqlite_sql(sql)).map_err(sqlite_error)?;
                let changed = statement
                    .execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map_err(sqlite_error)?;
                Ok(changed as u64)
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(&postgres_sql(sql))?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                pg.runtime
                    .block_on(pg.client.execute(&statement, &refs))
                    .map_err(pg_error)
            }
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut statement = c.prepare_cached(&sqlite_sql(sql)).map_err(sqlite_error)?;
                let columns = statement.column_count();
                let mut rows = statement
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map_err(sqlite_error)?;
                let mut out = Vec::new();
                while let Some(row) = rows.next().map_err(sqlite_error)? {
                    let mut values = Vec::with_capacity(columns);
                    for i in 0..columns {
                        values.push(match row.get_ref(i).map_err(sqlite_error)? {
                            ValueRef::Integer(n) => Value::Int(n),
                            ValueRef::Real(f) => Value::Int(f as i64),
                            ValueRef::Text(t) | ValueRef::Blob(t) => {
                                Value::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            ValueRef::Null => Value::NullText,
                        });
                    }
                    out.push(values);
                }
                Ok(out)
            }
            Db::Postgres(pg) => {
                let statement = pg.statement(&postgres_sql(sql))?;
                let boxed = pg_params(params);
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                let rows = pg
                    .runtime
                    .block_on(pg.client.query(&statement, &refs))
                    .map_err(pg_error)?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// The first column of the first row, as an integer (an id a statement `RETURNING`).
    pub fn query_int(&mut self, sql: &str, params: &[Value]) -> Result<Option<i64>, DbError> {
        Ok(self
            .query(sql, params)?
            .first()
            .and_then(|row| row.first())
            .and_then(Value::int))
    }
}

impl Db {
    /// Many rows in few statements: `{insert} VALUES (?, …), (?, …), … {tail}`, as many rows a
    /// statement as the backends take, in the order given (so that rows are locked in that
    /// order). Every row has as many values as the first. The rows of `tail`'s `RETURNING`
    /// (if any), of every statement.
    pub fn insert_rows(
        &mut self,
        insert: &str,
        rows: &[Row],
        tail: &str,
    ) -> Result<Vec<Row>, DbError> {
        let Some(width) = rows.first().map(Vec::len).filter(|w| *w > 0) else {
            return Ok(Vec::new());
        };
        if rows.iter().any(|row| row.len() != width) {
            return Err(DbError::Failed(format!(
                "rows of unequal width for `{insert}`"
            )));
        }
        let one = format!("({})", vec!["?"; width].join(", "));
        let mut out = Vec::new();
        for chunk in rows.chunks((MAX_PARAMS / width).max(1)) {
            let sql = format!(
                "{insert} VALUES {} {tail}",
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
            out.extend(self.query(&sql, &params)?);
        }
        Ok(out)
    }
}

/// `LEAST(`/`GREATEST(` are SQLite's multi-argument `min(`/`max(`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace("LEAST(", "min(").replace("GREATEST(", "max(")
}

/// `?` → `$1`, `$2`, … (the statements here hold no `?` in a literal).
fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

fn sqlite_value(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Int(n) => rusqlite::types::Value::Integer(*n),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::NullInt | Value::NullText => rusqlite::types::Value::Null,
    }
}

fn pg_params(params: &[Value]) -> Vec<Box<dyn tokio_postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync> {
            match v {
                Value::Int(n) => Box::new(*n),
                Value::Text(s) => Box::new(s.clone()),
                Value::NullInt => Box::new(None::<i64>),
                Value::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

fn pg_row(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    use tokio_postgres::types::Type;
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = if *ty == Type::INT8 {
            Value::opt_int(row.try_get::<_, Option<i64>>(i).map_err(pg_error)?)
        } else if *ty == Type::INT4 {
            Value::opt_int(
                row.try_get::<_, Option<i32>>(i)
                    .map_err(pg_error)?
                    .map(i64::from),
            )
        } else if *ty == Type::BOOL {
            Value::opt_int(
                row.try_get::<_, Option<bool>>(i)
                    .map_err(pg_error)?
                    .map(i64::from),
            )
        } else {
            match row.try_get::<_, Option<String>>(i).map_err(pg_error)? {
                Some(s) => Value::Text(s),
                None => Value::NullText,
            }
        };
        values.push(value);
    }
    Ok(values)
}

fn sqlite_error(err: rusqlite::Error) -> DbError {
    match err.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            DbError::Locked(LOCK_WAIT)
        }
        _ => DbError::Failed(err.to_string().replace('\n', " ")),
    }
}

fn pg_error(err: tokio_postgres::Error) -> DbError {
    // A lock not granted within `lock_timeout`.
    use tokio_postgres::error::SqlState;
    match err.code() {
        Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE => return DbError::Locked(LOCK_WAIT),
        Some(code)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                // A place or key `store prune` removed while this run was being written.
                || *code == SqlState::FOREIGN_KEY_VIOLATION =>
        {
            return DbError::Retry(err.to_string());
        }
        _ => {}
    }
    let text = match err.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    };
    DbError::Failed(text.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_two_dialects() {
        assert_eq!(
            postgres_sql("UPDATE k SET a = LEAST(a, ?) WHERE id = ?"),
            "UPDATE k SET a = LEAST(a, $1) WHERE id = $2"
        );
        assert_eq!(
            sqlite_sql("SET a = LEAST(a, ?), b = GREATEST(b, ?)"),
            "SET a = min(a, ?), b = max(b, ?)"
        );
    }

    #[test]
    fn a_sqlite_store_round_trips_values() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::sqlite(&dir.path().join("s.sqlite")).unwrap();
        db.batch("CREATE TABLE t (a INTEGER, b TEXT)").unwrap();
        db.execute(
            "INSERT INTO t VALUES (?, ?)",
            &[Value::Int(7), Value::NullText],
        )
        .unwrap();
        let rows = db.query("SELECT a, b FROM t", &[]).unwrap();
        assert_eq!(rows, [vec![Value::Int(7), Value::NullText]]);
    }

    #[test]
    fn many_rows_go_in_as_few_statements_and_say_what_they_did() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::sqlite(&dir.path().join("s.sqlite")).unwrap();
        db.batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER)")
            .unwrap();
        // More rows than one statement takes: several statements, one answer.
        let rows: Vec<Row> = (0..10_000)
            .map(|i| {
                vec![
                    Value::Text(format!("k{i:05}")),
                    Value::opt_int((i % 2 == 0).then_some(i)),
                ]
            })
            .collect();
        let returned = db
            .insert_rows(
                "INSERT INTO t (name, n)",
                &rows,
                "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING name, id",
            )
            .unwrap();
        assert_eq!(returned.len(), 10_000);
        // Again, and one new: the old rows keep their ids.
        let mut again = rows[..3].to_vec();
        again.push(vec![Value::from("new"), Value::NullInt]);
        let ids: std::collections::HashMap<String, i64> = db
            .insert_rows(
                "INSERT INTO t (name, n)",
                &again,
                "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING name, id",
            )
            .unwrap()
            .iter()
            .map(|r| (r[0].text().unwrap().to_string(), r[1].int().unwrap()))
            .collect();
        assert_eq!(ids.len(), 4);
        let first = db
            .query_int("SELECT id FROM t WHERE name = ?", &["k00000".into()])
            .unwrap();
        assert_eq!(ids.get("k00000").copied(), first);
        assert_eq!(ids["new"], 10_001);
        let count = db
            .query_int("SELECT COUNT(*) FROM t WHERE n IS NULL", &[])
            .unwrap();
        assert_eq!(count, Some(5_001));
        // Nothing to write: no statement; rows of unequal width: refused.
        assert!(db
            .insert_rows("INSERT INTO t (name, n)", &[], "")
            .unwrap()
            .is_empty());
        let ragged = [
            vec![Value::from("a")],
            vec![Value::from("b"), Value::Int(1)],
        ];
        assert!(db.insert_rows("INSERT INTO t (name)", &ragged, "").is_err());
    }
}
