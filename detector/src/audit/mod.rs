//! Match → Key: fingerprint, scope (project, environment, MCP server), rotation, violations.
//!
//! [`evidence::findings`] turns one blob's matches into findings as blobs stream by; once all
//! targets are read, [`Auditor::keys`] groups the findings by fingerprint into [`Key`]s and
//! [`Auditor::servers`] lists every MCP server with its fields classified.
pub mod access;
pub mod evidence;
pub mod fingerprint;
pub mod ignored;
pub mod key;
pub mod location;
pub mod scope;
pub mod timeline;
pub mod workloads;

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};

pub use access::AccessLog;
pub use evidence::{findings, BlobMatches, Finding, FILE_LITERAL_RULE, MCP_LITERAL_RULE};
pub use fingerprint::{redact, OrgKey};
pub use key::{
    Access, CheckEntry, Environment, FieldEntry, Key, McpServerRef, Scope, ServerEntry, Status,
    Successor, Violation,
};
pub use location::{Location, LocationV1, Locations};
pub use scope::{place_in_scope_roots, ScopeRoot};
pub use timeline::{assignments, Assignment};
pub use workloads::{link_files as link_workload_files, WorkloadFieldEntry, WorkloadReport};

use crate::{
    detect::value::ValueClass,
    mcp::{check_per_project_keys, McpServer, ParsedConfig},
    source::{container::Part, Container, LocationKind, Origin},
};

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Put secrets in clear into the keys (`--show-secrets`).
    pub show_secrets: bool,
    /// Rotation policy: a live key first seen longer ago than this is overdue.
    pub max_age_days: u64,
    /// "Now", for ages.
    pub now: DateTime<Utc>,
}

pub struct Auditor {
    org_key: OrgKey,
    options: AuditOptions,
}

impl Auditor {
    pub fn new(org_key: OrgKey, options: AuditOptions) -> Auditor {
        Auditor { org_key, options }
    }

    pub fn fingerprint(&self, secret: &str) -> String {
        self.org_key.fingerprint(secret)
    }

    /// Group findings into one key per fingerprint, most severe first.
    pub fn keys(&self, findings: Vec<Finding>) -> Vec<Key> {
        self.keys_with_history(findings, &[])
    }

    /// [`Auditor::keys`], with the references found in git blobs' slots: a key whose slot
    /// holds another key or a reference in a later version of its file is rotated.
    pub fn keys_with_history(
        &self,
        findings: Vec<Finding>,
        assignments: &[Assignment],
    ) -> Vec<Key> {
        let mut groups: HashMap<String, Vec<Finding>> = HashMap::new();
        for finding in findings {
            groups
                .entry(self.fingerprint(&finding.secret))
                .or_default()
                .push(finding);
        }
        let slots = timeline::SlotIndex::new(groups.iter(), assignments);
        let mut keys: Vec<Key> = groups
            .into_iter()
            .map(|(fingerprint, group)| {
                let (group, successor) = timeline::place(&fingerprint, group, &slots);
                self.key(fingerprint, group, successor)
            })
            .collect();
        keys.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
        keys
    }

