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

/// What a git blob tells about its slots, beyond the keys found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// A slot assigned a reference (`X=${X}`): what may have replaced a key.
    Reference {
        blob: String,
        slot: String,
        /// The slot qualified by the object or table it sits in (see [`Sections`]).
        qualified: String,
        class: ValueClass,
    },
    /// The objects or tables of a structured file (JSON, TOML), which tell apart slots of
    /// the same name: `API_KEY` of two MCP servers in one config are two slots.
    Sections { blob: String, sections: Sections },
}

/// Git blobs larger than this are not split into sections: configs are small.
const MAX_SECTIONED_BLOB: usize = 256 * 1024;

/// The references in the slots of a git blob, and its sections. Other blobs have no later
/// versions, so nothing is looked for in them. Sections only tell slots apart, so a blob with
/// no reference and no key in a slot (`keys_in_slots`: most blobs) is not read for them.
pub fn assignments(blob: &Blob, keys_in_slots: bool) -> Vec<Assignment> {
    let Some(id) = blob.provenance.origin.git().and_then(|g| g.blob.as_ref()) else {
        return Vec::new();
    };
    let references = slot::references(&blob.bytes);
    if references.is_empty() && !keys_in_slots {
        return Vec::new();
    }
    let sections = Sections::of(&blob.bytes);
    let mut found: Vec<Assignment> = references
        .into_iter()
        .map(|r| Assignment::Reference {
            blob: id.clone(),
            qualified: qualify(sections.as_ref(), r.line, &r.slot),
            slot: r.slot,
            class: r.class,
        })
        .collect();
    if let Some(sections) = sections {
        found.push(Assignment::Sections {
            blob: id.clone(),
            sections,
        });
    }
    found
}

/// Where the lines of a structured file sit: from each listed line (1-based) on, the dotted
/// path of the JSON objects or the TOML table open at that line's start
/// (`mcpServers.alpha.env`, `mcp_servers.alpha.env`). Each path is kept once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    /// (first line, index in `paths`), by line.
    lines: Vec<(u32, u32)>,
    paths: Vec<String>,
}

impl Sections {
    /// The sections of a JSON (comments allowed) or TOML text; `None` for other text, or
    /// when the text has no section at all.
    fn of(data: &[u8]) -> Option<Sections> {
        if data.len() > MAX_SECTIONED_BLOB {
            return None;
        }
        let first = data.iter().find(|b| !b.is_ascii_whitespace())?;
        let sections = if *first == b'{' {
            json_sections(data)
        } else if *first == b'[' || memchr::memmem::find(data, b"\n[").is_some() {
            toml_sections(data)
        } else {
            return None;
        };
        (!sections.lines.is_empty()).then_some(sections)
    }

    fn at(&self, line: usize) -> &str {
        let after = self
            .lines
            .partition_point(|&(from, _)| from as usize <= line);
        after
            .checked_sub(1)
            .map_or("", |i| self.paths[self.lines[i].1 as usize].as_str())
    }

    /// From `line` on, the path is `path`; `known` numbers the paths seen so far.
    fn push(&mut self, known: &mut HashMap<String, u32>, line: usize, path: &str) {
        let current = self
            .lines
            .last()
            .map_or("", |&(_, p)| &self.paths[p as usize]);
        if current == path {
            return;
        }
        let index = match known.get(path) {
            Some(&i) => i,
            None => {
                self.paths.push(path.to_string());
                let i = self.paths.len() as u32 - 1;
                known.insert(path.to_string(), i);
                i
            }
        };
        self.lines.push((line as u32, index));
    }
}

/// `slot` qualified by the section of `line`: `mcpServers.alpha.env.API_KEY`.
fn qualify(sections: Option<&Sections>, line: usize, slot: &str) -> String {
    match sections.map(|s| s.at(line)) {
        Some(path) if !path.is_empty() => format!("{path}.{slot}"),
        _ => slot.to_string(),
    }
}

/// The member names of the JSON objects open at each line's start. Arrays and unnamed
/// objects add no name.
fn json_sections(data: &[u8]) -> Sections {
    let mut sections = Sections::default();
    let mut known = HashMap::new();
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut last_string: Option<String> = None;
    let mut member: Option<String> = None;
    let mut line = 1;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                line += 1;
                let path: Vec<&str> = stack.iter().flatten().map(String::as_str).collect();
                sections.push(&mut known, line, &path.join("."));
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < data.len() && data[i] != b'"' && data[i] != b'\n' {
                    i += if data[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(data.len());
                last_string = Some(String::from_utf8_lossy(&data[start..end]).into_owned());
                if i < data.len() && data[i] == b'\n' {
                    continue;
                }
            }
            b'/' if data.get(i + 1) == Some(&b'/') => {
                i = memchr::memchr(b'\n', &data[i..]).map_or(data.len(), |n| i + n);
                continue;
            }
            b'/' if data.get(i + 1) == Some(&b'*') => {
                let end = memchr::memmem::find(&data[i + 2..], b"*/")
                    .map_or(data.len(), |n| i + 2 + n + 2);
                line += memchr::memchr_iter(b'\n', &data[i..end]).count();
                i = end;
                continue;
            }
            b':' => member = last_string.take(),
            b'{' | b'[' => stack.push(member.take()),
            b'}' | b']' => {
                stack.pop();
                member = None;
            }
            b',' => member = None,
            _ => {}
        }
        i += 1;
    }
    sections
}

