//! Developer tasks. `cargo xtask setup` prepares a fresh machine, `cargo xtask test` runs every
//! test (setup first) and a short fuzz run, `cargo xtask fuzz` runs the fuzz targets,
//! `cargo xtask bench …` prints the benchmark tables of README, `cargo xtask check-platforms`
//! checks that the scanner compiles for macOS and Windows, `cargo xtask dist` builds, checks
//! and packs the release binaries of every platform.
mod bench;
mod deb;
mod dist;
mod fuzz;
mod platforms;
mod setup;

use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what this machine lacks: Debian packages, nightly + rust-src, bpf-linker.
    Setup,
    /// Build the eBPF programs (and the binary), failing if they cannot be built.
    BuildEbpf,
    /// Setup, then formatting, clippy, the release binaries of every platform (`dist`, which
    /// the tests use), every test (kernel and Docker tests included) and a short run of every
    /// fuzz target.
    Test,
    /// Build the fuzz targets (nightly, cargo-fuzz), seed them from the test kit, run each for
    /// a bounded time; fails on any crash, hang or out-of-memory, naming the reproducer.
    Fuzz(fuzz::FuzzArgs),
    /// Setup, then the main job: `detector audit` of this host (every home's MCP configs, the
    /// homes, their git repositories, local Docker images), one report grouped by key.
    Run {
        /// Extra arguments for `detector audit` (e.g. `--format html -o audit.html`).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Benchmarks, ours beside the peers on the same input in the same run.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// `cargo check -p detector` for macOS and Windows (through cargo-zigbuild, whose zig
    /// compiles the dependencies' C for them); fails on any error. Installs the targets and
    /// zig first when missing.
    CheckPlatforms(platforms::CheckArgs),
    /// `dist/detector_<version>_amd64.deb` (binary, systemd unit, policy, log directory) from
    /// the static Linux binary of `cargo xtask dist`.
    Deb,
    /// Release builds for static Linux (musl, x86-64 and arm64, agent included), macOS (x86-64
    /// and arm64) and Windows (x86-64) through cargo-zigbuild; checks each binary's format and
    /// writes `<target dir>/dist/`: `<target>/detector`, one archive per target, `SHA256SUMS`.
    /// Fails naming the target on any build, link or format error.
    Dist(dist::DistArgs),
}

fn main() -> Result<()> {
    // `cargo install` puts bpf-linker in ~/.cargo/bin, which a fresh shell may not have on PATH.
    std::env::set_var("PATH", path_with_cargo_bin());
    match Cli::parse().task {
        Task::Setup => setup::setup(),
        Task::BuildEbpf => build(&["build", "--release"]),
        Task::Test => {
            setup::setup()?;
            cargo(&["fmt", "--all", "--", "--check"])?;
            build(&["clippy", "--all-targets", "--", "-D", "warnings"])?;
            // Every platform must build and link, and the tests run those binaries.
            dist::dist(&dist::DistArgs::default())?;
            build(&["test", "--no-fail-fast"])?;
            fuzz::in_tests()
        }
        Task::Fuzz(args) => fuzz::fuzz(&args),
        Task::CheckPlatforms(args) => platforms::check(&args),
        Task::Deb => deb::deb(),
        Task::Dist(args) => dist::dist(&args),
        Task::Run { args } => {
            setup::setup()?;
            build(&["build", "--release"])?;
            let mut cmd = Command::new("target/release/detector");
            cmd.arg("audit").args(args);
            // Exit code 1 means keys were found: the report is the result, not a failure.
            let status = cmd.status().context("cannot run detector audit")?;
            match status.code() {
                Some(0) | Some(1) => Ok(()),
                _ => bail!("detector audit failed: {status}"),
            }
        }
        Task::Bench {
            which: which @ (bench::Which::OpenLoop { .. } | bench::Which::HostileInputs),
        } => bench::run(which),
        Task::Bench { which } => {
            setup::setup()?;
            build(&["build", "--release"])?;
            bench::run(which)
        }
    }
}

/// A cargo command that must embed the eBPF programs.
fn build(args: &[&str]) -> Result<()> {
    run(Command::new("cargo")
        .args(args)
        .env("DETECTOR_REQUIRE_EBPF", "1"))
}

fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new("cargo").args(args))
}

fn path_with_cargo_bin() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    match std::env::var("HOME") {
        Ok(home) if !path.split(':').any(|p| p == format!("{home}/.cargo/bin")) => {
            format!("{home}/.cargo/bin:{path}")
        }
        _ => path,
    }
}

/// The workspace this xtask belongs to.
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(std::path::PathBuf::from)
        .unwrap_or(manifest)
}

/// Where cargo puts its output: `$CARGO_TARGET_DIR` (relative to the current directory, as
/// cargo reads it) or the workspace's `target`.
pub(crate) fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => std::env::current_dir()
            .map(|cwd| cwd.join(&dir))
            .unwrap_or_else(|_| dir.into()),
        _ => workspace_root().join("target"),
    }
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

pub(crate) fn command_ok(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}