    fn key(&self, fingerprint: String, group: Vec<Finding>, successor: Option<Successor>) -> Key {
        // The most telling rule: a real rule over the MCP fallback, then severity, then the
        // rule listed first.
        let best = group
            .iter()
            .map(|f| &f.rule)
            .max_by(|a, b| {
                (!a.is_fallback(), a.severity, std::cmp::Reverse(a.rank)).cmp(&(
                    !b.is_fallback(),
                    b.severity,
                    std::cmp::Reverse(b.rank),
                ))
            })
            .cloned()
            .expect("a key has at least one finding");
        let secret = group[0].secret.clone();
        // A known server's field says whose key it is when the rule cannot (a generic-format
        // key), and where the provider's keys are rotated.
        let credential = group.iter().find_map(|f| f.credential);
        let provider = match credential {
            Some(c) if !best.names_provider() && c.provider != "Generic" => c.provider.clone(),
            _ => best.provider.clone(),
        };
        let rotate_at = credential
            .filter(|c| c.provider == provider && !c.rotate.is_empty())
            .map(|c| c.rotate.clone());

        let mut locations: Vec<Location> = group
            .iter()
            .map(|f| f.location.clone())
            .collect::<Locations>()
            .into_vec();
        locations.sort_by(|a, b| {
            (a.kind(), a.path(), a.line, a.column).cmp(&(b.kind(), b.path(), b.line, b.column))
        });

        // The managed store is where a key is kept, not a project that uses it: a key in the
        // store and in one project's config is that project's alone.
        let in_use = |f: &&Finding| f.location.kind() != LocationKind::ManagedStore;
        let projects: BTreeSet<String> = if group.iter().any(|f| in_use(&f)) {
            group
                .iter()
                .filter(in_use)
                .map(|f| f.project.clone())
                .collect()
        } else {
            group.iter().map(|f| f.project.clone()).collect()
        };
        let mcp_servers: BTreeSet<McpServerRef> = group
            .iter()
            .flat_map(|f| f.mcp_servers.iter().cloned())
            .collect();
        let slots: BTreeSet<String> = group
            .iter()
            .filter_map(|f| f.location.slot.clone())
            .collect();
        let workloads: BTreeSet<crate::source::container::Workload> = group
            .iter()
            .filter_map(|f| f.location.workload.as_ref())
            .map(|place| place.workload.clone())
            .collect();

        let mut environments: BTreeSet<Environment> = group
            .iter()
            .flat_map(|f| f.context.iter())
            .flat_map(|text| scope::environments_in(text))
            .collect();
        environments.extend(scope::key_prefix_environment(&secret));
        if environments.is_empty() {
            environments.insert(Environment::Unknown);
        }

        let live = group.iter().any(|f| f.location.origin().is_current());
        // Rotation needs history (git, image layers): on-disk sources only see current files.
        let rotated_to = if live { None } else { successor };
        let status = if live {
            Status::Live
        } else if rotated_to.is_some() {
            Status::Rotated
        } else {
            Status::Removed
        };
        let seen: Vec<DateTime<Utc>> = group
            .iter()
            .filter_map(|f| f.location.origin().time())
            .collect();
        let first_seen = seen.iter().min().copied();
        let last_seen = seen.iter().max().copied();
        let age_days = first_seen.map(|t| (self.options.now - t).num_days().max(0));
        let overdue = is_overdue(status, age_days, self.options.max_age_days);

        let mut key = Key {
            fingerprint,
            rule: best.id.clone(),
            provider,
            severity: best.severity,
            description: best.description.clone(),
            redacted: redact(&secret),
            secret: self.options.show_secrets.then_some(secret),
            status,
            verification: None,
            rotated_to,
            first_seen,
            last_seen,
            age_days,
            overdue,
            slots: slots.into_iter().collect(),
            scope: Scope {
                projects: projects.into_iter().collect(),
                environments: environments.into_iter().collect(),
                mcp_servers: mcp_servers.into_iter().collect(),
                workloads: workloads.into_iter().collect(),
            },
            violations: Vec::new(),
            locations,
            accessed_by: Vec::new(),
            remediation: Vec::new(),
            rotate_at,
            held_in_store: false,
        };
        assess(&mut key, self.options.max_age_days);
        key
    }

