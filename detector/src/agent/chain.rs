//! The hash chain over the agent's records, and its verification.
//!
//! Every record carries `seq` and `prev`: the SHA-256 (hex) of the exact bytes of the record
//! before it, newline excluded. The first record of a chain carries the hash of [`GENESIS`].
//! Rotation and restarts continue the chain, so the files of one host form a single sequence
//! and `detector log verify` can say where a record was removed, altered or moved.
//!
//! The hash is unkeyed: someone who can rewrite the whole file can also rewrite every hash
//! after an edit. What the chain gives is that any such rewrite changes the hash of every
//! later record, so it no longer matches a copy already shipped off the host (syslog, a log
//! shipper), and a naive edit is caught by the file alone.
use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{self, BufRead, BufReader},
    path::{Path, PathBuf},
};

use ring::digest::{digest, SHA256};
use serde::Deserialize;

/// What the first record of a chain hashes as its predecessor.
pub const GENESIS: &[u8] = b"detector/events/v1 genesis";

/// SHA-256 of one serialized record (without its newline), in hex.
pub fn hash(line: &[u8]) -> String {
    hex::encode(digest(&SHA256, line))
}

/// The `prev` of the first record of a chain.
pub fn genesis() -> String {
    hash(GENESIS)
}

/// Where a chain stands: the seq and hash of the last record written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: u64,
    pub hash: String,
}

impl Link {
    pub fn genesis() -> Link {
        Link {
            seq: 0,
            hash: genesis(),
        }
    }
}

/// The last record of an existing log, read to continue its chain.
#[derive(Debug, Clone)]
pub struct Tail {
    pub link: Link,
    pub time: String,
    /// The record was the final heartbeat: the agent stopped cleanly.
    pub clean_stop: bool,
}

impl Tail {
    pub fn parse(line: &[u8]) -> Result<Tail, serde_json::Error> {
        #[derive(Deserialize)]
        struct Fields {
            seq: u64,
            time: String,
            #[serde(rename = "type")]
            kind: String,
            #[serde(rename = "final", default)]
            last: bool,
        }
        let fields: Fields = serde_json::from_slice(line)?;
        Ok(Tail {
            link: Link {
                seq: fields.seq,
                hash: hash(line),
            },
            time: fields.time,
            clean_stop: fields.kind == "heartbeat" && fields.last,
        })
    }
}

/// A line of a file given to `verify`: file index (into [`Verification::files`]) and 1-based
/// line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub file: usize,
    pub line: usize,
}

/// What is wrong, and where.
#[derive(Debug)]
pub enum Problem {
    /// A line that is not a chained record.
    NotARecord {
        at: At,
        reason: BadRecord,
    },
    /// The last line of a file has no newline: cut short.
    Torn {
        at: At,
    },
    /// Seqs missing between two records that are present.
    Missing {
        first: u64,
        last: u64,
        after: At,
        before: At,
    },
    /// The record's bytes no longer hash to what the next record says came before it.
    Altered {
        seq: u64,
        at: At,
        next_seq: u64,
        next_at: At,
    },
    /// Seq 1 whose `prev` is not the genesis hash.
    NotGenesis {
        at: At,
    },
    /// A record away from its place: it belongs right after `belongs_after`.
    OutOfOrder {
        seq: u64,
        at: At,
        belongs_after: Option<(u64, At)>,
    },
    Duplicate {
        seq: u64,
        at: At,
        first_at: At,
    },
}

/// Why a line is not a chained record.
#[derive(Debug, thiserror::Error)]
pub enum BadRecord {
    #[error("empty line")]
    Empty,
    #[error("not a JSON object: {0}")]
    NotJson(serde_json::Error),
    #[error("no seq")]
    NoSeq,
    #[error("no prev")]
    NoPrev,
}

/// A file given to [`verify`] that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}: {error}", path.display())]
pub struct VerifyError {
    pub path: PathBuf,
    pub error: io::Error,
}

