//! A report into the store: one run, in one transaction, so that a reader never sees half a
//! run and a writer killed halfway leaves nothing. Keys are written in fingerprint order, so
//! that writers of the same keys at once take their row locks in the same order (no deadlock).
use std::collections::HashMap;

use ring::digest;

use super::{
    db::{Db, DbError, Row, Value},
    Store, StoreError,
};
use crate::{
    audit::{Key, Location, Status},
    report::Report,
};

/// How many times a run is written when the server breaks a deadlock or a conflict with it.
const MAX_ATTEMPTS: u32 = 5;

/// Places whose ids one statement reads back.
const PLACES_PER_QUERY: usize = 1_000;

/// How a run came into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written by the scan or audit that made it.
    Live,
    /// `detector store ingest` of a saved report (or a spool file).
    Ingest,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Live => "live",
            Origin::Ingest => "ingest",
        }
    }
}

/// What recording a report did.
#[derive(Debug)]
pub struct Recorded {
    pub run: i64,
    /// False when the same report was recorded before (nothing changed).
    pub new_run: bool,
}

impl Store {
    /// Record `report` as a run of `scope` (`audit`, or what a scan covered). `digest_of`: the
    /// bytes that identify the report (a saved file's, else its JSON), so that recording the
    /// same report twice changes nothing.
    pub fn record(
        &mut self,
        report: &Report,
        scope: &str,
        origin: Origin,
        identity: &[u8],
    ) -> Result<Recorded, StoreError> {
        let sha256 = hex::encode(digest::digest(&digest::SHA256, identity));
        let result = record(&mut self.db, report, scope, origin, &sha256);
        result.map_err(|e| self.failed(e))
    }
}

fn record(
    db: &mut Db,
    report: &Report,
    scope: &str,
    origin: Origin,
    sha256: &str,
) -> Result<Recorded, DbError> {
    if let Some(run) = db.query_int(
        "SELECT id FROM run WHERE report_sha256 = ?",
        &[sha256.into()],
    )? {
        return Ok(Recorded {
            run,
            new_run: false,
        });
    }
    // Writers of the same keys at once take their row locks in the same order; should the
    // server still pick this one to break a deadlock, the whole run is written again.
    let mut attempt = 0;
    let run = loop {
        attempt += 1;
        db.begin()?;
        let written = write_run(db, report, scope, origin, sha256).and_then(|run| {
            before_commit_hook();
            db.commit()?;
            Ok(run)
        });
        match written {
            Ok(run) => break run,
            Err(DbError::Retry(_)) if attempt < MAX_ATTEMPTS => {
                db.rollback();
                tracing::debug!(attempt, "the store asked to write the run again");
            }
            Err(err) => {
                db.rollback();
                // Another writer recorded the same report meanwhile: it is recorded.
                if let Some(run) = db.query_int(
                    "SELECT id FROM run WHERE report_sha256 = ?",
                    &[sha256.into()],
                )? {
                    break run;
                }
                return Err(err);
            }
        }
    };
    Ok(Recorded { run, new_run: true })
}

