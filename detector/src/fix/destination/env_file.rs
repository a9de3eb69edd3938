//! The env file store: `ENV_FILE_HEADER`, then for each key a `# note` line and a
//! `NAME='value'` line that sh sources as is (`. FILE`). Written whole and
//! atomically (a private temp file beside it, fsync, rename, fsync of the folder), so a crash
//! leaves the old file or the new one, never half of one, and no other user can read either.
use std::{
    fs::{self, DirBuilder},
    io,
    path::{Path, PathBuf},
};

use zeroize::Zeroizing;

use super::{DestinationError, Entry, ENV_FILE_HEADER};
use crate::{
    platform::{CreateMode, FolderLock},
    source::managed_store::is_managed_store,
};

/// A file larger than this is no store of ours (a few hundred keys take a few KiB).
const MAX_STORE_SIZE: u64 = 4 * 1024 * 1024;

/// One stored key, as read from or written to the file.
struct Stored {
    name: String,
    value: Zeroizing<String>,
    note: String,
}

pub(super) fn check(path: &Path) -> Result<(), DestinationError> {
    if let Some(work_tree) = git_work_tree(path) {
        return Err(DestinationError::InGitWorkTree {
            path: path.to_path_buf(),
            work_tree,
        });
    }
    read(path).map(drop)
}

pub(super) fn lookup(
    path: &Path,
    name: &str,
) -> Result<Option<Zeroizing<String>>, DestinationError> {
    Ok(read(path)?
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| s.value))
}

pub(super) fn put(path: &Path, entries: &[Entry]) -> Result<(), DestinationError> {
    check(path)?;
    let dir = folder(path);
    DirBuilder::new()
        .recursive(true)
        .unix_mode(0o700)
        .create(dir)
        .map_err(|e| io_error("create the folder", dir, e))?;
    // Read, merge and replace under a lock on the folder: two runs of `fix` at once each
    // keep the other's keys.
    let _lock = lock(dir)?;
    let mut stored = read(path)?;
    for entry in entries {
        let new = Stored {
            name: entry.name.clone(),
            value: entry.secret.clone(),
            note: entry.note.clone(),
        };
        match stored.iter_mut().find(|s| s.name == entry.name) {
            Some(old) => *old = new,
            None => stored.push(new),
        }
    }
    write(path, &render(&stored))
}

/// The work tree holding `path` (or the folder it would be created in): the nearest folder
/// with a `.git` (a folder, or a file for worktrees and submodules). The path is looked at as
/// given and with its existing part's symlinks resolved (`~/.config` may be a link into a
/// dotfiles repository).
fn git_work_tree(path: &Path) -> Option<PathBuf> {
    let in_tree = |start: &Path| {
        start
            .ancestors()
            .skip(1)
            .find(|dir| dir.join(".git").exists())
            .map(Path::to_path_buf)
    };
    if let Some(tree) = in_tree(path) {
        return Some(tree);
    }
    // The nearest existing ancestor, resolved, with the rest appended.
    let existing = path.ancestors().find(|a| a.exists())?;
    let rest = path.strip_prefix(existing).ok()?;
    let resolved = fs::canonicalize(existing).ok()?.join(rest);
    in_tree(&resolved)
}

/// The stored keys, in file order; none when the file does not exist. A file that is not a
/// managed store is refused, so `put` never clobbers a user's file.
fn read(path: &Path) -> Result<Vec<Stored>, DestinationError> {
    let io_error = |action, source| DestinationError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read", e)),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(DestinationError::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Ok(meta) if meta.len() > MAX_STORE_SIZE => {
            return Err(DestinationError::ForeignFile {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => {}
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_error("read", e))?);
    if !is_managed_store(&bytes) {
        return Err(DestinationError::ForeignFile {
            path: path.to_path_buf(),
        });
    }
    let malformed = |line| DestinationError::Malformed {
        path: path.to_path_buf(),
        line,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed(1))?;
    let mut stored = Vec::new();
    let mut notes: Vec<&str> = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(note) = line.strip_prefix('#') {
            notes.push(note.trim());
            continue;
        }
        let (name, value) = parse_assignment(line).ok_or_else(|| malformed(index + 1))?;
        stored.push(Stored {
            name: name.to_string(),
            value,
            note: notes.join(" "),
        });
        notes.clear();
    }
    Ok(stored)
}

/// `NAME='value'` as this module writes it (single-quoted runs joined by `\'`), else `None`.
fn parse_assignment(line: &str) -> Option<(&str, Zeroizing<String>)> {
    let (name, mut rest) = line.split_once('=')?;
    if !super::is_variable_name(name) {
        return None;
    }
    let mut value = Zeroizing::new(String::with_capacity(rest.len()));
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted.find('\'')?;
            value.push_str(&quoted[..end]);
            rest = &quoted[end + 1..];
        } else if let Some(after) = rest.strip_prefix("\\'") {
            value.push('\'');
            rest = after;
        } else {
            return None;
        }
    }
    Some((name, value))
}

fn render(stored: &[Stored]) -> Zeroizing<String> {
    // Sized once, so growing never leaves a copy of a value in a freed buffer.
    let size = ENV_FILE_HEADER.len()
        + 1
        + stored
            .iter()
            .map(|s| s.note.len() + s.name.len() + 4 * s.value.len() + 8)
            .sum::<usize>();
    let mut text = Zeroizing::new(String::with_capacity(size));
    text.push_str(ENV_FILE_HEADER);
    text.push('\n');
    for entry in stored {
        // A note is one comment line whatever it holds.
        let note: String = entry
            .note
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if !note.trim().is_empty() {
            text.push_str("# ");
            text.push_str(note.trim());
            text.push('\n');
        }
        text.push_str(&entry.name);
        text.push('=');
        // Quoted in place: no copy of the value outside the zeroized text.
        text.push('\'');
        for c in entry.value.chars() {
            match c {
                '\'' => text.push_str(r"'\''"),
                c => text.push(c),
            }
        }
        text.push_str("'\n");
    }
    text
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> DestinationError {
    DestinationError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// An exclusive lock on the store's folder, held until the returned file is dropped.
fn lock(dir: &Path) -> Result<FolderLock, DestinationError> {
    FolderLock::acquire(dir).map_err(|(step, e)| io_error(step, dir, e))
}

/// Replace `path` with `text`, mode 0600, the way `fix` writes every file
/// ([`crate::fix::write`]): atomically, nothing left behind.
fn write(path: &Path, text: &str) -> Result<(), DestinationError> {
    crate::fix::write::create(path, text.as_bytes(), 0o600).map_err(DestinationError::from)
}
