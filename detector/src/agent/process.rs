//! The process table: who every process is (exe, cmdline, parent), kept from the kernel's
//! exec/fork/exit records and seeded from /proc, so an open can be named even after its
//! process has exited.
use std::{
    collections::HashMap,
    fs,
    path::Path,
    time::{Duration, Instant},
};

use super::container::{self, CgroupContainer};
pub use crate::event::Ancestor;

/// How long an exited process stays in the table, so that the opens and children it left
/// behind in the ring buffer can still be named.
const EXITED_GRACE: Duration = Duration::from_secs(60);
const MAX_ANCESTRY: usize = 32;

#[derive(Debug, Clone)]
pub struct Process {
    pub ppid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
    /// The container it runs in, from its cgroup, read while it lived (at first sight, exec,
    /// or inherited at fork).
    pub container: Option<CgroupContainer>,
    /// The kernel's filename of the exec, when `exe` is that name resolved on the host's files
    /// and says otherwise: a process gone before its container was known ran the container's
    /// file of that name, not the host's.
    pub exec_filename: Option<String>,
    exited: Option<Instant>,
}

#[derive(Default)]
pub struct ProcessTable {
    processes: HashMap<u32, Process>,
}

impl ProcessTable {
    /// Every process running now, from /proc.
    pub fn from_proc() -> ProcessTable {
        let mut table = ProcessTable::default();
        let Ok(entries) = fs::read_dir("/proc") else {
            return table;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(process) = read_proc(pid) {
                table.processes.insert(pid, process);
            }
        }
        table
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    pub fn get(&self, pid: u32) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// A new image: `filename` as the kernel saw it, `args` the NUL-separated argv it read.
    pub fn exec(&mut self, pid: u32, ppid: u32, filename: &str, args: &[u8]) {
        let mut cmdline = split_args(args);
        if cmdline.is_empty() {
            cmdline = read_cmdline(pid);
        }
        // A process gone already keeps the container it had at fork (or first sight).
        let container = container::of_pid(pid)
            .or_else(|| self.processes.get(&pid).and_then(|p| p.container.clone()));
        let exe = resolve_exe(pid, filename, container.is_some());
        let exec_filename = (exe != filename).then(|| filename.to_string());
        self.processes.insert(
            pid,
            Process {
                ppid,
                exe,
                cmdline,
                container,
                exec_filename,
                exited: None,
            },
        );
    }

    /// A new process: it runs its parent's image until it execs.
    pub fn fork(&mut self, parent: u32, child: u32) {
        let inherited = self
            .processes
            .get(&parent)
            .cloned()
            .or_else(|| read_proc(parent));
        let (exe, cmdline, container) = inherited
            .map(|p| (p.exe, p.cmdline, p.container))
            .unwrap_or_default();
        // A child starts in its parent's cgroup; a runtime that moves it is seen at its exec.
        let container = container::of_pid(child).or(container);
        self.processes.insert(
            child,
            Process {
                ppid: parent,
                exe,
                cmdline,
                container,
                exec_filename: None,
                exited: None,
            },
        );
    }

    pub fn exit(&mut self, pid: u32) {
        if let Some(process) = self.processes.get_mut(&pid) {
            process.exited = Some(Instant::now());
        }
    }

    /// Every process the table knows that has not exited, with its pid.
    pub fn living(&self) -> impl Iterator<Item = (u32, &Process)> {
        self.processes
            .iter()
            .filter(|(_, p)| p.exited.is_none())
            .map(|(pid, p)| (*pid, p))
    }

    /// Looks up a process, learning it from /proc if the table missed it.
    pub fn lookup(&mut self, pid: u32) -> Option<&Process> {
        match self.processes.entry(pid) {
            std::collections::hash_map::Entry::Occupied(entry) => Some(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => Some(entry.insert(read_proc(pid)?)),
        }
        .map(|p| &*p)
    }

    /// The process and its parents, nearest first, up to (and including) pid 1. Processes the
    /// table does not know (and /proc no longer has) appear with an empty exe.
    pub fn lineage(&mut self, pid: u32) -> Vec<(u32, Process)> {
        let mut chain: Vec<(u32, Process)> = Vec::new();
        let mut next = Some(pid);
        while let Some(current) = next {
            if current == 0
                || chain.len() > MAX_ANCESTRY
                || chain.iter().any(|(p, _)| *p == current)
            {
                break;
            }
            let process = self.lookup(current).cloned().unwrap_or(Process {
                ppid: 0,
                exe: String::new(),
                cmdline: Vec::new(),
                container: None,
                exec_filename: None,
                exited: None,
            });
            next = Some(process.ppid);
            chain.push((current, process));
        }
        chain
    }

    /// The chain of parents, nearest first, up to (and including) pid 1.
    pub fn ancestry(&mut self, pid: u32) -> Vec<Ancestor> {
        self.lineage(pid)
            .into_iter()
            .skip(1)
            .map(|(pid, p)| Ancestor { pid, exe: p.exe })
            .collect()
    }

    /// Forgets processes that exited more than the grace period ago.
    pub fn collect_garbage(&mut self) {
        let now = Instant::now();
        self.processes.retain(|_, p| {
            p.exited
                .is_none_or(|at| now.duration_since(at) < EXITED_GRACE)
        });
    }
}

fn read_proc(pid: u32) -> Option<Process> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may contain spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let ppid = after_comm.split_whitespace().nth(1)?.parse().ok()?;
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(Process {
        ppid,
        exe,
        cmdline: read_cmdline(pid),
        container: container::of_pid(pid),
        exec_filename: None,
        exited: None,
    })
}

fn read_cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| split_args(&raw))
        .unwrap_or_default()
}

fn split_args(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The executable's real path: the kernel's filename with links resolved, else /proc's view.
/// A container's filename means nothing on the host's file system: /proc's view only.
fn resolve_exe(pid: u32, filename: &str, in_container: bool) -> String {
    let path = Path::new(filename);
    if path.is_absolute() && !in_container {
        if let Ok(real) = fs::canonicalize(path) {
            return real.to_string_lossy().into_owned();
        }
    }
    fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| filename.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exited_processes_and_their_ancestry() {
        let mut table = ProcessTable::default();
        table.exec(100, 1, "/bin/sh", b"sh\0-c\0true\0");
        table.fork(100, 101);
        table.exec(101, 100, "/definitely/not/here", b"tool\0--flag\0");
        table.exit(101);
        table.exit(100);
        table.collect_garbage();
        let child = table.get(101).unwrap();
        assert_eq!(child.cmdline, vec!["tool", "--flag"]);
        assert_eq!(child.exe, "/definitely/not/here");
        let ancestry = table.ancestry(101);
        assert_eq!(ancestry[0].pid, 100);
        assert_eq!(
            ancestry[0].exe,
            fs::canonicalize("/bin/sh").unwrap().to_string_lossy()
        );
    }
}
