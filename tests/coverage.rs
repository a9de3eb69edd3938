//! Coverage accounting: every object a scan passes over is in the report with its path and
//! reason (`targets[].not_scanned`), an excluded directory once as itself, text output counts
//! them unless `--coverage`, and `--strict` turns any error into exit 2.
use std::{fs, os::unix::fs::symlink, path::Path};

use kit::{
    keys::{key, ALNUM},
    mkfifo,
    run::{json, stdout},
};
use serde_json::Value;

use crate::detector;

/// The one target's entries in `not_scanned`, as (path relative to `root`, reason, detail).
fn not_scanned(report: &Value, root: &Path) -> Vec<(String, String, String)> {
    let mut entries: Vec<(String, String, String)> = report["targets"][0]["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let path = e["path"].as_str().unwrap();
            let relative = Path::new(path)
                .strip_prefix(root)
                .unwrap_or(Path::new(path));
            (
                relative.display().to_string(),
                e["reason"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    entries.sort();
    entries
}

/// A tree with something of every kind a walk passes over, and one key it must still find.
fn tree(root: &Path, secret: &str) {
    fs::create_dir_all(root.join("node_modules/pkg/lib")).unwrap();
    for i in 0..50 {
        fs::write(root.join(format!("node_modules/pkg/lib/m{i}.js")), "x\n").unwrap();
    }
    fs::create_dir_all(root.join("vendor/deep")).unwrap();
    fs::write(root.join("vendor/deep/a.txt"), "a\n").unwrap();
    fs::write(root.join("vendor/keep.txt"), "k\n").unwrap();
    fs::write(root.join(".detectorignore"), "vendor/deep/\n").unwrap();
    fs::write(root.join("logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0binary").unwrap();
    fs::write(root.join("big.log"), "y".repeat(64 * 1024)).unwrap();
    fs::create_dir_all(root.join("real")).unwrap();
    symlink(root.join("real"), root.join("link")).unwrap();
    fs::write(root.join(".env"), format!("GITHUB_TOKEN={secret}\n")).unwrap();
}

#[test]
fn every_object_passed_over_is_listed_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    let secret = key("ghp_", ALNUM, 36, 9701);
    tree(&root, &secret);
    let target = format!("dir:{}", root.display());
    let args = [
        "scan",
        &target,
        "--exclude",
        "node_modules",
        "--max-file-size",
        "32K",
        "--format",
        "json",
    ];
    let output = detector(&args, tmp.path(), None);
    assert_eq!(output.status.code(), Some(1), "the key is still found");
    let report = json(&output);
    let entries = not_scanned(&report, &root);
    let expected = [
        ("big.log", "too-large"),
        ("link", "symlink-to-directory"),
        ("logo.png", "binary"),
        ("node_modules", "excluded"),
        ("vendor/deep", "excluded"),
    ];
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|(p, r, _)| (p.as_str(), r.as_str()))
        .collect();
    assert_eq!(got, expected, "{entries:?}");
    // What excluded each directory: the glob, or the file with its path.
    assert_eq!(entries[3].2, "--exclude node_modules");
    assert_eq!(
        entries[4].2,
        root.join(".detectorignore").display().to_string()
    );
    let skipped = &report["targets"][0]["skipped"];
    assert_eq!(skipped["excluded"], 2, "a directory counts once: {skipped}");
    assert_eq!(skipped["binary"], 1);
    // Passed over is not an error.
    assert_eq!(report["targets"][0]["errors"], Value::Array(vec![]));
}

#[test]
fn text_counts_what_was_passed_over_and_lists_it_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    let secret = key("ghp_", ALNUM, 36, 9702);
    tree(&root, &secret);
    let target = format!("dir:{}", root.display());
    let base = [
        "scan",
        target.as_str(),
        "--exclude",
        "node_modules",
        "--format",
        "text",
    ];
    let counted = stdout(&detector(&base, tmp.path(), None));
    assert!(
        counted.contains("skipped 1 binary, 2 excluded"),
        "{counted}"
    );
    assert!(!counted.contains("not scanned"), "{counted}");

    let mut args = base.to_vec();
    args.push("--coverage");
    let listed = stdout(&detector(&args, tmp.path(), None));
    let node_modules = root.join("node_modules");
    let line = format!(
        "not scanned {} excluded: --exclude node_modules",
        node_modules.display()
    );
    assert!(listed.contains(&line), "{line:?} in {listed}");
    assert!(
        listed.contains(&format!(
            "not scanned {} binary",
            root.join("logo.png").display()
        )),
        "{listed}"
    );
    assert_eq!(listed.matches("not scanned").count(), 4, "{listed}");
}

#[test]
fn strict_fails_a_scan_that_could_not_read_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("README"), "nothing here\n").unwrap();
    mkfifo(&root.join("pipe"));
    let target = format!("dir:{}", root.display());

    let lenient = detector(&["scan", &target, "--format", "json"], tmp.path(), None);
    assert_eq!(
        lenient.status.code(),
        Some(0),
        "an error alone does not fail"
    );
    let report = json(&lenient);
    let errors = report["targets"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]["path"].as_str().unwrap().ends_with("/pipe"));

    let strict = detector(
        &["scan", &target, "--format", "json", "--strict"],
        tmp.path(),
        None,
    );
    assert_eq!(strict.status.code(), Some(2), "--strict: any error fails");

    // Nothing wrong: --strict passes.
    fs::remove_file(root.join("pipe")).unwrap();
    let clean = detector(&["scan", &target, "--strict"], tmp.path(), None);
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn an_ignore_file_that_is_a_fifo_is_not_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("app");
    fs::create_dir_all(root.join("sub")).unwrap();
    let secret = key("ghp_", ALNUM, 36, 9703);
    fs::write(root.join("sub/.env"), format!("GITHUB_TOKEN={secret}\n")).unwrap();
    // Opening it would block the walk for ever (the kit's deadline would fail the test).
    mkfifo(&root.join("sub/.detectorignore"));
    let target = format!("dir:{}", root.display());
    let output = detector(&["scan", &target, "--format", "json"], tmp.path(), None);
    assert_eq!(output.status.code(), Some(1), "the key is found");
    let report = json(&output);
    let errors = report["targets"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0]["path"],
        root.join("sub/.detectorignore").display().to_string()
    );
}
