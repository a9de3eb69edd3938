//! The agent's JSON-lines logs in the store (`detector store ingest`): every record is kept by
//! its host, seq and hash (the SHA-256 of its line), so a log ingested twice, or a rotated
//! file ingested with the file it was rotated from, adds nothing the second time.
//!
//! The hash chain is checked as the file is ingested, by the same check as `detector log
//! verify` ([`chain::verify_bytes`]): every problem is kept as a chain break, worded as `log
//! verify` words it, and the records after a break are ingested all the same (a tampered log
//! still says who read what, and the break says from where on it cannot be trusted).
//!
//! What is kept of a record is who opened or changed which file, when, and what the policy
//! said: never the line itself. An opener's command line is redacted by the agent only as far
//! as the rules recognise a secret in it, and the store holds no secret, ever.
//!
//! A record names its host (agents before records had `host` did not): a record that names
//! none takes the host given with `--host`, else the host the file's other records name.
use std::path::Path;

use chrono::{DateTime, Utc};
use ring::digest;
use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::{
    db::{Db, DbError, Value},
    Store, StoreError,
};
use crate::{
    agent::chain,
    event::{Record, Verdict},
};

/// How many times a file's records are written when the server breaks a deadlock with them.
const MAX_ATTEMPTS: u32 = 5;

/// A place where a log's hash chain does not hold, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    pub host: String,
    /// The file, as it was ingested (made absolute).
    pub file: String,
    pub line: u64,
    /// The record the problem is about, when it is about one.
    pub seq: Option<u64>,
    /// The problem, as `detector log verify FILE` says it.
    pub what: String,
}

/// An `open` record as the store keeps it: who read which file, when, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRead {
    pub host: String,
    pub seq: u64,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub time: Option<DateTime<Utc>>,
    pub path: String,
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    /// The opener's container (its JSON), when it runs in one.
    pub container: Option<String>,
    /// `allow` or `alert`.
    pub verdict: Option<String>,
    pub policy_rule: Option<String>,
    pub mcp_client: Option<String>,
    pub mcp_server: Option<String>,
}

/// The opens of one file by one program (the same executable, user, container and verdict),
/// on the host that saw a key in that file: who read the key, as the agents recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadBy {
    pub host: String,
    pub path: String,
    pub exe: Option<String>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    /// The opener's container (its JSON), when it runs in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// `allow` or `alert`.
    pub verdict: Option<String>,
    /// How many opens.
    pub reads: u64,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub first_read: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub last_read: Option<DateTime<Utc>>,
}

