//! Where each blob lived: which commits put it at which path, which took it away and what came
//! next, whether HEAD still has it, and which refs reach it. Facts about history only; what a
//! blob holds is the detector's business.
//!
//! Every commit (reachable or not) is diffed against its parents by walking the two trees
//! side by side and descending only into subtrees whose ids differ, so a commit costs the
//! trees it changed, not the size of the repository; parsed trees are cached by id, so a tree
//! shared by consecutive commits is read once. The result is one flat list of changes
//! (commit, path, old blob, new blob), indexed by blob both ways.
//!
//! Objects are read as stored (replace refs are not applied: see `open` in `source::git`), so trees
//! form no cycle unless an object is forged (stored under an id that is not its hash). The
//! walks still assume hostile input: trees are walked with an explicit stack, a tree that is
//! its own ancestor is not entered again, nothing deeper than [`MAX_TREE_DEPTH`] directories is
//! entered, one commit's walk steps through at most [`MAX_TREE_ENTRIES`] entries, tags are
//! peeled with a visited set; what was cut short is reported as not scanned (over a limit)
//! with its commit and path.
use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    path::Path,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use chrono::{DateTime, Utc};
use gix::{prelude::Find, ObjectId};
use rayon::prelude::*;

use super::objects::{lock, one_line, ObjectSink};
use crate::source::{Skip, SkipReason};

/// A commit as the object pass parsed it.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub id: ObjectId,
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    /// Author time (committer time when the author line is unreadable), seconds since the epoch.
    pub time: i64,
}

/// Parse the header of a commit object: tree, parents, author time.
pub fn parse_commit(id: ObjectId, data: &[u8], hash: gix::hash::Kind) -> Option<CommitRecord> {
    let mut tree = None;
    let mut parents = Vec::new();
    let mut author = None;
    let mut committer = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"tree ") {
            tree = ObjectId::from_hex(hex).ok();
        } else if let Some(hex) = line.strip_prefix(b"parent ") {
            parents.push(ObjectId::from_hex(hex).ok()?);
        } else if let Some(sig) = line.strip_prefix(b"author ") {
            author = signature_time(sig);
        } else if let Some(sig) = line.strip_prefix(b"committer ") {
            committer = signature_time(sig);
        }
    }
    let tree = tree.filter(|t| t.kind() == hash)?;
    Some(CommitRecord {
        id,
        tree,
        parents,
        time: author.or(committer).unwrap_or(0),
    })
}

/// The message of a commit object: what follows its header's blank line.
pub fn commit_message(data: &[u8]) -> &[u8] {
    match memchr::memmem::find(data, b"\n\n") {
        Some(end) => &data[end + 2..],
        None => &[],
    }
}

/// `Name <email> 1700000000 +0100` → 1700000000.
fn signature_time(sig: &[u8]) -> Option<i64> {
    let after_email = &sig[memchr::memrchr(b'>', sig)? + 1..];
    let text = std::str::from_utf8(after_email).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// One path a blob was committed at, and what became of it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub path: String,
    /// The earliest commit (by author time) that put the blob at this path.
    pub commit: String,
    pub time: Option<DateTime<Utc>>,
    /// HEAD's tree has the blob at this path.
    pub in_head: bool,
    /// Some ref (branch, tag, remote-tracking ref, stash, note, HEAD) reaches a commit that
    /// put it here; false when only unreachable commits did.
    pub reachable: bool,
    /// The refs that reach a commit holding it here.
    pub refs: Vec<String>,
    /// Every commit that replaced or deleted the blob at this path.
    pub exits: Vec<Exit>,
}

/// A commit that took a blob away from a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub commit: String,
    pub time: Option<DateTime<Utc>>,
    /// The commit is on the history leading to HEAD.
    pub on_head_line: bool,
    /// The blob that took its place, or `None` when the path was deleted.
    pub next: Option<String>,
}

/// The history of one repository, filled in once its commits are walked (after its blobs were
/// handed on: the audit reads it once the scan is over).
#[derive(Default)]
pub struct GitHistory {
    timeline: OnceLock<Timeline>,
}

impl std::fmt::Debug for GitHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHistory")
            .field("walked", &self.timeline.get().is_some())
            .finish()
    }
}

impl GitHistory {
    pub(super) fn fill(&self, timeline: Timeline) {
        let _ = self.timeline.set(timeline);
    }

    /// Every path `blob` (hex id) was committed at; empty for a blob no commit holds (a
    /// dangling blob) or before the walk is done.
    pub fn occurrences(&self, blob: &str) -> Vec<Occurrence> {
        match (self.timeline.get(), ObjectId::from_hex(blob.as_bytes())) {
            (Some(timeline), Ok(id)) => timeline.occurrences(&id),
            _ => Vec::new(),
        }
    }
}

