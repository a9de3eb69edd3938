//! The audit report end to end, through the real binary: one key shared by a production MCP
//! server and a development project becomes one entry with every location, both projects and
//! both environments; baselines, `--fail-on`, agent access logs, `report merge` and
//! `report render`; every JSON report validated against `schema/report-v1.json`, every SARIF
//! log against the official SARIF 2.1.0 schema, and the HTML page opened in headless Chromium.
use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kit::{
    accounts::TemporaryUser,
    git::{git_at, Repo},
    guard::root_or_skip,
    image::{layer_tar, legacy_image, ImageArchive},
    keys::{fingerprint, key, random, ALNUM, DIGITS},
    mkfifo,
    report::{assert_no_secret, key_by, strings},
    run::{json, run_ok, stderr, stdout},
    write,
};
use serde_json::{json, Value};

use crate::{
    detector,
    schema::{assert_report_valid, assert_valid, schema},
    DETECTOR,
};

const ORG_KEY: &str = "report-test-org";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    /// `…/home/alice`: her Cursor config runs the production GitHub server.
    home: PathBuf,
    /// `…/home/alice/work/webapp-dev`: a development project, a git repository whose history
    /// holds the same token.
    dev: PathBuf,
    /// The GitHub token both use.
    shared: String,
    /// A Hugging Face token only the development project has (still in its HEAD).
    dev_only: String,
    /// A deploy token the development project replaced with a reference: rotated.
    rotated: String,
    /// `webapp:prod` as `docker save` writes it: the shared token in a layer's file and in
    /// the image config's `Env`.
    image: PathBuf,
}

/// The keys the fixture's scan finds.
const KEYS: usize = 3;

impl Fixture {
    /// `detector scan mcp:HOME git:DEV docker-archive:IMAGE EXTRA…`.
    fn scan(&self, extra: &[&str]) -> Output {
        let home = format!("mcp:{}", self.home.display());
        let dev = format!("git:{}", self.dev.display());
        let image = format!("docker-archive:{}", self.image.display());
        let mut args = vec!["scan", &home, &dev, &image];
        args.extend_from_slice(extra);
        detector(&args, &self.root, Some(ORG_KEY))
    }

    fn secrets(&self) -> [&str; 3] {
        [&self.shared, &self.dev_only, &self.rotated]
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Write the files and commit them all in the development project on `date`.
    fn commit(&self, date: &str, files: &[(&str, &str)]) -> String {
        Repo::at(&self.dev, &self.root).commit(date, files, "update")
    }
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let home = root.join("home/alice");
    let dev = home.join("work/webapp-dev");
    let shared = key("ghp_", ALNUM, 36, 101);
    let dev_only = key("hf_", ALNUM, 34, 102);
    let rotated = key("ghp_", ALNUM, 36, 105);

    let config = json!({"mcpServers": {
        "github-prod": {
            "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": shared}
        },
        "search": {"command": "npx", "args": ["-y", "search-mcp"], "env": {"SEARCH_KEY": "${SEARCH_KEY}"}}
    }});
    write(
        &home.join(".cursor/mcp.json"),
        &serde_json::to_string_pretty(&config).unwrap(),
    );
    let image = docker_archive(
        &root.join("build"),
        IMAGE,
        &[("app/.env", &format!("GITHUB_TOKEN={shared}\n"))],
        &[
            "PATH=/usr/bin".to_string(),
            format!("GITHUB_TOKEN={shared}"),
        ],
        "2024-06-01T00:00:00Z",
    );
    let fixture = Fixture {
        _tmp: tmp,
        root,
        home,
        dev,
        shared,
        dev_only,
        rotated,
        image,
    };
    Repo::init(&fixture.dev, &fixture.root, "2024-01-10");
    let first = format!(
        "GITHUB_TOKEN={}\nHF_TOKEN={}\nDEPLOY_TOKEN={}\n",
        fixture.shared, fixture.dev_only, fixture.rotated
    );
    fixture.commit("2024-01-10", &[(".env", &first)]);
    // The project moved its tokens to references, all but the Hugging Face one.
    let second = format!(
        "GITHUB_TOKEN=${{GITHUB_TOKEN}}\nHF_TOKEN={}\nDEPLOY_TOKEN=${{DEPLOY_TOKEN}}\n",
        fixture.dev_only
    );
    fixture.commit("2024-03-01", &[(".env", &second)]);
    fixture
}

/// The reference of the fixture's image.
const IMAGE: &str = "webapp:prod";

/// A `docker save` archive of `reference` in `dir`: one layer holding `files` (with their
/// directories), the image config with `env`, created at `created`.
pub(crate) fn docker_archive(
    dir: &Path,
    reference: &str,
    files: &[(&str, &str)],
    env: &[String],
    created: &str,
) -> PathBuf {
    let mut entries: Vec<(String, &[u8])> = Vec::new();
    for (rel, text) in files {
        for (at, _) in rel.match_indices('/') {
            let parent = format!("{}/", &rel[..at]);
            if !entries.iter().any(|(name, _)| *name == parent) {
                entries.push((parent, b""));
            }
        }
        entries.push((rel.to_string(), text.as_bytes()));
    }
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let layer = layer_tar(&entries);
    let mut archive = ImageArchive::created_at(created);
    let image = legacy_image(
        &mut archive,
        reference,
        &[(&layer, "/bin/sh -c #(nop) COPY dir:app in /app")],
        json!({"Env": env}),
    );
    archive.json("manifest.json", &json!([image]));
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{}.tar", reference.replace(':', "-")));
    archive.write(&path).unwrap();
    path
}

