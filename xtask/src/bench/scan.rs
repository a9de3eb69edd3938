//! `cargo xtask bench scan`: how fast `detector scan dir:` reads a large tree, and whether it
//! finds what is there, beside gitleaks and Kingfisher on the same tree in the same run.
//!
//! The tree is real text: the Rust sources on this machine (the cargo registry and the
//! toolchains' `rust-src`), copied until it reaches the requested size, each copy of a file
//! made unique by a first line naming it (Kingfisher skips duplicate blobs, and a tree of
//! identical copies would flatter it). Into it go sparse planted keys of providers that every
//! tool knows, in the formats the providers issue, generated at run time from a fixed seed,
//! and between them one key of each of [`PROVIDERS`] providers, the first example of one of
//! its rules in `rules/` (the one place of the repository where literal key shapes live; the
//! other tools may not know those providers, which is what recall measures).
//! The planted set is recorded beside the tree; recall is how many of those a tool reports.
use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use kit::keys::{Generator, ALNUM, BASE32_UPPER, BASE62, BASE64, DIGITS, URL_SAFE};
use serde_json::{json, Value};
use walkdir::WalkDir;

use super::{peers, workspace_root};

/// Planted sites: even sites take the kinds in turn, so each kind gets
/// `SITES / 2 / KINDS.len()` of them; odd sites take one provider's rule example each.
const SITES: usize = 256;
/// Providers whose rule examples are planted, one key each (`SITES / 2` at most).
const PROVIDERS: usize = 128;
/// Source files larger than this are left out (generated tables, not the text people write).
const MAX_SOURCE_FILE: u64 = 1024 * 1024;
/// How many leading bytes decide that a source file is binary (a NUL among them).
const BINARY_PROBE: usize = 8 * 1024;
const SEED: u64 = 0x005c_a1ab_1e0f_5eed;

/// The planted kinds, in turn.
const KINDS: [Kind; 8] = [
    Kind::GithubPat,
    Kind::SlackBot,
    Kind::AwsKeyPair,
    Kind::StripeLive,
    Kind::OpenaiProject,
    Kind::AnthropicApi,
    Kind::GitlabPat,
    Kind::PrivateKey,
];

#[derive(Clone, Copy)]
enum Kind {
    GithubPat,
    SlackBot,
    AwsKeyPair,
    StripeLive,
    OpenaiProject,
    AnthropicApi,
    GitlabPat,
    PrivateKey,
}

/// One planted secret: what a tool has to report for it to count as found.
struct Planted {
    /// A kind's name, or `rule:ID` for a rule's example.
    kind: String,
    secret: String,
    path: String,
    line: usize,
}

pub fn run(size_mib: u64, runs: usize) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = workspace_root();
    let bench_dir = root.join("target/bench");
    let detector = root.join("target/release/detector");
    if !detector.is_file() {
        bail!(
            "{} is missing: run `cargo xtask bench scan` (it builds first)",
            detector.display()
        );
    }
    let gitleaks = peers::gitleaks()?;
    let kingfisher = peers::kingfisher()?;

    let tree = ensure_tree(&bench_dir, size_mib)?;
    let work = bench_dir.join("scan-runs");
    fs::create_dir_all(&work)?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kingfisher_label = peers::version(&kingfisher);
    let gitleaks_label = peers::version(&gitleaks);
    let mut tools = vec![
        Tool::new(Family::Detector, "detector".into(), detector.clone(), 1),
        Tool::new(Family::Detector, "detector".into(), detector, cores),
        Tool::new(
            Family::Kingfisher,
            kingfisher_label.clone(),
            kingfisher.clone(),
            1,
        ),
        Tool::new(Family::Kingfisher, kingfisher_label, kingfisher, cores),
        Tool::new(Family::Gitleaks, gitleaks_label, gitleaks, cores),
    ];

    // One small tree with every kind once: each tool's first run pays its one-time costs there
    // (Kingfisher compiles and caches its Vectorscan database), and proves its output parses.
    let warmup = write_warmup(&bench_dir)?;
    for tool in &tools {
        let out = work.join(format!("{}-warmup.json", tool.slug()));
        tool.measure(&warmup.dir, &out, &work)?;
        let found = recall(&warmup.planted, &tool.report(&out)?.secrets);
        eprintln!(
            "bench: warm-up, {} ({} thread(s)): {}/{} planted keys",
            tool.label,
            tool.threads,
            found.iter().filter(|f| **f).count(),
            warmup.planted.len()
        );
    }

    let bytes = warm_page_cache(&tree.dir)?;
    let load_before = loadavg();
    // Round-robin, so that a burst of load from elsewhere hits every tool alike.
    for round in 0..runs {
        for tool in &mut tools {
            let out = work.join(format!("{}.json", tool.slug()));
            let _ = fs::remove_file(&out);
            let run = tool.measure(&tree.dir, &out, &work)?;
            let reported = tool.report(&out)?;
            let found = recall(&tree.planted, &reported.secrets);
            eprintln!(
                "bench: run {}/{runs}, {} ({} thread(s)): {:.2} s, {:.0} MiB, {}/{} planted keys",
                round + 1,
                tool.label,
                tool.threads,
                run.wall.as_secs_f64(),
                run.max_rss_kib as f64 / 1024.0,
                found.iter().filter(|f| **f).count(),
                tree.planted.len()
            );
            tool.runs.push(run);
            tool.found.push(found);
            tool.entries = reported.entries;
        }
    }
    let load_after = loadavg();

    print_tables(&tools, &tree, bytes, runs, cores, &load_before, &load_after);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tools.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Detector,
    Kingfisher,
    Gitleaks,
}

