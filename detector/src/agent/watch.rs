//! The watch set: files identified by device and inode, as the kernel programs see them.
use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use detector_common::FileKey;

use super::event::{NotWatched, WatchedFile};

#[derive(Debug, Clone)]
pub struct Watched {
    pub path: PathBuf,
    pub mcp_client: Option<String>,
}

#[derive(Default)]
pub struct WatchSet {
    files: HashMap<FileKey, Watched>,
    pub not_watched: Vec<NotWatched>,
}

/// The kernel's internal dev_t (`MKDEV`: 12 bits major, 20 bits minor), which is what
/// `super_block.s_dev` holds; `stat` returns the user-space encoding of the same numbers.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | (minor & 0xfffff)
}

pub fn dev_string(kernel_dev: u32) -> String {
    format!("{}:{}", kernel_dev >> 20, kernel_dev & 0xfffff)
}

impl WatchSet {
    /// Adds a file by its current identity. Links are followed: the file behind them is watched.
    pub fn add(&mut self, path: &Path, mcp_client: Option<String>) {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                let key = FileKey {
                    ino: meta.ino(),
                    dev: kernel_dev(meta.dev()),
                    _pad: 0,
                };
                self.files.entry(key).or_insert_with(|| Watched {
                    path: path.to_path_buf(),
                    mcp_client,
                });
            }
            Ok(_) => self.not_watched.push(NotWatched {
                file: path.display().to_string(),
                reason: "not a regular file".into(),
            }),
            Err(err) => self.not_watched.push(NotWatched {
                file: path.display().to_string(),
                reason: err.to_string(),
            }),
        }
    }

    /// Every MCP client config that exists now, in every home on the host.
    pub fn add_mcp_configs(&mut self) {
        for home in crate::mcp::homes() {
            for config in crate::mcp::discover(&home) {
                self.add(&config.path, Some(config.client.id.to_string()));
            }
        }
    }

    pub fn get(&self, key: &FileKey) -> Option<&Watched> {
        self.files.get(key)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FileKey, &Watched)> {
        self.files.iter()
    }

    pub fn describe(&self) -> Vec<WatchedFile> {
        let mut list: Vec<WatchedFile> = self
            .files
            .iter()
            .map(|(key, watched)| WatchedFile {
                file: watched.path.display().to_string(),
                dev: dev_string(key.dev),
                ino: key.ino,
                mcp_client: watched.mcp_client.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.file.cmp(&b.file));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_file_by_two_names_is_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, "{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut set = WatchSet::default();
        set.add(&file, None);
        set.add(&link, None);
        set.add(&dir.path().join("missing.json"), None);
        assert_eq!(set.len(), 1);
        assert_eq!(set.not_watched.len(), 1);
    }

    #[test]
    fn device_numbers_use_the_kernel_encoding() {
        let st_dev = libc::makedev(259, 0x12345);
        assert_eq!(dev_string(kernel_dev(st_dev)), "259:74565");
    }
}
