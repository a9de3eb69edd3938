//! `detector scan git:…` over repositories built here with `git` and fixed dates: keys
//! rotated in place (MCP config, `.env`, shell profile; two servers sharing a variable name),
//! keys only on a side branch, a tag, a stash or a commit dropped by `reset --hard`, a key
//! still in HEAD, a blob shared by many commits, and repositories that are bare, shallow,
//! missing a blob or with a damaged pack; and hostile ones: replace refs and forged objects
//! that make trees and tags cycle, a tree 100,000 directories deep.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kit::{
    git::Repo,
    keys::{fingerprint, key, ALNUM},
    report::{locations, report_fingerprints, strings, target_errors},
    run::{json, stderr, stdout},
};
use serde_json::Value;

use crate::{detector, DETECTOR};

const ORG_KEY: &str = "scan-git-test-org";

/// Scanning a test repository.
trait Scan {
    /// `detector scan TARGET --format json EXTRA…` with the repository's home.
    fn scan(&self, target: &str, extra: &[&str]) -> Output;
    /// [`Scan::scan`] of hostile input, its peak memory held to the kit's bound.
    fn scan_bounded(&self, target: &str) -> Output;
    /// `git:WORK-TREE`.
    fn target(&self) -> String;
}

impl Scan for Repo {
    fn scan(&self, target: &str, extra: &[&str]) -> Output {
        let mut args = vec!["scan", target, "--format", "json"];
        args.extend_from_slice(extra);
        detector(&args, &self.home, Some(ORG_KEY))
    }

    fn scan_bounded(&self, target: &str) -> Output {
        let args = ["scan", target, "--format", "json"];
        kit::rss::bounded(Path::new(DETECTOR), &args, &self.home, Some(ORG_KEY))
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
    kit::report::key_of(report, ORG_KEY, secret)
}

#[test]
fn a_key_rotated_by_a_new_key_then_by_a_reference() {
    let repo = Repo::temporary();
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
    let repo = Repo::temporary();
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
    let repo = Repo::temporary();
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
    let repo = Repo::temporary();
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
    // Each at the path history gives it, with its blob id.
    let big = not_scanned(&report, "big.txt");
    assert_eq!(big["reason"], "too-large");
    assert_eq!(
        big["object"],
        repo.git(&["rev-parse", "HEAD:big.txt"]).as_str()
    );
    assert!(
        big["detail"].as_str().unwrap().contains("4096 bytes"),
        "{big:#}"
    );
    let logo = not_scanned(&report, "logo.png");
    assert_eq!(logo["reason"], "binary");
    assert_eq!(
        logo["object"],
        repo.git(&["rev-parse", "HEAD:logo.png"]).as_str()
    );
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
    let repo = Repo::temporary();
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
    let repo = Repo::temporary();
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
    assert!(stderr(&missing).contains("/no/such/repository"));
}

#[test]
fn a_blob_missing_from_the_object_database_is_reported_and_the_rest_scanned() {
    let repo = Repo::temporary();
    let lost = github_key(61);
    let kept = github_key(62);
    let commit = repo.commit(
        "2024-01-01",
        &[
            ("config/lost.env", &format!("GITHUB_TOKEN={lost}\n")),
            ("kept.env", &format!("GITHUB_TOKEN={kept}\n")),
        ],
        "two keys",
    );
    let blob = repo.git(&["rev-parse", "HEAD:config/lost.env"]);
    let loose = repo
        .dir
        .join(".git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    fs::remove_file(&loose).expect("the blob is a loose object");

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(1), "the other key is found");
    let report = json(&output);
    assert_eq!(report["targets"][0]["failed"], false);
    let errors = target_errors(&report);
    let missing: Vec<_> = errors
        .iter()
        .filter(|(path, _)| path == &format!("object {blob}"))
        .collect();
    assert_eq!(missing.len(), 1, "{errors:#?}");
    let reason = &missing[0].1;
    assert!(reason.contains("missing"), "{reason}");
    assert!(reason.contains("config/lost.env"), "{reason}");
    assert!(reason.contains(&commit), "{reason}");

    let key = key_of(&report, &kept);
    assert_eq!(key["status"], "live");
    assert_eq!(locations(key)[0]["path"], "kept.env");
    assert!(!report_fingerprints(&report).contains(&fingerprint(ORG_KEY.as_bytes(), &lost)));
}

#[test]
fn a_partial_clone_names_the_blobs_it_did_not_fetch_and_counts_the_rest() {
    let repo = Repo::temporary();
    let live = github_key(65);
    for day in 1..=25 {
        repo.commit(
            &format!("2024-01-{day:02}"),
            &[("notes.txt", &format!("version {day}\n"))],
            "notes",
        );
    }
    repo.commit(
        "2024-02-01",
        &[(".env", &format!("GITHUB_TOKEN={live}\n"))],
        "env",
    );
    repo.git(&["config", "uploadpack.allowFilter", "true"]);
    let clone = repo.dir.parent().unwrap().join("partial");
    let url = format!("file://{}", repo.dir.display());
    repo.git_in(
        repo.dir.parent().unwrap(),
        &[
            "clone",
            "--quiet",
            "--filter=blob:none",
            &url,
            clone.to_str().unwrap(),
        ],
    );

    let output = repo.scan(&format!("git:{}", clone.display()), &[]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["targets"][0]["failed"], false);
    assert_eq!(key_of(&report, &live)["status"], "live");
    let errors = target_errors(&report);
    // 24 old versions of notes.txt were never fetched: 20 named, the rest counted.
    let named: Vec<_> = errors
        .iter()
        .filter(|(path, _)| path.starts_with("object "))
        .collect();
    assert_eq!(named.len(), 20, "{errors:#?}");
    assert!(named
        .iter()
        .all(|(_, reason)| reason.contains("partial clone")
            && reason.contains("notes.txt in commit ")));
    assert!(
        errors
            .iter()
            .any(|(_, reason)| reason.starts_with("4 more blobs")
                && reason.contains("partial clone")),
        "{errors:#?}"
    );
}

#[test]
fn a_shallow_clone_is_scanned_to_its_boundary_and_the_boundary_reported() {
    let repo = Repo::temporary();
    let old = github_key(71);
    let live = github_key(72);
    repo.commit(
        "2024-01-01",
        &[("old.env", &format!("GITHUB_TOKEN={old}\n"))],
        "old key",
    );
    repo.git(&["rm", "--quiet", "old.env"]);
    repo.commit(
        "2024-02-01",
        &[(".env", &format!("GITHUB_TOKEN={live}\n"))],
        "new key",
    );
    let tip = repo.commit("2024-03-01", &[("README.md", "# app\n")], "docs");

    let clone = repo.dir.parent().unwrap().join("shallow");
    let url = format!("file://{}", repo.dir.display());
    repo.git_in(
        repo.dir.parent().unwrap(),
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            &url,
            clone.to_str().unwrap(),
        ],
    );
    assert!(clone.join(".git/shallow").is_file());