/// Which reads [`Store::agent_reads`] gives.
#[derive(Debug, Clone, Copy)]
pub enum Reads<'a> {
    All,
    /// Of the files the store has seen this key in.
    Fingerprint(&'a str),
    /// Of this file.
    Path(&'a str),
}

/// What ingesting one log did.
#[derive(Debug)]
pub struct Ingested {
    /// The hosts of its records, in the order they first appear.
    pub hosts: Vec<String>,
    pub records: usize,
    /// Records the store did not hold before.
    pub new_records: usize,
    /// Every problem of the file's chain (on a second ingest too: the file is still broken).
    pub breaks: Vec<ChainBreak>,
    pub new_breaks: usize,
    /// The number of a last line with no newline: a record still being written, not ingested
    /// (the next ingest takes it once it is whole).
    pub unfinished_line: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}: its records name no host (an agent older than the `host` field wrote them): give the host with --host NAME")]
    NoHost { file: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether `bytes` are an agent's log: its first non-empty line is a chained record (a JSON
/// object with `seq` and `prev`), which no report is.
pub fn is_agent_log(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .and_then(|line| serde_json::from_slice::<Map<String, Json>>(line).ok())
        .is_some_and(|object| envelope(&object).is_some())
}

/// `seq` and `prev`, as the chain reads them: a record has both.
fn envelope(object: &Map<String, Json>) -> Option<(u64, &str)> {
    Some((object.get("seq")?.as_u64()?, object.get("prev")?.as_str()?))
}

/// One record of the file, as it is stored.
struct Row {
    host: Option<String>,
    seq: u64,
    hash: String,
    prev: String,
    time: Option<i64>,
    kind: String,
    path: Option<String>,
    pid: Option<u32>,
    uid: Option<u32>,
    comm: Option<String>,
    exe: Option<String>,
    container: Option<String>,
    verdict: Option<Verdict>,
    policy_rule: Option<String>,
    mcp_client: Option<String>,
    mcp_server: Option<String>,
    line: u64,
}

/// The record on `line`, when it is one (a line that is not is one of the chain's problems).
fn row_of(bytes: &[u8], line: u64) -> Option<Row> {
    let object: Map<String, Json> = serde_json::from_slice(bytes).ok()?;
    let (seq, prev) = envelope(&object)?;
    let prev = prev.to_string();
    let text = |key: &str| object.get(key).and_then(Json::as_str).map(str::to_string);
    let mut row = Row {
        host: text("host"),
        seq,
        hash: chain::hash(bytes),
        prev,
        time: text("time")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp()),
        kind: text("type").unwrap_or_else(|| "unknown".to_string()),
        path: None,
        pid: None,
        uid: None,
        comm: None,
        exe: None,
        container: None,
        verdict: None,
        policy_rule: None,
        mcp_client: None,
        mcp_server: None,
        line,
    };
    // The agent's own types read the fields, so that reader and writer cannot drift apart; a
    // record they do not take (another type, a field of the wrong kind) keeps its envelope.
    match serde_json::from_value::<Record>(Json::Object(object)) {
        Ok(Record::Open(open)) => {
            row.path = Some(open.file);
            row.pid = Some(open.pid);
            row.uid = Some(open.uid);
            row.comm = Some(open.comm).filter(|c| !c.is_empty());
            row.exe = Some(open.exe).filter(|e| !e.is_empty());
            row.container = open
                .container
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok());
            row.verdict = Some(open.verdict);
            row.policy_rule = open.policy_rule;
            row.mcp_client = open.mcp_client;
            row.mcp_server = open.mcp_server;
        }
        Ok(Record::ConfigChange(change)) => {
            row.path = Some(change.file);
            row.verdict = Some(change.verdict);
            row.policy_rule = change.policy_rule;
            row.mcp_client = change.mcp_client;
        }
        Ok(_) | Err(_) => {}
    }
    Some(row)
}

fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Alert => "alert",
    }
}

impl Store {
    /// Ingest one agent log, read into `bytes`, from `path`, in one transaction. `host`: the
    /// host of records that name none (`--host`).
    pub fn ingest_agent_log(
        &mut self,
        path: &Path,
        bytes: &[u8],
        host: Option<&str>,
    ) -> Result<Ingested, IngestError> {
        // Absolute, so that the same file ingested from another directory is the same file.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file = path.display().to_string();
        // A last line with no newline is a record still being written (the live file).
        let whole = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        let (bytes, rest) = bytes.split_at(whole);
        let complete_lines = bytes.split_inclusive(|&b| b == b'\n').count() as u64;
        let unfinished_line = (!rest.is_empty()).then_some(complete_lines + 1);

        let mut rows: Vec<Row> = bytes
            .split_inclusive(|&b| b == b'\n')
            .zip(1..)
            .filter_map(|(line, number)| row_of(line.strip_suffix(b"\n").unwrap_or(line), number))
            .collect();
        let named = rows.iter().find_map(|r| r.host.clone());
        let file_host = named.clone().or_else(|| host.map(str::to_string));
        let unnamed = host.map(str::to_string).or(named);
        for row in &mut rows {
            if row.host.is_none() {
                row.host.clone_from(&unnamed);
            }
        }
        let (Some(file_host), true) = (file_host, rows.iter().all(|r| r.host.is_some())) else {
            return Err(IngestError::NoHost { file });
        };

        let verification = chain::verify_bytes(&path, bytes);
        let mut breaks: Vec<ChainBreak> = verification
            .problems
            .iter()
            .map(|problem| ChainBreak {
                host: file_host.clone(),
                file: file.clone(),
                line: problem.at().line as u64,
                seq: problem.seq(),
                what: verification.describe(problem),
            })
            .collect();
        breaks.extend(seams(&mut self.db, &rows, &file).map_err(|e| self.failed(e))?);

        let mut hosts: Vec<String> = Vec::new();
        for row in &rows {
            let host = row.host.as_deref().unwrap_or_default();
            if !hosts.iter().any(|h| h == host) {
                hosts.push(host.to_string());
            }
        }
        // Writers of overlapping logs at once lock the same rows in the same order.
        rows.sort_by(|a, b| (&a.host, a.seq, &a.hash).cmp(&(&b.host, b.seq, &b.hash)));
        let (new_records, new_breaks) =
            write(&mut self.db, &rows, &breaks, &file).map_err(|e| self.failed(e))?;
        Ok(Ingested {
            hosts,
            records: rows.len(),
            new_records,
            breaks,
            new_breaks,
            unfinished_line,
        })
    }

