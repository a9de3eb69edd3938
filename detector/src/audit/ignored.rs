//! The `config-git-ignored` check: an MCP config that sits inside a git work tree must be
//! ignored by it, or the next `git add -A` publishes its keys. A config the index tracks fails
//! whatever the ignore files say (git ignores only untracked files). Otherwise decided the way
//! `git check-ignore` decides: `.gitignore` files from the config's directory up to the work
//! tree's root (the nearest match wins, a later line over an earlier one), then
//! `.git/info/exclude`, then the user's global excludes file; a file inside an ignored
//! directory is ignored whatever a deeper `!pattern` says.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use gix::bstr::ByteSlice;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::key::CheckEntry;

pub const CHECK_CONFIG_GIT_IGNORED: &str = "config-git-ignored";

/// Parsed ignore files, shared by every config of a run.
#[derive(Default)]
pub struct IgnoreCache {
    /// Directory → its `.gitignore`, if it has one.
    dirs: HashMap<PathBuf, Option<Gitignore>>,
    /// Work tree root → its `info/exclude`.
    excludes: HashMap<PathBuf, Option<Gitignore>>,
    /// The user's global excludes, read once.
    global: Option<Option<Gitignore>>,
    /// Work tree root → its index (`None`: no index could be read).
    indexes: HashMap<PathBuf, Option<gix::worktree::Index>>,
}

/// A config that git could publish (see [`IgnoreCache::exposure`]).
#[derive(Debug, Clone)]
pub struct GitExposure {
    pub root: PathBuf,
    /// The config's path inside the work tree.
    pub relative: PathBuf,
    pub tracked: bool,
    pub ignored: bool,
    pub pattern: String,
}

/// Why a path is ignored: the pattern, and where it was written.
struct IgnoredBy {
    path: PathBuf,
    pattern: String,
    source: Option<PathBuf>,
}

impl IgnoreCache {
    /// The check for the config file at `config` (a file on this host's disk).
    pub fn check(&mut self, config: &Path) -> CheckEntry {
        let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        let (pass, reason) = match work_tree_of(&config) {
            None => (true, "not inside a git work tree".to_string()),
            Some(root) if self.is_tracked(&root, &config) => (
                false,
                format!(
                    "tracked by the git work tree at {}: it is committed, and ignore rules do not apply to tracked files; run `git rm --cached {}`, ignore it, and treat its keys as published",
                    root.display(),
                    config.strip_prefix(&root).unwrap_or(&config).display()
                ),
            ),
            Some(root) => match self.ignored(&root, &config) {
                Some(by) => {
                    let source = by
                        .source
                        .map(|s| format!(" in {}", s.display()))
                        .unwrap_or_default();
                    let what = if by.path == config {
                        String::new()
                    } else {
                        format!(" (its directory {})", by.path.display())
                    };
                    (
                        true,
                        format!(
                            "ignored by the work tree at {}{what}: pattern `{}`{source}",
                            root.display(),
                            by.pattern
                        ),
                    )
                }
                None => (
                    false,
                    format!(
                        "inside the git work tree at {} and not ignored: `git add` would commit it; add `{}` to {}",
                        root.display(),
                        suggested_pattern(&root, &config),
                        root.join(".gitignore").display()
                    ),
                ),
            },
        };
        CheckEntry {
            check: CHECK_CONFIG_GIT_IGNORED.to_string(),
            pass,
            reason,
        }
    }

    /// How git could publish the config at `config`: None when it is outside any work tree or
    /// ignored and untracked; else its work tree, whether the index tracks it, and the
    /// pattern that would ignore it (what `detector fix` adds to the root's `.gitignore`).
    pub fn exposure(&mut self, config: &Path) -> Option<GitExposure> {
        let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        let root = work_tree_of(&config)?;
        let tracked = self.is_tracked(&root, &config);
        let ignored = self.ignored(&root, &config).is_some();
        (tracked || !ignored).then(|| GitExposure {
            pattern: suggested_pattern(&root, &config),
            relative: config.strip_prefix(&root).unwrap_or(&config).to_path_buf(),
            root,
            tracked,
            ignored,
        })
    }

    /// Whether the index of the work tree at `root` has an entry for `path`.
    fn is_tracked(&mut self, root: &Path, path: &Path) -> bool {
        let Some(rel) = path.strip_prefix(root).ok().and_then(|r| r.to_str()) else {
            return false;
        };
        let index = self
            .indexes
            .entry(root.to_path_buf())
            .or_insert_with(|| gix::open(root).ok()?.index_or_empty().ok());
        let wanted = rel.replace(std::path::MAIN_SEPARATOR, "/");
        index
            .as_ref()
            .is_some_and(|index| index.entry_by_path(wanted.as_bytes().as_bstr()).is_some())
    }

    /// The first of `path`'s directories (from the top) or `path` itself that git ignores.
    fn ignored(&mut self, root: &Path, path: &Path) -> Option<IgnoredBy> {
        let rel = path.strip_prefix(root).ok()?;
        let mut current = root.to_path_buf();
        let count = rel.components().count();
        for (i, component) in rel.components().enumerate() {
            current.push(component);
            let is_dir = i + 1 < count;
            if let Some(by) = self.decide(root, &current, is_dir) {
                return Some(by);
            }
        }
        None
    }