    /// Every MCP server of every parsed config (each config once), with its fields classified
    /// and, for a literal, the fingerprint of the key it holds. No values. Configs read from
    /// this host's disk (`on_disk`) are also checked for being git-ignored where they sit in a
    /// work tree; a config from an image or a git blob has no such place.
    pub fn servers(
        &self,
        configs: &[Arc<ParsedConfig>],
        keys: &[Key],
        scrubber: &Scrubber,
        on_disk: &BTreeSet<PathBuf>,
    ) -> Vec<ServerEntry> {
        let mut ignore_checks: HashMap<&Path, CheckEntry> = HashMap::new();
        let mut ignore_cache = ignored::IgnoreCache::default();
        for config in configs {
            if on_disk.contains(&config.path) && !config.servers.is_empty() {
                ignore_checks.insert(&config.path, ignore_cache.check(&config.path));
            }
        }
        // (config, project, server, field) → fingerprint
        let mut holders: HashMap<(PathBuf, Option<String>, String, String), String> =
            HashMap::new();
        for key in keys {
            for r in &key.scope.mcp_servers {
                holders.insert(
                    (
                        r.config.clone(),
                        r.project.clone(),
                        r.server.clone(),
                        r.field.clone(),
                    ),
                    key.fingerprint.clone(),
                );
            }
        }
        let mut seen = BTreeSet::new();
        let mut servers: Vec<McpServer> = Vec::new();
        for config in configs {
            for server in &config.servers {
                if seen.insert((
                    config.path.clone(),
                    server.project.clone(),
                    server.name.clone(),
                )) {
                    servers.push(server.clone());
                }
            }
        }
        // Keys found in values that are not secret fields (an argument, an id beside its
        // secret) are the servers' literal fields too.
        let mut found: HashMap<(PathBuf, Option<String>, String), Vec<&str>> = HashMap::new();
        for (config, project, server, field) in holders.keys() {
            found
                .entry((config.clone(), project.clone(), server.clone()))
                .or_default()
                .push(field);
        }
        for server in &mut servers {
            let at = (
                server.config.clone(),
                server.project.clone(),
                server.name.clone(),
            );
            if let Some(fields) = found.get(&at) {
                server.add_found_fields(fields.iter().copied());
            }
        }
        // Per file, the parser already saw keys shared between projects; across files only
        // the whole host's servers can tell.
        check_per_project_keys(&mut servers);
        let mut entries: Vec<ServerEntry> = servers
            .iter()
            .map(|server| {
                let fields = server
                    .fields
                    .iter()
                    .map(|f| FieldEntry {
                        field: f.field.clone(),
                        name: f.name.clone(),
                        class: f.class,
                        fingerprint: if f.class == ValueClass::Literal {
                            holders
                                .get(&(
                                    server.config.clone(),
                                    server.project.clone(),
                                    server.name.clone(),
                                    f.field.clone(),
                                ))
                                .cloned()
                        } else {
                            None
                        },
                    })
                    .collect();
                ServerEntry {
                    host: None,
                    client: server.client.clone(),
                    config: server.config.clone(),
                    server: server.name.clone(),
                    project: server.project.clone(),
                    user: server.user.clone(),
                    transport: server.transport.clone(),
                    command: server.command.as_deref().map(|c| scrubber.scrub(c)),
                    url: server.url.as_deref().map(|u| scrubber.scrub(u)),
                    fields,
                    checks: server
                        .checks
                        .iter()
                        .map(|c| CheckEntry {
                            check: c.check.to_string(),
                            pass: c.pass,
                            reason: c.reason.clone(),
                        })
                        .chain(ignore_checks.get(server.config.as_path()).cloned())
                        .map(|c| CheckEntry {
                            reason: scrubber.scrub(&c.reason),
                            ..c
                        })
                        .collect(),
                }
            })
            .collect();
        entries.sort_by(|a, b| {
            (&a.config, &a.project, &a.server).cmp(&(&b.config, &b.project, &b.server))
        });
        entries
    }
}

/// A live key first seen longer ago than the rotation policy allows.
pub fn is_overdue(status: Status, age_days: Option<i64>, max_age_days: u64) -> bool {
    let max = i64::try_from(max_age_days).unwrap_or(i64::MAX);
    status == Status::Live && age_days.is_some_and(|age| age > max)
}

/// Set a key's violations and remediation from what the key is: its locations, scope, age and
/// readers. Run when the key is built, and again whenever those change (agent events joined,
/// reports of many hosts merged), so the three never disagree.
pub fn assess(key: &mut Key, max_age_days: u64) {
    key.held_in_store = is_held_in_store(key);
    key.violations = violations(key);
    key.remediation = remediation(key, max_age_days);
    // A replaced key that still works is the worst kind: every old copy is a live credential.
    if key.violations.contains(&Violation::RotatedNotRevoked) {
        key.severity = crate::detect::Severity::Critical;
    }
}

