//! Report writers: json, sarif, markdown, html, text. A writer never re-reads a source: it
//! takes the finished [`Report`] and renders it.
pub mod json;
pub mod text;

use std::{collections::BTreeMap, path::PathBuf};

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use crate::{
    audit::{Key, ServerEntry, Status},
    detect::Severity,
};

/// The `schema` of every JSON report this version writes.
pub const SCHEMA: &str = "detector/report/v1";

/// One scan's result, grouped by key. What every writer renders.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub tool: Tool,
    #[serde(serialize_with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// The host the scan ran on, so that merged reports say where each location is.
    pub host: Option<String>,
    pub keys: Vec<Key>,
    pub mcp_servers: Vec<ServerEntry>,
    pub targets: Vec<TargetReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

/// What one target was, what was read from it, and what could not be.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetReport {
    /// As given on the command line, normalised (`dir:/srv/app`).
    pub target: String,
    /// `dir`, `file`, `mcp`, …
    pub kind: String,
    /// True when the target could not be read at all (its first error says why).
    pub failed: bool,
    pub objects_scanned: u64,
    pub bytes_scanned: u64,
    /// Objects not scanned, by reason (`too-large`, `binary`, `symlink-to-directory`).
    pub skipped: BTreeMap<String, u64>,
    pub duration_ms: u64,
    /// MCP client configs read (parsed or not).
    pub mcp_configs: u64,
    pub unparsed_configs: Vec<UnparsedConfig>,
    /// Git repositories met in a directory walk: their internals were not read as files;
    /// `git:PATH` (or `detector audit`) reads their history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<PathBuf>,
    pub errors: Vec<TargetIssue>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TargetIssue {
    pub path: PathBuf,
    pub reason: String,
}

/// An MCP config that was found but could not be parsed: its servers are unknown, though
/// its bytes were still scanned for keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnparsedConfig {
    pub path: PathBuf,
    pub client: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub keys: usize,
    /// Every status, zeros included.
    pub by_status: BTreeMap<&'static str, usize>,
    /// Every severity, zeros included.
    pub by_severity: BTreeMap<String, usize>,
    /// Keys left out by a baseline.
    pub suppressed: usize,
    pub fail_on: Severity,
    /// Keys at or above `fail_on`: the exit code is 1 when this is not zero.
    pub failing: usize,
    pub mcp_servers: usize,
    pub mcp_configs: u64,
    pub unparsed_configs: usize,
    pub targets: usize,
    pub targets_failed: usize,
    pub errors: usize,
}

impl Summary {
    pub fn new(
        keys: &[Key],
        servers: &[ServerEntry],
        targets: &[TargetReport],
        fail_on: Severity,
        suppressed: usize,
    ) -> Summary {
        let mut by_status: BTreeMap<&'static str, usize> =
            [Status::Live, Status::Rotated, Status::Removed]
                .into_iter()
                .map(|s| (s.as_str(), 0))
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
        for key in keys {
            *by_status.entry(key.status.as_str()).or_default() += 1;
            *by_severity.entry(key.severity.to_string()).or_default() += 1;
        }
        Summary {
            keys: keys.len(),
            by_status,
            by_severity,
            suppressed,
            fail_on,
            failing: keys.iter().filter(|k| k.severity >= fail_on).count(),
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
        generated_at: DateTime<Utc>,
    ) -> Report {
        let summary = Summary::new(&keys, &mcp_servers, &targets, fail_on, 0);
        Report {
            schema: SCHEMA,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            generated_at,
            host: hostname(),
            keys,
            mcp_servers,
            targets,
            summary,
        }
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

fn rfc3339<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
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
        let report = Report::new(Vec::new(), Vec::new(), targets, Severity::High, Utc::now());
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
        text::write(&report, &mut text, text::TextOptions { color: false }).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("detector: 0 keys"));
        assert!(text.contains("dir:/x FAILED"));
        assert!(text.contains("/x: no such file or directory"));
    }
}
