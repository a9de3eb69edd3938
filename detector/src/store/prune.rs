//! Retention: runs older than a cutoff are forgotten, with their sightings and states, and the
//! keys and places no remaining run holds. A key still open is never forgotten: every run that
//! saw it is kept (its first detection with it), though the other keys' rows of those runs go.
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{
    db::{Db, DbError, Value},
    Store, StoreError,
};

/// What a prune forgot.
#[derive(Debug, Default)]
pub struct Pruned {
    pub runs: u64,
    pub keys: u64,
    pub places: u64,
    /// Agents' records older than the cutoff (those of files an open key is in are kept).
    pub agent_events: u64,
    /// Keys still open, kept whatever their age.
    pub open_keys: usize,
}

impl Store {
    pub fn prune(&mut self, cutoff: DateTime<Utc>) -> Result<Pruned, StoreError> {
        let open: BTreeSet<String> = self
            .inventory(Utc::now())?
            .keys
            .into_iter()
            .filter(|k| k.state == "open")
            .map(|k| k.fingerprint)
            .collect();
        let db = &mut self.db;
        let result = (|| {
            db.begin()?;
            let pruned = prune(db, cutoff.timestamp(), &open);
            match pruned {
                Ok(pruned) => {
                    db.commit()?;
                    Ok(pruned)
                }
                Err(err) => {
                    db.rollback();
                    Err(err)
                }
            }
        })();
        result.map_err(|e| self.failed(e))
    }
}

fn prune(db: &mut Db, cutoff: i64, open: &BTreeSet<String>) -> Result<Pruned, DbError> {
    let open_ids: Vec<i64> = db
        .query("SELECT id, fingerprint FROM inventory_key", &[])?
        .iter()
        .filter(|r| {
            r.get(1)
                .and_then(Value::text)
                .is_some_and(|f| open.contains(f))
        })
        .filter_map(|r| r.first().and_then(Value::int))
        .collect();
    // Rows of open keys are kept: mark them through a temporary table both backends know.
    db.batch("CREATE TEMPORARY TABLE IF NOT EXISTS kept_key (id BIGINT PRIMARY KEY)")?;
    db.batch("DELETE FROM kept_key")?;
    for id in &open_ids {
        db.execute("INSERT INTO kept_key (id) VALUES (?)", &[Value::Int(*id)])?;
    }
    let old = "SELECT id FROM run WHERE generated_at < ?";
    db.execute(
        &format!(
            "DELETE FROM sighting WHERE run_id IN ({old}) AND key_id NOT IN (SELECT id FROM kept_key)"
        ),
        &[cutoff.into()],
    )?;
    db.execute(
        &format!(
            "DELETE FROM key_run WHERE run_id IN ({old}) AND key_id NOT IN (SELECT id FROM kept_key)"
        ),
        &[cutoff.into()],
    )?;
    let runs = db.execute(
        "DELETE FROM run WHERE generated_at < ? AND NOT EXISTS (SELECT 1 FROM key_run WHERE key_run.run_id = run.id)",
        &[cutoff.into()],
    )?;
    let keys = db.execute(
        "DELETE FROM inventory_key WHERE NOT EXISTS (SELECT 1 FROM key_run WHERE key_run.key_id = inventory_key.id)",
        &[],
    )?;
    let places = db.execute(
        "DELETE FROM location WHERE NOT EXISTS (SELECT 1 FROM sighting WHERE sighting.location_id = location.id)",
        &[],
    )?;
    let agent_events = db.execute(
        "DELETE FROM agent_event WHERE time < ? AND (path IS NULL OR path NOT IN (
           SELECT l.path FROM location l JOIN sighting s ON s.location_id = l.id
           WHERE s.key_id IN (SELECT id FROM kept_key)))",
        &[cutoff.into()],
    )?;
    Ok(Pruned {
        runs,
        keys,
        places,
        agent_events,
        open_keys: open_ids.len(),
    })
}
