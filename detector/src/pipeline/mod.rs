//! The run, from checked options and targets to one report: every target's blobs through one
//! engine as they stream by ([`collect`]), then one audit over all findings, the agent's
//! access logs joined, a baseline applied. `detector scan`, `detector audit` and the agent's
//! re-scan of a changed config all go through [`Pipeline::run`]; commands parse, call and
//! print.
mod access_log;
mod collect;
pub mod host;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, OnceLock, PoisonError, RwLock},
    time::Instant,
};

use crate::{
    audit::{self, AuditOptions, Auditor, OrgKey, Scrubber},
    detect::{Engine, RuleError, RuleSet, Severity},
    mcp::ParsedConfig,
    report::{
        baseline::{self, Baseline},
        Report, TargetIssue, TargetReport, UnparsedConfig,
    },
    source::{self, SourceOptions, Target},
    verify,
};

/// Everything a run needs to know, checked: sizes parsed, files that must exist read.
#[derive(Debug, Clone)]
pub struct Options {
    pub sources: SourceOptions,
    /// Put secrets in clear into the report (`--show-secrets`).
    pub show_secrets: bool,
    /// Rotation policy: a live key first seen longer ago than this is overdue.
    pub max_age_days: u64,
    /// Keys at or above this severity fail the run.
    pub fail_on: Severity,
    /// Agent event files whose opens join the keys.
    pub access_logs: Vec<PathBuf>,
    /// Fingerprints to leave out of the report (counted as suppressed).
    pub baseline: Option<BTreeSet<String>>,
    /// Ask the providers whether keys still work (`--verify`); `None`: nothing leaves the host.
    pub verify: Option<verify::Options>,
    /// Report only the keys a provider says are active (`--only-verified`).
    pub only_verified: bool,
    /// Hand back each verifiable key's secret and needs, by fingerprint (`detector revoke`).
    pub keep_candidates: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sources: SourceOptions::default(),
            show_secrets: false,
            max_age_days: 90,
            fail_on: Severity::High,
            access_logs: Vec::new(),
            baseline: None,
            verify: None,
            only_verified: false,
            keep_candidates: false,
        }
    }
}

/// What a run tells the person who started it while it goes, besides the report.
pub trait Observer: Sync {
    /// A target is about to be read.
    fn target(&self, _target: &Target) {}
    /// An object of `bytes` bytes was read.
    fn object(&self, _bytes: u64) {}
    /// One line worth saying now: a target that could not be read, a log line that could
    /// not be used.
    fn warn(&self, _message: &str) {}
    /// Every target was read.
    fn done(&self) {}
    /// `keys` requests to providers are about to be sent (`--verify`).
    fn verifying(&self, _keys: usize) {}
    /// One of them was answered (or gave up).
    fn verified(&self) {}
}

/// The observer, as verification reports to it.
struct Verifying<'a>(&'a dyn Observer);

impl verify::Progress for Verifying<'_> {
    fn verifying(&self, keys: usize) {
        self.0.verifying(keys);
    }
    fn verified(&self) {
        self.0.verified();
    }
}

/// An observer that says nothing.
pub struct Silent;

impl Observer for Silent {}

/// What a run gives.
#[derive(Debug)]
pub struct Outcome {
    /// The report, the baseline's keys left out.
    pub report: Report,
    /// Every key found, before the baseline left any out: what `--write-baseline` records.
    pub found: Baseline,
    /// Not a single target could be read.
    pub all_failed: bool,
    /// The MCP configs read (each once), for callers that act on servers.
    pub configs: Vec<Arc<ParsedConfig>>,
    /// With `keep_candidates`: each verifiable key's secret and needs, by fingerprint.
    pub candidates: Option<HashMap<String, verify::Candidate>>,
}

/// The rules, compiled once and shared by every run; the org key; the options.
pub struct Pipeline {
    rules: RuleSet,
    /// Compiled from `rules`; dropped by [`Pipeline::release`] while idle.
    engine: RwLock<Option<Arc<Engine>>>,
    org_key: OrgKey,
    options: Options,
    /// The verifiers by rule, with `--verify` or `keep_candidates` only.
    verify_plan: Option<verify::Plan>,
}

impl Pipeline {
    /// Compile `rules` (a bad rule fails here, before anything is read).
    pub fn new(rules: RuleSet, org_key: OrgKey, options: Options) -> Result<Pipeline, RuleError> {
        let engine = Engine::new(rules.clone())?;
        tracing::debug!(origin = %org_key.origin, "org key loaded");
        let verify_plan = match (&options.verify, options.keep_candidates) {
            (Some(verify), _) => Some(verify::Plan::new(&rules, verify.network)),
            (None, true) => Some(verify::Plan::new(&rules, false)),
            (None, false) => None,
        };
        Ok(Pipeline {
            rules,
            engine: RwLock::new(Some(Arc::new(engine))),
            org_key,
            options,
            verify_plan,
        })
    }