    let output = repo.scan(&format!("git:{}", clone.display()), &[]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["targets"][0]["failed"], false);
    // Only the boundary commit was fetched: the key of older history is not there to find,
    // and the report says so.
    assert_eq!(
        report_fingerprints(&report),
        [fingerprint(ORG_KEY.as_bytes(), &live)].into()
    );
    let errors = target_errors(&report);
    assert!(
        errors
            .iter()
            .any(|(path, reason)| path.ends_with(".git/shallow")
                && reason.contains("shallow repository")
                && reason.contains("1 boundary commit")),
        "{errors:#?}"
    );
    assert!(
        !errors.iter().any(|(_, reason)| reason.contains("missing")),
        "the boundary's parent is not an error of its own: {errors:#?}"
    );
    // History starts at the boundary: the key is dated by the only commit there is.
    let key = key_of(&report, &live);
    assert_eq!(key["status"], "live");
    assert_eq!(key["first_seen"], "2024-03-01T12:00:00Z");
    let at = &locations(key)[0];
    assert_eq!(at["path"], ".env");
    assert_eq!(at["commit"], tip.as_str());
    assert_eq!(at["in_head"], true);
}

#[test]
fn a_key_only_in_a_tag_of_a_commit_no_branch_reaches() {
    let repo = Repo::temporary();
    let tagged = github_key(81);
    repo.commit("2024-01-01", &[("README.md", "# app\n")], "init");
    repo.git(&["checkout", "--quiet", "--detach"]);
    let hotfix = repo.commit(
        "2024-01-02",
        &[("hotfix.env", &format!("GITHUB_TOKEN={tagged}\n"))],
        "hotfix",
    );
    repo.git_at("2024-01-02", &["tag", "-a", "v1.0.1", "-m", "hotfix"]);
    repo.git(&["checkout", "--quiet", "main"]);
    repo.commit("2024-01-03", &[("README.md", "# app\n\nmore\n")], "docs");
    let branches = repo.git(&["branch", "--all", "--contains", &hotfix]);
    assert!(branches.is_empty(), "no branch reaches it: {branches}");

    let report = json(&repo.scan(&repo.target(), &[]));
    assert_eq!(report["targets"][0]["errors"], Value::Array(vec![]));
    let key = key_of(&report, &tagged);
    assert_eq!(key["status"], "removed");
    let at = locations(key);
    assert_eq!(at.len(), 1, "{at:#?}");
    assert_eq!(at[0]["path"], "hotfix.env");
    assert_eq!(at[0]["commit"], hotfix.as_str());
    assert_eq!(at[0]["reachable"], true);
    assert_eq!(at[0]["in_head"], false);
    assert_eq!(strings(&at[0]["refs"]), ["refs/tags/v1.0.1"]);
    assert!(at[0].get("removed_in").is_none(), "never on HEAD's history");
}

