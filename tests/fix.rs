//! `detector fix`: configs of each client family (JSON, JSONC with comments, TOML, YAML) with
//! literal keys, rewritten to the client's own reference syntax, a forwarding field or a
//! wrapper; the keys in the env-file store; dry runs that change nothing and print no key;
//! faults (a failed rename, a file changed between read and write) that lose nothing.
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kit::{
    keys::{key, ALNUM},
    run::{deadline, detector_command, json, run_with_deadline, stdout},
    write,
};

use crate::{detector, DETECTOR};

const ORG_KEY: &str = "fix-test-org";

/// One client's config with one literal key, and what the key must become.
struct Case {
    client: &'static str,
    /// Relative to the home.
    path: &'static str,
    /// `{KEY}` stands for the key.
    text: &'static str,
    /// Text the fixed file must hold.
    expect: &'static str,
    /// Text of the original that must survive (a comment).
    keep: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        client: "claude-code (${VAR}, a terminal client)",
        path: "proj/.mcp.json",
        text: r#"{"mcpServers": {"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "{KEY}"}}}}"#,
        expect: r#""GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_PERSONAL_ACCESS_TOKEN}""#,
        keep: None,
    },
    Case {
        client: "vscode (JSONC with comments, ${env:VAR} in a header)",
        path: ".config/Code/User/mcp.json",
        text: "{\n  // remote servers\n  \"servers\": {\n    \"linear\": {\n      \"type\": \"http\",\n      \"url\": \"https://mcp.linear.app/mcp\", // the hosted one\n      \"headers\": { \"Authorization\": \"Bearer {KEY}\" },\n    },\n  },\n}\n",
        expect: r#""Authorization": "Bearer ${env:LINEAR_AUTHORIZATION}""#,
        keep: Some("// the hosted one"),
    },
    Case {
        client: "opencode ({env:VAR})",
        path: ".config/opencode/opencode.json",
        text: "{\n  \"mcp\": {\n    \"github\": {\n      \"type\": \"local\",\n      \"command\": [\"npx\", \"-y\", \"@modelcontextprotocol/server-github\"],\n      \"environment\": { \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{KEY}\" }\n    }\n  }\n}\n",
        expect: r#""GITHUB_PERSONAL_ACCESS_TOKEN": "{env:GITHUB_PERSONAL_ACCESS_TOKEN}""#,
        keep: None,
    },
    Case {
        client: "gemini-cli ($VAR)",
        path: ".gemini/settings.json",
        text: r#"{"mcpServers": {"github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "{KEY}"}}}}"#,
        expect: r#""GITHUB_PERSONAL_ACCESS_TOKEN": "$GITHUB_PERSONAL_ACCESS_TOKEN""#,
        keep: None,
    },
    Case {
        client: "codex (TOML, env_vars forwarding)",
        path: ".codex/config.toml",
        text: "# my codex\nmodel = \"o3\"\n\n[mcp_servers.github]\ncommand = \"npx\" # from npm\nargs = [\"-y\", \"@modelcontextprotocol/server-github\"]\n\n[mcp_servers.github.env]\nGITHUB_PERSONAL_ACCESS_TOKEN = \"{KEY}\"\n",
        expect: "env_vars = [\"GITHUB_PERSONAL_ACCESS_TOKEN\"]",
        keep: Some("command = \"npx\" # from npm"),
    },
    Case {
        client: "continue (YAML, ${{ secrets.X }})",
        path: ".continue/config.yaml",
        text: "name: mine\nversion: 1.0.0\nmcpServers:\n  - name: github\n    command: npx   # from npm\n    args: [\"-y\", \"@modelcontextprotocol/server-github\"]\n    env:\n      GITHUB_PERSONAL_ACCESS_TOKEN: {KEY}\n",
        expect: "GITHUB_PERSONAL_ACCESS_TOKEN: ${{ secrets.GITHUB_PERSONAL_ACCESS_TOKEN }}",
        keep: Some("command: npx   # from npm"),
    },
    Case {
        client: "goose (YAML, keyring-backed env_keys)",
        path: ".config/goose/config.yaml",
        text: "GOOSE_PROVIDER: anthropic\nextensions:\n  github:\n    type: stdio\n    name: github\n    cmd: npx   # from npm\n    args:\n      - -y\n      - \"@modelcontextprotocol/server-github\"\n    envs:\n      GITHUB_PERSONAL_ACCESS_TOKEN: {KEY}\n    env_keys: []\n    timeout: 300\n",
        expect: "env_keys: [\"GITHUB_PERSONAL_ACCESS_TOKEN\"]",
        keep: Some("cmd: npx   # from npm"),
    },
    Case {
        client: "claude-desktop (a desktop app: wrapper)",
        path: ".config/Claude/claude_desktop_config.json",
        text: "{\n  \"mcpServers\": {\n    \"github\": {\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@modelcontextprotocol/server-github\"],\n      \"env\": { \"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{KEY}\", \"LOG\": \"1\" }\n    }\n  }\n}\n",
        expect: "/.local/share/detector/wrappers/claude-desktop-github-",
        keep: Some("\"LOG\": \"1\""),
    },
];

