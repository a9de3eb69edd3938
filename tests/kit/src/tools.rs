//! Tools the tests drive that no Debian package provides, installed by `cargo xtask setup`
//! at fixed places (so a test finds them without PATH changes).
use std::path::PathBuf;

/// The virtualenv `cargo xtask setup` installs the pre-commit framework (PyPI `pre-commit`)
/// into.
pub const PRE_COMMIT_VENV: &str = "/opt/detector-test-tools/pre-commit";

/// The pre-commit version setup installs.
pub const PRE_COMMIT_VERSION: &str = "4.2.0";

/// The `pre-commit` executable: setup's, else one on PATH.
pub fn pre_commit() -> Option<PathBuf> {
    let venv = PathBuf::from(PRE_COMMIT_VENV).join("bin/pre-commit");
    if venv.is_file() {
        return Some(venv);
    }
    crate::run::which("pre-commit")
}

/// The virtualenv `cargo xtask setup` installs zig (PyPI `ziglang`) and cargo-zigbuild into.
pub const ZIG_VENV: &str = "/opt/detector-test-tools/zig";

/// `python3 -m ziglang`, zig as setup installs it, when it is there.
pub fn zig() -> Option<std::process::Command> {
    let python = PathBuf::from(ZIG_VENV).join("bin/python3");
    let ok = std::process::Command::new(&python)
        .args(["-m", "ziglang", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| {
        let mut cmd = std::process::Command::new(python);
        cmd.args(["-m", "ziglang"]);
        cmd
    })
}
