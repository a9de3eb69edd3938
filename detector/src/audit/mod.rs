//! Match → Key: fingerprint, scope (project, environment, MCP server), rotation, violations.
//!
//! [`evidence::findings`] turns one blob's matches into findings as blobs stream by; once all
//! targets are read, [`Auditor::keys`] groups the findings by fingerprint into [`Key`]s and
//! [`Auditor::servers`] lists every MCP server with its fields classified.
pub mod evidence;
pub mod fingerprint;
pub mod key;
pub mod scope;
pub mod timeline;

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::Arc,
};

use chrono::{DateTime, Utc};

pub use evidence::{findings, Finding, RuleRef, FILE_LITERAL_RULE, MCP_LITERAL_RULE};
pub use fingerprint::{redact, OrgKey};
pub use key::{
    Access, CheckEntry, Environment, FieldEntry, Key, Location, McpServerRef, Scope, ServerEntry,
    Status, Successor, Violation,
};
pub use timeline::{assignments, Assignment};

use crate::{
    detect::value::ValueClass,
    mcp::{check_per_project_keys, McpServer, ParsedConfig},
    source::LocationKind,
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
                (a.rank != usize::MAX, a.severity, std::cmp::Reverse(a.rank)).cmp(&(
                    b.rank != usize::MAX,
                    b.severity,
                    std::cmp::Reverse(b.rank),
                ))
            })
            .cloned()
            .expect("a key has at least one finding");
        let secret = group[0].secret.clone();

        let mut locations: Vec<Location> = Vec::new();
        for f in &group {
            merge_location(&mut locations, f.location.clone());
        }
        locations.sort_by(|a, b| {
            (a.kind, &a.path, a.line, a.column).cmp(&(b.kind, &b.path, b.line, b.column))
        });

        let projects: BTreeSet<String> = group.iter().filter_map(|f| f.project.clone()).collect();
        let mcp_servers: BTreeSet<McpServerRef> = group
            .iter()
            .flat_map(|f| f.mcp_servers.iter().cloned())
            .collect();
        let slots: BTreeSet<String> = group
            .iter()
            .filter_map(|f| f.location.slot.clone())
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

        let live = group.iter().any(|f| f.current);
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
            .filter_map(|f| f.location.commit_time.or(f.location.mtime))
            .collect();
        let first_seen = seen.iter().min().copied();
        let last_seen = seen.iter().max().copied();
        let age_days = first_seen.map(|t| (self.options.now - t).num_days().max(0));
        let overdue = live
            && age_days
                .is_some_and(|age| age > self.options.max_age_days.min(i64::MAX as u64) as i64);

        let violations = violations(&locations, &projects, &environments, overdue);
        let remediation = remediation(
            &best.provider,
            &violations,
            &mcp_servers,
            &locations,
            self.options.max_age_days,
        );

        Key {
            fingerprint,
            rule: best.id,
            provider: best.provider,
            severity: best.severity,
            description: best.description,
            redacted: redact(&secret),
            secret: self.options.show_secrets.then_some(secret),
            status,
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
            },
            violations,
            locations,
            accessed_by: Vec::new(),
            remediation,
        }
    }

    /// Every MCP server of every parsed config (each config once), with its fields classified
    /// and, for a literal, the fingerprint of the key it holds. No values.
    pub fn servers(
        &self,
        configs: &[Arc<ParsedConfig>],
        keys: &[Key],
        scrubber: &Scrubber,
    ) -> Vec<ServerEntry> {
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
                            reason: scrubber.scrub(&c.reason),
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

/// Add a location unless the same place is already there (two targets may read one file);
/// keep whichever copy knows the MCP server.
fn merge_location(locations: &mut Vec<Location>, location: Location) {
    let same = |a: &Location| {
        a.kind == location.kind
            && a.path == location.path
            && a.line == location.line
            && a.column == location.column
            && a.commit == location.commit
            && a.blob == location.blob
            && a.layer == location.layer
            && a.member == location.member
    };
    match locations.iter_mut().find(|a| same(a)) {
        Some(existing) => {
            if existing.mcp_server.is_none() && location.mcp_server.is_some() {
                *existing = location;
            }
        }
        None => locations.push(location),
    }
}

fn violations(
    locations: &[Location],
    projects: &BTreeSet<String>,
    environments: &BTreeSet<Environment>,
    overdue: bool,
) -> Vec<Violation> {
    let mut found = BTreeSet::new();
    for location in locations {
        // A backup (or archived copy) of an MCP config is still the config, in clear.
        if location.mcp_server.is_some() {
            found.insert(Violation::PlaintextInMcpConfig);
        }
        match location.kind {
            LocationKind::McpConfig => {
                found.insert(Violation::PlaintextInMcpConfig);
            }
            LocationKind::Git if location.in_head != Some(true) => {
                found.insert(Violation::InGitHistory);
            }
            LocationKind::ImageLayer => {
                found.insert(Violation::InImageLayer);
            }
            LocationKind::ImageConfig => {
                found.insert(Violation::InImageConfig);
            }
            _ => {}
        }
        if location.is_readable_by_others() {
            found.insert(Violation::WorldReadable);
        }
        if is_backup(location) {
            found.insert(Violation::InBackup);
        }
    }
    if projects.len() > 1 {
        found.insert(Violation::SharedAcrossProjects);
    }
    let prod = environments.contains(&Environment::Production);
    let non_prod = environments.contains(&Environment::Development)
        || environments.contains(&Environment::Test);
    if prod && non_prod {
        found.insert(Violation::DevProdReuse);
    }
    if overdue {
        found.insert(Violation::Overdue);
    }
    found.into_iter().collect()
}

/// A copy made to keep, not to use: what the source recognised as a backup (editor
/// leftovers, dotfile managers' sources, archive members), or a path that names one (for
/// sources that do not say, such as git trees and image layers).
fn is_backup(location: &Location) -> bool {
    location.backup.is_some()
        || location.kind == LocationKind::ArchiveMember
        || crate::source::backup::recognise(&location.path).is_some()
}

fn remediation(
    provider: &str,
    violations: &[Violation],
    servers: &BTreeSet<McpServerRef>,
    locations: &[Location],
    max_age_days: u64,
) -> Vec<String> {
    let who = if provider.is_empty() || provider == "unknown" {
        "its issuer".to_string()
    } else {
        provider.to_string()
    };
    let mut steps = vec![format!(
        "Revoke this key at {who} and issue a new one: it has been stored in clear, so assume it is known."
    )];
    for violation in violations {
        let step = match violation {
            Violation::PlaintextInMcpConfig => {
                let fields: Vec<String> = servers
                    .iter()
                    .map(|s| format!("{} `{}` {} in {}", s.client, s.server, s.field, s.config.display()))
                    .collect();
                let place = if fields.is_empty() {
                    "the MCP config".to_string()
                } else {
                    fields.join("; ")
                };
                format!(
                    "Replace the literal in {place} with a reference: an environment variable (`${{VAR}}`), the client's input prompt (`${{input:…}}`), or a secret manager (`op://…`)."
                )
            }
            Violation::WorldReadable => {
                let files: BTreeSet<String> = locations
                    .iter()
                    .filter(|l| l.is_readable_by_others())
                    .map(|l| l.archive.as_ref().unwrap_or(&l.path).display().to_string())
                    .collect();
                format!(
                    "Make the files private: chmod 600 {}",
                    files.into_iter().collect::<Vec<_>>().join(" ")
                )
            }
            Violation::SharedAcrossProjects => {
                "Issue one key per project, so that one leak can be revoked without breaking the others.".to_string()
            }
            Violation::DevProdReuse => {
                "Use separate keys for production and for development/test.".to_string()
            }
            Violation::Overdue => {
                format!("Rotate it: it is older than the {max_age_days}-day rotation policy.")
            }
            Violation::InBackup => {
                "Delete the backup copies, or keep backups encrypted.".to_string()
            }
            Violation::InGitHistory => {
                "Rewriting git history does not un-leak it: revoke it, then purge it from history.".to_string()
            }
            Violation::InImageLayer | Violation::InImageConfig => {
                "Rebuild the image without the key (build secrets, not ENV/ARG or COPY) and delete the old tags.".to_string()
            }
        };
        steps.push(step);
    }
    steps
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