/// The `[table]` (or `[[array]]`) header above each line, quotes and blanks dropped.
fn toml_sections(data: &[u8]) -> Sections {
    let mut sections = Sections::default();
    let mut known = HashMap::new();
    for (n, text) in data.split(|&b| b == b'\n').enumerate() {
        let text = text.trim_ascii();
        if text.first() != Some(&b'[') {
            continue;
        }
        let Some(close) = memchr::memrchr(b']', text) else {
            continue;
        };
        let header: Vec<u8> = text[..close]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'[' | b']' | b'"' | b'\'' | b' ' | b'\t'))
            .collect();
        let is_name = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if !header.is_empty() && header.iter().all(is_name) {
            sections.push(&mut known, n + 1, &String::from_utf8_lossy(&header));
        }
    }
    sections
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SlotValue {
    /// A key, by fingerprint.
    Key(String),
    Reference(ValueClass),
}

/// Whether a slot's `values` (keys first, sorted by fingerprint: see [`SlotIndex`]'s build)
/// hold the key `fingerprint`: a binary search, as a slot may hold many keys.
fn holds(values: &[SlotValue], fingerprint: &str) -> bool {
    let keys = values.partition_point(|v| matches!(v, SlotValue::Key(_)));
    values[..keys]
        .binary_search_by(|v| match v {
            SlotValue::Key(f) => f.as_str().cmp(fingerprint),
            SlotValue::Reference(_) => std::cmp::Ordering::Greater,
        })
        .is_ok()
}

/// What each git blob holds in each slot: keys (by fingerprint) and references, by slot
/// qualified by its section and by its bare name.
#[derive(Debug, Default)]
pub struct SlotIndex {
    qualified: HashMap<(String, String), Vec<SlotValue>>,
    plain: HashMap<(String, String), Vec<SlotValue>>,
    sections: HashMap<String, Sections>,
}

impl SlotIndex {
    /// From the findings grouped by fingerprint, and the references and sections of every
    /// git blob.
    pub fn new<'a>(
        groups: impl Iterator<Item = (&'a String, &'a Vec<Finding>)>,
        assignments: &[Assignment],
    ) -> SlotIndex {
        let mut index = SlotIndex::default();
        for a in assignments {
            if let Assignment::Sections { blob, sections } = a {
                index.sections.insert(blob.clone(), sections.clone());
            }
        }
        let add = |index: &mut SlotIndex, blob: &str, slot: &str, q: String, v: SlotValue| {
            index
                .plain
                .entry((blob.to_string(), slot.to_string()))
                .or_default()
                .push(v.clone());
            index
                .qualified
                .entry((blob.to_string(), q))
                .or_default()
                .push(v);
        };
        for (fingerprint, group) in groups {
            for finding in group {
                if let (Some(blob), Some(slot)) = (git_blob(finding), &finding.location.slot) {
                    let q = index.qualify(blob, finding.location.line, slot);
                    add(
                        &mut index,
                        blob,
                        slot,
                        q,
                        SlotValue::Key(fingerprint.clone()),
                    );
                }
            }
        }
        for a in assignments {
            if let Assignment::Reference {
                blob,
                slot,
                qualified,
                class,
            } = a
            {
                add(
                    &mut index,
                    blob,
                    slot,
                    qualified.clone(),
                    SlotValue::Reference(*class),
                );
            }
        }
        for values in index.plain.values_mut().chain(index.qualified.values_mut()) {
            // Keys first, in a stable order whatever order the findings came in.
            values.sort_by_cached_key(|v| match v {
                SlotValue::Key(f) => (0, f.clone()),
                SlotValue::Reference(class) => (1, format!("{class:?}")),
            });
            values.dedup();
        }
        index
    }

    /// `slot` of a key on `line` of `blob`, qualified by its section.
    fn qualify(&self, blob: &str, line: Option<usize>, slot: &str) -> String {
        qualify(self.sections.get(blob), line.unwrap_or(0), slot)
    }

    /// What took `fingerprint`'s place in its slot when `old` became `new`, if anything did:
    /// what the same qualified slot holds in `new`; or, when that slot is gone (its server
    /// was dropped or renamed), a key new to the bare slot name, never one that already sat
    /// beside it in `old`.
    fn replacement(
        &self,
        old: &str,
        new: &str,
        qualified: &str,
        slot: &str,
        fingerprint: &str,
    ) -> Option<&SlotValue> {
        if let Some(values) = self
            .qualified
            .get(&(new.to_string(), qualified.to_string()))
        {
            if holds(values, fingerprint) {
                return None;
            }
            return values
                .iter()
                .find(|v| matches!(v, SlotValue::Key(_)))
                .or_else(|| values.first());
        }
        if qualified == slot {
            return None;
        }
        let values = self.plain.get(&(new.to_string(), slot.to_string()))?;
        if holds(values, fingerprint) {
            return None;
        }
        let before = self.plain.get(&(old.to_string(), slot.to_string()));
        values
            .iter()
            .find(|v| matches!(v, SlotValue::Key(_)) && before.is_none_or(|b| !b.contains(v)))
    }
}

