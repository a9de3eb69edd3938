//! The agent's records: JSON lines, one record each, every one with `type`, `time` (RFC 3339,
//! nanoseconds), `seq` and `prev` (the hash chain). The agent writes them; `--access-log`
//! reads their `open` records back to join them to the keys. One set of types for both, so
//! the two cannot drift apart; fields a reader needs only from the agent (everything but who
//! opened which file when, and the verdict) may be missing from a line made elsewhere.
use chrono::{DateTime, SecondsFormat, Utc};
use detector_common::Syscall;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    Ready(Ready),
    Open(Box<Open>),
    Heartbeat(Heartbeat),
    Gap(Gap),
    ConfigChange(ConfigChange),
    ContainerExit(ContainerExit),
}

/// One record as written: the envelope every type shares, then the record's own fields.
#[derive(Serialize)]
pub struct Line<'a> {
    pub time: String,
    pub seq: u64,
    /// The hash of the line before (see `agent::chain`).
    pub prev: &'a str,
    /// The host's name: inside the chained record, like every field.
    pub host: &'a str,
    #[serde(flatten)]
    pub record: &'a Record,
}

/// An `open` record as read back, with the time of its line.
#[derive(Debug, Deserialize)]
pub struct OpenLine {
    pub time: DateTime<Utc>,
    #[serde(flatten)]
    pub open: Open,
}

/// What the policy says of a reader, or of a change to a watched file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Alert,
}

impl Verdict {
    pub fn allowed(allowed: bool) -> Verdict {
        if allowed {
            Verdict::Allow
        } else {
            Verdict::Alert
        }
    }
}

/// How a file was opened, from its `O_ACCMODE` flags (`O_PATH`: not for its contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    Path,
}

/// Linux's open flags, as the agent's records carry them (whatever system reads the records).
pub mod linux_flags {
    pub const O_RDONLY: u32 = 0;
    pub const O_WRONLY: u32 = 1;
    pub const O_RDWR: u32 = 2;
    pub const O_ACCMODE: u32 = 3;
    pub const O_PATH: u32 = 0o10000000;
}

impl Access {
    pub fn of_flags(flags: u32) -> Access {
        if flags & linux_flags::O_PATH != 0 {
            return Access::Path;
        }
        match flags & linux_flags::O_ACCMODE {
            0 => Access::Read,
            1 => Access::Write,
            _ => Access::ReadWrite,
        }
    }
}

/// Whether the agent's own canary open came back through the kernel since the last heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryState {
    Ok,
    Missed,
}

/// A process in the chain of parents of an opener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub exe: String,
}

/// A watched file's keys changed: fingerprints only, never the secrets.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigChange {
    pub file: String,
    /// Keys in the file now that were not before: a plaintext key was just written.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `alert` when a key was added, else `allow`.
    pub verdict: Verdict,
    pub policy_rule: Option<String>,
    pub mcp_client: Option<String>,
    /// The file is gone (deleted or renamed away).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Why the new contents could not be read, if they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub pid: u32,
    pub programs: Vec<String>,
    pub ring_buffer_bytes: u32,
    pub watched: Vec<WatchedFile>,
    /// Paths asked for that could not be watched, with the reason.
    pub not_watched: Vec<NotWatched>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchedFile {
    pub file: String,
    pub dev: String,
    pub ino: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_client: Option<String>,
    /// A file of this container's (`--container`); `file` is its path there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotWatched {
    pub file: String,
    pub reason: String,
}

/// An open of a watched file, with who opened it and what the policy says. The fields a join
/// needs (`file`, `pid`, `uid`, `verdict`, and `dev`/`ino` when known) are required of a line
/// read back; the rest default.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Open {
    pub file: String,
    /// `major:minor` ([`dev_string`]).
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub ino: Option<u64>,
    #[serde(default)]
    pub syscall: Option<Syscall>,
    #[serde(default)]
    pub flags: u32,
    #[serde(default)]
    pub access: Option<Access>,
    #[serde(default)]
    pub result: i64,
    pub pid: u32,
    #[serde(default)]
    pub tid: u32,
    #[serde(default)]
    pub ppid: u32,
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub comm: String,
    #[serde(default)]
    pub exe: String,
    #[serde(default)]
    pub cmdline: Vec<String>,
    #[serde(default)]
    pub ancestry: Vec<Ancestor>,
    #[serde(default)]
    pub cgroup_id: u64,
    pub verdict: Verdict,
    #[serde(default)]
    pub policy_rule: Option<String>,
    #[serde(default)]
    pub mcp_client: Option<String>,
    #[serde(default)]
    pub mcp_server: Option<String>,
    /// The container whose file this is (`--container`): `file` is its path there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_container: Option<Container>,
    /// The opener's container, when it runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The file is the `/proc/PID/environ` of this process (an MCP server's): whose
    /// environment was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// A container, as records name it: `id` and `runtime` from the process's cgroup, the rest
/// from the runtime's daemon (Docker) and the kubelet's labels, when they answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub runtime: Runtime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Which container runtime a cgroup path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Runtime {
    #[serde(rename = "docker")]
    Docker,
    #[serde(rename = "containerd")]
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    #[serde(rename = "podman")]
    Podman,
}

