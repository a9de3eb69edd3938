//! `detector scan TARGET…`: every target's blobs through one engine, in parallel, then one
//! audit over all findings and one report.
use std::{
    collections::{BTreeMap, BTreeSet},
    io::{self, IsTerminal},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{output, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{
    audit::{
        self, AccessLog, Assignment, AuditOptions, Auditor, Finding, OrgKey, ScopeRoot, Scrubber,
    },
    cli::{ScanArgs, ScanOptions},
    detect::{Engine, RuleSet},
    mcp::ParsedConfig,
    report::{self, baseline::Baseline, Report, TargetIssue, TargetReport, UnparsedConfig},
    source::{self, archive::ArchiveLimits, Blob, Sink, SkipReason, SourceOptions, Target},
};

pub fn run(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let mut targets = Vec::new();
    for raw in &args.targets {
        match Target::parse(raw) {
            Ok(target) => targets.push(target),
            Err(err) => {
                eprintln!("detector: {err}");
                return Ok(EXIT_ERROR.into());
            }
        }
    }
    run_targets(&targets, &args.scan)
}

/// Scan `targets` into one report, join the access logs, apply the baseline and write it.
/// The exit code of DESIGN.md: 2 when no target could be read, else 1 when an unsuppressed
/// key is at or above `--fail-on`, else 0.
pub fn run_targets(targets: &[Target], args: &ScanOptions) -> anyhow::Result<ExitCode> {
    // A baseline that cannot be read is a usage error, found before a long scan.
    let baseline = args
        .baseline
        .as_deref()
        .map(Baseline::fingerprints)
        .transpose()?;
    let fail_on = output::severity(args.fail_on);

    if let Some(threads) = args.threads {
        // Every parallel source runs on rayon's global pool, so this bounds the whole scan.
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.get())
            .build_global()
            .context("cannot set up the scanning threads")?;
    }

    let org_key = OrgKey::load(args.org_key_file.as_deref())?;
    tracing::debug!(origin = %org_key.origin, "org key loaded");
    let mut rules = RuleSet::builtin()?;
    if let Some(dir) = &args.rules {
        rules.extend(RuleSet::load_dir(dir)?);
    }
    let engine = Engine::new(rules)?;
    let now = chrono::Utc::now();
    let auditor = Auditor::new(
        org_key,
        AuditOptions {
            show_secrets: args.show_secrets,
            max_age_days: args.max_age_days,
            now,
        },
    );

    let progress = Progress::new();
    let options = SourceOptions {
        max_file_size: args.max_file_size,
        max_blob_size: args.max_blob_size,
        respect_gitignore: args.respect_gitignore,
        excludes: args.exclude.clone(),
        archive: ArchiveLimits {
            max_bytes: args.max_archive_bytes,
            max_ratio: args.max_archive_ratio,
            max_members: args.max_archive_members,
            max_depth: args.max_archive_depth,
        },
        platform: args.platform.clone(),
    };
    let mut findings: Vec<Finding> = Vec::new();
    let mut assignments: Vec<Assignment> = Vec::new();
    let mut configs: Vec<Arc<ParsedConfig>> = Vec::new();
    let mut on_disk: BTreeSet<PathBuf> = BTreeSet::new();
    let mut scope_roots: BTreeSet<ScopeRoot> = BTreeSet::new();
    let mut scanned: Vec<(TargetReport, Vec<RawUnparsed>)> = Vec::new();
    for target in targets {
        let collector = Collector::new(&engine, &progress);
        let started = Instant::now();
        tracing::info!(%target, "scanning");
        progress.target(target);
        let result = source::scan(target, &options, &collector);
        on_disk.append(&mut lock(&collector.on_disk));
        scope_roots.append(&mut lock(&collector.scope_roots));
        assignments.append(&mut lock(&collector.assignments));
        let (mut target_report, found, parsed, unparsed) =
            collector.finish(target, started.elapsed());
        if let Err(err) = result {
            target_report.failed = true;
            target_report.errors.insert(
                0,
                TargetIssue {
                    path: err.path.clone(),
                    reason: err.reason.clone(),
                },
            );
            progress.suspend(|| eprintln!("detector: {}", failure_message(target, &err)));
        }
        if target.is_image() {
            // An image's errors are few and each one is a layer or config not scanned.
            for issue in target_report
                .errors
                .iter()
                .skip(usize::from(target_report.failed))
            {
                progress.suspend(|| {
                    eprintln!(
                        "detector: {target}: {}: {}",
                        issue.path.display(),
                        issue.reason
                    )
                });
            }
        }
        findings.extend(found);
        configs.extend(parsed);
        scanned.push((target_report, unparsed));
    }
    progress.finish();
    let all_failed = scanned.iter().all(|(t, _)| t.failed);

    let configs = unique_configs(configs);
    let scrubber = Scrubber::new(&findings, &configs);
    let mut targets_report: Vec<TargetReport> = scanned
        .into_iter()
        .map(|(mut t, unparsed)| {
            t.unparsed_configs = unparsed
                .into_iter()
                .map(|u| UnparsedConfig {
                    path: u.path,
                    client: u.client.to_string(),
                    reason: scrubber.scrub(first_line(&u.reason)),
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            t
        })
        .collect();
    audit::place_in_scope_roots(&mut findings, &scope_roots.into_iter().collect::<Vec<_>>());
    let mut keys = auditor.keys_with_history(findings, &assignments);
    // Build instructions carry `--build-arg` values in clear.
    for location in keys.iter_mut().flat_map(|k| k.locations.iter_mut()) {
        if let Some(created_by) = &mut location.created_by {
            *created_by = scrubber.scrub(created_by);
        }
    }
    targets_report.extend(join_access_logs(
        &mut keys,
        &args.access_log,
        args.max_age_days,
    ));
    let servers = auditor.servers(&configs, &keys, &scrubber, &on_disk);
    let mut report = Report::new(
        keys,
        servers,
        targets_report,
        fail_on,
        args.max_age_days,
        now,
    );

    if let Some(path) = &args.write_baseline {
        Baseline::of(&report).write(path)?;
    }
    if let Some(baseline) = &baseline {
        report::baseline::suppress(&mut report, baseline, fail_on);
    }
    output::write_report(&report, &args.output)?;

    Ok(if all_failed {
        EXIT_ERROR
    } else if report.summary.failing > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
    .into())
}

/// Read the agent's event files and give each key the opens of its files. Each file is a
/// target of the report (kind `access-log`), with its malformed lines as errors, each also
/// said on standard error with the file and line; the scan goes on either way.
fn join_access_logs(
    keys: &mut [audit::Key],
    files: &[PathBuf],
    max_age_days: u64,
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
                    eprintln!("detector: {}:{line}: {reason}", path.display());
                    target.errors.push(TargetIssue {
                        path: path.clone(),
                        reason: format!("line {line}: {reason}"),
                    });
                }
            }
            Err(err) => {
                let reason = source::fs::io_reason(&err);
                eprintln!(
                    "detector: cannot read access log {}: {reason}",
                    path.display()
                );
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

/// One line naming the target and the file and the problem.
fn failure_message(target: &Target, err: &source::SourceError) -> String {
    let named = match target {
        Target::Dir(p)
        | Target::File(p)
        | Target::Git(p)
        | Target::Mcp(Some(p))
        | Target::DockerArchive(p)
        | Target::OciDir(p)
        | Target::OciArchive(p) => p == &err.path,
        Target::Docker(name) => Path::new(name) == err.path,
        Target::Mcp(None) => false,
    };
    if named {
        format!("cannot read {target}: {}", err.reason)
    } else {
        format!("cannot read {target}: {err}")
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// One parse per config file, however many targets read it.
fn unique_configs(configs: Vec<Arc<ParsedConfig>>) -> Vec<Arc<ParsedConfig>> {
    let mut by_path: BTreeMap<PathBuf, Arc<ParsedConfig>> = BTreeMap::new();
    for config in configs {
        by_path.entry(config.path.clone()).or_insert(config);
    }
    by_path.into_values().collect()
}

/// An MCP config that did not parse, before its reason is scrubbed of secrets.
struct RawUnparsed {
    path: PathBuf,
    client: &'static str,
    reason: String,
}

/// The sink of one target: runs the engine over each blob as it arrives and keeps the
/// findings, the parsed configs and the counts.
struct Collector<'a> {
    engine: &'a Engine,
    progress: &'a Progress,
    objects: AtomicU64,
    bytes: AtomicU64,
    mcp_configs: AtomicU64,
    skipped: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<Vec<TargetIssue>>,
    repositories: Mutex<Vec<PathBuf>>,
    findings: Mutex<Vec<Finding>>,
    /// References in git blobs' slots: what may have replaced a key.
    assignments: Mutex<Vec<Assignment>>,
    configs: Mutex<Vec<Arc<ParsedConfig>>>,
    /// Configs read from this host's disk (not from an image or a git blob).
    on_disk: Mutex<BTreeSet<PathBuf>>,
    /// Directories whose files belong to one project (repositories, homes).
    scope_roots: Mutex<BTreeSet<ScopeRoot>>,
    unparsed: Mutex<Vec<RawUnparsed>>,
}

impl<'a> Collector<'a> {
    fn new(engine: &'a Engine, progress: &'a Progress) -> Collector<'a> {
        Collector {
            engine,
            progress,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            mcp_configs: AtomicU64::new(0),
            skipped: Mutex::default(),
            errors: Mutex::default(),
            repositories: Mutex::default(),
            findings: Mutex::default(),
            assignments: Mutex::default(),
            configs: Mutex::default(),
            on_disk: Mutex::default(),
            scope_roots: Mutex::default(),
            unparsed: Mutex::default(),
        }
    }

    fn finish(
        self,
        target: &Target,
        elapsed: Duration,
    ) -> (
        TargetReport,
        Vec<Finding>,
        Vec<Arc<ParsedConfig>>,
        Vec<RawUnparsed>,
    ) {
        let mut errors = into_inner(self.errors);
        errors.sort();
        let mut repositories = into_inner(self.repositories);
        repositories.sort();
        let report = TargetReport {
            host: None,
            target: target.to_string(),
            kind: target.kind().to_string(),
            failed: false,
            objects_scanned: self.objects.into_inner(),
            bytes_scanned: self.bytes.into_inner(),
            skipped: into_inner(self.skipped)
                .into_iter()
                .map(|(reason, n)| (reason.to_string(), n))
                .collect(),
            duration_ms: elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            mcp_configs: self.mcp_configs.into_inner(),
            unparsed_configs: Vec::new(),
            repositories,
            errors,
        };
        (
            report,
            into_inner(self.findings),
            into_inner(self.configs),
            into_inner(self.unparsed),
        )
    }
}

fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sink for Collector<'_> {
    fn blob(&self, blob: Blob) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(blob.bytes.len() as u64, Ordering::Relaxed);
        self.progress.object(blob.bytes.len() as u64);
        if let Some(config) = &blob.mcp {
            self.mcp_configs.fetch_add(1, Ordering::Relaxed);
            if let Some(reason) = &config.parse_error {
                tracing::debug!(path = %config.path.display(), "MCP config does not parse");
                lock(&self.unparsed).push(RawUnparsed {
                    path: config.path.clone(),
                    client: config.client,
                    reason: reason.clone(),
                });
            }
            if blob.provenance.inode.is_some() {
                lock(&self.on_disk).insert(config.path.clone());
            }
            lock(&self.configs).push(Arc::clone(config));
        }
        if let Some(root) = ScopeRoot::of(&blob.provenance) {
            lock(&self.scope_roots).insert(root);
        }
        let matches = self.engine.scan(&blob.bytes);
        let found = audit::findings(&blob, &matches, self.engine);
        tracing::trace!(
            path = %blob.provenance.path.display(),
            matches = matches.len(),
            findings = found.len(),
            "scanned"
        );
        let keys_in_slots = found.iter().any(|f| f.location.slot.is_some());
        if !found.is_empty() {
            lock(&self.findings).extend(found);
        }
        let assigned = audit::assignments(&blob, keys_in_slots);
        if !assigned.is_empty() {
            lock(&self.assignments).extend(assigned);
        }
    }

    fn skipped(&self, path: &Path, reason: SkipReason) {
        tracing::debug!(path = %path.display(), reason = reason.as_str(), "skipped");
        *lock(&self.skipped).entry(reason.as_str()).or_default() += 1;
    }

    fn error(&self, path: &Path, reason: &str) {
        tracing::debug!(path = %path.display(), reason, "cannot read");
        lock(&self.errors).push(TargetIssue {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }

    fn repository(&self, path: &Path) {
        tracing::debug!(path = %path.display(), "git repository");
        lock(&self.repositories).push(path.to_path_buf());
    }
}

/// Files (git: objects) and bytes read so far, on standard error when it is a terminal;
/// nothing otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    files: AtomicU64,
    /// What is counted for the current target: `files`, or `objects` for a repository.
    unit: Mutex<&'static str>,
}

impl Progress {
    fn new() -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} scanning {prefix}: {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            files: AtomicU64::new(0),
            unit: Mutex::new("files"),
        }
    }

    fn object(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            let files = self.files.fetch_add(1, Ordering::Relaxed) + 1;
            bar.inc(bytes);
            let unit = *lock(&self.unit);
            bar.set_message(format!("{files} {unit}, {}", HumanBytes(bar.position())));
        }
    }

    /// The target being read now.
    fn target(&self, target: &Target) {
        if let Some(bar) = &self.bar {
            *lock(&self.unit) = match target {
                Target::Git(_) => "objects",
                _ => "files",
            };
            bar.set_prefix(target.to_string());
        }
    }

    /// Print without tearing the progress line.
    fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
