//! The watch set: files identified by device and inode, as the kernel programs see them, kept
//! in step with the kernel's maps as files are added, replaced (an editor's rename-over save
//! gives the path a new inode) and removed.
use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapError};
use detector_common::{inode_bit, FileKey};

use super::kernel::KernelError;
pub use crate::event::{dev_string, kernel_dev};
use crate::event::{Container, NotWatched, WatchedFile};

#[derive(Debug, Clone)]
pub struct Watched {
    pub path: PathBuf,
    /// The policy group that claims the file (index into the policy).
    pub group: Option<usize>,
    pub mcp_client: Option<String>,
    /// A file of a container's (`--container`): its path there, and the container.
    pub in_container: Option<InContainer>,
}

/// A watched file seen through a container's root (`/proc/PID/root/PATH`).
#[derive(Debug, Clone)]
pub struct InContainer {
    /// The path inside the container, as records name the file.
    pub path: String,
    pub container: Container,
}

impl Watched {
    /// The file's name in records: its path in its container, else on the host.
    pub fn name(&self) -> String {
        match &self.in_container {
            Some(inside) => inside.path.clone(),
            None => self.path.display().to_string(),
        }
    }
}

/// The kernel's side of the watch set: the inode bitmap and the `(dev, ino)` hash map.
pub struct KernelWatch {
    bitmap: Array<MapData, u64>,
    files: BpfHashMap<MapData, FileKey, u32>,
}

impl KernelWatch {
    pub fn new(
        bitmap: Array<MapData, u64>,
        files: BpfHashMap<MapData, FileKey, u32>,
    ) -> KernelWatch {
        KernelWatch { bitmap, files }
    }

    pub fn insert(&mut self, key: FileKey) -> Result<(), KernelError> {
        let (word, bit) = inode_bit(key.ino);
        let bits = self
            .bitmap
            .get(&word, 0)
            .map_err(map_error("reading the inode bitmap"))?;
        self.bitmap
            .set(word, bits | bit, 0)
            .map_err(map_error("filling the inode bitmap"))?;
        self.files
            .insert(key, 1, 0)
            .map_err(map_error("filling the file watch map"))
    }

    /// Removes `key`; `remaining` are the keys still watched, to keep bits they share.
    pub fn remove<'a>(
        &mut self,
        key: FileKey,
        remaining: impl Iterator<Item = &'a FileKey>,
    ) -> Result<(), KernelError> {
        let _ = self.files.remove(&key);
        let (word, bit) = inode_bit(key.ino);
        if !remaining
            .into_iter()
            .any(|k| inode_bit(k.ino) == (word, bit))
        {
            let bits = self
                .bitmap
                .get(&word, 0)
                .map_err(map_error("reading the inode bitmap"))?;
            self.bitmap
                .set(word, bits & !bit, 0)
                .map_err(map_error("clearing the inode bitmap"))?;
        }
        Ok(())
    }
}

fn map_error(action: &'static str) -> impl FnOnce(MapError) -> KernelError {
    move |error| KernelError::WatchMap { action, error }
}

/// A path's identity now, following links.
pub fn file_key(path: &Path) -> std::io::Result<Option<FileKey>> {
    let meta = std::fs::metadata(path)?;
    Ok(meta.is_file().then(|| FileKey {
        ino: meta.ino(),
        dev: kernel_dev(meta.dev()),
        _pad: 0,
    }))
}

#[derive(Default)]
pub struct WatchSet {
    files: HashMap<FileKey, Watched>,
    paths: BTreeMap<PathBuf, FileKey>,
}

/// What adding a path did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// A new identity for the kernel (and, when the path had another before, that one to drop).
    New {
        key: FileKey,
        replaced: Option<FileKey>,
    },
    /// Already watched as it is.
    Unchanged,
}

