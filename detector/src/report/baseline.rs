//! Baselines: the keys a team has already accepted (or is already rotating), by fingerprint,
//! so that CI fails only on new ones. `--write-baseline FILE` records the keys of a run;
//! `--baseline FILE` leaves those keys out of the report and counts them in
//! `summary.suppressed`. A saved JSON report works as a baseline too.
//!
//! Fingerprints are keyed with the org key: a baseline only matches reports made with the
//! same org key.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Report;
use crate::detect::Severity;

pub const BASELINE_SCHEMA: &str = "detector/baseline/v1";

/// A baseline that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("cannot {action} baseline {}: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("baseline {}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        problem: BaselineProblem,
    },
}

/// What is wrong with a file given as a baseline.
#[derive(Debug, thiserror::Error)]
pub enum BaselineProblem {
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error(
        "neither a baseline (`{BASELINE_SCHEMA}`) nor a report (`{}`)",
        super::SCHEMA
    )]
    Schema,
    #[error("no `keys` list")]
    NoKeys,
    #[error("keys[{0}] has no fingerprint")]
    NoFingerprint(usize),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Baseline {
    pub schema: String,
    pub generated_at: DateTime<Utc>,
    pub keys: Vec<BaselineKey>,
}

/// A key by fingerprint, with enough beside it for a reviewer to recognise it.
#[derive(Debug, Serialize, Deserialize)]
pub struct BaselineKey {
    pub fingerprint: String,
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub redacted: String,
    /// The first place it was seen, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Baseline {
    /// Every key of `report`.
    pub fn of(report: &Report) -> Baseline {
        Baseline {
            schema: BASELINE_SCHEMA.to_string(),
            generated_at: report.generated_at,
            keys: report
                .keys
                .iter()
                .map(|k| BaselineKey {
                    fingerprint: k.fingerprint.clone(),
                    rule: k.rule.clone(),
                    redacted: k.redacted.clone(),
                    location: k.locations.first().map(|l| l.path().display().to_string()),
                })
                .collect(),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), BaselineError> {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        std::fs::write(path, text).map_err(|error| BaselineError::Io {
            action: "write",
            path: path.to_path_buf(),
            error,
        })
    }

    /// The fingerprints in a baseline file, or in a saved JSON report.
    pub fn fingerprints(path: &Path) -> Result<BTreeSet<String>, BaselineError> {
        let bytes =
            crate::source::fs::read_named_file(path).map_err(|error| BaselineError::Io {
                action: "read",
                path: path.to_path_buf(),
                error,
            })?;
        parse_fingerprints(&bytes).map_err(|problem| BaselineError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }
}

/// The fingerprints of a baseline or report; what is wrong with it, if it is neither.
pub(crate) fn parse_fingerprints(bytes: &[u8]) -> Result<BTreeSet<String>, BaselineProblem> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(BaselineProblem::NotJson)?;
    let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
    if schema != BASELINE_SCHEMA && schema != super::SCHEMA {
        return Err(BaselineProblem::Schema);
    }
    let Some(keys) = value.get("keys").and_then(|k| k.as_array()) else {
        return Err(BaselineProblem::NoKeys);
    };
    keys.iter()
        .enumerate()
        .map(|(i, key)| {
            key.get("fingerprint")
                .and_then(|f| f.as_str())
                .map(str::to_string)
                .ok_or(BaselineProblem::NoFingerprint(i))
        })
        .collect()
}

/// Leave the baseline's keys out of `report`, count them as suppressed, and count again.
pub fn suppress(report: &mut Report, baseline: &BTreeSet<String>, fail_on: Severity) {
    let before = report.keys.len();
    report.keys.retain(|k| !baseline.contains(&k.fingerprint));
    report.summary.suppressed += before - report.keys.len();
    report.recount(fail_on);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_baselines_and_reports_only() {
        let baseline = serde_json::json!({
            "schema": BASELINE_SCHEMA, "generated_at": "2025-01-01T00:00:00Z",
            "keys": [{"fingerprint": "hmac-sha256:aa", "rule": "x", "redacted": "…"}]
        });
        let set = parse_fingerprints(baseline.to_string().as_bytes()).unwrap();
        assert!(set.contains("hmac-sha256:aa"));
        let report =
            serde_json::json!({"schema": super::super::SCHEMA, "keys": [{"fingerprint": "f"}]});
        assert_eq!(
            parse_fingerprints(report.to_string().as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert!(parse_fingerprints(b"{\"keys\": []}").is_err());
        assert!(parse_fingerprints(b"not json").is_err());
        let broken = serde_json::json!({"schema": BASELINE_SCHEMA, "keys": [{"rule": "x"}]});
        let err = parse_fingerprints(broken.to_string().as_bytes()).unwrap_err();
        assert!(format!("{err:#}").contains("keys[0]"));
    }
}
