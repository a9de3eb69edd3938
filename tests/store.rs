//! The key inventory on both backends, with one test body: real SQLite files and a real
//! PostgreSQL server the kit starts. Reports are made by real scans; their `generated_at` is
//! set to the days the story needs before they are ingested, so that first detection, the
//! fix and the time to fix can be checked to the day.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
};

use kit::{
    keys::{key, ALNUM},
    run::{json, stderr},
};
use serde_json::Value;

use crate::DETECTOR;

const ORG_KEY: &str = "store-test-org";

fn detector(args: &[&str], home: &Path) -> Output {
    let mut cmd = kit::run::detector_command(Path::new(DETECTOR), args, home, Some(ORG_KEY));
    cmd.env_remove("DETECTOR_STORE");
    kit::run::run_with_deadline(cmd, kit::run::deadline(), &args.join(" "))
}

/// A scan of `dir` saved to `out` as if made on `day` (`2026-01-01`).
fn report_on(dir: &Path, home: &Path, day: &str, out: &Path) {
    let scan = detector(
        &[
            "scan",
            &format!("dir:{}", dir.display()),
            "--format",
            "json",
            "-o",
            &out.display().to_string(),
        ],
        home,
    );
    assert!(
        scan.status.code().is_some_and(|c| c < 2),
        "{}",
        stderr(&scan)
    );
    let mut report: Value = serde_json::from_slice(&fs::read(out).unwrap()).unwrap();
    report["generated_at"] = Value::from(format!("{day}T09:00:00Z"));
    fs::write(out, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
}

/// `detector scan dir:DIR --store STORE --format json`: a live run recorded.
fn scan_into(dir: &Path, store: &str, home: &Path) -> Output {
    detector(
        &[
            "scan",
            &format!("dir:{}", dir.display()),
            "--store",
            store,
            "--format",
            "json",
        ],
        home,
    )
}

fn inventory(store: &str, home: &Path) -> Value {
    let out = detector(&["report", "--store", store, "--format", "json"], home);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    json(&out)
}

fn key_in<'a>(inventory: &'a Value, secret: &str) -> &'a Value {
    let fingerprint = kit::keys::fingerprint(ORG_KEY.as_bytes(), secret);
    inventory["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == fingerprint.as_str())
        .unwrap_or_else(|| panic!("no key {fingerprint} in {inventory:#}"))
}

