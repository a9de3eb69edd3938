//! `cargo xtask check-platforms`: the scanner (everything but the Linux-only agent) compiles
//! for macOS and Windows. `cargo check` compiles the C inside the dependencies (ring, SQLite,
//! zstd, bzip2, lzma) for the target too, so it runs through `cargo-zigbuild check`, which
//! hands that C to zig (PyPI `ziglang`: macOS's libc headers included, no Apple SDK).
//! A quick check without linking; `cargo xtask dist` (dist.rs) builds, links and packs.
use std::process::Command;

use anyhow::{bail, Result};
use clap::Args;

use crate::setup;

/// The targets checked by default: the systems most MCP clients run on.
pub const TARGETS: &[&str] = &["x86_64-apple-darwin", "x86_64-pc-windows-gnu"];

#[derive(Args)]
pub struct CheckArgs {
    /// Targets to check (default: x86_64-apple-darwin, x86_64-pc-windows-gnu).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Check the tests too (`--all-targets`), not only the library and the binary.
    #[arg(long)]
    all_targets: bool,
}

pub fn check(args: &CheckArgs) -> Result<()> {
    setup::cross_targets()?;
    setup::zig()?;
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    let bin = std::path::Path::new(setup::ZIG_VENV).join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failed = Vec::new();
    for target in targets {
        eprintln!("xtask check-platforms: {target}");
        let mut cmd = Command::new(bin.join("cargo-zigbuild"));
        cmd.args(["check", "-p", "detector", "--target", target])
            .env("PATH", &path);
        if args.all_targets {
            cmd.arg("--all-targets");
        }
        let ok = cmd.status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            failed.push(target);
        }
    }
    if !failed.is_empty() {
        bail!("detector does not compile for {}", failed.join(", "));
    }
    eprintln!("xtask check-platforms: ok");
    Ok(())
}
