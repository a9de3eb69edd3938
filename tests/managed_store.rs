//! The scanner and detector's managed store (the env file `detector fix` moves keys into): a
//! key held there, and only there, is listed as held, not exposed — no violation, exit 0, not
//! counted — while the same key anywhere else is the exposure it always was. The store is
//! written by the library's own env-file destination, the scans run the real binary.
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
};

use detector::fix::destination::{Destination, Entry, ENV_FILE_HEADER};
use kit::{
    keys::{key, ALNUM},
    run::{json, stderr},
};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::{detector, schema::assert_report_valid};

const ORG_KEY: &str = "managed-store-test-org";

fn github_key(seed: u64) -> String {
    key("ghp_", ALNUM, 36, seed)
}

/// A home with a managed store at its default place holding `secret` as GITHUB_TOKEN.
fn home_with_store(root: &Path, secret: &str) -> (PathBuf, PathBuf) {
    let home = root.join("home/al");
    fs::create_dir_all(&home).unwrap();
    let store = Destination::default_env_file(&home);
    Destination::EnvFile(store.clone())
        .put(&[Entry {
            name: "GITHUB_TOKEN".to_string(),
            secret: Zeroizing::new(secret.to_string()),
            note: "server github in ~/.cursor/mcp.json".to_string(),
        }])
        .unwrap();
    (home, store)
}

fn scan(format: &str, target: &Path, home: &Path) -> Output {
    let target = format!("dir:{}", target.display());
    detector(&["scan", "--format", format, &target], home, Some(ORG_KEY))
}