#[test]
fn one_key_across_a_production_server_and_a_development_project() {
    let f = fixture();
    let output = f.scan(&[]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let report = json(&output);
    assert_report_valid(&report, "the scan report");
    assert_no_secret(&stdout(&output), f.secrets(), "the JSON report");

    assert_eq!(report["keys"].as_array().unwrap().len(), KEYS, "{report:#}");
    let shared = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.shared));
    // Live: the MCP config holds it now, though only the project's history has it there.
    assert_eq!(shared["status"], "live");
    assert_eq!(shared["severity"], "critical");
    let kinds: Vec<String> = shared["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"mcp-config".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"git".to_string()), "{kinds:?}");
    let in_history = shared["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "git")
        .unwrap();
    assert_eq!(in_history["path"], ".env");
    assert_eq!(in_history["in_head"], false);
    assert_eq!(in_history["commit_time"], "2024-01-10T12:00:00Z");
    // And the production image: a file in a layer, and the config's Env.
    for (kind, path) in [("image-layer", "/app/.env"), ("image-config", "config.Env")] {
        let at = shared["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} location: {shared:#}"));
        assert_eq!(at["image"], IMAGE);
        assert_eq!(at["path"], path);
    }
    assert_eq!(shared["first_seen"], "2024-01-10T12:00:00Z");
    assert_eq!(shared["overdue"], true, "live and older than 90 days");
    let projects = strings(&shared["scope"]["projects"]);
    assert!(projects.contains(&"user:alice".to_string()), "{projects:?}");
    assert!(projects.contains(&IMAGE.to_string()), "{projects:?}");
    assert!(
        projects.contains(&f.dev.display().to_string()),
        "{projects:?}"
    );
    let environments = strings(&shared["scope"]["environments"]);
    assert!(
        environments.contains(&"production".to_string()),
        "{environments:?}"
    );
    assert!(
        environments.contains(&"development".to_string()),
        "{environments:?}"
    );
    let violations = strings(&shared["violations"]);
    for v in [
        "plaintext-in-mcp-config",
        "in-git-history",
        "in-image-layer",
        "in-image-config",
        "shared-across-projects",
        "dev-prod-reuse",
        "overdue",
    ] {
        assert!(
            violations.contains(&v.to_string()),
            "{v} missing: {violations:?}"
        );
    }
    assert_eq!(shared["scope"]["mcp_servers"][0]["server"], "github-prod");
    let remediation = strings(&shared["remediation"]);
    assert!(
        remediation[0].starts_with("Rotate, then revoke"),
        "{remediation:?}"
    );
    assert!(
        remediation
            .iter()
            .any(|r| r.contains("${GITHUB_PERSONAL_ACCESS_TOKEN}")),
        "{remediation:?}"
    );
    assert!(remediation
        .iter()
        .any(|r| r.contains("one key per project")));
    let unique: std::collections::BTreeSet<&String> = remediation.iter().collect();
    assert_eq!(
        unique.len(),
        remediation.len(),
        "each step once: {remediation:#?}"
    );

    // The dev-only key is scoped to the development project alone.
    let dev_only = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.dev_only));
    assert_eq!(
        strings(&dev_only["scope"]["projects"]),
        [f.dev.display().to_string()]
    );
    assert!(!strings(&dev_only["violations"]).contains(&"shared-across-projects".to_string()));
    assert_eq!(dev_only["status"], "live", "HEAD still holds it");

    // The deploy token is only in history, and its slot holds a reference now.
    let rotated = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.rotated));
    assert_eq!(rotated["status"], "rotated");
    assert_eq!(rotated["rotated_to"]["slot"], "DEPLOY_TOKEN");
    assert_eq!(rotated["rotated_to"]["reference"], "env-ref");
    assert_eq!(rotated["overdue"], false, "only a live key is overdue");
    assert!(strings(&rotated["remediation"])[0].contains("revoked"));
    assert_eq!(report["summary"]["by_status"]["rotated"], 1);

    // The servers carry the seed checks, with the config's git status.
    let servers = report["mcp_servers"].as_array().unwrap();
    let prod = servers
        .iter()
        .find(|s| s["server"] == "github-prod")
        .unwrap();
    let check = |server: &Value, name: &str| -> Value {
        server["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {server:#}"))
            .clone()
    };
    assert_eq!(check(prod, "env-injection")["pass"], false);
    assert_eq!(check(prod, "secret-manager")["pass"], false);
    assert_eq!(check(prod, "config-git-ignored")["pass"], true);
    let search = servers.iter().find(|s| s["server"] == "search").unwrap();
    assert_eq!(check(search, "env-injection")["pass"], true);
    assert_eq!(report["summary"]["by_environment"]["development"], KEYS);
}

