//! `detector scan git:…` over repositories built here with `git` and fixed dates: keys
//! rotated in place, keys only on a side branch, a tag, a stash or a commit dropped by
//! `reset --hard`, a key still in HEAD, and repositories that are bare, shallow-free but
//! damaged.
mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use common::{detector, fingerprint, json, key, stdout, ALNUM};
use serde_json::Value;

const ORG_KEY: &str = "scan-git-test-org";

/// A work tree with its repository, and the home the commands run with.
struct Repo {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    dir: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let dir = tmp.path().join("app");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&dir).unwrap();
        let repo = Repo {
            _tmp: tmp,
            home,
            dir,
        };
        repo.git(&["init", "--quiet", "-b", "main"]);
        repo
    }

    /// `git ARGS…` in the work tree, with a fixed identity and `date` as author and committer
    /// time (UTC, `YYYY-MM-DD`).
    fn git_at(&self, date: &str, args: &[&str]) -> String {
        let stamp = format!("{date}T12:00:00Z");
        let output = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env("GIT_AUTHOR_DATE", &stamp)
            .env("GIT_COMMITTER_DATE", &stamp)
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn git(&self, args: &[&str]) -> String {
        self.git_at("2024-01-01", args)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Write the files, commit them all on `date`, return the commit id.
    fn commit(&self, date: &str, files: &[(&str, &str)], message: &str) -> String {
        for (rel, text) in files {
            self.write(rel, text);
        }
        self.git_at(date, &["add", "-A"]);
        self.git_at(date, &["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn scan(&self, target: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["scan", target, "--format", "json"];
        args.extend_from_slice(extra);
        detector(&args, &self.home, Some(ORG_KEY))
    }

    fn target(&self) -> String {
        format!("git:{}", self.dir.display())
    }
}

fn github_key(seed: u64) -> String {
    key("ghp_", ALNUM, 36, seed)
}

fn mcp_config(token: &str) -> String {
    format!(
        "{{\n  \"mcpServers\": {{\n    \"github\": {{\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@modelcontextprotocol/server-github\"],\n      \"env\": {{\n        \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{token}\"\n      }}\n    }}\n  }}\n}}\n"
    )
}

/// The key with this secret's fingerprint.
fn key_of<'a>(report: &'a Value, secret: &str) -> &'a Value {
    let fp = fingerprint(ORG_KEY.as_bytes(), secret);
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == fp.as_str())
        .unwrap_or_else(|| panic!("no key {fp} in {report:#}"))
}

fn locations(key: &Value) -> &Vec<Value> {
    key["locations"].as_array().unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_key_rotated_by_a_new_key_then_by_a_reference() {
    let repo = Repo::new();
    let first = github_key(1);
    let second = github_key(2);
    let c1 = repo.commit(
        "2024-01-10",
        &[(".mcp.json", &mcp_config(&first)), ("README.md", "# app\n")],
        "add github server",
    );
    let c2 = repo.commit(
        "2024-02-10",
        &[(".mcp.json", &mcp_config(&second))],
        "rotate",
    );
    let c3 = repo.commit(
        "2024-03-10",
        &[(".mcp.json", &mcp_config("${GITHUB_PERSONAL_ACCESS_TOKEN}"))],
        "use the environment",
    );
    // An unrelated later change must not disturb the timeline.
    repo.commit("2024-04-10", &[("README.md", "# app\n\ndocs\n")], "docs");

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(1), "keys found: exit 1");
    let text = stdout(&output);
    assert!(
        !text.contains(&first) && !text.contains(&second),
        "no secret in clear"
    );
    let report = json(&output);
    assert_eq!(report["keys"].as_array().unwrap().len(), 2, "{report:#}");
    assert_eq!(report["targets"][0]["kind"], "git");

    let old = key_of(&report, &first);
    assert_eq!(old["status"], "rotated");
    assert_eq!(
        old["rotated_to"]["fingerprint"],
        fingerprint(ORG_KEY.as_bytes(), &second).as_str()
    );
    assert_eq!(old["rotated_to"]["commit"], c2.as_str());
    assert_eq!(old["rotated_to"]["slot"], "GITHUB_PERSONAL_ACCESS_TOKEN");
    assert_eq!(old["first_seen"], "2024-01-10T12:00:00Z");
    let location = &locations(old)[0];
    assert_eq!(location["kind"], "git");
    assert_eq!(location["path"], ".mcp.json");
    assert_eq!(location["line"], 7);
    assert_eq!(location["commit"], c1.as_str());
    assert_eq!(location["in_head"], false);
    assert_eq!(location["removed_in"], c2.as_str());
    assert_eq!(strings(&location["refs"]), ["refs/heads/main"]);
    assert!(strings(&old["violations"]).contains(&"in-git-history".to_string()));

    let new = key_of(&report, &second);
    assert_eq!(new["status"], "rotated");
    assert_eq!(new["rotated_to"]["reference"], "env-ref");
    assert!(new["rotated_to"].get("fingerprint").is_none());
    assert_eq!(new["rotated_to"]["commit"], c3.as_str());
    assert_eq!(new["first_seen"], "2024-02-10T12:00:00Z");
    assert_eq!(locations(new)[0]["commit"], c2.as_str());
    assert_eq!(locations(new)[0]["removed_in"], c3.as_str());
    assert_eq!(report["summary"]["by_status"]["rotated"], 2);
}

