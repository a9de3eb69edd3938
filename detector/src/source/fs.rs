//! `dir:` and `file:` targets: files on disk, read without ever blocking.
//!
//! Every object is checked with `symlink_metadata` before it is opened, FIFOs, sockets and
//! devices are never opened, and regular files are opened with `O_NONBLOCK` and checked again
//! with `fstat`, so a file swapped for a FIFO between the two checks cannot hang the scan.
use std::{
    fs::{File, FileType, Metadata, OpenOptions},
    io::{self, Read},
    os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use ignore::WalkBuilder;
use rayon::iter::{ParallelBridge, ParallelIterator};

use super::{Blob, LocationKind, Provenance, Sink, SkipReason, SourceError, SourceOptions};
use crate::mcp::{self, ConfigRef};

/// How many leading bytes decide whether a file is binary (a NUL byte among them).
const BINARY_PROBE: usize = 8 * 1024;

/// Walk `root`: every file, hidden ones included, `.gitignore` not honoured, `.git`
/// internals skipped (history is the git source's job). Symlinks to files are read,
/// symlinks to directories are not followed.
pub fn scan_dir(root: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let meta = std::fs::metadata(root).map_err(|e| SourceError::new(root, io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(SourceError::new(root, "not a directory (use file:PATH)"));
    }
    std::fs::read_dir(root).map_err(|e| SourceError::new(root, io_reason(&e)))?;

    let walker = WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| {
            !(entry.depth() > 0
                && entry.file_name() == ".git"
                && entry.file_type().is_some_and(|t| t.is_dir()))
        })
        .build();
    walker.par_bridge().for_each(|entry| match entry {
        // The root itself (maybe a symlink to the directory, checked above).
        Ok(entry) if entry.depth() == 0 => {}
        Ok(entry) => {
            if let Some(file_type) = entry.file_type() {
                visit(entry.path(), file_type, root, options, sink);
            }
        }
        Err(err) => {
            let (path, reason) = walk_error(&err);
            sink.error(path.as_deref().unwrap_or(root), &reason);
        }
    });
    Ok(())
}

/// One file. Anything but a readable regular file (or a symlink to one) fails the target.
pub fn scan_file(path: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match read_path(path, options.max_file_size) {
        FileRead::Loaded(loaded) => {
            sink.blob(file_blob(path, loaded, parent, mcp::recognise(path)));
            Ok(())
        }
        FileRead::Skipped(SkipReason::SymlinkToDirectory) | FileRead::Directory => {
            Err(SourceError::new(path, "is a directory (use dir:PATH)"))
        }
        FileRead::Skipped(reason) => {
            sink.skipped(path, reason);
            Ok(())
        }
        FileRead::Failed(reason) => Err(SourceError::new(path, reason)),
    }
}

fn visit(path: &Path, file_type: FileType, root: &Path, options: &SourceOptions, sink: &dyn Sink) {
    if file_type.is_dir() {
        return;
    }
    match read_path(path, options.max_file_size) {
        FileRead::Loaded(loaded) => sink.blob(file_blob(path, loaded, root, mcp::recognise(path))),
        FileRead::Skipped(reason) => sink.skipped(path, reason),
        FileRead::Failed(reason) => sink.error(path, &reason),
        FileRead::Directory => {}
    }
}

/// Read the file at `path` if it is a regular file or a symlink to one. The type is checked
/// with `symlink_metadata` (and `metadata` for a symlink's target) before anything is opened.
pub fn read_path(path: &Path, max_size: u64) -> FileRead {
    let link = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return FileRead::Failed(io_reason(&e)),
    };
    let file_type = if link.file_type().is_symlink() {
        match std::fs::metadata(path) {
            Ok(target) if target.is_dir() => {
                return FileRead::Skipped(SkipReason::SymlinkToDirectory)
            }
            Ok(target) => target.file_type(),
            Err(e) => return FileRead::Failed(symlink_reason(path, &e)),
        }
    } else {
        link.file_type()
    };
    if file_type.is_dir() {
        return FileRead::Directory;
    }
    if let Some(special) = special_file(file_type) {
        return FileRead::Failed(special.to_string());
    }
    read_file(path, max_size)
}

