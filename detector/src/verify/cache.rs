//! What providers said, by fingerprint, for `--verify-ttl`: under the XDG cache directory
//! (`$XDG_CACHE_HOME/detector/verify.json`, else `~/.cache/…`; macOS `~/Library/Caches/…`,
//! Windows `%LOCALAPPDATA%\…`), mode 0600 in a 0700 folder (where files have modes),
//! fingerprints and outcomes only. Only `active` and `revoked` are kept: `unknown` is asked
//! again. Written whole to a temporary file and renamed, merged with what another run wrote
//! meanwhile.
use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{State, Verification};
use crate::platform::CreateMode;

const SCHEMA: &str = "detector/verify-cache/v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    verifier: String,
    state: State,
    checked_at: DateTime<Utc>,
    #[serde(default)]
    detail: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    schema: String,
    entries: BTreeMap<String, Entry>,
}

pub struct Cache {
    path: PathBuf,
    file: File,
    /// Outcomes of this run, written by [`Cache::save`].
    fresh: BTreeMap<String, Entry>,
}

/// The cache file's default place.
pub fn default_path() -> Option<PathBuf> {
    let base = crate::platform::user_cache_dir()?;
    Some(base.join("detector").join("verify.json"))
}

fn read(path: &Path) -> File {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
            Ok(file) if file.schema == SCHEMA => file,
            _ => {
                tracing::warn!(path = %path.display(), "verification cache unreadable: ignored");
                File::default()
            }
        },
        Err(_) => File::default(),
    }
}

impl Cache {
    pub fn open(path: PathBuf) -> Cache {
        let file = read(&path);
        Cache {
            path,
            file,
            fresh: BTreeMap::new(),
        }
    }

    /// What `verifier` said of `fingerprint` less than `ttl` ago.
    pub fn get(
        &self,
        fingerprint: &str,
        verifier: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Option<Verification> {
        let entry = self.file.entries.get(fingerprint)?;
        let age = now.signed_duration_since(entry.checked_at).to_std().ok()?;
        (entry.verifier == verifier && age < ttl).then(|| Verification {
            state: entry.state,
            checked_at: entry.checked_at,
            detail: entry.detail.clone(),
            verifier: Some(entry.verifier.clone()),
            cached: true,
        })
    }

    pub fn put(&mut self, fingerprint: &str, verification: &Verification) {
        let (Some(verifier), State::Active | State::Revoked) =
            (&verification.verifier, verification.state)
        else {
            return;
        };
        self.fresh.insert(
            fingerprint.to_string(),
            Entry {
                verifier: verifier.clone(),
                state: verification.state,
                checked_at: verification.checked_at,
                detail: verification.detail.clone(),
            },
        );
    }

    /// Write this run's outcomes over what is on disk now.
    pub fn save(self) -> std::io::Result<()> {
        if self.fresh.is_empty() {
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .unix_mode(0o700)
            .create(dir)?;
        let mut file = read(&self.path);
        file.schema = SCHEMA.to_string();
        file.entries.extend(self.fresh);
        let text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let temp = dir.join(format!(".verify.json.{}", std::process::id()));
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .unix_mode(0o600)
            .open(&temp)?;
        out.write_all(&text)?;
        out.sync_all()?;
        std::fs::rename(&temp, &self.path)
    }
}