fn write_run(
    db: &mut Db,
    report: &Report,
    scope: &str,
    origin: Origin,
    sha256: &str,
) -> Result<i64, DbError> {
    let host = report.host.clone().unwrap_or_else(|| "unknown".to_string());
    let run = db
        .query_int(
            "INSERT INTO run (host, scope, generated_at, recorded_at, tool_version, report_sha256, origin)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            &[
                host.into(),
                scope.into(),
                report.generated_at.timestamp().into(),
                chrono::Utc::now().timestamp().into(),
                report.tool.version.clone().into(),
                sha256.into(),
                origin.as_str().into(),
            ],
        )?
        .ok_or_else(|| DbError::Failed("no run id".into()))?;
    // Every place first, in the order of their identity, then every key in fingerprint order:
    // what concurrent writers of overlapping reports lock, they lock in the same order. Each
    // table takes its rows in few statements (many rows each), in that order.
    let mut keys: Vec<(&Key, Vec<String>)> = Vec::with_capacity(report.keys.len());
    let mut places: Vec<(String, String, &Location)> = Vec::new();
    for key in &report.keys {
        let mut of_key = Vec::with_capacity(key.locations.len());
        for location in &key.locations {
            let (place, detail) = place_of(location)?;
            of_key.push(place.clone());
            places.push((place, detail, location));
        }
        keys.push((key, of_key));
    }
    places.sort_by(|a, b| a.0.cmp(&b.0));
    places.dedup_by(|a, b| a.0 == b.0);
    // A place is written once and never changes: a place known already is left as it is (no
    // new row version), and the ids of all are read back.
    db.insert_rows(
        "INSERT INTO location (place, kind, host, path, line, detail)",
        &places
            .iter()
            .map(|(place, detail, location)| {
                vec![
                    place.as_str().into(),
                    location.kind().as_str().into(),
                    Value::opt_text(location.host.as_deref()),
                    location.path().to_string_lossy().into_owned().into(),
                    Value::opt_int(location.line.map(|l| l as i64)),
                    detail.as_str().into(),
                ]
            })
            .collect::<Vec<_>>(),
        "ON CONFLICT (place) DO NOTHING",
    )?;
    let mut place_ids = HashMap::with_capacity(places.len());
    for chunk in places.chunks(PLACES_PER_QUERY) {
        let sql = format!(
            "SELECT place, id FROM location WHERE place IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let params: Vec<Value> = chunk
            .iter()
            .map(|(place, ..)| place.as_str().into())
            .collect();
        place_ids.extend(ids(db.query(&sql, &params)?)?);
    }
    // A key listed twice in one report is one key of the run (its first entry).
    keys.sort_by(|a, b| a.0.fingerprint.cmp(&b.0.fingerprint));
    keys.dedup_by(|a, b| a.0.fingerprint == b.0.fingerprint);
    let key_ids = ids(db.insert_rows(
        "INSERT INTO inventory_key (fingerprint, rule, provider, severity, redacted, first_seen, last_seen)",
        &keys
            .iter()
            .map(|(key, _)| {
                vec![
                    key.fingerprint.as_str().into(),
                    key.rule.as_str().into(),
                    key.provider.as_str().into(),
                    key.severity.to_string().into(),
                    key.redacted.as_str().into(),
                    Value::opt_int(key.first_seen.map(|t| t.timestamp())),
                    Value::opt_int(key.last_seen.map(|t| t.timestamp())),
                ]
            })
            .collect::<Vec<_>>(),
        "ON CONFLICT (fingerprint) DO UPDATE SET
           rule = excluded.rule, provider = excluded.provider, severity = excluded.severity,
           redacted = excluded.redacted,
           first_seen = LEAST(COALESCE(inventory_key.first_seen, excluded.first_seen), COALESCE(excluded.first_seen, inventory_key.first_seen)),
           last_seen = GREATEST(COALESCE(inventory_key.last_seen, excluded.last_seen), COALESCE(excluded.last_seen, inventory_key.last_seen))
         RETURNING fingerprint, id",
    )?)?;
    let id_of = |ids: &HashMap<String, i64>, name: &str| {
        ids.get(name)
            .copied()
            .ok_or_else(|| DbError::Failed(format!("no id for {name}")))
    };
    let mut key_runs = Vec::with_capacity(keys.len());
    let mut sightings = Vec::new();
    for (key, places) in &keys {
        let id = id_of(&key_ids, &key.fingerprint)?;
        let verification = key.verification.as_ref();
        key_runs.push(vec![
            run.into(),
            id.into(),
            key.status.as_str().into(),
            key.severity.to_string().into(),
            is_exposed(key).into(),
            joined(key.violations.iter().map(|v| v.as_str())).into(),
            joined(key.scope.projects.iter().map(String::as_str)).into(),
            joined(key.scope.environments.iter().map(|e| e.as_str())).into(),
            Value::opt_text(verification.map(|v| v.state.as_str())),
            Value::opt_int(verification.map(|v| v.checked_at.timestamp())),
        ]);
        for (location, place) in key.locations.iter().zip(places) {
            sightings.push(vec![
                run.into(),
                id.into(),
                id_of(&place_ids, place)?.into(),
                location.origin().is_current().into(),
            ]);
        }
    }
    db.insert_rows(
        "INSERT INTO key_run (run_id, key_id, status, severity, exposed, violations, projects, environments, verification, verified_at)",
        &key_runs,
        "",
    )?;
    // A key seen twice in one place is one sighting (the first).
    db.insert_rows(
        "INSERT INTO sighting (run_id, key_id, location_id, is_current)",
        &sightings,
        "ON CONFLICT DO NOTHING",
    )?;
    Ok(run)
}

/// `name → id` from rows of `RETURNING name, id`.
fn ids(rows: Vec<Row>) -> Result<HashMap<String, i64>, DbError> {
    rows.into_iter()
        .map(|row| match (row.first(), row.get(1).and_then(Value::int)) {
            (Some(Value::Text(name)), Some(id)) => Ok((name.clone(), id)),
            _ => Err(DbError::Failed("a row without its id".into())),
        })
        .collect()
}

/// Tests only (debug builds): run `$DETECTOR_TEST_BEFORE_COMMIT` with `sh -c` while the run
/// is written but not committed, so that a test can kill the writer there.
fn before_commit_hook() {
    #[cfg(debug_assertions)]
    if let Some(command) = std::env::var_os("DETECTOR_TEST_BEFORE_COMMIT") {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .status();
    }
}

/// Exposed in this run: in a current place that is not detector's managed store.
pub fn is_exposed(key: &Key) -> bool {
    key.status == Status::Live && !key.held_in_store
}

fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// A location's identity (the SHA-256 of its v1 JSON) and that JSON (which holds no secret).
fn place_of(location: &Location) -> Result<(String, String), DbError> {
    let detail = serde_json::to_string(location).map_err(|e| DbError::Failed(e.to_string()))?;
    let place = hex::encode(digest::digest(&digest::SHA256, detail.as_bytes()));
    Ok((place, detail))
}
