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

/// The store's inventory, valid against `schema/inventory-v1.json`.
pub(crate) fn inventory(store: &str, home: &Path) -> Value {
    let out = detector(&["report", "--store", store, "--format", "json"], home);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let inventory = json(&out);
    crate::schema::assert_valid(
        &crate::schema::schema("inventory-v1.json"),
        &inventory,
        "the inventory",
    );
    inventory
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
    // Open keys over time, one point per day with runs; the GitHub token is critical.
    let trend: Vec<(String, u64, u64)> = six["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["date"].as_str().unwrap().to_string(),
                p["open"].as_u64().unwrap(),
                p["critical"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, u64)> = [
        ("2026-01-01", 1),
        ("2026-01-10", 1),
        ("2026-01-20", 1),
        ("2026-02-01", 1),
        ("2026-02-10", 0),
        ("2026-03-01", 1),
    ]
    .iter()
    .map(|(d, n)| (d.to_string(), *n, *n))
    .collect();
    assert_eq!(trend, expected);
    // Time to fix: the new key's nine days, in February; the old key is open again.
    assert_eq!(six["time_to_fix"]["buckets"]["8-30"], 1);
    assert_eq!(six["time_to_fix"]["by_month"][0]["month"], "2026-02");
    assert_eq!(six["time_to_fix"]["by_month"][0]["median_days"], 9.0);
    // Nothing happened in the last seven days: the old key is open from before them.
    let changes = &six["changes"];
    assert_eq!(changes["new"].as_array().unwrap().len(), 0, "{changes:#}");
    let still: Vec<&Value> = changes["still_open"].as_array().unwrap().iter().collect();
    assert_eq!(still.len(), 1, "{changes:#}");
    assert_eq!(still[0]["fingerprint"], key_in(&six, &old)["fingerprint"]);
    assert_eq!(still[0]["at"], "2026-01-01T09:00:00Z");
    // Where it is now: the .env of the latest run of its scope.
    let now = key_in(&six, &old)["now"].as_array().unwrap();
    assert_eq!(now.len(), 1, "{now:#?}");
    assert_eq!(now[0]["path"], env.display().to_string());

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
    // Each live scan is a run of its own, though the first and the third found the same
    // (within one second, their reports' bytes are alike).
    assert_eq!(inventory(store, &home)["runs"], 10);

    // Filters: the runs of a recent period (the four live ones), the keys of one project.
    let filtered = |extra: &[&str]| {
        let mut args = vec!["report", "--store", store, "--format", "json"];
        args.extend_from_slice(extra);
        let out = detector(&args, &home);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let inventory = json(&out);
        crate::schema::assert_valid(
            &crate::schema::schema("inventory-v1.json"),
            &inventory,
            "a filtered inventory",
        );
        inventory
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
    let Some(server) = kit::db::Postgres::start_or_skip(&password) else {
        return;
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
        // The default period ends now: a second apart, the two reads differ there.
        object["changes"].as_object_mut().unwrap().remove("since");
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

/// A store made by the detector before this one (schema version 3, written here from that
/// version's own migrations) is brought up to date when it is opened, its runs and agent
/// records kept.
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
             [c.executescript(open(f'{sys.argv[2]}/{v}.sqlite.sql').read()) for v in (1, 2, 3)]; \
             c.execute(\"INSERT INTO schema_version VALUES (1, 0, 'previous'), (2, 0, 'previous'), (3, 0, 'previous')\"); \
             c.execute(\"INSERT INTO agent_event (host, seq, hash, time, kind, file, line) VALUES ('old-host', 1, 'bb', 1767225600, 'open', '/var/log/detector/events.jsonl', 1)\"); \
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
    assert_eq!(migrated["agent_events"], 1, "{migrated:#}");
    let versions = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print([r[0] for r in c.execute('SELECT version FROM schema_version ORDER BY version')]); \
             print([r[1] for r in c.execute('PRAGMA table_info(agent_event)') if r[1] == 'prev'])",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&versions.stdout);
    assert!(
        said.contains("[1, 2, 3, 4]") && said.contains("['prev']"),
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
    if let Some(server) = kit::db::Postgres::start_or_skip(&password) {
        a_killed_writer_leaves_no_partial_run(&server.url(&password));
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

/// The org report from the store in every format. A story of four keys over two months
/// (critical GitHub tokens, high Hugging Face tokens), then a live run today; the HTML page is
/// opened in headless Chromium: the trend and time-to-fix charts hold the story's numbers
/// (read back from the page), its script ran, and it asked for nothing.
#[test]
fn the_store_report_shows_trends_and_what_changed_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = tmp.path().join("app");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", tmp.path().join("inventory.sqlite").display());
    let a = key("ghp_", ALNUM, 36, 3201);
    let b = key("hf_", ALNUM, 34, 3202);
    let c = key("hf_", ALNUM, 34, 3203);
    let d = key("ghp_", ALNUM, 36, 3204);
    let env = dir.join(".env");
    let story: [(&str, &[&str]); 4] = [
        ("2026-01-01", &[&a, &b]),
        ("2026-01-05", &[&a]),
        ("2026-02-10", &[]),
        ("2026-02-20", &[&c]),
    ];
    for (i, (day, keys)) in story.iter().enumerate() {
        let lines: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| format!("TOKEN_{n}={k}\n"))
            .collect();
        fs::write(&env, lines.concat()).unwrap();
        let out = tmp.path().join(format!("r{i}.json"));
        report_on(&dir, &home, day, &out);
        ingest(&store, &home, &out);
    }
    // Today: the Hugging Face token is gone, a new GitHub token is in.
    fs::write(&env, format!("TOKEN={d}\n")).unwrap();
    let live = scan_into(&dir, &store, &home);
    assert_eq!(live.status.code(), Some(1), "{}", stderr(&live));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();

    let render = |format: &str| -> String {
        let out = detector(&["report", "--store", &store, "--format", format], &home);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        kit::report::assert_no_secret(&text, [&a, &b, &c, &d], format);
        text
    };
    let inventory: Value = serde_json::from_str(&render("json")).unwrap();
    crate::schema::assert_valid(
        &crate::schema::schema("inventory-v1.json"),
        &inventory,
        "the inventory",
    );
    let trend: Vec<(String, u64, u64, u64)> = inventory["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap();
            (
                p["date"].as_str().unwrap().to_string(),
                n("open"),
                n("critical"),
                n("high"),
            )
        })
        .collect();
    let expected = vec![
        ("2026-01-01".to_string(), 2, 1, 1),
        ("2026-01-05".to_string(), 1, 1, 0),
        ("2026-02-10".to_string(), 0, 0, 0),
        ("2026-02-20".to_string(), 1, 0, 1),
        (today.clone(), 1, 1, 0),
    ];
    assert_eq!(trend, expected, "{inventory:#}");
    // B fixed after 4 days in January, A after 40 in February, C today.
    let months: Vec<(String, u64)> = inventory["time_to_fix"]["by_month"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap().to_string(),
                m["fixed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(months[0], ("2026-01".to_string(), 1));
    assert_eq!(months[1], ("2026-02".to_string(), 1));
    assert_eq!(inventory["time_to_fix"]["by_month"][0]["median_days"], 4.0);
    assert_eq!(inventory["time_to_fix"]["by_month"][1]["median_days"], 40.0);
    // What changed in the last seven days: D new, C fixed.
    let fingerprints = |list: &str| -> Vec<String> {
        inventory["changes"][list]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    let fp = |secret: &str| kit::keys::fingerprint(ORG_KEY.as_bytes(), secret);
    assert_eq!(fingerprints("new"), vec![fp(&d)]);
    assert_eq!(fingerprints("fixed"), vec![fp(&c)]);
    assert!(fingerprints("reappeared").is_empty());
    assert!(fingerprints("still_open").is_empty());

    // Text and Markdown say the same.
    let text = render("text");
    assert!(
        text.contains("1 new, 1 fixed, 0 reappeared, 0 still open"),
        "{text}"
    );
    let markdown = render("markdown");
    assert!(markdown.starts_with("# detector inventory"), "{markdown}");
    assert!(
        markdown.contains("| 2026-01-01 | 2 | 1 | 1 | 0 | 0 |"),
        "{markdown}"
    );
    assert!(markdown.contains("- **New**: 1"), "{markdown}");
    // SARIF: the one open key, at its place now, valid against SARIF's schema.
    let sarif: Value = serde_json::from_str(&render("sarif")).unwrap();
    crate::schema::assert_valid(
        &crate::schema::schema("sarif-2.1.0.json"),
        &sarif,
        "the store's SARIF",
    );
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{sarif:#}");
    assert_eq!(results[0]["partialFingerprints"]["detectorKey/v1"], fp(&d));
    assert_eq!(results[0]["level"], "error");
    let uri = results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with("app/.env"), "{uri}");

    // HTML, in Chromium.
    let page_path = tmp.path().join("inventory.html");
    let out = detector(
        &[
            "report",
            "--store",
            &store,
            "--format",
            "html",
            "-o",
            &page_path.display().to_string(),
        ],
        &home,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = fs::read_to_string(&page_path).unwrap();
    kit::report::assert_no_secret(&html, [&a, &b, &c, &d], "the HTML inventory");
    let page = kit::chromium::open(&page_path, "", &tmp.path().join("chromium"));
    assert!(page.dom.contains("data-rendered=\"ok\""), "{}", page.log);
    assert!(!page.dom.contains("data-script-error=\""), "{}", page.dom);
    assert!(page.console().is_empty(), "{:#?}", page.console());
    assert!(
        page.requests.is_empty(),
        "the page asked for {:?}",
        page.requests
    );
    // The charts' numbers, read back from the page's DOM.
    let day = regex::Regex::new(
        r#"<g class="day" data-date="([0-9-]+)" data-open="(\d+)" data-critical="(\d+)" data-high="(\d+)""#,
    )
    .unwrap();
    let drawn: Vec<(String, u64, u64, u64)> = day
        .captures_iter(&page.dom)
        .map(|c| {
            (
                c[1].to_string(),
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
                c[4].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(drawn, expected);
    let month = regex::Regex::new(
        r#"<g class="month" data-month="([0-9-]+)" data-fixed="(\d+)" data-median="([0-9.]+)""#,
    )
    .unwrap();
    let fixes: Vec<(String, String)> = month
        .captures_iter(&page.dom)
        .map(|c| (c[1].to_string(), c[3].to_string()))
        .collect();
    assert_eq!(fixes[0], ("2026-01".to_string(), "4".to_string()));
    assert_eq!(fixes[1], ("2026-02".to_string(), "40".to_string()));
    // The script read the charts back: five days, one open on the last (one drawn).
    assert!(
        page.dom
            .contains("Rendered 4 keys, 4 shown; trend of 5 days, 1 open on the last (1 drawn)"),
        "{}",
        page.dom
    );
    assert!(page.dom.contains("id=\"changes-new\" data-count=\"1\""));
    assert!(page.dom.contains("id=\"changes-fixed\" data-count=\"1\""));
    let open = kit::chromium::open(&page_path, "#state=open", &tmp.path().join("chromium"));
    assert!(
        open.dom.contains("Rendered 4 keys, 1 shown;"),
        "{}",
        open.dom
    );

    // The check for requests sees one: the same page with an image from the network, and no
    // policy to stop it.
    let leaky = tmp.path().join("leaky.html");
    fs::write(
        &leaky,
        html.replace(
            "<meta http-equiv=\"Content-Security-Policy\"",
            "<meta name=\"x\"",
        )
        .replace(
            "</main>",
            "<img src=\"http://127.0.0.1:9/pixel.png\"></main>",
        ),
    )
    .unwrap();
    let control = kit::chromium::open(&leaky, "", &tmp.path().join("chromium"));
    assert_eq!(control.requests, vec!["http://127.0.0.1:9/pixel.png"]);
}
