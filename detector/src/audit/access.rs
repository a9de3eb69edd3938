//! The agent's access log joined to the keys: every `open` record of a file that holds a key
//! becomes one of the key's `accessed_by`, and a reader the policy did not allow (`alert`)
//! makes the key `read-by-unexpected-process`.
//!
//! A record names its file by path and by identity (`dev` as `major:minor`, `ino`); a location
//! that knows its file's identity joins by it too, so an open through a hard link, a bind mount
//! or a renamed path still counts.
use std::{
    collections::{BTreeSet, HashMap},
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::{assess, key::Access, Key, Location};
use crate::{
    event::{dev_string, kernel_dev, OpenLine, Verdict},
    source::{Container, Origin},
};

/// The `open` records of one or more event files.
#[derive(Debug, Default)]
pub struct AccessLog {
    opens: Vec<OpenRecord>,
}

#[derive(Debug, Clone)]
struct OpenRecord {
    access: Access,
    /// `major:minor`, as the agent writes it.
    dev: Option<String>,
    ino: Option<u64>,
}

/// What one events file held: how many records, and the lines that could not be used.
#[derive(Debug, Default)]
pub struct LogRead {
    pub records: u64,
    pub opens: u64,
    pub bytes: u64,
    /// `(line, reason)`, 1-based.
    pub malformed: Vec<(usize, String)>,
}

#[derive(Deserialize)]
struct RecordType {
    #[serde(rename = "type")]
    kind: String,
}

impl AccessLog {
    /// Add the `open` records of the events file at `path`. Lines that are not records, and
    /// `open` records that lack what the join needs, are listed with their line number and
    /// skipped; the rest of the file is still read. Only an unreadable file is an error.
    pub fn read_file(&mut self, path: &Path) -> std::io::Result<LogRead> {
        let file = File::open(path)?;
        self.read(BufReader::new(file))
    }

    pub fn read(&mut self, reader: impl BufRead) -> std::io::Result<LogRead> {
        let mut read = LogRead::default();
        for (index, line) in reader.split(b'\n').enumerate() {
            let line = line?;
            let number = index + 1;
            read.bytes += line.len() as u64 + 1;
            let text = match std::str::from_utf8(&line) {
                Ok(text) => text.trim(),
                Err(_) => {
                    read.malformed.push((number, "not UTF-8 text".to_string()));
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            match parse_line(text) {
                Ok(Some(open)) => {
                    read.records += 1;
                    read.opens += 1;
                    self.opens.push(open);
                }
                Ok(None) => read.records += 1,
                Err(reason) => read.malformed.push((number, reason)),
            }
        }
        Ok(read)
    }

    pub fn is_empty(&self) -> bool {
        self.opens.is_empty()
    }

    /// Give each key the opens of the files that hold it, and re-assess its violations.
    pub fn join(&self, keys: &mut [Key], max_age_days: u64) {
        let mut by_identity: HashMap<(&str, u64), Vec<usize>> = HashMap::new();
        let mut by_path: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (i, open) in self.opens.iter().enumerate() {
            if let (Some(dev), Some(ino)) = (&open.dev, open.ino) {
                by_identity.entry((dev.as_str(), ino)).or_default().push(i);
            }
            by_path
                .entry(open.access.file.as_path())
                .or_default()
                .push(i);
        }
        for key in keys.iter_mut() {
            let mut matched: BTreeSet<usize> = BTreeSet::new();
            for location in &key.locations {
                let Some(file) = host_file(location) else {
                    continue;
                };
                matched.extend(by_path.get(file).into_iter().flatten());
                if let Some(identity) = identity(location) {
                    matched.extend(
                        by_identity
                            .get(&(identity.0.as_str(), identity.1))
                            .into_iter()
                            .flatten(),
                    );
                }
            }
            if matched.is_empty() {
                continue;
            }
            // One entry per process and file (its first open): a client that re-reads its
            // config is one reader, not hundreds.
            let mut accessed: Vec<Access> = key.accessed_by.clone();
            let reader = |a: &Access| (a.pid, a.uid, a.exe.clone(), a.file.clone(), a.allowed);
            let mut readers: HashMap<_, usize> = accessed
                .iter()
                .enumerate()
                .map(|(i, a)| (reader(a), i))
                .collect();
            for i in matched {
                let access = &self.opens[i].access;
                match readers.get(&reader(access)) {
                    Some(&at) => accessed[at].time = accessed[at].time.min(access.time),
                    None => {
                        readers.insert(reader(access), accessed.len());
                        accessed.push(access.clone());
                    }
                }
            }
            accessed.sort_by(|a, b| (a.time, a.pid, &a.file).cmp(&(b.time, b.pid, &b.file)));
            key.accessed_by = accessed;
            assess(key, max_age_days);
        }
    }
}

/// `Ok(None)` for a record of another type (`ready`, `heartbeat`, `gap`, `config-change`).
fn parse_line(text: &str) -> Result<Option<OpenRecord>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON record ({e})"))?;
    let kind = RecordType::deserialize(&value)
        .map_err(|_| "not an agent record (no `type`)".to_string())?
        .kind;
    if kind != "open" {
        return Ok(None);
    }
    let line = OpenLine::deserialize(&value)
        .map_err(|e| format!("`open` record without what a join needs: {e}"))?;
    let OpenLine { time, open } = line;
    Ok(Some(OpenRecord {
        access: Access {
            time,
            pid: open.pid,
            exe: open.exe,
            comm: open.comm,
            uid: open.uid,
            file: PathBuf::from(open.file),
            allowed: open.verdict == Verdict::Allow,
        },
        dev: open.dev,
        ino: open.ino,
    }))
}

/// The file on this host whose opens read the key: the file itself, or the archive holding it.
/// Git objects and image layers are read through their repository or image, not by path.
fn host_file(location: &Location) -> Option<&Path> {
    match location.origin() {
        Origin::File(_) | Origin::McpConfig(_) | Origin::ManagedStore(_) => Some(location.path()),
        Origin::ArchiveMember(member) => match member.container {
            Container::File(_) => Some(&member.archive),
            Container::ImageLayer(_) => None,
        },
        Origin::Git(_)
        | Origin::GitCommitMessage(_)
        | Origin::ImageLayer(_)
        | Origin::ImageConfig(_)
        | Origin::Container(_) => None,
    }
}

/// `(major:minor, inode)` as the agent writes them.
fn identity(location: &Location) -> Option<(String, u64)> {
    // The identity is of the file at `path`; for an archive member that is the member's, not
    // the archive's, so only path joins there.
    let (Origin::File(file) | Origin::McpConfig(file) | Origin::ManagedStore(file)) =
        location.origin()
    else {
        return None;
    };
    Some((dev_string(kernel_dev(file.dev?)), file.inode?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_at(path: &str, dev: Option<u64>, inode: Option<u64>) -> Key {
        Key {
            fingerprint: "hmac-sha256:00".into(),
            rule: "r".into(),
            provider: "Example".into(),
            severity: crate::detect::Severity::High,
            description: String::new(),
            redacted: "…".into(),
            secret: None,
            status: super::super::Status::Live,
            verification: None,
            rotated_to: None,
            first_seen: None,
            last_seen: None,
            age_days: None,
            overdue: false,
            slots: Vec::new(),
            scope: Default::default(),
            violations: Vec::new(),
            rotate_at: None,
            locations: vec![Location::at(crate::source::Provenance {
                path: path.into(),
                origin: Origin::File(crate::source::DiskFile {
                    dev,
                    inode,
                    ..Default::default()
                }),
                backup: None,
            })],
            accessed_by: Vec::new(),
            remediation: Vec::new(),
            held_in_store: false,
        }
    }

    fn open(file: &str, dev: &str, ino: u64, verdict: &str, pid: u32) -> String {
        serde_json::json!({
            "type": "open", "time": "2025-06-01T10:00:00.123456789Z", "seq": pid,
            "file": file, "dev": dev, "ino": ino, "pid": pid, "tid": pid, "ppid": 1,
            "uid": 1000, "gid": 1000, "comm": "cat", "exe": "/usr/bin/cat", "cmdline": ["cat"],
            "verdict": verdict, "policy_rule": null, "mcp_client": null, "mcp_server": null
        })
        .to_string()
    }

    #[test]
    fn joins_by_path_and_by_identity() {
        let st_dev = crate::event::linux_st_dev(8, 1);
        let events = [
            r#"{"type":"ready","time":"2025-06-01T09:00:00Z","seq":0}"#.to_string(),
            open("/h/.cursor/mcp.json", "8:1", 42, "allow", 10),
            // The same inode under another name (a hard link).
            open("/h/link.json", "8:1", 42, "alert", 11),
            open("/elsewhere", "8:1", 43, "alert", 12),
            // The same process opening the same file again.
            open("/h/.cursor/mcp.json", "8:1", 42, "allow", 10),
        ]
        .join("\n");
        let mut log = AccessLog::default();
        let read = log.read(events.as_bytes()).unwrap();
        assert_eq!((read.records, read.opens), (5, 4));
        assert!(read.malformed.is_empty());

        let mut keys = vec![
            key_at("/h/.cursor/mcp.json", Some(st_dev), Some(42)),
            key_at("/other", None, None),
        ];
        assess(&mut keys[0], 90);
        log.join(&mut keys, 90);
        let pids: Vec<u32> = keys[0].accessed_by.iter().map(|a| a.pid).collect();
        assert_eq!(pids, [10, 11]);
        assert!(keys[0].accessed_by[0].allowed);
        assert!(!keys[0].accessed_by[1].allowed);
        assert!(keys[0]
            .violations
            .contains(&super::super::Violation::ReadByUnexpectedProcess));
        assert!(keys[0]
            .remediation
            .iter()
            .any(|r| r.contains("/usr/bin/cat (uid 1000) opened /h/link.json")));
        assert!(keys[1].accessed_by.is_empty());

        // Joining twice adds nothing.
        log.join(&mut keys, 90);
        assert_eq!(keys[0].accessed_by.len(), 2);
    }

    #[test]
    fn malformed_lines_are_named_and_skipped() {
        let events = [
            open("/a", "8:1", 1, "allow", 1),
            "{not json".to_string(),
            r#"{"no_type":1}"#.to_string(),
            r#"{"type":"open","time":"2025-06-01T10:00:00Z"}"#.to_string(),
            String::new(),
            open("/b", "8:1", 2, "maybe", 2),
            open("/c", "8:1", 3, "alert", 3),
        ]
        .join("\n");
        let mut log = AccessLog::default();
        let read = log.read(events.as_bytes()).unwrap();
        let lines: Vec<usize> = read.malformed.iter().map(|m| m.0).collect();
        assert_eq!(lines, [2, 3, 4, 6]);
        assert!(read.malformed[0].1.contains("not a JSON record"));
        assert!(read.malformed[2].1.contains("missing field"));
        assert_eq!(read.opens, 2);
    }
}
