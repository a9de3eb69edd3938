//! SARIF 2.1.0, as GitHub code scanning takes it: one rule per detection rule, one result per
//! place a key was seen, each carrying the key's fingerprint in `partialFingerprints` so an
//! alert keeps its identity across runs. Never the secret, even with `--show-secrets`: SARIF
//! files are uploaded.
//!
//! Paths under the current directory (where CI checks the repository out) are written relative
//! to `%SRCROOT%`, which is how code scanning ties a result to a file of the repository; other
//! host paths are `file://` URIs; paths inside images are relative and named by a logical
//! location (the image and layer).
use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::{Component, Path, PathBuf},
};

use ring::digest;
use serde_json::{json, Map, Value};

use super::{
    time_text,
    view::{KeyView, LocationView, ReportView},
    Report,
};
use crate::{detect::Severity, source::LocationKind, uri};

pub(crate) const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub(crate) const SRCROOT: &str = "%SRCROOT%";

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let base = std::env::current_dir().ok();
    let log = sarif(report, base.as_deref());
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    writeln!(out)
}

/// The SARIF log of `report`, with host paths under `base` made relative to `%SRCROOT%`.
pub fn sarif(report: &Report, base: Option<&Path>) -> Value {
    let view = ReportView::new(report);
    // One rule per rule id, at the highest severity any of its keys has.
    let mut rules: BTreeMap<&str, &KeyView> = BTreeMap::new();
    // A key held in a managed store is no finding: listed in the other formats, not here.
    let exposed = || view.keys.iter().filter(|k| !k.held_in_store);
    for key in exposed() {
        let entry = rules.entry(key.rule).or_insert(key);
        if key.severity > entry.severity {
            *entry = key;
        }
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, r)| (*r, i)).collect();
    let rule_objects: Vec<Value> = rules.values().map(|key| rule(key)).collect();

    let mut results = Vec::new();
    for key in exposed() {
        for location in &key.locations {
            results.push(result(key, location, index[key.rule], base));
        }
    }

    let notifications: Vec<Value> = view
        .target_errors()
        .map(|e| {
            json!({
                "level": if e.failed { "error" } else { "warning" },
                "message": {"text": format!("{}: {}: {}", e.target, e.path.display(), e.reason)},
            })
        })
        .collect();
    let mut invocation = json!({
        "executionSuccessful": view.summary.targets_failed == 0,
    });
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = Value::Array(notifications);
    }

    let mut run = json!({
        "tool": {
            "driver": {
                "name": view.tool_name,
                "version": view.tool_version,
                "semanticVersion": view.tool_version,
                "rules": rule_objects,
            }
        },
        "invocations": [invocation],
        "results": results,
        "properties": {
            "schema": view.schema,
            "generated_at": time_text(&view.generated_at),
            "keys": view.summary.keys,
            "suppressed": view.summary.suppressed,
            "by_status": view.summary.by_status,
        },
    });
    if let Some(base) = base {
        run["originalUriBaseIds"] = json!({ SRCROOT: {"uri": directory_uri(base)} });
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

fn rule(key: &KeyView) -> Value {
    let description = if key.description.is_empty() {
        format!("{} secret", key.provider)
    } else {
        key.description.to_string()
    };
    json!({
        "id": key.rule,
        "name": rule_name(key.rule),
        "shortDescription": {"text": description},
        "fullDescription": {
            "text": format!("{description}: a secret stored in clear where others can read it (an MCP config, a file, git history, an image).")
        },
        "help": {
            "text": "Rotate the key (issue a new one, deploy it through an environment reference or a secret manager, then revoke the old one), and remove it from every place the report lists.",
            "markdown": "**Rotate, then revoke.** Issue a new key, give it to its servers through an environment reference (`${VAR}`) or a secret manager, then revoke the old key at the provider. Remove every copy the report lists: history and image layers keep a key after the file changes."
        },
        "defaultConfiguration": {"level": level(key.severity)},
        "properties": {
            "tags": ["security", "secret", key.provider],
            "precision": "high",
            "security-severity": security_severity(key.severity),
        },
    })
}

fn result(key: &KeyView, location: &LocationView, rule_index: usize, base: Option<&Path>) -> Value {
    let mut text = format!(
        "{} key {} ({}, {}) in {}",
        key.provider,
        key.redacted,
        key.status.as_str(),
        key.severity,
        describe(location),
    );
    if let Some(verification) = &key.verification {
        text.push_str(&format!("; {}", verification.sentence()));
    }
    if !key.violations.is_empty() {
        text.push_str(&format!("; violations: {}", key.violations.join(", ")));
    }
    if let Some(step) = key.remediation.first() {
        text.push_str(&format!(". {step}"));
    }

    let mut physical = Map::new();
    physical.insert("artifactLocation".into(), artifact(location, base));
    if let Some(line) = location.line.filter(|l| *l > 0) {
        physical.insert("region".into(), json!({"startLine": line}));
    }
    let mut sarif_location = json!({"physicalLocation": physical});
    let logical = logical_locations(location);
    if !logical.is_empty() {
        sarif_location["logicalLocations"] = Value::Array(logical);
    }

    let mut properties = json!({
        "fingerprint": key.fingerprint,
        "redacted": key.redacted,
        "status": key.status.as_str(),
        "severity": key.severity.as_str(),
        "environments": key.environment_names,
        "projects": key.projects,
        "violations": key.violations,
        "location_kind": location.kind_name(),
    });
    let layer = location.image.as_ref().and_then(|image| image.layer);
    for (name, value) in [
        ("commit", location.commit()),
        ("image", location.image_name()),
        ("layer", layer),
        ("member", location.member()),
        ("host", location.host),
    ] {
        if let Some(value) = value {
            properties[name] = json!(value);
        }
    }
    if let Some(verification) = &key.verification {
        properties["verification"] = json!(verification.state);
    }

    json!({
        "ruleId": key.rule,
        "ruleIndex": rule_index,
        "level": level(key.severity),
        "kind": "fail",
        "message": {"text": text},
        "locations": [sarif_location],
        "partialFingerprints": {
            "detectorKey/v1": key.fingerprint.trim_start_matches("hmac-sha256:"),
            "detectorLocation/v1": location_fingerprint(key, location),
        },
        "properties": properties,
    })
}

/// The same key at the same place (not line: lines move) is the same alert.
fn location_fingerprint(key: &KeyView, location: &LocationView) -> String {
    let identity = [
        key.fingerprint,
        location.kind_name(),
        &location.path.to_string_lossy(),
        location.member().unwrap_or(""),
        location.image_name().unwrap_or(""),
        location.host.unwrap_or(""),
    ]
    .join("\0");
    hex::encode(digest::digest(&digest::SHA256, identity.as_bytes()).as_ref())
}

pub(crate) fn artifact(location: &LocationView, base: Option<&Path>) -> Value {
    // A member is found at its archive's file.
    let path: &Path = match location.archive {
        Some(member) => &member.archive,
        None => location.path,
    };
    let image = matches!(
        location.kind,
        LocationKind::ImageLayer | LocationKind::ImageConfig
    );
    if path.as_os_str().is_empty() || location.kind == LocationKind::GitCommitMessage {
        // A git object no path names any more, or a commit's message: the object is all
        // there is.
        let name = location.commit().unwrap_or("unknown-object");
        return json!({"uri": percent_encode(name)});
    }
    if image {
        let rel = path.strip_prefix("/").unwrap_or(path);
        return json!({"uri": percent_encode(&rel.to_string_lossy())});
    }
    if let Some(container) = location.container {
        // Not a file: the container's value, named under the container.
        let uri = format!("container/{}/{}", container.container, path.display());
        return json!({"uri": percent_encode(&uri)});
    }
    if path.is_absolute() {
        if let Some(rel) = base.and_then(|b| path.strip_prefix(b).ok()) {
            return json!({"uri": percent_encode(&rel.to_string_lossy()), "uriBaseId": SRCROOT});
        }
        return json!({"uri": format!("file://{}", percent_encode(&path.to_string_lossy()))});
    }
    // Relative: to the scan's current directory, or a path inside a git tree.
    let rel: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    json!({"uri": percent_encode(&rel.to_string_lossy()), "uriBaseId": SRCROOT})
}

pub(crate) fn logical_locations(location: &LocationView) -> Vec<Value> {
    let mut logical = Vec::new();
    if let Some(image) = &location.image {
        if let Some(name) = image.image {
            let name = match image.layer_index {
                Some(i) => format!("{name} layer {i}"),
                None => name.to_string(),
            };
            logical.push(json!({"name": name, "kind": "module"}));
        }
    }
    if let Some(member) = location.member() {
        logical.push(json!({"name": member, "kind": "member"}));
    }
    if let Some(place) = location.workload {
        logical.push(json!({"name": place.workload.label(), "kind": "object"}));
    }
    if let Some(server) = location.mcp_server {
        let name = match location.mcp_field {
            Some(field) => format!("{server}.{field}"),
            None => server.to_string(),
        };
        logical.push(json!({"name": name, "kind": "object"}));
    }
    logical
}

/// `kind path`, then the commit, image, member and server in parentheses.
pub(crate) fn describe(location: &LocationView) -> String {
    let mut text = format!("{} {}", location.kind_name(), location.path.display());
    let server = location.mcp_server.map(|s| format!("MCP server `{s}`"));
    for aside in [
        location.commit_phrase(),
        location.image_phrase(),
        location.member_phrase(),
        location.workload_phrase(),
        server,
    ]
    .into_iter()
    .flatten()
    {
        text.push_str(&format!(" ({aside})"));
    }
    text
}

pub(crate) fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub maps these to critical (≥ 9.0), high (≥ 7.0), medium (≥ 4.0) and low.
pub(crate) fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
    }
}