fn only_key(report: &Value) -> &Value {
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{report:#}");
    &keys[0]
}

fn kinds(key: &Value) -> Vec<&str> {
    key["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect()
}

fn violations(key: &Value) -> Vec<&str> {
    key["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn a_key_held_only_in_the_store_is_listed_not_exposed() {
    let root = tempfile::tempdir().unwrap();
    let secret = github_key(7101);
    let (home, store) = home_with_store(root.path(), &secret);

    let output = scan("json", &home, &home);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    let key = only_key(&report);
    assert_eq!(key["held_in_store"], true, "{key:#}");
    assert_eq!(kinds(key), ["managed-store"]);
    assert_eq!(key["locations"][0]["path"], store.display().to_string());
    assert_eq!(key["locations"][0]["mode"], "0600");
    assert!(violations(key).is_empty(), "{key:#}");
    assert_eq!(key["status"], "live");
    let summary = &report["summary"];
    assert_eq!(summary["keys"], 1);
    assert_eq!(summary["held_in_store"], 1);
    assert_eq!(summary["failing"], 0);
    assert_eq!(
        summary["by_status"]["live"], 0,
        "held keys are not exposed keys"
    );
    assert!(summary["by_severity"]
        .as_object()
        .unwrap()
        .values()
        .all(|n| n == 0));
    assert!(!output
        .stdout
        .windows(secret.len())
        .any(|w| w == secret.as_bytes()));
    assert_report_valid(&report, "a report with a key held in a managed store");

    // Saved and merged, it is still held: merging assesses keys again from their locations.
    let saved = root.path().join("report.json");
    fs::write(&saved, &output.stdout).unwrap();
    let saved = saved.display().to_string();
    let merged = detector(
        &["report", "merge", &saved, &saved, "--format", "json"],
        &home,
        None,
    );
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let merged = json(&merged);
    assert_report_valid(
        &merged,
        "a merged report with a key held in a managed store",
    );
    assert_eq!(only_key(&merged)["held_in_store"], true);
    assert_eq!(merged["summary"]["held_in_store"], 1);
    assert_eq!(merged["summary"]["failing"], 0);

    // Even at the lowest bar, it fails nothing.
    let target = format!("dir:{}", home.display());
    let low = detector(
        &["scan", "--format", "json", "--fail-on", "low", &target],
        &home,
        Some(ORG_KEY),
    );
    assert_eq!(low.status.code(), Some(0), "{}", stderr(&low));

    // The human formats say so; SARIF, a list of findings, has none.
    let text = String::from_utf8(scan("text", &home, &home).stdout).unwrap();
    assert!(text.contains("held in a managed store"), "{text}");
    assert!(text.contains("managed-store"), "{text}");
    let markdown = String::from_utf8(scan("markdown", &home, &home).stdout).unwrap();
    assert!(markdown.contains("held in a managed store"), "{markdown}");
    let html = String::from_utf8(scan("html", &home, &home).stdout).unwrap();
    assert!(html.contains("held in a managed store"));
    let sarif: Value = serde_json::from_slice(&scan("sarif", &home, &home).stdout).unwrap();
    assert_eq!(
        sarif["runs"][0]["results"],
        serde_json::json!([]),
        "{sarif:#}"
    );
}

#[test]
fn the_same_key_in_an_mcp_config_is_still_exposed() {
    let root = tempfile::tempdir().unwrap();
    let secret = github_key(7102);
    let (home, _) = home_with_store(root.path(), &secret);
    let config = home.join(".cursor/mcp.json");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let text = serde_json::json!({"mcpServers": {"github": {
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": secret}
    }}});
    fs::write(&config, serde_json::to_string_pretty(&text).unwrap()).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();

    let output = scan("json", &home, &home);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let key = only_key(&report);
    assert!(key.get("held_in_store").is_none(), "{key:#}");
    let mut found = kinds(key);
    found.sort();
    assert_eq!(found, ["managed-store", "mcp-config"]);
    let violations = violations(key);
    assert!(
        violations.contains(&"plaintext-in-mcp-config"),
        "{violations:?}"
    );
    // The store is where the key is kept, not a second project using it.
    assert!(
        !violations.contains(&"shared-across-projects"),
        "{violations:?}"
    );
    assert_eq!(report["summary"]["held_in_store"], 0);
    assert_eq!(report["summary"]["failing"], 1);
}

#[test]
fn without_the_header_as_first_line_it_is_an_ordinary_file() {
    let root = tempfile::tempdir().unwrap();
    let secret = github_key(7103);
    let (home, store) = home_with_store(root.path(), &secret);
    let content = fs::read_to_string(&store).unwrap();
    let body = content.strip_prefix(ENV_FILE_HEADER).unwrap();
    for (name, text) in [
        ("no header", body.trim_start().to_string()),
        (
            "header on a later line",
            format!("# keys\n{ENV_FILE_HEADER}{body}"),
        ),
        ("header indented", format!(" {content}")),
    ] {
        fs::write(&store, &text).unwrap();
        let output = scan("json", &home, &home);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        let report = json(&output);
        let key = only_key(&report);
        assert!(key.get("held_in_store").is_none(), "{name}: {key:#}");
        assert_eq!(kinds(key), ["file"], "{name}");
        assert_eq!(report["summary"]["held_in_store"], 0, "{name}");
        assert_eq!(report["summary"]["failing"], 1, "{name}");
    }
}

#[test]
fn a_store_others_can_read_or_a_copy_of_it_is_exposed() {
    let root = tempfile::tempdir().unwrap();
    let secret = github_key(7104);
    let (home, store) = home_with_store(root.path(), &secret);

    // Readable by everyone: the header does not make it private.
    fs::set_permissions(&store, fs::Permissions::from_mode(0o644)).unwrap();
    let output = scan("json", &home, &home);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let key = only_key(&report);
    assert!(key.get("held_in_store").is_none(), "{key:#}");
    assert_eq!(kinds(key), ["managed-store"]);
    assert!(violations(key).contains(&"world-readable"), "{key:#}");

    // A backup copy of the store is a copy like any other.
    fs::set_permissions(&store, fs::Permissions::from_mode(0o600)).unwrap();
    let copy = store.with_file_name("keys.env.bak");
    fs::copy(&store, &copy).unwrap();
    let output = scan("json", &home, &home);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let key = only_key(&report);
    assert!(key.get("held_in_store").is_none(), "{key:#}");
    let mut found = kinds(key);
    found.sort();
    assert_eq!(found, ["file", "managed-store"]);
    assert!(violations(key).contains(&"in-backup"), "{key:#}");
}
