//! `git:PATH@A..B` and `git:PATH --since-commit A`: only what a range of commits brought in,
//! for pull-request jobs. The commits are those B (HEAD by default) reaches and A does not;
//! each is diffed against its parents with the history walk's tree reader, and a blob counts
//! when the commit put it at a path where none of its parents had it (a merge brings in only
//! what differs from every parent: what it resolved itself). Each blob is reported at its path
//! with the earliest commit of the range that brought it there, and of a changed file only the
//! lines its parents' versions lack are scanned (a key that was already there is not the
//! range's). The commits' messages are scanned too.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
    path::Path,
};

use gix::{bstr::ByteSlice, prelude::Find, ObjectId};

use super::{
    history::{self, commit_message, parse_commit, CommitRecord, TreeReader},
    objects::one_line,
    selected::SelectedBlobs,
};
use crate::source::{
    GitBlob, GitCommit, Origin, Sink, Skip, SkipReason, SourceError, SourceOptions,
};

/// A range of commits: those `to` (HEAD when `None`) reaches and `from` does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub from: String,
    pub to: Option<String>,
}

impl Range {
    fn to(&self) -> &str {
        self.to.as_deref().unwrap_or("HEAD")
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.from, self.to())
    }
}

/// The commit ids `range` names in the repository at `path`: one line naming a revision the
/// repository lacks (a shallow clone, a branch not fetched).
pub fn resolve(path: &Path, range: &Range) -> Result<(ObjectId, ObjectId), SourceError> {
    let repo = super::open(path)?;
    resolve_in(&repo.to_thread_local(), path, range)
}

fn resolve_in(
    repo: &gix::Repository,
    path: &Path,
    range: &Range,
) -> Result<(ObjectId, ObjectId), SourceError> {
    let commit = |rev: &str| -> Result<ObjectId, SourceError> {
        let missing = || {
            SourceError::new(
                path,
                format!(
                    "revision `{rev}` is not in the repository (a shallow clone or a ref not fetched? fetch it, e.g. `git fetch --unshallow`)"
                ),
            )
        };
        if rev.is_empty() || rev.starts_with('-') {
            return Err(missing());
        }
        let spec = format!("{rev}^{{commit}}");
        repo.rev_parse_single(spec.as_bytes().as_bstr())
            .map(gix::Id::detach)
            .map_err(|_| missing())
    };
    Ok((commit(&range.from)?, commit(range.to())?))
}