fn github_key(seed: u64) -> String {
    key("ghp_", ALNUM, 36, seed)
}

fn fix(home: &Path, args: &[&str]) -> Output {
    let mut all = vec!["fix"];
    all.extend_from_slice(args);
    detector(&all, home, Some(ORG_KEY))
}

fn fix_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["fix"];
    all.extend_from_slice(args);
    let mut cmd = detector_command(Path::new(DETECTOR), &all, home, Some(ORG_KEY));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_deadline(cmd, deadline(), "detector fix")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// Nothing a fix could leave behind: backups, editor-style copies, temporary files.
fn assert_no_leftovers(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !(name.ends_with(".bak") || name.ends_with('~') || name.starts_with(".detector-fix-")),
            "left behind in {}: {name}",
            dir.display()
        );
    }
}

/// A Claude Desktop config whose server `probe` writes the SHA-256 of the `GITHUB_TOKEN` it
/// gets into the returned file; the key is a literal of its env.
fn probe_config(home: &Path, secret: &str) -> (PathBuf, PathBuf) {
    let seen = home.join("seen");
    let config = home.join(".config/Claude/claude_desktop_config.json");
    let server = serde_json::json!({"mcpServers": {"probe": {
        "command": "sh",
        "args": ["-c", format!("printf %s \"$GITHUB_TOKEN\" | sha256sum > '{}'", seen.display())],
        "env": {"GITHUB_TOKEN": secret},
    }}});
    write(&config, &serde_json::to_string_pretty(&server).unwrap());
    (config, seen)
}

/// The probe server saw exactly `secret`.
fn assert_probe_saw(seen: &Path, secret: &str) {
    let expected = kit::image::sha256(secret.as_bytes())
        .trim_start_matches("sha256:")
        .to_string();
    let got = fs::read_to_string(seen).unwrap();
    assert!(
        got.starts_with(&expected),
        "the server saw another value: {got} (want {expected})"
    );
}

fn env_file(home: &Path) -> PathBuf {
    home.join(".config/detector/keys.env")
}

