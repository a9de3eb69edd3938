//! `git:PATH` targets: a repository's whole object database, history included.
//!
//! Every blob in the object database (reachable from any ref, or not: a commit dropped by
//! `reset --hard` or a force-push stays on disk until gc) is handed on exactly once, however
//! many commits share it, as packs are decoded on every core ([`objects`]). Then the commits
//! are walked ([`history`]) to learn where each blob lived; that history rides along with the
//! blobs ([`HistoryRef`]) so that the audit can tell, for each key, when it entered, whether HEAD
//! still has it, when it left and what took its place.
mod discover;
pub mod history;
mod objects;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

pub use discover::repositories_under;
pub use history::{Exit, GitHistory, Occurrence};

use super::{
    Blob, GitBlob, HistoryRef, Origin, Provenance, Sink, SkipReason, SourceError, SourceOptions,
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
    history.fill(history::walk(&repo, inventory.commits, &blobs));
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
    let options = gix::open::Options::isolated()
        .strict_config(false)
        .config_overrides(["core.deltaBaseCacheLimit=64m"]);
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
}

impl objects::ObjectSink for BlobSink<'_> {
    fn blob(&self, id: gix::ObjectId, data: &[u8]) {
        let name = id.to_string();
        if data.len() as u64 > self.options.max_blob_size {
            self.sink.skipped(Path::new(&name), SkipReason::TooLarge);
            return;
        }
        if super::fs::is_binary(data) {
            self.sink.skipped(Path::new(&name), SkipReason::Binary);
            return;
        }
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
            mcp: None,
            fields: None,
        });
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