/// Read the blobs and commit messages that the commits of `range` introduced.
pub fn scan(
    path: &Path,
    range: &Range,
    options: &SourceOptions,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let repo = super::open(path)?;
    let mut blobs = SelectedBlobs::new(&repo, options, sink, path);
    let (from, to) = resolve_in(&blobs.repo, path, range)?;
    let hash = blobs.repo.object_hash();
    let walk_error = |e: &dyn fmt::Display| {
        SourceError::new(path, format!("cannot walk {range} ({})", one_line(e)))
    };
    let ids: Vec<ObjectId> = blobs
        .repo
        .rev_walk([to])
        .with_hidden([from])
        .all()
        .map_err(|e| walk_error(&e))?
        .map(|info| info.map(|info| info.id))
        .collect::<Result<_, _>>()
        .map_err(|e| walk_error(&e))?;
    let mut buf = Vec::new();
    let mut commits: Vec<CommitRecord> = Vec::new();
    for id in ids {
        let Some((record, message)) = read_commit(&blobs.repo, id, hash, &mut buf, sink) else {
            continue;
        };
        if !message.iter().all(u8::is_ascii_whitespace) {
            let name = record.id.to_string();
            scan_message(&mut blobs, &name, record.time, message);
        }
        commits.push(record);
    }

    let mut introduced: BTreeMap<(ObjectId, String), Introduced> = BTreeMap::new();
    let mut reader = TreeReader::new(&repo);
    let mut raw = Vec::new();
    let mut cuts = Vec::new();
    for record in &commits {
        let parent_trees: Vec<Option<ObjectId>> = if record.parents.is_empty() {
            vec![None]
        } else {
            record
                .parents
                .iter()
                .map(|p| read_commit(&blobs.repo, *p, hash, &mut buf, sink).map(|(c, _)| c.tree))
                .collect()
        };
        let mut common: Option<HashSet<(ObjectId, Vec<u8>)>> = None;
        let mut replaced: HashMap<Vec<u8>, Vec<ObjectId>> = HashMap::new();
        for old in parent_trees {
            raw.clear();
            if let Err((tree, reason)) = reader.diff(old, Some(record.tree), &mut raw, &mut cuts) {
                sink.error(Path::new(&format!("tree {tree}")), &reason);
            }
            let mut added: HashSet<(ObjectId, Vec<u8>)> = HashSet::new();
            for (at, old, new) in raw.drain(..) {
                if let Some(old) = old {
                    replaced.entry(at.clone()).or_default().push(old);
                }
                if let Some(new) = new {
                    added.insert((new, at));
                }
            }
            common = Some(match common {
                None => added,
                Some(before) => before.intersection(&added).cloned().collect(),
            });
        }
        for cut in cuts.drain(..) {
            let at = cut.path.to_str_lossy().into_owned();
            let detail = format!("a subtree of commit {} not walked", record.id);
            sink.not_scanned(Skip {
                detail: Some(&detail),
                ..Skip::new(Path::new(&at), SkipReason::OverLimit)
            });
        }
        for (blob, at) in common.unwrap_or_default() {
            let before = replaced.get(&at).cloned().unwrap_or_default();
            let key = (blob, at.to_str_lossy().into_owned());
            let candidate = (record.time, record.id);
            match introduced.get_mut(&key) {
                Some(earliest) if earliest.0 <= candidate => {}
                Some(earliest) => *earliest = (candidate, before),
                None => {
                    introduced.insert(key, (candidate, before));
                }
            }
        }
    }

    let head = blobs
        .repo
        .head_tree_id_or_empty()
        .ok()
        .and_then(|tree| blobs.repo.index_from_tree(&tree.detach()).ok());
    for ((blob, at), ((time, commit), before)) in introduced {
        let in_head = head.as_ref().map(|head| {
            head.entry_by_path(at.as_bytes().as_bstr())
                .is_some_and(|e| e.id == blob)
        });
        let origin = Origin::Git(GitBlob {
            blob: Some(blob.to_string()),
            commit: Some(commit.to_string()),
            commit_time: history::time(time),
            in_head,
            reachable: Some(true),
            ..GitBlob::default()
        });
        blobs.blob_after(blob, &at, origin, &before);
    }
    Ok(())
}

/// Where a (blob, path) came from: the earliest commit of the range that put the blob at the
/// path (author time, id), and the blobs the path held in that commit's parents.
type Introduced = ((i64, ObjectId), Vec<ObjectId>);

/// The commit `id`, parsed, and its message. One that cannot be read is reported.
fn read_commit(
    repo: &gix::Repository,
    id: ObjectId,
    hash: gix::hash::Kind,
    buf: &mut Vec<u8>,
    sink: &dyn Sink,
) -> Option<(CommitRecord, Vec<u8>)> {
    let what = format!("commit {id}");
    match repo.objects.try_find(&id, buf) {
        Ok(Some(data)) if data.kind == gix::objs::Kind::Commit => {
            match parse_commit(id, data.data, hash) {
                Some(record) => Some((record, commit_message(data.data).to_vec())),
                None => {
                    sink.error(Path::new(&what), "not a valid commit object");
                    None
                }
            }
        }
        Ok(Some(data)) => {
            sink.error(
                Path::new(&what),
                &format!("expected a commit, found a {}", data.kind),
            );
            None
        }
        Ok(None) => {
            sink.error(Path::new(&what), "commit is missing (a shallow clone?)");
            None
        }
        Err(e) => {
            sink.error(Path::new(&what), &one_line(&e));
            None
        }
    }
}

fn scan_message(blobs: &mut SelectedBlobs<'_>, commit: &str, time: i64, message: Vec<u8>) {
    let passed_over = if message.len() as u64 > blobs.options.max_blob_size {
        Some(SkipReason::TooLarge)
    } else if crate::source::fs::is_binary(&message) {
        Some(SkipReason::Binary)
    } else {
        None
    };
    if let Some(reason) = passed_over {
        blobs.sink.not_scanned(Skip {
            object: Some(commit),
            detail: Some("the commit's message"),
            ..Skip::new(Path::new(commit), reason)
        });
        return;
    }
    blobs.sink.blob(crate::source::Blob {
        bytes: message,
        provenance: crate::source::Provenance {
            path: commit.into(),
            origin: Origin::GitCommitMessage(GitCommit {
                commit: commit.to_string(),
                commit_time: history::time(time),
            }),
            backup: None,
        },
        project: blobs.project.clone(),
        root: blobs.root.clone(),
        mcp: None,
        fields: None,
    });
}