#[test]
fn keys_rotated_in_a_dotenv_and_a_shell_profile() {
    let repo = Repo::temporary();
    let env_old = github_key(91);
    let env_new = github_key(92);
    let profile_old = github_key(93);
    let profile_new = github_key(94);
    repo.commit(
        "2024-01-01",
        &[
            (".env", &format!("DEBUG=1\nGITHUB_TOKEN={env_old}\n")),
            (
                "home/.bashrc",
                &format!("alias ll='ls -l'\nexport GITHUB_TOKEN={profile_old}\n"),
            ),
        ],
        "keys",
    );
    let env_rotation = repo.commit(
        "2024-02-01",
        &[(".env", &format!("DEBUG=1\nGITHUB_TOKEN={env_new}\n"))],
        "rotate the env key",
    );
    let profile_rotation = repo.commit(
        "2024-03-01",
        &[(
            "home/.bashrc",
            &format!(
                "alias ll='ls -l'\nexport PATH=$PATH:~/bin\nexport GITHUB_TOKEN={profile_new}\n"
            ),
        )],
        "rotate the profile key",
    );

    let report = json(&repo.scan(&repo.target(), &[]));
    for (old, new, commit, path) in [
        (&env_old, &env_new, &env_rotation, ".env"),
        (
            &profile_old,
            &profile_new,
            &profile_rotation,
            "home/.bashrc",
        ),
    ] {
        let key = key_of(&report, old);
        assert_eq!(key["status"], "rotated", "{path}: {key:#}");
        let to = &key["rotated_to"];
        assert_eq!(
            to["fingerprint"],
            fingerprint(ORG_KEY.as_bytes(), new).as_str(),
            "{path}"
        );
        assert_eq!(to["slot"], "GITHUB_TOKEN", "{path}");
        assert_eq!(to["commit"], commit.as_str(), "{path}");
        assert_eq!(to["path"], path);
        assert_eq!(locations(key)[0]["removed_in"], commit.as_str());
        assert_eq!(key_of(&report, new)["status"], "live", "{path}");
    }
}

