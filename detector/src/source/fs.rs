//! `dir:` and `file:` targets: files on disk, read without ever blocking, archives opened,
//! backups and credential files recognised.
//!
//! Every object is checked with `symlink_metadata` before it is opened, FIFOs, sockets and
//! devices are never opened (they are not scanned, as [`SkipReason::SpecialFile`]s, which the
//! target lists in its errors too), and regular files are opened with `O_NONBLOCK` and checked
//! again with `fstat`, so a file swapped for a FIFO between the two checks cannot hang the
//! scan.
//! A file's first bytes say whether it is an archive (then [`super::archive`] reads it,
//! whatever its size) or binary (skipped).
use std::{
    collections::HashMap,
    fs::{File, FileType, Metadata},
    io::{self, Read, Seek},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use chrono::{DateTime, Utc};
use ignore::{WalkBuilder, WalkState};

use super::{
    archive::{self, ArchiveOptions, ArchivePlace, Format},
    backup::{self, Backup, BackupKind},
    exclude::Exclusions,
    managed_store, secret_file, Blob, Container, DiskFile, Origin, Provenance, Sink, Skip,
    SkipReason, SourceError, SourceOptions,
};
use crate::{
    mcp::{self, ConfigRef},
    platform,
};

/// How many leading bytes decide whether a file is binary (a NUL byte among them).
const BINARY_PROBE: usize = 8 * 1024;

/// Up to this size a file is read whole in one go (its probe is the whole file).
const SMALL_FILE: u64 = 256 * 1024;

pub use super::exclude::IGNORE_FILE;

/// Walk `root`: every file, hidden ones included, `.gitignore` honoured only when asked,
/// `--exclude` globs and `.detectorignore` files honoured, archives opened. A git
/// repository's internals are not read (history is the git source's job): the repository is
/// reported, and only its `config` (remote URLs may carry credentials) is scanned. Symlinks
/// to files are read, symlinks to directories are not followed.
pub fn scan_dir(root: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let meta = std::fs::metadata(root).map_err(|e| SourceError::new(root, io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(SourceError::new(root, "not a directory (use file:PATH)"));
    }
    std::fs::read_dir(root).map_err(|e| SourceError::new(root, io_reason(&e)))?;

    // Exclusions are decided here, not by the walker, so that each is reported (a directory
    // once) and the ignore files are read through the file gate.
    let exclusions = Exclusions::new(root, &options.excludes, options.respect_gitignore)?;
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
        .threads(rayon::current_num_threads().max(1))
        .build_parallel();
    walker.run(|| {
        Box::new(|entry| {
            match entry {
                // The root itself (maybe a symlink to the directory, checked above).
                Ok(entry) if entry.depth() == 0 => {}
                Ok(entry) => {
                    let Some(file_type) = entry.file_type() else {
                        return WalkState::Continue;
                    };
                    if let Some(why) = exclusions.excluded(entry.path(), file_type.is_dir(), sink) {
                        let why = why.to_string();
                        sink.not_scanned(Skip {
                            detail: Some(&why),
                            ..Skip::new(entry.path(), SkipReason::Excluded)
                        });
                        return WalkState::Skip;
                    }
                    if file_type.is_dir() {
                        if let Some(repository) = repository(entry.path()) {
                            sink.repository(&repository);
                            let config = entry.path().join("config");
                            if config.is_file() {
                                visit(&config, root, options, sink);
                            }
                            return WalkState::Skip;
                        }
                    } else if file_type.is_file() {
                        // The directory listing says it is a regular file: no need to ask
                        // again before opening it (see `open_listed_file`).
                        let read = open_listed_file(
                            entry.path(),
                            options.max_file_size,
                            options.archive.max_depth > 0,
                        );
                        handle(entry.path(), read, root, options, sink, Follow::OutsideRoot);
                    } else {
                        visit(entry.path(), root, options, sink);
                    }
                }
                Err(err) => {
                    let (path, reason) = walk_error(&err);
                    sink.error(path.as_deref().unwrap_or(root), &reason);
                }
            }
            WalkState::Continue
        })
    });
    Ok(())
}

/// The repository a directory met in a walk holds: `.git` (a work tree's, reported as the
/// work tree) or a bare repository (`*.git` with `HEAD`, `objects/` and `refs/`).
fn repository(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    if name == ".git" {
        return Some(dir.parent().unwrap_or(dir).to_path_buf());
    }
    let bare = name.ends_with(".git")
        && dir.join("HEAD").is_file()
        && dir.join("objects").is_dir()
        && dir.join("refs").is_dir();
    bare.then(|| dir.to_path_buf())
}

/// One file: a text file, an archive, or a credential file. Anything but a readable regular
/// file (or a symlink to one) fails the target.
pub fn scan_file(path: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match open_path(path, options.max_file_size, options.archive.max_depth > 0) {
        FileRead::Skipped(SkipReason::SymlinkToDirectory) | FileRead::Directory => {
            Err(SourceError::new(path, "is a directory (use dir:PATH)"))
        }
        FileRead::Failed(reason) => Err(SourceError::new(path, reason)),
        FileRead::Special(what) => Err(SourceError::new(path, what)),
        read => {
            handle(path, read, parent, options, sink, Follow::All);
            Ok(())
        }
    }
}

fn visit(path: &Path, root: &Path, options: &SourceOptions, sink: &dyn Sink) {
    let read = open_path(path, options.max_file_size, options.archive.max_depth > 0);
    handle(path, read, root, options, sink, Follow::OutsideRoot);
}

/// Which of the files a Compose file names (`env_file:`, `secrets: file:`) to read with it:
/// they hold what its services are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// A file named on its own (`file:compose.yaml`): all of them.
    All,
    /// A file met in a walk: those outside the walked directory (the walk reads the others).
    OutsideRoot,
    /// A file read because another named it: none (no chains, no loops).
    None,
}

fn handle(
    path: &Path,
    read: FileRead,
    root: &Path,
    options: &SourceOptions,
    sink: &dyn Sink,
    follow: Follow,
) {
    match read {
        FileRead::Loaded(loaded) => {
            let blob = recognise(disk_blob(path, loaded, root), path, false);
            let named: Vec<PathBuf> = match (&blob.fields, follow) {
                (_, Follow::None) | (None, _) => Vec::new(),
                (Some(file), _) => file
                    .workloads
                    .iter()
                    .flat_map(|w| w.files.iter().map(|(file, _)| file.clone()))
                    .filter(|file| follow == Follow::All || !file.starts_with(root))
                    .collect(),
            };
            sink.blob(blob);
            for file in named {
                // A missing `env_file` is Compose's matter (`required: false`); one that is
                // there is read like any file.
                if file.is_file() {
                    let read = open_path(&file, options.max_file_size, false);
                    handle(&file, read, root, options, sink, Follow::None);
                }
            }
        }
        FileRead::Archive(file, format, meta) => {
            let place = ArchivePlace {
                archive: path.to_path_buf(),
                container: Container::File(disk_file(&meta)),
                project: root.display().to_string(),
                root: root.to_path_buf(),
            };
            let archive_options = ArchiveOptions {
                limits: options.archive,
                max_member_size: options.max_file_size,
            };
            archive::scan_file(file, format, &place, &archive_options, sink);
        }
        FileRead::Skipped(reason) => sink.skipped(path, reason),
        FileRead::Special(what) => special(sink, path, what),
        FileRead::Failed(reason) => sink.error(path, &reason),
        FileRead::Directory => {}
    }
}

/// A FIFO, socket or device met at `path`: not scanned, never opened (`what` says which).
pub fn special(sink: &dyn Sink, path: &Path, what: &str) {
    sink.not_scanned(Skip {
        detail: Some(what),
        ..Skip::new(path, SkipReason::SpecialFile)
    });
}

/// Read the file at `path` if it is a regular file or a symlink to one. The type is checked
/// with `symlink_metadata` (and `metadata` for a symlink's target) before anything is opened.
/// Archives are read as bytes like any binary file (skipped): see [`open_path`].
pub fn read_path(path: &Path, max_size: u64) -> FileRead {
    open_path(path, max_size, false)
}

/// How large a file the user names (a baseline, a saved report, a rule file, a policy) may be.
pub const MAX_NAMED_FILE: u64 = 256 << 20;

/// A file the user names on the command line (a baseline, a saved report, a rule file, a
/// policy), read through the gate scanned files go through: such a file may come from a
/// repository under scan, and a FIFO, socket or device there (or a symlink to one, such as
/// `/dev/zero`, which git can hold) is refused instead of read forever, as is a file over
/// [`MAX_NAMED_FILE`]. Errors say why, for the caller to name the file.
pub fn read_named_file(path: &Path) -> io::Result<Vec<u8>> {
    match read_path(path, MAX_NAMED_FILE) {
        FileRead::Loaded(file) => Ok(file.bytes),
        FileRead::Skipped(SkipReason::TooLarge) => Err(io::Error::other(format!(
            "larger than {} MiB",
            MAX_NAMED_FILE >> 20
        ))),
        FileRead::Skipped(reason) => Err(io::Error::other(reason.as_str())),
        FileRead::Special(what) => Err(io::Error::other(what)),
        FileRead::Failed(reason) => Err(io::Error::other(reason)),
        FileRead::Directory => Err(io::Error::other("a directory, not a file")),
        FileRead::Archive(..) => Err(io::Error::other("an archive, not a file of this kind")),
    }
}

/// [`read_named_file`] as UTF-8 text (a rule file, a policy).
pub fn read_named_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_named_file(path)?).map_err(io::Error::other)
}

