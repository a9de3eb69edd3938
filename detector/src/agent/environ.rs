//! The environments of running MCP servers (`/proc/PID/environ`), where a key injected as an
//! environment variable stays for the life of the process.
//!
//! procfs gives a file its inode when a path lookup first makes its dentry, and may forget it
//! when the dentry is dropped; holding the file open pins the dentry, so every later open by
//! another process resolves to the same (device, inode) and the kernel programs match it like
//! any watched file. The agent only opens the file: it never reads it, so the environment (and
//! any key in it) never enters the agent.
use std::{collections::HashMap, fs, os::unix::fs::MetadataExt};

use detector_common::FileKey;

use super::watch::kernel_dev;

/// Environments held open at most (each is one file descriptor).
const MAX_PINS: usize = 4096;

/// One server's environment, held open.
pub struct Pin {
    pub pid: u32,
    /// The server's name in its config.
    pub server: String,
    /// Open and never read: it holds the identity.
    _file: fs::File,
}

#[derive(Default)]
pub struct Pins {
    by_key: HashMap<FileKey, Pin>,
    by_pid: HashMap<u32, FileKey>,
}

impl Pins {
    /// Holds `/proc/PID/environ` open; the identity for the kernel when it is new (`None`
    /// when it was pinned already, or the process is gone).
    pub fn pin(&mut self, pid: u32, server: String) -> Option<FileKey> {
        if let Some(key) = self.by_pid.get(&pid) {
            if let Some(pin) = self.by_key.get_mut(key) {
                pin.server = server;
            }
            return None;
        }
        if self.by_pid.len() >= MAX_PINS {
            tracing::warn!(
                "{MAX_PINS} server environments watched already: not that of process {pid}"
            );
            return None;
        }
        let file = match fs::File::open(format!("/proc/{pid}/environ")) {
            Ok(file) => file,
            Err(err) => {
                tracing::debug!("cannot hold the environment of process {pid}: {err}");
                return None;
            }
        };
        let meta = file.metadata().ok()?;
        let key = FileKey {
            ino: meta.ino(),
            dev: kernel_dev(meta.dev()),
            _pad: 0,
        };
        tracing::info!("watching the environment of MCP server {server} (process {pid})");
        self.by_pid.insert(pid, key);
        self.by_key.insert(
            key,
            Pin {
                pid,
                server,
                _file: file,
            },
        );
        Some(key)
    }

    /// Lets a process's environment go; its identity, for the kernel to drop.
    pub fn unpin(&mut self, pid: u32) -> Option<FileKey> {
        let key = self.by_pid.remove(&pid)?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// The server whose environment is pinned for this process, if any.
    pub fn server_of(&self, pid: u32) -> Option<&str> {
        let key = self.by_pid.get(&pid)?;
        self.by_key.get(key).map(|pin| pin.server.as_str())
    }

    pub fn get(&self, key: &FileKey) -> Option<&Pin> {
        self.by_key.get(key)
    }

    /// Every pinned identity.
    pub fn keys(&self) -> Vec<FileKey> {
        self.by_key.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_environment_keeps_its_identity_for_other_openers() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut pins = Pins::default();
        let key = pins.pin(child.id(), "srv".into()).unwrap();
        assert_eq!(pins.pin(child.id(), "srv".into()), None, "pinned once");
        let path = format!("/proc/{}/environ", child.id());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.ino(), kernel_dev(meta.dev())), (key.ino, key.dev));
        assert_eq!(pins.get(&key).unwrap().pid, child.id());
        assert_eq!(pins.unpin(child.id()), Some(key));
        assert!(pins.get(&key).is_none());
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(pins.pin(u32::MAX, "gone".into()), None);
    }
}