#[test]
fn a_blob_shared_by_many_commits_and_paths_is_scanned_once() {
    let repo = Repo::temporary();
    let shared = github_key(101);
    let env = format!("GITHUB_TOKEN={shared}\n");
    let first = repo.commit(
        "2024-01-01",
        &[
            ("a.env", &env),
            ("deploy/b.env", &env),
            ("README.md", "# app\n"),
        ],
        "two copies",
    );
    repo.commit("2024-01-02", &[("c.env", &env)], "a third");
    for day in 3..8 {
        repo.commit(
            &format!("2024-01-0{day}"),
            &[("README.md", &format!("# app\n\nday {day}\n"))],
            "docs",
        );
    }
    let blobs: std::collections::BTreeSet<String> = repo
        .git(&["rev-list", "--all", "--objects"])
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(id, _)| id.to_string()))
        .filter(|id| repo.git(&["cat-file", "-t", id]) == "blob")
        .collect();
    // The key's blob, and README.md's six versions.
    assert_eq!(blobs.len(), 7);

    let report = json(&repo.scan(&repo.target(), &[]));
    let target = &report["targets"][0];
    // Each blob once, and each of the 7 commits' messages.
    assert_eq!(
        target["objects_scanned"],
        blobs.len() as u64 + 7,
        "{target:#}"
    );
    assert_eq!(report["keys"].as_array().unwrap().len(), 1);
    let key = key_of(&report, &shared);
    let mut paths: Vec<String> = locations(key)
        .iter()
        .map(|l| l["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    assert_eq!(paths, ["a.env", "c.env", "deploy/b.env"]);
    assert_eq!(key["first_seen"], "2024-01-01T12:00:00Z");
    assert!(locations(key)
        .iter()
        .filter(|l| l["path"] != "c.env")
        .all(|l| l["commit"] == first.as_str()));
}

fn two_servers(a: Option<&str>, b: &str) -> String {
    let server = |name: &str, token: &str| {
        format!(
            "    \"{name}\": {{\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@example/{name}-mcp\"],\n      \"env\": {{\n        \"API_KEY\": \"{token}\"\n      }}\n    }}"
        )
    };
    let servers: Vec<String> = a
        .map(|a| server("alpha", a))
        .into_iter()
        .chain([server("beta", b)])
        .collect();
    format!(
        "{{\n  \"mcpServers\": {{\n{}\n  }}\n}}\n",
        servers.join(",\n")
    )
}

#[test]
fn two_servers_sharing_a_variable_name_do_not_rotate_into_each_other() {
    let repo = Repo::temporary();
    let (a1, a2, a3) = (github_key(111), github_key(112), github_key(113));
    let (b1, b2) = (github_key(114), github_key(115));
    repo.commit(
        "2024-01-01",
        &[(".mcp.json", &two_servers(Some(&a1), &b1))],
        "two servers",
    );
    let alpha_rotated = repo.commit(
        "2024-02-01",
        &[(".mcp.json", &two_servers(Some(&a2), &b1))],
        "rotate alpha",
    );
    let both_rotated = repo.commit(
        "2024-03-01",
        &[(".mcp.json", &two_servers(Some(&a3), &b2))],
        "rotate both",
    );
    let alpha_dropped = repo.commit(
        "2024-04-01",
        &[(".mcp.json", &two_servers(None, &b2))],
        "drop alpha",
    );
    let beta_to_env = repo.commit(
        "2024-05-01",
        &[(".mcp.json", &two_servers(None, "${BETA_API_KEY}"))],
        "beta from the environment",
    );

    let report = json(&repo.scan(&repo.target(), &[]));
    let fp = |secret: &str| fingerprint(ORG_KEY.as_bytes(), secret);
    for (old, new, commit) in [
        (&a1, &a2, &alpha_rotated),
        (&a2, &a3, &both_rotated),
        (&b1, &b2, &both_rotated),
    ] {
        let key = key_of(&report, old);
        assert_eq!(key["status"], "rotated");
        assert_eq!(
            key["rotated_to"]["fingerprint"],
            fp(new).as_str(),
            "{key:#}"
        );
        assert_eq!(key["rotated_to"]["commit"], commit.as_str());
        assert_eq!(key["rotated_to"]["slot"], "API_KEY");
    }
    // alpha's last key left with its server: beta's key, there all along, did not replace it.
    let dropped = key_of(&report, &a3);
    assert_eq!(dropped["status"], "removed", "{dropped:#}");
    assert!(dropped.get("rotated_to").is_none());
    assert_eq!(locations(dropped)[0]["removed_in"], alpha_dropped.as_str());
    let beta = key_of(&report, &b2);
    assert_eq!(beta["status"], "rotated", "{beta:#}");
    assert_eq!(beta["rotated_to"]["reference"], "env-ref");
    assert_eq!(beta["rotated_to"]["commit"], beta_to_env.as_str());
}

#[test]
fn progress_and_text_on_a_terminal_quiet_json_in_a_pipe() {
    let repo = Repo::temporary();
    let live = github_key(31);
    for (i, date) in ["2024-01-01", "2024-01-02", "2024-01-03"]
        .iter()
        .enumerate()
    {
        repo.commit(
            date,
            &[(&format!("src/f{i}.txt"), &format!("v{i}\n"))],
            "work",
        );
    }
    repo.commit(
        "2024-01-04",
        &[("config/.env", &format!("GITHUB_TOKEN={live}\n"))],
        "env",
    );

    // On a terminal (util-linux `script` gives the binary a pseudo-terminal): the progress
    // line counts objects and bytes, and the report is the text view, coloured.
    let command = format!("{} scan {}", DETECTOR, repo.target());
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("HOME", &repo.home)
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("script (util-linux) runs the binary on a pseudo-terminal");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{terminal}");
    let scanning = format!("scanning {}: ", repo.target());
    assert!(
        terminal
            .split('\r')
            .any(|frame| frame.contains(&scanning) && frame.contains(" objects, ")),
        "no progress line counting objects and bytes: {terminal}"
    );
    assert!(
        terminal.contains("\u{1b}["),
        "no colour on a terminal: {terminal}"
    );
    assert!(!terminal.trim_start().starts_with('{'), "{terminal}");
    assert!(!terminal.contains(&live), "the secret is never printed");

    // In a pipe: no progress, and JSON by default.
    let mut cmd = Command::new(DETECTOR);
    cmd.args(["scan", &repo.target()])
        .env("HOME", &repo.home)
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    let piped = cmd.output().unwrap();
    assert_eq!(piped.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("scanning"), "progress in a pipe: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let report: Value = serde_json::from_slice(&piped.stdout).expect("JSON in a pipe");
    key_of(&report, &live);
}

/// `git mktree` of `(mode, type, id, name)` entries; the tree's id.
fn mktree(repo: &Repo, entries: &[(&str, &str, &str, &str)]) -> String {
    let text: String = entries
        .iter()
        .map(|(mode, kind, id, name)| format!("{mode} {kind} {id}\t{name}\n"))
        .collect();
    repo.git_fed(&["mktree"], text.as_bytes())
}

/// A blob of `text` written into the repository; its id.
fn blob(repo: &Repo, text: &str) -> String {
    repo.git_fed(&["hash-object", "-w", "--stdin"], text.as_bytes())
}

/// A commit of `tree` on top of `main` (if `main` has a commit), made `main`; its id.
fn commit_tree_on_main(repo: &Repo, date: &str, tree: &str) -> String {
    let mut args = vec!["commit-tree", tree, "-m", "by hand"];
    let parent = repo.git(&["for-each-ref", "--format=%(objectname)", "refs/heads/main"]);
    if !parent.is_empty() {
        args.extend(["-p", &parent]);
    }
    let commit = repo.git_at(date, &args);
    repo.git(&["update-ref", "refs/heads/main", &commit]);
    commit
}

fn git_dir(repo: &Repo) -> PathBuf {
    repo.dir.join(".git")
}

/// Replace refs make a tree its own subtree (`cfg` is replaced by a tree holding `cfg`), a tag
/// its own target, and a blob with a key look harmless. Objects are read as stored: the walk
/// ends, and the replacements hide nothing.
#[test]
fn replace_refs_that_make_a_tree_and_a_tag_cycle_are_not_applied() {
    let repo = Repo::temporary();
    let in_cfg = github_key(121);
    let beside = github_key(122);
    let hidden = github_key(123);
    let cfg = mktree(
        &repo,
        &[(
            "100644",
            "blob",
            &blob(&repo, &format!("GITHUB_TOKEN={in_cfg}\n")),
            "app.env",
        )],
    );
    let hidden_blob = blob(&repo, &format!("GITHUB_TOKEN={hidden}\n"));
    let root = mktree(
        &repo,
        &[
            ("040000", "tree", &cfg, "cfg"),
            ("100644", "blob", &hidden_blob, "hidden.env"),
            (
                "100644",
                "blob",
                &blob(&repo, &format!("GITHUB_TOKEN={beside}\n")),
                "k.env",
            ),
        ],
    );
    let commit = commit_tree_on_main(&repo, "2024-01-01", &root);
    // `cfg` becomes a tree whose `loop` is `cfg`: through the replacement, endless.
    let around = mktree(&repo, &[("040000", "tree", &cfg, "loop")]);
    repo.git(&["replace", &cfg, &around]);
    repo.git(&["replace", &hidden_blob, &blob(&repo, "nothing here\n")]);
    // `outer` names `inner`; `inner` is replaced by `outer`: peeling never reaches the commit.
    repo.git_at("2024-01-01", &["tag", "-a", "inner", "-m", "inner"]);
    repo.git_at(
        "2024-01-01",
        &[
            "-c",
            "advice.nestedTag=false",
            "tag",
            "-a",
            "outer",
            "inner",
            "-m",
            "outer",
        ],
    );
    let inner = repo.git(&["rev-parse", "refs/tags/inner"]);
    let outer = repo.git(&["rev-parse", "refs/tags/outer"]);
    repo.git(&["tag", "-d", "inner"]);
    repo.git(&["replace", &inner, &outer]);

    let output = repo.scan_bounded(&repo.target());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(
        report["targets"][0]["errors"],
        Value::Array(vec![]),
        "nothing was cut short"
    );
    for (secret, path) in [
        (&in_cfg, "cfg/app.env"),
        (&beside, "k.env"),
        (&hidden, "hidden.env"),
    ] {
        let key = key_of(&report, secret);
        assert_eq!(key["status"], "live", "{path}");
        let at = locations(key);
        assert_eq!(at.len(), 1, "{at:#?}");
        assert_eq!(at[0]["path"], path);
        assert_eq!(at[0]["commit"], commit.as_str());
        // The replace ref of `inner` names `outer`, which (as stored) reaches the commit.
        assert_eq!(
            strings(&at[0]["refs"]),
            [
                "refs/heads/main".to_string(),
                format!("refs/replace/{inner}"),
                "refs/tags/outer".to_string()
            ],
            "{path}"
        );
    }
}

/// A hostile repository may store an object under an id that is not its hash: here a tree
/// that names itself as its subdirectory `loop`, and a tag whose target is itself. The tree is
/// walked once and the cycle reported with its commit and path; the tag is reported.
#[test]
fn forged_objects_that_contain_themselves_are_walked_once_and_reported() {
    let repo = Repo::temporary();
    let outside = github_key(131);
    let inside = github_key(132);
    let inside_blob = blob(&repo, &format!("GITHUB_TOKEN={inside}\n"));
    // Any id no real object has: the hash of something else.
    let forged = kit::git::object_id("blob", b"forged tree");
    let mut data = kit::git::tree_entry("100644", "inside.env", &inside_blob);
    data.extend(kit::git::tree_entry("40000", "loop", &forged));
    kit::git::write_loose_object(&git_dir(&repo), &forged, "tree", &data);
    let root = mktree(
        &repo,
        &[
            ("040000", "tree", &forged, "cfg"),
            (
                "100644",
                "blob",
                &blob(&repo, &format!("GITHUB_TOKEN={outside}\n")),
                "outside.env",
            ),
        ],
    );
    let commit = commit_tree_on_main(&repo, "2024-01-01", &root);
    let tag = kit::git::object_id("blob", b"forged tag");
    let text = format!("object {tag}\ntype tag\ntag itself\ntagger Dev <dev@example.com> 1704067200 +0000\n\nitself\n");
    kit::git::write_loose_object(&git_dir(&repo), &tag, "tag", text.as_bytes());
    // Written by hand: `git update-ref` would check the object.
    fs::write(git_dir(&repo).join("refs/tags/itself"), format!("{tag}\n")).unwrap();

    let output = repo.scan_bounded(&repo.target());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for (secret, path) in [(&outside, "outside.env"), (&inside, "cfg/inside.env")] {
        let key = key_of(&report, secret);
        assert_eq!(key["status"], "live", "{path}");
        let at = locations(key);
        assert_eq!(at.len(), 1, "{at:#?}");
        assert_eq!(at[0]["path"], path);
        assert_eq!(at[0]["commit"], commit.as_str());
    }
    let errors = target_errors(&report);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let cycle = errors
        .iter()
        .find(|(path, _)| path == "cfg/loop")
        .unwrap_or_else(|| panic!("{errors:#?}"));
    assert!(cycle.1.contains(&format!("commit {commit}")), "{}", cycle.1);
    assert!(cycle.1.contains(&forged), "{}", cycle.1);
    assert!(cycle.1.contains("cycle"), "{}", cycle.1);
    let cut = not_scanned(&report, "cfg/loop");
    assert_eq!(cut["reason"], "over-limit", "{cut:#}");
    assert_eq!(cut["object"], forged.as_str(), "{cut:#}");
    let tag_error = errors
        .iter()
        .find(|(path, _)| path == "refs/tags/itself")
        .unwrap_or_else(|| panic!("{errors:#?}"));
    assert!(tag_error.1.contains(&tag), "{}", tag_error.1);
    assert!(tag_error.1.contains("cycle"), "{}", tag_error.1);
}

/// A commit whose tree nests 100,000 directories (`d/d/d/…`), written as a pack by hand: the
/// walk stops at its depth limit and says where; keys elsewhere are found where they live, and
/// the one at the bottom is still scanned (every blob is), without a path.
#[test]
fn a_tree_100000_directories_deep_is_walked_to_the_limit_and_the_cut_reported() {
    const DEPTH: usize = 100_000;
    let repo = Repo::temporary();
    let top = github_key(141);
    let nested = github_key(142);
    let bottom = github_key(143);
    repo.commit(
        "2024-01-01",
        &[("top.env", &format!("GITHUB_TOKEN={top}\n"))],
        "init",
    );
    let mut pack = kit::git::Pack::default();
    let bottom_blob = pack.add("blob", format!("GITHUB_TOKEN={bottom}\n").into_bytes());
    let mut deep = pack.add(
        "tree",
        kit::git::tree_entry("100644", "bottom.env", &bottom_blob),
    );
    for _ in 1..DEPTH {
        deep = pack.add("tree", kit::git::tree_entry("40000", "d", &deep));
    }
    let nested_blob = pack.add("blob", format!("GITHUB_TOKEN={nested}\n").into_bytes());
    let mut chain = pack.add(
        "tree",
        kit::git::tree_entry("100644", "nested.env", &nested_blob),
    );
    for name in ["c", "b"] {
        chain = pack.add("tree", kit::git::tree_entry("40000", name, &chain));
    }
    pack.write(&git_dir(&repo));
    let top_blob = repo.git(&["rev-parse", "HEAD:top.env"]);
    let root = mktree(
        &repo,
        &[
            ("040000", "tree", &chain, "a"),
            ("040000", "tree", &deep, "d"),
            ("100644", "blob", &top_blob, "top.env"),
        ],
    );
    let commit = commit_tree_on_main(&repo, "2024-01-02", &root);

    let output = repo.scan_bounded(&repo.target());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for (secret, path) in [(&top, "top.env"), (&nested, "a/b/c/nested.env")] {
        let key = key_of(&report, secret);
        assert_eq!(key["status"], "live", "{path}");
        assert_eq!(locations(key)[0]["path"], path);
    }
    let at_bottom = locations(key_of(&report, &bottom));
    assert_eq!(at_bottom.len(), 1, "{at_bottom:#?}");
    assert!(at_bottom[0].get("commit").is_none(), "{at_bottom:#?}");

    let errors = target_errors(&report);
    assert_eq!(errors.len(), 1, "reported once: {errors:#?}");
    let (path, reason) = &errors[0];
    assert!(path.starts_with("d/d/d/d/"), "{path}");
    assert!(path.len() < 400, "a long path is shortened: {path}");
    assert!(reason.contains(&format!("commit {commit}")), "{reason}");
    assert!(reason.contains("4096"), "{reason}");
    let cut = not_scanned(&report, path);
    assert_eq!(cut["reason"], "over-limit", "{cut:#}");
    assert_eq!(report["targets"][0]["skipped"]["over-limit"], 1);
}

/// A tree that names one subtree twice, which names one subtree twice, … 64 levels down:
/// 2^64 paths in 64 small objects. The walk stops after its budget of entries and says where.
#[test]
fn a_tree_that_names_a_subtree_twice_at_every_level_is_walked_to_a_budget() {
    let repo = Repo::temporary();
    let secret = github_key(151);
    let env = blob(&repo, &format!("GITHUB_TOKEN={secret}\n"));
    let empty = mktree(&repo, &[]);
    let mut tree = empty;
    for _ in 0..64 {
        tree = mktree(
            &repo,
            &[
                ("040000", "tree", &tree, "a"),
                ("040000", "tree", &tree, "b"),
            ],
        );
    }
    let root = mktree(
        &repo,
        &[
            ("040000", "tree", &tree, "many"),
            ("100644", "blob", &env, "z.env"),
        ],
    );
    let commit = commit_tree_on_main(&repo, "2024-01-01", &root);

    let output = repo.scan_bounded(&repo.target());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    // The key beside it is still found (every blob is scanned); the walk that would have
    // placed it stopped first, so it has no path.
    locations(key_of(&report, &secret));
    let errors = target_errors(&report);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let (path, reason) = &errors[0];
    assert!(path.starts_with("many/a/a/a/"), "{path}");
    assert!(reason.contains(&format!("commit {commit}")), "{reason}");
    assert!(reason.contains("entries"), "{reason}");
    assert_eq!(not_scanned(&report, path)["reason"], "over-limit");
}

/// The target's `not_scanned` entry at `path`; a failure shows them all.
fn not_scanned<'r>(report: &'r Value, path: &str) -> &'r Value {
    let listed = report["targets"][0]["not_scanned"].as_array().unwrap();
    listed
        .iter()
        .find(|entry| entry["path"] == path)
        .unwrap_or_else(|| panic!("nothing not scanned at {path}: {listed:#?}"))
}

