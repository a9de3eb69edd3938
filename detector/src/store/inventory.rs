//! What the store says, derived from its runs when it is read.
//!
//! Runs of one host and scope (`audit`, or what a scan covered) follow each other: in each,
//! a key is open when it is exposed (in a current place that is not a managed store). A key is
//! open while its latest run in some such stream has it open; it is **fixed** at the first run
//! after which no stream has it open, **reopened** when a later run has it open again. Its
//! first detection is the earliest run that saw it; `revoked_at` is when the provider first
//! said it was revoked (`--verify`); until then a fixed key still found in history or an image
//! is "fixed, still in history".
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    db::{Db, DbError, Value},
    Store, StoreError,
};

/// One key as the inventory knows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub rule: String,
    pub provider: String,
    pub severity: String,
    pub redacted: String,
    /// `open`, `fixed-still-in-history`, `fixed` or `revoked`.
    pub state: &'static str,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub first_detected: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub fixed_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::audit::location::time_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// How many times it came back after being fixed.
    pub reopened: u32,
    /// Open: days since first detected.
    pub age_days: Option<i64>,
    /// Fixed: days from first detection to the fix.
    pub time_to_fix_days: Option<i64>,
    pub hosts: Vec<String>,
    pub projects: Vec<String>,
    pub environments: Vec<String>,
}

/// Counts of a group of keys (all, a project, an environment).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub open: usize,
    pub fixed: usize,
    /// Open keys by age in days.
    pub open_by_age: AgeBuckets,
    pub mean_time_to_fix_days: Option<f64>,
    pub median_time_to_fix_days: Option<f64>,
}

/// Open keys by how many days ago they were first detected.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgeBuckets {
    #[serde(rename = "0-7")]
    pub week: usize,
    #[serde(rename = "8-30")]
    pub month: usize,
    #[serde(rename = "31-90")]
    pub quarter: usize,
    #[serde(rename = "91+")]
    pub older: usize,
}

/// The inventory as `detector report --store` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub schema: &'static str,
    pub store: String,
    #[serde(serialize_with = "crate::audit::location::time")]
    pub generated_at: DateTime<Utc>,
    /// The period asked for (`--since`), when one was.
    #[serde(
        serialize_with = "crate::audit::location::time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<DateTime<Utc>>,
    /// The projects asked for (`--project`), when any were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    pub runs: usize,
    pub hosts: Vec<String>,
    pub keys: Vec<KeyRecord>,
    pub summary: Tally,
    pub by_project: BTreeMap<String, Tally>,
    pub by_environment: BTreeMap<String, Tally>,
}

/// Which runs and keys an inventory is made of.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only runs made at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only keys of one of these projects (none: every key).
    pub projects: Vec<String>,
}

/// What changed in a run since the run before it of the same host and scope.
#[derive(Debug, Default)]
pub struct Changes {
    /// When the run before it was made (`None`: the first of its kind).
    pub since: Option<DateTime<Utc>>,
    pub new: Vec<KeyLine>,
    pub fixed: Vec<KeyLine>,
    pub reappeared: Vec<KeyLine>,
    pub still_open: Vec<KeyLine>,
}

/// A key as a "what changed" line names it.
#[derive(Debug, Clone)]
pub struct KeyLine {
    pub redacted: String,
    pub provider: String,
    pub severity: String,
    pub fingerprint: String,
    /// Days since the store first saw it.
    pub age_days: i64,
}

struct RunRow {
    id: i64,
    stream: (String, String),
    host: String,
    at: i64,
}

struct KeyRun {
    run: i64,
    key: i64,
    status: String,
    exposed: bool,
    verification: Option<String>,
    verified_at: Option<i64>,
    projects: String,
    environments: String,
}