impl WatchSet {
    /// Watches the file a path names now (links followed). Errors say why it cannot be.
    pub fn add(
        &mut self,
        path: &Path,
        group: Option<usize>,
        mcp_client: Option<String>,
    ) -> Result<Added, NotWatched> {
        let not_watched = |reason: String| NotWatched {
            file: path.display().to_string(),
            reason,
        };
        let key = match file_key(path) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(not_watched("not a regular file".into())),
            Err(err) => return Err(not_watched(err.to_string())),
        };
        let previous = self.paths.insert(path.to_path_buf(), key);
        if previous == Some(key) {
            return Ok(Added::Unchanged);
        }
        let replaced = previous.and_then(|old| self.forget_key_if_unused(old));
        if self.files.contains_key(&key) {
            // Another name for a file already watched (a hard link): nothing new for the kernel.
            return Ok(match replaced {
                Some(old) => Added::New {
                    key,
                    replaced: Some(old),
                },
                None => Added::Unchanged,
            });
        }
        self.files.insert(
            key,
            Watched {
                path: path.to_path_buf(),
                group,
                mcp_client,
                in_container: None,
            },
        );
        Ok(Added::New { key, replaced })
    }

    /// Stops watching a path; returns the identity the kernel should drop, if no other watched
    /// path still names it.
    pub fn remove(&mut self, path: &Path) -> Option<FileKey> {
        let key = self.paths.remove(path)?;
        self.forget_key_if_unused(key)
    }

    fn forget_key_if_unused(&mut self, key: FileKey) -> Option<FileKey> {
        if self.paths.values().any(|k| *k == key) {
            return None;
        }
        self.files.remove(&key);
        Some(key)
    }

    /// Says that the file a watched path names is seen through a container's root.
    pub fn set_in_container(&mut self, path: &Path, inside: InContainer) {
        if let Some(watched) = self.paths.get(path).and_then(|key| self.files.get_mut(key)) {
            watched.in_container = Some(inside);
        }
    }

    pub fn get(&self, key: &FileKey) -> Option<&Watched> {
        self.files.get(key)
    }

    pub fn key_of(&self, path: &Path) -> Option<FileKey> {
        self.paths.get(path).copied()
    }

    pub fn contains_path(&self, path: &Path) -> bool {
        self.paths.contains_key(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.paths.keys()
    }

    pub fn keys(&self) -> impl Iterator<Item = &FileKey> {
        self.files.keys()
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn describe(&self) -> Vec<WatchedFile> {
        self.paths
            .iter()
            .map(|(path, key)| {
                let watched = self.files.get(key);
                let inside = watched.and_then(|w| w.in_container.as_ref());
                WatchedFile {
                    file: inside.map_or_else(|| path.display().to_string(), |i| i.path.clone()),
                    dev: dev_string(key.dev),
                    ino: key.ino,
                    mcp_client: watched.and_then(|w| w.mcp_client.clone()),
                    container: inside.map(|i| i.container.clone()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_by_two_names_is_one_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, "{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut set = WatchSet::default();
        assert!(matches!(
            set.add(&file, None, None),
            Ok(Added::New { replaced: None, .. })
        ));
        assert_eq!(set.add(&link, None, None), Ok(Added::Unchanged));
        assert!(set
            .add(&dir.path().join("missing.json"), None, None)
            .is_err());
        assert_eq!(set.keys().count(), 1);
        assert_eq!(set.remove(&file), None, "the link still names it");
        assert!(set.remove(&link).is_some());
    }

    #[test]
    fn a_rename_over_save_replaces_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, "{}").unwrap();
        let mut set = WatchSet::default();
        let Ok(Added::New { key: old, .. }) = set.add(&file, None, None) else {
            panic!()
        };
        let temp = dir.path().join("config.json.tmp");
        std::fs::write(&temp, "{\"a\":1}").unwrap();
        std::fs::rename(&temp, &file).unwrap();
        let Ok(Added::New { key: new, replaced }) = set.add(&file, None, None) else {
            panic!()
        };
        assert_ne!(old, new);
        assert_eq!(replaced, Some(old));
        assert_eq!(set.keys().collect::<Vec<_>>(), vec![&new]);
    }

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        let st_dev = libc::makedev(259, 0x12345);
        assert_eq!(dev_string(kernel_dev(st_dev)), "259:74565");
    }
}
