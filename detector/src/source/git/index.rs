//! `git:PATH --staged`: what `git commit` would record, for a pre-commit hook. The index is
//! compared with HEAD's tree path by path (both are sorted the same way) and only the entries
//! that are new or changed are read, so the cost is the staged change plus one walk of HEAD's
//! tree, not the history.
//!
//! A staged file is reported as a file at its path in the work tree (relative to it), current
//! and so live: it is what the commit is about to make HEAD hold.
use std::{cmp::Ordering, path::Path};

use gix::{bstr::ByteSlice, index::entry::Mode};

use super::{objects::one_line, selected::SelectedBlobs};
use crate::source::{DiskFile, Origin, Sink, SourceError, SourceOptions};

/// Whether `path` is a work tree whose index can be read (not a bare repository).
pub fn is_work_tree(path: &Path) -> bool {
    path.join(".git").exists()
}

/// Read the staged blobs (added or modified against HEAD) of the work tree at `path`.
pub fn scan(path: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let repo = super::open(path)?;
    let mut blobs = SelectedBlobs::new(&repo, options, sink, path);
    let local = &blobs.repo;
    if local.workdir().is_none() {
        return Err(SourceError::new(
            path,
            "a bare repository has no index (--staged takes a work tree)",
        ));
    }
    let head_tree = local
        .head_tree_id_or_empty()
        .map_err(|e| SourceError::new(path, format!("cannot read HEAD ({})", one_line(&e))))?
        .detach();
    let head = local.index_from_tree(&head_tree).map_err(|e| {
        SourceError::new(path, format!("cannot read HEAD's tree ({})", one_line(&e)))
    })?;

    let staged = staged_against(local, &head, path)?;
    for (id, rel) in staged {
        blobs.blob(id, &rel, Origin::File(DiskFile::default()));
    }
    Ok(())
}

/// What a commit would add or change: the index against HEAD. The index is the one git names
/// in `GIT_INDEX_FILE` when it runs a hook (`git commit -a` and `git commit PATH` stage into a
/// temporary index), else the repository's own (none yet: empty).
fn staged_against(
    repo: &gix::Repository,
    head: &gix::index::State,
    path: &Path,
) -> Result<Vec<(gix::ObjectId, String)>, SourceError> {
    let cannot = |file: &Path, e: &dyn std::fmt::Display| {
        SourceError::new(
            path,
            format!("cannot read the index {} ({})", file.display(), one_line(e)),
        )
    };
    match std::env::var_os("GIT_INDEX_FILE").filter(|f| !f.is_empty()) {
        Some(file) => {
            let file = Path::new(&file);
            let index = gix::index::File::at(file, repo.object_hash(), false, Default::default())
                .map_err(|e| cannot(file, &e))?;
            Ok(staged_changes(&index, head))
        }
        None => {
            let index = repo
                .index_or_empty()
                .map_err(|e| cannot(&repo.index_path(), &e))?;
            Ok(staged_changes(&index, head))
        }
    }
}

/// The files of `index` (unconflicted, regular or executable) whose blob HEAD (`head`, its
/// tree as an index) does not hold at the same path: what a commit would add or change.
fn staged_changes(
    index: &gix::index::State,
    head: &gix::index::State,
) -> Vec<(gix::ObjectId, String)> {
    let mut head_entries = head.entries().iter().peekable();
    let mut staged = Vec::new();
    for entry in index.entries() {
        if entry.stage_raw() != 0
            || !(entry.mode == Mode::FILE || entry.mode == Mode::FILE_EXECUTABLE)
        {
            continue;
        }
        let path = entry.path(index);
        // Skip HEAD's entries that sort before this one (deleted or unstaged paths).
        let mut in_head = None;
        while let Some(theirs) = head_entries.peek() {
            match theirs.path(head).cmp(path) {
                Ordering::Less => {
                    head_entries.next();
                }
                Ordering::Equal => {
                    in_head = Some(theirs.id);
                    break;
                }
                Ordering::Greater => break,
            }
        }
        if in_head != Some(entry.id) {
            staged.push((entry.id, path.to_str_lossy().into_owned()));
        }
    }
    staged
}