#[test]
fn each_client_family_gets_its_own_syntax() {
    for (i, case) in CASES.iter().enumerate() {
        let temp = tempfile::tempdir().unwrap();
        let home = temp.path();
        let secret = github_key(100 + i as u64);
        let config = home.join(case.path);
        let original = case.text.replace("{KEY}", &secret);
        write(&config, &original);
        let target = format!("file:{}", config.display());

        // A dry run changes nothing, prints the diff, and no key.
        let dry = fix(home, &[&target]);
        let out = stdout(&dry);
        assert_eq!(code(&dry), 1, "{}: dry run exit\n{out}", case.client);
        assert_eq!(
            fs::read_to_string(&config).unwrap(),
            original,
            "{}",
            case.client
        );
        assert!(
            !out.contains(&secret),
            "{}: a key in the dry run:\n{out}",
            case.client
        );
        assert!(
            out.contains("<redacted "),
            "{}: no redacted diff:\n{out}",
            case.client
        );
        assert!(
            !env_file(home).exists(),
            "{}: a dry run wrote the store",
            case.client
        );

        let applied = fix(home, &[&target, "--apply"]);
        let out = stdout(&applied);
        assert_eq!(code(&applied), 0, "{}: apply exit\n{out}", case.client);
        assert!(
            !out.contains(&secret),
            "{}: a key in the output",
            case.client
        );
        let fixed = fs::read_to_string(&config).unwrap();
        assert!(
            !fixed.contains(&secret),
            "{}: the key is still in\n{fixed}",
            case.client
        );
        assert!(
            fixed.contains(case.expect),
            "{}: expected {}\nin\n{fixed}",
            case.client,
            case.expect
        );
        if let Some(keep) = case.keep {
            assert!(
                fixed.contains(keep),
                "{}: lost {keep:?}:\n{fixed}",
                case.client
            );
        }
        assert_no_leftovers(config.parent().unwrap());

        // The key is in the store, which only its owner can read.
        let store = env_file(home);
        let mode = fs::metadata(&store).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}: store mode", case.client);
        assert!(
            fs::read_to_string(&store).unwrap().contains(&secret),
            "{}",
            case.client
        );

        // The fixed file parses and re-scans clean, and another fix finds nothing to do.
        let rescan = detector(&["scan", &target, "--format", "json"], home, Some(ORG_KEY));
        let report = json(&rescan);
        assert_eq!(
            report["keys"].as_array().unwrap().len(),
            0,
            "{}: {report}",
            case.client
        );
        assert!(
            report["targets"][0]["unparsed_configs"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{}: {report}",
            case.client
        );
        for server in report["mcp_servers"].as_array().unwrap() {
            for field in server["fields"].as_array().unwrap() {
                assert_ne!(field["class"], "literal", "{}: {server}", case.client);
            }
        }
        assert_eq!(code(&rescan), 0, "{}", case.client);
        let again = fix(home, &[&target]);
        assert_eq!(code(&again), 0, "{}: {}", case.client, stdout(&again));
    }
}

/// The wrapper really starts the server with the key set: the server here prints the hash of
/// the variable it got.
#[test]
fn the_wrapper_starts_the_server_with_its_key() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let secret = github_key(7);
    let (config, seen) = probe_config(home, &secret);
    let applied = fix(home, &[&format!("file:{}", config.display()), "--apply"]);
    assert_eq!(code(&applied), 0, "{}", stdout(&applied));

    let fixed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    let probe = &fixed["mcpServers"]["probe"];
    assert!(probe["env"].get("GITHUB_TOKEN").is_none(), "{probe}");
    let wrapper = PathBuf::from(probe["command"].as_str().unwrap());
    let text = fs::read_to_string(&wrapper).unwrap();
    assert!(
        !text.contains(&secret),
        "the wrapper holds the key:\n{text}"
    );
    // Started as the client starts it: the command with its (now empty) arguments, in an
    // environment that does not hold the key.
    let args: Vec<String> = probe["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let status = Command::new(&wrapper)
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_probe_saw(&seen, &secret);
}

#[test]
fn a_failed_rename_leaves_the_original() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let secret = github_key(21);
    let config = home.join("proj/.mcp.json");
    let original = CASES[0].text.replace("{KEY}", &secret);
    write(&config, &original);
    let target = format!("file:{}", config.display());
    let out = fix_with(
        home,
        &[&target, "--apply"],
        &[("DETECTOR_TEST_FAIL_RENAME", "1")],
    );
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert_eq!(fs::read_to_string(&config).unwrap(), original);
    assert_no_leftovers(config.parent().unwrap());
    // The stored entry stays, and the run says so.
    assert!(stdout(&out).contains("stay stored in"), "{}", stdout(&out));
    assert!(!stdout(&out).contains(&secret));
}