impl Problem {
    pub fn at(&self) -> At {
        match self {
            Problem::NotARecord { at, .. }
            | Problem::Torn { at }
            | Problem::Altered { at, .. }
            | Problem::NotGenesis { at }
            | Problem::OutOfOrder { at, .. }
            | Problem::Duplicate { at, .. } => *at,
            Problem::Missing { before, .. } => *before,
        }
    }
}

impl Problem {
    /// The seq the problem is about, when it is about one (the first of those missing).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Problem::NotARecord { .. } | Problem::Torn { .. } => None,
            Problem::NotGenesis { .. } => Some(1),
            Problem::Missing { first, .. } => Some(*first),
            Problem::Altered { seq, .. }
            | Problem::OutOfOrder { seq, .. }
            | Problem::Duplicate { seq, .. } => Some(*seq),
        }
    }
}

/// The outcome of [`verify`]: intact when `problems` is empty.
#[derive(Debug)]
pub struct Verification {
    /// The files, in the order their records were taken (by first seq).
    pub files: Vec<PathBuf>,
    /// The files were given in another order.
    pub reordered_files: bool,
    pub records: usize,
    /// First and last seq (by position), where the chain starts and ends.
    pub first: Option<(u64, At)>,
    pub last: Option<(u64, At, bool)>,
    pub problems: Vec<Problem>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// `FILE:LINE`.
    pub fn place(&self, at: At) -> String {
        format!("{}:{}", self.files[at.file].display(), at.line)
    }

    pub fn describe(&self, problem: &Problem) -> String {
        let place = |at| self.place(at);
        match problem {
            Problem::NotARecord { at, reason } => {
                format!("{}: not a chained record ({reason})", place(*at))
            }
            Problem::Torn { at } => format!(
                "{}: the last line has no newline: cut short (or still being written)",
                place(*at)
            ),
            Problem::Missing {
                first,
                last,
                after,
                before,
            } => {
                let seqs = if first == last {
                    format!("seq {first} is")
                } else {
                    format!("seq {first}..{last} are")
                };
                format!(
                    "{}: {seqs} missing between {} and here: removed",
                    place(*before),
                    place(*after)
                )
            }
            Problem::Altered {
                seq,
                at,
                next_seq,
                next_at,
            } => format!(
                "{}: seq {seq}: altered: its hash does not match the prev of seq {next_seq} ({})",
                place(*at),
                place(*next_at)
            ),
            Problem::NotGenesis { at } => format!(
                "{}: seq 1: altered: its prev is not the genesis hash",
                place(*at)
            ),
            Problem::OutOfOrder {
                seq,
                at,
                belongs_after: Some((after_seq, after_at)),
            } => format!(
                "{}: seq {seq}: out of order: it belongs after seq {after_seq} ({})",
                place(*at),
                place(*after_at)
            ),
            Problem::OutOfOrder {
                seq,
                at,
                belongs_after: None,
            } => format!("{}: seq {seq}: out of order: it belongs first", place(*at)),
            Problem::Duplicate { seq, at, first_at } => format!(
                "{}: seq {seq}: duplicate of {}",
                place(*at),
                place(*first_at)
            ),
        }
    }
}

/// One record as verification sees it.
#[derive(Debug, Clone)]
struct Entry {
    at: At,
    seq: u64,
    prev: String,
    hash: String,
    final_heartbeat: bool,
}

/// One file, read: its records and its bad lines.
pub(crate) struct Read {
    entries: Vec<Entry>,
    problems: Vec<Problem>,
}

/// Checks the chain over `paths`, taken in the order of their first seq. An I/O error names
/// the file.
pub fn verify(paths: &[PathBuf]) -> Result<Verification, VerifyError> {
    let mut read = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        read.push(read_file(path, index).map_err(|error| VerifyError {
            path: path.clone(),
            error,
        })?);
    }
    Ok(verify_read(paths, read))
}