/// Like [`read_path`], but an archive (told by its first bytes, whatever its size) is
/// returned open, for [`super::archive`] to read, when `archives` is set.
pub fn open_path(path: &Path, max_size: u64, archives: bool) -> FileRead {
    match check_type(path) {
        Some(refused) => refused,
        None => read_file(path, max_size, archives),
    }
}

/// [`open_path`] for a path a directory listing gave as a regular file: opened without
/// following a symlink, so that a symlink swapped in since the listing goes through the
/// whole gate, and a FIFO or device swapped in is refused by the descriptor's own type
/// (`O_NONBLOCK`: never waited on).
pub fn open_listed_file(path: &Path, max_size: u64, archives: bool) -> FileRead {
    match platform::open_for_reading(path, false) {
        Ok(file) => read_open_file(file, path, max_size, archives),
        Err(e) if platform::is_symlink_loop(&e) => open_path(path, max_size, archives),
        Err(e) => FileRead::Failed(io_reason(&e)),
    }
}

/// The first half of the gate, which opens nothing: `None` when `path` is a regular file or
/// a symlink to one (what [`open_path`] goes on to open), else what `open_path` returns for
/// it: a FIFO, socket or device is [`FileRead::Special`], a dangling link or symlink loop
/// fails with its reason, a directory (or a symlink to one) is no file.
pub fn check_type(path: &Path) -> Option<FileRead> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Some(FileRead::Failed(io_reason(&e))),
    };
    let file_type = if link.file_type().is_symlink() {
        match std::fs::metadata(path) {
            Ok(target) if target.is_dir() => {
                return Some(FileRead::Skipped(SkipReason::SymlinkToDirectory))
            }
            Ok(target) => target.file_type(),
            Err(e) => return Some(FileRead::Failed(symlink_reason(path, &e))),
        }
    } else {
        link.file_type()
    };
    if file_type.is_dir() {
        return Some(FileRead::Directory);
    }
    special_file(file_type).map(FileRead::Special)
}