/// A key in a commit's message is found there, once per commit however many copies of the
/// commit the object database holds (loose and packed), in commits no ref reaches too.
#[test]
fn keys_in_commit_messages_are_found_once_per_commit() {
    let repo = Repo::temporary();
    let in_message = github_key(161);
    let dropped = github_key(162);
    let c1 = repo.commit(
        "2024-01-10",
        &[("README.md", "# app\n")],
        &format!("add readme\n\nthe CI token is {in_message}\n"),
    );
    repo.commit("2024-01-11", &[("README.md", "# app\n\n")], "docs");
    let c3 = repo.commit(
        "2024-01-12",
        &[("notes.txt", "x\n")],
        &format!("oops {dropped}"),
    );
    repo.git(&["reset", "--hard", "--quiet", "HEAD~1"]);
    // Every object packed, the loose copies kept: each commit is stored twice.
    repo.git(&["repack", "-a", "--quiet"]);

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    crate::schema::assert_report_valid(&report, "a report with a commit message location");
    for (secret, commit, time, line) in [
        (&in_message, &c1, "2024-01-10T12:00:00Z", 3),
        (&dropped, &c3, "2024-01-12T12:00:00Z", 1),
    ] {
        let key = key_of(&report, secret);
        let at = locations(key);
        assert_eq!(at.len(), 1, "{at:#?}");
        assert_eq!(at[0]["kind"], "git-commit-message");
        assert_eq!(at[0]["path"], commit.as_str());
        assert_eq!(at[0]["commit"], commit.as_str());
        assert_eq!(at[0]["commit_time"], time);
        assert_eq!(at[0]["line"], line);
        assert_eq!(key["first_seen"], time);
        assert_ne!(key["status"], "live", "a message is history");
        assert!(strings(&key["violations"]).contains(&"in-git-history".to_string()));
        // A message is rewritten, not git-ignored; and no server uses the key.
        let steps = strings(&key["remediation"]).join("\n");
        assert!(steps.contains("rewriting the messages"), "{steps}");
        assert!(
            !steps.contains("git-ignore") && !steps.contains("servers below"),
            "{steps}"
        );
    }

    let target = repo.target();
    let in_format = |format| {
        detector(
            &["scan", &target, "--format", format],
            &repo.home,
            Some(ORG_KEY),
        )
    };
    let text = stdout(&in_format("text"));
    assert!(text.contains("git-commit-message"), "{text}");
    assert!(!text.contains(&in_message) && !text.contains(&dropped));
    let sarif: Value = serde_json::from_str(&stdout(&in_format("sarif"))).unwrap();
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(uris.contains(&c1.as_str()), "{uris:?}");
}