fn ingest(store: &str, home: &Path, file: &Path) -> String {
    let out = detector(
        &[
            "store",
            "ingest",
            "--store",
            store,
            &file.display().to_string(),
        ],
        home,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stderr(&out)
}

/// The story: a key seen in three audits, rotated, then the new key gone; the old key back in
/// a sixth. `dump` gives everything the store holds, to look for secrets in.
fn a_key_over_time(store: &str, dump: &dyn Fn() -> String) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("app");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&dir).unwrap();
    let old = key("ghp_", ALNUM, 36, 3101);
    let new = key("ghp_", ALNUM, 36, 3102);
    let env = dir.join(".env");
    let reports: Vec<PathBuf> = (1..=6)
        .map(|i| tmp.path().join(format!("r{i}.json")))
        .collect();
    let story = [
        ("2026-01-01", Some(&old)),
        ("2026-01-10", Some(&old)),
        ("2026-01-20", Some(&old)),
        ("2026-02-01", Some(&new)),
        ("2026-02-10", None),
        ("2026-03-01", Some(&old)),
    ];
    for ((day, key), out) in story.iter().zip(&reports) {
        match key {
            Some(k) => fs::write(&env, format!("GITHUB_TOKEN={k}\n")).unwrap(),
            None => fs::write(&env, "GITHUB_TOKEN=${GITHUB_TOKEN}\n").unwrap(),
        }
        report_on(&dir, &home, day, out);
    }
    // Out of order, to show the order of ingest does not matter.
    for i in [2, 0, 1, 4, 3] {
        ingest(store, &home, &reports[i]);
    }
    let again = ingest(store, &home, &reports[0]);
    assert!(again.contains("already recorded"), "{again}");

    let five = inventory(store, &home);
    assert_eq!(five["runs"], 5, "the same report twice is one run");
    let old_key = key_in(&five, &old);
    assert_eq!(old_key["first_detected"], "2026-01-01T09:00:00Z");
    assert_eq!(old_key["last_seen"], "2026-01-20T09:00:00Z");
    assert_eq!(old_key["fixed_at"], "2026-02-01T09:00:00Z");
    assert_eq!(old_key["time_to_fix_days"], 31);
    assert_eq!(old_key["state"], "fixed");
    assert_eq!(old_key["reopened"], 0);
    let new_key = key_in(&five, &new);
    assert_eq!(new_key["fixed_at"], "2026-02-10T09:00:00Z");
    assert_eq!(new_key["time_to_fix_days"], 9);
    assert_eq!(five["summary"]["open"], 0);
    assert_eq!(five["summary"]["fixed"], 2);
    assert_eq!(five["summary"]["mean_time_to_fix_days"], 20.0);
    assert_eq!(five["summary"]["median_time_to_fix_days"], 20.0);

    // It comes back.
    let said = ingest(store, &home, &reports[5]);
    assert!(said.contains("recorded as run"), "{said}");
    let six = inventory(store, &home);
    let old_key = key_in(&six, &old);
    assert_eq!(old_key["state"], "open");
    assert_eq!(old_key["reopened"], 1);
    assert_eq!(old_key["fixed_at"], Value::Null);
    assert_eq!(six["summary"]["open"], 1);

    // A live scan says what changed since the run before it of the same targets; another
    // directory is another scope, whose first run finds the key new to it but not to the
    // store.
    let live = |what: &str| {
        let out = scan_into(&dir, store, &home);
        let said = stderr(&out);
        assert!(said.contains(what), "{what}: {said}");
        out
    };
    // Its runs follow the ingested ones of the same targets: the key is still open, since
    // the first day.
    let first = live("0 new, 0 fixed, 0 reappeared, 1 still open");
    assert!(
        stderr(&first).contains("still open  ghp_"),
        "{}",
        stderr(&first)
    );
    fs::write(&env, "GITHUB_TOKEN=${GITHUB_TOKEN}\n").unwrap();
    live("0 new, 1 fixed, 0 reappeared, 0 still open");
    fs::write(&env, format!("GITHUB_TOKEN={old}\n")).unwrap();
    let out = live("0 new, 0 fixed, 1 reappeared, 0 still open");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join(".env"), format!("GITHUB_TOKEN={new}\n")).unwrap();
    let other = detector(
        &[
            "scan",
            &format!("dir:{}", elsewhere.display()),
            "--store",
            store,
        ],
        &home,
    );
    let said = stderr(&other);
    assert!(
        said.contains("first run of its kind: 0 new, 0 fixed, 1 reappeared"),
        "{said}"
    );
    // The summary is on standard error: the report on standard output is the report alone.
    assert!(json(&out)["keys"].is_array());

    // Filters: the runs of a recent period (the four live ones), the keys of one project.
    let filtered = |extra: &[&str]| {
        let mut args = vec!["report", "--store", store, "--format", "json"];
        args.extend_from_slice(extra);
        let out = detector(&args, &home);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json(&out)
    };
    assert_eq!(filtered(&["--since", "1d"])["runs"], 4);
    assert_eq!(filtered(&["--since", "1000d"])["runs"], 10);
    let project = dir.display().to_string();
    let of_project = filtered(&["--project", &project]);
    assert_eq!(
        of_project["keys"].as_array().unwrap().len(),
        2,
        "{of_project:#}"
    );
    let of_none = filtered(&["--project", "/no/such/project"]);
    assert_eq!(of_none["keys"].as_array().unwrap().len(), 0);

    // No secret anywhere in the store.
    kit::report::assert_no_secret(&dump(), [&old, &new], "the store");
}

#[test]
fn the_inventory_remembers_a_key_over_time_in_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("inventory.sqlite");
    let store = format!("sqlite:{}", path.display());
    a_key_over_time(&store, &|| {
        let mut all = Vec::new();
        for entry in fs::read_dir(tmp.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                all.extend(fs::read(path).unwrap());
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
}

#[test]
fn the_inventory_remembers_a_key_over_time_in_postgresql() {
    let password = kit::keys::random(ALNUM, 20, 3201);
    let server = match kit::db::Postgres::start(&password) {
        Ok(server) => server,
        Err(reason) => {
            kit::guard::skip(&format!("no PostgreSQL server: {reason}"));
            return;
        }
    };
    let url = server.url(&password);
    a_key_over_time(&url, &|| server.dump(&password));
}

#[test]
fn an_unreachable_store_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let dir = tmp.path().join("app");
    fs::create_dir_all(&dir).unwrap();
    let token = key("ghp_", ALNUM, 36, 3301);
    fs::write(dir.join(".env"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    // Nothing listens on port 1.
    let store = "postgresql://tester:pw@127.0.0.1:1/postgres";
    let out = scan_into(&dir, store, &home);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        !said.contains(":pw@"),
        "the password is not printed: {said}"
    );
    assert!(
        said.contains("postgresql://tester:***@127.0.0.1:1/postgres"),
        "{said}"
    );
    // The report is written all the same, and the run spooled for later.
    assert!(json(&out)["keys"].as_array().is_some_and(|k| k.len() == 1));
    let spooled = said
        .split("detector store ingest ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no spool file named: {said}"));
    let spooled = PathBuf::from(spooled.trim_matches('\''));
    assert!(spooled.is_file(), "{}", spooled.display());
    assert!(
        spooled.starts_with(home.join(".detector-spool")),
        "{}",
        spooled.display()
    );
    kit::report::assert_no_secret(
        &fs::read_to_string(&spooled).unwrap(),
        [&token],
        "the spool",
    );
    // Ingested later, it is the run that was missed.
    let later = format!("sqlite:{}", tmp.path().join("later.sqlite").display());
    ingest(&later, &home, &spooled);
    let inventory = inventory(&later, &home);
    assert_eq!(key_in(&inventory, &token)["state"], "open");
}

#[test]
fn a_store_of_a_newer_detector_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("inventory.sqlite");
    let store = format!("sqlite:{}", path.display());
    let home = tmp.path();
    inventory(&store, home);
    assert!(
        mark_future_schema(&path),
        "python3's sqlite3 could not be run"
    );
    let out = detector(&["report", "--store", &store, "--format", "json"], home);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("newer detector"), "{}", stderr(&out));
}