/// What the provider's answer (`--verify`) makes of the key's status: a rotated or removed
/// key it still takes was never revoked; a live key it refuses breaks whatever uses it.
fn verified_violation(key: &Key) -> Option<Violation> {
    use crate::verify::State;
    match (key.status, key.verification.as_ref()?.state) {
        (Status::Rotated | Status::Removed, State::Active) => Some(Violation::RotatedNotRevoked),
        (Status::Live, State::Revoked) => Some(Violation::DeadKeyInConfig),
        _ => None,
    }
}

/// Every place the key is, is a managed store only its owner can read. A store others can
/// read is an exposure like any file (`world-readable`); a copy of a store elsewhere (git, a
/// backup, an image) is not a managed-store location at all.
fn is_held_in_store(key: &Key) -> bool {
    !key.locations.is_empty()
        && key.locations.iter().all(|l| {
            l.kind() == LocationKind::ManagedStore
                && !is_world_readable(l)
                && l.mcp_server.is_none()
        })
}

fn violations(key: &Key) -> Vec<Violation> {
    let mut found: BTreeSet<Violation> = verified_violation(key).into_iter().collect();
    if key.held_in_store {
        // Held, not exposed: the key's age, projects and environments are its users' matter,
        // seen where they use it. Only an unexpected reader of the store is news.
        if key.accessed_by.iter().any(|a| !a.allowed) {
            found.insert(Violation::ReadByUnexpectedProcess);
        }
        return found.into_iter().collect();
    }
    for location in &key.locations {
        // A backup (or archived copy) of an MCP config is still the config, in clear.
        if location.mcp_server.is_some() {
            found.insert(Violation::PlaintextInMcpConfig);
        }
        match location.origin() {
            Origin::McpConfig(_) => {
                found.insert(Violation::PlaintextInMcpConfig);
            }
            Origin::Git(git) if git.in_head != Some(true) => {
                found.insert(Violation::InGitHistory);
            }
            Origin::GitCommitMessage(_) => {
                found.insert(Violation::InGitHistory);
            }
            Origin::ImageLayer(_) => {
                found.insert(Violation::InImageLayer);
            }
            // An archive inside an image layer ships with the image too.
            Origin::ArchiveMember(member)
                if matches!(member.container, Container::ImageLayer(_)) =>
            {
                found.insert(Violation::InImageLayer);
            }
            Origin::ImageConfig(_) => {
                found.insert(Violation::InImageConfig);
            }
            _ => {}
        }
        if is_world_readable(location) {
            found.insert(Violation::WorldReadable);
        }
        if is_backup(location) {
            found.insert(Violation::InBackup);
        }
        if is_shell_profile(location) {
            found.insert(Violation::PlaintextInShellProfile);
        }
        match location.workload.as_ref().map(|place| place.part) {
            Some(Part::Env) => {
                found.insert(Violation::PlaintextInContainerEnv);
            }
            Some(Part::SecretData) => {
                found.insert(Violation::InK8sSecretManifest);
            }
            Some(Part::ConfigData) => {
                found.insert(Violation::SecretInConfigmap);
            }
            _ => {}
        }
    }
    if key.scope.projects.len() > 1 {
        found.insert(Violation::SharedAcrossProjects);
    }
    let environments = &key.scope.environments;
    let prod = environments.contains(&Environment::Production);
    let non_prod = environments.contains(&Environment::Development)
        || environments.contains(&Environment::Test);
    if prod && non_prod {
        found.insert(Violation::DevProdReuse);
    }
    if key.overdue {
        found.insert(Violation::Overdue);
    }
    if key.accessed_by.iter().any(|a| !a.allowed) {
        found.insert(Violation::ReadByUnexpectedProcess);
    }
    found.into_iter().collect()
}

/// Users other than the owner can read it (world-readable, or group-readable with others in
/// the group, when the source can tell).
fn is_world_readable(location: &Location) -> bool {
    location.is_readable_by_others()
}

/// A copy made to keep, not to use: what the source recognised as a backup (editor
/// leftovers, dotfile managers' sources, archive members), or a path that names one (for
/// sources that do not say, such as git trees and image layers).
/// A copy: a backup the source recognised (archive members of tarballs and zips among them,
/// not those of packages such as jars), or a path named like one.
fn is_backup(location: &Location) -> bool {
    location.provenance.backup.is_some()
        || crate::source::backup::recognise(location.path()).is_some()
}

