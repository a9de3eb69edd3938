//! Paths as the reports write them: text, whatever bytes the file system allowed. A file name
//! that is not UTF-8 (an attacker may choose one) is written with U+FFFD for the bytes that are
//! not, instead of failing the whole report.
use std::path::{Path, PathBuf};

use serde::Serializer;

pub fn one<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

pub fn maybe<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => one(path, s),
        None => s.serialize_none(),
    }
}

pub fn many<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}