#[test]
fn a_config_changed_since_read_is_refused_and_the_others_fixed() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let first = home.join("a/.mcp.json");
    let second = home.join(".gemini/settings.json");
    write(&first, &CASES[0].text.replace("{KEY}", &github_key(31)));
    write(&second, &CASES[3].text.replace("{KEY}", &github_key(32)));
    // Between the read and the rename of the first file, someone else edits it.
    let edit = format!("printf ' ' >> '{}'", first.display());
    // The hook runs before every rename: it makes the first file differ, and the second
    // file (written after) differs from nothing of its own.
    let marker = home.join("edited");
    let once = format!(
        "[ -e '{m}' ] || {{ {edit}; touch '{m}'; }}",
        m = marker.display()
    );
    let out = fix_with(
        home,
        &[
            &format!("file:{}", first.display()),
            &format!("file:{}", second.display()),
            "--apply",
        ],
        &[("DETECTOR_TEST_BEFORE_RENAME", &once)],
    );
    let text = stdout(&out);
    assert_eq!(code(&out), 2, "{text}");
    assert!(text.contains("changed since it was read"), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(
        fs::read_to_string(&first)
            .unwrap()
            .contains(&github_key(31)),
        "the changed file was overwritten"
    );
    assert!(
        !fs::read_to_string(&second)
            .unwrap()
            .contains(&github_key(32)),
        "the other file was not fixed"
    );
}