/// A shell profile on disk (not a backup of one, which is `in-backup`).
fn is_shell_profile(location: &Location) -> bool {
    matches!(location.origin(), Origin::File(_))
        && location.provenance.backup.is_none()
        && crate::source::secret_file::recognise(location.path())
            == Some(crate::source::secret_file::SecretFileKind::ShellProfile)
}

/// Concrete steps, most urgent first, after the seed's patterns: rotate, then revoke the old
/// key; inject it from the environment or a secret manager instead of writing it down; one key
/// per project and environment.
fn remediation(key: &Key, max_age_days: u64) -> Vec<String> {
    let who = if key.provider.is_empty() || key.provider == "unknown" {
        "its issuer".to_string()
    } else {
        match &key.rotate_at {
            Some(url) => format!("{} ({url})", key.provider),
            None => key.provider.clone(),
        }
    };
    let users = if key.scope.mcp_servers.is_empty() {
        "whatever uses it"
    } else {
        "the servers below"
    };
    if key.held_in_store {
        let stores: BTreeSet<String> = key
            .locations
            .iter()
            .map(|l| l.path().display().to_string())
            .collect();
        let mut steps = vec![format!(
            "Nothing to do: held in a managed store ({}), private to its owner; keep it out of git and unencrypted backups.",
            stores.into_iter().collect::<Vec<_>>().join(", ")
        )];
        if key.violations.contains(&Violation::ReadByUnexpectedProcess) {
            steps.push(
                "A process the policy does not allow read the store: unless it is explained, treat the key as stolen and rotate it now.".to_string(),
            );
        }
        return steps;
    }
    let mut steps = Vec::new();
    match verified_violation(key) {
        Some(Violation::RotatedNotRevoked) => steps.push(format!(
            "Revoke it at {who} now: it was {} here, but {} says it still works, so every copy listed below is a working credential.",
            key.status.as_str(),
            key.provider
        )),
        Some(_) => steps.push(format!(
            "{} says this key no longer works: {users} using it {} broken. Put a working key in its place through a reference, then remove this one.",
            key.provider,
            if key.scope.mcp_servers.is_empty() { "is" } else { "are" }
        )),
        None => {}
    }
    steps.push(match key.status {
        Status::Live => format!(
            "Rotate, then revoke: issue a new key at {who}, give it to {users} through a reference (not a literal), restart {}, then revoke this key at {who}. It has been stored in clear, so assume it is known.",
            if key.scope.mcp_servers.is_empty() { "it" } else { "them" }
        ),
        Status::Rotated => {
            let successor = match &key.rotated_to {
                Some(next) => format!(
                    "{} in {} holds {} now{}",
                    next.slot,
                    next.path.display(),
                    match (&next.fingerprint, next.reference) {
                        (Some(_), _) => "another key".to_string(),
                        (None, Some(class)) => format!("a reference ({})", class.as_str()),
                        (None, None) => "another value".to_string(),
                    },
                    next.commit
                        .as_deref()
                        .map(|c| format!(" (since commit {})", c.get(..12).unwrap_or(c)))
                        .unwrap_or_default()
                ),
                None => "its slot holds another value now".to_string(),
            };
            format!(
                "It was rotated ({successor}); make sure the old key was revoked at {who}: every copy listed below still holds it."
            )
        }
        Status::Removed => format!(
            "Revoke it at {who}: it is no longer in use here, but every copy listed below still holds it."
        ),
    });
    for violation in &key.violations {
        let step = match violation {
            Violation::PlaintextInMcpConfig => {
                let fields: BTreeSet<String> = key
                    .scope
                    .mcp_servers
                    .iter()
                    .map(|s| {
                        let name = s.field.rsplit(['.', ':']).next().unwrap_or(&s.field);
                        format!(
                            "{} `{}` {} in {} → `${{{name}}}`",
                            s.client,
                            s.server,
                            s.field,
                            s.config.display()
                        )
                    })
                    .collect();
                let place = if fields.is_empty() {
                    "the MCP config".to_string()
                } else {
                    fields.into_iter().collect::<Vec<_>>().join("; ")
                };
                format!(
                    "Inject the key instead of writing it down: replace the literal ({place}) with an environment reference set where the client starts, or with a secret manager reference (`op://vault/item/field`, `${{input:…}}` prompts)."
                )
            }
            Violation::PlaintextInShellProfile => {
                let profiles: BTreeSet<String> = key
                    .locations
                    .iter()
                    .filter(|l| is_shell_profile(l))
                    .map(|l| l.path().display().to_string())
                    .collect();
                format!(
                    "Take it out of the shell profile ({}): every shell and every program started from one holds it. Export it from a secret manager when the shell starts (`export NAME=\"$(op read op://vault/item/field)\"`), or give it only to the client that needs it.",
                    profiles.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
            Violation::WorldReadable => {
                let files: BTreeSet<String> = key
                    .locations
                    .iter()
                    .filter(|l| is_world_readable(l))
                    .map(|l| shell_word(&l.provenance.file().to_string_lossy()))
                    .collect();
                format!(
                    "Make the files private: chmod 600 {}",
                    files.into_iter().collect::<Vec<_>>().join(" ")
                )
            }
            Violation::SharedAcrossProjects => format!(
                "Issue one key per project ({}), so that one leak can be revoked without breaking the others.",
                key.scope.projects.join(", ")
            ),
            Violation::DevProdReuse => {
                "Use separate keys for production and for development/test: a development machine or CI job must not hold the production key.".to_string()
            }
            Violation::Overdue => format!(
                "Rotate it now: first seen {} days ago, past the {max_age_days}-day rotation policy.",
                key.age_days.unwrap_or_default()
            ),
            Violation::InBackup => {
                let copies: BTreeSet<String> = key
                    .locations
                    .iter()
                    .filter(|l| is_backup(l))
                    .map(|l| l.provenance.file().display().to_string())
                    .collect();
                format!(
                    "Delete the backup copies ({}), or keep backups encrypted.",
                    copies.into_iter().collect::<Vec<_>>().join(", ")
                )
            }
            Violation::InGitHistory => {
                let in_files = key
                    .locations
                    .iter()
                    .any(|l| matches!(l.origin(), Origin::Git(_)));
                let in_messages = key
                    .locations
                    .iter()
                    .any(|l| matches!(l.origin(), Origin::GitCommitMessage(_)));
                match (in_files, in_messages) {
                    (false, true) => "Revoke it even though the commit is old: every clone keeps its message. Then purge it from history (git filter-repo, rewriting the messages that hold it).",
                    (true, true) => "Revoke it even though the file changed: every clone keeps the history. Then purge it from history (git filter-repo: the files and the commit messages that hold it) and git-ignore the file that held it.",
                    _ => "Revoke it even though the file changed: every clone keeps the history. Then purge it from history (git filter-repo) and git-ignore the file that held it.",
                }
                .to_string()
            }
            Violation::PlaintextInContainerEnv => {
                let holders = workload_labels(key, &[Part::Env]);
                format!(
                    "Stop passing the key in clear to the container's environment ({holders}): anyone who can run `docker inspect` or read the manifest has it. Mount it as a secret file (Compose `secrets:`, a Kubernetes Secret volume) or reference a Secret (`valueFrom.secretKeyRef`) fed from a secret manager."
                )
            }
            Violation::InK8sSecretManifest => {
                let holders = workload_labels(key, &[Part::SecretData]);
                format!(
                    "Take the Secret out of the manifest files ({holders}): base64 is not encryption. Create it from a secret manager (External Secrets, Sealed Secrets, SOPS) and commit only the reference."
                )
            }
            Violation::SecretInConfigmap => {
                let holders = workload_labels(key, &[Part::ConfigData]);
                format!(
                    "Move the key out of the ConfigMap ({holders}) into a Secret: ConfigMaps are readable by anyone who may read the namespace's configuration, and are not meant for secrets."
                )
            }
            Violation::InImageLayer | Violation::InImageConfig => {
                "Rebuild the image without the key (build secrets, not ENV/ARG or COPY) and delete the old tags.".to_string()
            }
            // Said first, above.
            Violation::RotatedNotRevoked | Violation::DeadKeyInConfig => continue,
            Violation::ReadByUnexpectedProcess => {
                let readers: BTreeSet<String> = key
                    .accessed_by
                    .iter()
                    .filter(|a| !a.allowed)
                    .map(|a| format!("{} (uid {}) opened {}", a.exe, a.uid, a.file.display()))
                    .collect();
                format!(
                    "Find out why policy-denied processes read it: {}. Unless each is explained, treat the key as stolen and rotate it now.",
                    readers.into_iter().collect::<Vec<_>>().join("; ")
                )
            }
        };
        // Layer and config leaks share their fix: say it once.
        if !steps.contains(&step) {
            steps.push(step);
        }
        if *violation == Violation::InImageLayer {
            steps.extend(hidden_layer_note(&key.locations));
        }
    }
    steps
}

/// The workloads that hold the key in these parts, as the report names them.
fn workload_labels(key: &Key, parts: &[Part]) -> String {
    let labels: BTreeSet<String> = key
        .locations
        .iter()
        .filter_map(|l| l.workload.as_ref())
        .filter(|place| parts.contains(&place.part))
        .map(|place| place.workload.label())
        .collect();
    labels.into_iter().collect::<Vec<_>>().join(", ")
}

/// `path` as one word of a shell command, quoted so that pasting the command runs nothing the
/// path holds (`$(…)`, backquotes, `;`), and never taken for an option: file names come from
/// scanned input.
fn shell_word(path: &str) -> String {
    let text = match path.strip_prefix('-') {
        Some(_) => format!("./{path}"),
        None => path.to_string(),
    };
    match shlex::try_quote(&text) {
        Ok(quoted) => quoted.into_owned(),
        // Only a NUL byte is refused, which no path holds; never print the text bare.
        Err(_) => format!("'{}'", text.replace('\0', "").replace('\'', r"'\''")),
    }
}

/// Why deleting a file in a later layer did not help, for each file that was.
fn hidden_layer_note(locations: &[Location]) -> Option<String> {
    let hidden: BTreeSet<String> = locations
        .iter()
        .filter_map(|l| match l.origin() {
            Origin::ImageLayer(layer) => Some((l, layer)),
            _ => None,
        })
        .filter_map(|(l, layer)| {
            let (verb, by) = match (&layer.deleted_in_layer, &layer.replaced_in_layer) {
                (Some(by), _) => ("deleted", by),
                (None, Some(by)) => ("replaced", by),
                (None, None) => return None,
            };
            let by = by.get(..19).unwrap_or(by);
            Some(format!(
                "{} ({verb} in layer {by}…, still in layer {})",
                l.path().display(),
                layer.layer_index.map_or("?".to_string(), |i| i.to_string())
            ))
        })
        .collect();
    (!hidden.is_empty()).then(|| {
        format!(
            "A later layer only hides {}: layers are never rewritten, so anyone who pulls the image can extract the earlier layer and read the key.",
            hidden.into_iter().collect::<Vec<_>>().join("; ")
        )
    })
}

/// Replaces every known secret with its redacted form in free text that came from a source
/// (commands, check reasons, parse errors), so none reaches a report by accident.
pub struct Scrubber {
    /// Longest first, so a secret is replaced before any secret it contains.
    secrets: Vec<String>,
}

impl Scrubber {
    /// The secrets of `findings`, and every literal field value of `configs` (a literal that
    /// is not a key still does not belong in a report).
    pub fn new(findings: &[Finding], configs: &[Arc<ParsedConfig>]) -> Scrubber {
        let literals = configs
            .iter()
            .flat_map(|c| c.servers.iter())
            .flat_map(|s| s.fields.iter())
            .filter(|f| f.class == ValueClass::Literal)
            .map(|f| f.value.trim().to_string());
        let mut secrets: Vec<String> = findings
            .iter()
            .map(|f| f.secret.clone())
            .chain(literals)
            .filter(|s| s.len() >= 4)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Scrubber { secrets }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), &redact(secret));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests;