/// The process whose environment (`/proc/PID/environ`) an open read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub exe: String,
    /// With secrets redacted.
    pub cmdline: Vec<String>,
    pub mcp_server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// A container the agent watched files of (`--container`) stopped: those watches are dropped.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerExit {
    pub container: Container,
    /// The container's paths that were watched.
    pub files: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `open` records written since start.
    pub events: u64,
    /// Records the kernel could not queue (ring buffer full), since start.
    pub lost: u64,
    pub lost_open: u64,
    pub lost_process: u64,
    pub canary: CanaryState,
    pub watched: usize,
    pub processes: usize,
    #[serde(rename = "final", default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub lost_open: u64,
    pub lost_process: u64,
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The kernel's encoding of a device (`MKDEV(major, minor)`, as in `super_block.s_dev`) of a
/// user-space `st_dev` (Linux's encoding, glibc's `major`/`minor`).
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = (((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & 0xffff_f000)) as u32;
    let minor = ((st_dev & 0xff) | ((st_dev >> 12) & 0xffff_ff00)) as u32;
    (major << 20) | (minor & 0xfffff)
}

/// A user-space `st_dev` of (major, minor) on Linux (glibc's `makedev`).
pub fn linux_st_dev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xfff) << 8)
        | ((major & 0xffff_f000) << 32)
        | (minor & 0xff)
        | ((minor & 0xffff_ff00) << 12)
}

/// `major:minor`, as records name a device.
pub fn dev_string(kernel_dev: u32) -> String {
    format!("{}:{}", kernel_dev >> 20, kernel_dev & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_record_reads_back_as_the_agent_wrote_it() {
        let open = Open {
            file: "/h/.cursor/mcp.json".into(),
            dev: Some(dev_string(kernel_dev(linux_st_dev(8, 1)))),
            ino: Some(42),
            syscall: Some(Syscall::Openat),
            flags: linux_flags::O_RDWR,
            access: Some(Access::of_flags(linux_flags::O_RDWR)),
            result: 3,
            pid: 10,
            tid: 11,
            ppid: 1,
            uid: 1000,
            gid: 1000,
            comm: "cat".into(),
            exe: "/usr/bin/cat".into(),
            cmdline: vec!["cat".into()],
            ancestry: vec![Ancestor {
                pid: 1,
                exe: "/sbin/init".into(),
            }],
            cgroup_id: 7,
            verdict: Verdict::Alert,
            policy_rule: Some("mcp-configs".into()),
            mcp_client: Some("cursor".into()),
            mcp_server: None,
            container: Some(Container {
                id: "ab".repeat(32),
                name: Some("web\"1\n".into()),
                image: Some("busybox:1".into()),
                runtime: Runtime::CriO,
                pod: None,
                namespace: None,
            }),
            target: None,
            file_container: None,
        };
        let record = Record::Open(Box::new(open.clone()));
        let time = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let line = serde_json::to_string(&Line {
            time: rfc3339(time),
            seq: 3,
            prev: "00",
            host: "vm",
            record: &record,
        })
        .unwrap();
        assert!(line.contains(r#""type":"open""#), "{line}");
        assert!(line.contains(r#""dev":"8:1""#), "{line}");
        assert!(line.contains(r#""access":"read-write""#), "{line}");
        assert!(line.contains(r#""syscall":"openat""#), "{line}");
        assert!(line.contains(r#""host":"vm""#), "{line}");
        assert!(line.contains(r#""runtime":"cri-o""#), "{line}");
        assert!(line.contains(r#""name":"web\"1\n""#), "{line}");
        assert!(!line.contains("target"), "{line}");
        let read: OpenLine = serde_json::from_str(&line).unwrap();
        assert_eq!(read.time, time);
        assert_eq!(
            serde_json::to_value(&read.open).unwrap(),
            serde_json::to_value(&open).unwrap()
        );
        assert!(matches!(
            serde_json::from_str::<Record>(&line).unwrap(),
            Record::Open(_)
        ));
    }

    #[test]
    fn flags_say_how_a_file_was_opened() {
        use linux_flags::*;
        assert_eq!(Access::of_flags(O_RDONLY), Access::Read);
        assert_eq!(Access::of_flags(O_WRONLY), Access::Write);
        assert_eq!(Access::of_flags(O_PATH | O_RDONLY), Access::Path);
    }

    /// The records' flags and devices are Linux's, read the same on every system.
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_flags_and_devices_are_the_kernels() {
        use linux_flags::*;
        assert_eq!(O_RDONLY, libc::O_RDONLY as u32);
        assert_eq!(O_WRONLY, libc::O_WRONLY as u32);
        assert_eq!(O_RDWR, libc::O_RDWR as u32);
        assert_eq!(O_ACCMODE, libc::O_ACCMODE as u32);
        assert_eq!(O_PATH, libc::O_PATH as u32);
        for (major, minor) in [
            (8, 1),
            (259, 0x12345),
            (0xfff, 0xff),
            (0x12345, 0xabcdef),
            (0, 0),
        ] {
            let st_dev = libc::makedev(major, minor);
            assert_eq!(linux_st_dev(major, minor), st_dev);
            assert_eq!(
                kernel_dev(st_dev),
                (libc::major(st_dev) << 20) | (libc::minor(st_dev) & 0xfffff)
            );
        }
    }
}
