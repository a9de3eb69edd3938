//! The inventory's schema, in versions: each migration is written for both backends, and runs
//! once, in the transaction that records it in `schema_version`. A store made by an older
//! detector is brought up to date when it is opened; one made by a newer detector is refused.
use super::db::{Db, DbError, Value};

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("migrations/1.sqlite.sql"),
        postgres: include_str!("migrations/1.postgres.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("migrations/2.sqlite.sql"),
        postgres: include_str!("migrations/2.postgres.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("migrations/3.sqlite.sql"),
        postgres: include_str!("migrations/3.postgres.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("migrations/4.sqlite.sql"),
        postgres: include_str!("migrations/4.postgres.sql"),
    },
];

/// The newest schema this detector writes.
pub const CURRENT: i64 = 4;

/// Any number, the same in every detector: the PostgreSQL advisory lock that serialises
/// migrations of one database.
const MIGRATION_LOCK: i64 = 0x6465_7465_6374_6f72; // "detector"

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("it was written by a newer detector (schema version {found}; this one knows up to {CURRENT}): upgrade detector")]
    Newer { found: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Bring the store's schema to [`CURRENT`], under a lock so that two writers opening a new
/// store at once migrate it once.
pub fn migrate(db: &mut Db) -> Result<(), SchemaError> {
    db.begin()?;
    match apply(db) {
        Ok(()) => Ok(db.commit()?),
        Err(err) => {
            db.rollback();
            Err(err)
        }
    }
}

fn apply(db: &mut Db) -> Result<(), SchemaError> {
    if db.is_postgres() {
        db.execute(
            "SELECT pg_advisory_xact_lock(?)",
            &[Value::Int(MIGRATION_LOCK)],
        )?;
    }
    db.batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL,
            tool_version TEXT NOT NULL
        )",
    )?;
    let found = db
        .query_int("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
        .unwrap_or(0);
    if found > CURRENT {
        return Err(SchemaError::Newer { found });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        tracing::info!(version = migration.version, "migrating the store");
        db.batch(if db.is_postgres() {
            migration.postgres
        } else {
            migration.sqlite
        })?;
        db.execute(
            "INSERT INTO schema_version (version, applied_at, tool_version) VALUES (?, ?, ?)",
            &[
                Value::Int(migration.version),
                Value::Int(chrono::Utc::now().timestamp()),
                Value::from(env!("CARGO_PKG_VERSION")),
            ],
        )?;
    }
    Ok(())
}