struct Tool {
    family: Family,
    label: String,
    program: PathBuf,
    threads: usize,
    runs: Vec<Run>,
    /// Per run: which planted secrets it reported.
    found: Vec<Vec<bool>>,
    /// Entries in the last run's report.
    entries: usize,
}

struct Run {
    wall: Duration,
    max_rss_kib: u64,
}

impl Tool {
    fn new(family: Family, label: String, program: PathBuf, threads: usize) -> Tool {
        Tool {
            family,
            label,
            program,
            threads,
            runs: Vec::new(),
            found: Vec::new(),
            entries: 0,
        }
    }

    fn slug(&self) -> String {
        let name = match self.family {
            Family::Detector => "detector",
            Family::Kingfisher => "kingfisher",
            Family::Gitleaks => "gitleaks",
        };
        format!("{name}-{}t", self.threads)
    }

    /// The command line, as the tool's documentation has it, with its JSON report in `out`.
    fn command(&self, target: &Path, out: &Path) -> Command {
        let mut cmd = Command::new(&self.program);
        match self.family {
            Family::Detector => {
                cmd.arg("scan")
                    .arg(format!("dir:{}", target.display()))
                    .args(["--format", "json", "--show-secrets", "--threads"])
                    .arg(self.threads.to_string())
                    .arg("--output")
                    .arg(out)
                    // A fixed org key: the scan must not create one under $HOME.
                    .env("DETECTOR_ORG_KEY", "bench-scan-org-key");
            }
            Family::Kingfisher => {
                cmd.arg("scan")
                    .arg(target)
                    .args(["--no-validate", "--no-update-check", "--quiet"])
                    .args(["--format", "json", "--jobs"])
                    .arg(self.threads.to_string())
                    .arg("--output")
                    .arg(out);
            }
            Family::Gitleaks => {
                cmd.arg("dir")
                    .arg(target)
                    .args(["--report-format", "json", "--no-banner", "--exit-code", "0"])
                    .arg("--report-path")
                    .arg(out)
                    // gitleaks has no thread option; Go runs this many threads at once.
                    .env("GOMAXPROCS", self.threads.to_string());
            }
        }
        cmd
    }

