//! The destinations against the real tools: sh sources the env file, `pass` encrypts with a
//! GPG key made for the test, `secret-tool` talks to a gnome-keyring-daemon on a private
//! D-Bus. The pass and secret-tool cases run the library in a child process (this test binary
//! again, [`child_entry`]) whose environment points the tools at throwaway stores: the test
//! process's own environment is never changed, and the user's home, keyring and password
//! store are never touched.
use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use zeroize::Zeroizing;

use super::*;

/// Which scenario [`child_entry`] runs; set only by the tests below, for the child.
const CHILD_SCENARIO: &str = "DETECTOR_DESTINATION_TEST_CHILD";

fn fake_key(seed: u64) -> String {
    kit::keys::key(&["sk", "-test-"].concat(), kit::keys::ALNUM, 40, seed)
}

/// A value sh would mangle if it were quoted wrongly: quotes, `$`, backquotes, backslashes.
fn awkward_value(seed: u64) -> String {
    [&fake_key(seed), "'\"$HOME`id`\\ 'x' $(true)"].concat()
}

fn entry(name: &str, secret: &str, note: &str) -> Entry {
    Entry {
        name: name.to_string(),
        secret: Zeroizing::new(secret.to_string()),
        note: note.to_string(),
    }
}

/// The value `shell_load` gives NAME in a fresh sh.
fn loaded_by_sh(destination: &Destination, name: &str) -> String {
    let script = format!("{}printf %s \"${name}\"", destination.shell_load(&[name]));
    let output = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env_remove(name)
        .output()
        .expect("sh runs");
    assert!(
        output.status.success(),
        "sh failed loading {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Is every tool on PATH? When not: under CI that is a failure (`cargo xtask setup` installs
/// them), elsewhere the test is skipped with the reason printed.
fn have_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: needs {} (cargo xtask setup installs them)",
        missing.join(", ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipped {message}");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

// ---- parsing ----

#[test]
fn parses_destinations() {
    let home = Path::new("/home/al");
    assert_eq!(
        Destination::parse("env-file", Some(home)).unwrap(),
        Destination::EnvFile("/home/al/.config/detector/keys.env".into())
    );
    assert_eq!(
        Destination::parse("env-file:/srv/keys.env", Some(home)).unwrap(),
        Destination::EnvFile("/srv/keys.env".into())
    );
    let relative = Destination::parse("env-file:keys.env", None).unwrap();
    assert_eq!(
        relative,
        Destination::EnvFile(std::env::current_dir().unwrap().join("keys.env"))
    );
    assert_eq!(Destination::parse("pass", None).unwrap(), Destination::Pass);
    assert_eq!(
        Destination::parse("secret-tool", None).unwrap(),
        Destination::SecretTool
    );
    for (text, expected) in [
        ("env-file:", "needs a path"),
        ("vault", "unknown destination `vault`"),
        ("Pass", "unknown destination `Pass`"),
        ("", "unknown destination ``"),
    ] {
        let error = Destination::parse(text, Some(home))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    assert!(matches!(
        Destination::parse("env-file", None),
        Err(DestinationError::NoHome)
    ));
    assert!(matches!(
        Destination::parse("env-file", Some(Path::new(""))),
        Err(DestinationError::NoHome)
    ));
    assert!("nope".parse::<Destination>().is_err());
    assert_eq!("pass".parse::<Destination>().unwrap(), Destination::Pass);
    assert_eq!(
        "env-file:/srv/k.env".parse::<Destination>().unwrap(),
        Destination::EnvFile("/srv/k.env".into())
    );
    // `env-file` from the command line is the default of the home being fixed, not $HOME's.
    let default = "env-file".parse::<Destination>().unwrap();
    assert_eq!(default, Destination::EnvFile(PathBuf::new()));
    assert!(matches!(
        default.check(),
        Err(DestinationError::UnresolvedDefault)
    ));
    assert!(matches!(
        default.put(&[entry("A", "x", "")]),
        Err(DestinationError::UnresolvedDefault)
    ));
    assert_eq!(
        default.in_home(home),
        Destination::EnvFile("/home/al/.config/detector/keys.env".into())
    );
    assert_eq!(
        Destination::EnvFile("/srv/k.env".into()).in_home(home),
        Destination::EnvFile("/srv/k.env".into())
    );
    assert_eq!(Destination::Pass.in_home(home), Destination::Pass);
}

#[test]
fn names_are_shell_variable_names() {
    for good in ["A", "_", "GITHUB_TOKEN", "K9", "_X_1"] {
        assert!(is_variable_name(good), "{good}");
    }
    for bad in [
        "", "a", "1A", "A-B", "A B", "../X", "X/Y", "É", "A=B", "A\n",
    ] {
        assert!(!is_variable_name(bad), "{bad:?}");
    }
}

#[test]
fn describes_itself() {
    assert_eq!(
        Destination::EnvFile("/h/.config/detector/keys.env".into()).describe(),
        "env file /h/.config/detector/keys.env"
    );
    assert!(Destination::Pass.describe().contains("pass"));
    assert!(Destination::SecretTool.describe().contains("secret-tool"));
}

#[test]
fn shell_load_text_names_only_variables() {
    let pass = Destination::Pass.shell_load(&["A_KEY", "bad; rm -rf /", "B"]);
    assert_eq!(
        pass,
        "A_KEY=$(pass show detector/A_KEY) && export A_KEY || echo \"detector: cannot load A_KEY from pass\" >&2\n\
         B=$(pass show detector/B) && export B || echo \"detector: cannot load B from pass\" >&2\n"
    );
    let tool = Destination::SecretTool.shell_load(&["A_KEY"]);
    assert_eq!(
        tool,
        "A_KEY=$(secret-tool lookup service detector name A_KEY) && export A_KEY || echo \"detector: cannot load A_KEY from the Secret Service\" >&2\n"
    );
    let file = Destination::EnvFile("/h/it's/keys.env".into()).shell_load(&["A", "bad name"]);
    assert_eq!(file, ". '/h/it'\\''s/keys.env'\nexport A\n");
}

// ---- the env file ----

#[test]
fn env_file_round_trip_merges_and_keeps_it_private() {
    let dir = tempfile::tempdir().unwrap();
    // A folder name sh would split or expand if the path were not quoted.
    let path = dir
        .path()
        .join("it's a $dir")
        .join("detector")
        .join("keys.env");
    let store = Destination::EnvFile(path.clone());
    store.check().unwrap();
    assert!(
        store.lookup("GITHUB_TOKEN").unwrap().is_none(),
        "no file yet"
    );

    let (github, openai, awkward) = (fake_key(1), fake_key(2), awkward_value(3));
    store
        .put(&[
            entry(
                "GITHUB_TOKEN",
                &github,
                "server github in /p/.cursor/mcp.json",
            ),
            entry("OPENAI_API_KEY", &openai, "server openai in /p/.mcp.json"),
        ])
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().next(), Some(ENV_FILE_HEADER));
    assert!(text.contains("# server github in /p/.cursor/mcp.json\nGITHUB_TOKEN='"));
    assert_eq!(
        store
            .lookup("GITHUB_TOKEN")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(github.as_str())
    );
    assert_eq!(loaded_by_sh(&store, "OPENAI_API_KEY"), openai);

    // Merge: one name replaced, one added, the other kept with its note.
    store
        .put(&[
            entry("OPENAI_API_KEY", &awkward, "server openai\nin /q/.mcp.json"),
            entry("_SECOND", &fake_key(4), ""),
        ])
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(loaded_by_sh(&store, "OPENAI_API_KEY"), awkward);
    assert_eq!(
        store
            .lookup("OPENAI_API_KEY")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(awkward.as_str())
    );
    assert_eq!(loaded_by_sh(&store, "GITHUB_TOKEN"), github);
    assert_eq!(loaded_by_sh(&store, "_SECOND"), fake_key(4));
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches("OPENAI_API_KEY=").count(),
        1,
        "{} lines",
        text.lines().count()
    );
    assert!(text.contains("# server github in /p/.cursor/mcp.json\nGITHUB_TOKEN="));
    assert!(
        text.contains("# server openai in /q/.mcp.json\nOPENAI_API_KEY="),
        "a note stays one line"
    );
    assert!(!text.contains(&openai), "the replaced value is gone");
    assert_eq!(text.lines().next(), Some(ENV_FILE_HEADER));
    // No temporary file left beside it.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keys.env")]);

    // An existing store that was loosened is made private again by the next write.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    store
        .put(&[entry("GITHUB_TOKEN", &github, "again")])
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(loaded_by_sh(&store, "GITHUB_TOKEN"), github);
}

#[test]
fn env_file_refuses_git_work_trees() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("dotfiles");
    fs::create_dir_all(repo.join(".git")).unwrap();
    // The file, or only the folder it would be made in, inside the work tree.
    for path in [repo.join("keys.env"), repo.join("config/detector/keys.env")] {
        let store = Destination::EnvFile(path.clone());
        let error = store.check().unwrap_err();
        assert!(
            matches!(&error, DestinationError::InGitWorkTree { work_tree, .. } if *work_tree == repo),
            "{error}"
        );
        assert!(error.to_string().contains(&repo.display().to_string()));
        assert!(store.put(&[entry("A", &fake_key(5), "")]).is_err());
        assert!(!path.exists(), "nothing written in the work tree");
    }
    // `.git` as a file (a worktree or submodule) marks a work tree too.
    let worktree = dir.path().join("wt");
    fs::create_dir_all(&worktree).unwrap();
    fs::write(worktree.join(".git"), "gitdir: /elsewhere\n").unwrap();
    assert!(Destination::EnvFile(worktree.join("k.env"))
        .check()
        .is_err());
    // A symlink from outside into the work tree (`~/.config` -> dotfiles) does not hide it.
    let config = dir.path().join("home/.config");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::create_dir_all(repo.join("config")).unwrap();
    std::os::unix::fs::symlink(repo.join("config"), &config).unwrap();
    let linked = Destination::EnvFile(config.join("detector/keys.env"));
    assert!(matches!(
        linked.check(),
        Err(DestinationError::InGitWorkTree { .. })
    ));
    // Outside: fine.
    Destination::EnvFile(dir.path().join("plain/keys.env"))
        .check()
        .unwrap();
}

