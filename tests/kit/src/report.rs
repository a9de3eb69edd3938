//! Queries on a `detector/report/v1` JSON report, and the check that no planted secret is
//! anywhere in clear.
use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::keys::fingerprint;

/// `(path, reason)` of every error of the report's first target.
pub fn target_errors(report: &Value) -> Vec<(String, String)> {
    report["targets"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The fingerprint of every key of the report.
pub fn report_fingerprints(report: &Value) -> BTreeSet<String> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap().to_string())
        .collect()
}

/// The key with this fingerprint; a failure shows the report.
pub fn key_by<'r>(report: &'r Value, fingerprint: &str) -> &'r Value {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("no key {fingerprint} in {report:#}"))
}

/// The key of `secret` under `org_key`; a failure shows the report.
pub fn key_of<'r>(report: &'r Value, org_key: &str, secret: &str) -> &'r Value {
    key_by(report, &fingerprint(org_key.as_bytes(), secret))
}

/// A key's locations.
pub fn locations(key: &Value) -> &Vec<Value> {
    key["locations"].as_array().unwrap()
}

/// An array of strings, as owned strings; anything else fails the test.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Fails if any of `secrets` appears in `haystack`, naming `what` and where (line and column),
/// with the secret itself cut to its first four characters in the message.
pub fn assert_no_secret<S: AsRef<str>>(
    haystack: &str,
    secrets: impl IntoIterator<Item = S>,
    what: &str,
) {
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.is_empty() {
            continue;
        }
        let Some(at) = haystack.find(secret) else {
            continue;
        };
        let line = haystack[..at].matches('\n').count() + 1;
        let line_start = haystack[..at].rfind('\n').map_or(0, |n| n + 1);
        let column = haystack[line_start..at].chars().count() + 1;
        let shown: String = secret.chars().take(4).collect();
        let text = haystack[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .replace(secret, &format!("{shown}…"));
        let text: String = text.chars().take(300).collect();
        panic!("{what} shows a planted secret ({shown}…) in clear at line {line}, column {column}: {text}");
    }
}

/// A saved report (as `report merge` reads it) of `host`, with one key, by `fingerprint`,
/// seen on lines 1 to `places` of one file.
pub fn one_key_in_many_places(host: &str, fingerprint: &str, places: usize) -> Value {
    let locations: Vec<Value> = (1..=places)
        .map(|line| json!({"kind": "file", "path": "/srv/app/big.env", "line": line, "column": 14}))
        .collect();
    json!({
        "schema": "detector/report/v1",
        "tool": {"name": "detector", "version": "0.1.0"},
        "generated_at": "2025-06-01T00:00:00Z",
        "host": host,
        "keys": [{
            "fingerprint": fingerprint,
            "rule": "github-pat-classic", "provider": "GitHub", "severity": "critical",
            "description": "", "redacted": "ghp_…", "status": "live",
            "first_seen": null, "last_seen": null, "age_days": null, "overdue": false,
            "slots": [], "scope": {"projects": [], "environments": [], "mcp_servers": []},
            "violations": [], "locations": locations,
        }],
        "mcp_servers": [],
        "targets": [],
        "summary": {
            "keys": 1, "by_status": {}, "by_severity": {}, "suppressed": 0,
            "fail_on": "high", "failing": 1, "mcp_servers": 0, "mcp_configs": 0,
            "unparsed_configs": 0, "targets": 0, "targets_failed": 0, "errors": 0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(
        expected = "the page shows a planted secret (abcd…) in clear at line 2, column 5"
    )]
    fn a_secret_in_clear_is_named_where_it_is() {
        assert_no_secret("first\nkey abcdef123 end\n", ["abcdef123"], "the page");
    }

    #[test]
    fn no_secret_is_no_failure() {
        assert_no_secret("nothing here", ["abcdef123", ""], "the page");
    }
}