fn time(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn text(row: &[Value], i: usize) -> String {
    row.get(i)
        .and_then(Value::text)
        .unwrap_or_default()
        .to_string()
}

fn int(row: &[Value], i: usize) -> Option<i64> {
    row.get(i).and_then(Value::int)
}

/// The changes of run `run` against the run before it in its stream.
pub fn changes(db: &mut Db, run: i64) -> Result<Changes, DbError> {
    let rows = db.query(
        "SELECT host, scope, generated_at FROM run WHERE id = ?",
        &[run.into()],
    )?;
    let Some(this) = rows.first() else {
        return Ok(Changes::default());
    };
    let (host, scope, at) = (text(this, 0), text(this, 1), int(this, 2).unwrap_or(0));
    let previous = db.query(
        "SELECT id, generated_at FROM run WHERE host = ? AND scope = ? AND id <> ?
           AND (generated_at < ? OR (generated_at = ? AND id < ?))
         ORDER BY generated_at DESC, id DESC LIMIT 1",
        &[
            host.into(),
            scope.into(),
            run.into(),
            at.into(),
            at.into(),
            run.into(),
        ],
    )?;
    let previous = previous
        .first()
        .map(|r| (int(r, 0).unwrap_or(0), int(r, 1)));
    let open_in = |db: &mut Db, run: i64| -> Result<BTreeMap<i64, KeyLine>, DbError> {
        let rows = db.query(
            "SELECT k.id, k.redacted, k.provider, kr.severity, k.fingerprint,
                    (SELECT MIN(r.generated_at) FROM key_run x JOIN run r ON r.id = x.run_id WHERE x.key_id = k.id)
             FROM key_run kr JOIN inventory_key k ON k.id = kr.key_id
             WHERE kr.run_id = ? AND kr.exposed = 1",
            &[run.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let first = int(r, 5).unwrap_or(at);
                (
                    int(r, 0).unwrap_or(0),
                    KeyLine {
                        redacted: text(r, 1),
                        provider: text(r, 2),
                        severity: text(r, 3),
                        fingerprint: text(r, 4),
                        age_days: (at - first).max(0) / 86_400,
                    },
                )
            })
            .collect())
    };
    let now = open_in(db, run)?;
    let before = match previous {
        Some((id, _)) => open_in(db, id)?,
        None => BTreeMap::new(),
    };
    // Keys of this run the store had seen in an earlier run, of any host and scope.
    let seen_before: BTreeSet<i64> = db
        .query(
            "SELECT DISTINCT kr.key_id FROM key_run kr JOIN run r ON r.id = kr.run_id
             WHERE kr.key_id IN (SELECT key_id FROM key_run WHERE run_id = ?)
               AND (r.generated_at < ? OR (r.generated_at = ? AND r.id < ?))",
            &[run.into(), at.into(), at.into(), run.into()],
        )?
        .iter()
        .filter_map(|r| int(r, 0))
        .collect();
    let mut changes = Changes {
        since: previous.and_then(|(_, at)| at).and_then(time),
        ..Changes::default()
    };
    for (id, line) in &now {
        if before.contains_key(id) {
            changes.still_open.push(line.clone());
        } else if seen_before.contains(id) {
            changes.reappeared.push(line.clone());
        } else {
            changes.new.push(line.clone());
        }
    }
    for (id, line) in &before {
        if !now.contains_key(id) {
            changes.fixed.push(line.clone());
        }
    }
    changes
        .still_open
        .sort_by_key(|k| std::cmp::Reverse(k.age_days));
    Ok(changes)
}

impl Store {
    /// The whole inventory, derived from every run.
    pub fn inventory(&mut self, now: DateTime<Utc>) -> Result<Inventory, StoreError> {
        self.inventory_of(now, &Filter::default())
    }

    /// The inventory of the runs and keys `filter` keeps.
    pub fn inventory_of(
        &mut self,
        now: DateTime<Utc>,
        filter: &Filter,
    ) -> Result<Inventory, StoreError> {
        let url = self.url.to_string();
        inventory(&mut self.db, &url, now, filter).map_err(|e| self.failed(e))
    }

    /// What changed in a recorded run (see [`changes`]).
    pub fn changes(&mut self, run: i64) -> Result<Changes, StoreError> {
        changes(&mut self.db, run).map_err(|e| self.failed(e))
    }
}

