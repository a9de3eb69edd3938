//! Helpers for the end-to-end tests: run the real binary, build fake keys at run time.
#![allow(dead_code)]

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const HEX: &str = "0123456789abcdef";
pub const DIGITS: &str = "0123456789";

/// `len` characters of `alphabet`, pseudo-random but the same for the same seed: fake keys
/// with the entropy of real ones, made at run time so no key-shaped text sits in the source.
pub fn random(alphabet: &str, len: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let n = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            chars[(n >> 33) as usize % chars.len()]
        })
        .collect()
}

/// A fake key: `prefix` followed by random characters.
pub fn key(prefix: &str, alphabet: &str, len: usize, seed: u64) -> String {
    [prefix, &random(alphabet, len, seed)].concat()
}

/// The fingerprint detector gives `secret` under `org_key`.
pub fn fingerprint(org_key: &[u8], secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, org_key);
    let tag = ring::hmac::sign(&key, secret.as_bytes());
    format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
}

/// How long one run of the binary may take before the test fails as a hang (seconds;
/// `DETECTOR_TEST_TIMEOUT` changes it).
const DEFAULT_TIMEOUT_SECS: u64 = 120;

/// `detector ARGS…` with a clean environment: HOME inside the test's temp dir, the given
/// org key, no colours, no log filter from the caller. A run that outlives the deadline is
/// killed and fails the test, so a hang cannot block the suite.
pub fn detector(args: &[&str], home: &Path, org_key: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_detector"));
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DETECTOR_ORG_KEY")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    if let Some(key) = org_key {
        cmd.env("DETECTOR_ORG_KEY", key);
    }
    let deadline = std::env::var("DETECTOR_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(
            Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Duration::from_secs,
        );
    run_with_deadline(cmd, deadline, &format!("detector {}", args.join(" ")))
}

/// Run `cmd` to completion, its output collected, or kill it after `deadline` and panic
/// naming `what` and what it printed so far.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    // Pipes are drained while the child runs: a full pipe would block it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for the detector binary") {
            Some(status) => break status,
            None if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                panic!(
                    "{what} did not finish within {deadline:?} (a hang?): killed; stderr:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); stderr:\n{}\nstdout:\n{}",
            stderr(output),
            stdout(output)
        )
    })
}

/// Whether this run is CI's, where a missing prerequisite is a failure, never a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test that cannot run here for `reason`: printed and skipped (`false`), or, under
/// `CI=true`, a failure.
pub fn skip(reason: &str) -> bool {
    assert!(!under_ci(), "CI=true but the test cannot run: {reason}");
    eprintln!("skipped: {reason}");
    false
}

/// Whether the eBPF tests can run here (root, kernel BTF); see [`skip`].
pub fn kernel_available() -> bool {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("the eBPF tests need root")
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip("the eBPF tests need kernel BTF")
    } else {
        true
    }
}

/// A user made on this host for one test, removed with its home when dropped.
pub struct TemporaryUser {
    pub name: String,
    pub home: PathBuf,
}

impl TemporaryUser {
    /// `PREFIX<pid>`, with a home under /home (useradd from Debian's passwd package).
    pub fn create(prefix: &str) -> TemporaryUser {
        let name = format!("{prefix}{}", std::process::id());
        let home = PathBuf::from("/home").join(&name);
        // Other tests may be adding users at the same moment: /etc/passwd's lock is retried.
        for attempt in 0.. {
            let output = Command::new("useradd")
                .args([
                    "--create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--home-dir",
                ])
                .arg(&home)
                .arg(&name)
                .output()
                .expect("useradd (Debian's passwd package) is needed for this test");
            if output.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&output.stderr);
            assert!(
                attempt < 20 && err.contains("lock"),
                "useradd {name}: {err}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        TemporaryUser { name, home }
    }
}

impl Drop for TemporaryUser {
    fn drop(&mut self) {
        for _ in 0..20 {
            let removed = Command::new("userdel")
                .args(["--remove", &self.name])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if removed || !self.home.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

/// `(path, reason)` of every error of the report's first target.
pub fn target_errors(report: &serde_json::Value) -> Vec<(String, String)> {
    report["targets"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The fingerprint of every key of the report.
pub fn report_fingerprints(report: &serde_json::Value) -> std::collections::BTreeSet<String> {
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap().to_string())
        .collect()
}
