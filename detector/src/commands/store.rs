//! The key inventory from the command line: a run recorded (and what changed since the last
//! one said on standard error), `detector store ingest`, `detector report --store`.
use std::{
    io::{self, IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;

use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{
    cli::{Format, InventoryArgs, StoreCommand},
    report::{escape::visible, Report},
    store::{agent_log, inventory::KeyLine, Changes, Filter, Origin, Store, StoreUrl},
};

/// What a run covered, and where it is recorded (if anywhere).
#[derive(Debug, Clone)]
pub struct Recording {
    pub url: Option<StoreUrl>,
    /// [`AUDIT`], or the targets of a scan: runs of one scope follow each other.
    pub scope: String,
}

/// The scope of every audit of a host.
pub const AUDIT: &str = "audit";

/// Record `report`; say what changed since the last run of its scope. When the store cannot
/// take it, the report is saved to a spool file (for `detector store ingest`) and one line
/// says where and why; `false` then, and the run ends with exit code 2: nothing of it is lost.
pub fn record(report: &Report, recording: &Recording) -> bool {
    let Some(url) = &recording.url else {
        return true;
    };
    // A live run is a run of its own, even when an earlier one in the same second found the
    // same (its report's bytes alike): the identity that makes a re-ingested file one run
    // names this process and this instant too.
    let mut identity = serde_json::to_vec(report).unwrap_or_default();
    identity.extend_from_slice(
        format!(
            "\nlive run of process {} at {}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        )
        .as_bytes(),
    );
    let result = Store::open(url).and_then(|mut store| {
        let recorded = store.record(report, &recording.scope, Origin::Live, &identity)?;
        Ok((recorded.run, store.changes(recorded.run)?))
    });
    match result {
        Ok((run, changes)) => {
            say_changes(url, run, &changes);
            true
        }
        Err(err) => {
            let message = match spool(report) {
                Ok(path) => format!(
                    "{err}; the run is saved in {} (record it later with `detector store ingest {}`)",
                    path.display(),
                    shlex::try_quote(&path.to_string_lossy())
                        .map(|q| q.into_owned())
                        .unwrap_or_else(|_| path.display().to_string())
                ),
                Err(spool_err) => format!("{err}; and the run could not be saved: {spool_err:#}"),
            };
            eprintln!("detector: {}", visible(&message));
            false
        }
    }
}

/// The spool directory: `$DETECTOR_SPOOL`, else root's under /var/lib/detector, else under the
/// XDG data directory.
fn spool_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DETECTOR_SPOOL").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match StoreUrl::host_default() {
        Some(StoreUrl::Sqlite(path)) => path
            .parent()
            .map(|p| p.join("spool"))
            .unwrap_or_else(|| std::env::temp_dir().join("detector-spool")),
        _ => std::env::temp_dir().join("detector-spool"),
    }
}

fn spool(report: &Report) -> anyhow::Result<PathBuf> {
    let dir = spool_dir();
    crate::store::make_private_dir(&dir)
        .with_context(|| format!("cannot make {}", dir.display()))?;
    let name = format!(
        "run-{}-{}.json",
        report.generated_at.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    );
    let path = dir.join(name);
    let mut clean = report.clone();
    clean.forget_secrets();
    let bytes = serde_json::to_vec_pretty(&clean)?;
    crate::fix::write::create(&path, &bytes, 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One line of totals, then one per key that is new, fixed or back (and the oldest still
/// open), on standard error.
fn say_changes(url: &StoreUrl, run: i64, changes: &Changes) {
    let mut out = io::stderr().lock();
    let since = match changes.since {
        Some(t) => format!("since the last run ({})", t.format("%Y-%m-%d %H:%M UTC")),
        None => "first run of its kind".to_string(),
    };
    let _ = writeln!(
        out,
        "detector: recorded in {url} (run {run}); {since}: {} new, {} fixed, {} reappeared, {} still open",
        changes.new.len(),
        changes.fixed.len(),
        changes.reappeared.len(),
        changes.still_open.len()
    );
    let lines = |out: &mut dyn Write, what: &str, keys: &[KeyLine], limit: usize| {
        for key in keys.iter().take(limit) {
            let age = if what == "still open" {
                format!(", open {} days", key.age_days)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {what:<11} {} {} {}{age}",
                visible(&key.redacted),
                visible(&key.provider),
                key.severity
            );
        }
        if keys.len() > limit {
            let _ = writeln!(out, "  {what:<11} … and {} more", keys.len() - limit);
        }
    };
    lines(&mut out, "new", &changes.new, 20);
    lines(&mut out, "reappeared", &changes.reappeared, 20);
    lines(&mut out, "fixed", &changes.fixed, 20);
    lines(&mut out, "still open", &changes.still_open, 5);
}

pub fn run(command: &StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Ingest { files, store, host } => ingest(files, store, host.as_deref()),
        StoreCommand::Prune { keep_days, store } => {
            let mut store = open(store)?;
            let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(*keep_days));
            let pruned = store.prune(cutoff)?;
            eprintln!(
                "detector: {}: forgot {} runs, {} keys, {} places and {} agent records from before {}; kept every run of the {} keys still open",
                store.url(),
                pruned.runs,
                pruned.keys,
                pruned.places,
                pruned.agent_events,
                cutoff.format("%Y-%m-%d %H:%M UTC"),
                pruned.open_keys
            );
            Ok(EXIT_CLEAN.into())
        }
    }
}

fn open(url: &str) -> anyhow::Result<Store> {
    let url = StoreUrl::parse(url)?;
    Ok(Store::open(&url)?)
}

/// One line per file on standard error; after a log's line, each break of its chain as `log
/// verify` says it. Exit 1 when a log's chain is broken (as `log verify`), 2 when a file could
/// not be taken.
fn ingest(files: &[PathBuf], url: &str, host: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut store = open(url)?;
    let mut failed = false;
    let mut broken = false;
    for file in files {
        match ingest_one(&mut store, file, host) {
            Ok(ingested) => {
                broken |= !ingested.breaks.is_empty();
                let mut out = io::stderr().lock();
                let _ = writeln!(out, "detector: {}", visible(&ingested.line));
                for what in &ingested.breaks {
                    let _ = writeln!(out, "{}", visible(what));
                }
            }
            Err(err) => {
                failed = true;
                eprintln!("detector: {}", visible(&format!("{err:#}")));
            }
        }
    }
    Ok(if failed {
        EXIT_ERROR
    } else if broken {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
    .into())
}

/// What ingesting a file said: its line, and the breaks of a log's chain.
struct FileIngested {
    line: String,
    breaks: Vec<String>,
}

/// A report becomes a run; an agent's JSON-lines log (its first line is a chained record)
/// becomes its records and the breaks of its chain.
fn ingest_one(store: &mut Store, file: &Path, host: Option<&str>) -> anyhow::Result<FileIngested> {
    let bytes = crate::source::fs::read_named_file(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    if agent_log::is_agent_log(&bytes) {
        return ingest_log(store, file, &bytes, host);
    }
    let report = Report::from_slice(&bytes)
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
    let scope = report.scope.clone().unwrap_or_else(|| scope_of(&report));
    let recorded = store.record(&report, &scope, Origin::Ingest, &bytes)?;
    let line = if recorded.new_run {
        format!(
            "{}: recorded as run {} ({} key{})",
            file.display(),
            recorded.run,
            report.keys.len(),
            crate::report::plural(report.keys.len())
        )
    } else {
        format!(
            "{}: already recorded (run {}): nothing changed",
            file.display(),
            recorded.run
        )
    };
    Ok(FileIngested {
        line,
        breaks: Vec::new(),
    })
}

fn ingest_log(
    store: &mut Store,
    file: &Path,
    bytes: &[u8],
    host: Option<&str>,
) -> anyhow::Result<FileIngested> {
    let ingested = store.ingest_agent_log(file, bytes, host)?;
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "{}: {} from {} ({} new), {}",
        file.display(),
        plural(ingested.records, "agent record", "agent records"),
        ingested.hosts.join(", "),
        ingested.new_records,
        plural(ingested.breaks.len(), "chain break", "chain breaks"),
    );
    if !ingested.breaks.is_empty() {
        line.push_str(&format!(
            " ({} new): the records after a break are taken, but the log was tampered with or damaged",
            ingested.new_breaks
        ));
    }
    if let Some(number) = ingested.unfinished_line {
        line.push_str(&format!(
            "; line {number} has no newline: a record still being written, left for the next ingest"
        ));
    }
    Ok(FileIngested {
        line,
        breaks: ingested.breaks.into_iter().map(|b| b.what).collect(),
    })
}

/// The scope of a saved scan's report: its targets (an audit's says its scope).
fn scope_of(report: &Report) -> String {
    scan_scope(report.targets.iter().map(|t| t.target.clone()))
}

/// What a scan of `targets` covered, as a scope: the targets, sorted.
pub fn scan_scope(targets: impl IntoIterator<Item = String>) -> String {
    let mut targets: Vec<String> = targets.into_iter().collect();
    targets.sort_unstable();
    targets.dedup();
    format!("scan {}", targets.join(" "))
}

/// `detector report --store URL`.
pub fn report(args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    let Some(url) = &args.store else {
        anyhow::bail!("report: give a subcommand (merge, render) or --store URL");
    };
    let mut store = open(url)?;
    let now = chrono::Utc::now();
    let since = match args.since {
        Some(period) => Some(
            chrono::Duration::from_std(period)
                .ok()
                .and_then(|p| now.checked_sub_signed(p))
                .ok_or_else(|| anyhow::anyhow!("--since: a period this long has no start"))?,
        ),
        None => None,
    };
    let inventory = store.inventory_of(
        now,
        &Filter {
            since,
            projects: args.project.clone(),
        },
    )?;
    let to_terminal = args.output.is_none() && io::stdout().is_terminal();
    let format = args.format.unwrap_or(if to_terminal {
        Format::Text
    } else {
        Format::Json
    });
    let mut rendered = Vec::new();
    crate::report::inventory::render(&inventory, format, &mut rendered)?;
    match &args.output {
        Some(path) => std::fs::write(path, rendered)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut out = io::stdout().lock();
            match out.write_all(&rendered) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                other => other.context("cannot write to standard output")?,
            }
        }
    }
    Ok(EXIT_CLEAN.into())
}