fn inventory(
    db: &mut Db,
    store: &str,
    now: DateTime<Utc>,
    filter: &Filter,
) -> Result<Inventory, DbError> {
    let since = filter.since.map_or(i64::MIN, |t| t.timestamp());
    let runs: Vec<RunRow> = db
        .query(
            "SELECT id, host, scope, generated_at FROM run WHERE generated_at >= ? ORDER BY generated_at, id",
            &[since.into()],
        )?
        .iter()
        .map(|r| RunRow {
            id: int(r, 0).unwrap_or(0),
            host: text(r, 1),
            stream: (text(r, 1), text(r, 2)),
            at: int(r, 3).unwrap_or(0),
        })
        .collect();
    // Only the rows of the runs kept, each value moved out of its row (no copy).
    let mut by_run: HashMap<i64, Vec<KeyRun>> = HashMap::with_capacity(runs.len());
    let key_runs = if since == i64::MIN {
        db.query(
            "SELECT run_id, key_id, status, exposed, verification, verified_at, projects, environments FROM key_run",
            &[],
        )?
    } else {
        db.query(
            "SELECT kr.run_id, kr.key_id, kr.status, kr.exposed, kr.verification, kr.verified_at, kr.projects, kr.environments
             FROM key_run kr JOIN run r ON r.id = kr.run_id WHERE r.generated_at >= ?",
            &[since.into()],
        )?
    };
    for r in key_runs {
        let mut values = r.into_iter();
        let mut next = || values.next().unwrap_or(Value::NullText);
        let owned = |value: Value| match value {
            Value::Text(s) => s,
            _ => String::new(),
        };
        let run = next().int().unwrap_or(0);
        let key = next().int().unwrap_or(0);
        let status = owned(next());
        let exposed = next().int() == Some(1);
        let verification = match next() {
            Value::Text(s) => Some(s),
            _ => None,
        };
        let verified_at = next().int();
        let projects = owned(next());
        let environments = owned(next());
        let row = KeyRun {
            run,
            key,
            status,
            exposed,
            verification,
            verified_at,
            projects,
            environments,
        };
        by_run.entry(row.run).or_default().push(row);
    }
    let keys: Vec<(i64, Vec<Value>)> = db
        .query(
            "SELECT id, fingerprint, rule, provider, severity, redacted FROM inventory_key ORDER BY fingerprint",
            &[],
        )?
        .into_iter()
        .map(|r| (int(&r, 0).unwrap_or(0), r))
        .collect();

    #[derive(Default)]
    struct History {
        first: Option<i64>,
        last: Option<i64>,
        open: bool,
        fixed_at: Option<i64>,
        reopened: u32,
        revoked_at: Option<i64>,
        hosts: BTreeSet<String>,
        /// Every project and environment any run gave it.
        projects: BTreeSet<String>,
        environments: BTreeSet<String>,
        /// Seen (in any place) in the latest run of some stream.
        in_latest: BTreeSet<(String, String)>,
    }
    let mut history: HashMap<i64, History> = HashMap::new();
    // Per stream, the keys open in its latest run.
    let mut streams: HashMap<(String, String), BTreeSet<i64>> = HashMap::new();
    for run in &runs {
        let rows = by_run.remove(&run.id).unwrap_or_default();
        let open_now: BTreeSet<i64> = rows.iter().filter(|r| r.exposed).map(|r| r.key).collect();
        let open_before = streams.insert(run.stream.clone(), open_now.clone());
        let mut touched: BTreeSet<i64> = open_now.clone();
        touched.extend(open_before.into_iter().flatten());
        for row in &rows {
            let h = history.entry(row.key).or_default();
            h.first = Some(h.first.map_or(run.at, |f| f.min(run.at)));
            h.last = Some(h.last.map_or(run.at, |l| l.max(run.at)));
            h.hosts.insert(run.host.clone());
            h.projects.extend(split(&row.projects));
            h.environments.extend(split(&row.environments));
            if row.verification.as_deref() == Some("revoked") && h.revoked_at.is_none() {
                h.revoked_at = row.verified_at.or(Some(run.at));
            }
            touched.insert(row.key);
        }
        for h in history.values_mut() {
            h.in_latest.remove(&run.stream);
        }
        for row in &rows {
            if row.status != "removed" || row.exposed {
                if let Some(h) = history.get_mut(&row.key) {
                    h.in_latest.insert(run.stream.clone());
                }
            }
        }
        for key in touched {
            let open = streams.values().any(|s| s.contains(&key));
            let h = history.entry(key).or_default();
            match (h.open, open) {
                (true, false) => h.fixed_at = Some(run.at),
                (false, true) if h.fixed_at.is_some() => {
                    h.reopened += 1;
                    h.fixed_at = None;
                }
                _ => {}
            }
            h.open = open;
        }
    }

    let mut records = Vec::new();
    for (id, row) in &keys {
        let Some(h) = history.get(id) else { continue };
        let state = if h.open {
            "open"
        } else if h.revoked_at.is_some() {
            "revoked"
        } else if !h.in_latest.is_empty() {
            "fixed-still-in-history"
        } else {
            "fixed"
        };
        let first = h.first.and_then(time);
        let projects: Vec<String> = h.projects.iter().cloned().collect();
        if !filter.projects.is_empty() && !projects.iter().any(|p| filter.projects.contains(p)) {
            continue;
        }
        records.push(KeyRecord {
            fingerprint: text(row, 1),
            rule: text(row, 2),
            provider: text(row, 3),
            severity: text(row, 4),
            redacted: text(row, 5),
            state,
            first_detected: first,
            last_seen: h.last.and_then(time),
            fixed_at: h.fixed_at.and_then(time),
            revoked_at: h.revoked_at.and_then(time),
            reopened: h.reopened,
            age_days: first
                .filter(|_| h.open)
                .map(|f| (now - f).num_days().max(0)),
            time_to_fix_days: h
                .fixed_at
                .zip(h.first)
                .map(|(fixed, first)| (fixed - first).max(0) / 86_400),
            hosts: h.hosts.iter().cloned().collect(),
            projects,
            environments: h.environments.iter().cloned().collect(),
        });
    }
    let mut by_project: BTreeMap<String, Vec<&KeyRecord>> = BTreeMap::new();
    let mut by_environment: BTreeMap<String, Vec<&KeyRecord>> = BTreeMap::new();
    for record in &records {
        for project in &record.projects {
            by_project.entry(project.clone()).or_default().push(record);
        }
        for environment in &record.environments {
            by_environment
                .entry(environment.clone())
                .or_default()
                .push(record);
        }
    }
    let hosts: BTreeSet<String> = runs.iter().map(|r| r.host.clone()).collect();
    Ok(Inventory {
        since: filter.since,
        projects: filter.projects.clone(),
        schema: "detector/inventory/v1",
        store: store.to_string(),
        generated_at: now,
        runs: runs.len(),
        hosts: hosts.into_iter().collect(),
        summary: tally(records.iter()),
        by_project: by_project
            .into_iter()
            .map(|(k, v)| (k, tally(v.into_iter())))
            .collect(),
        by_environment: by_environment
            .into_iter()
            .map(|(k, v)| (k, tally(v.into_iter())))
            .collect(),
        keys: records,
    })
}

fn tally<'a>(records: impl Iterator<Item = &'a KeyRecord>) -> Tally {
    let mut out = Tally::default();
    let mut fix_times: Vec<i64> = Vec::new();
    for record in records {
        if record.state == "open" {
            out.open += 1;
            let ages = &mut out.open_by_age;
            match record.age_days.unwrap_or(0) {
                ..=7 => ages.week += 1,
                8..=30 => ages.month += 1,
                31..=90 => ages.quarter += 1,
                _ => ages.older += 1,
            }
        } else {
            out.fixed += 1;
            fix_times.extend(record.time_to_fix_days);
        }
    }
    if !fix_times.is_empty() {
        fix_times.sort_unstable();
        let n = fix_times.len();
        out.mean_time_to_fix_days = Some(fix_times.iter().sum::<i64>() as f64 / n as f64);
        out.median_time_to_fix_days = Some(if n % 2 == 1 {
            fix_times[n / 2] as f64
        } else {
            (fix_times[n / 2 - 1] + fix_times[n / 2]) as f64 / 2.0
        });
    }
    out
}