/// Checks the chain of one file already read into memory (`detector store ingest` reads each
/// file once, and checks and stores the same bytes). `path` names the file in what is said.
pub fn verify_bytes(path: &Path, bytes: &[u8]) -> Verification {
    let read = match read_records(bytes, 0) {
        Ok(read) => read,
        // Reading from memory cannot fail; were it to, the file would hold no record.
        Err(_) => Read {
            entries: Vec::new(),
            problems: Vec::new(),
        },
    };
    verify_read(&[path.to_path_buf()], vec![read])
}

fn read_file(path: &Path, file: usize) -> io::Result<Read> {
    read_records(BufReader::with_capacity(1 << 16, File::open(path)?), file)
}

/// The records and bad lines of the `file`th file, read from `reader`.
pub(crate) fn read_records(mut reader: impl BufRead, file: usize) -> io::Result<Read> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let at = At { file, line: number };
        let complete = line.last() == Some(&b'\n');
        if complete {
            line.pop();
        } else {
            problems.push(Problem::Torn { at });
        }
        match parse_entry(&line, at) {
            Ok(entry) => entries.push(entry),
            Err(reason) => problems.push(Problem::NotARecord { at, reason }),
        }
    }
    Ok(Read { entries, problems })
}

fn parse_entry(line: &[u8], at: At) -> Result<Entry, BadRecord> {
    #[derive(Deserialize)]
    struct Fields {
        seq: Option<u64>,
        prev: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        #[serde(rename = "final", default)]
        last: bool,
    }
    if line.is_empty() {
        return Err(BadRecord::Empty);
    }
    let fields: Fields = serde_json::from_slice(line).map_err(BadRecord::NotJson)?;
    let seq = fields.seq.ok_or(BadRecord::NoSeq)?;
    let prev = fields.prev.ok_or(BadRecord::NoPrev)?;
    Ok(Entry {
        at,
        seq,
        prev,
        hash: hash(line),
        final_heartbeat: fields.kind.as_deref() == Some("heartbeat") && fields.last,
    })
}