/// Mark the store as written by a future schema (with python3's sqlite3 module: another
/// program than detector writing the file, as a newer detector would).
fn mark_future_schema(path: &Path) -> bool {
    std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO schema_version VALUES (999, 0, \"future\")'); c.commit()",
        ])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Eight writers at once, each ingesting its own report into one PostgreSQL store (each
/// report shares keys and places with others): the inventory is what ingesting them one by
/// one into another store gives.
#[test]
fn eight_writers_at_once_lose_nothing() {
    let password = kit::keys::random(ALNUM, 20, 3401);
    let (together, one_by_one) = match (
        kit::db::Postgres::start(&password),
        kit::db::Postgres::start(&password),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(reason), _) | (_, Err(reason)) => {
            kit::guard::skip(&format!("no PostgreSQL server: {reason}"));
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let shared = key("ghp_", ALNUM, 36, 3410);
    let own: Vec<String> = (0..9).map(|i| key("ghp_", ALNUM, 36, 3420 + i)).collect();
    let mut reports = Vec::new();
    for i in 0..8 {
        // The same directory each time (the same places), holding other keys.
        let dir = tmp.path().join("app");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(".env"),
            format!(
                "GITHUB_TOKEN={shared}\nGH_A={}\nGH_B={}\n",
                own[i],
                own[i + 1]
            ),
        )
        .unwrap();
        let out = tmp.path().join(format!("r{i}.json"));
        report_on(&dir, &home, &format!("2026-01-0{}", i + 1), &out);
        reports.push(out);
    }
    let url = together.url(&password);
    let writers: Vec<std::process::Child> = reports
        .iter()
        .map(|report| {
            kit::run::detector_command(
                Path::new(DETECTOR),
                &[
                    "store",
                    "ingest",
                    "--store",
                    &url,
                    &report.display().to_string(),
                ],
                &home,
                Some(ORG_KEY),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for writer in writers {
        let out = writer.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let sequential = one_by_one.url(&password);
    for report in &reports {
        ingest(&sequential, &home, report);
    }
    let comparable = |store: &str| {
        let mut inventory = inventory(store, &home);
        let object = inventory.as_object_mut().unwrap();
        object.remove("store");
        object.remove("generated_at");
        inventory
    };
    let at_once = comparable(&url);
    assert_eq!(at_once["runs"], 8);
    assert_eq!(at_once["keys"].as_array().unwrap().len(), 10);
    assert_eq!(at_once, comparable(&sequential));
    assert_eq!(key_in(&at_once, &shared)["state"], "open");
    assert_eq!(
        key_in(&at_once, &own[0])["fixed_at"],
        "2026-01-02T09:00:00Z"
    );
}

/// A store made by the detector before this one (schema version 2, written here from that
/// version's own migrations) is brought up to date when it is opened, its runs kept.
#[test]
fn a_store_of_the_previous_version_is_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("inventory.sqlite");
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/migrations");
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL, tool_version TEXT NOT NULL)'); \
             [c.executescript(open(f'{sys.argv[2]}/{v}.sqlite.sql').read()) for v in (1, 2)]; \
             c.execute(\"INSERT INTO schema_version VALUES (1, 0, 'previous'), (2, 0, 'previous')\"); \
             c.execute(\"INSERT INTO run (host, scope, generated_at, recorded_at, tool_version, report_sha256, origin) VALUES ('old-host', 'audit', 1767225600, 1767225600, 'previous', 'aa', 'live')\"); \
             c.commit()",
        ])
        .arg(&path)
        .arg(migrations)
        .status()
        .unwrap();
    assert!(made.success());
    let store = format!("sqlite:{}", path.display());
    let migrated = inventory(&store, tmp.path());
    assert_eq!(migrated["runs"], 1, "the old run is kept: {migrated:#}");
    assert_eq!(migrated["hosts"][0], "old-host");
    assert_eq!(migrated["agent_events"], 0, "{migrated:#}");
    let versions = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print([r[0] for r in c.execute('SELECT version FROM schema_version ORDER BY version')]); \
             print([r[0] for r in c.execute(\"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('agent_event', 'chain_break') ORDER BY name\")])",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&versions.stdout);
    assert!(
        said.contains("[1, 2, 3]") && said.contains("['agent_event', 'chain_break']"),
        "{said}"
    );
}

/// A writer killed while its run is written but not committed leaves nothing of it, on both
/// backends, and the store takes the next writer at once.
fn a_killed_writer_leaves_no_partial_run(store: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("app");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&dir).unwrap();
    let token = key("ghp_", ALNUM, 36, 3501);
    fs::write(dir.join(".env"), format!("GITHUB_TOKEN={token}\n")).unwrap();
    let report = tmp.path().join("r.json");
    report_on(&dir, &home, "2026-01-01", &report);
    let marker = tmp.path().join("writing");
    let mut writer = kit::run::detector_command(
        Path::new(DETECTOR),
        &[
            "store",
            "ingest",
            "--store",
            store,
            &report.display().to_string(),
        ],
        &home,
        Some(ORG_KEY),
    )
    .env(
        "DETECTOR_TEST_BEFORE_COMMIT",
        format!("touch '{}'; sleep 30", marker.display()),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never got there"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let after = inventory(store, &home);
    assert_eq!(after["runs"], 0, "{after:#}");
    assert_eq!(after["keys"].as_array().unwrap().len(), 0);
    let said = ingest(store, &home, &report);
    assert!(said.contains("recorded as run"), "{said}");
    assert_eq!(inventory(store, &home)["runs"], 1);
}

#[test]
fn a_killed_writer_leaves_no_partial_run_in_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    a_killed_writer_leaves_no_partial_run(&format!(
        "sqlite:{}",
        tmp.path().join("inventory.sqlite").display()
    ));
}

#[test]
fn a_killed_writer_leaves_no_partial_run_in_postgresql() {
    let password = kit::keys::random(ALNUM, 20, 3601);
    match kit::db::Postgres::start(&password) {
        Ok(server) => a_killed_writer_leaves_no_partial_run(&server.url(&password)),
        Err(reason) => {
            kit::guard::skip(&format!("no PostgreSQL server: {reason}"));
        }
    }
}

/// Retention forgets old runs and the keys only they held, never a key still open.
#[test]
fn pruning_forgets_old_runs_but_never_an_open_key() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let store = format!("sqlite:{}", tmp.path().join("inventory.sqlite").display());
    let open = key("ghp_", ALNUM, 36, 3701);
    let fixed = key("ghp_", ALNUM, 36, 3702);
    let elsewhere = key("ghp_", ALNUM, 36, 3703);
    let app = tmp.path().join("app");
    let other = tmp.path().join("other");
    fs::create_dir_all(&app).unwrap();
    fs::create_dir_all(&other).unwrap();
    let recent = (chrono::Utc::now() - chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let runs = [
        (&app, "2025-01-01", format!("A={open}\nB={fixed}\n")),
        (&app, "2025-02-01", format!("A={open}\n")),
        (&other, "2025-01-15", format!("C={elsewhere}\n")),
        (&other, "2025-01-20", String::new()),
        (&app, recent.as_str(), format!("A={open}\n")),
    ];
    for (i, (dir, day, env)) in runs.iter().enumerate() {
        let env = env
            .replace("A=", "GITHUB_TOKEN=")
            .replace("B=", "GH_TOKEN=")
            .replace("C=", "GITHUB_PAT=");
        fs::write(dir.join(".env"), env).unwrap();
        let out = tmp.path().join(format!("r{i}.json"));
        report_on(dir, &home, day, &out);
        ingest(&store, &home, &out);
    }
    let out = detector(
        &["store", "prune", "--keep-days", "30", "--store", &store],
        &home,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("forgot 2 runs, 2 keys"),
        "{}",
        stderr(&out)
    );
    let after = inventory(&store, &home);
    assert_eq!(after["runs"], 3, "{after:#}");
    let kept = key_in(&after, &open);
    assert_eq!(kept["state"], "open");
    assert_eq!(kept["first_detected"], "2025-01-01T09:00:00Z");
    assert_eq!(after["keys"].as_array().unwrap().len(), 1);
}
