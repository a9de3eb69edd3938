//! The live watch set: which files are watched and what they hold, kept current as files
//! change on disk. The directories of watched files (and, under a policy, of every file the
//! policy could name) are watched with inotify: an editor's rename-over save re-arms
//! the new inode at once, a file created later that the policy names is added, a deleted one
//! is dropped, and a changed file is re-scanned so that a plaintext key written into it is
//! reported (`config-change`) within moments of the write.
//!
//! Directories are asked only for their own changes (entries created, deleted, moved), and
//! each watched file for writes to it. No event a child of a directory could raise is asked
//! of the directory: then the kernel marks no child as having a watched parent, and opening
//! any other file in a watched directory (a home holds many) costs nothing extra.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{
    kernel::KernelError,
    policy::{Policy, Reader, Verdict},
    rescan::{server_matches, Contents, Rescanner},
    watch::{Added, KernelWatch, WatchSet, Watched},
};
use crate::{
    event::{self, ConfigChange, NotWatched},
    mcp::{self, Home, McpServer},
};

/// Why the live watch set cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start inotify: {0}")]
    Inotify(io::Error),
    #[error("cannot start the inotify reader: {0}")]
    InotifyReader(io::Error),
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

pub struct LiveFiles {
    policy: Policy,
    homes: Vec<Home>,
    /// `--home`: these homes only, not every home on the host.
    fixed_homes: bool,
    /// `--watch`: exactly these paths (re-armed when replaced); otherwise the policy's files.
    explicit: Option<BTreeSet<PathBuf>>,
    watch: WatchSet,
    kernel: KernelWatch,
    rescanner: Rescanner,
    contents: HashMap<PathBuf, Contents>,
    servers: Vec<McpServer>,
    inotify: InotifyWatch,
}

/// Paths that changed on disk, as inotify reported them.
pub type Changes = UnboundedReceiver<Vec<PathBuf>>;

impl LiveFiles {
    /// Builds the watch set, fills the kernel maps, and takes every file's baseline.
    pub fn start(
        policy: Policy,
        homes: Option<Vec<Home>>,
        explicit: &[PathBuf],
        kernel: KernelWatch,
        rescanner: Rescanner,
    ) -> Result<(LiveFiles, Changes, Vec<NotWatched>), WatchError> {
        let (inotify, changes) = InotifyWatch::start()?;
        let mut live = LiveFiles {
            policy,
            fixed_homes: homes.is_some(),
            homes: homes.unwrap_or_else(mcp::homes),
            explicit: (!explicit.is_empty()).then(|| explicit.iter().cloned().collect()),
            watch: WatchSet::default(),
            kernel,
            rescanner,
            contents: HashMap::new(),
            servers: Vec::new(),
            inotify,
        };
        let mut not_watched = Vec::new();
        for (path, group) in live.desired() {
            match live.watch.add(&path, group, mcp_client(&path)) {
                Ok(Added::New { key, .. }) => {
                    live.kernel.insert(key)?;
                    live.inotify.add_file(&path);
                }
                Ok(Added::Unchanged) => {}
                Err(why) => not_watched.push(why),
            }
            if live.watch.contains_path(&path) {
                let contents = live.rescanner.scan(&path);
                live.remember(path, contents);
            }
        }
        live.refresh_servers();
        live.watch_directories();
        Ok((live, changes, not_watched))
    }

    /// What should be watched now: path → policy group.
    fn desired(&self) -> BTreeMap<PathBuf, Option<usize>> {
        match &self.explicit {
            Some(paths) => paths
                .iter()
                .map(|p| (p.clone(), self.policy.group_for_path(p, &self.homes)))
                .collect(),
            None => self
                .policy
                .files(&self.homes)
                .into_iter()
                .map(|(p, g)| (p, Some(g)))
                .collect(),
        }
    }