pub(crate) fn verify_read(paths: &[PathBuf], read: Vec<Read>) -> Verification {
    // Files in the order of their first seq: rotated files given newest first, or by a glob
    // that sorts `events.jsonl.10` before `events.jsonl.2`, still make one sequence.
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| read[i].entries.first().map_or(u64::MAX, |e| e.seq));
    let reordered_files = order.iter().enumerate().any(|(i, &j)| i != j);
    let renumber: HashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new))
        .collect();
    let files = order.iter().map(|&i| paths[i].clone()).collect();
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut read: Vec<Option<Read>> = read.into_iter().map(Some).collect();
    for &old in &order {
        let Read {
            entries: file_entries,
            problems: file_problems,
        } = read[old].take().expect("each file once");
        let relocate = |at: At| At {
            file: renumber[&at.file],
            line: at.line,
        };
        problems.extend(
            file_problems
                .into_iter()
                .map(|p| relocate_problem(p, relocate)),
        );
        entries.extend(file_entries.into_iter().map(|mut e| {
            e.at = relocate(e.at);
            e
        }));
    }

    let first = entries.first().map(|e| (e.seq, e.at));
    let last = entries.last().map(|e| (e.seq, e.at, e.final_heartbeat));
    let records = entries.len();

    // Duplicates first: a second record with a seq already seen takes no further part.
    let mut first_at: HashMap<u64, At> = HashMap::new();
    let mut unique = Vec::with_capacity(entries.len());
    for entry in entries {
        match first_at.get(&entry.seq) {
            Some(&at) => problems.push(Problem::Duplicate {
                seq: entry.seq,
                at: entry.at,
                first_at: at,
            }),
            None => {
                first_at.insert(entry.seq, entry.at);
                unique.push(entry);
            }
        }
    }

    // Order: the records that stay in place are the longest run of increasing seqs; every
    // other one was moved, and is named once, not every record it jumped over.
    let in_place = longest_increasing(&unique.iter().map(|e| e.seq).collect::<Vec<_>>());
    let moved: Vec<(u64, At)> = unique
        .iter()
        .zip(&in_place)
        .filter(|(_, &kept)| !kept)
        .map(|(e, _)| (e.seq, e.at))
        .collect();

    // The chain, in seq order: moved records are reported once, here, and checked where
    // they belong, so a swap is one problem and not three.
    unique.sort_by_key(|e| e.seq);
    for (seq, at) in moved {
        let index = unique.partition_point(|e| e.seq < seq);
        problems.push(Problem::OutOfOrder {
            seq,
            at,
            belongs_after: index.checked_sub(1).map(|i| (unique[i].seq, unique[i].at)),
        });
    }
    if let Some(head) = unique.first() {
        if head.seq == 1 && head.prev != genesis() {
            problems.push(Problem::NotGenesis { at: head.at });
        }
    }
    let broken = |a: &Entry, b: &Entry| b.seq == a.seq + 1 && b.prev != a.hash;
    let mut blamed = HashSet::new();
    for (i, pair) in unique.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        if b.seq > a.seq + 1 {
            problems.push(Problem::Missing {
                first: a.seq + 1,
                last: b.seq - 1,
                after: a.at,
                before: b.at,
            });
        } else if broken(a, b) {
            // Altering a record breaks the link after it; altering its `prev` breaks the
            // link before it too. Two broken links in a row point at the record between.
            let next_broken = unique.get(i + 2).is_some_and(|c| broken(b, c));
            let (culprit, next) = if next_broken {
                (b, &unique[i + 2])
            } else {
                (a, b)
            };
            if blamed.insert(culprit.seq) {
                problems.push(Problem::Altered {
                    seq: culprit.seq,
                    at: culprit.at,
                    next_seq: next.seq,
                    next_at: next.at,
                });
            }
        }
    }
    problems.sort_by_key(|p| (p.at().file, p.at().line));

    Verification {
        files,
        reordered_files,
        records,
        first,
        last,
        problems,
    }
}

fn relocate_problem(problem: Problem, relocate: impl Fn(At) -> At) -> Problem {
    match problem {
        Problem::NotARecord { at, reason } => Problem::NotARecord {
            at: relocate(at),
            reason,
        },
        Problem::Torn { at } => Problem::Torn { at: relocate(at) },
        other => other,
    }
}