/// The reason a source lists a file the gate refused as larger than `max_size` (a sparse
/// file too: its length is what counts, never its blocks on disk).
pub fn too_large_reason(path: &Path, max_size: u64) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!(
            "too large ({} bytes, over --max-file-size {max_size}), not read",
            meta.len()
        ),
        Err(_) => format!("too large (over --max-file-size {max_size}), not read"),
    }
}

/// A system database (`/etc/passwd`, `/etc/group`, `/etc/login.defs`) as text, read through
/// the gate like any file; empty when the gate refuses it or it cannot be read.
pub fn read_system_file(path: &Path) -> String {
    match read_path(path, super::DEFAULT_MAX_FILE_SIZE) {
        FileRead::Loaded(loaded) => String::from_utf8_lossy(&loaded.bytes).into_owned(),
        _ => String::new(),
    }
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
    /// An archive, open at its start.
    Archive(File, Format, Metadata),
    Skipped(SkipReason),
    /// A FIFO, socket or device (or a symlink to one), never opened: which, as the detail of
    /// a [`SkipReason::SpecialFile`] (see [`special`]).
    Special(&'static str),
    Failed(String),
    /// A directory where a file was expected.
    Directory,
}

/// Open `path` for reading without ever waiting: `O_NONBLOCK`, so a FIFO (or a file swapped
/// for one) opens at once instead of blocking until a writer comes, and no terminal becomes
/// ours. What is opened is not checked: the caller checks the descriptor's type (`fstat`)
/// before reading, as [`read_file`] does. For every open of a scanned path that does not go
/// through [`open_path`] (image archives and layouts).
pub fn open_file(path: &Path) -> io::Result<File> {
    platform::open_for_reading(path, true)
}

/// Open and read a file whose type was checked by [`open_path`]. The descriptor's own type
/// is checked again, and `O_NONBLOCK` makes even a swapped-in FIFO return at once.
fn read_file(path: &Path, max_size: u64, archives: bool) -> FileRead {
    match open_file(path) {
        Ok(file) => read_open_file(file, path, max_size, archives),
        Err(e) => FileRead::Failed(io_reason(&e)),
    }
}

/// Read a file opened without waiting, after checking the descriptor's own type.
fn read_open_file(file: File, path: &Path, max_size: u64, archives: bool) -> FileRead {
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return FileRead::Failed(io_reason(&e)),
    };
    if !meta.is_file() {
        // Swapped in after the type was checked; O_NONBLOCK opened it without waiting.
        return match special_file(meta.file_type()) {
            Some(what) => FileRead::Special(what),
            None => FileRead::Failed("not a regular file".to_string()),
        };
    }
    if !archives && meta.len() > max_size {
        return FileRead::Skipped(SkipReason::TooLarge);
    }
    let mut file = file;
    let capacity = meta.len().min(max_size).saturating_add(1);
    // A small file is read whole at once, as long as `fstat` says it is (one `read`); a larger
    // one (or one whose size says nothing, as in `/proc`) first up to the binary probe.
    let whole = meta.len() > 0 && meta.len() <= SMALL_FILE;
    let first = if whole {
        meta.len()
    } else {
        BINARY_PROBE as u64
    };
    let mut bytes = Vec::with_capacity(
        usize::try_from(capacity)
            .unwrap_or(0)
            .min(first.max(BINARY_PROBE as u64) as usize),
    );
    if let Err(e) = (&mut file).take(first).read_to_end(&mut bytes) {
        return FileRead::Failed(io_reason(&e));
    }
    if archives {
        if let Some(format) = archive::sniff(&bytes) {
            return match file.rewind() {
                Ok(()) => FileRead::Archive(file, format, meta),
                Err(e) => FileRead::Failed(io_reason(&e)),
            };
        }
        if meta.len() > max_size {
            return FileRead::Skipped(SkipReason::TooLarge);
        }
    }
    let swap = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(archive::is_swap_file);
    if is_binary(&bytes) && !swap {
        return FileRead::Skipped(SkipReason::Binary);
    }
    if whole && bytes.len() as u64 == meta.len() {
        return FileRead::Loaded(LoadedFile { bytes, meta });
    }
    bytes.reserve(
        usize::try_from(capacity)
            .unwrap_or(0)
            .saturating_sub(bytes.len()),
    );
    if let Err(e) = file
        .take(
            max_size
                .saturating_add(1)
                .saturating_sub(bytes.len() as u64),
        )
        .read_to_end(&mut bytes)
    {
        return FileRead::Failed(io_reason(&e));
    }
    if bytes.len() as u64 > max_size {
        // It grew between fstat and read.
        return FileRead::Skipped(SkipReason::TooLarge);
    }
    FileRead::Loaded(LoadedFile { bytes, meta })
}

