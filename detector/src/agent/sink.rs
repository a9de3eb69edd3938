//! Where the agent's records go: standard output, a file with size-based rotation, and any
//! number of syslog destinations, in any combination.
//!
//! Every record is serialized once and the same line goes everywhere, with its `seq` and
//! `prev` (the hash chain, see [`super::chain`]). Appending to an existing file continues that
//! file's chain and first writes a `gap` record for the time the agent was not running.
mod file;
pub mod syslog;

use std::{
    io::{self, BufWriter, Stdout, Write},
    path::PathBuf,
};

use chrono::{DateTime, Utc};

pub use self::file::FileOptions;
use self::{
    file::RotatingFile,
    syslog::{ConnectError, Destination},
};
use super::chain::{self, Link};
use crate::event::{rfc3339, Gap, Line, Record};

/// An output the records cannot go to, or a command line that names outputs wrongly.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--events names two files ({} and {second}): give at most one FILE (and `-`); one file holds one hash chain", first.display())]
    TwoEventFiles { first: PathBuf, second: String },
    #[error("--syslog {0}: expected unix:PATH, udp:HOST:PORT or tcp:HOST:PORT (e.g. unix:/dev/log, udp:127.0.0.1:514)")]
    SyslogUsage(String),
    #[error("cannot write events to standard output: {0}")]
    Stdout(io::Error),
    /// `action` is `open`, `read` or `write`.
    #[error("cannot {action} events file {}: {error}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("cannot cut the torn last line of {}: {error}", path.display())]
    CutTornLine { path: PathBuf, error: io::Error },
    #[error("cannot rotate {} to {}: {error}", from.display(), to.display())]
    Rotate {
        from: PathBuf,
        to: PathBuf,
        error: io::Error,
    },
    /// `--rotate-keep 0`: the full file is deleted, and that failed.
    #[error("cannot rotate {} away: {error}", path.display())]
    RotateAway { path: PathBuf, error: io::Error },
    #[error("cannot continue the hash chain of {}: its last line is not a detector record ({error}); move the file away or choose another --events file", path.display())]
    NotAChain {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("cannot reach syslog {destination}: {error}")]
    SyslogUnreachable {
        destination: Destination,
        error: ConnectError,
    },
    #[error("cannot start the syslog thread: {0}")]
    SyslogThread(io::Error),
    /// A record that does not serialize (a bug: records are plain data).
    #[error(transparent)]
    Serialize(serde_json::Error),
}

/// Which outputs, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub stdout: bool,
    pub file: Option<FileOptions>,
    pub syslog: Vec<Destination>,
    pub facility: syslog::Facility,
}

impl Options {
    /// `--events` values (`-` or one FILE) and `--syslog` destinations; standard output when
    /// neither is given.
    pub fn new(
        events: &[String],
        rotate_size: u64,
        rotate_keep: u32,
        syslog: &[String],
        facility: syslog::Facility,
    ) -> Result<Options, SinkError> {
        let mut options = Options {
            stdout: events.is_empty() && syslog.is_empty(),
            file: None,
            syslog: Vec::new(),
            facility,
        };
        for target in events {
            if target == "-" {
                options.stdout = true;
                continue;
            }
            if let Some(file) = &options.file {
                return Err(SinkError::TwoEventFiles {
                    first: file.path.clone(),
                    second: target.clone(),
                });
            }
            options.file = Some(FileOptions {
                path: target.into(),
                rotate_size,
                rotate_keep,
            });
        }
        for destination in syslog {
            options.syslog.push(destination.parse()?);
        }
        Ok(options)
    }
}

pub struct Sink {
    /// The last record written: the next one's `seq - 1` and `prev`.
    last: Link,
    line: Vec<u8>,
    stdout: Option<BufWriter<Stdout>>,
    file: Option<RotatingFile>,
    syslog: Vec<syslog::Sender>,
    formatter: syslog::Formatter,
    /// The host's name, in every record.
    host: String,
}

impl Sink {
    pub fn open(options: &Options) -> Result<Sink, SinkError> {
        let (file, resumed) = match &options.file {
            Some(file_options) => {
                let (file, resumed) = RotatingFile::open(file_options)?;
                (Some(file), resumed)
            }
            None => (None, None),
        };
        let syslog = options
            .syslog
            .iter()
            .map(syslog::Sender::start)
            .collect::<Result<Vec<_>, _>>()?;
        let mut sink = Sink {
            last: resumed
                .as_ref()
                .map_or_else(Link::genesis, |r| r.tail.link.clone()),
            line: Vec::with_capacity(4096),
            stdout: options
                .stdout
                .then(|| BufWriter::with_capacity(1 << 16, io::stdout())),
            file,
            syslog,
            formatter: syslog::Formatter::new(options.facility),
            host: hostname(),
        };
        if let Some(resumed) = resumed {
            // The time between the last record of the file and now is time nobody watched.
            let now = Utc::now();
            let mut reason = String::from("agent was not running");
            if !resumed.tail.clean_stop {
                reason.push_str(" (it stopped without a final heartbeat: killed or crashed)");
            }
            if resumed.torn_bytes > 0 {
                reason.push_str(&format!(
                    "; the {} bytes of a record cut short by that stop were dropped",
                    resumed.torn_bytes
                ));
            }
            let gap = Gap {
                from: resumed.tail.time,
                to: rfc3339(now),
                reason,
                lost_open: 0,
                lost_process: 0,
            };
            sink.write(now, &Record::Gap(gap))?;
            sink.flush()?;
        }
        Ok(sink)
    }

    pub fn write(&mut self, time: DateTime<Utc>, record: &Record) -> Result<(), SinkError> {
        let seq = self.last.seq + 1;
        self.line.clear();
        serde_json::to_writer(
            &mut self.line,
            &Line {
                time: rfc3339(time),
                seq,
                prev: &self.last.hash,
                host: &self.host,
                record,
            },
        )
        .map_err(SinkError::Serialize)?;
        self.last = Link {
            seq,
            hash: chain::hash(&self.line),
        };
        if let Some(out) = &mut self.stdout {
            out.write_all(&self.line)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(SinkError::Stdout)?;
        }
        if let Some(file) = &mut self.file {
            file.write_line(&self.line)?;
        }
        if !self.syslog.is_empty() {
            let message = self.formatter.format(time, seq, &self.line);
            for destination in &mut self.syslog {
                destination.send(message.clone());
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(out) = &mut self.stdout {
            out.flush().map_err(SinkError::Stdout)?;
        }
        if let Some(file) = &mut self.file {
            file.flush()?;
        }
        Ok(())
    }
}

/// The host's name (`/proc/sys/kernel/hostname`, else `gethostname`), empty when neither
/// answers.
pub fn hostname() -> String {
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim();
        if !name.is_empty() {
            return name.to_string();
        }
    }
    let mut buffer = [0u8; 256];
    // SAFETY: a valid buffer of the given length; gethostname NUL-terminates within it.
    if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len() - 1) } != 0 {
        return String::new();
    }
    let len = buffer.iter().position(|&b| b == 0).unwrap_or(0);
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}
