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
