//! What the store says, derived from its runs when it is read.
//!
//! Runs of one host and scope (`audit`, or what a scan covered) follow each other: in each,
//! a key is open when it is exposed (in a current place that is not a managed store). A key is
//! open while its latest run in some such stream has it open; it is **fixed** at the first run
//! after which no stream has it open, **reopened** when a later run has it open again. Its
//! first detection is the earliest run that saw it; `revoked_at` is when the provider first
//! said it was revoked (`--verify`); until then a fixed key still found in history or an image
//! is "fixed, still in history".
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    db::{Db, DbError, Value},
    Store, StoreError,
};
use crate::audit::Location;

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
    /// What the provider said last (`--verify` on any host): `valid`, `revoked`, … and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<LastVerification>,
    /// Open: days since first detected.
    pub age_days: Option<i64>,
    /// Fixed: days from first detection to the fix.
    pub time_to_fix_days: Option<i64>,
    pub hosts: Vec<String>,
    pub projects: Vec<String>,
    pub environments: Vec<String>,
    /// Where it is now: the places the latest run of each host and scope saw it in (a fixed
    /// key still in history or an image is seen there), as the report's location objects,
    /// each naming the host that saw it.
    pub now: Vec<Location>,
    /// Who opened a file it was in (on the host that saw it there), as the agents recorded
    /// it: in the period, when one was asked for.
    pub read_by: Vec<super::agent_log::ReadBy>,
}

/// The latest answer a provider gave about a key, from whichever run asked.
#[derive(Debug, Clone, Serialize)]
pub struct LastVerification {
    pub state: String,
    #[serde(serialize_with = "crate::audit::location::time")]
    pub checked_at: DateTime<Utc>,
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
    /// Open keys over time, by severity: one point per day of the period that had runs.
    pub trend: Vec<TrendPoint>,
    /// How long fixed keys stayed exposed.
    pub time_to_fix: TimeToFix,
    /// What changed in the period (`--since`, else the last seven days).
    pub changes: PeriodChanges,
    /// The agents' records in the store and where their logs' hash chains break (those of
    /// the period, when one was asked for; a record names a host, not a project).
    pub agent_events: usize,
    pub chain_breaks: Vec<super::ChainBreak>,
}

/// The keys open at the end of a day, by severity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub open: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

impl TrendPoint {
    /// The count of one severity (`critical`, `high`, `medium`, `low`).
    pub fn of(&self, severity: &str) -> usize {
        match severity {
            "critical" => self.critical,
            "high" => self.high,
            "medium" => self.medium,
            _ => self.low,
        }
    }
}

/// Fixed keys by how long they stayed exposed, overall and by the month they were fixed in.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TimeToFix {
    pub buckets: AgeBuckets,
    pub by_month: Vec<MonthOfFixes>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonthOfFixes {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub fixed: usize,
    pub mean_days: f64,
    pub median_days: f64,
}

/// The keys first detected, fixed, reappeared in the period, and those open since before it.
#[derive(Debug, Clone, Serialize)]
pub struct PeriodChanges {
    #[serde(serialize_with = "crate::audit::location::time")]
    pub since: DateTime<Utc>,
    pub new: Vec<ChangedKey>,
    pub fixed: Vec<ChangedKey>,
    pub reappeared: Vec<ChangedKey>,
    pub still_open: Vec<ChangedKey>,
}

/// A key in "what changed", with when that happened (still open: when first detected).
#[derive(Debug, Clone, Serialize)]
pub struct ChangedKey {
    pub fingerprint: String,
    pub redacted: String,
    pub provider: String,
    pub severity: String,
    #[serde(serialize_with = "crate::audit::location::time")]
    pub at: DateTime<Utc>,
}