/// `github-pat` → `GithubPat`.
pub(crate) fn rule_name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

pub(crate) fn directory_uri(dir: &Path) -> String {
    let mut text = format!("file://{}", percent_encode(&dir.to_string_lossy()));
    if !text.ends_with('/') {
        text.push('/');
    }
    text
}

fn percent_encode(text: &str) -> String {
    uri::encode(text, uri::PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::{
        audit::Location,
        source::{DiskFile, Origin, Provenance},
    };

    /// A file on disk at `path`.
    fn file_at(path: &str) -> Location {
        Location::at(Provenance {
            path: path.into(),
            origin: Origin::File(DiskFile::default()),
            backup: None,
        })
    }

    #[test]
    fn uris() {
        assert_eq!(percent_encode("/a b/ü.json"), "/a%20b/%C3%BC.json");
        let location = file_at("/work/repo/.cursor/mcp.json");
        let location = LocationView::new(&location);
        assert_eq!(
            artifact(&location, Some(Path::new("/work/repo"))),
            json!({"uri": ".cursor/mcp.json", "uriBaseId": SRCROOT})
        );
        assert_eq!(
            artifact(&location, Some(Path::new("/elsewhere"))),
            json!({"uri": "file:///work/repo/.cursor/mcp.json"})
        );
        let relative = file_at("./src/.env");
        let relative = LocationView::new(&relative);
        assert_eq!(
            artifact(&relative, None),
            json!({"uri": "src/.env", "uriBaseId": SRCROOT})
        );
        assert_eq!(rule_name("github-pat_v2"), "GithubPatV2");
    }
}