/// Marks one longest strictly increasing subsequence (patience sorting, O(n log n)).
fn longest_increasing(values: &[u64]) -> Vec<bool> {
    // tails[k]: index of the smallest last value of an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut parent = vec![usize::MAX; values.len()];
    for (i, &value) in values.iter().enumerate() {
        let k = tails.partition_point(|&t| values[t] < value);
        if k > 0 {
            parent[i] = tails[k - 1];
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; values.len()];
    let mut cursor = tails.last().copied();
    while let Some(i) = cursor {
        keep[i] = true;
        cursor = (parent[i] != usize::MAX).then(|| parent[i]);
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain of `n` records as the sink writes them.
    fn chain(n: u64) -> Vec<Vec<u8>> {
        let mut prev = genesis();
        (1..=n)
            .map(|seq| {
                let line = format!(
                    r#"{{"time":"2025-01-01T00:00:00.000000000Z","seq":{seq},"prev":"{prev}","type":"open","pid":{}}}"#,
                    1000 + seq
                )
                .into_bytes();
                prev = hash(&line);
                line
            })
            .collect()
    }

    fn check(files: &[&[Vec<u8>]]) -> Verification {
        let paths: Vec<PathBuf> = (0..files.len())
            .map(|i| PathBuf::from(format!("f{i}")))
            .collect();
        let read = files
            .iter()
            .enumerate()
            .map(|(file, lines)| {
                let mut entries = Vec::new();
                let mut problems = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    let at = At { file, line: i + 1 };
                    match parse_entry(line, at) {
                        Ok(e) => entries.push(e),
                        Err(reason) => problems.push(Problem::NotARecord { at, reason }),
                    }
                }
                Read { entries, problems }
            })
            .collect();
        verify_read(&paths, read)
    }

    fn described(v: &Verification) -> Vec<String> {
        v.problems.iter().map(|p| v.describe(p)).collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let v = check(&[&chain(20)]);
        assert!(v.intact(), "{:?}", described(&v));
        assert_eq!(v.records, 20);
    }

    #[test]
    fn a_chain_split_across_files_in_any_order_verifies() {
        let lines = chain(30);
        let v = check(&[&lines[20..], &lines[..10], &lines[10..20]]);
        assert!(v.intact(), "{:?}", described(&v));
        assert!(v.reordered_files);
        assert_eq!(v.files[0], PathBuf::from("f1"));
    }

    #[test]
    fn removal_alteration_and_a_swap_are_each_named_once() {
        let mut lines = chain(20);
        lines.swap(14, 15); // seq 15 and 16
        lines[9] = String::from_utf8(lines[9].clone())
            .unwrap()
            .replace("1010", "4242")
            .into_bytes(); // seq 10
        lines.remove(4); // seq 5
        let v = check(&[&lines]);
        assert_eq!(
            described(&v),
            [
                "f0:5: seq 5 is missing between f0:4 and here: removed",
                "f0:9: seq 10: altered: its hash does not match the prev of seq 11 (f0:10)",
                "f0:14: seq 16: out of order: it belongs after seq 15 (f0:15)",
            ]
        );
    }

    #[test]
    fn an_altered_prev_blames_its_own_record() {
        let mut lines = chain(10);
        let text = String::from_utf8(lines[4].clone()).unwrap();
        let prev = hash(&lines[3]);
        lines[4] = text.replace(&prev, &"0".repeat(64)).into_bytes();
        let v = check(&[&lines]);
        assert_eq!(v.problems.len(), 1, "{:?}", described(&v));
        assert!(matches!(v.problems[0], Problem::Altered { seq: 5, .. }));
    }

    #[test]
    fn a_record_moved_far_is_one_problem() {
        let mut lines = chain(20);
        let moved = lines.remove(17);
        lines.insert(2, moved);
        let v = check(&[&lines]);
        assert_eq!(v.problems.len(), 1, "{:?}", described(&v));
        assert!(matches!(v.problems[0], Problem::OutOfOrder { seq: 18, .. }));
    }

    #[test]
    fn duplicates_junk_and_a_false_genesis_are_reported() {
        let mut lines = chain(5);
        lines.push(lines[2].clone());
        lines.insert(1, b"not json".to_vec());
        let v = check(&[&lines]);
        let text = described(&v);
        assert!(text
            .iter()
            .any(|t| t.contains("f0:2: not a chained record")));
        assert!(text.iter().any(|t| t == "f0:7: seq 3: duplicate of f0:4"));

        let other = chain(3);
        let mut forged = other.clone();
        forged[0] = String::from_utf8(other[0].clone())
            .unwrap()
            .replace(&genesis(), &hash(b"x"))
            .into_bytes();
        let v = check(&[&forged]);
        assert!(matches!(v.problems[0], Problem::NotGenesis { .. }));
    }

    #[test]
    fn a_chain_that_starts_after_seq_1_is_not_a_problem() {
        let lines = chain(10);
        let v = check(&[&lines[4..]]);
        assert!(v.intact());
        assert_eq!(v.first.map(|f| f.0), Some(5));
    }

    #[test]
    fn the_tail_of_a_log_continues_it() {
        let lines = chain(3);
        let tail = Tail::parse(&lines[2]).unwrap();
        assert_eq!(tail.link.seq, 3);
        assert_eq!(tail.link.hash, hash(&lines[2]));
        assert!(!tail.clean_stop);
        assert!(Tail::parse(b"{}").is_err());
    }
}
