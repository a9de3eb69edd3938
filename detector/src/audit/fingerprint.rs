//! The org key, key fingerprints and redacted previews: how a key is named without being shown.
//!
//! A fingerprint is `HMAC-SHA256(org key, secret)`: every host that shares the org key gives a
//! key the same fingerprint, so reports merge across hosts, and nobody without the org key can
//! test a guess against it.
use std::{
    fs::{DirBuilder, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use crate::platform::{self, CreateMode};
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// The environment variable that holds the org key (any string).
pub const ORG_KEY_ENV: &str = "DETECTOR_ORG_KEY";

/// Why there is no org key to fingerprint with.
#[derive(Debug, thiserror::Error)]
pub enum OrgKeyError {
    #[error("no org key: set {ORG_KEY_ENV}, pass --org-key-file, or set HOME")]
    Missing,
    #[error("org key file {} is empty", .0.display())]
    Empty(PathBuf),
    #[error("the system random generator failed")]
    Random,
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
}

impl OrgKeyError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OrgKeyError {
        let path = path.to_path_buf();
        move |error| OrgKeyError::Io {
            action,
            path,
            error,
        }
    }
}

/// The secret all fingerprints are keyed with.
#[derive(Clone)]
pub struct OrgKey {
    key: hmac::Key,
    /// Where it came from, for logs (never the key itself).
    pub origin: String,
}

impl std::fmt::Debug for OrgKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl OrgKey {
    pub fn from_bytes(bytes: &[u8], origin: impl Into<String>) -> OrgKey {
        OrgKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
            origin: origin.into(),
        }
    }

    /// `--org-key-file` when given, else `$DETECTOR_ORG_KEY`, else the default key file,
    /// created with 32 random bytes (mode 0600) the first time.
    pub fn load(file: Option<&Path>) -> Result<OrgKey, OrgKeyError> {
        if let Some(path) = file {
            return OrgKey::from_file(path);
        }
        if let Some(value) = std::env::var_os(ORG_KEY_ENV).filter(|v| !v.is_empty()) {
            return Ok(OrgKey::from_bytes(value.as_encoded_bytes(), ORG_KEY_ENV));
        }
        let Some(path) = default_key_path() else {
            return Err(OrgKeyError::Missing);
        };
        OrgKey::from_file(&path)
    }

    /// The key in `path` (its text, surrounding whitespace trimmed); a missing file is created.
    pub fn from_file(path: &Path) -> Result<OrgKey, OrgKeyError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key_file(path)?,
            Err(e) => return Err(OrgKeyError::io("read org key file", path)(e)),
        };
        let key = bytes.trim_ascii();
        if key.is_empty() {
            return Err(OrgKeyError::Empty(path.to_path_buf()));
        }
        if let Some(mode) = std::fs::metadata(path)
            .ok()
            .as_ref()
            .and_then(platform::mode)
        {
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "org key file {} is accessible to other users (mode {:o}); run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                );
            }
        }
        Ok(OrgKey::from_bytes(key, path.display().to_string()))
    }

    /// `hmac-sha256:<hex>` of `secret`.
    pub fn fingerprint(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
    }
}

/// `$XDG_CONFIG_HOME/detector/org.key`, else `~/.config/detector/org.key` (macOS
/// `~/Library/Application Support/detector/org.key`, Windows `%APPDATA%\detector\org.key`).
pub fn default_key_path() -> Option<PathBuf> {
    let config = platform::user_config_dir()?;
    Some(config.join("detector").join("org.key"))
}

/// Write 32 fresh random bytes (hex) to `path`, mode 0600, never replacing an existing file
/// (another process may have won the race: then its key is the one).
fn create_key_file(path: &Path) -> Result<Vec<u8>, OrgKeyError> {
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| OrgKeyError::Random)?;
    let text = format!("{}\n", hex::encode(raw));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .unix_mode(0o700)
            .create(dir)
            .map_err(OrgKeyError::io("create directory", dir))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .unix_mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(OrgKeyError::io("write org key file", path))?;
            tracing::info!("created org key file {}", path.display());
            Ok(text.into_bytes())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(OrgKeyError::io("read org key file", path))
        }
        Err(e) => Err(OrgKeyError::io("create org key file", path)(e)),
    }
}

/// A preview that identifies a key to its owner without giving it away: the first and last
/// few characters, never more than a third of the secret (`sc-l…f456`).
pub fn redact(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let shown = (chars.len() / 6).min(4);
    if shown == 0 {
        return "…".to_string();
    }
    let head: String = chars[..shown].iter().collect();
    let tail: String = chars[chars.len() - shown..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_the_org_key_only() {
        let secret = ["sc-live-", &"7d".repeat(10)].concat();
        let a = OrgKey::from_bytes(b"org-a", "test");
        let b = OrgKey::from_bytes(b"org-b", "test");
        assert_eq!(a.fingerprint(&secret), a.fingerprint(&secret));
        assert_ne!(a.fingerprint(&secret), b.fingerprint(&secret));
        let fp = a.fingerprint(&secret);
        assert!(fp.starts_with("hmac-sha256:"));
        assert_eq!(fp.len(), "hmac-sha256:".len() + 64);
        assert!(!fp.contains(&secret));
    }

    #[test]
    fn redaction_never_shows_more_than_a_third() {
        let key = ["sc-live-", "0a1b2c3d4e5f", "f456"].concat();
        assert_eq!(redact(&key), "sc-l…f456");
        for len in 0..80 {
            let secret: String = "abcdefghij".chars().cycle().take(len).collect();
            let shown = redact(&secret).chars().filter(|c| *c != '…').count();
            assert!(shown * 3 <= len.max(1), "{len}: {shown}");
        }
        assert_eq!(redact("short"), "…");
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/detector/org.key");
        let first = OrgKey::from_file(&path).unwrap();
        // (Where files have modes.)
        if let Some(mode) = platform::mode(&std::fs::metadata(&path).unwrap()) {
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let again = OrgKey::from_file(&path).unwrap();
        assert_eq!(first.fingerprint("x"), again.fingerprint("x"));
        // The same text given in the environment gives the same fingerprints.
        let env = OrgKey::from_bytes(text.trim().as_bytes(), ORG_KEY_ENV);
        assert_eq!(first.fingerprint("x"), env.fingerprint("x"));

        let empty = dir.path().join("empty.key");
        std::fs::write(&empty, "\n").unwrap();
        assert!(OrgKey::from_file(&empty).is_err());
    }
}
