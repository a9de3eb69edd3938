//! Git findings placed in time. A git source hands each blob on once, with the repository's
//! history; here each finding becomes one location per path the blob was committed at (with
//! its first commit, HEAD, refs and reachability), the commit that took the key out of each
//! path is found, and the slot the key sat in is followed into the next version of the file:
//! a different key or a reference there means the key was rotated.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{evidence::Finding, key::Successor};
use crate::{
    detect::{slot, value::ValueClass},
    source::{git::Occurrence, Blob},
};

/// A slot of a git blob assigned a reference (`X=${X}`): what may have replaced a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub blob: String,
    pub slot: String,
    pub class: ValueClass,
}

/// The references in the slots of a git blob. Other blobs have no later versions, so
/// nothing is looked for in them.
pub fn assignments(blob: &Blob) -> Vec<Assignment> {
    let Some(git) = &blob.provenance.git else {
        return Vec::new();
    };
    slot::references(&blob.bytes)
        .into_iter()
        .map(|r| Assignment {
            blob: git.id.clone(),
            slot: r.slot,
            class: r.class,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotValue {
    /// A key, by fingerprint.
    Key(String),
    Reference(ValueClass),
}

/// What each git blob holds in each slot: keys (by fingerprint) and references.
#[derive(Debug, Default)]
pub struct SlotIndex {
    values: HashMap<(String, String), Vec<SlotValue>>,
}

impl SlotIndex {
    /// From the findings grouped by fingerprint, and the references of every git blob.
    pub fn new<'a>(
        groups: impl Iterator<Item = (&'a String, &'a Vec<Finding>)>,
        assignments: &[Assignment],
    ) -> SlotIndex {
        let mut values: HashMap<(String, String), Vec<SlotValue>> = HashMap::new();
        for (fingerprint, group) in groups {
            for finding in group {
                if let (Some(git), Some(slot)) = (&finding.git, &finding.location.slot) {
                    values
                        .entry((git.id.clone(), slot.clone()))
                        .or_default()
                        .push(SlotValue::Key(fingerprint.clone()));
                }
            }
        }
        for a in assignments {
            values
                .entry((a.blob.clone(), a.slot.clone()))
                .or_default()
                .push(SlotValue::Reference(a.class));
        }
        SlotIndex { values }
    }

    /// What took `fingerprint`'s place in `slot` of `blob`, if anything did.
    fn replacement(&self, blob: &str, slot: &str, fingerprint: &str) -> Option<&SlotValue> {
        let values = self.values.get(&(blob.to_string(), slot.to_string()))?;
        if values.contains(&SlotValue::Key(fingerprint.to_string())) {
            return None;
        }
        values
            .iter()
            .find(|v| matches!(v, SlotValue::Key(_)))
            .or_else(|| values.first())
    }
}

/// A commit that took the key out of a path.
struct KeyExit {
    path: String,
    slot: Option<String>,
    commit: String,
    time: Option<DateTime<Utc>>,
    on_head_line: bool,
    next: Option<String>,
}

/// Place the git findings of one key (`fingerprint`) in history: one finding per path each
/// blob was committed at, current when HEAD holds it there, with `removed_in` set where the
/// key left a path on HEAD's history; and the earliest successor in the key's slot, if any.
/// Findings from other sources pass through unchanged.
pub fn place(
    fingerprint: &str,
    group: Vec<Finding>,
    slots: &SlotIndex,
) -> (Vec<Finding>, Option<Successor>) {
    if group.iter().all(|f| f.git.is_none()) {
        return (group, None);
    }
    let key_blobs: HashSet<String> = group
        .iter()
        .filter_map(|f| f.git.as_ref().map(|g| g.id.clone()))
        .collect();
    let mut occurrences: HashMap<String, Vec<Occurrence>> = HashMap::new();
    let mut placed = Vec::with_capacity(group.len());
    let mut exits: Vec<KeyExit> = Vec::new();
    for finding in group {
        let Some(git) = finding.git.clone() else {
            placed.push(finding);
            continue;
        };
        let found = occurrences
            .entry(git.id.clone())
            .or_insert_with(|| git.history.occurrences(&git.id));
        if found.is_empty() {
            // A blob no commit holds: added and never committed, or its commits are gone.
            let mut dangling = finding;
            dangling.location.path = Default::default();
            dangling.location.reachable = Some(false);
            dangling.current = false;
            placed.push(dangling);
            continue;
        }
        for occurrence in found.iter() {
            let mut at = finding.clone();
            at.location.path = occurrence.path.clone().into();
            at.location.commit = Some(occurrence.commit.clone());
            at.location.commit_time = occurrence.time;
            at.location.in_head = Some(occurrence.in_head);
            at.location.refs = occurrence.refs.clone();
            at.location.reachable = Some(occurrence.reachable);
            at.current = occurrence.in_head;
            at.context.push(occurrence.path.clone());
            at.context.extend(occurrence.refs.iter().cloned());
            placed.push(at);
            exits.extend(
                occurrence
                    .exits
                    .iter()
                    .filter(|e| e.next.as_ref().is_none_or(|n| !key_blobs.contains(n)))
                    .map(|e| KeyExit {
                        path: occurrence.path.clone(),
                        slot: finding.location.slot.clone(),
                        commit: e.commit.clone(),
                        time: e.time,
                        on_head_line: e.on_head_line,
                        next: e.next.clone(),
                    }),
            );
        }
    }
    exits.sort_by(|a, b| (a.time, &a.commit).cmp(&(b.time, &b.commit)));

    // Where the key left each path on the way to HEAD (unless HEAD has it there).
    let mut removed_in: BTreeMap<String, String> = BTreeMap::new();
    for exit in exits.iter().filter(|e| e.on_head_line) {
        removed_in
            .entry(exit.path.clone())
            .or_insert_with(|| exit.commit.clone());
    }
    let in_head_paths: HashSet<String> = placed
        .iter()
        .filter(|f| f.git.is_some() && f.location.in_head == Some(true))
        .map(|f| f.location.path.display().to_string())
        .collect();
    for finding in placed.iter_mut().filter(|f| f.git.is_some()) {
        let path = finding.location.path.display().to_string();
        if !in_head_paths.contains(&path) {
            finding.location.removed_in = removed_in.get(&path).cloned();
        }
    }

    let successor = exits.iter().find_map(|exit| {
        let (next, slot) = (exit.next.as_ref()?, exit.slot.as_ref()?);
        let value = slots.replacement(next, slot, fingerprint)?;
        Some(Successor {
            fingerprint: match value {
                SlotValue::Key(f) => Some(f.clone()),
                SlotValue::Reference(_) => None,
            },
            reference: match value {
                SlotValue::Reference(class) => Some(*class),
                SlotValue::Key(_) => None,
            },
            path: exit.path.clone().into(),
            slot: slot.clone(),
            commit: Some(exit.commit.clone()),
            commit_time: exit.time,
        })
    });
    (placed, successor)
}
