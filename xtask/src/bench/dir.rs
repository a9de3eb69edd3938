//! `cargo xtask bench dir`: a directory scan of a large home-like tree with archives, ours
//! beside gitleaks (`dir`, archives opened to the same depth) and Kingfisher (archives
//! extracted by default), in one run on the same tree.
//!
//! The tree is real text: the crate sources under `~/.cargo/registry/src` as a developer's
//! code, and `/usr/share/doc` packed into backups (a tar.gz, a zip and a tar.zst, which hold
//! Debian's own `.gz` changelogs: archives inside archives). Keys are planted sparsely where
//! they leak in real homes: shell profiles, `.env` files, credential files, an MCP config,
//! source files, and members of every backup. It is built once into `target/bench-dir/` and
//! reused. Each tool runs once, on a warm page cache; wall time and peak resident memory (the child's `ru_maxrss`
//! from `wait4`) are measured. MB/s is the tree's bytes on disk (archives as stored) over wall
//! time; recall is the share of planted keys whose secret appears in the tool's report.
use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{BufWriter, Read, Write},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use kit::keys::KnownKeys;

use super::{
    git::{found_by_ours, found_in_text, measure, note_failures, prepare},
    peers::version,
};

const DETECTOR: &str = "target/release/detector";
const CACHE: &str = "target/bench-dir";
/// Bump when the way the tree is built changes, so a stale cache is rebuilt.
const LAYOUT_VERSION: u32 = 2;
/// One source file in this many gets a key appended.
const PLANT_EVERY: usize = 400;

pub fn run() -> Result<()> {
    let cache = PathBuf::from(CACHE);
    let tree = cache.join("tree");
    let planted_file = cache.join(format!("planted-v{LAYOUT_VERSION}.txt"));
    if !planted_file.exists() || !tree.exists() {
        build_tree(&tree, &planted_file)?;
    }
    let planted: BTreeSet<String> = fs::read_to_string(&planted_file)?
        .lines()
        .map(str::to_string)
        .collect();
    let stats = tree_stats(&tree)?;
    eprintln!(
        "tree: {} files ({} archives), {:.0} MiB on disk",
        stats.files,
        stats.archives,
        stats.bytes as f64 / (1u64 << 20) as f64
    );
    let tools = prepare(&cache, &tree)?;
    let tree_arg = tree.to_str().context("tree path is not UTF-8")?;

    let mut rows = Vec::new();
    let ours = measure(
        Command::new(DETECTOR)
            .args(["scan", &format!("dir:{tree_arg}"), "--format", "json"])
            .args(["--show-secrets", "--output"])
            .arg(&tools.ours_report)
            .env("DETECTOR_ORG_KEY", "bench-org"),
    )?;
    let ours_wall = ours.wall_s;
    let ours_rss = ours.max_rss_kib as f64;
    rows.push((
        "detector (ours), `scan dir:`".to_string(),
        ours,
        found_by_ours(&tools.ours_report, &planted)?,
    ));
    let kf = measure(
        Command::new(&tools.kingfisher)
            .args(["scan", tree_arg, "--no-validate", "--no-update-check"])
            .args(["--format", "json", "--output"])
            .arg(&tools.kingfisher_report),
    )?;
    rows.push((
        format!("{}, `scan --no-validate`", version(&tools.kingfisher)),
        kf,
        found_in_text(&tools.kingfisher_report, &planted)?,
    ));
    let gl = measure(
        Command::new(&tools.gitleaks)
            .args(["dir", tree_arg, "--no-banner", "--max-archive-depth", "4"])
            .args(["--report-format", "json", "--report-path"])
            .arg(&tools.gitleaks_report),
    )?;
    rows.push((
        format!("{}, `dir --max-archive-depth 4`", version(&tools.gitleaks)),
        gl,
        found_in_text(&tools.gitleaks_report, &planted)?,
    ));

    let mb = stats.bytes as f64 / 1e6;
    println!(
        "Directory scan of {} files ({} archives holding {} more), {:.0} MB on disk, {} planted keys; {} cores.\n",
        stats.files,
        stats.archives,
        stats.archive_members,
        mb,
        planted.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| tool | MB/s | wall s | peak RSS MiB | recall (planted keys found) | wall vs ours | RSS vs ours |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, m, found) in &rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.0} | {found} / {} ({:.0} %) | {:.2}x | {:.2}x |",
            mb / m.wall_s,
            m.wall_s,
            m.max_rss_kib as f64 / 1024.0,
            planted.len(),
            100.0 * *found as f64 / planted.len() as f64,
            m.wall_s / ours_wall,
            m.max_rss_kib as f64 / ours_rss
        );
    }
    note_failures(&rows);
    Ok(())
}

struct TreeStats {
    files: u64,
    bytes: u64,
    archives: u64,
    archive_members: u64,
}

fn tree_stats(tree: &Path) -> Result<TreeStats> {
    let mut stats = TreeStats {
        files: 0,
        bytes: 0,
        archives: 0,
        archive_members: 0,
    };
    let mut dirs = vec![tree.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() {
                stats.files += 1;
                stats.bytes += meta.len();
            }
        }
    }
    let members =
        fs::read_to_string(tree.parent().unwrap_or(tree).join("archives.txt")).unwrap_or_default();
    for line in members.lines() {
        stats.archives += 1;
        stats.archive_members += line.parse::<u64>().unwrap_or(0);
    }
    Ok(stats)
}

/// Planted keys, of kinds every tool knows, made with a fixed seed, and the record of them.
struct Keys {
    known: KnownKeys,
    planted: Vec<String>,
}

