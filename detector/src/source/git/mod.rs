//! `git:PATH` targets: a repository's whole object database, history included.
//!
//! Every blob in the object database (reachable from any ref, or not: a commit dropped by
//! `reset --hard` or a force-push stays on disk until gc) is handed on exactly once, however
//! many commits share it, as packs are decoded on every core ([`objects`]). Then the commits
//! are walked ([`history`]) to learn where each blob lived; that history rides along with the
//! blobs ([`HistoryRef`]) so that the audit can tell, for each key, when it entered, whether HEAD
//! still has it, when it left and what took its place.
//!
//! Each commit's message is scanned too, once per commit, as the object pass decodes it: every
//! commit that parses is one the history walk visits. A blob passed over (too large, binary)
//! is reported once the walk is done, at the first path history gives it.
mod discover;
pub mod history;
pub mod index;
mod objects;
pub mod range;
mod selected;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

pub use discover::repositories_under;
pub use history::{Exit, GitHistory, Occurrence};
pub use range::Range;

use super::{
    Blob, GitBlob, GitCommit, HistoryRef, Origin, Provenance, Sink, Skip, SkipReason, SourceError,
    SourceOptions,
};

/// True when `path` is a work tree with a `.git` (directory or file) or a bare repository.
pub fn is_repository(path: &Path) -> bool {
    if path.join(".git").exists() {
        return true;
    }
    path.join("HEAD").is_file() && path.join("objects").is_dir() && path.join("refs").is_dir()
}

/// Read every object of the repository at `path` into `sink`. Objects that cannot be read are
/// reported and skipped; the target fails only when the repository cannot be opened or not a
/// single object could be read.
pub fn scan(path: &Path, options: &SourceOptions, sink: &dyn Sink) -> Result<(), SourceError> {
    let repo = open(path)?;
    let history = Arc::new(GitHistory::default());
    let blobs = BlobSink {
        sink,
        options,
        history: Arc::clone(&history),
        root: path.to_path_buf(),
        project: project(&repo, path),
        errors: AtomicU64::new(0),
        passed_over: Mutex::default(),
    };
    let inventory = objects::read_all(&repo, &blobs);
    tracing::debug!(
        objects = inventory.objects,
        commits = inventory.commits.len(),
        "git objects read"
    );
    if inventory.objects == 0 && blobs.errors.load(Ordering::Relaxed) > 0 {
        return Err(SourceError::new(
            path,
            "not a single object of the repository could be read",
        ));
    }
    let timeline = history::walk(&repo, inventory.commits, &blobs);
    blobs.report_passed_over(&timeline);
    history.fill(timeline);
    Ok(())
}

fn open(path: &Path) -> Result<gix::ThreadSafeRepository, SourceError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(SourceError::new(
                path,
                "not a directory (git: takes a repository)",
            ))
        }
        Err(e) => return Err(SourceError::new(path, super::fs::io_reason(&e))),
    }
    // Only the repository's own config: what a user's global config says must not change
    // what a scan finds.
    // A delta-base cache sized for walking many versions of the same trees.
    // Replace refs (`git replace`) off: objects are read as stored, as a clone or a push
    // carries them, so a replacement cannot hide what it replaces, nor make a tree its own
    // subtree or a tag its own target (git applies one replacement per lookup, and so would
    // gix on every `try_find`). The replacements are objects of their own and scanned as such.
    let options = gix::open::Options::isolated()
        .strict_config(false)
        .config_overrides(["core.deltaBaseCacheLimit=64m", "core.useReplaceRefs=false"]);
    gix::ThreadSafeRepository::open_opts(path, options).map_err(|e| {
        SourceError::new(
            path,
            format!("not a git repository ({})", objects::one_line(&e)),
        )
    })
}

/// The project a repository is: its `origin` URL without credentials, else its path.
fn project(repo: &gix::ThreadSafeRepository, path: &Path) -> String {
    let local = repo.to_thread_local();
    let config = local.config_snapshot();
    match config.string("remote.origin.url") {
        Some(url) => without_userinfo(&url.to_string()),
        None => std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
    }
}

