//! `cargo xtask deb`: `dist/detector_<version>_amd64.deb` from the static Linux binary that
//! `cargo xtask dist` left in `dist/x86_64-unknown-linux-musl/` and the files of `deploy/`.
//! The package itself is made by [`kit::deb`], which the package test builds with too.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

pub fn deb() -> Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dist = target_dir(workspace).join("dist");
    let binary = dist.join(kit::dist::LINUX_MUSL).join("detector");
    if !binary.is_file() {
        bail!(
            "{} is missing: run cargo xtask dist first",
            binary.display()
        );
    }
    let deb = kit::deb::build(
        &binary,
        &workspace.join("deploy"),
        env!("CARGO_PKG_VERSION"),
        &dist,
    )
    .map_err(|e| anyhow!(e))?;
    eprintln!("xtask deb: {}", deb.display());
    Ok(())
}

/// `$CARGO_TARGET_DIR` (relative to the current folder, as cargo takes it), else
/// `<workspace>/target`.
fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => std::env::current_dir().unwrap_or_default().join(dir),
        None => workspace.join("target"),
    }
}