/// A NUL byte near the start: how git and ripgrep tell binary from text.
pub fn is_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_PROBE)]).is_some()
}

/// The blob of a file on disk. `root` is the scanned directory (the project when nothing
/// more precise is known); `config` is set when the file is an MCP client config, which is
/// then parsed too.
pub fn file_blob(path: &Path, loaded: LoadedFile, root: &Path, config: Option<ConfigRef>) -> Blob {
    let mut blob = disk_blob(path, loaded, root);
    let Some(config) = config else {
        return recognise(blob, path, false);
    };
    if let Origin::File(file) = blob.provenance.origin {
        blob.provenance.origin = Origin::McpConfig(file);
    }
    blob.project = config.scope.label();
    blob.mcp = Some(Arc::new(mcp::parse(&config, &blob.bytes)));
    blob
}

/// A file on disk as its metadata describes it.
fn disk_file(meta: &Metadata) -> DiskFile {
    DiskFile {
        mtime: mtime(meta),
        mode: platform::mode(meta).map(|mode| mode & 0o7777),
        readable_by_others: readable_by_others(meta),
        dev: platform::file_id(meta).map(|(dev, _)| dev),
        inode: platform::file_id(meta).map(|(_, inode)| inode),
    }
}

/// The blob of a file read from disk, before it is recognised.
fn disk_blob(path: &Path, loaded: LoadedFile, root: &Path) -> Blob {
    Blob {
        bytes: loaded.bytes,
        provenance: Provenance {
            path: path.to_path_buf(),
            origin: Origin::File(disk_file(&loaded.meta)),
            backup: None,
        },
        project: root.display().to_string(),
        root: root.to_path_buf(),
        mcp: None,
        fields: None,
    }
}

