//! `cargo xtask bench precision [PATH…]`: what each tool reports on real text that holds no
//! planted key (by default the cargo registry's sources and `/usr/share/doc`), in the same
//! run: every report of ours by rule, file and line (redacted), the peers' counts by rule. A
//! report on such a tree is a false positive unless the file really holds a key (a test
//! vector, a documentation example); the README explains each of ours.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{peers, workspace_root};

/// The trees scanned when no path is given.
fn default_trees() -> Vec<PathBuf> {
    let mut trees = Vec::new();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        trees.push(home.join("registry/src"));
    }
    trees.push(PathBuf::from("/usr/share/doc"));
    trees
}

/// One reported finding: rule, file, line and a redacted preview of the secret.
struct Report {
    rule: String,
    path: String,
    line: u64,
    preview: String,
}

pub fn run(paths: Vec<PathBuf>) -> Result<()> {
    let root = workspace_root();
    let detector = root.join("target/release/detector");
    if !detector.is_file() {
        bail!(
            "{} is missing: `cargo xtask bench precision` builds it first",
            detector.display()
        );
    }
    let trees = if paths.is_empty() {
        default_trees()
    } else {
        paths
    };
    let trees: Vec<PathBuf> = trees.into_iter().filter(|t| t.is_dir()).collect();
    if trees.is_empty() {
        bail!("none of the trees to scan exists");
    }
    let gitleaks = peers::gitleaks()?;
    let kingfisher = peers::kingfisher()?;
    let work = root.join("target/bench/precision");
    fs::create_dir_all(&work)?;

    let mut ours = Vec::new();
    let mut theirs: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for tree in &trees {
        eprintln!("bench: precision on {}", tree.display());
        let out = work.join("detector.json");
        let mut cmd = Command::new(&detector);
        cmd.arg("scan")
            .arg(format!("dir:{}", tree.display()))
            .args(["--format", "json", "--output"])
            .arg(&out)
            .env("DETECTOR_ORG_KEY", "bench-precision-org-key");
        run_tool(&mut cmd, &work.join("detector.log"))?;
        ours.extend(detector_reports(&out)?);

        let out = work.join("gitleaks.json");
        let mut cmd = Command::new(&gitleaks);
        cmd.arg("dir")
            .arg(tree)
            .args(["--report-format", "json", "--no-banner", "--exit-code", "0"])
            .arg("--report-path")
            .arg(&out);
        run_tool(&mut cmd, &work.join("gitleaks.log"))?;
        let label = peers::version(&gitleaks);
        for finding in json_array(&read_json(&out)?)? {
            let rule = finding["RuleID"].as_str().unwrap_or("?").to_string();
            *theirs
                .entry(label.clone())
                .or_default()
                .entry(rule)
                .or_default() += 1;
        }

        let out = work.join("kingfisher.json");
        let mut cmd = Command::new(&kingfisher);
        cmd.arg("scan")
            .arg(tree)
            .args([
                "--no-validate",
                "--no-update-check",
                "--quiet",
                "--format",
                "json",
            ])
            .arg("--output")
            .arg(&out);
        run_tool(&mut cmd, &work.join("kingfisher.log"))?;
        let label = peers::version(&kingfisher);
        let report = read_json(&out)?;
        for finding in json_array(&report["findings"])? {
            let rule = finding["rule"]["id"].as_str().unwrap_or("?").to_string();
            *theirs
                .entry(label.clone())
                .or_default()
                .entry(rule)
                .or_default() += 1;
        }
    }

    let names: Vec<String> = trees.iter().map(|t| t.display().to_string()).collect();
    println!("Trees: {} (no planted keys)\n", names.join(", "));
    println!("| tool | reports |");
    println!("|---|---:|");
    println!("| detector (ours) | {} |", ours.len());
    for (tool, rules) in &theirs {
        println!("| {tool} | {} |", rules.values().sum::<usize>());
    }
    println!("\nOurs, each report:\n");
    println!("| rule | file | line | preview |");
    println!("|---|---|---:|---|");
    for r in &ours {
        println!("| {} | {} | {} | `{}` |", r.rule, r.path, r.line, r.preview);
    }
    for (tool, rules) in &theirs {
        println!("\n{tool}, by rule:\n");
        println!("| rule | reports |");
        println!("|---|---:|");
        let mut rules: Vec<(&String, &usize)> = rules.iter().collect();
        rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (rule, n) in rules {
            println!("| {rule} | {n} |");
        }
    }
    println!("\n(`cargo xtask bench precision {}`)", names.join(" "));
    Ok(())
}

fn run_tool(cmd: &mut Command, log: &Path) -> Result<()> {
    let log_file = fs::File::create(log)?;
    cmd.stdout(log_file.try_clone()?).stderr(log_file);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    // Ours exits 1, Kingfisher 200, when they report anything.
    if !matches!(status.code(), Some(0 | 1 | 200 | 205)) {
        bail!("{cmd:?} failed ({status}); see {}", log.display());
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("no {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn json_array(value: &Value) -> Result<&Vec<Value>> {
    // An empty report may be `null` for some tools.
    static EMPTY: Vec<Value> = Vec::new();
    match value {
        Value::Null => Ok(&EMPTY),
        other => other.as_array().context("a report that is not a list"),
    }
}

/// Our report: one entry per location of each key.
fn detector_reports(out: &Path) -> Result<Vec<Report>> {
    let report = read_json(out)?;
    let mut found = Vec::new();
    for key in json_array(&report["keys"])? {
        for location in json_array(&key["locations"])? {
            found.push(Report {
                rule: key["rule"].as_str().unwrap_or("?").to_string(),
                path: location["path"].as_str().unwrap_or("?").to_string(),
                line: location["line"].as_u64().unwrap_or(0),
                preview: key["redacted"].as_str().unwrap_or("").to_string(),
            });
        }
    }
    Ok(found)
}
