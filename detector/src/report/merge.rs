//! Many reports (hosts, CI jobs) → one org-wide map. A key is the same key wherever its
//! fingerprint is the same (hosts share the org key), so keys of many reports become one entry
//! with every location (each marked with its host), every project, environment and server, and
//! the status recomputed: live anywhere is live.
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    path::PathBuf,
};

use chrono::{DateTime, Utc};

use super::{Report, TargetReport};
use crate::{
    audit::{
        assess, is_overdue, Access, Environment, Key, Locations, ServerEntry, Status,
        WorkloadReport, MCP_LITERAL_RULE,
    },
    detect::Severity,
    source::container::Workload,
};

pub struct MergeOptions {
    pub now: DateTime<Utc>,
    pub max_age_days: u64,
    pub fail_on: Severity,
}

/// One key of the merge, with its locations and readers indexed: every report adds to it in
/// time proportional to what it adds, never to what is there already.
struct Merging {
    key: Key,
    locations: Locations,
    readers: HashSet<Access>,
}

pub fn merge(reports: Vec<Report>, options: &MergeOptions) -> Report {
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    let mut keys: BTreeMap<String, Merging> = BTreeMap::new();
    let mut servers: Vec<ServerEntry> = Vec::new();
    let mut server_places: HashSet<(Option<String>, PathBuf, Option<String>, String)> =
        HashSet::new();
    let mut targets: Vec<TargetReport> = Vec::new();
    let mut workloads: Vec<WorkloadReport> = Vec::new();
    let mut workload_places: HashSet<(Option<String>, PathBuf, Workload)> = HashSet::new();
    let mut suppressed = 0;
    for report in reports {
        let host = report.host.clone();
        hosts.extend(report.hosts.iter().cloned());
        hosts.extend(host.iter().cloned());
        suppressed += report.summary.suppressed;
        for mut key in report.keys {
            for location in &mut key.locations {
                location.host = location.host.take().or_else(|| host.clone());
            }
            match keys.get_mut(&key.fingerprint) {
                Some(existing) => join_key(existing, key),
                None => {
                    let locations = std::mem::take(&mut key.locations).into_iter().collect();
                    let readers = key.accessed_by.iter().cloned().collect();
                    keys.insert(
                        key.fingerprint.clone(),
                        Merging {
                            key,
                            locations,
                            readers,
                        },
                    );
                }
            }
        }
        for mut server in report.mcp_servers {
            server.host = server.host.take().or_else(|| host.clone());
            let place = (
                server.host.clone(),
                server.config.clone(),
                server.project.clone(),
                server.server.clone(),
            );
            if server_places.insert(place) {
                servers.push(server);
            }
        }
        for mut target in report.targets {
            target.host = target.host.take().or_else(|| host.clone());
            targets.push(target);
        }
        for mut workload in report.workloads {
            workload.host = workload.host.take().or_else(|| host.clone());
            let place = (
                workload.host.clone(),
                workload.file.clone(),
                workload.workload.clone(),
            );
            if workload_places.insert(place) {
                workloads.push(workload);
            }
        }
    }

    let mut keys: Vec<Key> = keys
        .into_values()
        .map(|merging| Key {
            locations: merging.locations.into_vec(),
            ..merging.key
        })
        .collect();
    for key in &mut keys {
        settle(key, options);
    }
    keys.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    check_keys_across_hosts(&mut servers);
    servers.sort_by(|a, b| {
        (&a.host, &a.config, &a.project, &a.server)
            .cmp(&(&b.host, &b.config, &b.project, &b.server))
    });

    let mut merged = Report::new(
        keys,
        servers,
        targets,
        options.fail_on,
        options.max_age_days,
        options.now,
    );
    merged.host = None;
    merged.hosts = hosts.into_iter().collect();
    workloads.sort_by(|a, b| (&a.host, &a.file, &a.workload).cmp(&(&b.host, &b.file, &b.workload)));
    merged.workloads = workloads;
    merged.summary.suppressed = suppressed;
    merged
}

