//! The key inventory: every audit remembered, in SQLite on one host or PostgreSQL for an
//! organisation (`--store sqlite:PATH` / `--store postgres://…`, or `DETECTOR_STORE`). One
//! data-access layer ([`db`]) and one set of versioned migrations ([`schema`]) serve both.
//!
//! A run's report goes in as one transaction ([`record`]): its keys (fingerprints, redacted
//! previews: never a secret), each key's state in the run, and where it was seen. What the
//! inventory says of a key over time (first detected, fixed, reopened, time to fix) is derived
//! from the runs when it is read ([`inventory`]), so reports ingested in any order give the
//! same answer. The agent's logs go in beside the runs ([`agent_log`]): who read which file,
//! and where a log's hash chain breaks.
pub mod agent_log;
pub mod db;
pub mod inventory;
pub mod prune;
pub mod record;
pub mod schema;

use std::path::{Path, PathBuf};

pub use agent_log::{AgentRead, ChainBreak, ReadBy, Reads};
pub use inventory::{Changes, Filter, Inventory};
pub use record::{Origin, Recorded};

use db::{Db, DbError};

/// Where the inventory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL (its password never printed).
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {store}: {reason}")]
    Failed { store: String, reason: String },
    #[error("`{0}` is not a store: give sqlite:PATH or postgres://USER@HOST/DB")]
    BadUrl(String),
}

impl StoreUrl {
    pub fn parse(text: &str) -> Result<StoreUrl, StoreError> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::BadUrl(text.to_string()));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(text.to_string()));
        }
        Err(StoreError::BadUrl(redact_url(text)))
    }

    /// The host's own inventory: `/var/lib/detector/inventory.sqlite` for root, else under
    /// the user's data directory (`~/.local/share/detector/inventory.sqlite`; macOS
    /// `~/Library/Application Support/detector`, Windows `%LOCALAPPDATA%\detector`).
    pub fn host_default() -> Option<StoreUrl> {
        let dir = if crate::platform::is_root() {
            PathBuf::from("/var/lib/detector")
        } else {
            crate::platform::user_data_dir()?.join("detector")
        };
        Some(StoreUrl::Sqlite(dir.join("inventory.sqlite")))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// A URL with the password of its user info left out.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// An open inventory.
pub struct Store {
    db: Db,
    url: StoreUrl,
}

impl Store {
    /// Open (or make) the store and bring its schema up to date.
    pub fn open(url: &StoreUrl) -> Result<Store, StoreError> {
        let failed = |reason: String| StoreError::Failed {
            store: url.to_string(),
            reason,
        };
        let mut db = match url {
            StoreUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    make_private_dir(dir).map_err(|e| {
                        failed(format!(
                            "cannot make {}: {}",
                            dir.display(),
                            crate::source::fs::io_reason(&e)
                        ))
                    })?;
                }
                Db::sqlite(path)
            }
            StoreUrl::Postgres(text) => Db::postgres(text),
        }
        .map_err(|e| failed(e.to_string()))?;
        schema::migrate(&mut db).map_err(|e| failed(e.to_string()))?;
        Ok(Store {
            db,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn failed(&self, err: DbError) -> StoreError {
        StoreError::Failed {
            store: self.url.to_string(),
            reason: err.to_string(),
        }
    }
}

/// The store's (or the spool's) directory, made private (0700) when it is made.
pub(crate) fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    use crate::platform::CreateMode;
    std::fs::DirBuilder::new()
        .recursive(true)
        .unix_mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_backend_and_never_print_a_password() {
        assert_eq!(
            StoreUrl::parse("sqlite:/var/lib/x.sqlite").unwrap(),
            StoreUrl::Sqlite("/var/lib/x.sqlite".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x").unwrap(),
            StoreUrl::Sqlite("/tmp/x".into())
        );
        let pg = StoreUrl::parse("postgres://al:s3cret@db.example:5432/inv").unwrap();
        assert_eq!(pg.to_string(), "postgres://al:***@db.example:5432/inv");
        assert!(StoreUrl::parse("mysql://x").is_err());
        assert!(StoreUrl::parse("sqlite:").is_err());
    }
}