/// The period "what changed" covers when none is asked for.
pub const DEFAULT_PERIOD_DAYS: i64 = 7;

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
    // Every run, so that what is derived of a key (first detection, fixes) does not depend on
    // the period asked for; the period picks the keys shown, the trend and "what changed".
    let runs: Vec<RunRow> = db
        .query(
            "SELECT id, host, scope, generated_at FROM run ORDER BY generated_at, id",
            &[],
        )?
        .iter()
        .map(|r| RunRow {
            id: int(r, 0).unwrap_or(0),
            host: text(r, 1),
            stream: (text(r, 1), text(r, 2)),
            at: int(r, 3).unwrap_or(0),
        })
        .collect();
    let mut by_run: HashMap<i64, Vec<KeyRun>> = HashMap::new();
    for r in db.query(
        "SELECT run_id, key_id, exposed, verification, verified_at, projects, environments FROM key_run",
        &[],
    )? {
        let row = KeyRun {
            run: int(&r, 0).unwrap_or(0),
            key: int(&r, 1).unwrap_or(0),
            exposed: int(&r, 2) == Some(1),
            verification: r.get(3).and_then(Value::text).map(str::to_string),
            verified_at: int(&r, 4),
            projects: text(&r, 5),
            environments: text(&r, 6),
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

    let since = filter.since.map(|t| t.timestamp());
    let in_period = |at: i64| since.is_none_or(|s| at >= s);
    // The keys of the projects asked for (`None`: every key).
    let wanted: Option<HashSet<i64>> = (!filter.projects.is_empty()).then(|| {
        by_run
            .values()
            .flatten()
            .filter(|r| {
                split(&r.projects)
                    .iter()
                    .any(|p| filter.projects.contains(p))
            })
            .map(|r| r.key)
            .collect()
    });
    let is_wanted = |key: i64| wanted.as_ref().is_none_or(|w| w.contains(&key));
    let severity_of: HashMap<i64, usize> = keys
        .iter()
        .map(|(id, row)| (*id, severity_index(&text(row, 4))))
        .collect();

    #[derive(Default)]
    struct History {
        first: Option<i64>,
        last: Option<i64>,
        open: bool,
        fixed_at: Option<i64>,
        reopened: u32,
        reopened_at: Option<i64>,
        revoked_at: Option<i64>,
        /// The latest verification: its time and state.
        verified: Option<(i64, String)>,
        /// Seen in a run of the period.
        in_period: bool,
        hosts: BTreeSet<String>,
        /// Every project and environment any run gave it.
        projects: BTreeSet<String>,
        environments: BTreeSet<String>,
    }
    let mut history: HashMap<i64, History> = HashMap::new();
    // Per stream, its latest run and the keys open in it; per key, how many streams have it
    // open.
    let mut streams: HashMap<(String, String), (i64, BTreeSet<i64>)> = HashMap::new();
    let mut open_streams: HashMap<i64, usize> = HashMap::new();
    // The wanted keys open now, by severity; their count at the end of each day of the period.
    let mut open_by_severity = [0usize; 4];
    let mut days: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut period_runs = 0;
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    for run in &runs {
        let rows = by_run.remove(&run.id).unwrap_or_default();
        let open_now: BTreeSet<i64> = rows.iter().filter(|r| r.exposed).map(|r| r.key).collect();
        let (_, open_before) = streams
            .insert(run.stream.clone(), (run.id, open_now.clone()))
            .unwrap_or_default();
        for key in open_now.difference(&open_before) {
            *open_streams.entry(*key).or_default() += 1;
        }
        for key in open_before.difference(&open_now) {
            if let Some(n) = open_streams.get_mut(key) {
                *n = n.saturating_sub(1);
            }
        }
        let mut touched: BTreeSet<i64> = open_now;
        touched.extend(open_before);
        for row in &rows {
            let h = history.entry(row.key).or_default();
            h.first = Some(h.first.map_or(run.at, |f| f.min(run.at)));
            h.last = Some(h.last.map_or(run.at, |l| l.max(run.at)));
            h.in_period |= in_period(run.at);
            h.hosts.insert(run.host.clone());
            h.projects.extend(split(&row.projects));
            h.environments.extend(split(&row.environments));
            if let Some(state) = &row.verification {
                let at = row.verified_at.unwrap_or(run.at);
                if state == "revoked" && h.revoked_at.is_none_or(|r| at < r) {
                    h.revoked_at = Some(at);
                }
                if h.verified.as_ref().is_none_or(|(t, _)| at >= *t) {
                    h.verified = Some((at, state.clone()));
                }
            }
            touched.insert(row.key);
        }
        for key in touched {
            let open = open_streams.get(&key).is_some_and(|n| *n > 0);
            let h = history.entry(key).or_default();
            match (h.open, open) {
                (true, false) => h.fixed_at = Some(run.at),
                (false, true) if h.fixed_at.is_some() => {
                    h.reopened += 1;
                    h.reopened_at = Some(run.at);
                    h.fixed_at = None;
                }
                _ => {}
            }
            if h.open != open && is_wanted(key) {
                let count = &mut open_by_severity[severity_of.get(&key).copied().unwrap_or(3)];
                *count = if open {
                    *count + 1
                } else {
                    count.saturating_sub(1)
                };
            }
            h.open = open;
        }
        if in_period(run.at) {
            period_runs += 1;
            hosts.insert(run.host.clone());
            if let Some(at) = time(run.at) {
                days.insert(at.format("%Y-%m-%d").to_string(), open_by_severity);
            }
        }
    }
    // Where each key is now: the places the latest run of each stream saw it in.
    let mut now_places = places_now(db, streams.values().map(|(run, _)| *run))?;
    let mut read_by = super::agent_log::read_by(db, since)?;

    let mut records = Vec::new();
    for (id, row) in &keys {
        let Some(h) = history.get(id) else { continue };
        if !is_wanted(*id) || !(h.in_period || h.open) {
            continue;
        }
        let state = if h.open {
            "open"
        } else if h.revoked_at.is_some() {
            "revoked"
        } else if now_places.contains_key(id) {
            "fixed-still-in-history"
        } else {
            "fixed"
        };
        let first = h.first.and_then(time);
        records.push((
            KeyRecord {
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
                verification: h.verified.as_ref().and_then(|(at, state)| {
                    Some(LastVerification {
                        state: state.clone(),
                        checked_at: time(*at)?,
                    })
                }),
                age_days: first
                    .filter(|_| h.open)
                    .map(|f| (now - f).num_days().max(0)),
                time_to_fix_days: h
                    .fixed_at
                    .zip(h.first)
                    .map(|(fixed, first)| (fixed - first).max(0) / 86_400),
                hosts: h.hosts.iter().cloned().collect(),
                projects: h.projects.iter().cloned().collect(),
                environments: h.environments.iter().cloned().collect(),
                now: now_places.remove(id).unwrap_or_default(),
                read_by: read_by.remove(id).unwrap_or_default(),
            },
            h.reopened_at,
        ));
    }
    let start = filter
        .since
        .unwrap_or_else(|| now - chrono::Duration::days(DEFAULT_PERIOD_DAYS));
    let changes = period_changes(start, &records);
    let records: Vec<KeyRecord> = records.into_iter().map(|(record, _)| record).collect();
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
    let trend = days
        .into_iter()
        .map(|(date, [critical, high, medium, low])| TrendPoint {
            date,
            open: critical + high + medium + low,
            critical,
            high,
            medium,
            low,
        })
        .collect();
    Ok(Inventory {
        since: filter.since,
        projects: filter.projects.clone(),
        schema: "detector/inventory/v1",
        store: store.to_string(),
        generated_at: now,
        runs: period_runs,
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
        trend,
        time_to_fix: time_to_fix(&records),
        changes,
        keys: records,
        agent_events: super::agent_log::agent_events(db, since)?,
        chain_breaks: super::agent_log::chain_breaks(db, since)?,
    })
}

/// The places the runs `runs` saw each key in, each naming the host of its run.
fn places_now(
    db: &mut Db,
    runs: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Vec<Location>>, DbError> {
    let runs: Vec<i64> = runs.collect();
    let mut places: HashMap<i64, Vec<Location>> = HashMap::new();
    for chunk in runs.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let params: Vec<Value> = chunk.iter().map(|r| (*r).into()).collect();
        let rows = db.query(
            &format!(
                "SELECT s.key_id, r.host, l.detail FROM sighting s
                 JOIN location l ON l.id = s.location_id JOIN run r ON r.id = s.run_id
                 WHERE s.run_id IN ({marks}) ORDER BY s.key_id, r.host, l.place"
            ),
            &params,
        )?;
        for row in rows {
            match serde_json::from_str::<Location>(&text(&row, 2)) {
                Ok(mut location) => {
                    location.host.get_or_insert_with(|| text(&row, 1));
                    places
                        .entry(int(&row, 0).unwrap_or(0))
                        .or_default()
                        .push(location);
                }
                Err(err) => tracing::warn!(%err, "a stored place does not read as a location"),
            }
        }
    }
    Ok(places)
}

/// 0 for critical … 3 for low (and anything else).
fn severity_index(severity: &str) -> usize {
    match severity {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    }
}

/// What happened to the keys since `start`.
fn period_changes(start: DateTime<Utc>, records: &[(KeyRecord, Option<i64>)]) -> PeriodChanges {
    let changed = |record: &KeyRecord, at: DateTime<Utc>| ChangedKey {
        fingerprint: record.fingerprint.clone(),
        redacted: record.redacted.clone(),
        provider: record.provider.clone(),
        severity: record.severity.clone(),
        at,
    };
    let mut changes = PeriodChanges {
        since: start,
        new: Vec::new(),
        fixed: Vec::new(),
        reappeared: Vec::new(),
        still_open: Vec::new(),
    };
    for (record, reopened_at) in records {
        let first = record.first_detected.unwrap_or(start);
        let open = record.state == "open";
        if first >= start {
            changes.new.push(changed(record, first));
        }
        if let Some(fixed) = record.fixed_at.filter(|t| *t >= start && !open) {
            changes.fixed.push(changed(record, fixed));
        }
        let back = reopened_at.and_then(time).filter(|t| *t >= start && open);
        if let Some(back) = back {
            changes.reappeared.push(changed(record, back));
        } else if open && first < start {
            changes.still_open.push(changed(record, first));
        }
    }
    for list in [
        &mut changes.new,
        &mut changes.fixed,
        &mut changes.reappeared,
    ] {
        list.sort_by(|a, b| {
            b.at.cmp(&a.at)
                .then_with(|| a.fingerprint.cmp(&b.fingerprint))
        });
    }
    changes.still_open.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    changes
}

/// Fixed keys by time to fix, and per month of their fix.
fn time_to_fix(records: &[KeyRecord]) -> TimeToFix {
    let mut out = TimeToFix::default();
    let mut months: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for record in records {
        let (Some(days), Some(fixed)) = (record.time_to_fix_days, record.fixed_at) else {
            continue;
        };
        out.buckets.add(days);
        months
            .entry(fixed.format("%Y-%m").to_string())
            .or_default()
            .push(days);
    }
    out.by_month = months
        .into_iter()
        .map(|(month, mut days)| {
            let (mean, median) = mean_and_median(&mut days).unwrap_or_default();
            MonthOfFixes {
                month,
                fixed: days.len(),
                mean_days: mean,
                median_days: median,
            }
        })
        .collect();
    out
}

/// The mean and median of `values` (sorted in place), unless there are none.
fn mean_and_median(values: &mut [i64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    let mean = values.iter().sum::<i64>() as f64 / n as f64;
    let median = if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
    };
    Some((mean, median))
}

impl AgeBuckets {
    fn add(&mut self, days: i64) {
        match days {
            ..=7 => self.week += 1,
            8..=30 => self.month += 1,
            31..=90 => self.quarter += 1,
            _ => self.older += 1,
        }
    }
}

fn tally<'a>(records: impl Iterator<Item = &'a KeyRecord>) -> Tally {
    let mut out = Tally::default();
    let mut fix_times: Vec<i64> = Vec::new();
    for record in records {
        if record.state == "open" {
            out.open += 1;
            out.open_by_age.add(record.age_days.unwrap_or(0));
        } else {
            out.fixed += 1;
            fix_times.extend(record.time_to_fix_days);
        }
    }
    if let Some((mean, median)) = mean_and_median(&mut fix_times) {
        out.mean_time_to_fix_days = Some(mean);
        out.median_time_to_fix_days = Some(median);
    }
    out
}