/// Recognise a blob by its file's name (`name`: the path on disk, or the member's name
/// inside an archive): a backup (and of what), an MCP client config (parsed, as the original
/// of a backup), or a credential file (read field by field). `archived_copy`: a member of an
/// archive that copies files (a tarball, a zip; not a package such as a jar).
pub(crate) fn recognise(blob: Blob, name: &Path, archived_copy: bool) -> Blob {
    recognise_within(blob, name, archived_copy, None)
}

/// [`recognise`] for a file of a whole that is its project (an image): a project-scoped
/// config there belongs to `project`, not to the directory it sits in, and so do its keys.
pub(crate) fn recognise_within(
    mut blob: Blob,
    name: &Path,
    archived_copy: bool,
    project: Option<&str>,
) -> Blob {
    let backup = backup::recognise(name).or_else(|| archived_copy.then(|| archived(name)));
    let recognise_as = backup
        .as_ref()
        .and_then(Backup::recognition_path)
        .unwrap_or_else(|| name.to_path_buf());
    // A swap file holds the text in blocks, not the file's format.
    let structured = !name
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(archive::is_swap_file);
    let config = structured
        .then(|| {
            // Named by no client, holding a server map all the same: an unknown client's.
            let (mut config, named) = match mcp::recognise(&recognise_as) {
                Some(config) => (config, true),
                None => (
                    mcp::discover::recognise_content(&recognise_as, &blob.bytes)?,
                    false,
                ),
            };
            if let (mcp::ConfigScope::Project(_), Some(project)) = (&config.scope, project) {
                config.scope = mcp::ConfigScope::Project(PathBuf::from(project));
            }
            let parsed = mcp::parse(&config, &blob.bytes);
            (named || !parsed.servers.is_empty()).then_some((config, parsed))
        })
        .flatten();
    if let Some((config, mut parsed)) = config {
        // Parsed as the original; reported where it is.
        parsed.path = blob.provenance.path.clone();
        for server in &mut parsed.servers {
            server.config = blob.provenance.path.clone();
        }
        if let Origin::File(file) = blob.provenance.origin {
            blob.provenance.origin = Origin::McpConfig(file);
        }
        blob.project = project.map_or_else(|| config.scope.label(), str::to_string);
        blob.mcp = Some(Arc::new(parsed));
    } else if structured {
        blob.fields = secret_file::read(&recognise_as, &blob.bytes).map(Arc::new);
    }
    // detector's own store, where it sits: not a copy of it (a backup, an archive member, a
    // file in a layer or a commit), which is as exposed as any file.
    if let (Origin::File(file), None) = (&blob.provenance.origin, &backup) {
        if blob.mcp.is_none() && managed_store::is_managed_store(&blob.bytes) {
            blob.provenance.origin = Origin::ManagedStore(file.clone());
        }
    }
    blob.provenance.backup = backup;
    blob
}

