//! TEMPORARY stand-in until the destinations branch is merged: env file only.
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const ENV_FILE_HEADER: &str =
    "# detector managed store v1: keys moved here by `detector fix`. Keep it out of git; mode 0600.";

#[derive(Debug, Clone)]
pub enum Destination {
    EnvFile(PathBuf),
    Pass,
    SecretTool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DestinationError(String);

pub struct Entry {
    pub name: String,
    pub secret: Zeroizing<String>,
    pub note: String,
}

impl std::str::FromStr for Destination {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "env-file" => Ok(Destination::EnvFile(PathBuf::new())),
            "pass" => Ok(Destination::Pass),
            "secret-tool" => Ok(Destination::SecretTool),
            _ => match s.strip_prefix("env-file:") {
                Some(p) => Ok(Destination::EnvFile(PathBuf::from(p))),
                None => Err(DestinationError(format!("unknown --to `{s}`"))),
            },
        }
    }
}

impl Destination {
    pub fn default_env_file(home: &Path) -> PathBuf {
        home.join(".config/detector/keys.env")
    }
    pub fn check(&self) -> Result<(), DestinationError> {
        Ok(())
    }
    pub fn lookup(&self, name: &str) -> Result<Option<Zeroizing<String>>, DestinationError> {
        let Destination::EnvFile(path) = self else {
            return Ok(None);
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(None);
        };
        Ok(text.lines().find_map(|l| {
            let v = l
                .strip_prefix(name)?
                .strip_prefix("='")?
                .strip_suffix('\'')?;
            Some(Zeroizing::new(v.to_string()))
        }))
    }
    pub fn put(&self, entries: &[Entry]) -> Result<(), DestinationError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Destination::EnvFile(path) = self else {
            return Err(DestinationError("stub".into()));
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DestinationError(e.to_string()))?;
        }
        let exists = path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| DestinationError(e.to_string()))?;
        if !exists {
            writeln!(f, "{ENV_FILE_HEADER}").map_err(|e| DestinationError(e.to_string()))?;
        }
        for e in entries {
            writeln!(f, "# {}\n{}='{}'", e.note, e.name, e.secret.as_str())
                .map_err(|e| DestinationError(e.to_string()))?;
        }
        f.sync_all().map_err(|e| DestinationError(e.to_string()))
    }
    pub fn shell_load(&self, _names: &[&str]) -> String {
        match self {
            Destination::EnvFile(p) => format!("set -a; . '{}'; set +a", p.display()),
            _ => String::new(),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Destination::EnvFile(p) => format!("env file {}", p.display()),
            Destination::Pass => "pass".into(),
            Destination::SecretTool => "secret-tool".into(),
        }
    }
}
