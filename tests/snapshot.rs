//! Snapshots of every writer (text, JSON, SARIF, Markdown, HTML), each rendered by the real
//! binary from one checked-in report (`tests/fixtures/report.json`), and one snapshot of a
//! whole scan of a home built at run time. What varies from run to run (times, durations,
//! temporary paths, the host) is redacted by the snapshot settings, never by hand.
//!
//! A changed snapshot fails the test; `INSTA_UPDATE=always cargo test --test end_to_end
//! snapshot::` writes the new ones to review (`git diff tests/snapshots`), and under `CI=true`
//! nothing is ever written. The fixture itself is made by the ignored test
//! `write_the_report_fixture` from the same kind of home, and checked in.
use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use kit::{
    git::Repo,
    keys::{key, random, ALNUM, DIGITS, URL_SAFE},
    report::assert_no_secret,
    run::{json, stderr, stdout},
    write,
};
use serde_json::{json, Value};

use crate::{detector, schema::assert_report_valid};

const ORG_KEY: &str = "snapshot-test-org";
/// Where the checked-in report lives.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/report.json");
/// Every file of the home is dated this (Unix seconds: 2025-01-15T09:30:00Z), so that first
/// and last seen do not depend on when the test runs.
const FILE_TIME: u64 = 1_736_933_400;

/// The keys of the home, seeded: the same on every run.
struct Secrets {
    github: String,
    openai: String,
    stripe_test: String,
    slack: String,
    anthropic: String,
    huggingface: String,
    gitlab: String,
    deploy_old: String,
    deploy_new: String,
    npm: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            github: key("ghp_", ALNUM, 36, 501),
            openai: [
                &key("sk-proj-", URL_SAFE, 74, 502),
                "T3Blbk",
                "FJ",
                &random(URL_SAFE, 74, 513),
            ]
            .concat(),
            stripe_test: key("sk_test_", ALNUM, 32, 503),
            slack: [
                "xoxb-",
                &random(DIGITS, 12, 504),
                "-",
                &random(DIGITS, 13, 505),
                "-",
                &random(ALNUM, 24, 506),
            ]
            .concat(),
            anthropic: [&key("sk-ant-api03-", ALNUM, 93, 507), "AA"].concat(),
            huggingface: key("hf_", ALNUM, 34, 508),
            gitlab: key("glpat-", ALNUM, 20, 509),
            deploy_old: key("ghp_", ALNUM, 36, 510),
            deploy_new: key("ghp_", ALNUM, 36, 511),
            npm: key("npm_", ALNUM, 36, 512),
        }
    }

    fn all(&self) -> [&str; 10] {
        [
            &self.github,
            &self.openai,
            &self.stripe_test,
            &self.slack,
            &self.anthropic,
            &self.huggingface,
            &self.gitlab,
            &self.deploy_old,
            &self.deploy_new,
            &self.npm,
        ]
    }
}

/// `ROOT/home/alice`: MCP configs of four clients with literal keys (one a backup), a shell
/// profile, a project that is a git repository with history (a key rotated, one still in
/// HEAD), a `.env`, and a dotfiles backup archive.
fn build_home(root: &Path, s: &Secrets) -> PathBuf {
    let home = root.join("home/alice");
    let webapp = home.join("work/webapp");
    let pretty = |value: Value| serde_json::to_string_pretty(&value).unwrap() + "\n";

    write(
        &home.join(".cursor/mcp.json"),
        &pretty(json!({"mcpServers": {
            "github-prod": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
                            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": s.github}},
            "search": {"command": "npx", "args": ["-y", "search-mcp"],
                       "env": {"SEARCH_KEY": "${SEARCH_KEY}"}}
        }})),
    );
    let mut projects = serde_json::Map::new();
    projects.insert(
        webapp.display().to_string(),
        json!({"mcpServers": {"stripe": {"command": "npx", "args": ["-y", "@stripe/mcp"],
                                         "env": {"STRIPE_SECRET_KEY": s.stripe_test}}}}),
    );
    write(
        &home.join(".claude.json"),
        &pretty(json!({
            "mcpServers": {"openai": {"type": "stdio", "command": "npx", "args": ["-y", "openai-mcp"],
                                      "env": {"OPENAI_API_KEY": s.openai}}},
            "projects": projects,
        })),
    );
    write(
        &home.join(".codeium/windsurf/mcp_config.json"),
        &pretty(json!({"mcpServers": {
            "slack": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-slack"],
                      "env": {"SLACK_BOT_TOKEN": s.slack, "SLACK_TEAM_ID": "T01234567"}}
        }})),
    );
    write(
        &home.join(".config/Claude/claude_desktop_config.json.bak"),
        &pretty(json!({"mcpServers": {
            "anthropic": {"command": "npx", "args": ["-y", "anthropic-mcp"],
                          "env": {"ANTHROPIC_API_KEY": s.anthropic}}
        }})),
    );
    write(
        &home.join(".zshrc"),
        &format!("alias ll='ls -l'\nexport GITLAB_TOKEN={}\n", s.gitlab),
    );

    // The project: a deploy token rotated to a new one and then to a reference; the Hugging
    // Face token still in HEAD.
    let repo = Repo::init(&webapp, root, "2024-02-01");
    repo.commit(
        "2024-02-01",
        &[
            ("README.md", "# webapp\n"),
            (
                ".env",
                &format!(
                    "HF_TOKEN={}\nDEPLOY_TOKEN={}\n",
                    s.huggingface, s.deploy_old
                ),
            ),
        ],
        "first version",
    );
    repo.commit(
        "2024-05-01",
        &[(
            ".env",
            &format!(
                "HF_TOKEN={}\nDEPLOY_TOKEN={}\n",
                s.huggingface, s.deploy_new
            ),
        )],
        "rotate the deploy token",
    );
    repo.commit(
        "2024-09-01",
        &[(
            ".env",
            &format!(
                "HF_TOKEN={}\nDEPLOY_TOKEN=${{DEPLOY_TOKEN}}\n",
                s.huggingface
            ),
        )],
        "deploy token from the environment",
    );

    // A dotfiles backup, as `cd ~ && tar czf … .npmrc` makes it.
    let npmrc = format!("//registry.npmjs.org/:_authToken={}\n", s.npm);
    let backup = kit::image::gzip(&kit::image::layer_tar(&[("./.npmrc", npmrc.as_bytes())]));
    fs::create_dir_all(home.join("backups")).unwrap();
    fs::write(home.join("backups/dotfiles-2024.tar.gz"), backup).unwrap();

    set_times(&home);
    home
}

