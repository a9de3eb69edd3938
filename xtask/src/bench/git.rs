//! `cargo xtask bench git`: a full-history scan of a large repository, ours beside Kingfisher
//! and gitleaks, in one run on the same repository.
//!
//! The repository is real code: the crate sources under `~/.cargo/registry/src`, committed
//! version after version (each round edits every file once more), with keys planted along the
//! way in `.env` files, MCP configs and source files, some of them rotated and some left on
//! an unmerged branch. It is built once with `git fast-import` into `target/bench-git/` and
//! reused. Each tool runs once, on a warm page cache; wall time and peak resident memory (the child's `ru_maxrss`
//! from `wait4`, which covers the processes it waited for) are measured, and recall is the
//! share of planted keys whose secret appears in the tool's report.
use std::{
    collections::BTreeSet,
    fs,
    io::BufWriter,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use kit::{git::FastImport, keys::KnownKeys};

use super::peers;

const DETECTOR: &str = "target/release/detector";
const CACHE: &str = "target/bench-git";
/// Bump when the way the repository is built changes, so a stale cache is rebuilt.
const LAYOUT_VERSION: u32 = 2;

pub fn run(min_commits: usize, min_bytes: u64) -> Result<()> {
    let cache = PathBuf::from(CACHE);
    let repo = cache.join("repo.git");
    let planted_file = cache.join(format!(
        "planted-v{LAYOUT_VERSION}-{min_commits}-{min_bytes}.txt"
    ));
    if !planted_file.exists() || !repo.exists() {
        build_repository(&repo, &planted_file, min_commits, min_bytes)?;
    }
    let planted: BTreeSet<String> = fs::read_to_string(&planted_file)?
        .lines()
        .map(str::to_string)
        .collect();
    let stats = repository_stats(&repo)?;
    eprintln!(
        "repository: {} commits, {} distinct blobs, {:.2} GiB of blob content, pack {:.0} MiB",
        stats.commits,
        stats.blobs,
        stats.blob_bytes as f64 / (1u64 << 30) as f64,
        stats.pack_bytes as f64 / (1u64 << 20) as f64
    );
    let tools = prepare(&cache, &repo)?;
    let repo_arg = repo.to_str().context("repository path is not UTF-8")?;

    let mut rows = Vec::new();
    let target = format!("git:{repo_arg}");
    let ours = measure(
        Command::new(DETECTOR)
            .args([
                "scan",
                &target,
                "--format",
                "json",
                "--show-secrets",
                "--output",
            ])
            .arg(&tools.ours_report)
            .env("DETECTOR_ORG_KEY", "bench-org"),
    )?;
    let (ours_wall, ours_rss) = (ours.wall_s, ours.max_rss_kib as f64);
    rows.push((
        "detector (ours)",
        ours,
        found_by_ours(&tools.ours_report, &planted)?,
    ));
    let kf = measure(
        Command::new(&tools.kingfisher)
            .args([
                "scan",
                repo_arg,
                "--git-history",
                "full",
                "--no-validate",
                "--no-update-check",
                "--format",
                "json",
                "--output",
            ])
            .arg(&tools.kingfisher_report),
    )?;
    rows.push((
        "Kingfisher 2.14 (`--no-validate`)",
        kf,
        found_in_text(&tools.kingfisher_report, &planted)?,
    ));
    let gl = measure(
        Command::new(&tools.gitleaks)
            .args([
                "git",
                repo_arg,
                "--no-banner",
                "--report-format",
                "json",
                "--report-path",
            ])
            .arg(&tools.gitleaks_report),
    )?;
    rows.push((
        "gitleaks 8.30",
        gl,
        found_in_text(&tools.gitleaks_report, &planted)?,
    ));

    println!(
        "Full-history scan of {} commits, {:.2} GiB of distinct blob content ({} distinct blobs), {} planted keys; {} cores.\n",
        stats.commits,
        stats.blob_bytes as f64 / (1u64 << 30) as f64,
        stats.blobs,
        planted.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| tool | wall s | peak RSS MiB | planted keys found / planted | wall vs ours | RSS vs ours |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, m, found) in &rows {
        println!(
            "| {name} | {:.1} | {:.0} | {found} / {} | {:.2}x | {:.2}x |",
            m.wall_s,
            m.max_rss_kib as f64 / 1024.0,
            planted.len(),
            m.wall_s / ours_wall,
            m.max_rss_kib as f64 / ours_rss
        );
    }
    note_failures(&rows);
    Ok(())
}

/// The peers, installed, and where each tool's report goes.
pub(super) struct Prepared {
    pub(super) gitleaks: PathBuf,
    pub(super) kingfisher: PathBuf,
    pub(super) ours_report: PathBuf,
    pub(super) kingfisher_report: PathBuf,
    pub(super) gitleaks_report: PathBuf,
}

/// Install the peers, read `input` once (the tools run one after the other, and each finds it
/// in the page cache) and make `cache/out` for the reports.
pub(super) fn prepare(cache: &Path, input: &Path) -> Result<Prepared> {
    let (gitleaks, kingfisher) = (peers::gitleaks()?, peers::kingfisher()?);
    super::scan::warm_page_cache(input)?;
    let out = cache.join("out");
    fs::create_dir_all(&out)?;
    Ok(Prepared {
        gitleaks,
        kingfisher,
        ours_report: out.join("detector.json"),
        kingfisher_report: out.join("kingfisher.json"),
        gitleaks_report: out.join("gitleaks.json"),
    })
}

/// A line on standard error for each tool of `rows` whose run failed (killed by a signal, or
/// ours exiting 2).
pub(super) fn note_failures(rows: &[(impl std::fmt::Display, Measured, usize)]) {
    for (name, m, _) in rows {
        if !m.success {
            eprintln!("note: {name} exited with {}", m.status);
        }
    }
}

pub(super) struct Measured {
    pub(super) wall_s: f64,
    pub(super) max_rss_kib: i64,
    pub(super) success: bool,
    pub(super) status: String,
}

/// Run `cmd` to the end with its output discarded; wall time and the child's peak RSS.
pub(super) fn measure(cmd: &mut Command) -> Result<Measured> {
    eprintln!("running {cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let waited = super::child::wait(cmd, None)?;
    let code = waited.status.code();
    Ok(Measured {
        wall_s: waited.wall.as_secs_f64(),
        max_rss_kib: waited.max_rss_kib,
        // Scanners exit non-zero when they find keys; only a crash or a usage error is a failure.
        success: code.is_some_and(|c| c != 2 || cmd.get_program() != DETECTOR),
        status: code.map_or_else(|| waited.status.to_string(), |c| format!("exit code {c}")),
    })
}

pub(super) fn found_by_ours(report: &Path, planted: &BTreeSet<String>) -> Result<usize> {
    let value: serde_json::Value = serde_json::from_slice(&fs::read(report)?)
        .with_context(|| format!("{} is not JSON", report.display()))?;
    let secrets: BTreeSet<&str> = value["keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(|k| k["secret"].as_str()).collect())
        .unwrap_or_default();
    Ok(planted
        .iter()
        .filter(|p| secrets.contains(p.as_str()))
        .count())
}

/// Planted keys whose secret appears anywhere in a peer's report.
pub(super) fn found_in_text(report: &Path, planted: &BTreeSet<String>) -> Result<usize> {
    let text = fs::read_to_string(report).unwrap_or_default();
    Ok(planted.iter().filter(|p| text.contains(p.as_str())).count())
}

struct RepoStats {
    commits: u64,
    blobs: u64,
    blob_bytes: u64,
    pack_bytes: u64,
}

fn repository_stats(repo: &Path) -> Result<RepoStats> {
    let git = |args: &[&str]| -> Result<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()?;
        if !output.status.success() {
            bail!(
                "git {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let commits = git(&["rev-list", "--all", "--count"])?.trim().parse()?;
    let listing = git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objecttype) %(objectsize)",
    ])?;
    let (mut blobs, mut blob_bytes) = (0, 0);
    for line in listing.lines() {
        if let Some(size) = line.strip_prefix("blob ") {
            blobs += 1;
            blob_bytes += size.parse::<u64>()?;
        }
    }
    let pack_bytes = fs::read_dir(repo.join("objects/pack"))?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    Ok(RepoStats {
        commits,
        blobs,
        blob_bytes,
        pack_bytes,
    })
}

/// Text files of the local crate registry, as (path in the repository, bytes), sorted.
fn registry_sources() -> Result<Vec<(String, Vec<u8>)>> {
    let home = std::env::var("HOME").context("HOME is not set")?;
    let root = Path::new(&home).join(".cargo/registry/src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && entry.metadata()?.len() <= 512 * 1024 {
                let bytes = fs::read(&path)?;
                if bytes.is_empty() || bytes[..bytes.len().min(8192)].contains(&0) {
                    continue;
                }
                // `index.crates.io-…/serde-1.0.200/src/lib.rs` → `serde-1.0.200/src/lib.rs`
                let rel = path.strip_prefix(&root)?;
                let rel: PathBuf = rel.components().skip(1).collect();
                files.push((rel.to_string_lossy().into_owned(), bytes));
            }
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    if files.is_empty() {
        bail!(
            "no crate sources under {} (run a cargo build first)",
            root.display()
        );
    }
    Ok(files)
}

/// Commit the registry sources round after round (each round edits every file once more)
/// until there are `min_commits` commits and `min_bytes` of distinct blob content, planting
/// keys on the way; write the planted secrets, one a line, to `planted_file`.
fn build_repository(
    repo: &Path,
    planted_file: &Path,
    min_commits: usize,
    min_bytes: u64,
) -> Result<()> {
    let files = registry_sources()?;
    let round_bytes: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let rounds = min_bytes.div_ceil(round_bytes).max(1) as usize;
    let versions = rounds * files.len();
    let per_commit = (versions / min_commits).max(1);
    eprintln!(
        "building the benchmark repository: {} files ({:.0} MiB) x {rounds} rounds, {per_commit} files a commit",
        files.len(),
        round_bytes as f64 / (1u64 << 20) as f64
    );
    if repo.exists() {
        fs::remove_dir_all(repo)?;
    }
    fs::create_dir_all(repo)?;
    crate::run(
        Command::new("git")
            .args(["init", "--quiet", "--bare", "-b", "main"])
            .arg(repo),
    )?;
    let mut import = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot start git fast-import")?;
    let stdin = import.stdin.take().context("fast-import stdin")?;
    let mut out = FastImport::new(BufWriter::with_capacity(1 << 20, stdin));
    // Fake keys made at run time: no key-shaped text in this file.
    let mut keys = KnownKeys::new(1);
    let mut planted = Vec::new();
    let base_time: i64 = 1_600_000_000;
    let time = |commit: usize| base_time + commit as i64 * 600;
    let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pending_side = None;
    let plant_every = (versions / per_commit / 60).max(1);

    for round in 0..rounds {
        for (i, (path, bytes)) in files.iter().enumerate() {
            batch.push((path.clone(), edited(bytes, round, i)));
            if batch.len() < per_commit {
                continue;
            }
            let n = out.commits();
            if n % plant_every == plant_every / 2 {
                // A key in a config, rotated in place (by a new key or a reference) later.
                let (name, key) = keys.next_key();
                planted.push(key.clone());
                let config = format!("services/svc{}/.env", n % 7);
                batch.push((
                    config,
                    format!("# service settings\n{name}={key}\nLOG_LEVEL=info\n").into_bytes(),
                ));
                let (mcp_name, mcp_key) = keys.next_key();
                planted.push(mcp_key.clone());
                batch.push((
                    ".mcp.json".into(),
                    format!(
                        "{{\n  \"mcpServers\": {{\n    \"tools\": {{\n      \"command\": \"npx\",\n      \"env\": {{ \"{mcp_name}\": \"{mcp_key}\" }}\n    }}\n  }}\n}}\n"
                    )
                    .into_bytes(),
                ));
                if n.is_multiple_of(3) {
                    // One in the middle of real code.
                    let (name, key) = keys.next_key();
                    planted.push(key.clone());
                    let mut code = edited(bytes, round + 1000, i);
                    code.extend_from_slice(
                        format!("\nconst {name}: &str = \"{key}\";\n").as_bytes(),
                    );
                    batch.push((path.clone(), code));
                }
            } else if n.is_multiple_of(plant_every) && n > 0 {
                // The config's key replaced by a reference.
                batch.push((
                    ".mcp.json".into(),
                    b"{\n  \"mcpServers\": {\n    \"tools\": {\n      \"command\": \"npx\",\n      \"env\": { \"TOKEN\": \"${TOKEN}\" }\n    }\n  }\n}\n".to_vec(),
                ));
                if pending_side.is_none() {
                    let (name, key) = keys.next_key();
                    planted.push(key.clone());
                    pending_side = Some(format!("{name}={key}\n"));
                }
            }
            out.commit("main", time(n), &batch)?;
            batch.clear();
            if let Some(side) = pending_side.take() {
                // A key only on an unmerged branch, forked from the commit just made.
                let commit = out.commits();
                let branch = format!("feature/{commit}");
                out.commit(
                    &branch,
                    time(commit),
                    &[("feature.env".into(), side.into_bytes())],
                )?;
            }
        }
    }
    if !batch.is_empty() {
        out.commit("main", time(out.commits()), &batch)?;
    }
    let commit = out.commits();
    drop(out.finish()?);
    let status = import.wait()?;
    if !status.success() {
        bail!("git fast-import failed: {status}");
    }
    crate::run(Command::new("git").arg("-C").arg(repo).args([
        "symbolic-ref",
        "HEAD",
        "refs/heads/main",
    ]))?;
    // What a gc'd server repository looks like: one pack, deltas found by git.
    crate::run(Command::new("git").arg("-C").arg(repo).args([
        "repack",
        "-a",
        "-d",
        "-q",
        "--window=10",
        "--depth=50",
    ]))?;
    planted.sort();
    planted.dedup();
    let mut text = planted.join("\n");
    text.push('\n');
    fs::write(planted_file, text)?;
    eprintln!("built {commit} commits with {} planted keys", planted.len());
    Ok(())
}

/// Version `round` of a file: the original with one line added where an edit would go.
fn edited(bytes: &[u8], round: usize, index: usize) -> Vec<u8> {
    if round == 0 {
        return bytes.to_vec();
    }
    let lines = bytes.iter().filter(|&&b| b == b'\n').count().max(1);
    let target = (round * 7919 + index * 104_729) % lines;
    let at = bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(target)
        .map_or(bytes.len(), |(i, _)| i + 1);
    let mut out = Vec::with_capacity(bytes.len() + 48);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(format!("// revision {round}: reviewed line {target}\n").as_bytes());
    out.extend_from_slice(&bytes[at..]);
    out
}