#[test]
fn env_file_never_clobbers_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = fake_key(6);
    for (name, content) in [
        ("dotenv", format!("API_KEY='{secret}'\n")),
        (
            "late-header",
            format!("API_KEY='{secret}'\n{ENV_FILE_HEADER}\n"),
        ),
        ("empty", String::new()),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, &content).unwrap();
        let store = Destination::EnvFile(path.clone());
        let error = store.check().unwrap_err();
        assert!(
            matches!(error, DestinationError::ForeignFile { .. }),
            "{name}: {error}"
        );
        assert!(!error.to_string().contains(&secret));
        assert!(store.put(&[entry("B", &fake_key(7), "")]).is_err());
        assert!(store.lookup("API_KEY").is_err());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            content,
            "{name} untouched"
        );
    }
    // A directory or a symlink where the file should be is refused by its type.
    let folder = dir.path().join("folder");
    fs::create_dir(&folder).unwrap();
    assert!(matches!(
        Destination::EnvFile(folder).check(),
        Err(DestinationError::NotAFile { .. })
    ));
    let store_file = dir.path().join("real.env");
    fs::write(&store_file, format!("{ENV_FILE_HEADER}\n")).unwrap();
    let link = dir.path().join("link.env");
    std::os::unix::fs::symlink(&store_file, &link).unwrap();
    assert!(matches!(
        Destination::EnvFile(link).check(),
        Err(DestinationError::NotAFile { .. })
    ));
}

