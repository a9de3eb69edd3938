//! Users and groups made on this host for one test, removed when it ends (even when it fails).
//!
//! Tests of one process run side by side, and some of them read every home of the host (an
//! audit, an agent watching every home): whoever adds accounts or homes holds one lock while
//! they exist, so that no two such tests overlap and a whole-host reader never sees a home
//! come or go under it.
use std::{
    path::PathBuf,
    process::Command,
    sync::{Mutex, MutexGuard, PoisonError},
    thread,
    time::Duration,
};

use crate::{guard, run::which};

static HOST_ACCOUNTS: Mutex<()> = Mutex::new(());

/// The lock on this host's accounts and homes, held for as long as the guard lives.
pub fn lock_host_accounts() -> MutexGuard<'static, ()> {
    // A test that failed while holding it changed nothing the next one cares about.
    HOST_ACCOUNTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run a shadow-utils tool (`useradd`, `groupadd`…), again while another process holds the
/// lock on `/etc/passwd`.
pub fn shadow_tool(tool: &str, args: &[&str]) {
    let mut last = String::new();
    for _ in 0..50 {
        let output = Command::new(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool} (Debian's passwd package): {e}"));
        if output.status.success() {
            return;
        }
        last = String::from_utf8_lossy(&output.stderr).into_owned();
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{tool} {args:?} failed: {last}");
}

/// Whether accounts can be made here (root, shadow-utils); see [`guard::skip`].
pub fn can_make_accounts() -> bool {
    if !guard::is_root() {
        guard::skip("not root: groups and users cannot be made")
    } else if ["groupadd", "useradd", "userdel", "groupdel"]
        .iter()
        .any(|t| which(t).is_none())
    {
        guard::skip("shadow-utils (groupadd, useradd) missing")
    } else {
        true
    }
}

/// A user made on this host for one test, removed with its home when dropped.
pub struct TemporaryUser {
    pub name: String,
    pub home: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

impl TemporaryUser {
    /// `PREFIX<pid>`, with a home under /home (useradd from Debian's passwd package).
    pub fn create(prefix: &str) -> TemporaryUser {
        let lock = lock_host_accounts();
        let name = format!("{prefix}{}", std::process::id());
        let home = PathBuf::from("/home").join(&name);
        let home_arg = home.to_str().expect("a UTF-8 home");
        shadow_tool(
            "useradd",
            &[
                "--create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
                home_arg,
                &name,
            ],
        );
        TemporaryUser {
            name,
            home,
            _lock: lock,
        }
    }
}

impl Drop for TemporaryUser {
    fn drop(&mut self) {
        for _ in 0..20 {
            let removed = Command::new("userdel")
                .args(["--remove", &self.name])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if removed || !self.home.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Groups, and users without a home, made for one test.
pub struct Accounts {
    users: Vec<String>,
    groups: Vec<String>,
    _lock: MutexGuard<'static, ()>,
}

impl Accounts {
    pub fn new() -> Accounts {
        Accounts {
            users: Vec::new(),
            groups: Vec::new(),
            _lock: lock_host_accounts(),
        }
    }

    /// A new group; its gid.
    pub fn group(&mut self, name: &str) -> u32 {
        shadow_tool("groupadd", &[name]);
        self.groups.push(name.to_string());
        gid_of(name)
    }

    /// A user with `primary` as its primary group and member of `groups`.
    pub fn user(&mut self, name: &str, primary: &str, groups: &[&str]) {
        let list = groups.join(",");
        let mut args = vec!["-M", "-N", "-s", "/usr/sbin/nologin", "-g", primary];
        if !groups.is_empty() {
            args.extend(["-G", &list]);
        }
        args.push(name);
        shadow_tool("useradd", &args);
        self.users.push(name.to_string());
    }
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts::new()
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for user in &self.users {
            let _ = Command::new("userdel").arg(user).status();
        }
        for group in self.groups.iter().rev() {
            let _ = Command::new("groupdel").arg(group).status();
        }
    }
}

/// The gid of `group`, from /etc/group.
pub fn gid_of(group: &str) -> u32 {
    std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.first() == Some(&group)).then(|| f[2].parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no group {group} in /etc/group"))
}
