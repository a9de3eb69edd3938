//! `--access-log FILE`: the agent's event files joined to the keys of a run. Each file is a
//! target of the report (kind `access-log`) with its malformed lines as errors, each also
//! said to the observer with the file and line; the run goes on either way.
use std::{path::PathBuf, time::Instant};

use super::Observer;
use crate::{
    audit::{AccessLog, Key},
    report::{TargetIssue, TargetReport},
    source::fs::io_reason,
};

/// Give each key the opens of its files, from `files`; one target report per file.
pub fn join(
    keys: &mut [Key],
    files: &[PathBuf],
    max_age_days: u64,
    observer: &dyn Observer,
) -> Vec<TargetReport> {
    let mut log = AccessLog::default();
    let mut reports = Vec::new();
    for path in files {
        let started = Instant::now();
        let mut target = TargetReport {
            target: format!("access-log:{}", path.display()),
            kind: "access-log".to_string(),
            ..TargetReport::default()
        };
        match log.read_file(path) {
            Ok(read) => {
                target.objects_scanned = read.records;
                target.bytes_scanned = read.bytes;
                for (line, reason) in read.malformed {
                    observer.warn(&format!("{}:{line}: {reason}", path.display()));
                    target.errors.push(TargetIssue {
                        path: path.clone(),
                        reason: format!("line {line}: {reason}"),
                    });
                }
            }
            Err(err) => {
                let reason = io_reason(&err);
                observer.warn(&format!(
                    "cannot read access log {}: {reason}",
                    path.display()
                ));
                target.failed = true;
                target.errors.push(TargetIssue {
                    path: path.clone(),
                    reason,
                });
            }
        }
        target.duration_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        reports.push(target);
    }
    log.join(keys, max_age_days);
    reports
}
