//! `detector report merge FILE…` and `detector report render FILE`: saved JSON reports, joined
//! into one org-wide map or rendered again in another format.
use std::{path::Path, process::ExitCode};

use super::{args, output, EXIT_CLEAN, EXIT_FINDINGS};
use crate::{
    cli::{GateArgs, OutputArgs, ReportCommand},
    detect::Severity,
    report::{
        baseline::{self, Baseline},
        merge::{merge, MergeOptions},
        ReadError, Report,
    },
};

pub fn run(command: &ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Merge {
            files,
            output,
            max_age_days,
            gate,
            show_secrets,
        } => {
            let reports = files
                .iter()
                .map(|f| read(f, *show_secrets))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = merge(
                reports,
                &MergeOptions {
                    now: chrono::Utc::now(),
                    max_age_days: *max_age_days,
                    fail_on: gate.fail_on.map_or(Severity::High, args::severity),
                },
            );
            finish(merged, output, gate)
        }
        ReportCommand::Render {
            file,
            output,
            gate,
            show_secrets,
        } => {
            let mut report = read(file, *show_secrets)?;
            if let Some(fail_on) = gate.fail_on {
                report.recount(args::severity(fail_on));
            }
            finish(report, output, gate)
        }
    }
}

/// A saved report, without its secrets in clear unless they are asked for again.
fn read(path: &Path, show_secrets: bool) -> Result<Report, ReadError> {
    let mut report = Report::read(path)?;
    if !show_secrets {
        report.forget_secrets();
    }
    Ok(report)
}

/// Apply the baseline, write the report, and exit 1 only when `--fail-on` was given and a key
/// at or above it remains.
fn finish(mut report: Report, out: &OutputArgs, gate: &GateArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &gate.baseline {
        let fingerprints = Baseline::fingerprints(path)?;
        let fail_on = gate.fail_on.map_or(report.summary.fail_on, args::severity);
        baseline::suppress(&mut report, &fingerprints, fail_on);
    }
    output::write_report(&report, out)?;
    Ok(match gate.fail_on {
        Some(_) if report.summary.failing > 0 => EXIT_FINDINGS,
        _ => EXIT_CLEAN,
    }
    .into())
}