/// No blob: the `old` of an addition, the `new` of a deletion.
const NONE: u32 = u32::MAX;

/// Missing blobs named one by one, with a path that names them, up to this many; the rest are
/// counted in one line.
const NAMED_MISSING_BLOBS: usize = 20;

/// How many directories below a commit's root a tree walk enters. Real trees are nowhere near
/// it (git itself stops at 2048 by default, `core.maxTreeDepth`); a deeper one is made to
/// exhaust readers, and a subtree below the limit is reported, not walked.
pub const MAX_TREE_DEPTH: usize = 4096;

/// How many entries one commit's tree walk steps through. The largest public work trees hold
/// well under a million files; a tree that names one subtree twice, level after level, holds
/// 2^levels paths in a few hundred bytes, and its walk stops here and says so.
pub const MAX_TREE_ENTRIES: usize = 1 << 21;

/// Subtrees not walked (cycles, past the depth limit) named one by one up to this many; the
/// rest are counted in one line.
const NAMED_CUTS: usize = 20;

#[derive(Debug, Clone, Copy)]
struct Change {
    commit: u32,
    path: u32,
    old: u32,
    new: u32,
}

struct Commit {
    id: ObjectId,
    time: i64,
}

pub(super) struct Timeline {
    commits: Vec<Commit>,
    /// Children of each commit, to find the refs that reach it.
    children: Vec<Vec<u32>>,
    /// Ref names by the commit they point at (peeled).
    tips: HashMap<u32, Vec<String>>,
    reachable: Vec<bool>,
    head_line: Vec<bool>,
    head_tree: BTreeSet<(u32, u32)>,
    paths: Vec<String>,
    blobs: Vec<ObjectId>,
    blob_index: HashMap<ObjectId, u32>,
    changes: Vec<Change>,
    /// Changes with a `new` blob, sorted by it; and with an `old` one, sorted by that.
    by_new: Vec<u32>,
    by_old: Vec<u32>,
}

impl Timeline {
    fn occurrences(&self, blob: &ObjectId) -> Vec<Occurrence> {
        let Some(&blob) = self.blob_index.get(blob) else {
            return Vec::new();
        };
        let mut by_path: HashMap<u32, Vec<u32>> = HashMap::new();
        for &c in self.range(&self.by_new, blob, |c| c.new) {
            let change = self.changes[c as usize];
            by_path.entry(change.path).or_default().push(change.commit);
        }
        let mut occurrences: Vec<Occurrence> = by_path
            .into_iter()
            .map(|(path, commits)| {
                let first = *commits
                    .iter()
                    .min_by_key(|&&c| (self.commits[c as usize].time, self.commits[c as usize].id))
                    .expect("a path has at least one commit");
                let exits = self
                    .range(&self.by_old, blob, |c| c.old)
                    .iter()
                    .map(|&c| self.changes[c as usize])
                    .filter(|c| c.path == path)
                    .map(|c| Exit {
                        commit: self.commits[c.commit as usize].id.to_string(),
                        time: time(self.commits[c.commit as usize].time),
                        on_head_line: self.head_line[c.commit as usize],
                        next: (c.new != NONE).then(|| self.blobs[c.new as usize].to_string()),
                    })
                    .collect();
                Occurrence {
                    path: self.paths[path as usize].clone(),
                    commit: self.commits[first as usize].id.to_string(),
                    time: time(self.commits[first as usize].time),
                    in_head: self.head_tree.contains(&(blob, path)),
                    reachable: commits.iter().any(|&c| self.reachable[c as usize]),
                    refs: self.refs_reaching(&commits),
                    exits,
                }
            })
            .collect();
        occurrences.sort_by(|a, b| (a.time, &a.path).cmp(&(b.time, &b.path)));
        occurrences
    }