/// An archive member: a copy. The original is where it came from when the member's name is
/// a home path (`home/al/.zshrc`, `.config/…` in a tarball of a home).
fn archived(name: &Path) -> Backup {
    let text = name.to_string_lossy();
    let original = if ["home/", "Users/", "root/"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        Some(PathBuf::from(format!("/{text}")))
    } else if text.starts_with('.') && !text.starts_with("..") {
        Some(PathBuf::from("~").join(name))
    } else {
        None
    };
    Backup {
        kind: BackupKind::Archive,
        original,
        home: None,
    }
}

/// Can users other than the owner read the file: world-readable, or group-readable with
/// other users in the group? Unknown (`None`) where files have no mode.
fn readable_by_others(meta: &Metadata) -> Option<bool> {
    let mode = platform::mode(meta)?;
    let (uid, gid) = platform::owner(meta)?;
    Some(mode & 0o004 != 0 || (mode & 0o040 != 0 && group_has_others(gid, uid)))
}

/// Does group `gid` have a member other than `owner` (listed in `/etc/group`, or having it
/// as primary group in `/etc/passwd`)?
fn group_has_others(gid: u32, owner: u32) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<(u32, u32), bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(&known) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(gid, owner))
    {
        return known;
    }
    let passwd = read_system_file(Path::new("/etc/passwd"));
    let group = read_system_file(Path::new("/etc/group"));
    let answer = group_members(&passwd, &group, gid)
        .iter()
        .any(|&uid| uid != owner);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((gid, owner), answer);
    answer
}

/// The uids in group `gid`: its listed members and the users whose primary group it is.
fn group_members(passwd: &str, group: &str, gid: u32) -> Vec<u32> {
    let users: Vec<(&str, u32, u32)> = passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some((
                *f.first()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect();
    let mut members: Vec<u32> = users
        .iter()
        .filter(|(_, _, g)| *g == gid)
        .map(|(_, uid, _)| *uid)
        .collect();
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(gid) {
            continue;
        }
        for name in f.get(3).unwrap_or(&"").split(',').filter(|n| !n.is_empty()) {
            if let Some((_, uid, _)) = users.iter().find(|(n, _, _)| n == &name) {
                members.push(*uid);
            }
        }
    }
    members
}

fn mtime(meta: &Metadata) -> Option<DateTime<Utc>> {
    platform::mtime(meta)
}

fn special_file(file_type: FileType) -> Option<&'static str> {
    Some(match platform::special_kind(file_type)? {
        "FIFO" => "not a regular file (FIFO), not opened",
        "socket" => "not a regular file (socket), not opened",
        _ => "not a regular file (device), not opened",
    })
}

