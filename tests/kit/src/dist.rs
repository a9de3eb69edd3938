//! The release binaries `cargo xtask dist` leaves in `TARGET/dist/<target>/` (static Linux,
//! macOS, Windows), as the platform tests find them.
use std::path::{Path, PathBuf};

use crate::guard;

/// The static Linux build, which also goes into the Debian package.
pub const LINUX_MUSL: &str = "x86_64-unknown-linux-musl";
/// The Windows build (GNU ABI), run under Wine.
pub const WINDOWS: &str = "x86_64-pc-windows-gnu";

/// The dist folder: `$DETECTOR_DIST_DIR`, else `dist/` in the target dir of `test_binary`
/// (the binary under test, `TARGET/debug/detector`).
pub fn dir(test_binary: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("DETECTOR_DIST_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary sits in TARGET/PROFILE/")
        .join("dist")
}

/// The `detector` of `target` in the dist folder (`detector.exe` for Windows), or a skip
/// (a failure under `CI=true`) naming the missing file.
pub fn binary_or_skip(test_binary: &Path, target: &str) -> Option<PathBuf> {
    let name = if target.contains("windows") {
        "detector.exe"
    } else {
        "detector"
    };
    let path = dir(test_binary).join(target).join(name);
    if path.is_file() {
        Some(path)
    } else {
        guard::skip(&format!(
            "{} is missing (run `cargo xtask dist` first)",
            path.display()
        ));
        None
    }
}