#[test]
fn env_file_names_a_line_it_does_not_understand() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.env");
    let secret = fake_key(8);
    for bad in [
        format!("A='{secret}"),
        format!("A={secret}"),
        format!("lower='{secret}'"),
        format!("export A='{secret}'"),
    ] {
        fs::write(&path, format!("{ENV_FILE_HEADER}\n# note\nB='x'\n{bad}\n")).unwrap();
        let error = Destination::EnvFile(path.clone()).lookup("B").unwrap_err();
        assert!(
            matches!(error, DestinationError::Malformed { line: 4, .. }),
            "{bad}: {error}"
        );
        let message = error.to_string();
        assert!(message.contains("keys.env:4"), "{message}");
        assert!(!message.contains(&secret), "{message}");
    }
}

#[test]
fn bad_names_and_values_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.env");
    let store = Destination::EnvFile(path.clone());
    let secret = fake_key(9);
    for name in ["lower", "1A", "A-B", "../../X", ""] {
        let error = store.put(&[entry("GOOD", &secret, ""), entry(name, &secret, "")]);
        assert!(
            matches!(error, Err(DestinationError::InvalidName(_))),
            "{name}"
        );
        assert!(matches!(
            store.lookup(name),
            Err(DestinationError::InvalidName(_))
        ));
    }
    for value in [
        format!("{secret}\n"),
        format!("{secret}\0x"),
        format!("a\r{secret}"),
    ] {
        let error = store.put(&[entry("GOOD", &value, "")]).unwrap_err();
        assert!(matches!(error, DestinationError::InvalidValue(_)));
        assert!(!error.to_string().contains(&secret), "{error}");
    }
    assert!(!path.exists(), "nothing was written");
    // Nor does a pass or secret-tool store see them: names are checked before any tool runs.
    assert!(matches!(
        Destination::Pass.put(&[entry("a/../b", &secret, "")]),
        Err(DestinationError::InvalidName(_))
    ));
    assert!(matches!(
        Destination::SecretTool.lookup("x y"),
        Err(DestinationError::InvalidName(_))
    ));
}

