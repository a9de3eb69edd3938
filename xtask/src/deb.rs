//! `cargo xtask deb`: `dist/detector_<version>_amd64.deb` from the static Linux binary that
//! `cargo xtask dist` left in `dist/x86_64-unknown-linux-musl/` and the files of `deploy/`.
//! The package itself is made by [`kit::deb`], which the package test builds with too.
use anyhow::{anyhow, bail, Result};

pub fn deb() -> Result<()> {
    let workspace = crate::workspace_root();
    let dist = crate::target_dir().join("dist");
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
