//! Preventing new leaks: `scan git:PATH --staged` (what a commit would record), the ranges of
//! pull-request jobs (`--since-commit REV`, `git:PATH@A..B`), `detector hook install` under a
//! real `git commit`, and this repository's `.pre-commit-hooks.yaml` run by the real
//! pre-commit framework.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kit::{
    git::{git_command, Repo},
    keys::{fingerprint, key, ALNUM},
    report::{locations, report_fingerprints},
    run::{json, run_with_deadline, stderr, stdout},
};
use serde_json::Value;

use crate::{detector, DETECTOR};

const ORG_KEY: &str = "prevent-test-org";

fn github_key(seed: u64) -> String {
    key("ghp_", ALNUM, 36, seed)
}

fn fingerprints(keys: &[&str]) -> std::collections::BTreeSet<String> {
    keys.iter()
        .map(|k| fingerprint(ORG_KEY.as_bytes(), k))
        .collect()
}

/// `detector scan ARGS… --format json` with the repository's home.
fn scan(repo: &Repo, args: &[&str]) -> Output {
    let mut all = vec!["scan"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    detector(&all, &repo.home, Some(ORG_KEY))
}

fn target(repo: &Repo) -> String {
    format!("git:{}", repo.dir.display())
}

/// The one line of standard error of a usage error, which must name `what`.
fn one_line_naming(output: &Output, what: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let err = stderr(output);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(what), "names {what}: {err}");
}