#[test]
fn keys_off_the_main_line_are_found_where_they_live() {
    let repo = Repo::new();
    let side = github_key(11);
    let tagged = github_key(12);
    let stashed = github_key(13);
    let dropped = github_key(14);
    let deleted = github_key(15);
    repo.commit("2024-01-01", &[("README.md", "# app\n")], "init");

    repo.git(&["checkout", "--quiet", "-b", "experiment"]);
    repo.commit(
        "2024-01-02",
        &[("side.env", &format!("GITHUB_TOKEN={side}\n"))],
        "try",
    );
    repo.git(&["checkout", "--quiet", "main"]);

    repo.commit(
        "2024-01-03",
        &[("release.env", &format!("GITHUB_TOKEN={tagged}\n"))],
        "release",
    );
    repo.git_at("2024-01-03", &["tag", "-a", "v1.0", "-m", "release"]);
    repo.git(&["rm", "--quiet", "release.env"]);
    let untagged = repo.commit("2024-01-04", &[], "drop the release env");

    repo.commit(
        "2024-01-05",
        &[("deleted.env", &format!("GITHUB_TOKEN={deleted}\n"))],
        "oops",
    );
    let cleaned = {
        repo.git(&["rm", "--quiet", "deleted.env"]);
        repo.commit("2024-01-06", &[], "remove the key")
    };

    repo.write("wip.env", &format!("GITHUB_TOKEN={stashed}\n"));
    repo.git(&["add", "wip.env"]);
    repo.git_at("2024-01-07", &["stash", "--quiet"]);

    repo.commit(
        "2024-01-08",
        &[("lost.env", &format!("GITHUB_TOKEN={dropped}\n"))],
        "lost",
    );
    repo.git(&["reset", "--quiet", "--hard", "HEAD~1"]);

    let report = json(&repo.scan(&repo.target(), &[]));
    assert_eq!(report["targets"][0]["errors"], Value::Array(vec![]));
    for secret in [&side, &tagged, &stashed, &dropped, &deleted] {
        assert_eq!(key_of(&report, secret)["status"], "removed", "{secret:?}");
    }
    let side_at = &locations(key_of(&report, &side))[0];
    assert_eq!(side_at["path"], "side.env");
    assert_eq!(strings(&side_at["refs"]), ["refs/heads/experiment"]);
    assert!(side_at.get("removed_in").is_none(), "not on HEAD's history");

    let tag_at = &locations(key_of(&report, &tagged))[0];
    assert!(strings(&tag_at["refs"]).contains(&"refs/tags/v1.0".to_string()));
    assert_eq!(tag_at["removed_in"], untagged.as_str());

    let deleted_at = &locations(key_of(&report, &deleted))[0];
    assert_eq!(deleted_at["removed_in"], cleaned.as_str());
    assert_eq!(deleted_at["reachable"], true);

    let stash_at = locations(key_of(&report, &stashed));
    assert!(
        stash_at
            .iter()
            .all(|l| strings(&l["refs"]) == ["refs/stash"]),
        "{stash_at:#?}"
    );
    assert_eq!(stash_at[0]["path"], "wip.env");

    let lost_at = &locations(key_of(&report, &dropped))[0];
    assert_eq!(lost_at["path"], "lost.env");
    assert_eq!(lost_at["reachable"], false);
    assert!(lost_at.get("refs").is_none());
    assert_eq!(
        key_of(&report, &dropped)["first_seen"],
        "2024-01-08T12:00:00Z"
    );
}