    /// Report the blobs that trees name but the object database lacks (a loose object file
    /// deleted, an incomplete fetch), each with a path and commit that name it: its contents
    /// were never scanned. A blob the database has but could not decode was already reported
    /// by the object pass.
    fn report_missing_blobs(&self, repo: &gix::ThreadSafeRepository, sink: &dyn ObjectSink) {
        let mut missing: Vec<u32> = (0..self.blobs.len() as u32)
            .into_par_iter()
            .map_init(
                || repo.to_thread_local(),
                // Without a refresh: each miss would list the pack directory again, and a
                // partial clone misses thousands.
                |repo, b| {
                    (!repo.objects.exists_without_refresh(&self.blobs[b as usize])).then_some(b)
                },
            )
            .flatten()
            .collect();
        if missing.is_empty() {
            return;
        }
        missing.sort_unstable_by_key(|&b| self.blobs[b as usize]);
        // A partial clone (`--filter=blob:none`) lacks blobs by design: said as such.
        let local = repo.to_thread_local();
        let config = local.config_snapshot();
        let partial = config.string("extensions.partialClone").is_some()
            || local.remote_names().iter().any(|name| {
                config
                    .boolean(format!("remote.{name}.promisor").as_str())
                    .unwrap_or(false)
            });
        let why = if partial {
            "blob was not fetched (partial clone) and is not scanned"
        } else {
            "blob is missing from the object database (not scanned)"
        };
        for &blob in missing.iter().take(NAMED_MISSING_BLOBS) {
            let reason = match self.first_change(blob) {
                Some(change) => format!(
                    "{why}: {} in commit {}",
                    self.paths[change.path as usize], self.commits[change.commit as usize].id
                ),
                None => why.to_string(),
            };
            sink.error(
                Path::new(&format!("object {}", self.blobs[blob as usize])),
                &reason,
            );
        }
        if missing.len() > NAMED_MISSING_BLOBS {
            sink.error(
                repo.objects_dir(),
                &format!(
                    "{} more blobs named by trees are {}",
                    missing.len() - NAMED_MISSING_BLOBS,
                    if partial {
                        "not fetched (partial clone) and not scanned"
                    } else {
                        "missing from the object database (not scanned)"
                    }
                ),
            );
        }
    }

    /// The earliest change (by commit time, then id) that put `blob` at a path.
    fn first_change(&self, blob: u32) -> Option<Change> {
        self.range(&self.by_new, blob, |c| c.new)
            .iter()
            .map(|&c| self.changes[c as usize])
            .min_by_key(|c| {
                let commit = &self.commits[c.commit as usize];
                (commit.time, commit.id)
            })
    }

    /// The first path history gives `blob` (that of its earliest commit); `None` for a blob
    /// no commit holds.
    pub(super) fn first_path(&self, blob: &ObjectId) -> Option<&str> {
        let &blob = self.blob_index.get(blob)?;
        let change = self.first_change(blob)?;
        Some(&self.paths[change.path as usize])
    }

    /// The change indices of `index` whose blob (by `key`) is `blob`.
    fn range<'a>(&self, index: &'a [u32], blob: u32, key: impl Fn(&Change) -> u32) -> &'a [u32] {
        let start = index.partition_point(|&c| key(&self.changes[c as usize]) < blob);
        let end = index.partition_point(|&c| key(&self.changes[c as usize]) <= blob);
        &index[start..end]
    }

    /// Names of the refs from which one of `commits` is reachable: every descendant's tips.
    fn refs_reaching(&self, commits: &[u32]) -> Vec<String> {
        let mut visited = vec![false; self.commits.len()];
        let mut queue: VecDeque<u32> = VecDeque::new();
        for &c in commits {
            if !visited[c as usize] {
                visited[c as usize] = true;
                queue.push_back(c);
            }
        }
        let mut names = BTreeSet::new();
        while let Some(c) = queue.pop_front() {
            if let Some(tips) = self.tips.get(&c) {
                names.extend(tips.iter().cloned());
            }
            for &child in &self.children[c as usize] {
                if !visited[child as usize] {
                    visited[child as usize] = true;
                    queue.push_back(child);
                }
            }
        }
        names.into_iter().collect()
    }
}

pub(super) fn time(seconds: i64) -> Option<DateTime<Utc>> {
    (seconds != 0)
        .then(|| DateTime::from_timestamp(seconds, 0))
        .flatten()
}