/// Fold `other` (the same key, seen elsewhere) into `merging`.
fn join_key(merging: &mut Merging, other: Key) {
    let key = &mut merging.key;
    // The most telling rule: a real rule over the MCP fallback, then the more severe.
    let rank = |k: &Key| (k.rule != MCP_LITERAL_RULE, k.severity);
    if rank(&other) > rank(key) {
        key.rule = other.rule.clone();
        key.provider = other.provider.clone();
        key.severity = other.severity;
        key.description = other.description.clone();
    }
    if key.secret.is_none() {
        key.secret = other.secret;
    }
    // Live < Rotated < Removed: the most current status wins.
    key.status = key.status.min(other.status);
    if key.rotated_to.is_none() {
        key.rotated_to = other.rotated_to;
    }
    // The provider's latest word that tells (active or revoked) over an older one or none.
    let telling = |v: &Option<crate::verify::Verification>| {
        v.as_ref()
            .map(|v| (v.state != crate::verify::State::Unknown, v.checked_at))
    };
    if telling(&other.verification) > telling(&key.verification) {
        key.verification = other.verification;
    }
    key.first_seen = min_opt(key.first_seen, other.first_seen);
    key.last_seen = key.last_seen.max(other.last_seen);
    union(&mut key.slots, other.slots);
    union(&mut key.scope.projects, other.scope.projects);
    union(&mut key.scope.environments, other.scope.environments);
    union(&mut key.scope.mcp_servers, other.scope.mcp_servers);
    union(&mut key.scope.workloads, other.scope.workloads);
    for location in other.locations {
        merging.locations.add(location);
    }
    for access in other.accessed_by {
        if merging.readers.insert(access.clone()) {
            key.accessed_by.push(access);
        }
    }
}

/// Recompute what follows from the joined facts: age, overdue, violations, remediation.
fn settle(key: &mut Key, options: &MergeOptions) {
    if key.scope.environments.len() > 1 {
        key.scope
            .environments
            .retain(|e| *e != Environment::Unknown);
    }
    key.locations.sort_by(|a, b| {
        (&a.host, a.kind(), a.path(), a.line, a.column).cmp(&(
            &b.host,
            b.kind(),
            b.path(),
            b.line,
            b.column,
        ))
    });
    key.accessed_by
        .sort_by(|a, b| (a.time, a.pid, &a.file).cmp(&(b.time, b.pid, &b.file)));
    key.age_days = key.first_seen.map(|t| (options.now - t).num_days().max(0));
    key.overdue = is_overdue(key.status, key.age_days, options.max_age_days);
    // A successor says how the key was rotated; a key live somewhere was not.
    if key.status != Status::Rotated {
        key.rotated_to = None;
    }
    assess(key, options.max_age_days);
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn union<T: Ord>(into: &mut Vec<T>, more: Vec<T>) {
    let mut set: BTreeSet<T> = std::mem::take(into).into_iter().collect();
    set.extend(more);
    *into = set.into_iter().collect();
}

/// The `per-project-key` check again over every host's servers, by the fingerprints of their
/// literal fields (reports carry no values): one key used in the scopes of two hosts fails
/// both. A check that already failed on its own host stays failed.
fn check_keys_across_hosts(servers: &mut [ServerEntry]) {
    const CHECK: &str = "per-project-key";
    let scope = |s: &ServerEntry| {
        let scope = match (&s.project, &s.user) {
            (Some(project), _) => format!("project:{project}"),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => format!("config:{}", s.config.display()),
        };
        match &s.host {
            Some(host) => format!("{scope} on {host}"),
            None => scope,
        }
    };
    let mut users: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, server) in servers.iter().enumerate() {
        for field in &server.fields {
            if let Some(fp) = &field.fingerprint {
                users.entry(fp.as_str()).or_default().push(i);
            }
        }
    }
    let mut failures: Vec<(usize, String)> = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let own = scope(server);
        let mut shared: Vec<String> = Vec::new();
        for field in &server.fields {
            let Some(fp) = &field.fingerprint else {
                continue;
            };
            for &j in users.get(fp.as_str()).into_iter().flatten() {
                let other = &servers[j];
                let theirs = scope(other);
                if theirs == own || other.host == server.host {
                    // Same scope, or another scope of the same host: its own report said so.
                    continue;
                }
                let label = format!(
                    "{} shared with server '{}' of {} ({})",
                    field.field,
                    other.server,
                    theirs,
                    other.config.display()
                );
                if !shared.contains(&label) {
                    shared.push(label);
                }
            }
        }
        if !shared.is_empty() {
            failures.push((
                i,
                format!("same key on another host: {}", shared.join("; ")),
            ));
        }
    }
    for (i, reason) in failures {
        let checks = &mut servers[i].checks;
        match checks.iter_mut().find(|c| c.check == CHECK) {
            Some(check) if !check.pass => check.reason = format!("{}; {reason}", check.reason),
            Some(check) => {
                check.pass = false;
                check.reason = reason;
            }
            None => checks.push(crate::audit::CheckEntry {
                check: CHECK.to_string(),
                pass: false,
                reason,
            }),
        }
    }
}