    /// The verifiers by rule, with `--verify` or `keep_candidates` only.
    pub fn verify_plan(&self) -> Option<&verify::Plan> {
        self.verify_plan.as_ref()
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    pub fn org_key(&self) -> &OrgKey {
        &self.org_key
    }

    /// The compiled rules, compiled again if they were released.
    pub fn engine(&self) -> Arc<Engine> {
        if let Some(engine) = &*self.engine.read().unwrap_or_else(PoisonError::into_inner) {
            return Arc::clone(engine);
        }
        let mut slot = self.engine.write().unwrap_or_else(PoisonError::into_inner);
        let engine = slot.get_or_insert_with(|| {
            // The same rules compiled when the pipeline was made: they cannot fail now.
            Arc::new(Engine::new(self.rules.clone()).expect("rules that compiled once compile"))
        });
        Arc::clone(engine)
    }

    /// Drop the compiled rules until the next run: they cost megabytes, and an idle agent
    /// should not.
    pub fn release(&self) {
        self.engine
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Read `targets` into one report.
    pub fn run(&self, targets: &[Target], observer: &dyn Observer) -> Outcome {
        let options = &self.options;
        // Compiled when the first blob arrives, not before: a target that cannot be read
        // costs nothing, and a file is read as soon as it is asked for.
        let engine = OnceLock::new();
        let now = chrono::Utc::now();
        let auditor = Auditor::new(
            self.org_key.clone(),
            AuditOptions {
                show_secrets: options.show_secrets,
                max_age_days: options.max_age_days,
                now,
            },
        );
        let context = source::Context::new(options.sources.clone());

        let mut gathered = collect::Gathered::default();
        let mut scanned: Vec<(TargetReport, Vec<collect::Unparsed>)> = Vec::new();
        for target in targets {
            let started = Instant::now();
            tracing::info!(%target, "scanning");
            observer.target(target);
            let collector = collect::Collector::new(self, &engine, observer);
            let result = source::scan(target, &context, &collector);
            let (mut target_report, unparsed) =
                collector.finish(target, started.elapsed(), &mut gathered);
            if let Err(err) = result {
                target_report.failed = true;
                target_report.errors.insert(
                    0,
                    TargetIssue {
                        path: err.path.clone(),
                        reason: err.reason.clone(),
                    },
                );
                observer.warn(&failure_message(target, &err));
            }
            if target.is_image() {
                // An image's errors are few and each one is a layer or config not scanned.
                for issue in target_report
                    .errors
                    .iter()
                    .skip(usize::from(target_report.failed))
                {
                    observer.warn(&format!(
                        "{target}: {}: {}",
                        issue.path.display(),
                        issue.reason
                    ));
                }
            }
            scanned.push((target_report, unparsed));
        }
        observer.done();
        let all_failed = scanned.iter().all(|(t, _)| t.failed);

        let configs = unique_configs(std::mem::take(&mut gathered.configs));
        let scrubber = Scrubber::new(&gathered.findings, &configs);
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
        let scope_roots: Vec<_> = gathered.scope_roots.into_iter().collect();
        audit::place_in_scope_roots(&mut gathered.findings, &scope_roots);
        audit::link_workload_files(&mut gathered.findings, &gathered.workloads);
        let candidates = self.verify_plan.as_ref().map(|plan| {
            verify::candidates(plan, &gathered.findings, &gathered.needs, |secret| {
                auditor.fingerprint(secret)
            })
        });
        drop(std::mem::take(&mut gathered.needs));
        let mut keys = auditor.keys_with_history(gathered.findings, &gathered.assignments);
        // Build instructions carry `--build-arg` values in clear.
        for location in keys.iter_mut().flat_map(|k| k.locations.iter_mut()) {
            if let Some(created_by) = location.provenance.origin.created_by_mut() {
                *created_by = scrubber.scrub(created_by);
            }
        }
        targets_report.extend(access_log::join(
            &mut keys,
            &options.access_logs,
            options.max_age_days,
            observer,
        ));
        if let (Some(plan), Some(verify), Some(candidates)) =
            (&self.verify_plan, &options.verify, &candidates)
        {
            if let Err(err) = verify::verify(
                &mut keys,
                candidates,
                plan,
                verify,
                options.max_age_days,
                &Verifying(observer),
            ) {
                observer.warn(&format!("cannot verify: {err:#}"));
            }
        }
        let candidates = candidates.filter(|_| options.keep_candidates);
        if options.only_verified {
            keys.retain(|k| {
                k.verification
                    .as_ref()
                    .is_some_and(|v| v.state == verify::State::Active)
            });
        }
        let servers = auditor.servers(&configs, &keys, &scrubber, &gathered.on_disk);
        let workloads = auditor.workloads(&gathered.workloads, &keys);
        let mut report = Report::new(
            keys,
            servers,
            targets_report,
            options.fail_on,
            options.max_age_days,
            now,
        );
        report.workloads = workloads;
        let found = Baseline::of(&report);
        if let Some(baseline) = &options.baseline {
            baseline::suppress(&mut report, baseline, options.fail_on);
        }
        Outcome {
            report,
            found,
            all_failed,
            configs,
            candidates,
        }
    }
}

/// One line naming the target and the file and the problem.
fn failure_message(target: &Target, err: &source::SourceError) -> String {
    if target.path().is_some_and(|p| p == err.path) {
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