/// Walk every commit of `commits` against its parents, read the refs and HEAD's tree.
pub(super) fn walk(
    repo: &gix::ThreadSafeRepository,
    mut records: Vec<CommitRecord>,
    sink: &dyn ObjectSink,
) -> Timeline {
    // Oldest first: consecutive commits share trees, so a worker's cache stays warm.
    records.sort_by_key(|r| (r.time, r.id));
    let index: HashMap<ObjectId, u32> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id, i as u32))
        .collect();
    let local = repo.to_thread_local();
    let shallow: BTreeSet<ObjectId> = local
        .shallow_commits()
        .ok()
        .flatten()
        .map(|c| c.iter().copied().collect())
        .unwrap_or_default();
    if !shallow.is_empty() {
        sink.error(
            &repo.git_dir().join("shallow"),
            &format!(
                "shallow repository: history before {} boundary commit(s) was not fetched and is not scanned",
                shallow.len()
            ),
        );
    }

    let mut children: Vec<Vec<u32>> = vec![Vec::new(); records.len()];
    let mut parents: Vec<Vec<u32>> = vec![Vec::new(); records.len()];
    for (i, record) in records.iter().enumerate() {
        for parent in &record.parents {
            match index.get(parent) {
                Some(&p) => {
                    parents[i].push(p);
                    children[p as usize].push(i as u32);
                }
                None if shallow.contains(&record.id) => {}
                None => sink.error(
                    Path::new(&format!("commit {}", record.id)),
                    &format!("parent {parent} is missing: diffed against an empty tree"),
                ),
            }
        }
    }

    let (tips, head) = refs(&local, &index, sink);
    let mut reachable = vec![false; records.len()];
    let roots: Vec<u32> = tips.keys().copied().chain(head).collect();
    mark_ancestors(&roots, &parents, &mut reachable);
    let mut head_line = vec![false; records.len()];
    mark_ancestors(
        &head.into_iter().collect::<Vec<_>>(),
        &parents,
        &mut head_line,
    );

    let paths = Interner::default();
    let blobs = Interner::default();
    let failed_trees: Mutex<BTreeSet<(ObjectId, String)>> = Mutex::default();
    let cuts = CutLog::default();
    let order: Vec<u32> = (0..records.len() as u32).collect();
    let changes: Vec<Change> = order
        .par_chunks(64)
        .map_init(
            || TreeReader::new(repo),
            |reader, chunk| {
                let mut out = Vec::new();
                let mut raw = Vec::new();
                let mut cut = Vec::new();
                for &c in chunk {
                    let record = &records[c as usize];
                    let parent_trees: Vec<Option<ObjectId>> = if parents[c as usize].is_empty() {
                        vec![None]
                    } else {
                        parents[c as usize]
                            .iter()
                            .map(|&p| Some(records[p as usize].tree))
                            .collect()
                    };
                    for old in parent_trees {
                        raw.clear();
                        if let Err((tree, reason)) =
                            reader.diff(old, Some(record.tree), &mut raw, &mut cut)
                        {
                            lock(&failed_trees).insert((tree, reason));
                        }
                        cuts.record(c, &mut cut);
                        out.extend(raw.drain(..).map(|(path, old, new)| Change {
                            commit: c,
                            path: paths.intern_bytes(&path),
                            old: old.map_or(NONE, |o| blobs.intern(o)),
                            new: new.map_or(NONE, |n| blobs.intern(n)),
                        }));
                    }
                }
                out
            },
        )
        .flatten()
        .collect();

    let mut head_tree = BTreeSet::new();
    if let Some(head) = head {
        let mut reader = TreeReader::new(repo);
        let mut raw = Vec::new();
        let mut cut = Vec::new();
        let walked = reader.diff(None, Some(records[head as usize].tree), &mut raw, &mut cut);
        cuts.record(head, &mut cut);
        match walked {
            Ok(()) => {
                for (path, _, new) in raw {
                    if let Some(new) = new {
                        head_tree.insert((blobs.intern(new), paths.intern_bytes(&path)));
                    }
                }
            }
            Err(failure) => {
                lock(&failed_trees).insert(failure);
            }
        }
    }
    for (tree, reason) in failed_trees.into_inner().unwrap_or_default() {
        sink.error(Path::new(&format!("tree {tree}")), &reason);
    }
    cuts.report(&records, repo, sink);

    let (paths, _) = paths.into_parts();
    let (blobs, blob_index) = blobs.into_parts();
    let mut by_new: Vec<u32> = (0..changes.len() as u32)
        .filter(|&c| changes[c as usize].new != NONE)
        .collect();
    by_new.sort_unstable_by_key(|&c| changes[c as usize].new);
    let mut by_old: Vec<u32> = (0..changes.len() as u32)
        .filter(|&c| changes[c as usize].old != NONE)
        .collect();
    by_old.sort_unstable_by_key(|&c| changes[c as usize].old);

    let timeline = Timeline {
        commits: records
            .into_iter()
            .map(|r| Commit {
                id: r.id,
                time: r.time,
            })
            .collect(),
        children,
        tips,
        reachable,
        head_line,
        head_tree,
        paths: paths
            .into_iter()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect(),
        blobs,
        blob_index,
        changes,
        by_new,
        by_old,
    };
    timeline.report_missing_blobs(repo, sink);
    timeline
}