/// The id of the git blob a finding is in.
fn git_blob(finding: &Finding) -> Option<&str> {
    finding.location.origin().git()?.blob.as_deref()
}

/// A commit that took the key out of a path.
struct KeyExit {
    path: String,
    /// The blob it left.
    blob: String,
    slot: Option<String>,
    /// `slot`, qualified by its section of the blob.
    qualified: Option<String>,
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
    if group.iter().all(|f| f.location.origin().git().is_none()) {
        return (group, None);
    }
    let key_blobs: HashSet<String> = group
        .iter()
        .filter_map(|f| git_blob(f).map(str::to_string))
        .collect();
    let mut occurrences: HashMap<String, Vec<Occurrence>> = HashMap::new();
    let mut placed = Vec::with_capacity(group.len());
    let mut exits: Vec<KeyExit> = Vec::new();
    for mut finding in group {
        let Some(git) = finding.location.provenance.origin.git_mut() else {
            placed.push(finding);
            continue;
        };
        let (Some(id), Some(history)) = (git.blob.clone(), git.history.take()) else {
            placed.push(finding);
            continue;
        };
        let found = occurrences
            .entry(id.clone())
            .or_insert_with(|| history.0.occurrences(&id));
        if found.is_empty() {
            // A blob no commit holds: added and never committed, or its commits are gone.
            let mut dangling = finding;
            dangling.location.provenance.path = Default::default();
            if let Some(git) = dangling.location.provenance.origin.git_mut() {
                git.reachable = Some(false);
            }
            placed.push(dangling);
            continue;
        }
        let qualified = finding
            .location
            .slot
            .as_ref()
            .map(|slot| slots.qualify(&id, finding.location.line, slot));
        for occurrence in found.iter() {
            let mut at = finding.clone();
            at.location.provenance.path = occurrence.path.clone().into();
            if let Some(git) = at.location.provenance.origin.git_mut() {
                git.commit = Some(occurrence.commit.clone());
                git.commit_time = occurrence.time;
                git.in_head = Some(occurrence.in_head);
                git.refs = occurrence.refs.clone();
                git.reachable = Some(occurrence.reachable);
            }
            // A committed config's servers were read before history named the blob's path.
            for server in &mut at.mcp_servers {
                if server.config.as_os_str() == id.as_str() {
                    server.config = occurrence.path.clone().into();
                }
            }
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
                        blob: id.clone(),
                        slot: finding.location.slot.clone(),
                        qualified: qualified.clone(),
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
        .filter(|f| f.location.origin().git().is_some() && f.location.origin().is_current())
        .map(|f| f.location.path().display().to_string())
        .collect();
    for finding in &mut placed {
        let path = finding.location.path().display().to_string();
        if let Some(git) = finding.location.provenance.origin.git_mut() {
            if !in_head_paths.contains(&path) {
                git.removed_in = removed_in.get(&path).cloned();
            }
        }
    }

    let successor = exits.iter().find_map(|exit| {
        let (next, slot) = (exit.next.as_ref()?, exit.slot.as_ref()?);
        let qualified = exit.qualified.as_deref().unwrap_or(slot);
        let value = slots.replacement(&exit.blob, next, qualified, slot, fingerprint)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_sections_name_the_objects_open_at_each_line() {
        let text = "{\n  // servers\n  \"mcpServers\": {\n    \"a\": {\n      \"args\": [\"{x}\", \"y:z\"],\n      \"env\": {\n        \"API_KEY\": \"v\"\n      }\n    },\n    \"b\": { \"env\": {\n        \"API_KEY\": \"w\" } }\n  }\n}\n";
        let sections = Sections::of(text.as_bytes()).unwrap();
        assert_eq!(sections.at(1), "");
        assert_eq!(sections.at(4), "mcpServers");
        assert_eq!(sections.at(5), "mcpServers.a");
        assert_eq!(sections.at(7), "mcpServers.a.env");
        assert_eq!(sections.at(11), "mcpServers.b.env");
        assert_eq!(sections.at(12), "mcpServers");
        assert_eq!(
            qualify(Some(&sections), 7, "API_KEY"),
            "mcpServers.a.env.API_KEY"
        );
    }

    #[test]
    fn toml_sections_follow_table_headers() {
        let text = "model = \"x\"\n[mcp_servers.a.env]\nAPI_KEY = \"v\"\n[ mcp_servers.\"b\".env ]\nAPI_KEY = \"w\"\n";
        let sections = Sections::of(text.as_bytes()).unwrap();
        assert_eq!(sections.at(1), "");
        assert_eq!(sections.at(3), "mcp_servers.a.env");
        assert_eq!(sections.at(5), "mcp_servers.b.env");
        assert!(Sections::of(b"API_KEY=v\nexport B=w\n").is_none());
        assert_eq!(qualify(None, 1, "API_KEY"), "API_KEY");
    }
}
