//! Scanned input is attacker-made: file names that drive the terminal, names that run commands
//! when a printed command is pasted, names that are not UTF-8, one key repeated until an
//! unindexed merge turns quadratic. Each test builds its hostile input at run time; a run that
//! hangs is killed by the kit's deadline and fails the test.
use std::{
    fs,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
    process::Command,
};

use kit::{
    keys::{fingerprint, key, ALNUM},
    report::{assert_no_secret, one_key_in_many_places},
    run::{json, stdout},
};
use serde_json::Value;

use crate::{detector, report::docker_archive};

const ORG_KEY: &str = "hostile-test-org";

/// A file named to take over a terminal: an OSC title write, a colour, a carriage return that
/// hides what came before, a right-to-left override.
const TERMINAL_NAME: &str = "a\u{1b}]0;owned\u{7}\u{1b}[31m\rcover\u{202e}txt.env";
/// A file named to run a command when a printed `chmod` is pasted into a shell.
const COMMAND_NAME: &str = "$(touch PWNED).env";

fn write_mode(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn hostile_file_names_are_shown_not_obeyed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scan");
    fs::create_dir(&dir).unwrap();
    let keys = [
        key("ghp_", ALNUM, 36, 9101),
        key("ghp_", ALNUM, 36, 9102),
        key("ghp_", ALNUM, 36, 9103),
    ];
    write_mode(
        &dir.join(TERMINAL_NAME),
        &format!("GITHUB_TOKEN={}\n", keys[0]),
        0o644,
    );
    write_mode(
        &dir.join(COMMAND_NAME),
        &format!("GITHUB_TOKEN={}\n", keys[1]),
        0o644,
    );
    // Not UTF-8: a JSON report must still be written, whole.
    let not_utf8 = dir.join(std::ffi::OsStr::from_bytes(b"bad\xff\xfename.env"));
    write_mode(&not_utf8, &format!("GITHUB_TOKEN={}\n", keys[2]), 0o600);
    let target = format!("dir:{}", dir.display());

    let output = detector(
        &["scan", &target, "--format", "json"],
        tmp.path(),
        Some(ORG_KEY),
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        kit::run::stderr(&output)
    );
    let report = json(&output);
    assert_eq!(report["keys"].as_array().unwrap().len(), 3);
    let paths: Vec<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|k| k["locations"].as_array().unwrap())
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.contains("bad\u{fffd}\u{fffd}name.env")),
        "{paths:?}"
    );

    for format in ["text", "markdown"] {
        let output = detector(
            &["scan", &target, "--format", format],
            tmp.path(),
            Some(ORG_KEY),
        );
        assert_eq!(output.status.code(), Some(1));
        let shown = stdout(&output);
        for raw in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
            assert!(
                !shown.contains(raw),
                "{format} output holds {raw:?} from a file name:\n{shown}"
            );
        }
        assert!(
            shown.contains("a\\x1b]0;owned\\x07\\x1b[31m\\rcover\\u{202e}txt.env"),
            "{format}: the name is shown escaped:\n{shown}"
        );
        assert_no_secret(&shown, &keys, format);
    }
}

#[test]
fn printed_commands_quote_the_paths_they_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("scan");
    fs::create_dir(&dir).unwrap();
    let secret = key("ghp_", ALNUM, 36, 9201);
    let file = dir.join(COMMAND_NAME);
    write_mode(&file, &format!("GITHUB_TOKEN={secret}\n"), 0o644);
    let output = detector(
        &[
            "scan",
            &format!("dir:{}", dir.display()),
            "--format",
            "json",
        ],
        tmp.path(),
        Some(ORG_KEY),
    );
    let report = json(&output);
    let chmod = report["keys"][0]["remediation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str()?.split_once("Make the files private: "))
        .map(|(_, command)| command.to_string())
        .next()
        .expect("a chmod step for the world-readable file");
    // Pasted into a shell where the file is, the command makes the file private and runs
    // nothing its name holds.
    let status = Command::new("sh")
        .args(["-c", &chmod])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "{chmod}");
    assert!(!dir.join("PWNED").exists(), "`{chmod}` ran the file name");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "{chmod}"
    );
}