#[test]
fn keys_sharing_a_name_get_their_own() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let (a, b) = (github_key(41), github_key(42));
    let first = home.join("one/.cursor/mcp.json");
    let second = home.join("two/.cursor/mcp.json");
    let remote = |secret: &str| {
        format!(
            r#"{{"mcpServers": {{"linear": {{"url": "https://mcp.linear.app/mcp", "headers": {{"Authorization": "Bearer {secret}"}}}}}}}}"#
        )
    };
    write(&first, &remote(&a));
    write(&second, &remote(&b));
    let out = fix(
        home,
        &[
            &format!("file:{}", first.display()),
            &format!("file:{}", second.display()),
            "--apply",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let one = fs::read_to_string(&first).unwrap();
    let two = fs::read_to_string(&second).unwrap();
    let name = |text: &str| {
        text.split("${env:")
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap()
            .to_string()
    };
    let (na, nb) = (name(&one), name(&two));
    assert_ne!(na, nb, "two keys under one name");
    let store = fs::read_to_string(env_file(home)).unwrap();
    assert!(store.contains(&format!("{na}='{a}'")), "{store}");
    assert!(store.contains(&format!("{nb}='{b}'")), "{store}");
}

#[test]
fn a_project_config_gets_ignored_and_made_private() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let repo = home.join("proj");
    fs::create_dir_all(&repo).unwrap();
    kit::run::run_ok(Command::new("git").arg("init").arg("-q").arg(&repo));
    let config = repo.join(".cursor/mcp.json");
    write(
        &config,
        &format!(
            r#"{{"mcpServers": {{"linear": {{"url": "https://mcp.linear.app/mcp", "headers": {{"Authorization": "Bearer {}"}}}}}}}}"#,
            github_key(51)
        ),
    );
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let out = fix(home, &[&format!("file:{}", config.display()), "--apply"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let mode = fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let ignored = Command::new("git")
        .arg("-C")
        .arg(&repo)
        .args(["check-ignore", "-q", ".cursor/mcp.json"])
        .status()
        .unwrap();
    assert!(
        ignored.success(),
        ".gitignore: {:?}",
        fs::read_to_string(repo.join(".gitignore"))
    );
}

#[test]
fn only_config_targets_are_taken() {
    let temp = tempfile::tempdir().unwrap();
    let out = fix(temp.path(), &[&format!("dir:{}", temp.path().display())]);
    assert_eq!(code(&out), 2);
    assert!(
        kit::run::stderr(&out).contains("`fix` takes"),
        "{}",
        kit::run::stderr(&out)
    );
}

/// VS Code with `--prompt`: `${input:…}` and the input's definition beside the servers, no
/// wrapper; without it, the desktop app's stdio server starts through a wrapper.
#[test]
fn vscode_prompts_when_asked() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let config = home.join(".config/Code/User/mcp.json");
    let text = |secret: &str| {
        format!("{{\n  // mine\n  \"servers\": {{\n    \"gh\": {{\"command\": \"npx\", \"args\": [\"-y\", \"@modelcontextprotocol/server-github\"], \"env\": {{\"GITHUB_TOKEN\": \"{secret}\"}}}}\n  }}\n}}\n")
    };
    write(&config, &text(&github_key(61)));
    let target = format!("file:{}", config.display());
    let out = fix(home, &[&target, "--prompt", "--apply"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let fixed = fs::read_to_string(&config).unwrap();
    assert!(
        fixed.contains("\"GITHUB_TOKEN\": \"${input:GITHUB_TOKEN}\""),
        "{fixed}"
    );
    assert!(fixed.contains("// mine"), "{fixed}");
    let parsed: serde_json::Value = jsonc(&fixed);
    let input = &parsed["inputs"][0];
    assert_eq!(input["id"], "GITHUB_TOKEN");
    assert_eq!(input["type"], "promptString");
    assert_eq!(input["password"], true);
    assert_eq!(parsed["servers"]["gh"]["command"], "npx");

    write(&config, &text(&github_key(62)));
    let out = fix(home, &[&target, "--apply"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let parsed = jsonc(&fs::read_to_string(&config).unwrap());
    assert!(
        parsed["servers"]["gh"]["command"]
            .as_str()
            .unwrap()
            .contains("/detector/wrappers/vscode-gh-"),
        "{parsed}"
    );
}

fn jsonc(text: &str) -> serde_json::Value {
    let stripped: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&stripped).unwrap()
}

/// A key committed with its config, and one used by development and production servers:
/// `fix` moves it and says what it cannot do (history, a second key).
#[test]
fn history_and_shared_keys_are_said() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let repo = home.join("proj");
    let secret = github_key(71);
    let server = |name: &str| serde_json::json!({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": secret}, "_": name});
    let config = serde_json::json!({"mcpServers": {"github-dev": server("dev"), "github-prod": server("prod")}});
    let repo_handle = kit::git::Repo::init(&repo, home, "2026-01-02T03:04:05Z");
    repo_handle.commit(
        "2026-01-02T03:04:05Z",
        &[(".mcp.json", &serde_json::to_string_pretty(&config).unwrap())],
        "add servers",
    );
    let path = repo.join(".mcp.json");
    let out = fix(home, &[&format!("file:{}", path.display()), "--apply"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(!text.contains(&secret));
    assert!(
        text.contains("in git history: GITHUB_PERSONAL_ACCESS_TOKEN"),
        "{text}"
    );
    assert!(
        text.contains("needs a second key: GITHUB_PERSONAL_ACCESS_TOKEN"),
        "{text}"
    );
    assert!(text.contains("rm --cached -- '.mcp.json'"), "{text}");
    assert!(!fs::read_to_string(&path).unwrap().contains(&secret));
}

/// Root fixing another user's home: the store and the wrapper it writes there are that
/// user's, or the user could not read their own keys.
#[test]
fn root_hands_what_it_writes_to_the_homes_owner() {
    if !kit::guard::root_or_skip("root fixing another user's home") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("ana");
    let config = home.join(".config/Claude/claude_desktop_config.json");
    write(&config, &CASES[7].text.replace("{KEY}", &github_key(81)));
    let owner = 54321;
    for dir in [&home, &home.join(".config"), &home.join(".config/Claude")] {
        std::os::unix::fs::chown(dir, Some(owner), Some(owner)).unwrap();
    }
    let out = fix(
        temp.path(),
        &[&format!("mcp:{}", home.display()), "--apply"],
    );
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let store = home.join(".config/detector/keys.env");
    assert_eq!(fs::metadata(&store).unwrap().uid(), owner);
    assert_eq!(fs::metadata(store.parent().unwrap()).unwrap().uid(), owner);
    let wrappers = home.join(".local/share/detector/wrappers");
    let wrapper = fs::read_dir(&wrappers)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(fs::metadata(&wrapper).unwrap().uid(), owner);
    assert_eq!(fs::metadata(home.join(".local")).unwrap().uid(), owner);
}

/// `--to pass`: the key goes into a real password store (its own GPG key), and the wrapper
/// of a desktop client's server loads it from there.
#[test]
fn fix_to_pass_and_the_wrapper_loads_from_it() {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if !["pass", "gpg", "gpgconf"].iter().all(|t| have(t))
        && !kit::guard::skip("pass and gpg are not installed (cargo xtask setup installs them)")
    {
        return;
    }
    let store = kit::pass::PassStore::new();
    let home = store.home();
    let secret = github_key(91);
    let (config, seen) = probe_config(&home, &secret);
    let env: Vec<(&str, String)> = store
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.display().to_string()))
        .collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = fix_with(
        &home,
        &[
            &format!("file:{}", config.display()),
            "--to",
            "pass",
            "--apply",
        ],
        &env_refs,
    );
    assert_eq!(
        code(&out),
        0,
        "{}\n{}",
        stdout(&out),
        kit::run::stderr(&out)
    );
    assert!(!env_file(&home).exists(), "--to pass wrote an env file");

    let mut show = Command::new("pass");
    show.args(["show", "detector/GITHUB_TOKEN"])
        .env("HOME", &home);
    for (k, v) in &env {
        show.env(k, v);
    }
    let shown = kit::run::run_ok(&mut show);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim_end(), secret);

    let fixed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    let wrapper = PathBuf::from(fixed["mcpServers"]["probe"]["command"].as_str().unwrap());
    let mut start = Command::new(&wrapper);
    start
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &home);
    for (k, v) in &env {
        start.env(k, v);
    }
    assert!(start.status().unwrap().success());
    assert_probe_saw(&seen, &secret);
}

/// A config's text reaches the terminal escaped: an escape sequence in a comment of the
/// config is printed as text in the diff.
#[test]
fn the_diff_escapes_the_configs_text() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path();
    let config = home.join("proj/.mcp.json");
    let text = format!(
        "{{\n  \"mcpServers\": {{\"github\": {{\"command\": \"npx\", \"env\": {{\"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{}\", \"NOTE\": \"\\u001b[2J\u{1b}]0;owned\u{7}\"}}}}}}\n}}\n",
        github_key(95)
    );
    write(&config, &text);
    let out = fix(home, &[&format!("file:{}", config.display())]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        !out.stdout.contains(&0x1b),
        "an escape reached the terminal:\n{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("\\x1b]0;owned"), "{}", stdout(&out));
}

/// With no target, `fix` takes the home's configs and the project configs of the directory
/// it runs in.
#[test]
fn without_targets_the_home_and_this_project() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let project = temp.path().join("work/app");
    let global = home.join(".gemini/settings.json");
    let local = project.join(".mcp.json");
    write(&global, &CASES[3].text.replace("{KEY}", &github_key(97)));
    write(&local, &CASES[0].text.replace("{KEY}", &github_key(98)));
    let mut cmd = detector_command(
        Path::new(DETECTOR),
        &["fix", "--apply"],
        &home,
        Some(ORG_KEY),
    );
    cmd.current_dir(&project);
    let out = run_with_deadline(cmd, deadline(), "detector fix");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(!fs::read_to_string(&global)
        .unwrap()
        .contains(&github_key(97)));
    assert!(!fs::read_to_string(&local)
        .unwrap()
        .contains(&github_key(98)));
}
