//! Writing what `fix` changed: atomically (a temporary file in the same directory, synced,
//! renamed over the old one, with its owner and mode), never over a file that changed since
//! it was read, and with no copy left behind (a backup of a config is one more copy of its
//! keys).
use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use crate::platform;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: changed since it was read; left as it is (run `detector fix` again)", .0.display())]
    Changed(PathBuf),
    #[error("{}: cannot {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io {
        path,
        action,
        source,
    }
}

/// Replace the file at `path` (through a symbolic link: the file it names) with `new`, when it
/// still holds exactly `expected`.
pub fn replace(path: &Path, expected: &[u8], new: &[u8]) -> Result<(), WriteError> {
    let target = fs::canonicalize(path).map_err(io_error(path, "resolve"))?;
    let unchanged = || -> Result<(), WriteError> {
        match fs::read(&target) {
            Ok(now) if now == expected => Ok(()),
            Ok(_) => Err(WriteError::Changed(path.to_path_buf())),
            Err(e) => Err(io_error(path, "read")(e)),
        }
    };
    unchanged()?;
    let meta = fs::metadata(&target).map_err(io_error(path, "read the mode of"))?;
    write_beside(
        &target,
        new,
        // (Where files have no mode, none is set: the 0o600 is not applied.)
        platform::mode(&meta).map_or(0o600, |mode| mode & 0o7777),
        platform::owner(&meta),
        || {
            test_hook("DETECTOR_TEST_BEFORE_RENAME");
            unchanged()?;
            if test_hook("DETECTOR_TEST_FAIL_RENAME") {
                return Err(io_error(path, "rename over")(io::Error::other(
                    "failed on purpose (DETECTOR_TEST_FAIL_RENAME)",
                )));
            }
            Ok(())
        },
    )
}

/// Create or replace `path` with `text` and `mode` (a wrapper script, a .gitignore).
pub fn create(path: &Path, text: &[u8], mode: u32) -> Result<(), WriteError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_error(dir, "create"))?;
    }
    write_beside(path, text, mode, None, || Ok(()))
}

fn write_beside(
    target: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    before_rename: impl FnOnce() -> Result<(), WriteError>,
) -> Result<(), WriteError> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Dropped on every early return: the temporary file is deleted, nothing is left behind.
    let mut temp = tempfile::Builder::new()
        .prefix(".detector-fix-")
        .tempfile_in(dir)
        .map_err(io_error(dir, "create a temporary file in"))?;
    temp.write_all(bytes)
        .map_err(io_error(temp.path(), "write"))?;
    let file = temp.as_file();
    if let Some(owner) = owner {
        // Only root can give a file away; anyone else keeps their own file, so a refusal
        // changes nothing.
        platform::set_file_owner(file, owner);
    }
    platform::set_file_mode(file, mode).map_err(io_error(target, "set the mode of"))?;
    file.sync_all().map_err(io_error(target, "sync"))?;
    before_rename()?;
    temp.persist(target)
        .map_err(|e| io_error(target, "rename over")(e.error))?;
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Faults the end-to-end tests inject into a debug build's replacement of a config: the
/// variable's command runs (a change made between read and write), or its presence makes the
/// rename fail. Release builds have no such hook.
fn test_hook(variable: &str) -> bool {
    #[cfg(debug_assertions)]
    if let Some(command) = std::env::var_os(variable) {
        if variable == "DETECTOR_TEST_BEFORE_RENAME" {
            let _ = std::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .status();
        }
        return true;
    }
    let _ = variable;
    false
}