    /// The `open` records of the store, of a key's files or of one file, by host and seq.
    pub fn agent_reads(&mut self, which: Reads) -> Result<Vec<AgentRead>, StoreError> {
        agent_reads(&mut self.db, which).map_err(|e| self.failed(e))
    }

    /// Every chain break the store has found, by host, file and line.
    pub fn chain_breaks(&mut self) -> Result<Vec<ChainBreak>, StoreError> {
        chain_breaks(&mut self.db, None).map_err(|e| self.failed(e))
    }
}

/// Where this file's records meet those the store holds from other files of the same host (a
/// rotated log and the one rotated from it): the first record of each host must follow the
/// stored record before it, and the last must be the one the stored record after it follows.
/// A seam that does not hold is a break said as `detector log verify` would say it given both
/// files, and found the same from either side (so that it is stored once).
fn seams(db: &mut Db, rows: &[Row], file: &str) -> Result<Vec<ChainBreak>, DbError> {
    let mut found = Vec::new();
    let mut ends: std::collections::BTreeMap<&str, (&Row, &Row)> = Default::default();
    for row in rows {
        let host = row.host.as_deref().unwrap_or_default();
        let (first, last) = ends.entry(host).or_insert((row, row));
        if row.seq < first.seq {
            *first = row;
        }
        if row.seq > last.seq {
            *last = row;
        }
    }
    let place = |file: &str, line: u64| format!("{file}:{line}");
    let seq_value = |seq: u64| Value::Int(i64::try_from(seq).unwrap_or(i64::MAX));
    for (host, (first, last)) in ends {
        // The stored records just before the first: one of them is the record it follows.
        if let Some(before) = first.seq.checked_sub(1).filter(|s| *s > 0) {
            let stored = db.query(
                "SELECT hash, file, line FROM agent_event WHERE host = ? AND seq = ? AND file <> ?
                 ORDER BY file, line",
                &[host.into(), seq_value(before), file.into()],
            )?;
            if !stored.is_empty() && !stored.iter().any(|r| text(r, 0) == first.prev) {
                let (other, line) = (text(&stored[0], 1), int(&stored[0], 2).unwrap_or(0));
                found.push(ChainBreak {
                    host: host.to_string(),
                    file: other.clone(),
                    line: u64::try_from(line).unwrap_or(0),
                    seq: Some(before),
                    what: format!(
                        "{}: seq {before}: altered: its hash does not match the prev of seq {} ({})",
                        place(&other, u64::try_from(line).unwrap_or(0)),
                        first.seq,
                        place(file, first.line)
                    ),
                });
            }
        }
        // The stored records just after the last: one of them must follow it.
        let stored = db.query(
            "SELECT prev, file, line FROM agent_event
             WHERE host = ? AND seq = ? AND file <> ? AND prev IS NOT NULL ORDER BY file, line",
            &[
                host.into(),
                seq_value(last.seq.saturating_add(1)),
                file.into(),
            ],
        )?;
        if !stored.is_empty() && !stored.iter().any(|r| text(r, 0) == last.hash) {
            let (other, line) = (text(&stored[0], 1), int(&stored[0], 2).unwrap_or(0));
            found.push(ChainBreak {
                host: host.to_string(),
                file: file.to_string(),
                line: last.line,
                seq: Some(last.seq),
                what: format!(
                    "{}: seq {}: altered: its hash does not match the prev of seq {} ({})",
                    place(file, last.line),
                    last.seq,
                    last.seq + 1,
                    place(&other, u64::try_from(line).unwrap_or(0))
                ),
            });
        }
    }
    Ok(found)
}

