//! `cargo xtask bench verify`: what `detector scan --verify` costs on many keys. 1,000 keys
//! (by default) of the 20 providers of [`kit::keys::VERIFIABLE_PROVIDERS`] are written into 50
//! `.env` files (`NAME=key`, one a line) under a temp dir; a local HTTPS provider
//! ([`kit::https::ProviderServer`], its own CA, every host name of the 20) answers every
//! request with 200 and a small JSON body after a fixed latency (50 ms: a provider far away);
//! `detector scan dir:TREE --verify` is pointed at it with `--verify-resolve` and `--verify-ca`.
//!
//! Cold runs start with an empty `XDG_CACHE_HOME` (every key checked); warm runs reuse the
//! cache of the last cold run, and should send nothing. The table shows wall time (median),
//! keys per second, the requests the server saw, and how many keys the report marks active.
//! No real provider is ever called: every host resolves to the local server.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use kit::{
    https::{ProviderServer, Reply},
    keys::{fingerprint, VerifiableKeys, VERIFIABLE_PROVIDERS},
};
use serde_json::Value;

use super::{child, workspace_root};

/// `.env` files the keys are spread over.
const FILES: usize = 50;
/// The org key of the runs (fingerprints are HMACs under it).
const ORG_KEY: &str = "bench-org";
/// A run that takes longer is killed and fails the benchmark.
const DEADLINE: Duration = Duration::from_secs(900);

pub struct Options {
    pub keys: usize,
    pub runs: usize,
    pub latency: Duration,
    pub binary: Option<PathBuf>,
}

struct Run {
    wall: Duration,
    requests: usize,
    report_keys: usize,
    states: BTreeMap<String, usize>,
}

impl Run {
    fn active(&self) -> usize {
        self.states.get("active").copied().unwrap_or(0)
    }
}

pub fn run(options: Options) -> Result<()> {
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if options.keys == 0 {
        bail!("--keys must be at least 1");
    }
    let detector = match &options.binary {
        Some(binary) => binary.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("release/detector"),
    };
    if !detector.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --release -p detector)",
            detector.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("bench-verify-")
        .tempdir()
        .context("temp dir")?;
    let tree = work.path().join("tree");
    let planted = plant(&tree, options.keys)?;
    // Each provider's host, and its whole domain in case a verifier checks on another host
    // of it (`api.x.com` or `x.com`): the certificate names them all.
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for p in VERIFIABLE_PROVIDERS {
        let labels: Vec<&str> = p.host.split('.').collect();
        let domain = labels[labels.len().saturating_sub(2)..].join(".");
        hosts.insert(p.host.to_string());
        hosts.insert(format!("*.{domain}"));
        hosts.insert(domain);
    }
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let server = ProviderServer::start(&hosts).with_latency(options.latency);
    server.set_handler(|_| Reply::json(200, r#"{"ok":true,"id":1,"login":"bench"}"#));
    let home = work.path().join("home");
    fs::create_dir_all(&home)?;

    let scan = |cache: &Path, out: &Path| -> Result<Run> {
        let before = server.count();
        let report = out.join("report.json");
        let log = out.join("stderr.log");
        fs::create_dir_all(out)?;
        let mut cmd = command(&detector, &tree, &server, &report);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", cache)
            .env("DETECTOR_ORG_KEY", ORG_KEY)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?);
        let waited = child::wait(&mut cmd, Some(DEADLINE))?;
        let stderr = fs::read_to_string(&log).unwrap_or_default();
        if waited.killed {
            bail!(
                "detector scan --verify did not finish in {} s; its standard error:\n{}",
                DEADLINE.as_secs(),
                tail(&stderr)
            );
        }
        // 1: keys found at or above --fail-on, which is what a tree of live keys gives.
        if !matches!(waited.status.code(), Some(0 | 1)) {
            bail!(
                "detector scan --verify failed ({}); its standard error:\n{}",
                waited.status,
                tail(&stderr)
            );
        }
        let text = fs::read_to_string(&report)
            .with_context(|| format!("no report at {}", report.display()))?;
        let report: Value = serde_json::from_str(&text).context("the report is not JSON")?;
        let (report_keys, states) = read_report(&report, &planted, options.keys)?;
        Ok(Run {
            wall: waited.wall,
            requests: server.count() - before,
            report_keys,
            states,
        })
    };

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut cache = PathBuf::new();
    for i in 0..options.runs {
        cache = work.path().join(format!("cache-{i}"));
        fs::create_dir_all(&cache)?;
        eprintln!("bench: cold run {} of {}", i + 1, options.runs);
        cold.push(scan(&cache, &work.path().join(format!("cold-{i}")))?);
    }
    // Which hosts the last cold run asked, before the warm runs add theirs.
    let mut by_sni: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.requests() {
        *by_sni
            .entry(r.sni.unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
    }
    for i in 0..options.runs {
        eprintln!("bench: warm run {} of {}", i + 1, options.runs);
        warm.push(scan(&cache, &work.path().join(format!("warm-{i}")))?);
    }

    print_tables(&options, &cold, &warm, &by_sni);
    println!(
        "\nCommand (TREE: {FILES} `.env` files under a temp dir; PORT and CA from the local \
         provider; XDG_CACHE_HOME empty for a cold run, the last cold run's for a warm one):\n"
    );
    println!(
        "- `DETECTOR_ORG_KEY={ORG_KEY} XDG_CACHE_HOME=CACHE {} scan dir:TREE --verify \
         --verify-resolve '*:443:127.0.0.1:PORT' --verify-ca CA.pem --format json --output \
         R.json`",
        detector.display()
    );
    Ok(())
}

/// `detector scan dir:TREE --verify <resolve args> --format json --output REPORT`.
fn command(detector: &Path, tree: &Path, server: &ProviderServer, report: &Path) -> Command {
    let mut cmd = Command::new(detector);
    cmd.arg("scan")
        .arg(format!("dir:{}", tree.display()))
        .arg("--verify")
        .args(server.resolve_args())
        .args(["--format", "json", "--output"])
        .arg(report);
    cmd
}

/// `keys` keys over the providers, in [`FILES`] `.env` files (`svc-NN/.env`); their
/// fingerprints, with the rule of each.
fn plant(tree: &Path, keys: usize) -> Result<BTreeMap<String, &'static str>> {
    let mut made = VerifiableKeys::new(2024);
    let mut texts = vec![String::new(); FILES.min(keys)];
    let mut planted = BTreeMap::new();
    let per_file = keys.div_ceil(texts.len());
    for i in 0..keys {
        let key = made.next_verifiable();
        let text = &mut texts[i / per_file];
        text.push_str(key.provider.variable);
        text.push('=');
        text.push_str(&key.key);
        text.push('\n');
        planted.insert(fingerprint(ORG_KEY.as_bytes(), &key.key), key.provider.rule);
    }
    if planted.len() != keys {
        bail!(
            "the generator made {} distinct keys of {keys}",
            planted.len()
        );
    }
    for (i, text) in texts.iter().enumerate() {
        if text.is_empty() {
            continue;
        }
        let path = tree.join(format!("svc-{i:02}/.env"));
        fs::create_dir_all(path.parent().expect("a parent"))?;
        fs::write(&path, text)?;
    }
    Ok(planted)
}