#[test]
fn saved_secrets_are_shown_again_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = key("ghp_", ALNUM, 36, 9301);
    let file = tmp.path().join(".env");
    write_mode(&file, &format!("GITHUB_TOKEN={secret}\n"), 0o600);
    let saved = tmp.path().join("clear.json");
    let output = detector(
        &[
            "scan",
            &format!("file:{}", file.display()),
            "--show-secrets",
            "--format",
            "json",
            "-o",
            saved.to_str().unwrap(),
        ],
        tmp.path(),
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(fs::read_to_string(&saved).unwrap().contains(&secret));
    let saved = saved.to_str().unwrap();

    for format in ["json", "text", "markdown", "sarif", "html"] {
        let render = detector(
            &["report", "render", saved, "--format", format],
            tmp.path(),
            None,
        );
        assert_no_secret(&stdout(&render), [secret.as_str()], format);
    }
    let merged = detector(&["report", "merge", saved, saved], tmp.path(), None);
    assert_no_secret(&stdout(&merged), [secret.as_str()], "report merge");

    let asked = detector(
        &[
            "report",
            "render",
            saved,
            "--format",
            "json",
            "--show-secrets",
        ],
        tmp.path(),
        None,
    );
    assert_eq!(json(&asked)["keys"][0]["secret"], secret.as_str());
    let asked = detector(
        &["report", "merge", saved, "--show-secrets"],
        tmp.path(),
        None,
    );
    assert_eq!(json(&asked)["keys"][0]["secret"], secret.as_str());
}

/// The one key of `report`, and how many places it was seen.
fn the_key(report: &Value, secret: &str) -> usize {
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "one key");
    assert_eq!(
        keys[0]["fingerprint"],
        fingerprint(ORG_KEY.as_bytes(), secret)
    );
    keys[0]["locations"].as_array().unwrap().len()
}

/// `detector ARGS…` under the org key, its peak RSS held to the kit's bound for hostile
/// input: before the places of a key were capped, the 10 MB file alone took 470 MiB in a
/// release build and wrote a 63 MB report.
fn bounded(args: &[&str], home: &Path) -> std::process::Output {
    kit::rss::bounded(Path::new(crate::DETECTOR), args, home, Some(ORG_KEY))
}

/// The places of one key in one object that the report lists (the rest are counted).
const MAX_PLACES: usize = 1000;

/// The report says that `seen` places were cut to [`MAX_PLACES`].
fn assert_cut_short(report: &Value, seen: usize) {
    let errors: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["errors"].as_array().unwrap())
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    let said = format!("appears {seen} times: the first {MAX_PLACES} places are reported");
    assert!(
        errors.iter().any(|e| e.contains(&said)),
        "{said:?} in {errors:?}"
    );
}

#[test]
fn one_key_on_every_line_of_a_big_file_is_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = key("ghp_", ALNUM, 36, 9401);
    let line = format!("GITHUB_TOKEN={secret}\n");
    let lines = 10 * 1024 * 1024 / line.len();
    let file = tmp.path().join("big.env");
    fs::write(&file, line.repeat(lines)).unwrap();
    let output = bounded(
        &[
            "scan",
            &format!("file:{}", file.display()),
            "--format",
            "json",
        ],
        tmp.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(the_key(&report, &secret), MAX_PLACES);
    assert_cut_short(&report, lines);
}

#[test]
fn one_key_in_every_env_entry_of_an_image_is_one_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = key("ghp_", ALNUM, 36, 9501);
    let env: Vec<String> = (0..100_000)
        .map(|i| format!("GITHUB_TOKEN_{i}={secret}"))
        .collect();
    let image = docker_archive(
        tmp.path(),
        "envs:1",
        &[("app/README", "hello\n")],
        &env,
        "2025-01-01T00:00:00Z",
    );
    let output = bounded(
        &[
            "scan",
            &format!("docker-archive:{}", image.display()),
            "--format",
            "json",
        ],
        tmp.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(the_key(&report, &secret), MAX_PLACES);
    assert_cut_short(&report, env.len());
}

#[test]
fn merging_reports_of_many_places_is_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let places = 100_000;
    let secret = key("ghp_", ALNUM, 36, 9601);
    let fingerprint = fingerprint(ORG_KEY.as_bytes(), &secret);
    let report = |host: &str| one_key_in_many_places(host, &fingerprint, places);
    let mut files = Vec::new();
    for host in ["a", "b"] {
        let path = tmp.path().join(format!("{host}.json"));
        fs::write(&path, serde_json::to_vec(&report(host)).unwrap()).unwrap();
        files.push(path.display().to_string());
    }
    // The same report twice: each place is already there once.
    let args = ["report", "merge", &files[0], &files[1], &files[0]];
    let output = detector(&args, tmp.path(), None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        kit::run::stderr(&output)
    );
    assert_eq!(the_key(&json(&output), &secret), 2 * places);
}