/// A file read into memory, with the metadata of the open descriptor.
#[derive(Debug)]
pub struct LoadedFile {
    pub bytes: Vec<u8>,
    pub meta: Metadata,
}

#[derive(Debug)]
pub enum FileRead {
    Loaded(LoadedFile),
    Skipped(SkipReason),
    Failed(String),
    /// A directory where a file was expected.
    Directory,
}

/// Open and read a file whose type was checked by [`read_path`]. The descriptor's own type
/// is checked again, and `O_NONBLOCK` makes even a swapped-in FIFO return at once.
fn read_file(path: &Path, max_size: u64) -> FileRead {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) => return FileRead::Failed(io_reason(&e)),
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return FileRead::Failed(io_reason(&e)),
    };
    if !meta.is_file() {
        return FileRead::Failed(
            special_file(meta.file_type())
                .unwrap_or("not a regular file")
                .to_string(),
        );
    }
    if meta.len() > max_size {
        return FileRead::Skipped(SkipReason::TooLarge);
    }
    let bytes = match read_text(file, meta.len(), max_size) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return FileRead::Skipped(SkipReason::Binary),
        Err(e) => return FileRead::Failed(io_reason(&e)),
    };
    if bytes.len() as u64 > max_size {
        // It grew between fstat and read.
        return FileRead::Skipped(SkipReason::TooLarge);
    }
    FileRead::Loaded(LoadedFile { bytes, meta })
}

/// The file's bytes (at most `max_size + 1` of them), or `None` when its first bytes say it
/// is binary: then the rest is never read.
fn read_text(file: File, size_hint: u64, max_size: u64) -> io::Result<Option<Vec<u8>>> {
    let capacity = size_hint.min(max_size).saturating_add(1);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut file = file.take(max_size.saturating_add(1));
    (&mut file)
        .take(BINARY_PROBE as u64)
        .read_to_end(&mut bytes)?;
    if is_binary(&bytes) {
        return Ok(None);
    }
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// A NUL byte near the start: how git and ripgrep tell binary from text.
pub fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_PROBE)]).is_some()
}

/// The blob of a file on disk. `root` is the scanned directory (the project when nothing
/// more precise is known); `config` is set when the file is an MCP client config, which is
/// then parsed too.
pub fn file_blob(path: &Path, loaded: LoadedFile, root: &Path, config: Option<ConfigRef>) -> Blob {
    let meta = &loaded.meta;
    let project = config
        .as_ref()
        .map(|c| c.scope.label())
        .unwrap_or_else(|| root.display().to_string());
    let provenance = Provenance {
        kind: if config.is_some() {
            LocationKind::McpConfig
        } else {
            LocationKind::File
        },
        path: path.to_path_buf(),
        current: true,
        mtime: mtime(meta),
        mode: Some(meta.mode() & 0o7777),
        uid: Some(meta.uid()),
        dev: Some(meta.dev()),
        inode: Some(meta.ino()),
        root: Some(root.to_path_buf()),
        project: Some(project),
        ..Provenance::default()
    };
    let mcp = config.map(|c| Arc::new(mcp::parse(&c, &loaded.bytes)));
    Blob {
        bytes: loaded.bytes,
        provenance,
        mcp,
    }
}

fn mtime(meta: &Metadata) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec().clamp(0, 999_999_999) as u32)
}

fn special_file(file_type: FileType) -> Option<&'static str> {
    if file_type.is_fifo() {
        Some("not a regular file (FIFO), not opened")
    } else if file_type.is_socket() {
        Some("not a regular file (socket), not opened")
    } else if file_type.is_block_device() || file_type.is_char_device() {
        Some("not a regular file (device), not opened")
    } else {
        None
    }
}

fn symlink_reason(path: &Path, err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::NotFound {
        match std::fs::read_link(path) {
            Ok(target) => format!("dangling symlink (to {})", target.display()),
            Err(_) => "dangling symlink".to_string(),
        }
    } else {
        format!("symlink target: {}", io_reason(err))
    }
}

