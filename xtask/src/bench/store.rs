//! `cargo xtask bench store`: the key inventory at an organisation's size. 10,000 reports (by
//! default) of 50 hosts, each host audited and its project scanned on alternate days (100
//! streams of runs); each report holds 50 keys in 2 places each (100 sightings: 1,000,000 in
//! all). Each host has 2,000 keys (100,000 in all) that enter its runs in a sliding window:
//! a key is seen in about 5 runs of two streams, leaves as "rotated" (fixed), and the first
//! keys of a host come back when the window wraps (reopened).
//!
//! The reports are real `detector/report/v1` JSON files made from the keys of
//! `tests/fixtures/report.json` (a real report: rules, providers, location shapes), with
//! made-up fingerprints and redacted previews (reports hold no secret), written once under
//! `target/bench-store/`. `detector store ingest` takes them 500 files per process, into a
//! SQLite file and into a PostgreSQL server of the kit's (on loopback, `fsync=off`); then
//! `detector report --store URL --format json -o FILE` renders the org report from each.
//! The table shows sightings per second and the report's wall time.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{child, workspace_root};

/// Hosts; each has an audit stream and a project-scan stream.
const HOSTS: usize = 50;
/// Distinct keys of one host.
const KEYS_PER_HOST: usize = 2_000;
/// Keys in one report, each in 2 places.
const KEYS_PER_REPORT: usize = 50;
/// How far a stream's window of keys moves from one run to the next.
const STEP: usize = 20;
/// Report files per `detector store ingest` process.
const BATCH: usize = 500;
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600;
const DAY: i64 = 86_400;

pub struct Options {
    pub reports: usize,
    pub binary: Option<PathBuf>,
}

struct Measured {
    ingest: Duration,
    report: Duration,
    report_mib: f64,
    runs: u64,
    keys: u64,
}

pub fn run(options: Options) -> Result<()> {
    if options.reports == 0 {
        bail!("--reports must be at least 1");
    }
    let root = workspace_root();
    let detector = match &options.binary {
        Some(binary) => binary.clone(),
        None => crate::target_dir().join("release/detector"),
    };
    if !detector.is_file() {
        bail!(
            "{} is missing: build it first (cargo build --release -p detector)",
            detector.display()
        );
    }
    let files = reports(&root, options.reports)?;
    let sightings = (files.len() * KEYS_PER_REPORT * 2) as f64;
    let expected_keys = expected_keys(options.reports);
    let work = tempfile::Builder::new()
        .prefix("bench-store-")
        .tempdir()
        .context("temp dir")?;

    eprintln!("bench: ingesting {} reports into SQLite", files.len());
    let sqlite_url = format!("sqlite:{}", work.path().join("inventory.sqlite").display());
    let sqlite = measure(&detector, &sqlite_url, &files, work.path())?;

    eprintln!("bench: starting PostgreSQL");
    let password = "bench-store";
    let postgres =
        kit::db::Postgres::start(password).map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
    eprintln!("bench: ingesting {} reports into PostgreSQL", files.len());
    let pg = measure(&detector, &postgres.url(password), &files, work.path())?;
    drop(postgres);

    println!(
        "The key inventory: {} reports ({} hosts, {} streams), {} sightings of {} keys, ingested {BATCH} files per `detector store ingest`; {} cores.\n",
        files.len(),
        HOSTS.min(files.len()),
        (2 * HOSTS).min(files.len()),
        sightings as u64,
        expected_keys,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| store | ingest wall time | sightings/s | reports/s | org report (`report --store … --format json`) | report size | runs, keys in the report |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, m) in [("SQLite (WAL)", &sqlite), ("PostgreSQL 15 (loopback)", &pg)] {
        println!(
            "| {name} | {:.1} s | {:.0} | {:.0} | {:.2} s | {:.1} MiB | {}, {} |",
            m.ingest.as_secs_f64(),
            sightings / m.ingest.as_secs_f64(),
            files.len() as f64 / m.ingest.as_secs_f64(),
            m.report.as_secs_f64(),
            m.report_mib,
            m.runs,
            m.keys
        );
    }
    for (name, m) in [("SQLite", &sqlite), ("PostgreSQL", &pg)] {
        if m.runs != files.len() as u64 || m.keys != expected_keys as u64 {
            bail!(
                "{name}: the report shows {} runs and {} keys, not {} and {expected_keys}",
                m.runs,
                m.keys,
                files.len()
            );
        }
    }
    println!(
        "\nGoals: ≥ 20000 sightings/s into PostgreSQL ({:.0}: {}); org report < 2 s (SQLite {:.2} s, PostgreSQL {:.2} s).",
        sightings / pg.ingest.as_secs_f64(),
        if sightings / pg.ingest.as_secs_f64() >= 20_000.0 {
            "met"
        } else {
            "missed"
        },
        sqlite.report.as_secs_f64(),
        pg.report.as_secs_f64()
    );
    println!("\n`cargo xtask bench store --reports {}`", options.reports);
    Ok(())
}

