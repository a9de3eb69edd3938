//! The sink every target of a run streams into: each blob is matched by the engine as it
//! arrives and becomes findings; the parsed configs, the references in git slots, the scope
//! roots and the counts are kept for the audit that follows.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, PoisonError,
    },
    time::Duration,
};

use super::{Observer, Pipeline};
use crate::{
    audit::{self, Assignment, BlobMatches, Finding, ScopeRoot},
    detect::Engine,
    mcp::ParsedConfig,
    report::{NotScanned, TargetIssue, TargetReport, MAX_NOT_SCANNED},
    source::{container::WorkloadEntry, Blob, Sink, Skip, SkipReason, Target},
};

/// What all targets of a run gave the audit.
#[derive(Default)]
pub struct Gathered {
    pub findings: Vec<Finding>,
    /// References in git blobs' slots: what may have replaced a key.
    pub assignments: Vec<Assignment>,
    pub configs: Vec<Arc<ParsedConfig>>,
    /// Configs read from this host's disk (not from an image or a git blob).
    pub on_disk: BTreeSet<PathBuf>,
    /// Directories whose files belong to one project (repositories, homes).
    pub scope_roots: BTreeSet<ScopeRoot>,
    /// With `--verify`: by secret, the values its verifier needs, found in its blob.
    pub needs: HashMap<String, BTreeMap<String, String>>,
    /// The workloads defined where the scan looked (not in git history), by the file that
    /// defines them (`container:NAME` for a container).
    pub workloads: Vec<(PathBuf, WorkloadEntry)>,
}

/// An MCP config that did not parse, before its reason is scrubbed of secrets.
pub struct Unparsed {
    pub path: PathBuf,
    pub client: &'static str,
    pub reason: String,
}

/// The sink of one target.
pub struct Collector<'a> {
    pipeline: &'a Pipeline,
    /// The run's engine, taken from the pipeline when the first blob arrives.
    engine: &'a OnceLock<Arc<Engine>>,
    observer: &'a dyn Observer,
    objects: AtomicU64,
    bytes: AtomicU64,
    mcp_configs: AtomicU64,
    skipped: Mutex<BTreeMap<&'static str, u64>>,
    not_scanned: Mutex<Vec<NotScanned>>,
    errors: Mutex<Vec<TargetIssue>>,
    repositories: Mutex<Vec<PathBuf>>,
    gathered: Mutex<Gathered>,
    unparsed: Mutex<Vec<Unparsed>>,
}

impl<'a> Collector<'a> {
    pub fn new(
        pipeline: &'a Pipeline,
        engine: &'a OnceLock<Arc<Engine>>,
        observer: &'a dyn Observer,
    ) -> Collector<'a> {
        Collector {
            pipeline,
            engine,
            observer,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            mcp_configs: AtomicU64::new(0),
            skipped: Mutex::default(),
            not_scanned: Mutex::default(),
            errors: Mutex::default(),
            repositories: Mutex::default(),
            gathered: Mutex::default(),
            unparsed: Mutex::default(),
        }
    }

    /// The target's report (without its unparsed configs, whose reasons are scrubbed once
    /// every secret of the run is known); what it gave the audit goes into `into`.
    pub fn finish(
        self,
        target: &Target,
        elapsed: Duration,
        into: &mut Gathered,
    ) -> (TargetReport, Vec<Unparsed>) {
        let mut errors = into_inner(self.errors);
        let mut not_scanned = into_inner(self.not_scanned);
        let listed = not_scanned.len() as u64;
        let skipped: BTreeMap<String, u64> = into_inner(self.skipped)
            .into_iter()
            .map(|(reason, n)| (reason.to_string(), n))
            .collect();
        let all: u64 = skipped.values().sum();
        if all > listed {
            errors.push(TargetIssue {
                path: target.path().map(Path::to_path_buf).unwrap_or_default(),
                reason: format!(
                    "{} more objects not scanned are counted in skipped, not listed (the first {MAX_NOT_SCANNED} are)",
                    all - listed
                ),
            });
        }
        errors.sort();
        not_scanned.sort();
        let mut repositories = into_inner(self.repositories);
        repositories.sort();
        let report = TargetReport {
            host: None,
            target: target.to_string(),
            kind: target.kind().to_string(),
            failed: false,
            objects_scanned: self.objects.into_inner(),
            bytes_scanned: self.bytes.into_inner(),
            skipped,
            not_scanned,
            duration_ms: elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            mcp_configs: self.mcp_configs.into_inner(),
            unparsed_configs: Vec::new(),
            repositories,
            errors,
        };
        let gathered = into_inner(self.gathered);
        into.findings.extend(gathered.findings);
        into.assignments.extend(gathered.assignments);
        into.configs.extend(gathered.configs);
        into.on_disk.extend(gathered.on_disk);
        for (secret, needs) in gathered.needs {
            let known = into.needs.entry(secret).or_default();
            for (name, value) in needs {
                known.entry(name).or_insert(value);
            }
        }
        into.scope_roots.extend(gathered.scope_roots);
        into.workloads.extend(gathered.workloads);
        (report, into_inner(self.unparsed))
    }
}

/// The places of one key in one object that become locations. A key repeated on every line
/// of a big file (or in every `Env` entry of an image) is still one key: its first places say
/// where it is, and a million of them would only bloat the run and the report. Those past the
/// limit are counted in the target's errors.
pub const MAX_PLACES_PER_OBJECT: usize = 1000;