/// The records and breaks of one file, in one transaction: how many of each were new.
fn write(
    db: &mut Db,
    rows: &[Row],
    breaks: &[ChainBreak],
    file: &str,
) -> Result<(usize, usize), DbError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        db.begin()?;
        match write_all(db, rows, breaks, file).and_then(|counts| {
            db.commit()?;
            Ok(counts)
        }) {
            Ok(counts) => return Ok(counts),
            Err(DbError::Retry(_)) if attempt < MAX_ATTEMPTS => {
                db.rollback();
                tracing::debug!(attempt, "the store asked to write the log again");
            }
            Err(err) => {
                db.rollback();
                return Err(err);
            }
        }
    }
}

fn write_all(
    db: &mut Db,
    rows: &[Row],
    breaks: &[ChainBreak],
    file: &str,
) -> Result<(usize, usize), DbError> {
    let int = |n: Option<u32>| Value::opt_int(n.map(i64::from));
    let values: Vec<Vec<Value>> = rows
        .iter()
        .map(|row| {
            vec![
                Value::opt_text(row.host.as_deref()),
                Value::Int(i64::try_from(row.seq).unwrap_or(i64::MAX)),
                row.hash.as_str().into(),
                row.prev.as_str().into(),
                Value::opt_int(row.time),
                row.kind.as_str().into(),
                Value::opt_text(row.path.as_deref()),
                int(row.pid),
                int(row.uid),
                Value::opt_text(row.comm.as_deref()),
                Value::opt_text(row.exe.as_deref()),
                Value::opt_text(row.container.as_deref()),
                Value::opt_text(row.verdict.map(verdict_text)),
                Value::opt_text(row.policy_rule.as_deref()),
                Value::opt_text(row.mcp_client.as_deref()),
                Value::opt_text(row.mcp_server.as_deref()),
                file.into(),
                Value::Int(i64::try_from(row.line).unwrap_or(i64::MAX)),
            ]
        })
        .collect();
    // Many rows a statement; the rows it returns are those that were new.
    let new_records = db
        .insert_rows(
            "INSERT INTO agent_event (host, seq, hash, prev, time, kind, path, pid, uid, comm, exe, container, verdict, policy_rule, mcp_client, mcp_server, file, line)",
            &values,
            "ON CONFLICT DO NOTHING RETURNING seq",
        )?
        .len();
    let now = Utc::now().timestamp();
    let mut new_breaks = 0;
    for found in breaks {
        let identity = serde_json::to_vec(&(&found.host, &found.file, found.line, &found.what))
            .map_err(|e| DbError::Failed(e.to_string()))?;
        let id = hex::encode(digest::digest(&digest::SHA256, &identity));
        new_breaks += db.execute(
            "INSERT INTO chain_break (id, host, file, line, seq, what, found_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
            &[
                id.into(),
                found.host.as_str().into(),
                found.file.as_str().into(),
                Value::Int(i64::try_from(found.line).unwrap_or(i64::MAX)),
                Value::opt_int(found.seq.map(|s| i64::try_from(s).unwrap_or(i64::MAX))),
                found.what.as_str().into(),
                now.into(),
            ],
        )? as usize;
    }
    Ok((new_records, new_breaks))
}

fn text(row: &[Value], i: usize) -> String {
    opt_text(row, i).unwrap_or_default()
}

fn opt_text(row: &[Value], i: usize) -> Option<String> {
    row.get(i).and_then(Value::text).map(str::to_string)
}

fn int(row: &[Value], i: usize) -> Option<i64> {
    row.get(i).and_then(Value::int)
}