/// Every ref (branches, tags, remote-tracking refs, stash, notes, …) peeled to the commit it
/// names, by commit; and HEAD's commit. A detached HEAD is listed as `HEAD`.
fn refs(
    repo: &gix::Repository,
    index: &HashMap<ObjectId, u32>,
    sink: &dyn ObjectSink,
) -> (HashMap<u32, Vec<String>>, Option<u32>) {
    let mut tips: HashMap<u32, Vec<String>> = HashMap::new();
    let mut tags = TagPeeler::default();
    match repo.references() {
        Ok(platform) => match platform.all() {
            Ok(iter) => {
                for reference in iter {
                    let mut reference = match reference {
                        Ok(r) => r,
                        Err(e) => {
                            sink.error(&repo.git_dir().join("refs"), &one_line(&e));
                            continue;
                        }
                    };
                    let name = reference.name().as_bstr().to_string();
                    let peeled = reference
                        .follow_to_object()
                        .map_err(|e| one_line(&e))
                        .and_then(|id| tags.peel(repo, id.detach()));
                    match peeled {
                        Ok(id) => {
                            if let Some(&c) = index.get(&id) {
                                tips.entry(c).or_default().push(name);
                            }
                        }
                        Err(reason) => sink.error(Path::new(&name), &reason),
                    }
                }
            }
            Err(e) => sink.error(&repo.git_dir().join("refs"), &one_line(&e)),
        },
        Err(e) => sink.error(&repo.git_dir().join("refs"), &one_line(&e)),
    }
    let head = repo
        .find_reference("HEAD")
        .ok()
        .and_then(|mut head| head.follow_to_object().ok())
        .and_then(|id| tags.peel(repo, id.detach()).ok())
        .and_then(|id| index.get(&id).copied());
    if let (Some(c), true) = (head, repo.head().is_ok_and(|h| h.is_detached())) {
        tips.entry(c).or_default().push("HEAD".to_string());
    }
    (tips, head)
}

/// Annotated tags followed to the first object that is not a tag, each tag once for all the
/// refs that name it. Objects are read as stored, yet a forged one can still name itself: a
/// tag met twice on one chain is a cycle, reported.
#[derive(Default)]
struct TagPeeler {
    buf: Vec<u8>,
    peeled: HashMap<ObjectId, ObjectId>,
}

impl TagPeeler {
    fn peel(&mut self, repo: &gix::Repository, start: ObjectId) -> Result<ObjectId, String> {
        let mut chain: Vec<ObjectId> = Vec::new();
        let mut on_chain: HashSet<ObjectId> = HashSet::new();
        let mut id = start;
        let end = loop {
            if let Some(&end) = self.peeled.get(&id) {
                break end;
            }
            let object = match repo.objects.try_find(&id, &mut self.buf) {
                Ok(Some(object)) => object,
                Ok(None) => return Err(format!("object {id} is missing")),
                Err(e) => return Err(one_line(&e)),
            };
            if object.kind != gix::objs::Kind::Tag {
                break id;
            }
            if !on_chain.insert(id) {
                return Err(format!(
                    "tag {id} is among its own targets (a cycle): not followed"
                ));
            }
            chain.push(id);
            id = gix::objs::TagRefIter::from_bytes(object.data, id.kind())
                .target_id()
                .map_err(|e| format!("tag {id} does not parse ({})", one_line(&e)))?;
        };
        for tag in chain {
            self.peeled.insert(tag, end);
        }
        Ok(end)
    }
}

fn mark_ancestors(roots: &[u32], parents: &[Vec<u32>], marked: &mut [bool]) {
    let mut stack: Vec<u32> = Vec::new();
    for &root in roots {
        if !marked[root as usize] {
            marked[root as usize] = true;
            stack.push(root);
        }
    }
    while let Some(c) = stack.pop() {
        for &p in &parents[c as usize] {
            if !marked[p as usize] {
                marked[p as usize] = true;
                stack.push(p);
            }
        }
    }
}