/// A server's definition as committed: the token in `env`, and a header that no rule knows.
fn committed_config(token: &str, header: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "mcpServers": {
            "github": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": token}
            },
            "internal": {
                "type": "http",
                "url": "https://mcp.internal.test/mcp",
                "headers": {"X-Api-Key": header}
            }
        }
    }))
    .unwrap()
}

#[test]
fn a_config_in_history_is_read_as_one_and_its_keys_are_its_servers() {
    let repo = Repo::temporary();
    let token = github_key(31);
    let header = key("", ALNUM, 40, 32);
    let added = repo.commit(
        "2024-05-01",
        &[(".cursor/mcp.json", &committed_config(&token, &header))],
        "add servers",
    );
    repo.commit(
        "2024-05-02",
        &[(
            ".cursor/mcp.json",
            &committed_config("${env:GITHUB_TOKEN}", "${env:INTERNAL_KEY}"),
        )],
        "use the environment",
    );

    let output = repo.scan(&repo.target(), &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    for (secret, server, field) in [
        (&token, "github", "env.GITHUB_PERSONAL_ACCESS_TOKEN"),
        (&header, "internal", "headers.X-Api-Key"),
    ] {
        let found = key_of(&report, secret);
        let servers = found["scope"]["mcp_servers"].as_array().unwrap();
        assert!(
            servers.iter().any(|s| s["server"] == server
                && s["field"] == field
                && s["config"] == ".cursor/mcp.json"),
            "{server} {field}: {servers:#?}"
        );
        let location = &locations(found)[0];
        assert_eq!(location["path"], ".cursor/mcp.json");
        assert_eq!(location["commit"], added.as_str());
        assert_eq!(location["mcp_server"], server, "{location:#}");
    }
    // History attributes keys; the servers listed are those of configs as they are.
    assert!(
        report["mcp_servers"]
            .as_array()
            .is_none_or(|s| s.is_empty()),
        "{:#}",
        report["mcp_servers"]
    );
    assert!(!stdout(&output).contains(&token) && !stdout(&output).contains(&header));
}
