//! `cargo xtask fuzz [--seconds N] [TARGET…]`: the fuzz targets of `fuzz/` (README "Security
//! testing"), built with nightly and cargo-fuzz, each seeded from the test kit's builders and
//! the fixtures, run for a bounded time with bounded memory, one after the other.
//!
//! Before fuzzing, every saved reproducer under `fuzz/regressions/<target>/` is run once: a
//! finding that comes back fails at once, whatever the fuzzer's luck this time.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{command_ok, run};

mod seeds;

/// Every target, in the order they run; each is `fuzz/fuzz_targets/<name>.rs`.
pub const TARGETS: &[(&str, &str)] = &[
    (
        "mcp_config",
        "MCP client configs (JSON, JSONC, TOML, YAML) of every catalogue file",
    ),
    (
        "mcp_fields",
        "a server definition's fields and their classification; references in text",
    ),
    (
        "secret_file",
        "credential files: .env, shell profiles, .netrc, .npmrc, AWS, Docker, kube, gcloud",
    ),
    (
        "archive",
        "archive sniffing and members: tar, gzip, xz, zstd, bzip2, zip, nested",
    ),
    (
        "git_repo",
        "a repository of (damaged) loose objects: object, commit and tree decoding, history",
    ),
    ("git_commit", "one commit object's header"),
    (
        "image_archive",
        "a docker save / OCI archive, whole: manifests, indexes, configs, layers",
    ),
    (
        "image_layout",
        "manifest.json / index.json and the blobs they name, as JSON",
    ),
    (
        "report",
        "a saved JSON report: read, merged, rendered in every format, baseline",
    ),
    (
        "agent_log",
        "the agent's event log files: hash chain verification",
    ),
    ("rules", "a rule file: load, compile, check its examples"),
    (
        "detect",
        "any bytes through the built-in rules (the engine every source feeds)",
    ),
];

/// Memory one run may take before libFuzzer calls it an out-of-memory finding.
const RSS_LIMIT_MB: u32 = 2048;
/// One input may take this long before libFuzzer calls it a hang.
const INPUT_TIMEOUT_S: u32 = 10;

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Write the seed corpora (`fuzz/corpus/<target>/seed-*`) and stop.
    #[arg(long)]
    pub seed_only: bool,
    /// Targets to run (default: every one).
    pub targets: Vec<String>,
}

/// What one target's run gave.
struct Outcome {
    target: &'static str,
    runs: Option<u64>,
    coverage: Option<u64>,
    corpus: usize,
    peak_rss_mb: Option<u64>,
    seconds: f64,
    finding: Option<String>,
}

