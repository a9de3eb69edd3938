//! The targets as the writers show them: what was read, what was skipped, what failed.
use std::path::Path;

use crate::report::{NotScanned, TargetIssue, TargetReport, UnparsedConfig};

pub struct TargetView<'r> {
    pub target: &'r str,
    /// The host that scanned it (set in merged reports).
    pub host: Option<&'r str>,
    pub failed: bool,
    pub objects_scanned: u64,
    pub bytes_scanned: u64,
    pub duration_ms: u64,
    /// `3 too-large`, by reason.
    pub skipped: Vec<String>,
    /// Each object not scanned (the first [`crate::report::MAX_NOT_SCANNED`]).
    pub not_scanned: &'r [NotScanned],
    pub unparsed_configs: &'r [UnparsedConfig],
    pub errors: &'r [TargetIssue],
    pub outcome: Outcome<'r>,
}

/// How reading a target went, in a word or a reason.
pub enum Outcome<'r> {
    /// Nothing could be read: the first error says why.
    Failed {
        reason: &'r str,
    },
    Clean,
    /// Read, but with these errors.
    Errors(&'r [TargetIssue]),
}

/// One error of one target, for lists of every error in the report.
pub struct TargetError<'r> {
    pub target: &'r str,
    /// The target could not be read at all.
    pub failed: bool,
    pub path: &'r Path,
    pub reason: &'r str,
}

impl<'r> TargetView<'r> {
    pub fn new(target: &'r TargetReport) -> TargetView<'r> {
        let outcome = if target.failed {
            Outcome::Failed {
                reason: target.errors.first().map_or("", |e| e.reason.as_str()),
            }
        } else if target.errors.is_empty() {
            Outcome::Clean
        } else {
            Outcome::Errors(&target.errors)
        };
        TargetView {
            target: &target.target,
            host: target.host.as_deref(),
            failed: target.failed,
            objects_scanned: target.objects_scanned,
            bytes_scanned: target.bytes_scanned,
            duration_ms: target.duration_ms,
            skipped: target
                .skipped
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect(),
            not_scanned: &target.not_scanned,
            unparsed_configs: &target.unparsed_configs,
            errors: &target.errors,
            outcome,
        }
    }

    pub fn target_errors(&self) -> impl Iterator<Item = TargetError<'r>> + '_ {
        self.errors.iter().map(|error| TargetError {
            target: self.target,
            failed: self.failed,
            path: &error.path,
            reason: &error.reason,
        })
    }
}