    fn watch_directories(&mut self) {
        let mut dirs: BTreeSet<PathBuf> = self
            .watch
            .paths()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        if let Some(paths) = &self.explicit {
            dirs.extend(
                paths
                    .iter()
                    .filter_map(|p| p.parent().map(Path::to_path_buf)),
            );
        } else {
            dirs.extend(self.policy.directories(&self.homes));
            // New homes appear in the directories that hold homes.
            dirs.extend(
                self.homes
                    .iter()
                    .filter_map(|h| h.dir.parent().map(Path::to_path_buf)),
            );
        }
        for dir in dirs {
            if !self.inotify.contains_dir(&dir) && dir.is_dir() {
                self.inotify.add_dir(dir);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.watch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watch.is_empty()
    }

    pub fn watched(&self, key: &detector_common::FileKey) -> Option<&Watched> {
        self.watch.get(key)
    }

    pub fn describe(&self) -> Vec<crate::event::WatchedFile> {
        self.watch.describe()
    }

    /// The kernel map holds this identity too (the canary, a pinned `environ`).
    pub fn insert_kernel_key(&mut self, key: detector_common::FileKey) -> Result<(), KernelError> {
        self.kernel.insert(key)
    }

    /// Drops an identity given with [`LiveFiles::insert_kernel_key`]; `keep` are the other
    /// such identities, whose inode bits must stay.
    pub fn remove_kernel_key(
        &mut self,
        key: detector_common::FileKey,
        keep: &[detector_common::FileKey],
    ) -> Result<(), KernelError> {
        let remaining: Vec<detector_common::FileKey> =
            self.watch.keys().chain(keep).copied().collect();
        self.kernel.remove(key, remaining.iter())
    }

    /// Says that a watched path is a container's file seen through its root.
    pub fn set_in_container(&mut self, path: &Path, inside: super::watch::InContainer) {
        self.watch.set_in_container(path, inside);
    }

    /// Stops watching these paths (a watched container stopped); `keep` as for
    /// [`LiveFiles::remove_kernel_key`].
    pub fn unwatch(
        &mut self,
        paths: &[PathBuf],
        keep: &[detector_common::FileKey],
    ) -> Result<(), KernelError> {
        for path in paths {
            if let Some(explicit) = &mut self.explicit {
                explicit.remove(path);
            }
            self.contents.remove(path);
            if let Some(key) = self.watch.remove(path) {
                self.remove_kernel_key(key, keep)?;
            }
            self.inotify.remove_file(path);
        }
        Ok(())
    }

    /// The MCP servers of the watched configs.
    pub fn servers(&self) -> &[McpServer] {
        &self.servers
    }

    /// Acts on paths that changed; returns the records to write.
    pub fn changed(&mut self, paths: BTreeSet<PathBuf>) -> Result<Vec<ConfigChange>, KernelError> {
        let new_directory = paths
            .iter()
            .any(|p| p.is_dir() && !self.inotify.contains_dir(p));
        let mut records = Vec::new();
        if new_directory && self.explicit.is_none() {
            // A new home or config directory: everything the policy names is looked for again.
            if !self.fixed_homes {
                self.homes = mcp::homes();
            }
            for (path, _) in self.desired() {
                if !self.watch.contains_path(&path) {
                    records.extend(self.reconcile(&path)?);
                }
            }
        }
        for path in paths.iter().filter(|p| !p.is_dir()) {
            records.extend(self.reconcile(path)?);
        }
        self.watch_directories();
        Ok(records)
    }

    /// Brings one path in step: watched with its current identity (or dropped), and its keys
    /// compared with what it held before.
    fn reconcile(&mut self, path: &Path) -> Result<Option<ConfigChange>, KernelError> {
        let wanted = match &self.explicit {
            Some(paths) => paths.contains(path),
            None => {
                self.watch.contains_path(path)
                    || self.policy.group_for_path(path, &self.homes).is_some()
            }
        };
        if !wanted {
            return Ok(None);
        }
        let group = self.policy.group_for_path(path, &self.homes);
        let client = mcp_client(path);
        // Read before the file's identity is taken, so that what is reported is never newer
        // than what is watched: a file replaced in between leaves an event that brings the
        // path in step again.
        let scanned = self.rescanner.scan(path);
        let exists = match self.watch.add(path, group, client.clone()) {
            Ok(Added::New { key, replaced }) => {
                if let Some(old) = replaced {
                    self.kernel.remove(old, self.watch.keys())?;
                }
                self.kernel.insert(key)?;
                // The new inode's writes; the old inode's watch ends when it is freed.
                self.inotify.add_file(path);
                tracing::info!("watching {} (inode {})", path.display(), key.ino);
                true
            }
            Ok(Added::Unchanged) => true,
            Err(_) => {
                if let Some(old) = self.watch.remove(path) {
                    self.kernel.remove(old, self.watch.keys())?;
                    self.inotify.remove_file(path);
                    tracing::info!("no longer watching {}", path.display());
                }
                false
            }
        };
        let now = if exists { scanned } else { Contents::default() };
        let before = self.contents.remove(path).unwrap_or_default();
        if exists {
            self.remember(path.to_path_buf(), now.clone());
        }
        if !before.servers.is_empty() || !now.servers.is_empty() {
            self.refresh_servers();
        }
        let added: Vec<String> = now
            .fingerprints
            .difference(&before.fingerprints)
            .cloned()
            .collect();
        let removed: Vec<String> = before
            .fingerprints
            .difference(&now.fingerprints)
            .cloned()
            .collect();
        if added.is_empty() && removed.is_empty() && (now.error.is_none() || !exists) {
            return Ok(None);
        }
        Ok(Some(ConfigChange {
            file: path.display().to_string(),
            verdict: event::Verdict::allowed(added.is_empty()),
            added,
            removed,
            policy_rule: group.map(|g| self.policy.group(g).name.clone()),
            mcp_client: client,
            deleted: !exists,
            error: now.error,
        }))
    }

    /// Keeps what a file holds; most watched files hold no key and no server, and cost nothing.
    fn remember(&mut self, path: PathBuf, contents: Contents) {
        if !contents.fingerprints.is_empty() || !contents.servers.is_empty() {
            self.contents.insert(path, contents);
        }
    }

    fn refresh_servers(&mut self) {
        self.servers = self
            .contents
            .values()
            .flat_map(|c| c.servers.iter().cloned())
            .collect();
    }

    /// Frees what only re-scans need (the agent calls this when it has been quiet).
    pub fn release_idle_memory(&self) {
        self.rescanner.release();
    }

    /// A command line fit for the log (secrets redacted).
    pub fn scrub(&self, cmdline: &[String]) -> Vec<String> {
        self.rescanner.scrub(cmdline)
    }

    /// The policy's verdict on a reader of an MCP server's environment.
    pub fn environ_verdict(&self, reader: &Reader) -> Verdict {
        self.policy.environ_verdict(reader)
    }

    /// The policy's verdict on a reader of a file of `group`.
    pub fn verdict(&self, group: Option<usize>, reader: &Reader) -> Verdict {
        self.policy.verdict(group, reader)
    }

    /// The configured MCP server that a process (or one of its ancestors, e.g. the `npx` that
    /// started it) is running, if any.
    pub fn server_of(&self, lineage: &[(String, Vec<String>)]) -> Option<&McpServer> {
        self.servers.iter().find(|server| {
            lineage
                .iter()
                .any(|(exe, cmdline)| server_matches(&server.argv, exe, cmdline))
        })
    }
}

/// A directory named with `--home`, as a home: its owner and its name.
pub fn home_at(dir: &Path) -> Home {
    use std::os::unix::fs::MetadataExt;
    Home {
        user: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        uid: std::fs::metadata(dir).map(|m| m.uid()).unwrap_or(0),
        dir: dir.to_path_buf(),
    }
}

fn mcp_client(path: &Path) -> Option<String> {
    mcp::recognise(path).map(|c| c.client.id.to_string())
}

/// What is watched with inotify (directories, and watched files for their writes), and the
/// thread that turns its events into paths.
struct InotifyWatch {
    watches: Watches,
    /// Shared with the reader thread, which names events by these and forgets removed ones.
    watched: Arc<Mutex<InotifyMarks>>,
}

/// What each watch descriptor stands for, and the same by path.
#[derive(Default)]
struct InotifyMarks {
    by_wd: HashMap<WatchDescriptor, Watch>,
    dirs: HashSet<PathBuf>,
    files: HashMap<PathBuf, WatchDescriptor>,
}

/// What a watch descriptor stands for.
#[derive(Clone)]
struct Watch {
    path: PathBuf,
    is_dir: bool,
}

impl InotifyMarks {
    fn insert(&mut self, wd: WatchDescriptor, watch: Watch) {
        if watch.is_dir {
            self.dirs.insert(watch.path.clone());
        } else {
            self.files.insert(watch.path.clone(), wd.clone());
        }
        self.by_wd.insert(wd, watch);
    }

    fn remove(&mut self, wd: &WatchDescriptor) {
        let Some(watch) = self.by_wd.remove(wd) else {
            return;
        };
        if watch.is_dir {
            self.dirs.remove(&watch.path);
        } else if self.files.get(&watch.path) == Some(wd) {
            self.files.remove(&watch.path);
        }
    }
}

impl InotifyWatch {
    /// A directory's own changes: entries created, deleted or moved in or out, and the
    /// directory itself going away. `ONLYDIR` refuses a path that turned into a file.
    const DIRECTORY: WatchMask = WatchMask::CREATE
        .union(WatchMask::DELETE)
        .union(WatchMask::MOVED_FROM)
        .union(WatchMask::MOVED_TO)
        .union(WatchMask::DELETE_SELF)
        .union(WatchMask::MOVE_SELF)
        .union(WatchMask::ONLYDIR);
    /// Writes to a watched file in place (a rename-over save is the directory's event).
    const FILE: WatchMask = WatchMask::MODIFY.union(WatchMask::CLOSE_WRITE);

    fn start() -> Result<(InotifyWatch, Changes), WatchError> {
        let inotify = Inotify::init().map_err(WatchError::Inotify)?;
        let watches = inotify.watches();
        let watched = Arc::new(Mutex::new(InotifyMarks::default()));
        let (sender, changes) = unbounded_channel();
        let shared = Arc::clone(&watched);
        std::thread::Builder::new()
            .name("inotify".into())
            .spawn(move || read_inotify_events(inotify, &shared, &sender))
            .map_err(WatchError::InotifyReader)?;
        Ok((InotifyWatch { watches, watched }, changes))
    }

    fn contains_dir(&self, dir: &Path) -> bool {
        lock(&self.watched).dirs.contains(dir)
    }

    fn add_dir(&mut self, dir: PathBuf) {
        self.add(dir, true, Self::DIRECTORY);
    }

    fn add_file(&mut self, path: &Path) {
        self.add(path.to_path_buf(), false, Self::FILE);
    }

    fn add(&mut self, path: PathBuf, is_dir: bool, mask: WatchMask) {
        match self.watches.add(&path, mask) {
            Ok(wd) => {
                lock(&self.watched).insert(wd, Watch { path, is_dir });
            }
            Err(err) => tracing::warn!("cannot watch {} for changes: {err}", path.display()),
        }
    }

    /// A file no longer watched: its writes no longer matter.
    fn remove_file(&mut self, path: &Path) {
        let found = lock(&self.watched).files.get(path).cloned();
        if let Some(wd) = found {
            lock(&self.watched).remove(&wd);
            // The inode may be gone already, which removed the watch with it.
            let _ = self.watches.remove(wd);
        }
    }
}

fn lock(watched: &Mutex<InotifyMarks>) -> std::sync::MutexGuard<'_, InotifyMarks> {
    watched
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads inotify events until the agent stops, sending the paths they name. When the kernel's
/// queue overflowed, every watched path is sent, so that all is looked at again.
fn read_inotify_events(
    mut inotify: Inotify,
    watched: &Mutex<InotifyMarks>,
    sender: &UnboundedSender<Vec<PathBuf>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let events = match inotify.read_events_blocking(&mut buffer) {
            Ok(events) => events,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::warn!("file watching stopped: {err}");
                return;
            }
        };
        let mut paths = Vec::new();
        {
            let mut watched = lock(watched);
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    tracing::warn!("inotify queue overflowed: looking at every watched file again");
                    paths.extend(watched.by_wd.values().map(|w| w.path.clone()));
                    continue;
                }
                let Some(watch) = watched.by_wd.get(&event.wd).cloned() else {
                    continue;
                };
                if event.mask.contains(EventMask::IGNORED) {
                    // The directory or file is gone: one made there again is watched anew.
                    watched.remove(&event.wd);
                }
                paths.push(match event.name {
                    Some(name) => watch.path.join(name),
                    None => watch.path,
                });
            }
        }
        if !paths.is_empty() && sender.send(paths).is_err() {
            return;
        }
    }
}