#[test]
fn a_config_inside_a_work_tree_must_be_git_ignored() {
    let f = fixture();
    let project = f.home.join("work/api");
    let config =
        json!({"mcpServers": {"db": {"command": "db-mcp", "env": {"DB_TOKEN": "${DB_TOKEN}"}}}});
    write(&project.join(".cursor/mcp.json"), &config.to_string());
    run_ok(
        Command::new("git")
            .args(["init", "-q"])
            .current_dir(&project),
    );
    let target = format!("mcp:{}", f.home.display());
    let checks = |output: &Output| -> Value {
        let report = json(output);
        assert_report_valid(&report, "the report");
        let server = report["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == "db")
            .unwrap_or_else(|| panic!("no db server: {report:#}"))
            .clone();
        server["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "config-git-ignored")
            .unwrap()
            .clone()
    };
    let dev = format!("dir:{}", project.display());
    let check = checks(&detector(&["scan", &target, &dev], &f.root, Some(ORG_KEY)));
    assert_eq!(check["pass"], false, "{check}");
    assert!(
        check["reason"].as_str().unwrap().contains("/.cursor/"),
        "{check}"
    );

    write(&project.join(".gitignore"), ".cursor/\n");
    let check = checks(&detector(&["scan", &target, &dev], &f.root, Some(ORG_KEY)));
    assert_eq!(check["pass"], true, "{check}");
    assert!(
        check["reason"].as_str().unwrap().contains("`.cursor/`"),
        "{check}"
    );

    // Committed before it was ignored: git still tracks it, and ignore rules do not apply.
    git_at(
        &project,
        &f.root,
        "2024-05-01",
        &["add", "-f", ".cursor/mcp.json"],
    );
    git_at(
        &project,
        &f.root,
        "2024-05-01",
        &["commit", "-q", "-m", "config"],
    );
    let check = checks(&detector(&["scan", &target, &dev], &f.root, Some(ORG_KEY)));
    assert_eq!(check["pass"], false, "{check}");
    assert!(
        check["reason"].as_str().unwrap().contains("tracked"),
        "{check}"
    );
}

#[test]
fn baselines_suppress_known_keys_and_fail_on_sets_the_exit_code() {
    let f = fixture();
    let baseline = f.path("baseline.json");
    let baseline_arg = baseline.display().to_string();

    // --fail-on: the shared key is critical, the dev-only key high.
    assert_eq!(f.scan(&["--fail-on", "critical"]).status.code(), Some(1));
    let output = f.scan(&["--write-baseline", &baseline_arg]);
    assert_eq!(output.status.code(), Some(1));
    let written: Value = serde_json::from_slice(&fs::read(&baseline).unwrap()).unwrap();
    assert_eq!(written["schema"], "detector/baseline/v1");
    assert_eq!(written["keys"].as_array().unwrap().len(), KEYS);
    assert_no_secret(&written.to_string(), f.secrets(), "the baseline");

    let output = f.scan(&["--baseline", &baseline_arg]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let report = json(&output);
    assert_report_valid(&report, "the baselined report");
    assert_eq!(report["summary"]["keys"], 0);
    assert_eq!(report["summary"]["suppressed"], KEYS);

    // A new high key fails `--fail-on high`; one marked `detector:allow` is not reported.
    let new = key("hf_", ALNUM, 34, 103);
    let allowed = key("hf_", ALNUM, 34, 106);
    f.commit(
        "2024-04-01",
        &[
            ("config/settings.env", &format!("HF_TOKEN={new}\n")),
            (
                "config/example.env",
                &format!("HF_TOKEN={allowed} # detector:allow (documentation sample)\n"),
            ),
        ],
    );
    let output = f.scan(&["--baseline", &baseline_arg]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["summary"]["keys"], 1);
    assert_eq!(report["summary"]["suppressed"], KEYS);
    assert_eq!(
        report["keys"][0]["fingerprint"],
        fingerprint(ORG_KEY.as_bytes(), &new)
    );
    let output = f.scan(&["--baseline", &baseline_arg, "--fail-on", "critical"]);
    assert_eq!(output.status.code(), Some(0));
    let text = f.scan(&["--baseline", &baseline_arg, "--format", "text"]);
    assert!(stdout(&text).contains(&format!("{KEYS} keys suppressed by the baseline")));

    // A saved report is a baseline too.
    let saved = f.path("saved.json");
    fs::write(&saved, f.scan(&[]).stdout).unwrap();
    let output = f.scan(&["--baseline", &saved.display().to_string()]);
    assert_eq!(json(&output)["summary"]["suppressed"], KEYS + 1);

    // A baseline that cannot be read is a usage error, named.
    let broken = f.path("broken.json");
    fs::write(&broken, "{").unwrap();
    let output = f.scan(&["--baseline", &broken.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(&broken.display().to_string()));

    // So is one that is a FIFO or a device (a repository under scan may hold a symlink to
    // one): refused by its type, not read forever. `report render` reads the same way.
    let fifo = f.path("fifo.json");
    mkfifo(&fifo);
    let zero = f.path("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (path, what) in [(&fifo, "FIFO"), (&zero, "device")] {
        let path = path.display().to_string();
        for output in [
            f.scan(&["--baseline", &path]),
            detector(&["report", "render", &path], &f.root, Some(ORG_KEY)),
        ] {
            assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
            let error = stderr(&output);
            assert!(error.contains(&path) && error.contains(what), "{error}");
        }
    }
}

#[test]
fn access_logs_name_who_read_each_key() {
    let f = fixture();
    let config = f.home.join(".cursor/mcp.json");
    let meta = fs::metadata(&config).unwrap();
    let dev = format!("{}:{}", libc::major(meta.dev()), libc::minor(meta.dev()));
    let open = |file: &Path, ino: u64, exe: &str, verdict: &str, pid: u32| {
        json!({
            "type": "open", "time": "2025-05-30T08:15:02.123456789Z", "seq": pid, "prev": "",
            "file": file, "dev": dev, "ino": ino, "syscall": "openat", "flags": 0,
            "access": "read", "result": 3, "pid": pid, "tid": pid, "ppid": 1, "uid": 1000,
            "gid": 1000, "comm": Path::new(exe).file_name().unwrap().to_str().unwrap(),
            "exe": exe, "cmdline": [exe], "ancestry": [], "cgroup_id": 1,
            "verdict": verdict, "policy_rule": null, "mcp_client": "cursor", "mcp_server": null
        })
        .to_string()
    };
    let events = f.path("events.jsonl");
    let lines = [
        json!({"type": "ready", "time": "2025-05-30T08:15:00Z", "seq": 0}).to_string(),
        open(&config, meta.ino(), "/usr/bin/cursor", "allow", 100),
        // Another name for the same inode: joined by identity.
        open(
            &f.path("elsewhere/link.json"),
            meta.ino(),
            "/usr/bin/curl",
            "alert",
            200,
        ),
        "{\"type\": \"open\", \"time\": ".to_string(),
        open(
            &f.path("unrelated"),
            meta.ino() + 1_000_000,
            "/usr/bin/cat",
            "alert",
            300,
        ),
    ];
    fs::write(&events, lines.join("\n") + "\n").unwrap();

    let events_arg = events.display().to_string();
    let output = f.scan(&["--access-log", &events_arg]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains(&format!("{events_arg}:4:")), "{err}");
    let report = json(&output);
    assert_report_valid(&report, "the report with an access log");
    let shared = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.shared));
    let readers = shared["accessed_by"].as_array().unwrap();
    assert_eq!(readers.len(), 2, "{readers:#?}");
    assert_eq!(readers[0]["exe"], "/usr/bin/cursor");
    assert_eq!(readers[0]["allowed"], true);
    assert_eq!(readers[1]["exe"], "/usr/bin/curl");
    assert_eq!(readers[1]["allowed"], false);
    assert_eq!(readers[1]["pid"], 200);
    assert!(strings(&shared["violations"]).contains(&"read-by-unexpected-process".to_string()));
    assert!(strings(&shared["remediation"])
        .iter()
        .any(|r| r.contains("/usr/bin/curl")));
    let dev_only = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.dev_only));
    assert!(dev_only["accessed_by"].as_array().unwrap().is_empty());

    let log_target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "access-log")
        .unwrap();
    assert_eq!(log_target["objects_scanned"], 4);
    assert!(log_target["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("line 4:"));

    // A missing log fails its own target, not the scan.
    let output = f.scan(&[
        "--access-log",
        &f.path("missing.jsonl").display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("missing.jsonl"));
}

#[test]
fn reports_of_many_hosts_merge_into_one_map() {
    let f = fixture();
    let a = f.path("a.json");
    fs::write(&a, f.scan(&[]).stdout).unwrap();

    // Another host: the shared key only in history there (removed), plus a key of its own.
    let other = key("ghp_", ALNUM, 36, 104);
    let mut b: Value = serde_json::from_slice(&fs::read(&a).unwrap()).unwrap();
    b["host"] = json!("ci-runner-7");
    let keys = b["keys"].as_array_mut().unwrap();
    keys.retain(|k| k["fingerprint"] == fingerprint(ORG_KEY.as_bytes(), &f.shared));
    keys[0]["status"] = json!("removed");
    keys[0]["first_seen"] = json!("2020-01-01T00:00:00Z");
    keys[0]["scope"]["projects"] = json!(["https://git.example/org/infra"]);
    let mut extra = keys[0].clone();
    extra["fingerprint"] = json!(fingerprint(ORG_KEY.as_bytes(), &other));
    extra["redacted"] = json!("ghp_…zzzz");
    keys.push(extra);
    let b_path = f.path("b.json");
    fs::write(&b_path, serde_json::to_string(&b).unwrap()).unwrap();

    let out = f.path("merged.json");
    let output = detector(
        &[
            "report",
            "merge",
            &a.display().to_string(),
            &b_path.display().to_string(),
            "--format",
            "json",
            "-o",
            &out.display().to_string(),
        ],
        &f.root,
        None,
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let merged: Value = serde_json::from_slice(&fs::read(&out).unwrap()).unwrap();
    assert_report_valid(&merged, "the merged report");
    assert_eq!(merged["keys"].as_array().unwrap().len(), KEYS + 1);
    let shared = key_by(&merged, &fingerprint(ORG_KEY.as_bytes(), &f.shared));
    assert_eq!(shared["status"], "live", "live anywhere is live");
    assert_eq!(shared["first_seen"], "2020-01-01T00:00:00Z");
    assert!(shared["overdue"].as_bool().unwrap());
    assert!(strings(&shared["violations"]).contains(&"overdue".to_string()));
    let projects = strings(&shared["scope"]["projects"]);
    assert!(projects.contains(&"https://git.example/org/infra".to_string()));
    assert!(projects.contains(&"user:alice".to_string()));
    let hosts: Vec<&str> = shared["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["host"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&"ci-runner-7"), "{hosts:?}");
    assert!(hosts.len() >= 4, "locations of both hosts: {hosts:?}");
    assert!(strings(&merged["hosts"]).contains(&"ci-runner-7".to_string()));
    assert!(merged["host"].is_null());
    // Both hosts' servers hold the key: the per-project check fails across hosts.
    let failing: Vec<&Value> = merged["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["server"] == "github-prod")
        .collect();
    assert_eq!(failing.len(), 2);
    for server in failing {
        let check = server["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "per-project-key")
            .unwrap();
        assert_eq!(check["pass"], false, "{check}");
        assert!(check["reason"].as_str().unwrap().contains("another host"));
    }

    // --fail-on turns the merged map into a gate; a baseline suppresses.
    let gate = detector(
        &[
            "report",
            "merge",
            &a.display().to_string(),
            &b_path.display().to_string(),
            "--fail-on",
            "critical",
        ],
        &f.root,
        None,
    );
    assert_eq!(gate.status.code(), Some(1));
    let render = detector(
        &[
            "report",
            "render",
            &out.display().to_string(),
            "--baseline",
            &a.display().to_string(),
            "--fail-on",
            "critical",
            "--format",
            "json",
        ],
        &f.root,
        None,
    );
    assert_eq!(
        render.status.code(),
        Some(1),
        "the other host's key remains"
    );
    let rendered = json(&render);
    assert_report_valid(&rendered, "the rendered report");
    assert_eq!(rendered["summary"]["keys"], 1);
    assert_eq!(rendered["summary"]["suppressed"], KEYS);

    // A file that is not a report is named.
    let output = detector(
        &[
            "report",
            "render",
            &f.dev.join(".env").display().to_string(),
        ],
        &f.root,
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains(".env"));
}

#[test]
fn every_format_hides_secrets_and_sarif_validates() {
    let f = fixture();
    for format in ["text", "json", "sarif", "markdown", "html"] {
        let output = f.scan(&["--format", format]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{format}: {}",
            stderr(&output)
        );
        assert_no_secret(&stdout(&output), f.secrets(), format);
        assert_no_secret(&stderr(&output), f.secrets(), format);
    }
    let shown = f.scan(&["--format", "markdown", "--show-secrets"]);
    assert!(stdout(&shown).contains(&f.shared));
    let shown = f.scan(&["--format", "sarif", "--show-secrets"]);
    assert_no_secret(
        &stdout(&shown),
        f.secrets(),
        "SARIF, even with --show-secrets",
    );

    let sarif = json(&f.scan(&["--format", "sarif"]));
    assert_valid(&schema("sarif-2.1.0.json"), &sarif, "the SARIF log");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: Vec<String> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let results = run["results"].as_array().unwrap();
    // One result per place a key was seen.
    let report = json(&f.scan(&["--format", "json"]));
    let places: usize = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["locations"].as_array().unwrap().len())
        .sum();
    assert_eq!(results.len(), places, "{results:#?}");
    let fp = fingerprint(ORG_KEY.as_bytes(), &f.shared);
    let hex = fp.trim_start_matches("hmac-sha256:");
    let shared: Vec<&Value> = results
        .iter()
        .filter(|r| r["partialFingerprints"]["detectorKey/v1"] == hex)
        .collect();
    // The MCP config, the git history, the image's layer and its config.
    assert_eq!(shared.len(), 4);
    for result in &shared {
        let rule = result["ruleId"].as_str().unwrap();
        assert_eq!(rules[result["ruleIndex"].as_u64().unwrap() as usize], rule);
        assert_eq!(result["level"], "error");
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(
            ["mcp.json", ".env", "config.Env"]
                .iter()
                .any(|end| uri.ends_with(end)),
            "{uri}"
        );
        if result["properties"]["image"].is_string() {
            let logical = &result["locations"][0]["logicalLocations"][0]["name"];
            assert!(logical.as_str().unwrap().starts_with(IMAGE), "{logical}");
        }
        assert!(
            result["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                >= 1
        );
    }
    let places: std::collections::BTreeSet<&str> = shared
        .iter()
        .map(|r| {
            r["partialFingerprints"]["detectorLocation/v1"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(places.len(), shared.len(), "one alert identity per place");

    // Markdown: the summary table and one section per key.
    let md = stdout(&f.scan(&["--format", "markdown"]));
    assert!(md.starts_with("# detector report"));
    assert!(md.contains("| # | Severity | Key |"));
    assert!(md.contains("### 1. GitHub"), "{md}");
    assert!(md.contains("shared-across-projects"));
    assert!(md.contains("## MCP servers"));
}

/// Headless Chromium's DOM of `file` (with `fragment`) and its log: see [`kit::chromium`].
fn chromium(file: &Path, fragment: &str, profile: &Path) -> (String, String) {
    let page = kit::chromium::open(file, fragment, profile);
    assert!(
        page.requests.is_empty(),
        "the page asked for {:?}",
        page.requests
    );
    (page.dom, page.log)
}

#[test]
fn html_report_renders_in_chromium_without_script_errors() {
    let f = fixture();
    let page = f.path("report.html");
    let output = f.scan(&["--format", "html", "-o", &page.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let html = fs::read_to_string(&page).unwrap();
    assert_no_secret(&html, f.secrets(), "the HTML report");
    // Self-contained: nothing to fetch.
    for needle in ["<link", " src=", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(needle), "the page loads something: {needle}");
    }
    assert!(html.contains("<svg"), "charts and timelines are inline SVG");

    let profile = f.path("chromium-profile");
    let (dom, log) = chromium(&page, "", &profile);
    assert!(
        dom.contains("data-rendered=\"ok\""),
        "the script did not finish:\n{log}"
    );
    assert!(
        !dom.contains("data-script-error=\""),
        "script error:\n{dom}"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:#?}");
    assert!(dom.contains("Rendered 3 keys, 3 shown."), "{dom}");
    assert!(dom.contains("3 of 3 keys shown"));
    assert!(dom.contains("id=\"chart-status\""));
    assert!(dom.contains("id=\"chart-severity\""));
    assert!(dom.contains("id=\"chart-environment\""));
    assert!(dom.contains("class=\"timeline\""));

    // Filters, set from the fragment: by severity, then by a text no key has.
    assert!(
        dom.contains("class=\"rotated\""),
        "the rotated key's timeline marks it"
    );
    let (dom, _) = chromium(&page, "#severity=critical", &profile);
    assert!(dom.contains("Rendered 3 keys, 2 shown."), "{dom}");
    let (dom, _) = chromium(&page, "#environment=development&q=hugging", &profile);
    assert!(dom.contains("Rendered 3 keys, 1 shown."), "{dom}");
    let (dom, _) = chromium(&page, "#status=rotated", &profile);
    assert!(dom.contains("Rendered 3 keys, 1 shown."), "{dom}");
    let (dom, _) = chromium(&page, "#status=removed", &profile);
    assert!(dom.contains("Rendered 3 keys, 0 shown."), "{dom}");
    assert!(
        !dom.contains("id=\"no-match\" class=\"empty\" hidden"),
        "the no-match note shows"
    );
}

#[test]
fn audit_scans_the_homes_it_is_given() {
    let f = fixture();
    let repo = f.home.join("work/api");
    write(&repo.join("README.md"), "api\n");
    // Downloaded code in a tool's tree is left out unless asked for.
    let vendored = key("ghp_", ALNUM, 36, 107);
    write(
        &f.home
            .join(".cargo/registry/src/index/crate-1.0/tests/data.txt"),
        &format!("token = \"{vendored}\"\n"),
    );
    run_ok(Command::new("git").args(["init", "-q"]).current_dir(&repo));
    let home = f.home.display().to_string();
    let output = detector(
        &["audit", "--home", &home, "--no-images", "--format", "json"],
        &f.root,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("detector audit: 1 home"), "{err}");
    let report = json(&output);
    assert_report_valid(&report, "the audit report");
    let targets: Vec<String> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap().to_string())
        .collect();
    assert!(targets.contains(&format!("mcp:{home}")), "{targets:?}");
    assert!(targets.contains(&format!("dir:{home}")), "{targets:?}");
    // The repositories under the home, history and all.
    assert!(
        targets.contains(&format!("git:{}", f.dev.display())),
        "{targets:?}"
    );
    assert!(
        targets.contains(&format!("git:{}", repo.display())),
        "{targets:?}"
    );
    assert_eq!(report["keys"].as_array().unwrap().len(), KEYS);
    let rotated = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.rotated));
    assert_eq!(rotated["status"], "rotated");
    // The home's walk and the repository's history see the same `.env`: one project, the
    // repository's, not the home's too.
    let dev_only = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.dev_only));
    let kinds: Vec<&str> = dev_only["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"file") && kinds.contains(&"git"),
        "{kinds:?}"
    );
    assert_eq!(
        strings(&dev_only["scope"]["projects"]),
        [f.dev.display().to_string()]
    );
    assert!(!strings(&dev_only["violations"]).contains(&"shared-across-projects".to_string()));
    let shared = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.shared));
    assert_eq!(
        strings(&shared["scope"]["projects"]),
        [f.dev.display().to_string(), "user:alice".to_string()]
    );
    assert!(strings(&shared["violations"]).contains(&"plaintext-in-mcp-config".to_string()));
    assert_no_secret(&stdout(&output), f.secrets(), "the audit report");

    let all = detector(
        &[
            "audit",
            "--home",
            &home,
            "--no-images",
            "--all-files",
            "--format",
            "json",
        ],
        &f.root,
        Some(ORG_KEY),
    );
    let all = json(&all);
    assert_eq!(all["keys"].as_array().unwrap().len(), KEYS + 1);
    key_by(&all, &fingerprint(ORG_KEY.as_bytes(), &vendored));

    let missing = f.path("nobody");
    let output = detector(
        &["audit", "--home", &missing.display().to_string()],
        &f.root,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nobody"));
}

/// A Docker daemon that knows one image and no container: it lists the image, inspects it and
/// saves it.
fn fake_docker_daemon(socket: &Path, reference: &'static str, archive: Vec<u8>) {
    kit::docker::fake_daemon(socket, move |path| {
        let image = format!("/images/{reference}");
        if path.starts_with("/containers/json") {
            ("200 OK", b"[]".to_vec())
        } else if path == "/images/json" {
            let list = json!([{"Id": "sha256:00", "RepoTags": [reference]}]);
            ("200 OK", list.to_string().into_bytes())
        } else if path == format!("{image}/json") {
            ("200 OK", b"{}".to_vec())
        } else if path == format!("{image}/get") {
            ("200 OK", archive.clone())
        } else {
            ("404 Not Found", br#"{"message":"no such image"}"#.to_vec())
        }
    });
}

#[test]
fn audit_reads_the_local_daemons_images() {
    let f = fixture();
    let socket = f.path("docker.sock");
    fake_docker_daemon(&socket, IMAGE, fs::read(&f.image).unwrap());
    let output = Command::new(DETECTOR)
        .args(["audit", "--home", &f.home.display().to_string()])
        .args(["--format", "json"])
        .env("HOME", &f.root)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("DETECTOR_STORE", kit::run::store_in(&f.root))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    assert!(stderr(&output).contains("1 image"), "{}", stderr(&output));
    let report = json(&output);
    assert_report_valid(&report, "the audit report with images");
    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == format!("docker:{IMAGE}"))
        .unwrap_or_else(|| panic!("no docker target: {:#}", report["targets"]));
    assert_eq!(target["failed"], false, "{target:#}");
    let shared = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &f.shared));
    let kinds: Vec<&str> = shared["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    for kind in ["mcp-config", "git", "image-layer", "image-config"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert!(strings(&shared["scope"]["projects"]).contains(&IMAGE.to_string()));
}

fn environments(key: &Value) -> Vec<String> {
    strings(&key["scope"]["environments"])
}

#[test]
fn environments_come_from_branches_paths_and_secret_managers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let on_branch = key("ghp_", ALNUM, 36, 201);
    let in_path = key("ghp_", ALNUM, 36, 202);
    let beside_reference = key("ghp_", ALNUM, 36, 203);
    let password = ["pw", &random(ALNUM, 12, 204)].concat();

    // A repository on a branch named `production`, whose origin URL carries a credential.
    let repo = root.join("payments");
    fs::create_dir_all(&repo).unwrap();
    git_at(
        &repo,
        root,
        "2024-05-01",
        &["init", "--quiet", "-b", "production"],
    );
    let origin = format!("https://deployer:{password}@github.com/acme/payments.git");
    git_at(
        &repo,
        root,
        "2024-05-01",
        &["remote", "add", "origin", &origin],
    );
    write(
        &repo.join("app.cfg"),
        &format!("GITHUB_TOKEN={on_branch}\n"),
    );
    git_at(&repo, root, "2024-05-01", &["add", "-A"]);
    git_at(
        &repo,
        root,
        "2024-05-01",
        &["commit", "--quiet", "-m", "app"],
    );

    // A directory whose path names the environment.
    let site = root.join("site");
    write(
        &site.join("deploy/staging/.env"),
        &format!("GITHUB_TOKEN={in_path}\n"),
    );

    // A credential file whose path says nothing, its other secret kept in a staging vault.
    let beside_arn = key("ghp_", ALNUM, 36, 206);
    write(
        &site.join("services/billing/.env"),
        &format!(
            "GITHUB_TOKEN={beside_arn}\nDB_PASSWORD=arn:aws:secretsmanager:eu-west-1:{}:secret:staging/billing-db\n",
            random(DIGITS, 12, 207)
        ),
    );

    // An MCP server whose name says nothing, with its database password in a production vault.
    let home = root.join("home/bob");
    let account = random(DIGITS, 12, 205);
    let config = json!({"mcpServers": {"billing": {
        "command": "npx", "args": ["-y", "billing-mcp"],
        "env": {
            "GITHUB_TOKEN": beside_reference,
            "DB_PASSWORD": format!("arn:aws:secretsmanager:us-east-1:{account}:secret:prod/billing-db"),
        }
    }}});
    write(
        &home.join(".cursor/mcp.json"),
        &serde_json::to_string_pretty(&config).unwrap(),
    );

    let output = detector(
        &[
            "scan",
            &format!("git:{}", repo.display()),
            &format!("dir:{}", site.display()),
            &format!("mcp:{}", home.display()),
            "--format",
            "json",
        ],
        root,
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let report = json(&output);
    assert_report_valid(&report, "the environments report");
    let secrets = [
        &on_branch,
        &in_path,
        &beside_reference,
        &beside_arn,
        &password,
    ]
    .map(String::as_str);
    assert_no_secret(&stdout(&output), secrets, "the environments report");
    assert_no_secret(&stderr(&output), secrets, "the scan's messages");

    let branch = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &on_branch));
    assert_eq!(environments(branch), ["production"], "{branch:#}");
    assert_eq!(
        strings(&branch["scope"]["projects"]),
        ["https://github.com/acme/payments.git"],
        "the remote URL without its credential"
    );
    let path = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &in_path));
    assert_eq!(environments(path), ["staging"], "{path:#}");
    let manager = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &beside_reference));
    assert_eq!(environments(manager), ["production"], "{manager:#}");
    let file = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &beside_arn));
    assert_eq!(environments(file), ["staging"], "{file:#}");
}