#[test]
fn staged_keys_are_found_and_nothing_else() {
    let repo = Repo::temporary();
    let in_history = github_key(1);
    let unstaged = github_key(2);
    let staged = github_key(3);
    repo.commit(
        "2024-01-10",
        &[
            (".env", &format!("GITHUB_TOKEN={in_history}\n")),
            ("notes.txt", "notes\n"),
        ],
        "add a key",
    );
    repo.commit(
        "2024-01-11",
        &[(".env", "GITHUB_TOKEN=${GITHUB_TOKEN}\n")],
        "reference",
    );
    // A key in the work tree only: not what the commit records.
    repo.write("notes.txt", &format!("notes {unstaged}\n"));
    repo.write(
        "config/.mcp.json",
        &format!("{{\"token\": \"{staged}\"}}\n"),
    );
    repo.git(&["add", "config/.mcp.json"]);

    let output = scan(&repo, &[&target(&repo), "--staged"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report_fingerprints(&report), fingerprints(&[&staged]));
    let location = &locations(&report["keys"][0])[0];
    assert_eq!(location["path"], "config/.mcp.json", "{location}");
    assert_eq!(report["keys"][0]["status"], "live");
    assert_eq!(
        report["targets"][0]["target"],
        format!("{} --staged", target(&repo))
    );
    kit::report::assert_no_secret(&stdout(&output), [&staged], "the report");

    // The same file staged again with a reference: the commit is clean.
    repo.write("config/.mcp.json", "{\"token\": \"${API_KEY}\"}\n");
    repo.git(&["add", "config/.mcp.json"]);
    let output = scan(&repo, &[&target(&repo), "--staged"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(report_fingerprints(&json(&output)).is_empty());

    // A bare path that is a work tree takes --staged too; a staged deletion records nothing.
    repo.git(&["rm", "--quiet", "--cached", ".env"]);
    let output = scan(&repo, &[repo.dir.to_str().unwrap(), "--staged"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn staged_in_a_new_repository_and_a_key_staged_then_changed() {
    let repo = Repo::temporary();
    let first = github_key(4);
    let second = github_key(5);
    // No commit yet: everything staged is new.
    repo.write("a.env", &format!("TOKEN={first}\n"));
    repo.git(&["add", "a.env"]);
    // Staged, then changed in the work tree: the staged version is what counts.
    repo.write("a.env", &format!("TOKEN={second}\n"));
    let output = scan(&repo, &[&target(&repo), "--staged"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(report_fingerprints(&json(&output)), fingerprints(&[&first]));
}

#[test]
fn staged_needs_a_git_work_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let home = tmp.path();
    let plain_text = plain.to_str().unwrap();
    for target in [format!("git:{plain_text}"), plain_text.to_string()] {
        let output = detector(&["scan", &target, "--staged"], home, Some(ORG_KEY));
        one_line_naming(&output, plain_text);
    }
    let output = detector(&["scan", "mcp:", "--staged"], home, Some(ORG_KEY));
    one_line_naming(&output, "--staged");

    // No repository to install a hook into.
    let mut cmd = kit::run::detector_command(Path::new(DETECTOR), &["hook", "install"], home, None);
    cmd.current_dir(&plain)
        .env("GIT_CEILING_DIRECTORIES", tmp.path());
    let output = run_with_deadline(cmd, kit::run::deadline(), "detector hook install");
    one_line_naming(&output, "not in a git work tree");
    assert!(!plain.join(".git").exists());
}

/// A history for the range tests: a key before the range, one in each of two commits of it.
struct Ranged {
    repo: Repo,
    base: String,
    middle: String,
    tip: String,
    keys: [String; 3],
}

fn ranged() -> Ranged {
    let repo = Repo::temporary();
    let keys = [github_key(10), github_key(11), github_key(12)];
    let base = repo.commit(
        "2024-01-10",
        &[
            (".env", &format!("OLD={}\n", keys[0])),
            ("README.md", "# app\n"),
        ],
        "base",
    );
    let middle = repo.commit(
        "2024-02-10",
        &[(".mcp.json", &format!("{{\"token\": \"{}\"}}\n", keys[1]))],
        "add a server",
    );
    // The old key stays untouched in `.env`, a line is added next to it.
    let tip = repo.commit(
        "2024-03-10",
        &[
            (".env", &format!("OLD={}\nNEW={}\n", keys[0], keys[2])),
            ("README.md", "# app\nmore\n"),
        ],
        "another key",
    );
    Ranged {
        repo,
        base,
        middle,
        tip,
        keys,
    }
}

/// The commit of the location of `secret`'s key in `report`.
fn commit_of(report: &Value, secret: &str) -> String {
    let key = kit::report::key_of(report, ORG_KEY, secret);
    let commits: Vec<&str> = locations(key)
        .iter()
        .filter_map(|l| l["commit"].as_str())
        .collect();
    assert_eq!(commits.len(), 1, "{key}");
    commits[0].to_string()
}

#[test]
fn a_range_reports_only_what_its_commits_brought_in() {
    let r = ranged();
    let [old, middle_key, tip_key] = [&r.keys[0], &r.keys[1], &r.keys[2]];
    let dir = r.repo.dir.display().to_string();

    let since = scan(&r.repo, &[&target(&r.repo), "--since-commit", &r.base]);
    assert_eq!(since.status.code(), Some(1), "{}", stderr(&since));
    let since = json(&since);
    assert_eq!(
        report_fingerprints(&since),
        fingerprints(&[middle_key, tip_key]),
        "the key from before the range (still in the changed .env) is not reported"
    );
    assert_eq!(commit_of(&since, middle_key), r.middle);
    assert_eq!(commit_of(&since, tip_key), r.tip);
    assert_eq!(
        since["targets"][0]["target"],
        format!("git:{dir}@{}..HEAD", r.base)
    );

    let explicit = scan(&r.repo, &[&format!("git:{dir}@{}..{}", r.base, r.middle)]);
    assert_eq!(explicit.status.code(), Some(1), "{}", stderr(&explicit));
    let explicit = json(&explicit);
    assert_eq!(report_fingerprints(&explicit), fingerprints(&[middle_key]));
    assert_eq!(commit_of(&explicit, middle_key), r.middle);

    // By branch name, up to HEAD by default.
    r.repo.git(&["branch", "base", &r.base]);
    let named = scan(&r.repo, &[&format!("git:{dir}@base..")]);
    assert_eq!(
        report_fingerprints(&json(&named)),
        fingerprints(&[middle_key, tip_key])
    );

    // Nothing in range: clean.
    let empty = scan(&r.repo, &[&format!("git:{dir}@HEAD..HEAD")]);
    assert_eq!(empty.status.code(), Some(0), "{}", stderr(&empty));

    // The whole history still has all three.
    let all = json(&scan(&r.repo, &[&target(&r.repo)]));
    assert_eq!(
        report_fingerprints(&all),
        fingerprints(&[old, middle_key, tip_key])
    );
}

#[test]
fn a_merge_brings_in_only_what_it_resolved() {
    let repo = Repo::temporary();
    let feature_key = github_key(20);
    let main_key = github_key(21);
    let base = repo.commit("2024-01-10", &[("README.md", "# app\n")], "base");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    let feature = repo.commit(
        "2024-01-11",
        &[("feature.env", &format!("T={feature_key}\n"))],
        "feature key",
    );
    repo.git(&["checkout", "--quiet", "main"]);
    repo.commit(
        "2024-01-12",
        &[("main.env", &format!("T={main_key}\n"))],
        "main key",
    );
    let main = repo.git(&["rev-parse", "HEAD"]);
    repo.git_at("2024-01-13", &["merge", "--quiet", "--no-edit", "feature"]);
    // From main's point of view the pull request brought in the feature key only.
    let output = scan(
        &repo,
        &[&format!("git:{}@{main}..HEAD", repo.dir.display())],
    );
    let report = json(&output);
    assert_eq!(report_fingerprints(&report), fingerprints(&[&feature_key]));
    assert_eq!(commit_of(&report, &feature_key), feature);
    let _ = base;
}

#[test]
fn a_revision_not_in_the_repository_is_one_line() {
    let r = ranged();
    let dir = r.repo.dir.display().to_string();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    for args in [
        vec![
            format!("git:{dir}"),
            "--since-commit".into(),
            missing.into(),
        ],
        vec![format!("git:{dir}@origin/main..HEAD")],
        vec![format!("git:{dir}@{}..no-such-branch", r.base)],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = scan(&r.repo, &args);
        let named = if args.len() == 3 {
            missing
        } else if args[0].contains("origin/main") {
            "origin/main"
        } else {
            "no-such-branch"
        };
        one_line_naming(&output, named);
    }
    // A shallow clone lacks the base of the range.
    let shallow = r.repo.dir.with_file_name("shallow");
    r.repo.git_in(
        r.repo.dir.parent().unwrap(),
        &[
            "clone",
            "--quiet",
            "--depth",
            "1",
            &format!("file://{dir}"),
            shallow.to_str().unwrap(),
        ],
    );
    let output = scan(
        &r.repo,
        &[
            &format!("git:{}", shallow.display()),
            "--since-commit",
            &r.middle,
        ],
    );
    one_line_naming(&output, &r.middle);
    let _ = &r.tip;
}

/// `git commit -m MESSAGE` in the repository (which may fail: a hook blocks it).
fn commit(repo: &Repo, extra: &[&str]) -> Output {
    let mut cmd = git_command(&repo.dir, &repo.home, "2024-05-01");
    cmd.args(["commit", "--quiet", "-m", "change"]).args(extra);
    run_with_deadline(cmd, kit::run::deadline(), "git commit")
}

/// `detector hook install EXTRA…` run in the repository's work tree.
fn install_hook(repo: &Repo, extra: &[&str]) -> Output {
    let mut args = vec!["hook", "install"];
    args.extend_from_slice(extra);
    let mut cmd = kit::run::detector_command(Path::new(DETECTOR), &args, &repo.home, None);
    cmd.current_dir(&repo.dir);
    run_with_deadline(cmd, kit::run::deadline(), "detector hook install")
}

fn head(repo: &Repo) -> String {
    repo.git(&["rev-parse", "HEAD"])
}

/// With the hook in place: a staged key blocks the commit with how to fix it, a reference
/// commits; `git commit -a` (a temporary index) is checked too.
fn hook_blocks_keys(repo: &Repo, seed: u64) {
    let leaked = github_key(seed);
    let before = head(repo);
    repo.write(".mcp.json", &format!("{{\"token\": \"{leaked}\"}}\n"));
    repo.git(&["add", ".mcp.json"]);
    let blocked = commit(repo, &[]);
    assert!(!blocked.status.success(), "the commit went through");
    let err = stderr(&blocked);
    assert!(err.contains("commit blocked"), "{err}");
    assert!(
        err.contains("detector fix") && err.contains("detector:allow"),
        "{err}"
    );
    kit::report::assert_no_secret(&format!("{err}{}", stdout(&blocked)), [&leaked], "the hook");
    assert_eq!(head(repo), before, "nothing was committed");

    repo.write(".mcp.json", "{\"token\": \"${API_KEY}\"}\n");
    repo.git(&["add", ".mcp.json"]);
    let clean = commit(repo, &[]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert_ne!(head(repo), before);

    // `git commit -a` stages into a temporary index that the hook must read.
    let after = head(repo);
    repo.write(".mcp.json", &format!("{{\"token\": \"{leaked}\"}}\n"));
    let blocked = commit(repo, &["-a"]);
    assert!(!blocked.status.success(), "commit -a went through");
    assert_eq!(head(repo), after);
    repo.git(&["checkout", "--", ".mcp.json"]);
}

#[test]
fn the_installed_hook_blocks_a_commit_with_a_key() {
    let repo = Repo::temporary();
    repo.commit("2024-01-10", &[("README.md", "# app\n")], "base");
    let installed = install_hook(&repo, &[]);
    assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
    let hook = repo.dir.join(".git/hooks/pre-commit");
    assert!(hook.is_file());
    hook_blocks_keys(&repo, 30);

    // An existing hook is kept, and the refusal says how to chain.
    let text = fs::read_to_string(&hook).unwrap();
    let again = install_hook(&repo, &[]);
    one_line_naming(&again, "detector scan git:. --staged || exit 1");
    assert!(stderr(&again).contains("--force"));
    assert_eq!(fs::read_to_string(&hook).unwrap(), text);

    fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let refused = install_hook(&repo, &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&hook).unwrap(), "#!/bin/sh\nexit 0\n");
    let forced = install_hook(&repo, &["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert_eq!(fs::read_to_string(&hook).unwrap(), text);
}

#[test]
fn the_hook_honours_core_hooks_path() {
    let repo = Repo::temporary();
    repo.commit("2024-01-10", &[("README.md", "# app\n")], "base");
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    let installed = install_hook(&repo, &[]);
    assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
    assert!(repo.dir.join(".githooks/pre-commit").is_file());
    assert!(!repo.dir.join(".git/hooks/pre-commit").exists());
    // The hook's directory is part of the work tree: keep it out of the commits below.
    fs::write(repo.dir.join(".git/info/exclude"), ".githooks/\n").unwrap();
    hook_blocks_keys(&repo, 31);
}

#[test]
fn a_global_hook_covers_every_repository() {
    let repo = Repo::temporary();
    repo.commit("2024-01-10", &[("README.md", "# app\n")], "base");
    let installed = install_hook(&repo, &["--global"]);
    assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
    let global = repo.home.join(".config/git/hooks");
    assert_eq!(
        repo.git(&["config", "--global", "core.hooksPath"]),
        global.display().to_string()
    );
    assert!(global.join("pre-commit").is_file());
    hook_blocks_keys(&repo, 32);

    // With a global hooks path already set, the hook goes there.
    let other = repo.home.join("hooks-elsewhere");
    repo.git(&[
        "config",
        "--global",
        "core.hooksPath",
        other.to_str().unwrap(),
    ]);
    let installed = install_hook(&repo, &["--global"]);
    assert_eq!(installed.status.code(), Some(0), "{}", stderr(&installed));
    assert!(other.join("pre-commit").is_file());
}

/// The workspace root, whose `.pre-commit-hooks.yaml` is under test.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_pre_commit_framework_runs_our_hook() {
    let Some(pre_commit) = kit::tools::pre_commit() else {
        kit::guard::skip("pre-commit is not installed (`cargo xtask setup` installs it)");
        return;
    };
    let repo = Repo::temporary();
    repo.commit("2024-01-10", &[("README.md", "# app\n")], "base");
    // The hooks repository as pre-commit fetches one: this repository's hook definitions,
    // committed.
    let hooks = Repo::init(&repo.home.join("hooks-repo"), &repo.home, "2024-01-01");
    hooks.commit(
        "2024-01-02",
        &[(
            ".pre-commit-hooks.yaml",
            &fs::read_to_string(workspace_root().join(".pre-commit-hooks.yaml")).unwrap(),
        )],
        "hooks",
    );
    // `language: system` runs `detector` from PATH: the binary under test.
    let path = format!(
        "{}:{}",
        Path::new(DETECTOR).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let try_repo = |repo: &Repo| {
        let mut cmd = Command::new(&pre_commit);
        cmd.args(["try-repo", hooks.dir.to_str().unwrap(), "detector"])
            .current_dir(&repo.dir)
            .env("HOME", &repo.home)
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", repo.home.join("pre-commit-cache"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("DETECTOR_ORG_KEY", ORG_KEY)
            .env("NO_COLOR", "1");
        run_with_deadline(cmd, kit::run::deadline(), "pre-commit try-repo")
    };

    let leaked = github_key(40);
    repo.write("server.env", &format!("TOKEN={leaked}\n"));
    repo.git(&["add", "server.env"]);
    let blocked = try_repo(&repo);
    let shown = format!("{}{}", stdout(&blocked), stderr(&blocked));
    assert!(!blocked.status.success(), "{shown}");
    assert!(shown.contains("server.env"), "{shown}");
    kit::report::assert_no_secret(&shown, [&leaked], "pre-commit");

    repo.write("server.env", "TOKEN=${TOKEN}\n");
    repo.git(&["add", "server.env"]);
    let passed = try_repo(&repo);
    assert!(
        passed.status.success(),
        "{}{}",
        stdout(&passed),
        stderr(&passed)
    );
}
