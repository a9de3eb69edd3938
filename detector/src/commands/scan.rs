//! `detector scan TARGET…`: the targets through the pipeline, one report out.
use std::process::ExitCode;

use super::{
    args, output,
    progress::Progress,
    store::{self, scan_scope, Recording},
    EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS,
};
use crate::{
    cli::{ScanArgs, ScanOptions},
    source::{git, Target},
    store::StoreUrl,
};

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let targets = narrowed(args)?;
    let recording = Recording {
        url: args
            .scan
            .store
            .as_deref()
            .map(StoreUrl::parse)
            .transpose()?,
        scope: scan_scope(targets.iter().map(ToString::to_string)),
    };
    run_targets(&targets, &args.scan, &recording)
}

/// The targets as `--staged` or `--since-commit` narrow them; each must then be a git work
/// tree (a repository for a range), and a range's revisions must be in it: else one line
/// naming the target or the revision (exit 2).
fn narrowed(args: &ScanArgs) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(args.targets.len());
    for target in &args.targets {
        let narrowed = match (target, args.staged, &args.since_commit) {
            (Target::Git(path), true, _) => Target::GitStaged(path.clone()),
            (Target::Git(path), false, Some(rev)) => Target::GitRange(
                path.clone(),
                git::Range {
                    from: rev.clone(),
                    to: None,
                },
            ),
            (Target::GitRange(..), true, _) | (Target::GitRange(..), _, Some(_)) => {
                anyhow::bail!("{target}: a range takes neither --staged nor --since-commit")
            }
            (Target::GitRange(..) | Target::Git(_), false, None) => target.clone(),
            (_, true, _) | (_, _, Some(_)) => {
                let flag = if args.staged {
                    "--staged"
                } else {
                    "--since-commit"
                };
                anyhow::bail!("{flag} takes a git work tree (git:PATH): {target} is not one")
            }
            _ => target.clone(),
        };
        match &narrowed {
            Target::GitStaged(path) if !git::index::is_work_tree(path) => anyhow::bail!(
                "--staged takes a git work tree: {} is not one",
                path.display()
            ),
            Target::GitRange(path, range) => {
                git::range::resolve(path, range)?;
            }
            _ => {}
        }
        targets.push(narrowed);
    }
    Ok(targets)
}

/// Scan `targets` into one report and write it (and the baseline, when asked), and record it
/// in the key inventory when asked. The exit code of DESIGN.md: 2 when no target could be read
/// (or, with `--strict`, when anything could not be read or was cut short; or when the
/// inventory could not take the run), else 1 when an unsuppressed key is at or above
/// `--fail-on`, else 0.
pub fn run_targets(
    targets: &[Target],
    options: &ScanOptions,
    recording: &Recording,
) -> anyhow::Result<ExitCode> {
    let pipeline = args::pipeline(options)?;
    let mut outcome = pipeline.run(targets, &Progress::new());
    if recording.scope == store::AUDIT {
        outcome.report.scope = Some(store::AUDIT.to_string());
    }
    if let Some(path) = &options.write_baseline {
        outcome.found.write(path)?;
    }
    output::write_report(&outcome.report, &options.output)?;
    let unrecorded = !store::record(&outcome.report, recording);
    let incomplete = || outcome.report.targets.iter().any(|t| !t.errors.is_empty());
    Ok(
        if outcome.all_failed || unrecorded || (options.strict && incomplete()) {
            EXIT_ERROR
        } else if outcome.report.summary.failing > 0 {
            EXIT_FINDINGS
        } else {
            EXIT_CLEAN
        }
        .into(),
    )
}
