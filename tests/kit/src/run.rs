//! The `detector` binary run as a test runs it: a clean environment, output collected, and a
//! deadline that turns a hang into a failure.
use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};

/// How long one run of the binary may take before the test fails as a hang (seconds;
/// `DETECTOR_TEST_TIMEOUT` changes it).
const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// `BINARY ARGS…` with a clean environment: HOME as given (inside the test's temp dir), the
/// given org key, no colours, no log filter from the caller. A run that outlives the deadline
/// is killed and fails the test, so a hang cannot block the suite.
pub fn detector(binary: &Path, args: &[&str], home: &Path, org_key: Option<&str>) -> Output {
    let cmd = detector_command(binary, args, home, org_key);
    run_with_deadline(cmd, deadline(), &format!("detector {}", args.join(" ")))
}

/// The command [`detector`] runs: the clean environment, not yet started.
pub fn detector_command(
    binary: &Path,
    args: &[&str],
    home: &Path,
    org_key: Option<&str>,
) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("DETECTOR_ORG_KEY")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        // Each test's audits in an inventory of its own (audits record by default).
        .env("DETECTOR_STORE", store_in(home))
        .env("DETECTOR_SPOOL", home.join(".detector-spool"));
    if let Some(key) = org_key {
        cmd.env("DETECTOR_ORG_KEY", key);
    }
    cmd
}

/// The inventory of the runs made with `home`: `sqlite:HOME/.detector-inventory.sqlite`.
pub fn store_in(home: &Path) -> String {
    format!(
        "sqlite:{}",
        home.join(".detector-inventory.sqlite").display()
    )
}

/// How long a run of the binary may take before the test fails as a hang
/// (`DETECTOR_TEST_TIMEOUT` seconds, else the default).
pub fn deadline() -> Duration {
    std::env::var("DETECTOR_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(
            Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Duration::from_secs,
        )
}

/// Run `cmd` to completion, its output collected, or kill it after `deadline` and panic
/// naming `what` and what it printed so far.
pub fn run_with_deadline(cmd: Command, deadline: Duration, what: &str) -> Output {
    crate::rss::measured(cmd, deadline, what).0
}

/// `cmd`'s output, after it succeeded; a failure panics with its standard error.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output as JSON; anything else fails the test, showing both streams.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr:\n{}\nstdout:\n{}",
            stderr(output),
            stdout(output)
        )
    })
}

/// `systemd-analyze verify UNIT` passes and says nothing about the unit itself (without
/// systemd as PID 1 it may still say that the system was not booted with it). A skip (a
/// failure under `CI=true`) when systemd-analyze is missing.
pub fn assert_unit_verifies(unit: &Path) {
    let Some(analyze) = which("systemd-analyze") else {
        crate::guard::skip("systemd-analyze is missing (cargo xtask setup installs systemd)");
        return;
    };
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .expect("systemd-analyze runs");
    let said = stderr(&output);
    let name = unit
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let about_unit: Vec<&str> = said.lines().filter(|l| l.contains(&name)).collect();
    assert!(
        output.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {}: {said}",
        unit.display()
    );
}

/// `program` on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
