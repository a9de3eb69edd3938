//! A sink that keeps what a source hands it, for the sources' own tests.
use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use super::{Blob, Sink, Skip, SkipReason};

#[derive(Default)]
pub struct Collect {
    pub blobs: Mutex<Vec<Blob>>,
    pub skipped: Mutex<Vec<(PathBuf, SkipReason)>>,
    pub errors: Mutex<Vec<(PathBuf, String)>>,
    pub repositories: Mutex<Vec<PathBuf>>,
}

impl Sink for Collect {
    fn blob(&self, blob: Blob) {
        self.blobs.lock().unwrap().push(blob);
    }
    fn not_scanned(&self, skip: Skip<'_>) {
        self.skipped
            .lock()
            .unwrap()
            .push((skip.path.into(), skip.reason));
    }
    fn error(&self, path: &Path, reason: &str) {
        self.errors
            .lock()
            .unwrap()
            .push((path.into(), reason.into()));
    }
    fn repository(&self, path: &Path) {
        self.repositories.lock().unwrap().push(path.into());
    }
}