#[test]
fn entries_do_not_print_their_secret() {
    let secret = fake_key(10);
    let shown = format!("{:?}", entry("A", &secret, "n"));
    assert!(!shown.contains(&secret), "{shown}");
}

// ---- pass and secret-tool, in a child process ----

/// This test binary again, running [`child_entry`] for `scenario` with `env` (and the
/// parent's PATH), under `wrapper` when given. Panics unless the child ran and passed.
fn run_child(scenario: &str, env: &[(&str, &OsStr)], wrapper: &[&str]) {
    let exe = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    command
        .args([
            "fix::destination::tests::child_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(CHILD_SCENARIO, scenario);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {scenario} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

use kit::pass::PassStore;

#[test]
fn pass_round_trip_with_a_real_store() {
    if !have_tools(
        "pass_round_trip_with_a_real_store",
        &["pass", "gpg", "gpgconf"],
    ) {
        return;
    }
    let store = PassStore::new();
    let (home, gnupg, passwords) = (store.home(), store.gnupg(), store.passwords());
    run_child(
        "pass",
        &[
            ("HOME", home.as_os_str()),
            ("GNUPGHOME", gnupg.as_os_str()),
            ("PASSWORD_STORE_DIR", passwords.as_os_str()),
        ],
        &[],
    );
    // What the child stored is encrypted: the file exists, the key is not in it in clear.
    let file = passwords.join("detector/GITHUB_TOKEN.gpg");
    let bytes = fs::read(&file).unwrap();
    assert!(!bytes.is_empty());
    let key = fake_key(11);
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));

    // A store nobody initialised is refused, naming `pass init`.
    let empty = tempfile::tempdir().unwrap();
    run_child(
        "pass-uninitialised",
        &[
            ("HOME", home.as_os_str()),
            ("GNUPGHOME", gnupg.as_os_str()),
            ("PASSWORD_STORE_DIR", empty.path().as_os_str()),
        ],
        &[],
    );
}

#[test]
fn secret_tool_round_trip_with_a_real_keyring() {
    if !have_tools(
        "secret_tool_round_trip_with_a_real_keyring",
        &["secret-tool", "gnome-keyring-daemon", "dbus-run-session"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let runtime = dir.path().join("run");
    fs::create_dir(&home).unwrap();
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let data = home.join(".local/share");
    let config = home.join(".config");
    let env = [
        ("HOME", home.as_os_str()),
        ("XDG_RUNTIME_DIR", runtime.as_os_str()),
        ("XDG_DATA_HOME", data.as_os_str()),
        ("XDG_CONFIG_HOME", config.as_os_str()),
    ];
    // A private session bus, and on it a keyring daemon whose login keyring is created and
    // unlocked with an empty password (a line on standard input), before the child runs.
    let start_keyring = "printf '\\n' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null || exit 97; exec \"$@\"";
    run_child(
        "secret-tool",
        &env,
        &["dbus-run-session", "--", "sh", "-c", start_keyring, "sh"],
    );
    assert!(
        data.join("keyrings").is_dir(),
        "the keyring lives in the test's home"
    );
    // With no session bus, no Secret Service answers: refused, saying so.
    run_child("secret-tool-no-service", &env, &[]);
}

/// The child side of the pass and secret-tool tests: the library as `detector fix` uses it,
/// with the tools finding their stores through the environment the parent gave.
#[test]
#[ignore = "an entry point: the pass and secret-tool tests run it in a prepared environment"]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD_SCENARIO) else {
        eprintln!("child_entry: nothing to do outside the pass and secret-tool tests");
        return;
    };
    match scenario.as_str() {
        "pass" => round_trip(&Destination::Pass),
        "secret-tool" => round_trip(&Destination::SecretTool),
        "pass-uninitialised" => {
            let error = Destination::Pass.check().unwrap_err();
            assert!(
                matches!(error, DestinationError::PassNotInitialised { .. }),
                "{error}"
            );
            assert!(error.to_string().contains("pass init"), "{error}");
        }
        "secret-tool-no-service" => {
            let error = Destination::SecretTool.check().unwrap_err();
            assert!(
                matches!(error, DestinationError::NoSecretService { .. }),
                "{error}"
            );
            assert!(Destination::SecretTool.lookup("A").is_err());
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn round_trip(store: &Destination) {
    store.check().unwrap();
    assert!(store.lookup("GITHUB_TOKEN").unwrap().is_none());
    let (github, awkward) = (fake_key(11), awkward_value(12));
    store
        .put(&[
            entry("GITHUB_TOKEN", &github, "server github"),
            entry("OPENAI_API_KEY", &fake_key(13), "server openai"),
        ])
        .unwrap();
    assert_eq!(
        store
            .lookup("GITHUB_TOKEN")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(github.as_str())
    );
    // Replaced under the same name; the other entry is kept.
    store
        .put(&[entry("OPENAI_API_KEY", &awkward, "again")])
        .unwrap();
    assert_eq!(
        store
            .lookup("OPENAI_API_KEY")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(awkward.as_str())
    );
    assert_eq!(loaded_by_sh(store, "OPENAI_API_KEY"), awkward);
    assert_eq!(loaded_by_sh(store, "GITHUB_TOKEN"), github);
    assert!(store.lookup("NOT_STORED").unwrap().is_none());
    // A key that cannot be loaded is said, not exported, and the shell (or `set -e`
    // wrapper) goes on.
    let script = format!(
        "set -e\n{}echo alive; env",
        store.shell_load(&["NOT_STORED"])
    );
    let output = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("alive\n"), "{stdout}");
    assert!(!stdout.contains("NOT_STORED="), "not exported");
    assert!(String::from_utf8_lossy(&output.stderr).contains("detector: cannot load NOT_STORED"));
}

/// A wrapper gets the keys it names, not every key of the env file.
#[test]
fn env_file_load_exports_only_the_named_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.env");
    let store = Destination::EnvFile(path);
    let entry = |name: &str, value: &str| Entry {
        name: name.into(),
        secret: Zeroizing::new(value.into()),
        note: "test".into(),
    };
    store
        .put(&[entry("MINE", "one-value"), entry("OTHER", "two-value")])
        .unwrap();
    let script = format!("{}env", store.shell_load(&["MINE"]));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(env.lines().any(|l| l == "MINE=one-value"), "{env}");
    assert!(!env.contains("OTHER"), "{env}");
}

/// Two runs of `fix` storing at once each keep the other's keys: the read, merge and
/// replace of the env file happen under a lock.
#[test]
fn env_file_puts_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Destination::EnvFile(dir.path().join("keys.env"));
    std::thread::scope(|scope| {
        for side in ["A", "B"] {
            let store = &store;
            scope.spawn(move || {
                for i in 0..40 {
                    let entry = Entry {
                        name: format!("{side}_{i}"),
                        secret: Zeroizing::new(format!("value-{side}-{i}")),
                        note: String::new(),
                    };
                    store.put(&[entry]).unwrap();
                }
            });
        }
    });
    for side in ["A", "B"] {
        for i in 0..40 {
            let held = store.lookup(&format!("{side}_{i}")).unwrap();
            assert_eq!(
                held.as_deref().map(String::as_str),
                Some(format!("value-{side}-{i}").as_str()),
                "{side}_{i} was lost"
            );
        }
    }
}
