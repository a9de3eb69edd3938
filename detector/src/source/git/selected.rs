//! Blobs picked one by one (by the index, by a range of commits) rather than by a pass over
//! the whole object database: each read by id, under the same limits as the full scan.
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use gix::{prelude::Find, ObjectId};

use super::objects::one_line;
use crate::source::{Blob, Origin, Provenance, Sink, Skip, SkipReason, SourceOptions};

/// Reads the blobs of one repository and hands them to the scan's sink.
pub(super) struct SelectedBlobs<'a> {
    pub repo: gix::Repository,
    pub options: &'a SourceOptions,
    pub sink: &'a dyn Sink,
    pub project: String,
    pub root: PathBuf,
    buf: Vec<u8>,
}

impl<'a> SelectedBlobs<'a> {
    pub fn new(
        repo: &gix::ThreadSafeRepository,
        options: &'a SourceOptions,
        sink: &'a dyn Sink,
        root: &Path,
    ) -> SelectedBlobs<'a> {
        SelectedBlobs {
            repo: repo.to_thread_local(),
            options,
            sink,
            project: super::project(repo, root),
            root: root.to_path_buf(),
            buf: Vec::new(),
        }
    }

    /// The blob `id`, found at `path` (relative to the work tree), as `origin`: scanned, or
    /// reported as passed over (too large, binary) or unreadable.
    pub fn blob(&mut self, id: ObjectId, path: &str, origin: Origin) {
        self.blob_after(id, path, origin, &[]);
    }

    /// [`SelectedBlobs::blob`], with only the lines that none of `before` (the versions it
    /// replaced) holds: the others are emptied, so that line numbers stay those of the file
    /// and what was already there before is not reported again. An MCP config is still
    /// parsed whole.
    pub fn blob_after(&mut self, id: ObjectId, path: &str, origin: Origin, before: &[ObjectId]) {
        let mut old_lines: HashSet<Vec<u8>> = HashSet::new();
        for old in before {
            if let Ok(Some(data)) = self.repo.objects.try_find(old, &mut self.buf) {
                if data.kind == gix::objs::Kind::Blob {
                    old_lines.extend(data.data.split(|&b| b == b'\n').map(<[u8]>::to_vec));
                }
            }
        }
        let name = id.to_string();
        let data = match self.repo.objects.try_find(&id, &mut self.buf) {
            Ok(Some(data)) if data.kind == gix::objs::Kind::Blob => data.data,
            Ok(Some(data)) => {
                let reason = format!("{path}: expected a blob, found a {}", data.kind);
                return self
                    .sink
                    .error(Path::new(&format!("object {name}")), &reason);
            }
            Ok(None) => {
                let reason = format!("{path}: blob is missing from the object database");
                return self
                    .sink
                    .error(Path::new(&format!("object {name}")), &reason);
            }
            Err(e) => {
                let reason = format!("{path}: {}", one_line(&e));
                return self
                    .sink
                    .error(Path::new(&format!("object {name}")), &reason);
            }
        };
        let passed_over = if data.len() as u64 > self.options.max_blob_size {
            Some(SkipReason::TooLarge)
        } else if crate::source::fs::is_binary(data) {
            Some(SkipReason::Binary)
        } else {
            None
        };
        if let Some(reason) = passed_over {
            let detail = (reason == SkipReason::TooLarge).then(|| {
                format!(
                    "{} bytes, over --max-blob-size {}",
                    data.len(),
                    self.options.max_blob_size
                )
            });
            return self.sink.not_scanned(Skip {
                object: Some(&name),
                detail: detail.as_deref(),
                ..Skip::new(Path::new(path), reason)
            });
        }
        let mcp = crate::mcp::read_unnamed(Path::new(path), &self.project, data).map(Into::into);
        let bytes = if old_lines.is_empty() {
            data.to_vec()
        } else {
            new_lines_only(data, &old_lines)
        };
        self.sink.blob(Blob {
            bytes,
            provenance: Provenance {
                path: PathBuf::from(path),
                origin,
                backup: None,
            },
            project: self.project.clone(),
            root: self.root.clone(),
            mcp,
            fields: None,
        });
    }
}

/// `data` with every line that `old` holds emptied (its newline kept).
fn new_lines_only(data: &[u8], old: &HashSet<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        if !old.contains(line) {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_already_there_are_emptied_in_place() {
        let old: HashSet<Vec<u8>> = [b"a=1".to_vec(), b"b=2".to_vec()].into();
        assert_eq!(new_lines_only(b"a=1\nc=3\nb=2\n", &old), b"\nc=3\n\n");
        assert_eq!(new_lines_only(b"c=3", &old), b"c=3");
    }
}