    fn command_line(&self) -> String {
        let cmd = self.command(Path::new("TREE"), Path::new("OUT.json"));
        let mut line: Vec<String> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
            .collect();
        line.push(
            self.program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        line.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
        line.join(" ")
    }

    fn exit_ok(&self, code: i32) -> bool {
        match self.family {
            // 1: keys at or above --fail-on were found.
            Family::Detector => code == 0 || code == 1,
            // 200: findings, 205: validated findings.
            Family::Kingfisher => matches!(code, 0 | 200 | 205),
            Family::Gitleaks => code == 0,
        }
    }

    fn measure(&self, target: &Path, out: &Path, work: &Path) -> Result<Run> {
        let log = work.join(format!("{}.log", self.slug()));
        let mut cmd = self.command(target, out);
        let run = run_measured(&mut cmd, &log)?;
        if !run.exit.is_some_and(|code| self.exit_ok(code)) {
            bail!(
                "{} failed ({}); its output is in {}",
                self.command_line(),
                match run.exit {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".to_string(),
                },
                log.display()
            );
        }
        Ok(Run {
            wall: run.wall,
            max_rss_kib: run.max_rss_kib,
        })
    }

    /// Every secret the tool reported, as it reported it.
    fn report(&self, out: &Path) -> Result<Reported> {
        let text =
            fs::read_to_string(out).with_context(|| format!("cannot read {}", out.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", out.display()))?;
        let strings = |values: Vec<&Value>| -> Vec<String> {
            values
                .into_iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        Ok(match self.family {
            Family::Detector => {
                let keys = array(&report["keys"], out)?;
                Reported {
                    entries: keys.len(),
                    secrets: strings(keys.iter().map(|k| &k["secret"]).collect()),
                }
            }
            Family::Gitleaks => {
                let findings = array(&report, out)?;
                Reported {
                    entries: findings.len(),
                    secrets: strings(findings.iter().map(|f| &f["Secret"]).collect()),
                }
            }
            Family::Kingfisher => {
                let findings = array(&report["findings"], out)?;
                let mut values = Vec::new();
                for finding in findings {
                    let finding = &finding["finding"];
                    values.push(&finding["snippet"]);
                    // The second half of a pair (the AWS secret beside its key id).
                    if let Some(captures) = finding["dependent_captures"].as_object() {
                        values.extend(captures.values());
                    }
                }
                Reported {
                    entries: findings.len(),
                    secrets: strings(values),
                }
            }
        })
    }
}

/// What a tool's JSON report holds: how many entries (keys for ours, findings for the peers),
/// and every secret in them.
struct Reported {
    entries: usize,
    secrets: Vec<String>,
}

fn array<'a>(value: &'a Value, file: &Path) -> Result<&'a Vec<Value>> {
    value.as_array().with_context(|| {
        format!(
            "{}: not the report shape this benchmark knows",
            file.display()
        )
    })
}

/// Which planted secrets occur in the reported ones. Whitespace and `\n` escapes are ignored,
/// so a PEM block counts however a tool re-wraps it; a truncated report does not count.
fn recall(planted: &[Planted], reported: &[String]) -> Vec<bool> {
    let reported: Vec<String> = reported.iter().map(|s| normalise(s)).collect();
    planted
        .iter()
        .map(|p| {
            let needle = normalise(&p.secret);
            reported.iter().any(|r| r.contains(&needle))
        })
        .collect()
}

fn normalise(text: &str) -> String {
    text.replace("\\n", "")
        .replace("\\r", "")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

struct Measured {
    wall: Duration,
    max_rss_kib: u64,
    exit: Option<i32>,
}

/// Run `cmd` with its output in `log`; wall time, and peak RSS from the child's rusage.
fn run_measured(cmd: &mut Command, log: &Path) -> Result<Measured> {
    let log_file = fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    let waited = super::child::wait(cmd, None)?;
    Ok(Measured {
        wall: waited.wall,
        max_rss_kib: waited.max_rss_kib.max(0) as u64,
        exit: waited.status.code(),
    })
}

// ---------------------------------------------------------------------------------------------
// The tree.

struct Tree {
    dir: PathBuf,
    files: u64,
    sources: Vec<String>,
    planted: Vec<Planted>,
}

/// The tree of `size_mib` MiB under `bench_dir`, generated unless it is already there.
fn ensure_tree(bench_dir: &Path, size_mib: u64) -> Result<Tree> {
    // `-p128`: the planted set with the rule examples of 128 providers (a tree planted before
    // them is another tree).
    let name = if size_mib == 1024 {
        "scan-tree-p128".to_string()
    } else {
        format!("scan-tree-{size_mib}mib-p128")
    };
    let dir = bench_dir.join(&name);
    let manifest = bench_dir.join(format!("{name}.planted.json"));
    if dir.is_dir() {
        match read_manifest(&dir, &manifest) {
            Ok(tree) => {
                eprintln!("bench: reusing {}", dir.display());
                return Ok(tree);
            }
            Err(err) => eprintln!("bench: regenerating {}: {err:#}", dir.display()),
        }
    }
    let partial = bench_dir.join(format!("{name}.partial"));
    for stale in [&dir, &partial] {
        if stale.exists() {
            fs::remove_dir_all(stale)?;
        }
    }
    let _ = fs::remove_file(&manifest);
    eprintln!(
        "bench: generating {} ({size_mib} MiB of source text with planted keys)",
        dir.display()
    );
    let mut tree = generate(&partial, size_mib * 1024 * 1024)?;
    fs::rename(&partial, &dir)?;
    tree.dir = dir;
    write_manifest(&tree, &manifest)?;
    Ok(tree)
}

fn write_manifest(tree: &Tree, path: &Path) -> Result<()> {
    let planted: Vec<Value> = tree
        .planted
        .iter()
        .map(|p| json!({"kind": p.kind, "secret": p.secret, "path": p.path, "line": p.line}))
        .collect();
    let manifest = json!({
        "files": tree.files,
        "sources": tree.sources,
        "planted": planted,
    });
    fs::write(path, serde_json::to_string_pretty(&manifest)?)?;
    Ok(())
}

fn read_manifest(dir: &Path, path: &Path) -> Result<Tree> {
    let text = fs::read_to_string(path).with_context(|| format!("no {}", path.display()))?;
    let manifest: Value = serde_json::from_str(&text)?;
    let field = |p: &Value, name: &str| -> Result<String> {
        p[name]
            .as_str()
            .map(String::from)
            .with_context(|| format!("{}: planted entry without {name}", path.display()))
    };
    let mut planted = Vec::new();
    for p in array(&manifest["planted"], path)? {
        let kind = field(p, "kind")?;
        planted.push(Planted {
            kind: planted_kind_name(&kind)
                .map(str::to_string)
                .or_else(|| kind.starts_with("rule:").then(|| kind.clone()))
                .with_context(|| format!("{}: unknown kind {kind}", path.display()))?,
            secret: field(p, "secret")?,
            path: field(p, "path")?,
            line: p["line"].as_u64().unwrap_or(0) as usize,
        });
    }
    Ok(Tree {
        dir: dir.to_path_buf(),
        files: manifest["files"].as_u64().unwrap_or(0),
        sources: array(&manifest["sources"], path)?
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        planted,
    })
}

/// Where the real text comes from: the cargo registry's unpacked crates and every installed
/// toolchain's standard library sources.
fn source_roots() -> Vec<(String, PathBuf)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cargo")));
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".rustup")));
    let mut roots = Vec::new();
    if let Some(cargo_home) = cargo_home {
        roots.push((
            "cargo-registry".to_string(),
            cargo_home.join("registry/src"),
        ));
    }
    if let Some(toolchains) = rustup_home.and_then(|r| fs::read_dir(r.join("toolchains")).ok()) {
        let mut found: Vec<(String, PathBuf)> = toolchains
            .filter_map(|t| t.ok())
            .map(|t| {
                (
                    format!("rust-src-{}", t.file_name().to_string_lossy()),
                    t.path().join("lib/rustlib/src/rust/library"),
                )
            })
            .collect();
        found.sort();
        roots.extend(found);
    }
    roots.retain(|(_, path)| path.is_dir());
    roots
}

