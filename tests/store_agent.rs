//! The agent's logs in the key inventory, on both backends with one test body: a log the real
//! `detector agent` wrote on the real kernel is ingested with `detector store ingest` (its
//! records once, however often), a copy with a record cut out gives the records after the cut
//! and the break, said as `detector log verify` says it, and the store holds no secret.
//!
//! Needs root, BPF and BTF, like the agent's own tests (tests/agent_log.rs makes the log).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use kit::{
    guard::kernel_available,
    keys::ALNUM,
    run::{stderr, stdout},
};
use serde_json::Value;

use crate::{agent_log::Setup, store::inventory, DETECTOR};

const ORG_KEY: &str = "store-agent-test-org";

fn detector(args: &[&str], home: &Path) -> Output {
    let mut cmd = kit::run::detector_command(Path::new(DETECTOR), args, home, Some(ORG_KEY));
    cmd.env_remove("DETECTOR_STORE");
    kit::run::run_with_deadline(cmd, kit::run::deadline(), &args.join(" "))
}

/// `detector store ingest --store STORE FILE…`: its exit code and what it said.
fn ingest(store: &str, home: &Path, files: &[&Path]) -> (Option<i32>, String) {
    let mut args = vec![
        "store".to_string(),
        "ingest".into(),
        "--store".into(),
        store.into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = detector(&args, home);
    (out.status.code(), stderr(&out))
}

/// The problems `detector log verify FILE` names, one line each.
fn verify_says(file: &Path) -> Vec<String> {
    let out = detector(
        &["log", "verify", &file.display().to_string()],
        Path::new("/"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let place = format!("{}:", file.display());
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with(&place))
        .map(str::to_string)
        .collect()
}

/// The story: a copy of the log with one record cut out is ingested (twice), then the whole
/// log (twice) beside a report of the watched config. `dump` gives what the store holds, in a
/// form that is equal when nothing changed; `raw` everything it holds, to look for secrets in.
fn agent_log_into(store: &str, dump: &dyn Fn() -> String, raw: &dyn Fn() -> String) {
    if !kernel_available() {
        return;
    }
    let setup = Setup::new();
    setup.run(&setup.events, &[], 12);
    let dir = setup.dir.path();
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let text = fs::read_to_string(&setup.events).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let host = records[0]["host"]
        .as_str()
        .expect("records name their host");
    let opens: Vec<usize> = (0..records.len())
        .filter(|&i| records[i]["type"] == "open")
        .collect();
    assert!(opens.len() >= 12, "{text}");

    // A record cut out of the middle: the chain breaks there, and what follows still counts.
    let cut = opens[5];
    let mut tampered_lines = lines.clone();
    tampered_lines.remove(cut);
    let tampered = dir.join("tampered.jsonl");
    fs::write(&tampered, tampered_lines.join("\n") + "\n").unwrap();
    let breaks = verify_says(&tampered);
    assert_eq!(breaks.len(), 1, "{breaks:?}");

    let (code, said) = ingest(store, &home, &[&tampered]);
    assert_eq!(
        code,
        Some(1),
        "a broken chain exits 1, as `log verify` does: {said}"
    );
    let t = tampered.display();
    let n = lines.len() - 1;
    assert!(
        said.contains(&format!(
            "detector: {t}: {n} agent records from {host} ({n} new), 1 chain break (1 new)"
        )),
        "{said}"
    );
    let printed: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with(&format!("{t}:")))
        .collect();
    assert_eq!(
        printed, breaks,
        "each break as `log verify` says it: {said}"
    );
    let after = inventory(store, &home);
    assert_eq!(
        after["agent_events"], n,
        "the records after the cut too: {after:#}"
    );
    let stored = after["chain_breaks"].as_array().unwrap();
    assert_eq!(stored.len(), 1, "{after:#}");
    assert_eq!(stored[0]["what"], breaks[0].as_str());
    assert_eq!(stored[0]["host"], host);
    assert_eq!(stored[0]["line"], cut + 1);
    assert_eq!(stored[0]["seq"], cut + 1);

    let before = dump();
    let (code, said) = ingest(store, &home, &[&tampered]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("(0 new), 1 chain break (0 new)"), "{said}");
    assert_eq!(
        dump(),
        before,
        "ingesting the same log again changed the store"
    );

    // The whole log, beside a report of the config it watched: one command takes both.
    let report = dir.join("report.json");
    let scan = detector(
        &[
            "scan",
            &format!("file:{}", setup.watched.display()),
            "--format",
            "json",
            "-o",
            &report.display().to_string(),
        ],
        &home,
    );
    assert!(
        scan.status.code().is_some_and(|c| c < 2),
        "{}",
        stderr(&scan)
    );
    let (code, said) = ingest(store, &home, &[&report, &setup.events]);
    assert_eq!(code, Some(0), "{said}");
    let e = setup.events.display();
    let all = lines.len();
    assert!(said.contains("recorded as run"), "{said}");
    assert!(
        said.contains(&format!(
            "detector: {e}: {all} agent records from {host} (1 new), 0 chain breaks"
        )),
        "only the record cut out is new: {said}"
    );
    let before = dump();
    let (code, said) = ingest(store, &home, &[&setup.events, &report]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("(0 new), 0 chain breaks"), "{said}");
    assert!(said.contains("already recorded"), "{said}");
    assert_eq!(
        dump(),
        before,
        "ingesting the same files again changed the store"
    );
    let inventory = inventory(store, &home);
    assert_eq!(inventory["agent_events"], all);
    assert_eq!(inventory["chain_breaks"].as_array().unwrap().len(), 1);
    assert_eq!(
        inventory["keys"].as_array().unwrap().len(),
        1,
        "{inventory:#}"
    );
    // Who read the key: the opens of the watched config on this host, by program.
    let watched = setup.watched.display().to_string();
    let opened: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "open" && r["file"] == watched.as_str())
        .collect();
    assert!(!opened.is_empty(), "{text}");
    let read_by = inventory["keys"][0]["read_by"].as_array().unwrap();
    assert!(!read_by.is_empty(), "{inventory:#}");
    let reads: u64 = read_by.iter().map(|r| r["reads"].as_u64().unwrap()).sum();
    assert_eq!(
        reads,
        opened.len() as u64,
        "every open of the watched config, once: {inventory:#}"
    );
    for read in read_by {
        assert_eq!(read["host"], host, "{read:#}");
        assert_eq!(read["path"], watched.as_str(), "{read:#}");
        let by = |r: &Value| (r["comm"].clone(), r["exe"].clone(), r["uid"].clone());
        let of_it = opened.iter().filter(|r| by(r) == by(read)).count() as u64;
        assert_eq!(read["reads"], of_it, "the opens of one program: {read:#}");
    }
    let text = detector(&["report", "--store", store, "--format", "text"], &home);
    assert!(
        stdout(&text).contains(&format!("  chain break on {host}: {}\n", breaks[0])),
        "{}",
        stdout(&text)
    );
    let first = &read_by[0];
    assert!(
        stdout(&text).contains(&format!(
            "read by {} ({}, uid {}) opened {watched} on {host} {} time",
            first["comm"].as_str().unwrap(),
            first["exe"].as_str().unwrap(),
            first["uid"],
            first["reads"]
        )),
        "{}",
        stdout(&text)
    );

    // The secret was in the watched config and in every opener's environment: not in the store.
    kit::report::assert_no_secret(&raw(), [&setup.secret], "the store");
    kit::report::assert_no_secret(&dump(), [&setup.secret], "the store's dump");
}

/// Every row of a SQLite store, as SQL (python3's sqlite3 `iterdump`).
fn sqlite_dump(path: &Path) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print('\\n'.join(c.iterdump()))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Every byte of the files in `dir` (the database, its WAL).
fn bytes_in(dir: &Path) -> String {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        if path.is_file() {
            all.extend(fs::read(path).unwrap());
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn an_agent_log_goes_into_the_inventory_once_with_its_breaks_in_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("inventory.sqlite");
    let store = format!("sqlite:{}", path.display());
    agent_log_into(&store, &|| sqlite_dump(&path), &|| bytes_in(tmp.path()));
}

#[test]
fn an_agent_log_goes_into_the_inventory_once_with_its_breaks_in_postgresql() {
    let password = kit::keys::random(ALNUM, 20, 3801);
    let Some(server) = kit::db::Postgres::start_or_skip(&password) else {
        return;
    };
    let url = server.url(&password);
    let raw = || server.dump(&password);
    // pg_dump writes a new random `\restrict` key into every dump: not the store's.
    let dump = || {
        raw()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    agent_log_into(&url, &dump, &raw);
}