fn symlink_reason(path: &Path, err: &io::Error) -> String {
    if platform::is_symlink_loop(err) {
        return match std::fs::read_link(path) {
            Ok(target) => format!("symlink loop (through {})", target.display()),
            Err(_) => "symlink loop".to_string(),
        };
    }
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
    use std::{ffi::CString, os::unix::fs::PermissionsExt};

    use super::*;

    use crate::source::{test_sink::Collect, LocationKind};

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
        std::fs::write(root.join(".git/objects/ab"), "x").unwrap();
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
                ..SourceOptions::default()
            },
            &sink,
        )
        .unwrap();

        let blobs = std::mem::take(&mut *sink.blobs.lock().unwrap());
        assert_eq!(
            names(&blobs, root),
            [
                ".git/config",
                ".gitignore",
                ".hidden/.env",
                "filelink",
                "ignored.txt"
            ]
        );
        assert_eq!(*sink.repositories.lock().unwrap(), [root.to_path_buf()]);
        let mut skipped = sink.skipped.into_inner().unwrap();
        skipped.sort();
        assert_eq!(
            skipped,
            [
                (root.join("big.txt"), SkipReason::TooLarge),
                (root.join("bin.dat"), SkipReason::Binary),
                (root.join("dirlink"), SkipReason::SymlinkToDirectory),
                (fifo.clone(), SkipReason::SpecialFile),
            ]
        );
        let mut errors = sink.errors.into_inner().unwrap();
        errors.sort();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, root.join("dangling"));
        assert!(errors[0].1.starts_with("dangling symlink"));

        let env = blobs
            .iter()
            .find(|b| b.provenance.path.ends_with(".env"))
            .unwrap();
        assert_eq!(env.provenance.origin.kind(), LocationKind::File);
        assert!(env.provenance.origin.is_current());
        assert!(env.provenance.origin.time().is_some());
        assert_eq!(env.project, root.to_str().unwrap());
    }

    #[test]
    fn excludes_and_ignore_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            (".gitignore", "git-ignored.txt\n"),
            ("git-ignored.txt", "x"),
            ("node_modules/pkg/index.js", "x"),
            ("app/.detectorignore", "local.txt\n"),
            ("app/local.txt", "x"),
            ("app/kept.txt", "x"),
            ("local.txt", "x"),
            ("debug.log", "x"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let scan = |options: SourceOptions| {
            let sink = Collect::default();
            scan_dir(root, &options, &sink).unwrap();
            names(&sink.blobs.into_inner().unwrap(), root)
        };
        assert_eq!(
            scan(SourceOptions {
                excludes: vec!["node_modules".into(), "*.log".into()],
                ..SourceOptions::default()
            }),
            [
                ".gitignore",
                "app/.detectorignore",
                "app/kept.txt",
                "git-ignored.txt",
                "local.txt"
            ]
        );
        assert_eq!(
            scan(SourceOptions {
                respect_gitignore: true,
                ..SourceOptions::default()
            }),
            [
                ".gitignore",
                "app/.detectorignore",
                "app/kept.txt",
                "debug.log",
                "local.txt",
                "node_modules/pkg/index.js"
            ]
        );
    }

    #[test]
    fn group_members_come_from_group_and_passwd() {
        let passwd = "root:x:0:0::/root:/bin/sh\nal:x:1000:1000::/home/al:/bin/sh\nbo:x:1001:1000::/home/bo:/bin/sh\ncy:x:1002:1002::/home/cy:/bin/sh\n";
        let group = "al:x:1000:\ncy:x:1002:\ndev:x:2000:al,cy\n";
        assert_eq!(group_members(passwd, group, 1000), [1000, 1001]);
        assert_eq!(group_members(passwd, group, 1002), [1002]);
        assert_eq!(group_members(passwd, group, 2000), [1000, 1002]);
    }

    #[test]
    fn file_target_failures_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Collect::default();
        let options = SourceOptions {
            max_file_size: 1024,
            max_blob_size: 1024,
            ..SourceOptions::default()
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
        assert_eq!(
            blobs[0].provenance.origin.disk_file().unwrap().mode,
            Some(0o644)
        );
        assert_eq!(blobs[0].bytes, b"TOKEN=1");
    }
}
