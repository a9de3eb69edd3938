//! Report writers: json, sarif, markdown, html, text. A writer never re-reads a source: it
//! takes the finished [`Report`] and renders it. The human formats render one view of it
//! (`view`), worked out once, so they say the same things. A report saved as JSON reads back
//! into the same [`Report`], so saved reports can be rendered again, filtered by a baseline,
//! and merged across hosts.
pub mod baseline;
pub mod escape;
pub mod html;
pub mod inventory;
pub mod json;
pub mod markdown;
pub mod merge;
pub mod sarif;
pub mod text;
mod view;

use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

use crate::{
    audit::{Key, ServerEntry, Status, WorkloadReport},
    detect::Severity,
    path_text,
};

/// The `schema` of every JSON report this version writes.
pub const SCHEMA: &str = "detector/report/v1";

/// A saved report that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read report {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("report {}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: NotAReport },
}

/// Why bytes are not a v1 report.
#[derive(Debug, thiserror::Error)]
pub enum NotAReport {
    #[error("not JSON (save reports with --format json): {0}")]
    NotJson(serde_json::Error),
    #[error("schema `{0}` is not `{SCHEMA}`")]
    Schema(String),
    #[error("not a detector report (no `schema`; save reports with --format json)")]
    NoSchema,
    #[error("{0}")]
    Shape(serde_json::Error),
}

/// One scan's result, grouped by key. What every writer renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    #[serde(serialize_with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// The host the scan ran on, so that merged reports say where each location is.
    pub host: Option<String>,
    /// The hosts whose reports were merged into this one (empty for a single scan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// `audit` for a host's audit: its runs follow each other in the key inventory (a scan's
    /// runs are known by their targets). Written only for an audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub keys: Vec<Key>,
    pub mcp_servers: Vec<ServerEntry>,
    /// Every workload found (Compose services, Kubernetes objects, containers), with how
    /// each secret-bearing value is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadReport>,
    pub targets: Vec<TargetReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// What one target was, what was read from it, and what could not be.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TargetReport {
    /// The host that scanned it (set when reports of many hosts are merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// As given on the command line, normalised (`dir:/srv/app`).
    pub target: String,
    /// `dir`, `file`, `mcp`, …
    pub kind: String,
    /// True when the target could not be read at all (its first error says why).
    pub failed: bool,
    pub objects_scanned: u64,
    pub bytes_scanned: u64,
    /// Objects not scanned, counted by reason (`too-large`, `binary`, `excluded`, …).
    #[serde(default)]
    pub skipped: BTreeMap<String, u64>,
    /// Objects not scanned, each with its path and reason (the first
    /// [`MAX_NOT_SCANNED`]; `skipped` counts them all).
    #[serde(default)]
    pub not_scanned: Vec<NotScanned>,
    pub duration_ms: u64,
    /// MCP client configs read (parsed or not).
    #[serde(default)]
    pub mcp_configs: u64,
    #[serde(default)]
    pub unparsed_configs: Vec<UnparsedConfig>,
    /// Git repositories met in a directory walk: their internals were not read as files;
    /// `git:PATH` (or `detector audit`) reads their history.
    #[serde(
        default,
        serialize_with = "path_text::many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub repositories: Vec<PathBuf>,
    #[serde(default)]
    pub errors: Vec<TargetIssue>,
}

/// How many objects not scanned a target lists one by one.
pub const MAX_NOT_SCANNED: usize = 100_000;

/// One object not scanned: where, why (a `skipped` reason), and what exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotScanned {
    #[serde(serialize_with = "path_text::one")]
    pub path: PathBuf,
    pub reason: String,
    /// A git object's id (its path is the first path history gives it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetIssue {
    #[serde(serialize_with = "path_text::one")]
    pub path: PathBuf,
    pub reason: String,
}

/// An MCP config that was found but could not be parsed: its servers are unknown, though
/// its bytes were still scanned for keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnparsedConfig {
    #[serde(serialize_with = "path_text::one")]
    pub path: PathBuf,
    pub client: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Every key listed, those held in a managed store included.
    pub keys: usize,
    /// Keys held in a managed store and nowhere else: listed, not exposed, so left out of
    /// every count below and of `failing`.
    #[serde(default)]
    pub held_in_store: usize,
    /// Every status, zeros included.
    pub by_status: BTreeMap<String, usize>,
    /// Every severity, zeros included.
    pub by_severity: BTreeMap<String, usize>,
    /// Keys by environment (a key in two environments counts in both).
    #[serde(default)]
    pub by_environment: BTreeMap<String, usize>,
    /// Keys by violation.
    #[serde(default)]
    pub by_violation: BTreeMap<String, usize>,
    /// With `--verify`: keys by what their provider said (`active`, `revoked`, `unknown`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_verification: BTreeMap<String, usize>,
    /// Keys left out by a baseline.
    pub suppressed: usize,
    pub fail_on: Severity,
    /// The rotation policy: a live key older than this many days is overdue.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: u64,
    /// Keys at or above `fail_on`: the exit code is 1 when this is not zero.
    pub failing: usize,
    pub mcp_servers: usize,
    pub mcp_configs: u64,
    pub unparsed_configs: usize,
    pub targets: usize,
    pub targets_failed: usize,
    pub errors: usize,
}

fn default_max_age_days() -> u64 {
    90
}