/// What the engine finds in a blob: in its bytes, and in each decoded field of its
/// credential file.
fn matches(engine: &Engine, blob: &Blob) -> BlobMatches {
    BlobMatches {
        matches: engine.scan(&blob.bytes),
        in_fields: blob
            .fields
            .iter()
            .flat_map(|file| file.fields.iter())
            .map(|field| match &field.decoded {
                Some(decoded) => engine.scan(decoded.as_bytes()),
                None => Vec::new(),
            })
            .collect(),
    }
}

impl Sink for Collector<'_> {
    fn blob(&self, blob: Blob) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(blob.bytes.len() as u64, Ordering::Relaxed);
        self.observer.object(blob.bytes.len() as u64);
        let engine = self.engine.get_or_init(|| self.pipeline.engine());
        let mut found = matches(engine, &blob);
        for m in &mut found.matches {
            if m.spans.len() > MAX_PLACES_PER_OBJECT {
                self.issue(
                    &blob.provenance.path,
                    &format!(
                        "one key ({}) appears {} times: the first {MAX_PLACES_PER_OBJECT} places are reported",
                        m.rule.id,
                        m.spans.len()
                    ),
                );
                m.spans.truncate(MAX_PLACES_PER_OBJECT);
            }
        }
        let findings = audit::findings(&blob, &found);
        tracing::trace!(
            path = %blob.provenance.path.display(),
            matches = found.matches.len(),
            findings = findings.len(),
            "scanned"
        );
        let keys_in_slots = findings.iter().any(|f| f.location.slot.is_some());
        let assigned = audit::assignments(&blob, keys_in_slots);
        let root = ScopeRoot::of(&blob);
        // Workloads as they are now (a Compose file in git history defines nothing running).
        let defines = blob
            .fields
            .as_deref()
            .is_some_and(|f| !f.workloads.is_empty())
            && blob.provenance.origin.git().is_none();
        if findings.is_empty()
            && assigned.is_empty()
            && blob.mcp.is_none()
            && root.is_none()
            && !defines
        {
            // Most blobs: nothing to keep, and no lock taken.
            return;
        }
        // Read while the blob's bytes are at hand: what a verifier needs next to its key.
        let needs = match self.pipeline.verify_plan() {
            Some(plan) if !findings.is_empty() && !plan.needs().is_empty() => {
                plan.needs().find(&blob.bytes, &findings)
            }
            _ => Vec::new(),
        };
        let mut gathered = lock(&self.gathered);
        for (secret, found) in needs {
            let known = gathered.needs.entry(secret).or_default();
            for (name, value) in found {
                known.entry(name).or_insert(value);
            }
        }
        if let Some(config) = &blob.mcp {
            self.mcp_configs.fetch_add(1, Ordering::Relaxed);
            if let Some(reason) = &config.parse_error {
                tracing::debug!(path = %config.path.display(), "MCP config does not parse");
                lock(&self.unparsed).push(Unparsed {
                    path: config.path.clone(),
                    client: config.client,
                    reason: reason.clone(),
                });
            }
            if blob.provenance.origin.disk_file().is_some() {
                gathered.on_disk.insert(config.path.clone());
            }
            // A version of a config in git history attributes its keys to their servers (see
            // `audit::timeline::place`); the servers listed are those of configs as they are.
            if blob.provenance.origin.git().is_none() {
                gathered.configs.push(Arc::clone(config));
            }
        }
        if let Some(root) = root {
            gathered.scope_roots.insert(root);
        }
        if let (true, Some(file)) = (defines, blob.fields.as_deref()) {
            let defined_in = match blob.provenance.origin.container() {
                Some(container) => PathBuf::from(format!("container:{}", container.container)),
                None => blob.provenance.path.clone(),
            };
            gathered.workloads.extend(
                file.workloads
                    .iter()
                    .map(|entry| (defined_in.clone(), entry.clone())),
            );
        }
        gathered.findings.extend(findings);
        gathered.assignments.extend(assigned);
    }

    fn not_scanned(&self, skip: Skip<'_>) {
        tracing::debug!(path = %skip.path.display(), reason = skip.reason.as_str(), detail = skip.detail, "not scanned");
        self.record(skip);
        if skip.lost {
            self.issue(skip.path, skip.detail.unwrap_or(skip.reason.as_str()));
        }
    }

    fn error(&self, path: &Path, reason: &str) {
        tracing::debug!(path = %path.display(), reason, "cannot read");
        self.issue(path, reason);
        self.record(Skip {
            detail: Some(reason),
            ..Skip::new(path, SkipReason::Unreadable)
        });
    }

    fn repository(&self, path: &Path) {
        tracing::debug!(path = %path.display(), "git repository");
        lock(&self.repositories).push(path.to_path_buf());
    }
}

impl Collector<'_> {
    /// An object not scanned, counted by its reason and listed (up to [`MAX_NOT_SCANNED`]).
    fn record(&self, skip: Skip<'_>) {
        *lock(&self.skipped).entry(skip.reason.as_str()).or_default() += 1;
        let mut listed = lock(&self.not_scanned);
        if listed.len() < MAX_NOT_SCANNED {
            listed.push(NotScanned {
                path: skip.path.to_path_buf(),
                reason: skip.reason.as_str().to_string(),
                object: skip.object.map(str::to_string),
                detail: skip.detail.map(str::to_string),
            });
        }
    }

    /// An entry in the target's errors (and nothing else).
    fn issue(&self, path: &Path, reason: &str) {
        lock(&self.errors).push(TargetIssue {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }
}

fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