#[test]
fn a_saved_report_renders_in_every_format() {
    let f = fixture();
    let saved = f.path("saved.json");
    let output = f.scan(&["--format", "json", "-o", &saved.display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let file = saved.display().to_string();
    for format in ["html", "sarif", "markdown", "text"] {
        let output = detector(
            &["report", "render", &file, "--format", format],
            &f.root,
            None,
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{format}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(!text.trim().is_empty(), "{format}: nothing rendered");
        assert_no_secret(&text, f.secrets(), &format!("the rendered {format}"));
        assert_no_secret(&stderr(&output), f.secrets(), format);
        match format {
            "sarif" => {
                let sarif = json(&output);
                assert_valid(&schema("sarif-2.1.0.json"), &sarif, "the rendered SARIF");
                let results = sarif["runs"][0]["results"].as_array().unwrap();
                assert!(!results.is_empty(), "no results in the rendered SARIF");
            }
            "html" => assert!(text.contains("<svg"), "the HTML has its charts"),
            "markdown" => assert!(text.starts_with("# detector report"), "{text}"),
            _ => assert!(text.contains("Targets"), "{text}"),
        }
        // Every key of the saved report is there, under its fingerprint or redacted form.
        if format != "sarif" {
            let saved: Value = serde_json::from_slice(&fs::read(&saved).unwrap()).unwrap();
            for key in saved["keys"].as_array().unwrap() {
                let redacted = key["redacted"].as_str().unwrap();
                let fp = key["fingerprint"].as_str().unwrap();
                assert!(
                    text.contains(redacted) || text.contains(fp),
                    "{format}: key {fp} missing"
                );
            }
        }
    }
}

#[test]
fn text_in_a_pipe_is_plain_even_without_no_color() {
    let f = fixture();
    // Not `crate::detector`: that sets NO_COLOR, which would make this check pass anyway.
    let output = Command::new(DETECTOR)
        .args([
            "scan",
            &format!("mcp:{}", f.home.display()),
            &format!("git:{}", f.dev.display()),
            "--format",
            "text",
        ])
        .env("HOME", &f.root)
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Targets"), "{text}");
    assert!(!text.contains('\x1b'), "escape codes in a pipe:\n{text:?}");
    assert!(!stderr(&output).contains('\x1b'), "escape codes on stderr");
    assert_no_secret(&text, f.secrets(), "the text report");
}

/// `detector audit` exactly as README's first command runs it: no arguments, as root, so every
/// home on the host. Images are not turned off: with no Docker daemon the audit says so and
/// goes on; with one, its local images are part of the run.
#[test]
fn audit_with_no_arguments_reads_every_home_on_the_host() {
    if !root_or_skip("`detector audit` with no arguments reads every home") {
        return;
    }
    let user = TemporaryUser::create("draudit");
    let in_config = key("ghp_", ALNUM, 36, 301);
    let in_file = key("hf_", ALNUM, 34, 302);
    let config = json!({"mcpServers": {"github": {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": in_config}
    }}});
    write(
        &user.home.join(".cursor/mcp.json"),
        &serde_json::to_string_pretty(&config).unwrap(),
    );
    write(
        &user.home.join("notes/hf.env"),
        &format!("HF_TOKEN={in_file}\n"),
    );
    run_ok(
        Command::new("chown")
            .args(["-R", &format!("{0}:{0}", user.name)])
            .arg(&user.home),
    );

    let tmp = tempfile::tempdir().unwrap();
    let report_path = tmp.path().join("audit.json");
    // A whole host may take a while, but not forever: `timeout` turns a hang into a failure.
    let output = Command::new("timeout")
        .args(["600", DETECTOR, "audit", "--format", "json", "-o"])
        .arg(&report_path)
        .env("HOME", tmp.path())
        .env("DETECTOR_STORE", kit::run::store_in(tmp.path()))
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("NO_COLOR", "1")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "detector audit exited {:?} (124: killed after 600 s): {err}",
        output.status.code()
    );
    let secrets = [in_config.as_str(), in_file.as_str()];
    assert_no_secret(&err, secrets, "the audit's messages");
    assert_no_secret(&stdout(&output), secrets, "the audit's output");
    let home = user.home.display().to_string();
    assert!(
        err.contains(&home),
        "the new home is among the audited: {err}"
    );
    assert!(
        err.contains("recorded in sqlite:") && err.contains("first run of its kind"),
        "the audit is recorded in the inventory: {err}"
    );

    let text = fs::read_to_string(&report_path).unwrap();
    assert_no_secret(&text, secrets, "the host's audit report");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["scope"], "audit");
    assert_report_valid(&report, "the host's audit report");
    let targets: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    for target in [
        format!("mcp:{home}"),
        format!("dir:{home}"),
        "mcp:/root".into(),
    ] {
        assert!(
            targets.contains(&target.as_str()),
            "{target} not in {targets:?}"
        );
    }
    let configured = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &in_config));
    assert_eq!(configured["status"], "live");
    assert_eq!(
        strings(&configured["scope"]["projects"]),
        [format!("user:{}", user.name)]
    );
    assert!(strings(&configured["violations"]).contains(&"plaintext-in-mcp-config".to_string()));
    let filed = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &in_file));
    let paths: Vec<&str> = filed["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [format!("{home}/notes/hf.env")]);
    // Keys were found, at least these two at `high`: the exit code says so.
    assert_eq!(output.status.code(), Some(1), "{err}");
}

#[test]
fn a_key_only_in_an_image_dates_from_the_layer_that_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let only_here = key("hf_", ALNUM, 34, 131);
    let image = docker_archive(
        tmp.path(),
        "worker:2",
        &[("srv/.env", &format!("HF_TOKEN={only_here}\n"))],
        &["PATH=/usr/bin".to_string()],
        "2023-03-04T05:06:07Z",
    );
    let output = detector(
        &[
            "scan",
            &format!("docker-archive:{}", image.display()),
            "--format",
            "json",
        ],
        tmp.path(),
        Some(ORG_KEY),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_report_valid(&report, "an image-only report");
    let entry = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &only_here));
    // Seen first (and last: it is the only evidence) when the layer that holds it was made.
    assert_eq!(entry["first_seen"], "2023-03-04T05:06:07Z", "{entry:#}");
    assert_eq!(entry["last_seen"], "2023-03-04T05:06:07Z", "{entry:#}");
    assert_eq!(entry["status"], "live");
    assert!(entry["age_days"].as_u64().unwrap() > 365, "{entry:#}");
}