/// Ingest every file into `url`, then render the org report from it.
fn measure(detector: &Path, url: &str, files: &[PathBuf], work: &Path) -> Result<Measured> {
    let home = work.join("home");
    fs::create_dir_all(&home)?;
    let mut ingest = Duration::ZERO;
    for batch in files.chunks(BATCH) {
        let mut cmd = Command::new(detector);
        cmd.args(["store", "ingest", "--store", url])
            .args(batch)
            .env("HOME", &home)
            .env_remove("DETECTOR_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let waited = child::wait(&mut cmd, None)?;
        if !waited.status.success() {
            bail!(
                "`detector store ingest` of {} files into {url} failed ({}): run it by hand to see why",
                batch.len(),
                waited.status
            );
        }
        ingest += waited.wall;
    }
    let out = work.join("org-report.json");
    let mut cmd = Command::new(detector);
    cmd.args(["report", "--store", url, "--format", "json", "-o"])
        .arg(&out)
        .env("HOME", &home)
        .env_remove("DETECTOR_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let waited = child::wait(&mut cmd, None)?;
    if !waited.status.success() {
        bail!("`detector report --store` failed ({})", waited.status);
    }
    let bytes = fs::read(&out).with_context(|| format!("cannot read {}", out.display()))?;
    let inventory: Value = serde_json::from_slice(&bytes).context("the org report")?;
    fs::remove_file(&out)?;
    Ok(Measured {
        ingest,
        report: waited.wall,
        report_mib: bytes.len() as f64 / (1024.0 * 1024.0),
        runs: inventory["runs"].as_u64().unwrap_or(0),
        keys: inventory["keys"].as_array().map_or(0, |k| k.len() as u64),
    })
}

/// Distinct keys in the first `reports` reports.
fn expected_keys(reports: usize) -> usize {
    let mut seen = std::collections::HashSet::new();
    for r in 0..reports {
        let (host, audit, i) = stream_of(r);
        for j in window(audit, i) {
            seen.insert((host, j));
        }
    }
    seen.len()
}

/// Report `r`: its host, whether it is the host's audit (else the project scan), and its
/// index in its stream.
fn stream_of(r: usize) -> (usize, bool, usize) {
    let stream = r % (2 * HOSTS);
    (stream / 2, stream.is_multiple_of(2), r / (2 * HOSTS))
}

/// The keys (indexes into the host's keys) of run `i` of a stream.
fn window(audit: bool, i: usize) -> impl Iterator<Item = usize> {
    let start = i * STEP + if audit { 0 } else { STEP + STEP / 4 };
    (start..start + KEYS_PER_REPORT).map(|j| j % KEYS_PER_HOST)
}

/// The report files (made once, reused while complete).
fn reports(root: &Path, count: usize) -> Result<Vec<PathBuf>> {
    let dir = root.join(format!("target/bench-store/reports-{count}"));
    let files: Vec<PathBuf> = (0..count)
        .map(|r| dir.join(format!("r{r:06}.json")))
        .collect();
    let marker = dir.join("complete");
    if marker.is_file() {
        return Ok(files);
    }
    eprintln!("bench: writing {count} reports to {}", dir.display());
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let fixture = root.join("tests/fixtures/report.json");
    let template: Value = serde_json::from_slice(
        &fs::read(&fixture).with_context(|| format!("cannot read {}", fixture.display()))?,
    )?;
    let rules = template["keys"]
        .as_array()
        .context("the fixture has no keys")?
        .clone();
    for (r, path) in files.iter().enumerate() {
        let report = report(&template, &rules, r);
        fs::write(path, serde_json::to_vec(&report)?)?;
    }
    fs::write(&marker, "")?;
    Ok(files)
}

/// Report `r` of the set.
fn report(template: &Value, rules: &[Value], r: usize) -> Value {
    let (host, audit, i) = stream_of(r);
    let at = BASE + (2 * i as i64 + i64::from(!audit)) * DAY + host as i64 * 60;
    let project = format!("/srv/h{host:02}/app");
    // The first STEP keys of the window are not in the stream's next run: they leave rotated.
    let keys: Vec<Value> = window(audit, i)
        .enumerate()
        .map(|(n, j)| key(&rules[j % rules.len()], host, j, at, n < STEP, &project))
        .collect();
    let mut report = template.clone();
    report["generated_at"] = json!(rfc3339(at));
    report["host"] = json!(format!("bench-host-{host:02}.example"));
    report["scope"] = json!(if audit {
        "audit".to_string()
    } else {
        format!("scan dir:{project}")
    });
    let mut target = template["targets"][0].clone();
    target["target"] = json!(format!("dir:{project}"));
    target["kind"] = json!("dir");
    report["targets"] = json!([target]);
    report["mcp_servers"] = json!([]);
    report["summary"]["keys"] = json!(keys.len());
    report["keys"] = json!(keys);
    report
}

/// Key `j` of `host` as run time `at` sees it: live in a file and the git history, or (in the
/// run it leaves) rotated, in history only.
fn key(rule: &Value, host: usize, j: usize, at: i64, rotated: bool, project: &str) -> Value {
    let mut key = rule.clone();
    let id = mix((host * KEYS_PER_HOST + j) as u64);
    let hex = |salt: u64, n: usize| -> String {
        (0..n.div_ceil(16))
            .map(|k| format!("{:016x}", mix(id ^ salt.wrapping_add(k as u64))))
            .collect::<String>()[..n]
            .to_string()
    };
    let prefix: String = rule["redacted"]
        .as_str()
        .unwrap_or("key_")
        .chars()
        .take_while(|c| *c != '…')
        .collect();
    let commit = hex(1, 40);
    let path = format!("config/k{j:04}.env");
    let file = json!({
        "column": 14, "dev": 65024, "inode": 1_000_000 + j, "kind": "file",
        "line": 1 + j % 40, "mode": "0600", "mtime": rfc3339(BASE),
        "path": format!("{project}/{path}"), "readable_by_others": false,
        "slot": format!("API_KEY_{j}"),
    });
    let git = |commit: &str, in_head: bool| {
        json!({
            "blob": hex(2, 40), "column": 14, "commit": commit,
            "commit_time": rfc3339(BASE), "in_head": in_head, "kind": "git",
            "line": 1 + j % 40, "path": path, "reachable": true,
            "refs": ["refs/heads/main"], "slot": format!("API_KEY_{j}"),
        })
    };
    key["fingerprint"] = json!(format!("hmac-sha256:{}", hex(0, 64)));
    key["redacted"] = json!(format!("{prefix}…{}", hex(3, 4)));
    key["first_seen"] = json!(rfc3339(BASE));
    key["last_seen"] = json!(rfc3339(at));
    key["age_days"] = json!((at - BASE) / DAY);
    key["overdue"] = json!(false);
    key["slots"] = json!([format!("API_KEY_{j}")]);
    let environment = ["production", "staging", "development"][j % 3];
    let projects = if j.is_multiple_of(7) {
        json!([project, format!("{project}-worker")])
    } else {
        json!([project])
    };
    key["scope"] = json!({"environments": [environment], "mcp_servers": [], "projects": projects});
    key["remediation"] = json!([]);
    key["accessed_by"] = json!([]);
    if let Some(object) = key.as_object_mut() {
        object.remove("verification");
        object.remove("rotated_to");
    }
    if rotated {
        key["status"] = json!("rotated");
        key["violations"] = json!(["in-git-history"]);
        let mut added = git(&commit, false);
        added["removed_in"] = json!(hex(4, 40));
        key["locations"] = json!([added, git(&hex(5, 40), false)]);
    } else {
        key["status"] = json!("live");
        key["violations"] = json!(["in-git-history"]);
        key["locations"] = json!([file, git(&commit, true)]);
    }
    key
}

/// splitmix64: well-spread made-up digests.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(DAY);
    let rest = seconds.rem_euclid(DAY);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(BASE), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(BASE + 59 * DAY + 3661), "2026-03-01T01:01:01Z");
    }

    #[test]
    fn the_default_set_has_100000_keys() {
        assert_eq!(expected_keys(10_000), 100_000);
    }
}
