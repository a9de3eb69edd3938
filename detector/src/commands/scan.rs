//! `detector scan TARGET…`: the targets through the pipeline, one report out.
use std::process::ExitCode;

use super::{args, output, progress::Progress, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{
    cli::{ScanArgs, ScanOptions},
    source::Target,
};

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    run_targets(&args.targets, &args.scan)
}

/// Scan `targets` into one report and write it (and the baseline, when asked). The exit code
/// of DESIGN.md: 2 when no target could be read (or, with `--strict`, when anything could not
/// be read or was cut short), else 1 when an unsuppressed key is at or above `--fail-on`,
/// else 0.
pub fn run_targets(targets: &[Target], options: &ScanOptions) -> anyhow::Result<ExitCode> {
    let pipeline = args::pipeline(options)?;
    let outcome = pipeline.run(targets, &Progress::new());
    if let Some(path) = &options.write_baseline {
        outcome.found.write(path)?;
    }
    output::write_report(&outcome.report, &options.output)?;
    let incomplete = || outcome.report.targets.iter().any(|t| !t.errors.is_empty());
    Ok(if outcome.all_failed || (options.strict && incomplete()) {
        EXIT_ERROR
    } else if outcome.report.summary.failing > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
    .into())
}