    /// Ignored by the nearest pattern that matches `path`, or `None` (not matched, or
    /// re-included by a `!pattern`).
    fn decide(&mut self, root: &Path, path: &Path, is_dir: bool) -> Option<IgnoredBy> {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if let Some(gitignore) = self.dir_gitignore(d) {
                let m = gitignore.matched(path, is_dir);
                if m.is_ignore() {
                    return m.inner().map(|glob| ignored_by(path, glob));
                }
                if m.is_whitelist() {
                    return None;
                }
            }
            if d == root {
                break;
            }
            dir = d.parent();
        }
        let exclude = self
            .excludes
            .entry(root.to_path_buf())
            .or_insert_with(|| repo_excludes(root));
        if let Some(m) = exclude.as_ref().map(|e| e.matched(path, is_dir)) {
            if m.is_ignore() {
                return m.inner().map(|glob| ignored_by(path, glob));
            }
            if m.is_whitelist() {
                return None;
            }
        }
        let global = self.global.get_or_insert_with(global_excludes);
        let rel = path.strip_prefix(root).unwrap_or(path);
        match global.as_ref().map(|g| g.matched(rel, is_dir)) {
            Some(m) if m.is_ignore() => m.inner().map(|glob| ignored_by(path, glob)),
            _ => None,
        }
    }

    fn dir_gitignore(&mut self, dir: &Path) -> Option<&Gitignore> {
        self.dirs
            .entry(dir.to_path_buf())
            .or_insert_with(|| {
                let file = dir.join(".gitignore");
                file.is_file().then(|| Gitignore::new(&file).0)
            })
            .as_ref()
    }
}

fn ignored_by(path: &Path, glob: &ignore::gitignore::Glob) -> IgnoredBy {
    IgnoredBy {
        path: path.to_path_buf(),
        pattern: glob.original().to_string(),
        source: glob.from().map(Path::to_path_buf),
    }
}

/// The work tree that holds `path`: the nearest directory above it with a `.git` (a directory,
/// or a file as in linked worktrees and submodules).
pub fn work_tree_of(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|dir| dir.join(".git").exists())
        .map(Path::to_path_buf)
}

fn repo_excludes(root: &Path) -> Option<Gitignore> {
    let file = root.join(".git/info/exclude");
    if !file.is_file() {
        return None;
    }
    let mut builder = GitignoreBuilder::new(root);
    builder.add(&file);
    builder.build().ok()
}

/// The user's global excludes (`core.excludesFile`, else `$XDG_CONFIG_HOME/git/ignore`).
/// `ignore` roots them at the current directory; [`IgnoreCache::decide`] hands them paths
/// relative to the work tree, which is how git reads them.
fn global_excludes() -> Option<Gitignore> {
    let (global, _) = Gitignore::global();
    (!global.is_empty()).then_some(global)
}

/// A pattern that ignores the config: its directory when the client keeps the config in a
/// directory of its own (`.cursor/`, `.vscode/`), else the file, anchored at the root.
fn suggested_pattern(root: &Path, config: &Path) -> String {
    let rel = config.strip_prefix(root).unwrap_or(config);
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    match parent {
        Some(dir) if dir.to_string_lossy().starts_with('.') => format!("/{}/", dir.display()),
        _ => format!("/{}", rel.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/info")).unwrap();
        dir
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn outside_a_work_tree_passes() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("home/.cursor/mcp.json");
        write(&config, "{}");
        let check = IgnoreCache::default().check(&config);
        assert!(check.pass);
        assert_eq!(check.check, CHECK_CONFIG_GIT_IGNORED);
    }

    #[test]
    fn a_config_git_would_commit_fails() {
        let repo = repo();
        let config = repo.path().join(".cursor/mcp.json");
        write(&config, "{}");
        let check = IgnoreCache::default().check(&config);
        assert!(!check.pass, "{}", check.reason);
        assert!(check.reason.contains("`/.cursor/`"), "{}", check.reason);
    }

    #[test]
    fn ignored_directories_files_and_excludes_pass() {
        let repo = repo();
        let config = repo.path().join(".cursor/mcp.json");
        write(&config, "{}");
        write(&repo.path().join(".gitignore"), "node_modules\n.cursor/\n");
        let check = IgnoreCache::default().check(&config);
        assert!(check.pass, "{}", check.reason);
        assert!(check.reason.contains("`.cursor/`"), "{}", check.reason);
        assert!(check.reason.contains("its directory"), "{}", check.reason);

        // A deeper `!` cannot re-include a file of an ignored directory.
        write(&repo.path().join(".cursor/.gitignore"), "!mcp.json\n");
        assert!(IgnoreCache::default().check(&config).pass);

        let other = repo.path().join("sub/.mcp.json");
        write(&other, "{}");
        assert!(!IgnoreCache::default().check(&other).pass);
        write(&repo.path().join("sub/.gitignore"), ".mcp.json\n");
        assert!(IgnoreCache::default().check(&other).pass);
        // A nearer `!` wins over a farther ignore.
        write(&repo.path().join(".gitignore"), "*.json\n");
        let third = repo.path().join("keep/.mcp.json");
        write(&third, "{}");
        write(&repo.path().join("keep/.gitignore"), "!.mcp.json\n");
        assert!(!IgnoreCache::default().check(&third).pass);

        let fourth = repo.path().join("cfg/.mcp.yaml");
        write(&fourth, "");
        write(&repo.path().join(".git/info/exclude"), "/cfg/\n");
        let check = IgnoreCache::default().check(&fourth);
        assert!(check.pass, "{}", check.reason);
        assert!(check.reason.contains("info/exclude"), "{}", check.reason);
    }
}