/// An I/O error as a short reason, without the "(os error N)" tail.
pub fn io_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// The path and reason inside an `ignore` walk error.
fn walk_error(err: &ignore::Error) -> (Option<PathBuf>, String) {
    match err {
        ignore::Error::WithPath { path, err } => (Some(path.clone()), walk_error(err).1),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error(err)
        }
        ignore::Error::Loop { child, .. } => (Some(child.clone()), "symlink loop".to_string()),
        ignore::Error::Io(e) => (None, io_reason(e)),
        other => (None, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::{ffi::CString, os::unix::fs::PermissionsExt, sync::Mutex};

    use super::*;

    #[derive(Default)]
    struct Collect {
        blobs: Mutex<Vec<Blob>>,
        skipped: Mutex<Vec<(PathBuf, SkipReason)>>,
        errors: Mutex<Vec<(PathBuf, String)>>,
    }

    impl Sink for Collect {
        fn blob(&self, blob: Blob) {
            self.blobs.lock().unwrap().push(blob);
        }
        fn skipped(&self, path: &Path, reason: SkipReason) {
            self.skipped.lock().unwrap().push((path.into(), reason));
        }
        fn error(&self, path: &Path, reason: &str) {
            self.errors
                .lock()
                .unwrap()
                .push((path.into(), reason.into()));
        }
    }

    fn names(blobs: &[Blob], root: &Path) -> Vec<String> {
        let mut names: Vec<String> = blobs
            .iter()
            .map(|b| {
                b.provenance
                    .path
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn walks_everything_but_git_internals_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join(".git/config"), "x").unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("ignored.txt"), "still scanned").unwrap();
        std::fs::create_dir(root.join(".hidden")).unwrap();
        std::fs::write(root.join(".hidden/.env"), "A=1").unwrap();
        std::fs::write(root.join("big.txt"), vec![b'a'; 2048]).unwrap();
        std::fs::write(root.join("bin.dat"), b"ab\0cd").unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        std::os::unix::fs::symlink(root.join(".hidden"), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(root.join("ignored.txt"), root.join("filelink")).unwrap();
        let fifo = root.join("pipe");
        let c = CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);

        let sink = Collect::default();
        scan_dir(
            root,
            &SourceOptions {
                max_file_size: 1024,
                max_blob_size: 1024,
            },
            &sink,
        )
        .unwrap();

        let blobs = sink.blobs.into_inner().unwrap();
        assert_eq!(
            names(&blobs, root),
            [".gitignore", ".hidden/.env", "filelink", "ignored.txt"]
        );
        let mut skipped = sink.skipped.into_inner().unwrap();
        skipped.sort();
        assert_eq!(
            skipped,
            [
                (root.join("big.txt"), SkipReason::TooLarge),
                (root.join("bin.dat"), SkipReason::Binary),
                (root.join("dirlink"), SkipReason::SymlinkToDirectory),
            ]
        );
        let mut errors = sink.errors.into_inner().unwrap();
        errors.sort();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, root.join("dangling"));
        assert!(errors[0].1.starts_with("dangling symlink"));
        assert_eq!(errors[1].0, fifo);
        assert!(errors[1].1.contains("FIFO"));

        let env = blobs
            .iter()
            .find(|b| b.provenance.path.ends_with(".env"))
            .unwrap();
        assert_eq!(env.provenance.kind, LocationKind::File);
        assert!(env.provenance.current);
        assert!(env.provenance.mtime.is_some());
        assert_eq!(
            env.provenance.project.as_deref(),
            Some(root.to_str().unwrap())
        );
    }

    #[test]
    fn file_target_failures_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        let options = SourceOptions {
            max_file_size: 1024,
            max_blob_size: 1024,
        };
        let missing = dir.path().join("missing.json");
        let err = scan_file(&missing, &options, &sink).unwrap_err();
        assert_eq!(err.path, missing);
        assert_eq!(err.reason, "no such file or directory");
        let err = scan_file(dir.path(), &options, &sink).unwrap_err();
        assert!(err.reason.contains("dir:"));

        let file = dir.path().join("app.conf");
        std::fs::write(&file, "TOKEN=1").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        scan_file(&file, &options, &sink).unwrap();
        let blobs = sink.blobs.into_inner().unwrap();
        assert_eq!(blobs.len(), 1);
        assert_eq!(blobs[0].provenance.mode, Some(0o644));
        assert_eq!(blobs[0].bytes, b"TOKEN=1");
    }
}
