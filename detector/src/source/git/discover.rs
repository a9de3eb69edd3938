//! Finding repositories under a directory: what `detector audit` reads the history of.
use std::path::{Path, PathBuf};

use ignore::gitignore::Gitignore;

use super::is_repository;

/// Work trees (a `.git` directory or file) and bare repositories under `dir`, not following
/// symlinks, never entering a `.git` directory, a bare repository or a directory `skip`
/// matches.
pub fn repositories_under(dir: &Path, skip: Option<&Gitignore>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if skip.is_some_and(|s| s.matched(&dir, true).is_ignore()) {
            continue;
        }
        if is_repository(&dir) {
            found.push(dir.clone());
            if !dir.join(".git").exists() {
                // A bare repository: its insides are objects, not work trees.
                continue;
            }
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // `file_type` does not follow symlinks, so a link to a directory is not entered.
            if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != ".git" {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_work_trees_and_bare_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join("src/app/.git/objects")).unwrap();
        std::fs::create_dir_all(home.join("src/app/vendor/lib/.git")).unwrap();
        std::fs::create_dir_all(home.join("mirror.git/objects")).unwrap();
        std::fs::create_dir_all(home.join("mirror.git/refs")).unwrap();
        std::fs::write(home.join("mirror.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::create_dir_all(home.join("notes")).unwrap();
        assert_eq!(
            repositories_under(home, None),
            [
                home.join("mirror.git"),
                home.join("src/app"),
                home.join("src/app/vendor/lib")
            ]
        );
    }
}