fn agent_reads(db: &mut Db, which: Reads) -> Result<Vec<AgentRead>, DbError> {
    let columns = "SELECT e.host, e.seq, e.time, e.path, e.pid, e.uid, e.comm, e.exe, e.container,
                          e.verdict, e.policy_rule, e.mcp_client, e.mcp_server
                   FROM agent_event e WHERE e.kind = 'open'";
    let order = "ORDER BY e.host, e.seq, e.hash";
    let rows = match which {
        Reads::All => db.query(&format!("{columns} {order}"), &[])?,
        Reads::Path(path) => {
            db.query(&format!("{columns} AND e.path = ? {order}"), &[path.into()])?
        }
        Reads::Fingerprint(fingerprint) => db.query(
            &format!(
                "{columns} AND EXISTS (
                   SELECT 1 FROM {FILES_OF_KEYS} AND k.fingerprint = ?
                     AND r.host = e.host AND l.path = e.path)
                 {order}"
            ),
            &[fingerprint.into()],
        )?,
    };
    let small = |row: &[Value], i| int(row, i).and_then(|n| u32::try_from(n).ok());
    Ok(rows
        .iter()
        .map(|r| AgentRead {
            host: text(r, 0),
            seq: int(r, 1).and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            time: int(r, 2).and_then(|t| DateTime::from_timestamp(t, 0)),
            path: text(r, 3),
            pid: small(r, 4),
            uid: small(r, 5),
            comm: opt_text(r, 6),
            exe: opt_text(r, 7),
            container: opt_text(r, 8),
            verdict: opt_text(r, 9),
            policy_rule: opt_text(r, 10),
            mcp_client: opt_text(r, 11),
            mcp_server: opt_text(r, 12),
        })
        .collect())
}

/// The files a key was seen in on disk (where a process opens it), with the host of the run
/// that saw it there: `s` the sighting, `l` its place, `r` its run, `k` its key.
const FILES_OF_KEYS: &str = "sighting s
    JOIN location l ON l.id = s.location_id
    JOIN run r ON r.id = s.run_id
    JOIN inventory_key k ON k.id = s.key_id
    WHERE s.is_current = 1 AND l.kind IN ('file', 'mcp-config', 'managed-store')";

/// Who read each key (by key id): the opens the agents recorded, since `since` when given, of
/// a file some run saw the key in, on that run's host. Nothing when the store holds no
/// agent record.
pub(super) fn read_by(
    db: &mut Db,
    since: Option<i64>,
) -> Result<std::collections::HashMap<i64, Vec<ReadBy>>, DbError> {
    use std::collections::HashMap;
    let mut by_key: HashMap<i64, Vec<ReadBy>> = HashMap::new();
    if agent_events(db, None)? == 0 {
        return Ok(by_key);
    }
    let period = if since.is_some() {
        " AND time >= ?"
    } else {
        ""
    };
    let params: Vec<Value> = since.into_iter().map(Value::from).collect();
    let mut readers: HashMap<(String, String), Vec<ReadBy>> = HashMap::new();
    for r in db.query(
        &format!(
            "SELECT host, path, exe, comm, uid, container, verdict, COUNT(*), MIN(time), MAX(time)
             FROM agent_event WHERE kind = 'open' AND path IS NOT NULL{period}
             GROUP BY host, path, exe, comm, uid, container, verdict
             ORDER BY host, path, MIN(time), exe, comm, uid, container, verdict"
        ),
        &params,
    )? {
        let read = ReadBy {
            host: text(&r, 0),
            path: text(&r, 1),
            exe: opt_text(&r, 2),
            comm: opt_text(&r, 3),
            uid: int(&r, 4).and_then(|n| u32::try_from(n).ok()),
            container: opt_text(&r, 5),
            verdict: opt_text(&r, 6),
            reads: int(&r, 7).and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            first_read: int(&r, 8).and_then(|t| DateTime::from_timestamp(t, 0)),
            last_read: int(&r, 9).and_then(|t| DateTime::from_timestamp(t, 0)),
        };
        readers
            .entry((read.host.clone(), read.path.clone()))
            .or_default()
            .push(read);
    }
    for r in db.query(
        &format!(
            "SELECT DISTINCT s.key_id, r.host, l.path FROM {FILES_OF_KEYS}
               AND EXISTS (SELECT 1 FROM agent_event e WHERE e.host = r.host AND e.path = l.path)
             ORDER BY s.key_id, r.host, l.path"
        ),
        &[],
    )? {
        if let Some(reads) = readers.get(&(text(&r, 1), text(&r, 2))) {
            by_key
                .entry(int(&r, 0).unwrap_or(0))
                .or_default()
                .extend(reads.iter().cloned());
        }
    }
    Ok(by_key)
}