/// `https://user:token@host/x` → `https://host/x`: a remote URL may carry a credential.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Turns decoded blobs into [`Blob`]s for the scan's sink, with the limits applied.
struct BlobSink<'a> {
    sink: &'a dyn Sink,
    options: &'a SourceOptions,
    history: Arc<GitHistory>,
    root: PathBuf,
    project: String,
    errors: AtomicU64,
    /// Blobs not scanned, with why and their size: reported once history can name their path.
    passed_over: Mutex<Vec<(gix::ObjectId, SkipReason, usize)>>,
}

impl BlobSink<'_> {
    /// Each blob passed over, at the first path history gives it (its id when no commit holds
    /// it), in id order.
    fn report_passed_over(&self, timeline: &history::Timeline) {
        let mut passed_over = std::mem::take(&mut *objects::lock(&self.passed_over));
        passed_over.sort_unstable();
        for (id, reason, size) in passed_over {
            let name = id.to_string();
            let path = timeline.first_path(&id).unwrap_or(&name);
            let detail = (reason == SkipReason::TooLarge).then(|| {
                format!(
                    "{size} bytes, over --max-blob-size {}",
                    self.options.max_blob_size
                )
            });
            self.sink.not_scanned(Skip {
                object: Some(&name),
                detail: detail.as_deref(),
                ..Skip::new(Path::new(path), reason)
            });
        }
    }

    /// The reason `data` is not scanned, if any.
    fn passed_over(&self, data: &[u8]) -> Option<SkipReason> {
        if data.len() as u64 > self.options.max_blob_size {
            Some(SkipReason::TooLarge)
        } else if super::fs::is_binary(data) {
            Some(SkipReason::Binary)
        } else {
            None
        }
    }
}

impl objects::ObjectSink for BlobSink<'_> {
    fn blob(&self, id: gix::ObjectId, data: &[u8]) {
        if let Some(reason) = self.passed_over(data) {
            objects::lock(&self.passed_over).push((id, reason, data.len()));
            return;
        }
        let name = id.to_string();
        // A committed MCP config is read as one (by its content: its paths are known only
        // once history is walked), so a key in it is its server's.
        let mcp = crate::mcp::read_unnamed(Path::new(&name), &self.project, data).map(Arc::new);
        // Kubernetes manifests and Compose files, known by their content too.
        let fields = match mcp {
            None => crate::source::secret_file::read_unnamed(data).map(Arc::new),
            Some(_) => None,
        };
        self.sink.blob(Blob {
            bytes: data.to_vec(),
            provenance: Provenance {
                path: PathBuf::from(&name),
                origin: Origin::Git(GitBlob {
                    blob: Some(name),
                    history: Some(HistoryRef(Arc::clone(&self.history))),
                    ..GitBlob::default()
                }),
                backup: None,
            },
            project: self.project.clone(),
            root: self.root.clone(),
            mcp,
            fields,
        });
    }

    fn commit(&self, commit: &history::CommitRecord, message: &[u8]) {
        if message.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let name = commit.id.to_string();
        if let Some(reason) = self.passed_over(message) {
            let detail = format!(
                "the commit's message ({} bytes{})",
                message.len(),
                match reason {
                    SkipReason::TooLarge =>
                        format!(", over --max-blob-size {}", self.options.max_blob_size),
                    _ => String::new(),
                }
            );
            self.sink.not_scanned(Skip {
                object: Some(&name),
                detail: Some(&detail),
                ..Skip::new(Path::new(&name), reason)
            });
            return;
        }
        self.sink.blob(Blob {
            bytes: message.to_vec(),
            provenance: Provenance {
                path: PathBuf::from(&name),
                origin: Origin::GitCommitMessage(GitCommit {
                    commit: name,
                    commit_time: history::time(commit.time),
                }),
                backup: None,
            },
            project: self.project.clone(),
            root: self.root.clone(),
            mcp: None,
            fields: None,
        });
    }

    fn not_scanned(&self, skip: Skip<'_>) {
        self.sink.not_scanned(skip);
    }

    fn error(&self, what: &Path, reason: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.sink.error(what, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_lose_their_credentials() {
        assert_eq!(
            without_userinfo("https://bot:s3cr3t@example.com/org/app.git"),
            "https://example.com/org/app.git"
        );
        assert_eq!(
            without_userinfo("git@example.com:org/app.git"),
            "git@example.com:org/app.git"
        );
        assert_eq!(
            without_userinfo("https://example.com/a@b"),
            "https://example.com/a@b"
        );
    }
}