impl Summary {
    pub fn new(
        keys: &[Key],
        servers: &[ServerEntry],
        targets: &[TargetReport],
        fail_on: Severity,
        max_age_days: u64,
        suppressed: usize,
    ) -> Summary {
        let mut by_status: BTreeMap<String, usize> =
            [Status::Live, Status::Rotated, Status::Removed]
                .into_iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect();
        let mut by_severity: BTreeMap<String, usize> = [
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
        ]
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
        let mut by_environment: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_violation: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_verification: BTreeMap<String, usize> = BTreeMap::new();
        for verification in keys.iter().filter_map(|k| k.verification.as_ref()) {
            *by_verification
                .entry(verification.state.as_str().to_string())
                .or_default() += 1;
        }
        let exposed = || keys.iter().filter(|k| !k.held_in_store);
        for key in exposed() {
            *by_status
                .entry(key.status.as_str().to_string())
                .or_default() += 1;
            *by_severity.entry(key.severity.to_string()).or_default() += 1;
            for environment in &key.scope.environments {
                *by_environment
                    .entry(environment.as_str().to_string())
                    .or_default() += 1;
            }
            for violation in &key.violations {
                *by_violation
                    .entry(violation.as_str().to_string())
                    .or_default() += 1;
            }
        }
        Summary {
            keys: keys.len(),
            held_in_store: keys.len() - exposed().count(),
            by_status,
            by_severity,
            by_environment,
            by_violation,
            by_verification,
            suppressed,
            fail_on,
            max_age_days,
            failing: exposed().filter(|k| k.severity >= fail_on).count(),
            mcp_servers: servers.len(),
            mcp_configs: targets.iter().map(|t| t.mcp_configs).sum(),
            unparsed_configs: targets.iter().map(|t| t.unparsed_configs.len()).sum(),
            targets: targets.len(),
            targets_failed: targets.iter().filter(|t| t.failed).count(),
            errors: targets.iter().map(|t| t.errors.len()).sum(),
        }
    }
}

impl Report {
    pub fn new(
        keys: Vec<Key>,
        mcp_servers: Vec<ServerEntry>,
        targets: Vec<TargetReport>,
        fail_on: Severity,
        max_age_days: u64,
        generated_at: DateTime<Utc>,
    ) -> Report {
        let summary = Summary::new(&keys, &mcp_servers, &targets, fail_on, max_age_days, 0);
        Report {
            schema: SCHEMA.to_string(),
            tool: Tool {
                name: env!("CARGO_PKG_NAME").to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            generated_at,
            host: hostname(),
            hosts: Vec::new(),
            scope: None,
            keys,
            mcp_servers,
            workloads: Vec::new(),
            targets,
            summary,
        }
    }

    /// Count again after keys were removed (a baseline) or joined (a merge), keeping the
    /// number suppressed so far.
    pub fn recount(&mut self, fail_on: Severity) {
        self.summary = Summary::new(
            &self.keys,
            &self.mcp_servers,
            &self.targets,
            fail_on,
            self.summary.max_age_days,
            self.summary.suppressed,
        );
    }

    /// Leave out every secret in clear: a report saved with `--show-secrets` and read again
    /// shows them only when asked again.
    pub fn forget_secrets(&mut self) {
        for key in &mut self.keys {
            key.secret = None;
        }
    }

    /// A report saved by `--format json`. Errors name the file and what is wrong with it.
    pub fn read(path: &Path) -> Result<Report, ReadError> {
        let bytes = crate::source::fs::read_named_file(path).map_err(|error| ReadError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Report::from_slice(&bytes).map_err(|problem| ReadError::Invalid {
            path: path.to_path_buf(),
            problem,
        })
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Report, NotAReport> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(NotAReport::NotJson)?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => return Err(NotAReport::Schema(other.to_string())),
            None => return Err(NotAReport::NoSchema),
        }
        serde_json::from_value(value).map_err(NotAReport::Shape)
    }
}

/// Every output format, for commands that take `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text(text::TextOptions),
    Json,
    Sarif,
    Markdown,
    Html,
}

/// Write `report` in `format`. Text and Markdown are read on terminals and in rendered pages:
/// every string of the report (names and paths come from scanned input) is shown with its
/// control characters made visible first ([`escape::visible`]); JSON, SARIF and HTML escape
/// in their own syntax.
pub fn render(report: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text(options) => text::write(&escape::report(report), out, options),
        Format::Json => json::write(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Markdown => markdown::write(&escape::report(report), out),
        Format::Html => html::write(report, out),
    }
}

fn hostname() -> Option<String> {
    crate::platform::hostname()
}

fn rfc3339<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(time))
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A time as every writer shows it: RFC 3339, seconds, UTC (`2025-06-01T12:00:00Z`).
pub fn time_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_every_status_and_severity() {
        let targets = vec![TargetReport {
            target: "dir:/x".into(),
            kind: "dir".into(),
            failed: true,
            errors: vec![TargetIssue {
                path: "/x".into(),
                reason: "no such file or directory".into(),
            }],
            ..TargetReport::default()
        }];
        let report = Report::new(
            Vec::new(),
            Vec::new(),
            targets,
            Severity::High,
            90,
            Utc::now(),
        );
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["schema"], SCHEMA);
        let summary = &value["summary"];
        for status in ["live", "rotated", "removed"] {
            assert_eq!(summary["by_status"][status], 0);
        }
        for severity in ["critical", "high", "medium", "low"] {
            assert_eq!(summary["by_severity"][severity], 0);
        }
        assert_eq!(summary["fail_on"], "high");
        assert_eq!(summary["targets_failed"], 1);
        assert_eq!(summary["errors"], 1);

        let mut text = Vec::new();
        text::write(&report, &mut text, text::TextOptions::default()).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("detector: 0 keys"));
        assert!(text.contains("dir:/x FAILED"));
        assert!(text.contains("/x: no such file or directory"));
    }
}
