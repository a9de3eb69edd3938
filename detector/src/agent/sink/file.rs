//! The events file: appended, rotated by size (`FILE` → `FILE.1` → … → `FILE.N`), and read
//! back at start so that a restarted agent continues the chain where the last one stopped.
use std::{
    ffi::OsString,
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Write},
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use super::SinkError;
use crate::agent::chain::Tail;

/// Longest last line read back to continue a chain; a record is far smaller.
const MAX_LINE: u64 = 16 << 20;

#[derive(Debug, Clone)]
pub struct FileOptions {
    pub path: PathBuf,
    /// Start a new file when the current one would grow past this; 0: never.
    pub rotate_size: u64,
    /// Rotated files kept; older ones are deleted. 0: none are kept.
    pub rotate_keep: u32,
}

/// The chain found in an existing log.
pub struct Resumed {
    pub tail: Tail,
    /// Bytes of an unterminated last line (a write cut short), removed before appending.
    pub torn_bytes: u64,
}

pub struct RotatingFile {
    options: FileOptions,
    out: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    pub fn open(options: &FileOptions) -> Result<(RotatingFile, Option<Resumed>), SinkError> {
        let path = &options.path;
        let file = open_append(path)?;
        let (last, complete) = last_line(&file).map_err(file_error("read", path))?;
        let len = file.metadata().map_err(file_error("read", path))?.len();
        let torn_bytes = len - complete;
        if torn_bytes > 0 {
            // Appending after half a record would glue the next one to it.
            file.set_len(complete)
                .map_err(|error| SinkError::CutTornLine {
                    path: path.clone(),
                    error,
                })?;
        }
        let tail_line = match last {
            Some(line) => Some((line, path.clone())),
            // Rotated just before the last stop: the chain ends in FILE.1.
            None => {
                let rotated = numbered(path, 1);
                match File::open(&rotated) {
                    Ok(file) => last_line(&file)
                        .map_err(file_error("read", &rotated))?
                        .0
                        .map(|line| (line, rotated)),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                    Err(err) => return Err(file_error("read", &rotated)(err)),
                }
            }
        };
        let resumed = match tail_line {
            Some((line, from)) => match Tail::parse(&line) {
                Ok(tail) => Some(Resumed { tail, torn_bytes }),
                Err(error) => return Err(SinkError::NotAChain { path: from, error }),
            },
            None => None,
        };
        Ok((
            RotatingFile {
                options: options.clone(),
                out: BufWriter::with_capacity(1 << 16, file),
                size: complete,
            },
            resumed,
        ))
    }

    pub fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let len = line.len() as u64 + 1;
        let limit = self.options.rotate_size;
        if limit > 0 && self.size > 0 && self.size + len > limit {
            self.rotate()?;
        }
        self.out
            .write_all(line)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(file_error("write", &self.options.path))?;
        self.size += len;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.out
            .flush()
            .map_err(file_error("write", &self.options.path))
    }

    /// FILE.{keep-1} → FILE.{keep} (replacing the oldest), …, FILE → FILE.1, then a new FILE.
    fn rotate(&mut self) -> Result<(), SinkError> {
        self.flush()?;
        let path = &self.options.path;
        let rename = |from: &Path, to: &Path| -> Result<(), SinkError> {
            match fs::rename(from, to) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(SinkError::Rotate {
                    from: from.to_path_buf(),
                    to: to.to_path_buf(),
                    error,
                }),
            }
        };
        let keep = self.options.rotate_keep;
        if keep == 0 {
            fs::remove_file(path).map_err(|error| SinkError::RotateAway {
                path: path.clone(),
                error,
            })?;
        } else {
            for n in (1..keep).rev() {
                rename(&numbered(path, n), &numbered(path, n + 1))?;
            }
            rename(path, &numbered(path, 1))?;
        }
        self.out = BufWriter::with_capacity(1 << 16, open_append(path)?);
        self.size = 0;
        Ok(())
    }
}

/// An I/O error on the events file `path` while doing `action` (`open`, `read`, `write`).
fn file_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SinkError {
    let path = path.to_path_buf();
    move |error| SinkError::File {
        action,
        path,
        error,
    }
}

/// `FILE.n`.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        // Records name who read which secret file: not for every local user.
        .mode(0o600)
        .open(path)
        .map_err(file_error("open", path))
}

/// The last complete line (without its newline) and the length of the file up to and
/// including that line's newline: anything after it is an unterminated, torn write.
fn last_line(file: &File) -> io::Result<(Option<Vec<u8>>, u64)> {
    const CHUNK: u64 = 64 << 10;
    let len = file.metadata()?.len();
    // buf holds the file's bytes [start, len).
    let mut buf: Vec<u8> = Vec::new();
    let mut start = len;
    loop {
        match buf.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                if let Some(begin) = buf[..end].iter().rposition(|&b| b == b'\n') {
                    return Ok((Some(buf[begin + 1..end].to_vec()), start + end as u64 + 1));
                }
                if start == 0 {
                    return Ok((Some(buf[..end].to_vec()), end as u64 + 1));
                }
            }
            None if start == 0 => return Ok((None, 0)),
            None => {}
        }
        if len - start > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("its last line is longer than {MAX_LINE} bytes"),
            ));
        }
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (start - from) as usize];
        file.read_exact_at(&mut chunk, from)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last(content: &[u8]) -> (Option<String>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, content).unwrap();
        let (line, complete) = last_line(&File::open(&path).unwrap()).unwrap();
        (line.map(|l| String::from_utf8(l).unwrap()), complete)
    }

    #[test]
    fn the_last_complete_line_and_where_it_ends() {
        assert_eq!(last(b""), (None, 0));
        assert_eq!(last(b"torn"), (None, 0));
        assert_eq!(last(b"a\n"), (Some("a".into()), 2));
        assert_eq!(last(b"a\nbb\n"), (Some("bb".into()), 5));
        assert_eq!(last(b"a\nbb\ncc"), (Some("bb".into()), 5));
        let long = "x".repeat(200_000);
        let content = format!("a\n{long}\n{long}");
        assert_eq!(last(content.as_bytes()), (Some(long.clone()), 200_003));
    }

    #[test]
    fn rotation_shifts_files_and_keeps_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let options = FileOptions {
            path: path.clone(),
            rotate_size: 10,
            rotate_keep: 2,
        };
        let (mut file, resumed) = RotatingFile::open(&options).unwrap();
        assert!(resumed.is_none());
        for line in ["one", "two", "three", "four"] {
            file.write_line(format!("{line}......").as_bytes()).unwrap();
        }
        file.flush().unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(path.clone()), "four......\n");
        assert_eq!(read(numbered(&path, 1)), "three......\n");
        assert_eq!(read(numbered(&path, 2)), "two......\n");
        assert!(!numbered(&path, 3).exists());
    }
}