/// The text files under the roots: (label/relative path, absolute path), sorted.
fn source_files(roots: &[(String, PathBuf)]) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for (label, root) in roots {
        for entry in WalkDir::new(root).follow_links(false) {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.len() == 0 || meta.len() > MAX_SOURCE_FILE {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(root) else {
                continue;
            };
            if is_text(entry.path()) {
                files.push((
                    format!("{label}/{}", relative.display()),
                    entry.path().to_path_buf(),
                ));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_text(path: &Path) -> bool {
    let mut head = [0u8; BINARY_PROBE];
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let Ok(n) = file.read(&mut head) else {
        return false;
    };
    !head[..n].contains(&0)
}

/// Copies of the source files, each with a first line naming the copy, until `size` bytes;
/// a planted block every `size / SITES` bytes, at the next line boundary.
fn generate(dir: &Path, size: u64) -> Result<Tree> {
    let roots = source_roots();
    let files = source_files(&roots)?;
    let available: u64 = files
        .iter()
        .filter_map(|(_, p)| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if available < 16 * 1024 * 1024 {
        bail!(
            "only {available} bytes of source text found under {:?}: build the workspace first \
             (it fills the cargo registry) and run `cargo xtask setup` (it adds rust-src)",
            roots.iter().map(|(_, p)| p).collect::<Vec<_>>()
        );
    }
    let examples = rule_examples(PROVIDERS)?;
    let mut rng = Generator::new(SEED);
    let sites: Vec<u64> = (0..SITES as u64)
        .map(|i| {
            i * size / SITES as u64 + rng.below((size / SITES as u64 / 2).max(1) as usize) as u64
        })
        .collect();
    let mut planted = Vec::new();
    let mut written: u64 = 0;
    let mut count: u64 = 0;
    let mut next_site = 0;
    let mut last_dir = PathBuf::new();
    'copies: for copy in 0.. {
        for (name, source) in &files {
            if written >= size {
                break 'copies;
            }
            let relative = format!("copy-{copy}/{name}");
            let mut body = format!("bench copy {copy}: {name}\n").into_bytes();
            body.extend(fs::read(source)?);
            while next_site < SITES && sites[next_site] < written + body.len() as u64 {
                let offset = sites[next_site].saturating_sub(written) as usize;
                let block = match examples.get(next_site / 2) {
                    Some(example) if next_site % 2 == 1 => example.clone(),
                    _ => planted_block(KINDS[next_site / 2 % KINDS.len()], &mut rng),
                };
                plant(&mut body, offset, block, &relative, &mut planted);
                next_site += 1;
            }
            if written + body.len() as u64 > size {
                body.truncate((size - written) as usize);
            }
            let path = dir.join(&relative);
            let parent = path.parent().context("tree path")?;
            if parent != last_dir {
                fs::create_dir_all(parent)?;
                last_dir = parent.to_path_buf();
            }
            fs::write(&path, &body)?;
            written += body.len() as u64;
            count += 1;
        }
        if copy > 1000 {
            bail!("the source files do not add up to {size} bytes");
        }
    }
    // A key cut off by the truncation of the last file is not in the tree.
    planted.retain(|p| {
        fs::read(dir.join(&p.path))
            .map(|bytes| {
                let text = String::from_utf8_lossy(&bytes);
                let needle = normalise(&p.secret);
                normalise(&text).contains(&needle)
            })
            .unwrap_or(false)
    });
    Ok(Tree {
        dir: dir.to_path_buf(),
        files: count,
        sources: roots.iter().map(|(_, p)| p.display().to_string()).collect(),
        planted,
    })
}

/// What a planted block says, and the secrets in it by kind.
type Block = (String, Vec<(String, String)>);

/// Insert one planted block at the first line boundary at or after `offset`.
fn plant(body: &mut Vec<u8>, offset: usize, block: Block, path: &str, planted: &mut Vec<Planted>) {
    let at = match body
        .get(offset..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        Some(newline) => offset + newline + 1,
        None => {
            if body.last() != Some(&b'\n') {
                body.push(b'\n');
            }
            body.len()
        }
    };
    let line = body[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let (text, secrets) = block;
    body.splice(at..at, text.into_bytes());
    for (kind, secret) in secrets {
        planted.push(Planted {
            kind,
            secret,
            path: path.to_string(),
            line,
        });
    }
}

/// A block of text that leaks one key of `kind` (two secrets for an AWS key pair), written the
/// way such keys leak: an assignment in one of a few config syntaxes, or a PEM block.
fn planted_block(kind: Kind, rng: &mut Generator) -> Block {
    let (text, secrets) = kind_block(kind, rng);
    let secrets = secrets
        .into_iter()
        .map(|(kind, secret)| (kind.to_string(), secret))
        .collect();
    (text, secrets)
}

/// One example of a rule of each of `count` providers (spread over all of them in the order
/// of their names), as a planted block: the example's text on a line of its own.
fn rule_examples(count: usize) -> Result<Vec<Block>> {
    let dir = workspace_root().join("rules");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut by_provider: BTreeMap<String, Block> = BTreeMap::new();
    for file in files {
        let doc: toml::Value = toml::from_str(&fs::read_to_string(&file)?)
            .with_context(|| format!("{}", file.display()))?;
        for rule in doc
            .get("rules")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(id), Some(provider)) = (
                rule.get("id").and_then(|v| v.as_str()),
                rule.get("provider").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            // The context rule's examples are nobody's key format.
            if provider == "Generic" || by_provider.contains_key(provider) {
                continue;
            }
            let example = rule
                .get("examples")
                .and_then(|e| e.as_array())
                .and_then(|e| e.first());
            let text = example.and_then(|e| e.get("text")).and_then(|v| v.as_str());
            let secret = example
                .and_then(|e| e.get("secret"))
                .and_then(|v| v.as_str());
            if let (Some(text), Some(secret)) = (text, secret) {
                by_provider.insert(
                    provider.to_string(),
                    (
                        format!("{}\n", text.trim_end()),
                        vec![(format!("rule:{id}"), secret.to_string())],
                    ),
                );
            }
        }
    }
    if by_provider.len() < count {
        bail!(
            "{} providers in {} have rule examples, {count} are planted",
            by_provider.len(),
            dir.display()
        );
    }
    let step = by_provider.len() as f64 / count as f64;
    let all: Vec<Block> = by_provider.into_values().collect();
    Ok((0..count)
        .map(|i| all[(i as f64 * step) as usize].clone())
        .collect())
}

fn kind_block(kind: Kind, rng: &mut Generator) -> (String, Vec<(&'static str, String)>) {
    let style = rng.below(4);
    let assign = |name: &str, value: &str| -> String {
        match style {
            0 => format!("{name}={value}\n"),
            1 => format!("{name} = \"{value}\"\n"),
            2 => format!("    \"{}\": \"{value}\",\n", name.to_ascii_lowercase()),
            _ => format!("export {name}='{value}'\n"),
        }
    };
    match kind {
        Kind::GithubPat => {
            let secret = github_token(rng);
            (
                assign("GITHUB_TOKEN", &secret),
                vec![("github-pat", secret)],
            )
        }
        Kind::SlackBot => {
            let secret = [
                "xox",
                "b-",
                &rng.string(DIGITS, 12),
                "-",
                &rng.string(DIGITS, 13),
                "-",
                &token(rng, ALNUM, 24),
            ]
            .concat();
            (
                assign("SLACK_BOT_TOKEN", &secret),
                vec![("slack-bot-token", secret)],
            )
        }
        Kind::AwsKeyPair => {
            let id = ["AK", "IA", &rng.string(BASE32_UPPER, 16)].concat();
            let secret = token(rng, BASE64, 40);
            let text = assign("AWS_ACCESS_KEY_ID", &id) + &assign("AWS_SECRET_ACCESS_KEY", &secret);
            (
                text,
                vec![("aws-access-key-id", id), ("aws-secret-access-key", secret)],
            )
        }
        Kind::StripeLive => {
            let secret = ["sk", "_live_", &token(rng, ALNUM, 99)].concat();
            (
                assign("STRIPE_SECRET_KEY", &secret),
                vec![("stripe-live-key", secret)],
            )
        }
        Kind::OpenaiProject => {
            let secret = [
                "sk-",
                "proj-",
                &token(rng, URL_SAFE, 74),
                "T3Blbk",
                "FJ",
                &token(rng, URL_SAFE, 74),
            ]
            .concat();
            (
                assign("OPENAI_API_KEY", &secret),
                vec![("openai-project-key", secret)],
            )
        }
        Kind::AnthropicApi => {
            let secret = ["sk-", "ant-", "api03-", &token(rng, URL_SAFE, 93), "AA"].concat();
            (
                assign("ANTHROPIC_API_KEY", &secret),
                vec![("anthropic-api-key", secret)],
            )
        }
        Kind::GitlabPat => {
            let secret = ["gl", "pat-", &token(rng, URL_SAFE, 20)].concat();
            (
                assign("GITLAB_TOKEN", &secret),
                vec![("gitlab-pat", secret)],
            )
        }
        Kind::PrivateKey => {
            // The DER prefixes of a 2048-bit RSA key, PKCS#1 and PKCS#8, then random base64 of
            // such a key's length: the shape of a real key, not a parseable one.
            let (label, prefix, length) = if rng.below(2) == 0 {
                ("RSA PRIVATE KEY", "MIIEowIBAAKCAQEA", 1592)
            } else {
                ("PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 1620)
            };
            let body = [prefix, &rng.string(BASE64, length - prefix.len())].concat();
            let mut block = format!("-----BEGIN {label}-----\n");
            for line in body.as_bytes().chunks(64) {
                block.push_str(&String::from_utf8_lossy(line));
                block.push('\n');
            }
            block.push_str(&format!("-----END {label}-----\n"));
            (block.clone(), vec![("private-key", block)])
        }
    }
}

fn planted_kind_name(name: &str) -> Option<&'static str> {
    [
        "github-pat",
        "slack-bot-token",
        "aws-access-key-id",
        "aws-secret-access-key",
        "stripe-live-key",
        "openai-project-key",
        "anthropic-api-key",
        "gitlab-pat",
        "private-key",
    ]
    .into_iter()
    .find(|k| *k == name)
}

/// `ghp_` + 30 random characters + their CRC32 in base62 (6 characters), as GitHub issues them.
fn github_token(rng: &mut Generator) -> String {
    let random = rng.string(ALNUM, 30);
    let mut checksum = crc32fast::hash(random.as_bytes());
    let mut encoded = [b'0'; 6];
    for slot in encoded.iter_mut().rev() {
        *slot = BASE62.as_bytes()[(checksum % 62) as usize];
        checksum /= 62;
    }
    ["gh", "p_", &random, &String::from_utf8_lossy(&encoded)].concat()
}

struct Warmup {
    dir: PathBuf,
    planted: Vec<Planted>,
}

/// A one-file tree with every kind once.
fn write_warmup(bench_dir: &Path) -> Result<Warmup> {
    let dir = bench_dir.join("scan-warmup");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let mut rng = Generator::new(SEED ^ 0xffff);
    let mut body = b"warm-up\n".to_vec();
    let mut planted = Vec::new();
    for kind in KINDS {
        let offset = body.len();
        let block = planted_block(kind, &mut rng);
        plant(&mut body, offset, block, "settings.conf", &mut planted);
        body.extend_from_slice(b"\n");
    }
    fs::write(dir.join("settings.conf"), body)?;
    Ok(Warmup { dir, planted })
}

/// Read every file once, so that no tool pays for the disk; the tree's size in bytes.
pub(super) fn warm_page_cache(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    let mut buffer = vec![0u8; 1 << 20];
    for entry in WalkDir::new(dir) {
        let entry = entry?;
        if entry.file_type().is_file() {
            let mut file = fs::File::open(entry.path())?;
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
            }
            bytes += entry.metadata()?.size();
        }
    }
    Ok(bytes)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A random key body from `rng` (the kit's generator: a fixed seed gives the same planted keys
/// on every machine): starts and ends with a letter or digit (a key that ends in `-` would
/// test word boundaries, not detection), and never spells documentation filler (`xxxx`,
/// `example`…) that scanners rightly ignore.
fn token(rng: &mut Generator, alphabet: &str, len: usize) -> String {
    loop {
        let mut token = rng.string(alphabet, len).into_bytes();
        for at in [0, len - 1] {
            token[at] = ALNUM.as_bytes()[rng.below(ALNUM.len())];
        }
        let token = String::from_utf8(token).unwrap_or_default();
        let lower = token.to_ascii_lowercase();
        if !["xxxx", "example", "test", "fake", "dummy"]
            .iter()
            .any(|f| lower.contains(f))
        {
            return token;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tables.

fn median(runs: &[Run]) -> Duration {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    walls[walls.len() / 2]
}

fn print_tables(
    tools: &[Tool],
    tree: &Tree,
    bytes: u64,
    runs: usize,
    cores: usize,
    load_before: &str,
    load_after: &str,
) {
    let planted = tree.planted.len();
    let kingfisher_wall = |threads: usize| {
        tools
            .iter()
            .find(|t| t.family == Family::Kingfisher && t.threads == threads)
            .map(|t| median(&t.runs))
    };
    println!(
        "\n`dir:` scan of {} ({:.0} MiB, {} files, {planted} planted secrets), \
         {cores} cores, load average {load_before} before and {load_after} after; \
         each tool ran {runs} times, round-robin, page cache warm. MB/s is 10^6 bytes per \
         second of wall time; peak RSS is the largest of the runs; recall is the lowest of \
         the runs; report entries are keys for detector (one per secret) and findings for \
         the peers, planted or not.\n",
        tree.dir.display(),
        bytes as f64 / (1024.0 * 1024.0),
        tree.files,
    );
    println!(
        "| tool | threads | wall s (median of {runs}) | MB/s | peak RSS MiB | recall (found/planted) | throughput vs Kingfisher (same threads) | report entries |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for tool in tools {
        let wall = median(&tool.runs);
        let rss = tool.runs.iter().map(|r| r.max_rss_kib).max().unwrap_or(0);
        let found = tool
            .found
            .iter()
            .map(|f| f.iter().filter(|x| **x).count())
            .min()
            .unwrap_or(0);
        let ratio = match kingfisher_wall(tool.threads) {
            Some(k) => format!("{:.2}x", k.as_secs_f64() / wall.as_secs_f64()),
            None => "—".to_string(),
        };
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.0} | {found}/{planted} ({:.1} %) | {ratio} | {} |",
            tool.label,
            tool.threads,
            wall.as_secs_f64(),
            bytes as f64 / 1e6 / wall.as_secs_f64(),
            rss as f64 / 1024.0,
            100.0 * found as f64 / planted.max(1) as f64,
            tool.entries,
        );
    }

    // Which kinds each tool missed, from its last run.
    // The rule examples are one key per provider: one row for all of them.
    let group = |kind: &str| -> String {
        if kind.starts_with("rule:") {
            format!("one key of each of {PROVIDERS} more providers (rule examples)")
        } else {
            kind.to_string()
        }
    };
    let mut by_kind: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for p in &tree.planted {
        by_kind.entry(group(&p.kind)).or_default().push(0);
    }
    println!("\nPlanted secrets found, by kind (last run of each tool):\n");
    print!("| kind | planted |");
    for tool in tools {
        print!(" {} ({}t) |", tool.label, tool.threads);
    }
    println!();
    print!("|---|---:|");
    for _ in tools {
        print!("---:|");
    }
    println!();
    for (kind, _) in by_kind {
        let indices: Vec<usize> = tree
            .planted
            .iter()
            .enumerate()
            .filter(|(_, p)| group(&p.kind) == kind)
            .map(|(i, _)| i)
            .collect();
        print!("| {kind} | {} |", indices.len());
        for tool in tools {
            let last = tool.found.last().map(Vec::as_slice).unwrap_or(&[]);
            let found = indices
                .iter()
                .filter(|&&i| last.get(i).copied().unwrap_or(false))
                .count();
            print!(" {found} |");
        }
        println!();
    }

    println!("\nCommands (TREE = {}):\n", tree.dir.display());
    for tool in tools {
        println!("- `{}`", tool.command_line());
    }
    println!(
        "\nThe tree is real text from {}, copied until it reaches the size; the planted set \
         is in {}.planted.json.",
        tree.sources.join(", "),
        tree.dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planted_secret_is_in_its_block_and_counts_as_found() {
        let mut rng = Generator::new(SEED);
        for kind in KINDS {
            let (text, secrets) = planted_block(kind, &mut rng);
            assert!(!secrets.is_empty());
            let planted: Vec<Planted> = secrets
                .into_iter()
                .map(|(kind, secret)| Planted {
                    kind,
                    secret,
                    path: String::new(),
                    line: 0,
                })
                .collect();
            for p in &planted {
                assert!(text.contains(&p.secret), "{text}");
                assert!(planted_kind_name(&p.kind).is_some());
            }
            // Found when reported whole, even re-wrapped or with escaped newlines.
            let escaped = text.replace('\n', "\\n");
            assert!(recall(&planted, &[escaped]).iter().all(|f| *f));
            // Not found when cut short.
            let cut: Vec<String> = planted
                .iter()
                .map(|p| p.secret[..p.secret.len() - 2].to_string())
                .collect();
            assert!(recall(&planted, &cut).iter().all(|f| !*f));
        }
    }

    /// The rule examples planted are of as many providers as planted, each a block that holds
    /// its secret.
    #[test]
    fn rule_examples_are_of_distinct_providers() {
        let examples = rule_examples(PROVIDERS).unwrap();
        assert_eq!(examples.len(), PROVIDERS);
        let kinds: std::collections::BTreeSet<&str> =
            examples.iter().map(|(_, s)| s[0].0.as_str()).collect();
        assert_eq!(kinds.len(), PROVIDERS);
        for (text, secrets) in &examples {
            assert!(text.contains(&secrets[0].1), "{text}");
        }
    }

    #[test]
    fn github_tokens_carry_their_checksum() {
        let mut rng = Generator::new(1);
        let token = github_token(&mut rng);
        assert_eq!(token.len(), 40);
        let (random, checksum) = token[4..].split_at(30);
        let value = checksum.bytes().fold(0u64, |n, b| {
            n * 62 + BASE62.bytes().position(|c| c == b).unwrap() as u64
        });
        assert_eq!(value, u64::from(crc32fast::hash(random.as_bytes())));
    }

    #[test]
    fn plants_go_in_at_a_line_boundary() {
        let mut rng = Generator::new(2);
        let mut body = b"first line\nsecond line\nthird".to_vec();
        let mut planted = Vec::new();
        let block = planted_block(Kind::GitlabPat, &mut rng);
        plant(&mut body, 3, block, "f", &mut planted);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "first line");
        assert!(lines[1].contains(&planted[0].secret));
        assert_eq!(planted[0].line, 2);
        assert_eq!(lines[2], "second line");
    }
}
