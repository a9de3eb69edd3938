//! The agent's output: JSON lines, one record each, every one with `type`, `time` (RFC 3339,
//! nanoseconds) and `seq`.
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::process::Ancestor;

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    Ready(Ready),
    Open(Box<Open>),
    Heartbeat(Heartbeat),
    Gap(Gap),
    ConfigChange(ConfigChange),
}

/// A watched file's keys changed: fingerprints only, never the secrets.
#[derive(Debug, Serialize)]
pub struct ConfigChange {
    pub file: String,
    /// Keys in the file now that were not before: a plaintext key was just written.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// `alert` when a key was added, else `allow`.
    pub verdict: &'static str,
    pub policy_rule: Option<String>,
    pub mcp_client: Option<String>,
    /// The file is gone (deleted or renamed away).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Why the new contents could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Ready {
    pub pid: u32,
    pub programs: Vec<String>,
    pub ring_buffer_bytes: u32,
    pub watched: Vec<WatchedFile>,
    /// Paths asked for that could not be watched, with the reason.
    pub not_watched: Vec<NotWatched>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WatchedFile {
    pub file: String,
    pub dev: String,
    pub ino: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_client: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NotWatched {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Open {
    pub file: String,
    pub dev: String,
    pub ino: u64,
    pub syscall: &'static str,
    pub flags: u32,
    pub access: &'static str,
    pub result: i64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub ancestry: Vec<Ancestor>,
    pub cgroup_id: u64,
    pub verdict: &'static str,
    pub policy_rule: Option<String>,
    pub mcp_client: Option<String>,
    pub mcp_server: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Heartbeat {
    /// `open` records written since start.
    pub events: u64,
    /// Records the kernel could not queue (ring buffer full), since start.
    pub lost: u64,
    pub lost_open: u64,
    pub lost_process: u64,
    pub canary: &'static str,
    pub watched: usize,
    pub processes: usize,
    #[serde(rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
}

#[derive(Debug, Serialize)]
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