/// Every file under `dir` (the repository's internals too) dated [`FILE_TIME`].
fn set_times(dir: &Path) {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(FILE_TIME);
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            set_times(&entry.path());
        } else if kind.is_file() {
            fs::File::options()
                .write(true)
                .open(entry.path())
                .unwrap()
                .set_modified(time)
                .unwrap();
        }
    }
}

/// `detector scan mcp:HOME dir:HOME git:PROJECT --format json` of a new home under `root`.
fn scan_home(root: &Path, secrets: &Secrets) -> (PathBuf, Value) {
    let home = build_home(root, secrets);
    let output = detector(
        &[
            "scan",
            &format!("mcp:{}", home.display()),
            &format!("dir:{}", home.display()),
            &format!("git:{}", home.join("work/webapp").display()),
            "--format",
            "json",
        ],
        root,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_no_secret(&stdout(&output), secrets.all(), "the scan's report");
    assert_no_secret(&stderr(&output), secrets.all(), "the scan's messages");
    (home, json(&output))
}

/// Not run by default: makes `tests/fixtures/report.json` anew from a home like the one of
/// [`a_scanned_home`], its temporary directory taken out of the paths (the home reads
/// `/tmp/snapshot/home/alice`). Run it after a change to the report on purpose, then review
/// the fixture and the snapshots it moves.
#[test]
#[ignore = "writes the checked-in fixture"]
fn write_the_report_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = Secrets::new();
    let (_, report) = scan_home(tmp.path(), &secrets);
    let text = serde_json::to_string_pretty(&report)
        .unwrap()
        .replace(tmp.path().to_str().unwrap(), "/tmp/snapshot");
    fs::write(FIXTURE, text + "\n").unwrap();
}

#[test]
fn the_report_fixture_is_a_valid_report_with_no_secret_in_it() {
    let text = fs::read_to_string(FIXTURE).unwrap();
    assert_no_secret(&text, Secrets::new().all(), "tests/fixtures/report.json");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_report_valid(&report, "tests/fixtures/report.json");
    assert_eq!(report["keys"].as_array().unwrap().len(), 10, "{report:#}");

    // Scanned like any file, it holds nothing that looks like a key.
    let tmp = tempfile::tempdir().unwrap();
    let output = detector(
        &["scan", &format!("file:{FIXTURE}"), "--format", "json"],
        tmp.path(),
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(json(&output)["keys"], json!([]));
}

/// `detector report render FIXTURE --format FORMAT`.
fn render(format: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let output = detector(
        &["report", "render", FIXTURE, "--format", format],
        tmp.path(),
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

/// Snapshots in `tests/snapshots/`, named by the test; the working directory of the binary
/// (the SARIF writer takes it for `%SRCROOT%`) is the checkout's, wherever that is.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    let cwd = std::env::current_dir().unwrap();
    settings.add_filter(&regex_escape(cwd.to_str().unwrap()), "[CWD]");
    settings
}

/// `text` as a regular expression that matches it literally.
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn the_text_writer() {
    settings().bind(|| insta::assert_snapshot!("render_text", render("text")));
}

#[test]
fn the_json_writer() {
    let rendered: Value = serde_json::from_str(&render("json")).unwrap();
    settings().bind(|| insta::assert_json_snapshot!("render_json", rendered));
}

#[test]
fn the_sarif_writer() {
    let rendered: Value = serde_json::from_str(&render("sarif")).unwrap();
    settings().bind(|| insta::assert_json_snapshot!("render_sarif", rendered));
}

#[test]
fn the_markdown_writer() {
    settings().bind(|| insta::assert_snapshot!("render_markdown", render("markdown")));
}

#[test]
fn the_html_writer() {
    settings().bind(|| insta::assert_snapshot!("render_html", render("html")));
}

#[test]
fn a_scanned_home() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = Secrets::new();
    let (_, report) = scan_home(tmp.path(), &secrets);
    assert_report_valid(&report, "the scan of the home");
    // What this run, this machine and this build say: redacted, the rest is the snapshot.
    let mut settings = settings();
    settings.add_filter(&regex_escape(tmp.path().to_str().unwrap()), "[TMP]");
    // Ages count days up to today, in the keys and in the advice built from them.
    settings.add_filter(r"first seen \d+ days ago", "first seen [N] days ago");
    for (selector, replacement) in [
        (".generated_at", "[time]"),
        (".host", "[host]"),
        (".tool.version", "[version]"),
        (".targets[].duration_ms", "[ms]"),
        (".keys[].age_days", "[days]"),
        (".keys[].locations[].dev", "[device]"),
        (".keys[].locations[].inode", "[inode]"),
    ] {
        settings.add_redaction(selector, replacement);
    }
    // The order of one key's git locations differs from run to run (seen with three commits
    // holding one key): sorted here, so that only what they say is compared.
    settings.add_redaction(".keys[].locations", insta::sorted_redaction());
    settings.bind(|| insta::assert_json_snapshot!("scanned_home", report));
}