/// The breaks of the agents' logs, those found since `since` when given.
pub(super) fn chain_breaks(db: &mut Db, since: Option<i64>) -> Result<Vec<ChainBreak>, DbError> {
    let period = if since.is_some() {
        " WHERE found_at >= ?"
    } else {
        ""
    };
    let params: Vec<Value> = since.into_iter().map(Value::from).collect();
    Ok(db
        .query(
            &format!(
                "SELECT host, file, line, seq, what FROM chain_break{period}
                 ORDER BY host, file, line, what"
            ),
            &params,
        )?
        .iter()
        .map(|r| ChainBreak {
            host: text(r, 0),
            file: text(r, 1),
            line: int(r, 2).and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            seq: int(r, 3).and_then(|n| u64::try_from(n).ok()),
            what: text(r, 4),
        })
        .collect())
}

/// How many records of agents the store holds, those of `since` and after when given.
pub(super) fn agent_events(db: &mut Db, since: Option<i64>) -> Result<usize, DbError> {
    let period = if since.is_some() {
        " WHERE time >= ?"
    } else {
        ""
    };
    let params: Vec<Value> = since.into_iter().map(Value::from).collect();
    Ok(db
        .query_int(
            &format!("SELECT COUNT(*) FROM agent_event{period}"),
            &params,
        )?
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreUrl;

    /// A chain of records as the agent writes them, on host `vm` (`None`: no host field).
    fn log(host: Option<&str>, opens: u64) -> Vec<String> {
        let mut prev = chain::genesis();
        (1..=opens)
            .map(|seq| {
                let host = host.map_or(String::new(), |h| format!(r#""host":"{h}","#));
                let line = format!(
                    r#"{{"time":"2026-01-01T00:00:0{}.000000001Z","seq":{seq},"prev":"{prev}",{host}"type":"open","file":"/h/.cursor/mcp.json","pid":{},"uid":1000,"comm":"cat","exe":"/usr/bin/cat","cmdline":["cat","{}"],"verdict":"alert","policy_rule":"mcp-configs"}}"#,
                    seq % 10,
                    100 + seq,
                    planted()
                );
                prev = chain::hash(line.as_bytes());
                line
            })
            .collect()
    }

    /// A key-shaped argument, as a command line the rules did not redact could hold one.
    fn planted() -> String {
        ["sk", "proj", &"Q7x".repeat(16)].join("-")
    }

    fn store(dir: &Path) -> Store {
        Store::open(&StoreUrl::Sqlite(dir.join("s.sqlite"))).unwrap()
    }

    #[test]
    fn pruning_forgets_old_agent_records_but_keeps_the_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        let path = dir.path().join("events.jsonl");
        let mut lines = log(Some("vm"), 4);
        lines.remove(1);
        let text = lines.join("\n") + "\n";
        store
            .ingest_agent_log(&path, text.as_bytes(), None)
            .unwrap();
        let before = chrono::DateTime::parse_from_rfc3339("2025-12-01T00:00:00Z").unwrap();
        let pruned = store.prune(before.to_utc()).unwrap();
        assert_eq!(
            pruned.agent_events, 0,
            "the records are newer than the cutoff"
        );
        let after = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap();
        let pruned = store.prune(after.to_utc()).unwrap();
        assert_eq!(pruned.agent_events, 3);
        assert_eq!(agent_events(&mut store.db, None).unwrap(), 0);
        assert_eq!(
            store.chain_breaks().unwrap().len(),
            1,
            "a break is evidence: kept"
        );
    }

    #[test]
    fn a_log_is_told_from_a_report() {
        let lines = log(Some("vm"), 2);
        assert!(is_agent_log(format!("\n{}\n", lines[0]).as_bytes()));
        assert!(!is_agent_log(
            b"{\n  \"schema\": \"detector/report/v1\"\n}\n"
        ));
        assert!(!is_agent_log(
            br#"{"schema":"detector/report/v1","keys":[]}"#
        ));
        assert!(!is_agent_log(b""));
        assert!(!is_agent_log(b"\xff\xfe"));
    }

    #[test]
    fn a_log_twice_is_its_records_once_and_a_break_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        let path = dir.path().join("events.jsonl");
        let mut lines = log(Some("vm"), 6);
        let whole = lines.join("\n") + "\n";
        let first = store
            .ingest_agent_log(&path, whole.as_bytes(), None)
            .unwrap();
        assert_eq!((first.records, first.new_records), (6, 6));
        assert!(first.breaks.is_empty());
        let again = store
            .ingest_agent_log(&path, whole.as_bytes(), None)
            .unwrap();
        assert_eq!((again.records, again.new_records), (6, 0));

        lines.remove(2);
        lines.push("not a record".into());
        let broken = lines.join("\n") + "\n" + r#"{"seq":9"#;
        let ingested = store
            .ingest_agent_log(&path, broken.as_bytes(), None)
            .unwrap();
        assert_eq!(ingested.unfinished_line, Some(7));
        assert_eq!(ingested.records, 5);
        let whats: Vec<&str> = ingested.breaks.iter().map(|b| b.what.as_str()).collect();
        let f = path.display();
        assert_eq!(
            whats,
            [
                format!("{f}:3: seq 3 is missing between {f}:2 and here: removed"),
                format!("{f}:6: not a chained record (not a JSON object: expected ident at line 1 column 2)"),
            ]
        );
        assert_eq!(ingested.new_breaks, 2);
        assert_eq!(store.chain_breaks().unwrap(), ingested.breaks);
        let reads = store
            .agent_reads(Reads::Path("/h/.cursor/mcp.json"))
            .unwrap();
        assert_eq!(reads.len(), 6);
        assert_eq!(reads[0].host, "vm");
        assert_eq!(reads[0].verdict.as_deref(), Some("alert"));
        assert_eq!(reads[0].pid, Some(101));
        drop(store);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e != "jsonl") {
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains(&planted()), "{} holds it", path.display());
            }
        }
    }

    #[test]
    fn a_rotated_log_is_checked_where_it_meets_the_stored_one() {
        let dir = tempfile::tempdir().unwrap();
        let lines = log(Some("vm"), 8);
        let text = |lines: &[String]| lines.join("\n") + "\n";
        let older = dir.path().join("events.jsonl.1");
        let newer = dir.path().join("events.jsonl");
        let mut altered = lines[..4].to_vec();
        altered[3] = altered[3].replace(r#""pid":104"#, r#""pid":999"#);
        let expected = format!(
            "{}:4: seq 4: altered: its hash does not match the prev of seq 5 ({}:1)",
            older.display(),
            newer.display()
        );
        for (name, older_text) in [("whole", text(&lines[..4])), ("altered", text(&altered))] {
            for newer_first in [false, true] {
                let mut store = Store::open(&StoreUrl::Sqlite(
                    dir.path().join(format!("{name}-{newer_first}.sqlite")),
                ))
                .unwrap();
                let mut files = [(&older, older_text.clone()), (&newer, text(&lines[4..]))];
                if newer_first {
                    files.reverse();
                }
                let mut found = Vec::new();
                for (path, text) in &files {
                    let ingested = store.ingest_agent_log(path, text.as_bytes(), None).unwrap();
                    found.extend(ingested.breaks.into_iter().map(|b| b.what));
                }
                let stored: Vec<String> = store
                    .chain_breaks()
                    .unwrap()
                    .into_iter()
                    .map(|b| b.what)
                    .collect();
                if name == "whole" {
                    assert!(found.is_empty(), "newer first: {newer_first}: {found:?}");
                } else {
                    assert_eq!(
                        found,
                        std::slice::from_ref(&expected),
                        "newer first: {newer_first}"
                    );
                }
                assert_eq!(stored, found, "newer first: {newer_first}");
                // Again, in the other order: nothing new, the break once.
                for (path, text) in files.iter().rev() {
                    let again = store.ingest_agent_log(path, text.as_bytes(), None).unwrap();
                    assert_eq!((again.new_records, again.new_breaks), (0, 0));
                }
                assert_eq!(store.chain_breaks().unwrap().len(), found.len());
            }
        }
    }

    #[test]
    fn records_that_name_no_host_take_the_one_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        let path = dir.path().join("old.jsonl");
        let whole = log(None, 3).join("\n") + "\n";
        assert!(matches!(
            store.ingest_agent_log(&path, whole.as_bytes(), None),
            Err(IngestError::NoHost { .. })
        ));
        assert_eq!(store.agent_reads(Reads::All).unwrap().len(), 0);
        let ingested = store
            .ingest_agent_log(&path, whole.as_bytes(), Some("old-box"))
            .unwrap();
        assert_eq!(ingested.hosts, ["old-box"]);
        assert_eq!(ingested.new_records, 3);
    }
}
