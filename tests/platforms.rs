//! The release builds of `cargo xtask dist` where they are meant to run: the static Linux
//! binary in a container that has no C library at all (busybox-static only), and the Windows
//! binary under Wine, scanning a Windows user's profile for the MCP configs of Claude Desktop,
//! Cursor and VS Code as a Windows user would: `detector scan mcp:`.
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use kit::{
    dist::{binary_or_skip, LINUX_MUSL, WINDOWS},
    guard::skip,
    keys::{fingerprint, key, ALNUM},
    report::{assert_no_secret, key_by},
    run::{json, run_with_deadline, stderr, stdout},
    write,
};
use serde_json::{json, Value};

use crate::DETECTOR;

const ORG_KEY: &str = "platforms-test-org";

/// `(client, server)` of every MCP server a key of the report is configured in.
fn servers_of(key: &Value) -> Vec<(String, String)> {
    key["scope"]["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["client"].as_str().unwrap().to_string(),
                s["server"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_static_linux_build_runs_where_there_is_no_libc() {
    let Some(binary) = binary_or_skip(Path::new(DETECTOR), LINUX_MUSL) else {
        return;
    };
    let Some(daemon) = kit::docker::daemon() else {
        return;
    };
    let image = daemon.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let scan = tmp.path().join("scan");
    let secret = key("ghp_", ALNUM, 36, 1901);
    write(&scan.join("app/.env"), &format!("GITHUB_TOKEN={secret}\n"));
    let docker = |args: &[&str]| -> Output {
        let mut cmd = daemon.docker(&["run", "--rm", "--network", "none"]);
        cmd.args(args);
        run_with_deadline(cmd, Duration::from_secs(120), "docker run")
    };

    // The image holds busybox (static) and nothing else: no dynamic loader, no libc.
    let bare = docker(&[
        image,
        "sh",
        "-c",
        "test ! -e /lib && test ! -e /lib64 && test ! -e /usr/lib",
    ]);
    assert!(
        bare.status.success(),
        "the image has a /lib: {}",
        stderr(&bare)
    );

    let binary_mount = format!("{}:/detector:ro", binary.display());
    let scan_mount = format!("{}:/scan:ro", scan.display());
    let org_key = format!("DETECTOR_ORG_KEY={ORG_KEY}");
    let version = docker(&["-v", &binary_mount, image, "/detector", "--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert!(
        stdout(&version).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&version)
    );

    let out = docker(&[
        "-v",
        &binary_mount,
        "-v",
        &scan_mount,
        "-e",
        "HOME=/tmp",
        "-e",
        &org_key,
        image,
        "/detector",
        "scan",
        "/scan",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let found = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), &secret));
    assert_eq!(found["rule"], "github-pat-classic", "{found:#}");
    assert_eq!(found["locations"][0]["path"], "/scan/app/.env");
    assert_no_secret(&stdout(&out), [&secret], "the JSON report");
    assert_no_secret(&stderr(&out), [&secret], "standard error");
}

/// Debian's 64-bit Wine loader (package `wine64`, which `cargo xtask setup` installs).
fn wine() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/lib/wine/wine64");
    if debian.is_file() {
        return Some(debian);
    }
    kit::run::which("wine64").or_else(|| kit::run::which("wine"))
}

/// `wine detector.exe ARGS…` in the prefix `prefix`, quiet, with the org key.
fn under_wine(wine: &Path, exe: &Path, prefix: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(wine);
    cmd.arg(exe)
        .args(args)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        // No Mono or Gecko installer dialogs on the prefix's first start.
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env("HOME", prefix.parent().unwrap())
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("NO_COLOR", "1")
        .env_remove("DISPLAY")
        .env_remove("RUST_LOG");
    run_with_deadline(
        cmd,
        Duration::from_secs(120),
        &format!("wine detector.exe {}", args.join(" ")),
    )
}

/// Stops the prefix's wineserver when the test ends (it would linger a few seconds over a
/// removed prefix).
struct WineServer {
    wine: PathBuf,
    prefix: PathBuf,
}

impl Drop for WineServer {
    fn drop(&mut self) {
        let server = self.wine.with_file_name("wineserver");
        let _ = Command::new(if server.is_file() {
            server
        } else {
            "wineserver".into()
        })
        .arg("-k")
        .env("WINEPREFIX", &self.prefix)
        .output();
    }
}

/// A Wine prefix at `prefix` that runs a Rust program: Rust's standard library (1.78 and
/// later) imports `ProcessPrng` from `bcryptprimitives.dll`, which every Windows since 10 has
/// but Wine before 9 (Debian 12 has 8.0) lacks; when the prefix has no such DLL, it gets one
/// of a few lines over Wine's `BCryptGenRandom`, compiled by the zig setup installs.
/// `false` when that cannot be done (skipped, or a failure under `CI=true`).
fn make_prefix(wine: &Path, prefix: &Path) -> bool {
    let mut boot = Command::new(wine);
    boot.args(["wineboot", "--init"])
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env("HOME", prefix.parent().unwrap())
        .env_remove("DISPLAY");
    let booted = run_with_deadline(boot, Duration::from_secs(300), "wineboot --init");
    assert!(booted.status.success(), "wineboot: {}", stderr(&booted));
    let system32 = prefix.join("drive_c/windows/system32");
    assert!(system32.is_dir(), "wineboot made no {}", system32.display());
    let dll = system32.join("bcryptprimitives.dll");
    if dll.exists() {
        return true;
    }
    let Some(mut zig) = kit::tools::zig() else {
        return skip("this Wine lacks bcryptprimitives.dll and zig is missing to make one (cargo xtask setup installs it)");
    };
    let build = prefix.parent().unwrap().join("bcryptprimitives");
    fs::create_dir_all(&build).unwrap();
    fs::write(build.join("prng.c"), PROCESS_PRNG_C).unwrap();
    let out = zig
        .args([
            "cc",
            "-target",
            "x86_64-windows-gnu",
            "-shared",
            "-O2",
            "-o",
        ])
        .arg(build.join("bcryptprimitives.dll"))
        .arg(build.join("prng.c"))
        .arg("-lbcrypt")
        .output()
        .unwrap();
    assert!(out.status.success(), "zig cc: {}", stderr(&out));
    fs::copy(build.join("bcryptprimitives.dll"), &dll).unwrap();
    true
}

/// `ProcessPrng` as Windows documents it (fill the buffer, always TRUE), over `BCryptGenRandom`.
const PROCESS_PRNG_C: &str = r#"#include <windows.h>
#include <bcrypt.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
"#;

#[test]
fn the_windows_build_scans_a_windows_profile_under_wine() {
    let Some(exe) = binary_or_skip(Path::new(DETECTOR), WINDOWS) else {
        return;
    };
    let Some(wine) = wine() else {
        skip("Wine is missing (cargo xtask setup installs wine64)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("wineprefix");
    let _server = WineServer {
        wine: wine.clone(),
        prefix: prefix.clone(),
    };
    if !make_prefix(&wine, &prefix) {
        return;
    }

    let version = under_wine(&wine, &exe, &prefix, &["--version"]);
    assert!(version.status.success(), "{}", stderr(&version));
    assert!(
        stdout(&version).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&version)
    );

    // The profile Wine made: C:\users\<user>, %APPDATA% = AppData\Roaming in it.
    let users = prefix.join("drive_c/users");
    let profile = fs::read_dir(&users)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n != "Public") && p.is_dir())
        .unwrap_or_else(|| panic!("no user profile under {}", users.display()));
    let claude = key("ghp_", ALNUM, 36, 1911);
    let cursor = key("lin_api_", ALNUM, 40, 1912);
    let vscode = key("ntn_", ALNUM, 46, 1913);
    let server = |name: &str, var: &str, secret: &str| json!({name: {"command": "npx", "args": ["-y", format!("@example/{name}-mcp")], "env": {var: secret}}});
    write(
        &profile.join("AppData/Roaming/Claude/claude_desktop_config.json"),
        &json!({"mcpServers": server("github", "GITHUB_PERSONAL_ACCESS_TOKEN", &claude)})
            .to_string(),
    );
    write(
        &profile.join(".cursor/mcp.json"),
        &json!({"mcpServers": server("linear", "LINEAR_API_KEY", &cursor)}).to_string(),
    );
    // VS Code's user mcp.json is JSONC: a comment and a trailing comma, as people leave them.
    write(
        &profile.join("AppData/Roaming/Code/User/mcp.json"),
        &format!(
            "{{\n  // my servers\n  \"servers\": {{\n    \"notion\": {{\"type\": \"stdio\", \"command\": \"npx\", \"env\": {{\"NOTION_TOKEN\": \"{vscode}\"}}}},\n  }}\n}}\n"
        ),
    );

    // What a Windows user runs: the MCP configs of the user running it.
    let out = under_wine(&wine, &exe, &prefix, &["scan", "mcp:", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    for (secret, client, server, file) in [
        (
            &claude,
            "claude-desktop",
            "github",
            "claude_desktop_config.json",
        ),
        (&cursor, "cursor", "linear", "mcp.json"),
        (&vscode, "vscode", "notion", "mcp.json"),
    ] {
        let found = key_by(&report, &fingerprint(ORG_KEY.as_bytes(), secret));
        let servers = servers_of(found);
        assert!(
            servers.contains(&(client.to_string(), server.to_string())),
            "{client}/{server}: found in {servers:?}"
        );
        let config = found["scope"]["mcp_servers"][0]["config"].as_str().unwrap();
        assert!(
            config.starts_with("C:\\users\\") && config.ends_with(file),
            "a Windows path: {config}"
        );
    }
    let secrets = [&claude, &cursor, &vscode];
    assert_no_secret(&stdout(&out), secrets, "the JSON report");
    assert_no_secret(&stderr(&out), secrets, "standard error");
}
