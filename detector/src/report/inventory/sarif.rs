//! The inventory as SARIF 2.1.0: one result per key still exposed (open) or still in history
//! or an image (fixed, not revoked), at each place it is now, carrying the key's fingerprint
//! so that an alert keeps its identity from one inventory to the next.
use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::Path,
};

use serde_json::{json, Value};

use super::severity;
use crate::{
    report::{
        sarif::{
            artifact, describe, directory_uri, level, logical_locations, rule_name,
            security_severity, SARIF_SCHEMA, SRCROOT,
        },
        view::LocationView,
    },
    store::inventory::{Inventory, KeyRecord},
};

pub fn write(inventory: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    let base = std::env::current_dir().ok();
    let log = sarif(inventory, base.as_deref());
    serde_json::to_writer_pretty(&mut *out, &log).map_err(io::Error::other)?;
    writeln!(out)
}

/// A key that is still a finding: open, or fixed but still where history keeps it.
fn is_finding(key: &KeyRecord) -> bool {
    matches!(key.state, "open" | "fixed-still-in-history")
}

pub fn sarif(inventory: &Inventory, base: Option<&Path>) -> Value {
    let mut rules: BTreeMap<&str, &KeyRecord> = BTreeMap::new();
    for key in inventory.keys.iter().filter(|k| is_finding(k)) {
        let entry = rules.entry(&key.rule).or_insert(key);
        if severity(&key.severity) > severity(&entry.severity) {
            *entry = key;
        }
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, r)| (*r, i)).collect();
    let rule_objects: Vec<Value> = rules
        .values()
        .map(|key| {
            json!({
                "id": key.rule,
                "name": rule_name(&key.rule),
                "shortDescription": {"text": format!("{} secret", key.provider)},
                "defaultConfiguration": {"level": level(severity(&key.severity))},
                "properties": {
                    "tags": ["security", "secret", key.provider],
                    "security-severity": security_severity(severity(&key.severity)),
                },
            })
        })
        .collect();
    let results: Vec<Value> = inventory
        .keys
        .iter()
        .filter(|k| is_finding(k))
        .map(|key| result(key, index[key.rule.as_str()], base))
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": env!("CARGO_PKG_NAME"),
            "version": env!("CARGO_PKG_VERSION"),
            "semanticVersion": env!("CARGO_PKG_VERSION"),
            "rules": rule_objects,
        }},
        "invocations": [{"executionSuccessful": true}],
        "results": results,
        "properties": {
            "schema": inventory.schema,
            "store": inventory.store,
            "generated_at": inventory.generated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "open": inventory.summary.open,
            "fixed": inventory.summary.fixed,
        },
    });
    if let Some(base) = base {
        run["originalUriBaseIds"] = json!({ SRCROOT: {"uri": directory_uri(base)} });
    }
    json!({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]})
}

fn result(key: &KeyRecord, rule_index: usize, base: Option<&Path>) -> Value {
    let open = key.state == "open";
    let first = key
        .first_detected
        .map_or("an unknown day".to_string(), |t| {
            t.format("%Y-%m-%d").to_string()
        });
    let text = if open {
        format!(
            "{} key {} ({}) exposed since {first}, seen by {}",
            key.provider,
            key.redacted,
            key.severity,
            key.hosts.join(", ")
        )
    } else {
        format!(
            "{} key {} ({}) fixed but still in history or an image, and not revoked",
            key.provider, key.redacted, key.severity
        )
    };
    let locations: Vec<Value> = key
        .now
        .iter()
        .map(|location| {
            let view = LocationView::new(location);
            let mut physical = json!({"artifactLocation": artifact(&view, base)});
            if let Some(line) = view.line {
                physical["region"] = json!({"startLine": line.max(1)});
            }
            let mut object = json!({
                "physicalLocation": physical,
                "message": {"text": describe(&view)},
            });
            let logical = logical_locations(&view);
            if !logical.is_empty() {
                object["logicalLocations"] = Value::Array(logical);
            }
            object
        })
        .collect();
    json!({
        "ruleId": key.rule,
        "ruleIndex": rule_index,
        "level": if open { level(severity(&key.severity)) } else { "note" },
        "message": {"text": text},
        "locations": locations,
        "partialFingerprints": {"detectorKey/v1": key.fingerprint},
        "properties": {
            "state": key.state,
            "first_detected": key.first_detected.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "age_days": key.age_days,
            "reopened": key.reopened,
            "hosts": key.hosts,
            "projects": key.projects,
            "read_by": key.read_by,
        },
    })
}