pub fn fuzz(args: &FuzzArgs) -> Result<()> {
    let root = repo_root()?;
    let fuzz_dir = root.join("fuzz");
    let targets = chosen(&args.targets)?;
    for target in &targets {
        seeds::write(&root, target).with_context(|| format!("seeds of {target}"))?;
    }
    eprintln!("xtask fuzz: seed corpora written under fuzz/corpus/");
    if args.seed_only {
        return Ok(());
    }
    prerequisites()?;

    let started = Instant::now();
    eprintln!("xtask fuzz: building the targets (nightly, cargo fuzz build)");
    // The fuzz crate is a workspace of its own, built into `fuzz/target`, never into a target
    // directory the environment names for the main workspace.
    run(Command::new("nice")
        .args(["cargo", "+nightly", "fuzz", "build", "--debug-assertions"])
        .env_remove("CARGO_TARGET_DIR")
        .current_dir(&root))?;
    let build = started.elapsed().as_secs_f64();

    let bin = fuzz_dir.join("target/x86_64-unknown-linux-gnu/release");
    let mut failures = Vec::new();
    for target in &targets {
        regressions(&root, &bin, target, &mut failures)?;
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        let outcome = run_target(&root, &bin, target, args.seconds)?;
        print_outcome(&outcome);
        outcomes.push(outcome);
    }

    println!(
        "\nxtask fuzz: build {build:.0} s, runs {:.0} s ({} s per target)",
        started.elapsed().as_secs_f64() - build,
        args.seconds
    );
    println!(
        "{:<14} {:>10} {:>7} {:>7} {:>8}  result",
        "target", "runs", "cov", "corpus", "rss MB"
    );
    for o in &outcomes {
        let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        println!(
            "{:<14} {:>10} {:>7} {:>7} {:>8}  {}",
            o.target,
            show(o.runs),
            show(o.coverage),
            o.corpus,
            show(o.peak_rss_mb),
            o.finding.as_deref().unwrap_or("ok")
        );
        if let Some(finding) = &o.finding {
            failures.push(format!("{}: {finding}", o.target));
        }
    }
    if !failures.is_empty() {
        bail!(
            "fuzzing found {} problem(s):\n  {}\nreproduce with: fuzz/target/x86_64-unknown-linux-gnu/release/TARGET FILE\n\
             minimise with: cargo +nightly fuzz tmin TARGET FILE; then save it in fuzz/regressions/TARGET/",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// nightly and cargo-fuzz, which `cargo xtask setup` installs.
pub fn prerequisites() -> Result<()> {
    if !command_ok(Command::new("cargo").args(["+nightly", "--version"])) {
        bail!("the nightly toolchain is missing: run `cargo xtask setup`");
    }
    if !command_ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        bail!("cargo-fuzz is missing: run `cargo xtask setup` (or `cargo install cargo-fuzz --locked`)");
    }
    Ok(())
}

fn repo_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

fn chosen(names: &[String]) -> Result<Vec<&'static str>> {
    if names.is_empty() {
        return Ok(TARGETS.iter().map(|(name, _)| *name).collect());
    }
    names
        .iter()
        .map(|name| {
            TARGETS
                .iter()
                .map(|(t, _)| *t)
                .find(|t| t == name)
                .with_context(|| {
                    let all: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                    format!("no fuzz target `{name}` (targets: {})", all.join(", "))
                })
        })
        .collect()
}

/// Run every saved reproducer of `target` once: those in `fuzz/regressions/<target>/` must
/// pass; those in its `open/` are findings not fixed yet (in code this branch does not own),
/// run to say whether they still fail, and never failing the run themselves.
fn regressions(root: &Path, bin: &Path, target: &str, failures: &mut Vec<String>) -> Result<()> {
    let dir = root.join("fuzz/regressions").join(target);
    let fixed = reproducers(&dir);
    if !fixed.is_empty() {
        if reproduce(root, bin, target, &fixed, true)? {
            eprintln!(
                "xtask fuzz: {target}: {} saved reproducer(s) pass",
                fixed.len()
            );
        } else {
            failures.push(format!(
                "{target}: a saved reproducer under {} fails again",
                dir.display()
            ));
        }
    }
    for open in reproducers(&dir.join("open")) {
        let name = open
            .strip_prefix(root)
            .unwrap_or(&open)
            .display()
            .to_string();
        if reproduce(root, bin, target, std::slice::from_ref(&open), false)? {
            eprintln!(
                "xtask fuzz: {target}: {name} passes now: move it up to {}",
                dir.display()
            );
        } else {
            eprintln!("xtask fuzz: {target}: {name}: still open (see its README.md)");
        }
    }
    Ok(())
}

fn reproducers(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    files
}

/// Whether `target` runs every one of `files` without a finding (`show`: print what it said
/// when not).
fn reproduce(root: &Path, bin: &Path, target: &str, files: &[PathBuf], show: bool) -> Result<bool> {
    let output = Command::new(bin.join(target))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .args(files)
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run the {target} target"))?;
    if !output.status.success() && show {
        std::io::stderr().write_all(&output.stderr)?;
    }
    Ok(output.status.success())
}

fn run_target(root: &Path, bin: &Path, target: &'static str, seconds: u64) -> Result<Outcome> {
    let corpus = root.join("fuzz/corpus").join(target);
    let artifacts = root.join("fuzz/artifacts").join(target);
    fs::create_dir_all(&artifacts)?;
    let log_path = root.join("fuzz/artifacts").join(format!("{target}.log"));
    let mut log = fs::File::create(&log_path)?;
    eprintln!(
        "xtask fuzz: {target}: {seconds} s (log: {})",
        log_path.display()
    );
    let started = Instant::now();
    let mut child = Command::new("nice")
        .arg(bin.join(target))
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_S}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg("-max_len=1048576")
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run the {target} target (built?)"))?;
    let mut outcome = Outcome {
        target,
        runs: None,
        coverage: None,
        corpus: 0,
        peak_rss_mb: None,
        seconds: 0.0,
        finding: None,
    };
    let mut reproducer = None;
    let mut kind = None;
    let stderr = child.stderr.take().context("no stderr")?;
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        writeln!(log, "{line}")?;
        if let Some(cov) = field(&line, "cov: ") {
            outcome.coverage = Some(cov);
        }
        if let Some(n) = field(&line, "stat::number_of_executed_units: ") {
            outcome.runs = Some(n);
        }
        if let Some(n) = field(&line, "stat::peak_rss_mb: ") {
            outcome.peak_rss_mb = Some(n);
        }
        if let Some(at) = line.find("Test unit written to ") {
            reproducer = Some(
                line[at + "Test unit written to ".len()..]
                    .trim()
                    .to_string(),
            );
        }
        for what in [
            "ERROR: libFuzzer: deadly signal",
            "ERROR: libFuzzer: timeout",
            "ERROR: libFuzzer: out-of-memory",
            "ERROR: libFuzzer: fuzz target exited",
            "ERROR: AddressSanitizer",
            "panicked at",
            "stack overflow",
        ] {
            if line.contains(what) && kind.is_none() {
                kind = Some(line.trim().to_string());
            }
        }
    }
    let status = child.wait()?;
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome.corpus = fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
    if !status.success() {
        outcome.finding = Some(format!(
            "{} (reproducer: {}; log: {})",
            kind.unwrap_or_else(|| format!("exit {status}")),
            reproducer.unwrap_or_else(|| "none written".into()),
            log_path.display()
        ));
    }
    Ok(outcome)
}

/// The number after `name` in a libFuzzer status line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(name)? + name.len();
    let digits: String = line[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

fn print_outcome(o: &Outcome) {
    eprintln!(
        "xtask fuzz: {}: {} runs in {:.0} s, coverage {}, {}",
        o.target,
        o.runs.map_or("?".into(), |r| r.to_string()),
        o.seconds,
        o.coverage.map_or("?".into(), |c| c.to_string()),
        o.finding.as_deref().unwrap_or("ok")
    );
}

/// The short fuzz run of `cargo xtask test` (what CI runs): every target, default seconds.
/// A missing prerequisite fails under `CI=true` and is said out loud elsewhere.
pub fn in_tests() -> Result<()> {
    if let Err(missing) = prerequisites() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(missing.context("CI=true: the fuzz run cannot be skipped"));
        }
        eprintln!("xtask test: SKIPPED the fuzz run: {missing:#}");
        return Ok(());
    }
    fuzz(&FuzzArgs {
        seconds: std::env::var("DETECTOR_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
        seed_only: false,
        targets: Vec::new(),
    })
}