/// The report's key count and its keys by `verification.state` ("none" when absent); fails
/// unless it holds every planted key and no other.
fn read_report(
    report: &Value,
    planted: &BTreeMap<String, &'static str>,
    expected: usize,
) -> Result<(usize, BTreeMap<String, usize>)> {
    let Some(keys) = report["keys"].as_array() else {
        bail!("the report has no keys[] array");
    };
    let found: BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| k["fingerprint"].as_str())
        .collect();
    let mut missed: BTreeMap<&str, usize> = BTreeMap::new();
    for (fp, rule) in planted {
        if !found.contains(fp.as_str()) {
            *missed.entry(rule).or_default() += 1;
        }
    }
    if keys.len() != expected || !missed.is_empty() {
        bail!(
            "the report shows {} keys, {expected} were planted; missed by rule: {missed:?}",
            keys.len()
        );
    }
    let mut states = BTreeMap::new();
    for key in keys {
        let state = key["verification"]["state"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        *states.entry(state).or_default() += 1;
    }
    Ok((keys.len(), states))
}

fn median(runs: &[Run]) -> Duration {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    walls[walls.len() / 2]
}

fn print_tables(options: &Options, cold: &[Run], warm: &[Run], by_sni: &BTreeMap<String, usize>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let providers = VERIFIABLE_PROVIDERS.len().min(options.keys);
    println!(
        "`scan dir: --verify` of {} keys of {providers} providers in {} `.env` files, against a \
         local HTTPS provider (own CA, every host resolved to 127.0.0.1) answering 200 with a \
         small JSON body after {} ms; {cores} cores; {} run(s) each, median wall time. Cold: \
         an empty verification cache; warm: the last cold run's cache.\n",
        options.keys,
        FILES.min(options.keys),
        options.latency.as_millis(),
        options.runs,
    );
    println!(
        "| run | keys in report | providers | requests seen (per run) | wall s | keys/s | keys active | by verification state |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---|");
    for (label, runs) in [("cold", cold), ("warm (cached)", warm)] {
        let wall = median(runs);
        let last = runs.last().expect("runs");
        let requests: Vec<String> = runs.iter().map(|r| r.requests.to_string()).collect();
        let states: Vec<String> = last
            .states
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        println!(
            "| {label} | {} | {providers} | {} | {:.2} | {:.0} | {} | {} |",
            last.report_keys,
            requests.join(", "),
            wall.as_secs_f64(),
            last.report_keys as f64 / wall.as_secs_f64(),
            last.active(),
            states.join(", "),
        );
    }
    let planted_per_host = |host: &str| {
        let n = VERIFIABLE_PROVIDERS.len();
        let index = VERIFIABLE_PROVIDERS
            .iter()
            .position(|p| p.host == host)
            .expect("a provider host");
        options.keys / n + usize::from(index < options.keys % n)
    };
    println!("\nRequests the provider saw by SNI, all cold runs together:\n");
    println!("| provider | rule | host | keys planted (per run) | requests seen |");
    println!("|---|---|---|---:|---:|");
    for p in VERIFIABLE_PROVIDERS {
        println!(
            "| {} | {} | {} | {} | {} |",
            p.variable,
            p.rule,
            p.host,
            planted_per_host(p.host),
            by_sni.get(p.host).copied().unwrap_or(0)
        );
    }
    let others: usize = by_sni
        .iter()
        .filter(|(sni, _)| !VERIFIABLE_PROVIDERS.iter().any(|p| p.host == sni.as_str()))
        .map(|(_, n)| n)
        .sum();
    if others > 0 {
        println!("| (other SNI) | | | | {others} |");
    }
}

/// The last lines of a run's standard error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