impl Keys {
    /// The next key, and the variable it is usually assigned to.
    fn next(&mut self) -> (&'static str, String) {
        let (var, secret) = self.known.next_key();
        self.planted.push(secret.clone());
        (var, secret)
    }
}

fn build_tree(tree: &Path, planted_file: &Path) -> Result<()> {
    if tree.exists() {
        fs::remove_dir_all(tree)?;
    }
    let home = tree.join("home/dev");
    fs::create_dir_all(&home)?;
    eprintln!("bench: building {} (once)", tree.display());
    let mut keys = Keys {
        known: KnownKeys::new(1),
        planted: Vec::new(),
    };

    // Where keys leak in a home.
    let (var, secret) = keys.next();
    fs::write(
        home.join(".zshrc"),
        format!("alias ll='ls -l'\nexport {var}={secret}\n"),
    )?;
    let (var, secret) = keys.next();
    fs::write(home.join(".bashrc.bak"), format!("export {var}={secret}\n"))?;
    fs::create_dir_all(home.join(".config/Claude"))?;
    let (_, secret) = keys.next();
    fs::write(
        home.join(".config/Claude/claude_desktop_config.json"),
        format!(
            "{{\"mcpServers\": {{\"github\": {{\"command\": \"npx\", \"env\": {{\"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{secret}\"}}}}}}}}\n"
        ),
    )?;

    // A developer's code: the crate sources, with keys in `.env` files and source files.
    let registry = dirs_home().join(".cargo/registry/src");
    let mut sources: Vec<PathBuf> = Vec::new();
    collect_files(&registry, &mut sources)?;
    sources.sort();
    if sources.is_empty() {
        bail!("no crate sources under {}", registry.display());
    }
    let code = home.join("code");
    let mut last_crate = PathBuf::new();
    for (i, source) in sources.iter().enumerate() {
        let relative = source
            .strip_prefix(&registry)?
            .components()
            .skip(1)
            .collect::<PathBuf>();
        let target = code.join(&relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut bytes = fs::read(source)?;
        if i % PLANT_EVERY == 0 && is_text(&bytes) {
            let (var, secret) = keys.next();
            bytes.extend_from_slice(format!("\n// {var} = \"{secret}\"\n").as_bytes());
        }
        fs::write(&target, &bytes)?;
        let krate: PathBuf = relative.components().take(1).collect();
        if krate != last_crate && i % (PLANT_EVERY / 4) == 0 {
            let (var, secret) = keys.next();
            fs::write(code.join(&krate).join(".env"), format!("{var}={secret}\n"))?;
        }
        last_crate = krate;
    }

    // Backups: /usr/share/doc in three archives, with keys in some members.
    let mut docs: Vec<PathBuf> = Vec::new();
    collect_files(Path::new("/usr/share/doc"), &mut docs)?;
    docs.sort();
    let backups = home.join("backups");
    fs::create_dir_all(&backups)?;
    let thirds: Vec<&[PathBuf]> = docs.chunks(docs.len().div_ceil(3).max(1)).collect();
    let gz = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(backups.join("docs-2023.tar.gz"))?),
        flate2::Compression::default(),
    );
    write_tar(gz, thirds[0], &mut keys)?.finish()?;
    let zst = zstd::stream::write::Encoder::new(
        BufWriter::new(File::create(backups.join("docs-2024.tar.zst"))?),
        3,
    )?;
    write_tar(zst, thirds.get(1).copied().unwrap_or(&[]), &mut keys)?.finish()?;
    write_zip(
        &backups.join("docs-2025.zip"),
        thirds.get(2).copied().unwrap_or(&[]),
        &mut keys,
    )?;
    let members: Vec<String> = thirds.iter().map(|t| t.len().to_string()).collect();
    fs::write(
        tree.parent().unwrap_or(tree).join("archives.txt"),
        members.join("\n"),
    )?;

    fs::write(planted_file, keys.planted.join("\n") + "\n")?;
    eprintln!("bench: {} keys planted", keys.planted.len());
    Ok(())
}

/// A tar of `files` (named by their path under `/`), with a key appended to some text members.
fn write_tar<W: Write>(writer: W, files: &[PathBuf], keys: &mut Keys) -> Result<W> {
    let mut builder = tar::Builder::new(writer);
    for (i, path) in files.iter().enumerate() {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        if i % (PLANT_EVERY / 4) == 0 && is_text(&bytes) {
            let (var, secret) = keys.next();
            bytes.extend_from_slice(format!("\n{var}={secret}\n").as_bytes());
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        let name = path.strip_prefix("/").unwrap_or(path);
        builder.append_data(&mut header, name, bytes.as_slice())?;
    }
    Ok(builder.into_inner()?)
}

fn write_zip(path: &Path, files: &[PathBuf], keys: &mut Keys) -> Result<()> {
    let mut zip = zip::ZipWriter::new(BufWriter::new(File::create(path)?));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (i, file) in files.iter().enumerate() {
        let mut bytes = fs::read(file)?;
        if i % (PLANT_EVERY / 4) == 0 && is_text(&bytes) {
            let (var, secret) = keys.next();
            bytes.extend_from_slice(format!("\n{var}={secret}\n").as_bytes());
        }
        let name = file.strip_prefix("/").unwrap_or(file);
        zip.start_file(name.to_string_lossy(), options)?;
        zip.write_all(&bytes)?;
    }
    zip.finish()?;
    Ok(())
}

fn is_text(bytes: &[u8]) -> bool {
    !bytes.is_empty() && !bytes[..bytes.len().min(8192)].contains(&0)
}

/// Regular files under `dir` (symlinks not followed).
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}
