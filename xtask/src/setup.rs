//! `cargo xtask setup`: make a fresh machine of this project's kind (Debian 12, root, only the
//! package registries reachable) able to build and test everything. Every step checks first,
//! so a second run takes seconds.
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{command_ok, run};

/// Debian packages: the LLVM that matches nightly rustc (for bpf-linker), what the tests drive
/// (git, a Docker engine and Compose (v1, the one Debian 12 packages), busybox for image rootfs, rsyslog as a real syslog collector,
/// systemd-analyze for the unit file, headless Chromium for the HTML report), the C++ compiler
/// libFuzzer is built with, the peers the benchmarks compare with, and the key stores
/// `detector fix --to` writes to (pass with GnuPG; secret-tool against a gnome-keyring-daemon
/// on a private bus from dbus-run-session), and the database servers `--verify-network` logs
/// in to (PostgreSQL, Redis; the tests start their own), and Wine (64-bit) for the Windows
/// build's test.
const PACKAGES: &[&str] = &[
    "llvm-22",
    "llvm-22-dev",
    "libpolly-22-dev",
    "libclang-22-dev",
    "clang-22",
    "libzstd-dev",
    "zlib1g-dev",
    "git",
    "docker.io",
    "docker-compose",
    "busybox-static",
    "bpftrace",
    "auditd",
    "python3-venv",
    "rsyslog",
    "systemd",
    "chromium",
    "g++",
    "pass",
    "gnupg",
    "libsecret-tools",
    "gnome-keyring",
    "dbus-daemon",
    "postgresql",
    "redis-server",
    "wine64",
];

pub const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

pub fn setup() -> Result<()> {
    apt_packages()?;
    rust_toolchains()?;
    cross_targets()?;
    zig()?;
    bpf_linker()?;
    cargo_fuzz()?;
    pre_commit()?;
    eprintln!("xtask setup: ready");
    Ok(())
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask setup: installing {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn rust_toolchains() -> Result<()> {
    let list = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .context("rustup is required")?;
    if !String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l.starts_with("nightly"))
    {
        eprintln!("xtask setup: installing the nightly toolchain");
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let components = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()?;
    if !String::from_utf8_lossy(&components.stdout)
        .lines()
        .any(|l| l.starts_with("rust-src"))
    {
        eprintln!("xtask setup: adding rust-src to nightly");
        run(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))?;
    }
    let stable = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output()?;
    let stable = String::from_utf8_lossy(&stable.stdout);
    for component in ["clippy", "rustfmt"] {
        if !stable.lines().any(|l| l.starts_with(component)) {
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// The targets the scanner is built for besides this machine's: static Linux (musl) for both
/// architectures, macOS for both, Windows (GNU ABI). rustup downloads each standard library.
pub const CROSS_TARGETS: &[&str] = &[
    "x86_64-pc-windows-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];

/// The virtualenv of zig (PyPI `ziglang`) and cargo-zigbuild.
pub const ZIG_VENV: &str = kit::tools::ZIG_VENV;
const ZIGLANG_VERSION: &str = "0.17.1";
const CARGO_ZIGBUILD_VERSION: &str = "0.24.1";

pub fn cross_targets() -> Result<()> {
    let list = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is required")?;
    let installed = String::from_utf8_lossy(&list.stdout);
    let missing: Vec<&str> = CROSS_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask setup: adding Rust targets {}", missing.join(" "));
    run(Command::new("rustup")
        .args(["target", "add"])
        .args(&missing))
}

/// zig and cargo-zigbuild (PyPI `ziglang`, `cargo-zigbuild`), in a virtualenv of their own at
/// [`ZIG_VENV`]: zig compiles the C inside the dependencies (ring, SQLite, zstd, bzip2, lzma)
/// for macOS (it ships macOS's libc headers: no Apple SDK needed) and Windows, and links.
/// `cargo-zigbuild` is on the venv's `bin`, with the `python3` that finds `ziglang`.
pub fn zig() -> Result<()> {
    let venv = std::path::Path::new(ZIG_VENV);
    let zigbuild = venv.join("bin/cargo-zigbuild");
    let has = |program: &std::path::Path, args: &[&str], wanted: &str| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(wanted))
            .unwrap_or(false)
    };
    if has(&zigbuild, &["--version"], CARGO_ZIGBUILD_VERSION)
        && has(
            &venv.join("bin/python3"),
            &["-m", "ziglang", "version"],
            ZIGLANG_VERSION,
        )
    {
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing zig and cargo-zigbuild into {}",
        venv.display()
    );
    if !venv.join("bin/pip").exists() {
        std::fs::create_dir_all(venv)
            .with_context(|| format!("cannot create {}", venv.display()))?;
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))
            .context("cannot create the zig virtualenv (python3-venv)")?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("ziglang=={ZIGLANG_VERSION}"))
        .arg(format!("cargo-zigbuild=={CARGO_ZIGBUILD_VERSION}")))?;
    if !command_ok(Command::new(&zigbuild).arg("--version")) {
        bail!(
            "cargo-zigbuild was installed but {} does not run",
            zigbuild.display()
        );
    }
    Ok(())
}

/// cargo-fuzz, for `cargo xtask fuzz` (it drives nightly, which [`rust_toolchains`] installs;
/// libFuzzer itself is built from source by the `libfuzzer-sys` crate, with the g++ of
/// [`PACKAGES`]).
fn cargo_fuzz() -> Result<()> {
    if command_ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-fuzz");
    run(Command::new("cargo").args(["install", "cargo-fuzz", "--version", "0.13.2", "--locked"]))?;
    if !command_ok(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        bail!("cargo-fuzz was installed but cargo does not find it: add ~/.cargo/bin to PATH");
    }
    Ok(())
}

/// The pre-commit framework (PyPI `pre-commit`, which Debian 12 ships too old), in a
/// virtualenv of its own at [`kit::tools::PRE_COMMIT_VENV`]: the hook tests run this
/// repository's `.pre-commit-hooks.yaml` through it. Needs the `python3-venv` of [`PACKAGES`].
fn pre_commit() -> Result<()> {
    let venv = std::path::Path::new(kit::tools::PRE_COMMIT_VENV);
    let binary = venv.join("bin/pre-commit");
    let wanted = kit::tools::PRE_COMMIT_VERSION;
    let has = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(wanted))
        .unwrap_or(false);
    if has {
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing pre-commit {wanted} into {}",
        venv.display()
    );
    if !venv.join("bin/pip").exists() {
        std::fs::create_dir_all(venv)
            .with_context(|| format!("cannot create {}", venv.display()))?;
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))
            .context("cannot create the pre-commit virtualenv (python3-venv)")?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("pre-commit=={wanted}")))?;
    if !command_ok(Command::new(&binary).arg("--version")) {
        bail!(
            "pre-commit was installed but {} does not run",
            binary.display()
        );
    }
    Ok(())
}

fn bpf_linker() -> Result<()> {
    if command_ok(Command::new("bpf-linker").arg("--version")) {
        return Ok(());
    }
    eprintln!("xtask setup: building bpf-linker against LLVM 22 (a few minutes)");
    let path = format!(
        "{LLVM_PREFIX}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new("cargo")
        .args(["install", "bpf-linker", "--version", "0.13.0"])
        .args(["--no-default-features", "--features", "llvm-22"])
        .env("PATH", path)
        .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX))?;
    if !command_ok(Command::new("bpf-linker").arg("--version")) {
        bail!("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH");
    }
    Ok(())
}
