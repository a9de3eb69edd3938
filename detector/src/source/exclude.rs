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
    sync::{Arc, Mutex, PoisonError},
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
    /// Each directory's ignore files, parsed once (`None`: it has none).
    files: Mutex<HashMap<(PathBuf, &'static str), Parsed>>,
}

/// An ignore file as read: `None` when there is none (or it could not be read).
type Parsed = Option<Arc<Gitignore>>;

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
            files: Mutex::default(),
        })
    }

    /// Whether `path` (under the root) is left out, and by what. The ignore files of its
    /// directories are read on first use; one that cannot be read goes to `sink`'s errors.
    pub fn excluded(&self, path: &Path, is_dir: bool, sink: &dyn Sink) -> Option<Excluded> {
        if let Match::Ignore(glob) = self.globs.matched(path, is_dir) {
            return Some(Excluded::Glob(glob.original().to_string()));
        }
        let relative = path.strip_prefix(&self.root).ok()?;
        // From the root down to the path's own directory: a deeper file overrides a
        // shallower one, and a `!` line lets a path back in.
        let mut verdict = None;
        let mut dir = self.root.clone();
        let mut components = relative.components().peekable();
        loop {
            for &name in &self.names {
                if let Some(file) = self.file(&dir, name, sink) {
                    match file.matched(path, is_dir) {
                        Match::Ignore(_) => verdict = Some(Excluded::File(dir.join(name))),
                        Match::Whitelist(_) => verdict = None,
                        Match::None => {}
                    }
                }
            }
            match components.next() {
                Some(component) if components.peek().is_some() => dir.push(component),
                _ => break,
            }
        }
        verdict
    }

    /// `dir`'s ignore file `name`, parsed (once per walk).
    fn file(&self, dir: &Path, name: &'static str, sink: &dyn Sink) -> Parsed {
        let key = (dir.to_path_buf(), name);
        if let Some(known) = lock(&self.files).get(&key) {
            return known.clone();
        }
        let parsed = parse(dir, name, sink);
        lock(&self.files).insert(key, parsed.clone());
        parsed
    }
}

/// Read `dir/name` through the file gate and parse it as gitignore lines.
fn parse(dir: &Path, name: &str, sink: &dyn Sink) -> Parsed {
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
