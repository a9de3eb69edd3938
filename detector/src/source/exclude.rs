//! What a directory walk leaves out: `--exclude` globs, `.detectorignore` files, and
//! `.gitignore` files when asked. The walk asks before it enters a directory or reads a file,
//! so an excluded directory is reported once, as itself, and never walked.
//!
//! The ignore files are scanned input like any other file: they are read through the file
//! gate ([`super::fs::read_path`]), so a FIFO or a device named `.detectorignore` is never
//! opened, and one that cannot be read is reported and excludes nothing.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
};

use ignore::{
    gitignore::{Gitignore, GitignoreBuilder},
    Match,
};

use super::{
    fs::{read_path, FileRead},
    Sink, SkipReason, SourceError,
};

/// The file that excludes paths like a `.gitignore`, at the scan root and in subdirectories.
pub const IGNORE_FILE: &str = ".detectorignore";

/// An ignore file larger than this is not read (it excludes nothing, and is reported).
const MAX_IGNORE_FILE: u64 = 1024 * 1024;

/// Why a path is left out: the glob or file that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excluded {
    /// An `--exclude` glob.
    Glob(String),
    /// A line of this ignore file.
    File(PathBuf),
}

impl std::fmt::Display for Excluded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Excluded::Glob(glob) => write!(f, "--exclude {glob}"),
            Excluded::File(file) => write!(f, "{}", file.display()),
        }
    }
}

/// The exclusions of one walk of `root`.
pub struct Exclusions {
    root: PathBuf,
    /// The `--exclude` globs, as lines of one ignore file at the root.
    globs: Gitignore,
    /// The ignore file names honoured in every directory.
    names: Vec<&'static str>,
    /// Per directory met: the ignore files that apply to its entries, from the root down,
    /// each read and parsed once, when its directory is first met.
    chains: RwLock<HashMap<PathBuf, Chain>>,
}

/// The ignore files that apply in a directory, shallowest first: each with its path.
type Chain = Arc<[(PathBuf, Arc<Gitignore>)]>;

impl Exclusions {
    /// `globs` are `--exclude` (gitignore syntax, relative to `root`); `.gitignore` files
    /// count too when `gitignore` is set.
    pub fn new(root: &Path, globs: &[String], gitignore: bool) -> Result<Exclusions, SourceError> {
        let mut builder = GitignoreBuilder::new(root);
        for glob in globs {
            builder
                .add_line(None, glob)
                .map_err(|e| SourceError::new(root, format!("--exclude {glob}: {e}")))?;
        }
        let globs = builder
            .build()
            .map_err(|e| SourceError::new(root, format!("--exclude: {e}")))?;
        let mut names = vec![IGNORE_FILE];
        if gitignore {
            names.push(".gitignore");
        }
        Ok(Exclusions {
            root: root.to_path_buf(),
            globs,
            names,
            chains: RwLock::default(),
        })
    }

    /// Whether `path` (under the root) is left out, and by what. The ignore files of its
    /// directories are read on first use; one that cannot be read goes to `sink`'s errors.
    pub fn excluded(&self, path: &Path, is_dir: bool, sink: &dyn Sink) -> Option<Excluded> {
        if let Match::Ignore(glob) = self.globs.matched(path, is_dir) {
            return Some(Excluded::Glob(glob.original().to_string()));
        }
        path.strip_prefix(&self.root).ok()?;
        let dir = path.parent().filter(|d| d.starts_with(&self.root))?;
        // From the root down to the path's own directory: a deeper file overrides a
        // shallower one, and a `!` line lets a path back in.
        let mut verdict = None;
        for (file, matcher) in self.chain(dir, sink).iter() {
            match matcher.matched(path, is_dir) {
                Match::Ignore(_) => verdict = Some(Excluded::File(file.clone())),
                Match::Whitelist(_) => verdict = None,
                Match::None => {}
            }
        }
        verdict
    }

    /// The ignore files that apply in `dir` (the root or under it), its own last. A walk
    /// meets a directory before its entries, so its parent's chain is known but for the root.
    fn chain(&self, dir: &Path, sink: &dyn Sink) -> Chain {
        if let Some(known) = read(&self.chains).get(dir) {
            return Arc::clone(known);
        }
        // Directories whose chain is not known yet, deepest first (on a walk: just `dir`).
        let mut missing = vec![dir];
        let mut above: Chain = Arc::new([]);
        while let Some(parent) = missing
            .last()
            .filter(|d| **d != self.root)
            .and_then(|d| d.parent())
        {
            if let Some(known) = read(&self.chains).get(parent) {
                above = Arc::clone(known);
                break;
            }
            missing.push(parent);
        }
        let mut chains = write(&self.chains);
        for dir in missing.into_iter().rev() {
            if let Some(known) = chains.get(dir) {
                above = Arc::clone(known);
                continue;
            }
            let own: Vec<(PathBuf, Arc<Gitignore>)> = self
                .names
                .iter()
                .filter_map(|name| Some((dir.join(name), parse(dir, name, sink)?)))
                .collect();
            if !own.is_empty() {
                above = above.iter().cloned().chain(own).collect();
            }
            chains.insert(dir.to_path_buf(), Arc::clone(&above));
        }
        above
    }
}

/// Read `dir/name` through the file gate and parse it as gitignore lines.
/// `None` when there is none (or it could not be read).
fn parse(dir: &Path, name: &str, sink: &dyn Sink) -> Option<Arc<Gitignore>> {
    let path = dir.join(name);
    // Not there: the usual case.
    if matches!(std::fs::symlink_metadata(&path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        return None;
    }
    let text = match read_path(&path, MAX_IGNORE_FILE) {
        FileRead::Loaded(loaded) => String::from_utf8_lossy(&loaded.bytes).into_owned(),
        // A directory by that name excludes nothing (and is walked like any other).
        FileRead::Directory | FileRead::Skipped(SkipReason::SymlinkToDirectory) => return None,
        // The walk meets the file too, and lists why it could not be read.
        FileRead::Special(reason) => {
            tracing::debug!(path = %path.display(), reason, "ignore file not read");
            return None;
        }
        FileRead::Failed(reason) => {
            tracing::debug!(path = %path.display(), reason, "ignore file not read");
            return None;
        }
        FileRead::Skipped(reason) => {
            sink.error(
                &path,
                &format!("{}: its exclusions are not applied", reason.as_str()),
            );
            return None;
        }
        FileRead::Archive(..) => {
            sink.error(&path, "not a text file: its exclusions are not applied");
            return None;
        }
    };
    let mut builder = GitignoreBuilder::new(dir);
    for line in text.lines() {
        // A line that is no glob is ignored, as git does.
        let _ = builder.add_line(Some(path.clone()), line);
    }
    match builder.build() {
        Ok(matcher) => Some(Arc::new(matcher)),
        Err(e) => {
            sink.error(&path, &format!("{e}: its exclusions are not applied"));
            None
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
