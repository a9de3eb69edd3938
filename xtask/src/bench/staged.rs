//! `cargo xtask bench staged`: how long the pre-commit check takes, `detector scan git:.
//! --staged` on a typical staged change (three files edited, one added with a key) in work
//! trees of 1,000, 10,000 and 100,000 committed files; beside it `git diff --cached` (the
//! floor: git itself listing the same change) and gitleaks' own pre-commit mode
//! (`gitleaks git --pre-commit --staged`), on the same work tree in the same run; and first,
//! ours on one 6-byte file: what every run costs before it reads anything (the rules
//! compiled), the floor under our rows.
//!
//! The work trees are built once under `target/bench-staged/` (text files of generated
//! source-like lines, committed), then the change is staged afresh. Each tool runs 10 times;
//! the table shows the median and the slowest wall time, and peak RSS.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use kit::keys::{key, ALNUM};

use super::{child, peers, workspace_root};

const SIZES: &[usize] = &[1_000, 10_000, 100_000];
const RUNS: usize = 10;

pub fn run() -> Result<()> {
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let detector = target_dir.join("release/detector");
    if !detector.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --release -p detector)",
            detector.display()
        );
    }
    let gitleaks = peers::gitleaks()?;
    let cache = root.join("target/bench-staged");
    println!(
        "Pre-commit check of a staged change (3 files edited, 1 added holding a key); median and slowest of {RUNS} runs; {} cores.\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| work tree | tool | median ms | slowest ms | peak RSS MiB | expected exit (1: key found) |");
    println!("|---|---|---:|---:|---:|---|");
    // What any run of ours costs before it reads a byte: the rules compiled, one tiny file.
    fs::create_dir_all(&cache)?;
    let tiny = cache.join("tiny.txt");
    fs::write(&tiny, "hello\n")?;
    let start = measure(
        Command::new(&detector)
            .args([
                "scan",
                &format!("file:{}", tiny.display()),
                "--format",
                "json",
            ])
            .env("DETECTOR_ORG_KEY", "bench-org")
            .env("HOME", &cache),
        &|code| code == 0,
    )?;
    row("one 6-byte file", "detector (ours): start-up floor", &start);
    for &files in SIZES {
        let tree = work_tree(&cache, files)?;
        stage_change(&tree)?;
        let label = format!("{files} files");
        let target = format!("git:{}", tree.display());
        let ours = measure(
            Command::new(&detector)
                .args(["scan", &target, "--staged", "--format", "json"])
                .env("DETECTOR_ORG_KEY", "bench-org")
                .env("HOME", &cache),
            &|code| code == 1,
        )?;
        row(&label, "detector (ours)", &ours);
        let git = measure(
            Command::new("git")
                .args(["diff", "--cached", "--quiet"])
                .current_dir(&tree),
            &|code| code == 1,
        )?;
        row(&label, "`git diff --cached` (floor)", &git);
        let gl = measure(
            Command::new(&gitleaks)
                .args(["git", "--pre-commit", "--staged", "--no-banner"])
                .arg(&tree),
            &|code| code == 1,
        )?;
        row(&label, &peers::version(&gitleaks), &gl);
    }
    Ok(())
}

struct Timed {
    median: Duration,
    slowest: Duration,
    max_rss_kib: i64,
    /// Every run exited as expected (1 when the staged key is found).
    found: bool,
}

fn measure(cmd: &mut Command, found: &dyn Fn(i32) -> bool) -> Result<Timed> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut walls = Vec::new();
    let mut max_rss_kib = 0;
    let mut all_found = true;
    // One warm-up run: the page cache, not the disk, is what a hook meets.
    child::wait(cmd, None)?;
    for _ in 0..RUNS {
        let waited = child::wait(cmd, None)?;
        walls.push(waited.wall);
        max_rss_kib = max_rss_kib.max(waited.max_rss_kib);
        all_found &= waited.status.code().is_some_and(found);
    }
    walls.sort();
    Ok(Timed {
        median: walls[walls.len() / 2],
        slowest: *walls.last().expect("runs"),
        max_rss_kib,
        found: all_found,
    })
}

fn row(label: &str, tool: &str, t: &Timed) {
    println!(
        "| {label} | {tool} | {:.1} | {:.1} | {:.0} | {} |",
        t.median.as_secs_f64() * 1e3,
        t.slowest.as_secs_f64() * 1e3,
        t.max_rss_kib as f64 / 1024.0,
        if t.found { "yes" } else { "no" }
    );
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = kit::git::git_command(dir, dir, "2024-01-01")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("git {args:?}"))?;
    if !status.success() {
        bail!("git {args:?} failed in {}", dir.display());
    }
    Ok(())
}

/// A work tree of `files` committed files of generated source-like text (built once).
fn work_tree(cache: &Path, files: usize) -> Result<PathBuf> {
    let tree = cache.join(format!("tree-{files}"));
    if tree.join(".git/bench-complete").is_file() {
        return Ok(tree);
    }
    eprintln!(
        "bench: building a work tree of {files} files in {}",
        tree.display()
    );
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    fs::create_dir_all(&tree)?;
    git(&tree, &["init", "--quiet", "-b", "main"])?;
    for i in 0..files {
        let path = tree.join(format!("src/m{:03}/f{i}.rs", i % 500));
        fs::create_dir_all(path.parent().expect("a parent"))?;
        fs::write(&path, source_text(i))?;
    }
    git(&tree, &["add", "-A"])?;
    git(&tree, &["commit", "--quiet", "-m", "base"])?;
    fs::write(tree.join(".git/bench-complete"), "")?;
    Ok(tree)
}

fn source_text(seed: usize) -> String {
    (0..60)
        .map(|line| {
            format!(
                "    let value_{line} = compute({seed}, {line}); // step {line} of file {seed}\n"
            )
        })
        .collect()
}

/// Back to the committed tree, then three files edited and one added with a key, staged.
fn stage_change(tree: &Path) -> Result<()> {
    git(tree, &["reset", "--quiet", "--hard"])?;
    git(tree, &["clean", "-fdq"])?;
    for i in [1usize, 2, 3] {
        let path = tree.join(format!("src/m{:03}/f{i}.rs", i % 500));
        let mut text = fs::read_to_string(&path)?;
        text.push_str("    // an edit\n");
        fs::write(&path, text)?;
    }
    let leaked = key("ghp_", ALNUM, 36, 7);
    fs::write(tree.join(".env"), format!("GITHUB_TOKEN={leaked}\n"))?;
    git(tree, &["add", "-A"])
}
