//! The live watch set: which files are watched and what they hold, kept current as files
//! change on disk. The directories of watched files (and, under a policy, of every file the
//! policy could name) are watched with inotify: an editor's rename-over save re-arms
//! the new inode at once, a file created later that the policy names is added, a deleted one
//! is dropped, and a changed file is re-scanned so that a plaintext key written into it is
//! reported (`config-change`) within moments of the write.
//!
//! Only changes are asked of inotify (create, delete, move, write), never opens or reads: a
//! program that opens files in a watched directory wakes nobody.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::{
    event::{ConfigChange, NotWatched},
    policy::{Policy, Reader, Verdict},
    rescan::{server_matches, Contents, Rescanner},
    watch::{Added, KernelWatch, WatchSet, Watched},
};
use crate::mcp::{self, Home, McpServer};

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
    directories: DirectoryWatch,
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
    ) -> Result<(LiveFiles, Changes, Vec<NotWatched>)> {
        let (directories, changes) = DirectoryWatch::start()?;
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
            directories,
        };
        let mut not_watched = Vec::new();
        for (path, group) in live.desired() {
            match live.watch.add(&path, group, mcp_client(&path)) {
                Ok(Added::New { key, .. }) => live.kernel.insert(key)?,
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
            if !self.directories.contains(&dir) && dir.is_dir() {
                self.directories.add(dir);
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

    pub fn describe(&self) -> Vec<super::event::WatchedFile> {
        self.watch.describe()
    }

    /// The kernel map holds this identity too (the canary).
    pub fn insert_kernel_key(&mut self, key: detector_common::FileKey) -> Result<()> {
        self.kernel.insert(key)
    }

    /// Acts on paths that changed; returns the records to write.
    pub fn changed(&mut self, paths: BTreeSet<PathBuf>) -> Result<Vec<ConfigChange>> {
        let new_directory = paths
            .iter()
            .any(|p| p.is_dir() && !self.directories.contains(p));
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
    fn reconcile(&mut self, path: &Path) -> Result<Option<ConfigChange>> {
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
        let exists = match self.watch.add(path, group, client.clone()) {
            Ok(Added::New { key, replaced }) => {
                if let Some(old) = replaced {
                    self.kernel.remove(old, self.watch.keys())?;
                }
                self.kernel.insert(key)?;
                tracing::info!("watching {} (inode {})", path.display(), key.ino);
                true
            }
            Ok(Added::Unchanged) => true,
            Err(_) => {
                if let Some(old) = self.watch.remove(path) {
                    self.kernel.remove(old, self.watch.keys())?;
                    tracing::info!("no longer watching {}", path.display());
                }
                false
            }
        };
        let now = if exists {
            self.rescanner.scan(path)
        } else {
            Contents::default()
        };
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
            verdict: if added.is_empty() { "allow" } else { "alert" },
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

/// The directories watched with inotify, and the thread that turns their events into paths.
struct DirectoryWatch {
    watches: Watches,
    /// Shared with the reader thread, which names events by these and forgets removed ones.
    dirs: Arc<Mutex<HashMap<WatchDescriptor, PathBuf>>>,
}

impl DirectoryWatch {
    /// Changes that can alter what a path is or holds; `EXCL_UNLINK` leaves out files already
    /// unlinked, `ONLYDIR` refuses a path that turned into a file.
    const MASK: WatchMask = WatchMask::CREATE
        .union(WatchMask::DELETE)
        .union(WatchMask::MODIFY)
        .union(WatchMask::CLOSE_WRITE)
        .union(WatchMask::MOVED_FROM)
        .union(WatchMask::MOVED_TO)
        .union(WatchMask::DELETE_SELF)
        .union(WatchMask::MOVE_SELF)
        .union(WatchMask::EXCL_UNLINK)
        .union(WatchMask::ONLYDIR);

    fn start() -> Result<(DirectoryWatch, Changes)> {
        let inotify = Inotify::init().context("cannot start inotify")?;
        let watches = inotify.watches();
        let dirs = Arc::new(Mutex::new(HashMap::new()));
        let (sender, changes) = unbounded_channel();
        let shared = Arc::clone(&dirs);
        std::thread::Builder::new()
            .name("inotify".into())
            .spawn(move || read_directory_events(inotify, &shared, &sender))
            .context("cannot start the inotify reader")?;
        Ok((DirectoryWatch { watches, dirs }, changes))
    }

    fn contains(&self, dir: &Path) -> bool {
        lock(&self.dirs).values().any(|d| d == dir)
    }

    fn add(&mut self, dir: PathBuf) {
        match self.watches.add(&dir, Self::MASK) {
            Ok(wd) => {
                lock(&self.dirs).insert(wd, dir);
            }
            Err(err) => tracing::warn!("cannot watch {}: {err}", dir.display()),
        }
    }
}

fn lock(
    dirs: &Mutex<HashMap<WatchDescriptor, PathBuf>>,
) -> std::sync::MutexGuard<'_, HashMap<WatchDescriptor, PathBuf>> {
    dirs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads inotify events until the agent stops, sending the paths they name. When the kernel's
/// queue overflowed, every watched directory is sent, so that all is looked at again.
fn read_directory_events(
    mut inotify: Inotify,
    dirs: &Mutex<HashMap<WatchDescriptor, PathBuf>>,
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
            let mut dirs = lock(dirs);
            for event in events {
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    tracing::warn!("inotify queue overflowed: looking at every watched file again");
                    paths.extend(dirs.values().cloned());
                    continue;
                }
                let Some(dir) = dirs.get(&event.wd).cloned() else {
                    continue;
                };
                if event.mask.contains(EventMask::IGNORED) {
                    // The directory is gone (or moved): the next one made there is watched anew.
                    dirs.remove(&event.wd);
                }
                paths.push(match event.name {
                    Some(name) => dir.join(name),
                    None => dir,
                });
            }
        }
        if !paths.is_empty() && sender.send(paths).is_err() {
            return;
        }
    }
}