#[test]
fn a_key_in_head_is_live_and_overdue_past_the_policy() {
    let repo = Repo::new();
    let live = github_key(21);
    let commit = repo.commit(
        "2024-01-01",
        &[("config/.env", &format!("export GITHUB_TOKEN={live}\n"))],
        "env",
    );
    repo.commit("2024-02-01", &[("README.md", "# app\n")], "docs");

    let report = json(&repo.scan(&repo.target(), &["--max-age-days", "100000"]));
    let key = key_of(&report, &live);
    assert_eq!(key["status"], "live");
    assert_eq!(key["overdue"], false);
    assert!(key.get("rotated_to").is_none());
    let at = &locations(key)[0];
    assert_eq!(at["in_head"], true);
    assert_eq!(at["commit"], commit.as_str());
    assert_eq!(at["slot"], "GITHUB_TOKEN");
    assert!(at.get("removed_in").is_none());

    let report = json(&repo.scan(&repo.target(), &["--max-age-days", "30"]));
    let key = key_of(&report, &live);
    assert_eq!(key["status"], "live");
    assert_eq!(key["overdue"], true);
    assert!(strings(&key["violations"]).contains(&"overdue".to_string()));
}

#[test]
fn bare_repositories_are_detected_and_large_or_binary_blobs_skipped() {
    let repo = Repo::new();
    let secret = github_key(31);
    repo.commit(
        "2024-01-01",
        &[(".env", &format!("GITHUB_TOKEN={secret}\n"))],
        "env",
    );
    repo.write("big.txt", &"x".repeat(4096));
    fs::write(repo.dir.join("logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0binary").unwrap();
    repo.commit("2024-01-02", &[], "assets");
    let bare = repo.dir.parent().unwrap().join("app.git");
    let output = Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(&repo.dir)
        .arg(&bare)
        .output()
        .unwrap();
    assert!(output.status.success());

    // A bare path that is a repository is a git target.
    let report = json(&repo.scan(bare.to_str().unwrap(), &["--max-blob-size", "1024"]));
    let target = &report["targets"][0];
    assert_eq!(target["kind"], "git");
    assert_eq!(target["skipped"]["too-large"], 1);
    assert_eq!(target["skipped"]["binary"], 1);
    let key = key_of(&report, &secret);
    assert_eq!(key["status"], "live");
    assert_eq!(locations(key)[0]["path"], ".env");
    assert_eq!(strings(&locations(key)[0]["refs"]), ["refs/heads/main"]);
}

/// The pack of a repository, after `git gc` put every object in one.
fn only_pack(repo: &Repo) -> PathBuf {
    repo.git(&["gc", "--quiet"]);
    let dir = repo.dir.join(".git/objects/pack");
    fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap()
}

fn truncate(path: &Path, len: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
}

#[test]
fn a_truncated_pack_is_reported_and_the_rest_still_scanned() {
    let repo = Repo::new();
    let packed = github_key(41);
    let loose = github_key(42);
    let filler: String = (0..2000)
        .map(|i| format!("line {i} of the docs\n"))
        .collect();
    repo.commit(
        "2024-01-01",
        &[
            ("docs.md", &filler),
            (".env", &format!("GITHUB_TOKEN={packed}\n")),
        ],
        "one",
    );
    let pack = only_pack(&repo);
    repo.commit(
        "2024-01-02",
        &[("later.env", &format!("GITHUB_TOKEN={loose}\n"))],
        "two",
    );
    let len = fs::metadata(&pack).unwrap().len();
    truncate(&pack, len / 2);

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(1), "what could be read was read");
    let report = json(&output);
    let target = &report["targets"][0];
    assert_eq!(target["failed"], false);
    let errors = target["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "the damage is reported");
    let named: Vec<String> = errors
        .iter()
        .map(|e| format!("{} {}", e["path"], e["reason"]))
        .collect();
    assert!(
        named
            .iter()
            .any(|e| e.contains(".pack") || e.contains("object ")),
        "{named:#?}"
    );
    let key = key_of(&report, &loose);
    assert_eq!(locations(key)[0]["path"], "later.env");
}

#[test]
fn a_repository_with_nothing_readable_fails_with_exit_code_2() {
    let repo = Repo::new();
    repo.commit(
        "2024-01-01",
        &[(".env", &format!("GITHUB_TOKEN={}\n", github_key(51)))],
        "one",
    );
    let pack = only_pack(&repo);
    truncate(&pack, 0);

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(2));
    let report = json(&output);
    assert_eq!(report["targets"][0]["failed"], true);
    assert!(!report["targets"][0]["errors"]
        .as_array()
        .unwrap()
        .is_empty());

    let missing = repo.scan("git:/no/such/repository", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(common::stderr(&missing).contains("/no/such/repository"));
}