/// Values numbered in order of first sight, from many threads.
struct Interner<T> {
    inner: Mutex<(Vec<T>, HashMap<T, u32>)>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            inner: Mutex::new((Vec::new(), HashMap::new())),
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Interner<T> {
    fn intern(&self, value: T) -> u32 {
        let mut inner = lock(&self.inner);
        if let Some(&i) = inner.1.get(&value) {
            return i;
        }
        let i = inner.0.len() as u32;
        inner.0.push(value.clone());
        inner.1.insert(value, i);
        i
    }

    fn into_parts(self) -> (Vec<T>, HashMap<T, u32>) {
        self.inner
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Interner<Box<[u8]>> {
    fn intern_bytes(&self, value: &[u8]) -> u32 {
        let mut inner = lock(&self.inner);
        if let Some(&i) = inner.1.get(value) {
            return i;
        }
        let i = inner.0.len() as u32;
        let boxed: Box<[u8]> = value.into();
        inner.0.push(boxed.clone());
        inner.1.insert(boxed, i);
        i
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Tree,
    Blob,
    /// A submodule's commit: another repository's history, not walked.
    Gitlink,
}

struct TreeEntry {
    name: Box<[u8]>,
    kind: EntryKind,
    id: ObjectId,
}

impl TreeEntry {
    /// Git orders tree entries by name, a directory's name as if it ended in `/`.
    fn cmp_git(&self, other: &TreeEntry) -> std::cmp::Ordering {
        let a = self
            .name
            .iter()
            .chain((self.kind == EntryKind::Tree).then_some(&b'/'));
        let b = other
            .name
            .iter()
            .chain((other.kind == EntryKind::Tree).then_some(&b'/'));
        a.cmp(b)
    }
}

/// A path under the root, a blob before and a blob after (`None`: absent).
pub(super) type RawChange = (Vec<u8>, Option<ObjectId>, Option<ObjectId>);

/// Why a walk did not enter a subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum CutReason {
    /// The tree is one of its own ancestors on the path walked.
    Cycle,
    /// The subtree is more than [`MAX_TREE_DEPTH`] directories below the root.
    TooDeep,
    /// The walk stepped through [`MAX_TREE_ENTRIES`] entries; it stopped at this path.
    TooMany,
}

/// A subtree a walk did not enter, and the path it is at.
#[derive(Debug)]
pub(super) struct Cut {
    tree: ObjectId,
    pub(super) path: Vec<u8>,
    reason: CutReason,
}

/// A commit (by index) and the path in its tree where a walk was cut.
type CutAt = (u32, Vec<u8>);

/// The subtrees the walks of all commits did not enter, each once: at the earliest commit
/// (in walk order) and path that met it.
#[derive(Default)]
struct CutLog {
    first: Mutex<HashMap<(ObjectId, CutReason), CutAt>>,
}

impl CutLog {
    /// Note `cuts` (emptied) met by the walk of commit `commit`.
    fn record(&self, commit: u32, cuts: &mut Vec<Cut>) {
        if cuts.is_empty() {
            return;
        }
        let mut first = lock(&self.first);
        for cut in cuts.drain(..) {
            let at = (commit, cut.path);
            first
                .entry((cut.tree, cut.reason))
                .and_modify(|earlier| {
                    if at < *earlier {
                        *earlier = at.clone();
                    }
                })
                .or_insert(at);
        }
    }

    /// Each cut as an object not scanned (over a limit), with the commit that met it first;
    /// the first [`NAMED_CUTS`] one by one, the rest in one line.
    fn report(
        self,
        records: &[CommitRecord],
        repo: &gix::ThreadSafeRepository,
        sink: &dyn ObjectSink,
    ) {
        let first = self
            .first
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let mut cuts: Vec<_> = first.into_iter().collect();
        cuts.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
        for ((tree, reason), (commit, path)) in cuts.iter().take(NAMED_CUTS) {
            let commit = records[*commit as usize].id;
            let detail = match reason {
                CutReason::Cycle => format!(
                    "commit {commit}: tree {tree} is one of its own parent directories (a cycle): not walked again"
                ),
                CutReason::TooDeep => format!(
                    "commit {commit}: more than {MAX_TREE_DEPTH} directories deep: tree {tree} and what is below it not walked"
                ),
                CutReason::TooMany => format!(
                    "commit {commit}: its tree walk stopped here, in tree {tree}, after {MAX_TREE_ENTRIES} entries (trees that name the same subtree many times over): the rest of its trees not walked"
                ),
            };
            let path = shown(path);
            let tree = tree.to_string();
            sink.not_scanned(Skip {
                path: Path::new(&path),
                reason: SkipReason::OverLimit,
                object: Some(&tree),
                detail: Some(&detail),
                lost: true,
            });
        }
        if cuts.len() > NAMED_CUTS {
            let detail = format!(
                "{} more subtrees not walked (cycles, more than {MAX_TREE_DEPTH} directories deep, or past {MAX_TREE_ENTRIES} entries in one commit)",
                cuts.len() - NAMED_CUTS
            );
            sink.not_scanned(Skip {
                detail: Some(&detail),
                ..Skip::new(repo.git_dir(), SkipReason::OverLimit)
            });
        }
    }
}

/// A path for a message: one thousands of directories long keeps its two ends.
fn shown(path: &[u8]) -> String {
    const END: usize = 100;
    let text = String::from_utf8_lossy(path);
    if text.len() <= 3 * END {
        return text.into_owned();
    }
    let mut head = END;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - END;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…({} bytes)…{}", &text[..head], text.len(), &text[tail..])
}

/// One directory of a side-by-side walk of two trees: both entry lists and where each stands.
struct Frame {
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    a: Arc<[TreeEntry]>,
    b: Arc<[TreeEntry]>,
    i: usize,
    j: usize,
    /// The length of the walked path before this directory's name.
    base: usize,
}

impl Frame {
    /// The next name in either tree: its entry before, after, or both; `None` at the end.
    fn next(&mut self) -> Option<(Option<&TreeEntry>, Option<&TreeEntry>)> {
        let order = match (self.a.get(self.i), self.b.get(self.j)) {
            (None, None) => return None,
            (Some(x), Some(y)) => x.cmp_git(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        Some(match order {
            std::cmp::Ordering::Less => {
                self.i += 1;
                (Some(&self.a[self.i - 1]), None)
            }
            std::cmp::Ordering::Greater => {
                self.j += 1;
                (None, Some(&self.b[self.j - 1]))
            }
            std::cmp::Ordering::Equal => {
                self.i += 1;
                self.j += 1;
                (Some(&self.a[self.i - 1]), Some(&self.b[self.j - 1]))
            }
        })
    }
}

/// The tree of `old` or `new` that is already on its own side of the walked path, if any.
fn on_path(stack: &[Frame], old: Option<ObjectId>, new: Option<ObjectId>) -> Option<ObjectId> {
    stack.iter().find_map(|frame| {
        if new.is_some() && frame.new == new {
            new
        } else if old.is_some() && frame.old == old {
            old
        } else {
            None
        }
    })
}

/// Parsed trees, read through one thread's object handle and cached by id.
pub(super) struct TreeReader {
    repo: gix::Repository,
    buf: Vec<u8>,
    cache: HashMap<ObjectId, Arc<[TreeEntry]>>,
    empty: Arc<[TreeEntry]>,
    /// The walk's directories, kept between walks for their allocation.
    stack: Vec<Frame>,
}

/// Parsed trees kept per thread; the cache is emptied when it reaches this many.
const TREE_CACHE_ENTRIES: usize = 8 * 1024;

impl TreeReader {
    pub(super) fn new(repo: &gix::ThreadSafeRepository) -> TreeReader {
        let mut repo = repo.to_thread_local();
        repo.object_cache_size(None);
        TreeReader {
            repo,
            buf: Vec::new(),
            cache: HashMap::new(),
            empty: Arc::from(Vec::new()),
            stack: Vec::new(),
        }
    }

    fn read(&mut self, id: ObjectId) -> Result<Arc<[TreeEntry]>, (ObjectId, String)> {
        if let Some(entries) = self.cache.get(&id) {
            return Ok(Arc::clone(entries));
        }
        let data = match self.repo.objects.try_find(&id, &mut self.buf) {
            Ok(Some(data)) if data.kind == gix::objs::Kind::Tree => data.data,
            Ok(Some(data)) => return Err((id, format!("expected a tree, found a {}", data.kind))),
            Ok(None) => return Err((id, "tree is missing".to_string())),
            Err(e) => return Err((id, one_line(&e))),
        };
        let entries: Arc<[TreeEntry]> = parse_tree(data, id.kind().len_in_bytes())
            .ok_or_else(|| (id, "tree does not parse".to_string()))?
            .into();
        if self.cache.len() >= TREE_CACHE_ENTRIES {
            self.cache.clear();
        }
        self.cache.insert(id, Arc::clone(&entries));
        Ok(entries)
    }

    /// A directory of the walk: the entries of `old` and `new` (none for a tree that cannot
    /// be read, its failure kept in `failure` unless one is already there).
    fn frame(
        &mut self,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        base: usize,
        failure: &mut Option<(ObjectId, String)>,
    ) -> Frame {
        let mut entries = |id: Option<ObjectId>| match id {
            None => Arc::clone(&self.empty),
            Some(id) => self.read(id).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                Arc::clone(&self.empty)
            }),
        };
        let a = entries(old);
        let b = entries(new);
        Frame {
            old,
            new,
            a,
            b,
            i: 0,
            j: 0,
            base,
        }
    }

    /// The blob changes between two trees, descending only into subtrees whose ids differ,
    /// depth first with an explicit stack. A subtree that is its own ancestor (on its side) or
    /// deeper than [`MAX_TREE_DEPTH`] is not entered and goes to `cuts`. A subtree that cannot
    /// be read is skipped and the first such failure returned (the rest of the diff is still
    /// made).
    pub(super) fn diff(
        &mut self,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        out: &mut Vec<RawChange>,
        cuts: &mut Vec<Cut>,
    ) -> Result<(), (ObjectId, String)> {
        if old == new {
            return Ok(());
        }
        let mut failure = None;
        let mut path = Vec::new();
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        let root = self.frame(old, new, 0, &mut failure);
        stack.push(root);
        let mut budget = MAX_TREE_ENTRIES;
        while let Some(top) = stack.last_mut() {
            let Some((before, after)) = top.next() else {
                path.truncate(top.base);
                stack.pop();
                continue;
            };
            let (old, new) = (before.map(|e| e.id), after.map(|e| e.id));
            if old == new {
                continue;
            }
            let entry = before.or(after).expect("one side has an entry");
            let kind = entry.kind;
            let base = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&entry.name);
            budget -= 1;
            if budget == 0 {
                cuts.push(Cut {
                    tree: top.new.or(top.old).expect("a walked tree has an id"),
                    path,
                    reason: CutReason::TooMany,
                });
                stack.clear();
                break;
            }
            match kind {
                EntryKind::Tree => {
                    let cut = match on_path(&stack, old, new) {
                        Some(tree) => Some((tree, CutReason::Cycle)),
                        // The subtree's depth is the number of directories walked into.
                        None if stack.len() > MAX_TREE_DEPTH => {
                            Some((new.or(old).expect("one side"), CutReason::TooDeep))
                        }
                        None => None,
                    };
                    match cut {
                        Some((tree, reason)) => {
                            cuts.push(Cut {
                                tree,
                                path: path.clone(),
                                reason,
                            });
                            path.truncate(base);
                        }
                        None => {
                            let frame = self.frame(old, new, base, &mut failure);
                            stack.push(frame);
                        }
                    }
                }
                EntryKind::Blob => {
                    out.push((path.clone(), old, new));
                    path.truncate(base);
                }
                EntryKind::Gitlink => path.truncate(base),
            }
        }
        self.stack = stack;
        failure.map_or(Ok(()), Err)
    }
}

/// `<mode> <name>\0<id>` entries; `None` when the bytes are not a tree.
fn parse_tree(mut data: &[u8], hash_len: usize) -> Option<Vec<TreeEntry>> {
    let mut entries = Vec::new();
    while !data.is_empty() {
        let space = memchr::memchr(b' ', data)?;
        let mode = &data[..space];
        let rest = &data[space + 1..];
        let nul = memchr::memchr(0, rest)?;
        let name = &rest[..nul];
        let id = rest.get(nul + 1..nul + 1 + hash_len)?;
        let kind = match mode {
            b"40000" | b"040000" => EntryKind::Tree,
            b"160000" => EntryKind::Gitlink,
            _ => EntryKind::Blob,
        };
        entries.push(TreeEntry {
            name: name.into(),
            kind,
            id: ObjectId::try_from(id).ok()?,
        });
        data = &rest[nul + 1 + hash_len..];
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_headers_give_tree_parents_and_author_time() {
        let tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let parent = "0123456789abcdef0123456789abcdef01234567";
        let text = format!(
            "tree {tree}\nparent {parent}\nauthor A U <a@x> 1700000000 +0100\ncommitter C <c@x> 1800000000 +0000\n\nmsg\nparent nope\n"
        );
        let id = ObjectId::from_hex(parent.as_bytes()).unwrap();
        let commit = parse_commit(id, text.as_bytes(), gix::hash::Kind::Sha1).unwrap();
        assert_eq!(commit.tree.to_string(), tree);
        assert_eq!(commit.parents.len(), 1);
        assert_eq!(commit.time, 1_700_000_000);
        assert_eq!(commit_message(text.as_bytes()), b"msg\nparent nope\n");
        assert_eq!(commit_message(b"tree x\n"), b"");
        assert!(parse_commit(id, b"not a commit", gix::hash::Kind::Sha1).is_none());
    }

    #[test]
    fn trees_sort_directories_as_if_slashed() {
        let entry = |name: &str, kind| TreeEntry {
            name: name.as_bytes().into(),
            kind,
            id: gix::hash::Kind::Sha1.null(),
        };
        // git's order: "a.b" < "a/" (tree a) < "a0"
        let file = entry("a.b", EntryKind::Blob);
        let dir = entry("a", EntryKind::Tree);
        let after = entry("a0", EntryKind::Blob);
        assert!(file.cmp_git(&dir).is_lt());
        assert!(dir.cmp_git(&after).is_lt());
    }
}
