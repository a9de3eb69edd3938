//! Every object in a repository's object database, each decoded once: packs are traversed
//! in pack order with their delta trees (each base decoded once for all its deltas, across
//! cores), then whatever is left (loose objects, alternates, objects a damaged pack would not
//! give up) is looked up one by one, so a corrupt pack costs only the objects it really lost.
use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Mutex},
};

use gix::{hashtable::HashSet, prelude::Find, ObjectId};
use rayon::prelude::*;

use super::history::{commit_message, parse_commit, CommitRecord};
use crate::source::{seen::Seen, Skip};

/// What the object pass hands on: the commits (parsed), and how much went right and wrong.
#[derive(Debug, Default)]
pub struct Inventory {
    pub commits: Vec<CommitRecord>,
    /// Objects decoded (every kind).
    pub objects: u64,
}

/// Where decoded objects and failures go.
pub trait ObjectSink: Sync {
    /// A blob, exactly once per id.
    fn blob(&self, id: ObjectId, data: &[u8]);
    /// A commit that parses (so the history walk visits it) and its message, exactly once
    /// per id.
    fn commit(&self, commit: &CommitRecord, message: &[u8]);
    /// An object passed over: a subtree a walk did not enter.
    fn not_scanned(&self, skip: Skip<'_>);
    /// A pack, a loose object or an object id that could not be read.
    fn error(&self, what: &Path, reason: &str);
}

/// Objects whose own lookup failed are named one by one up to this many; the rest are counted
/// in one line, so a truncated pack does not bury the report in thousands of lines.
const NAMED_OBJECT_ERRORS: usize = 20;

struct Shared<'a> {
    sink: &'a dyn ObjectSink,
    hash: gix::hash::Kind,
    /// Every object id decoded so far (blobs are matched once however many packs hold them).
    seen: Seen<ObjectId, (), gix::hashtable::hash::Builder>,
    commits: Mutex<Vec<CommitRecord>>,
    bad_commits: Mutex<Vec<ObjectId>>,
}

impl Shared<'_> {
    /// Returns false when the object was already handled.
    fn first_time(&self, id: ObjectId) -> bool {
        self.seen.record(id, ())
    }

    fn object(&self, id: ObjectId, kind: gix::objs::Kind, data: &[u8]) {
        match kind {
            gix::objs::Kind::Blob => self.sink.blob(id, data),
            gix::objs::Kind::Commit => match parse_commit(id, data, self.hash) {
                Some(commit) => {
                    self.sink.commit(&commit, commit_message(data));
                    lock(&self.commits).push(commit);
                }
                None => lock(&self.bad_commits).push(id),
            },
            gix::objs::Kind::Tree | gix::objs::Kind::Tag => {}
        }
    }
}

/// Decode every object of `repo` once, blobs to `sink`, and return the commits.
pub fn read_all(repo: &gix::ThreadSafeRepository, sink: &dyn ObjectSink) -> Inventory {
    let hash = repo.to_thread_local().object_hash();
    let shared = Shared {
        sink,
        hash,
        seen: Seen::default(),
        commits: Mutex::new(Vec::new()),
        bad_commits: Mutex::new(Vec::new()),
    };
    for idx in pack_indices(repo.objects_dir(), sink) {
        traverse_pack(&idx, &shared);
    }
    read_leftovers(repo, &shared);

    for id in into_inner(shared.bad_commits) {
        sink.error(
            Path::new(&format!("commit {id}")),
            "not a valid commit object",
        );
    }
    let objects = shared.seen.len() as u64;
    Inventory {
        commits: into_inner(shared.commits),
        objects,
    }
}

fn pack_indices(objects_dir: &Path, sink: &dyn ObjectSink) -> Vec<PathBuf> {
    let dir = objects_dir.join("pack");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            sink.error(&dir, &crate::source::fs::io_reason(&e));
            return Vec::new();
        }
    };
    let mut indices: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    indices.sort();
    indices
}

/// Decode one pack in pack order, resolving each delta from its base in memory, on every core.
/// A pack that fails part-way is reported; its remaining objects are retried one by one later.
fn traverse_pack(idx: &Path, shared: &Shared<'_>) {
    let pack_path = idx.with_extension("pack");
    let bundle = match gix::odb::pack::Bundle::at(idx, shared.hash) {
        Ok(bundle) => bundle,
        Err(e) => {
            shared.sink.error(&pack_path, &one_line(&e));
            return;
        }
    };
    let processor = |kind: gix::objs::Kind,
                     data: &[u8],
                     entry: &gix::odb::pack::index::Entry,
                     _: &dyn gix::Progress|
     -> gix::Result<()> {
        if shared.first_time(entry.oid) {
            shared.object(entry.oid, kind, data);
        }
        Ok(())
    };
    let interrupt = AtomicBool::new(false);
    let result = bundle.index.traverse_with_index(
        &bundle.pack,
        processor,
        &mut gix::progress::Discard,
        &interrupt,
        gix::odb::pack::index::traverse::with_index::Options {
            thread_limit: Some(rayon::current_num_threads()),
            // A damaged pack still gives up every object it can.
            check: gix::odb::pack::index::traverse::SafetyCheck::SkipFileAndObjectChecksumVerificationAndNoAbortOnDecodeError,
            alloc_limit_bytes: None,
        },
    );
    if let Err(e) = result {
        shared.sink.error(&pack_path, &one_line(&e));
    }
}

/// Loose objects, objects of alternates, and anything a pack traversal did not deliver.
fn read_leftovers(repo: &gix::ThreadSafeRepository, shared: &Shared<'_>) {
    let local = repo.to_thread_local();
    let ids = match local.objects.iter() {
        Ok(ids) => ids,
        Err(e) => {
            shared.sink.error(repo.objects_dir(), &one_line(&e));
            return;
        }
    };
    let mut listing_errors = 0u64;
    let leftovers: Vec<ObjectId> = ids
        .filter_map(|id| match id {
            Ok(id) => (!shared.seen.contains(&id)).then_some(id),
            Err(_) => {
                listing_errors += 1;
                None
            }
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if listing_errors > 0 {
        shared.sink.error(
            repo.objects_dir(),
            &format!("{listing_errors} object ids could not be listed"),
        );
    }
    let failures: Vec<(ObjectId, String)> = leftovers
        .par_iter()
        .map_init(
            || (repo.to_thread_local(), Vec::new()),
            |(repo, buf), id| match repo.objects.try_find(id, buf) {
                Ok(Some(object)) => {
                    if shared.first_time(*id) {
                        shared.object(*id, object.kind, object.data);
                    }
                    None
                }
                Ok(None) => Some((*id, "object is missing".to_string())),
                Err(e) => Some((*id, one_line(&e))),
            },
        )
        .flatten()
        .collect();
    let mut failures = failures;
    failures.sort();
    for (id, reason) in failures.iter().take(NAMED_OBJECT_ERRORS) {
        shared
            .sink
            .error(Path::new(&format!("object {id}")), reason);
    }
    if failures.len() > NAMED_OBJECT_ERRORS {
        shared.sink.error(
            repo.objects_dir(),
            &format!(
                "{} more objects could not be read",
                failures.len() - NAMED_OBJECT_ERRORS
            ),
        );
    }
}

/// A gix error on one line.
pub fn one_line(err: &dyn std::fmt::Display) -> String {
    let text = format!("{err}");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
