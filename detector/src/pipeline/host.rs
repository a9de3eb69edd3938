//! What `detector audit` reads on this host: the MCP configs of every home, the homes as
//! directories (tool-managed trees left out unless asked), the git repositories found in them,
//! and the local Docker daemon's images and containers.
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::{
    mcp::{self, Home},
    source::{container, git, image, mcp::home_at, SourceError, Target},
};

/// Trees that tools manage inside a home (gitignore syntax, from the home): downloaded
/// toolchains, package registries and build caches. Gigabytes of text that no person writes a
/// key into, left out of the homes' walks unless `--all-files`. The credentials these tools
/// keep (`.cargo/credentials.toml`, `.npmrc`, `.docker/config.json`, `.cache/huggingface`) sit
/// outside them and are still read.
pub const TOOL_TREES: &[&str] = &[
    "/.rustup/toolchains/",
    "/.rustup/downloads/",
    "/.cargo/registry/",
    "/.cargo/git/",
    "/.pyenv/versions/",
    "/.nvm/versions/",
    "/.npm/_cacache/",
    "/.cache/pip/",
    "/.cache/go-build/",
    "/.cache/yarn/",
    "/.cache/ms-playwright/",
    "/go/pkg/mod/",
    "/.m2/repository/",
    "/.gradle/caches/",
    "/.vscode-server/bin/",
    "/.cursor-server/bin/",
    "node_modules/",
];

/// What to audit.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// These homes instead of every home on the host (when root) or `$HOME`.
    pub homes: Vec<PathBuf>,
    /// The local Docker daemon's images too.
    pub images: bool,
    /// The local Docker daemon's containers too (running and stopped).
    pub containers: bool,
    /// The homes' tool-managed trees too ([`TOOL_TREES`]).
    pub all_files: bool,
}

/// The targets of a host audit, and what they are made of.
#[derive(Debug)]
pub struct HostTargets {
    pub homes: Vec<Home>,
    pub targets: Vec<Target>,
    pub repositories: usize,
    pub images: usize,
    pub containers: usize,
    /// Why no image (or container) is read, when the daemon could not be asked.
    pub image_note: Option<String>,
    /// Globs the homes' walks leave out (the tool trees, unless `all_files`).
    pub excludes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot audit home {0}")]
    Home(SourceError),
    #[error("no home directory found (set HOME or pass --home DIR)")]
    NoHome,
}

/// The targets that audit this host.
pub fn targets(options: &HostOptions) -> Result<HostTargets, HostError> {
    let homes: Vec<Home> = if options.homes.is_empty() {
        mcp::homes()
    } else {
        options
            .homes
            .iter()
            .map(|dir| home_at(dir).map_err(HostError::Home))
            .collect::<Result<_, _>>()?
    };
    if homes.is_empty() {
        return Err(HostError::NoHome);
    }

    let mut targets: Vec<Target> = Vec::new();
    targets.extend(homes.iter().map(|h| Target::Mcp(Some(h.dir.clone()))));
    targets.extend(homes.iter().map(|h| Target::Dir(h.dir.clone())));

    let repositories: Vec<PathBuf> = homes
        .iter()
        .flat_map(|h| {
            let skip = (!options.all_files).then(|| tool_trees(&h.dir));
            git::repositories_under(&h.dir, skip.as_ref())
        })
        .collect();
    let repository_count = repositories.len();
    targets.extend(repositories.into_iter().map(Target::Git));

    let (images, mut image_note) = if options.images {
        match image::local_images() {
            Ok(names) => (names, None),
            Err(reason) => (Vec::new(), Some(format!("no images scanned: {reason}"))),
        }
    } else {
        (Vec::new(), None)
    };
    let image_count = images.len();
    targets.extend(images.into_iter().map(Target::Docker));
    // Asked only when the daemon answered (or images were not asked for).
    let containers = if options.containers && image_note.is_none() {
        match container::daemon::count() {
            Ok(count) => count,
            Err(reason) => {
                image_note = Some(format!("no containers scanned: {reason}"));
                0
            }
        }
    } else {
        0
    };
    if containers > 0 {
        targets.push(Target::Containers(container::daemon::Which::All));
    }

    let excludes = if options.all_files {
        Vec::new()
    } else {
        TOOL_TREES.iter().map(|t| t.to_string()).collect()
    };
    Ok(HostTargets {
        homes,
        targets,
        repositories: repository_count,
        images: image_count,
        containers,
        image_note,
        excludes,
    })
}

/// [`TOOL_TREES`] under `home`, as a matcher.
fn tool_trees(home: &Path) -> Gitignore {
    let mut builder = GitignoreBuilder::new(home);
    for tree in TOOL_TREES {
        // The patterns are constants, tested below.
        let _ = builder.add_line(None, tree);
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_trees_are_valid_globs() {
        let home = Path::new("/home/al");
        let mut builder = GitignoreBuilder::new(home);
        for tree in TOOL_TREES {
            builder.add_line(None, tree).unwrap();
        }
        let trees = builder.build().unwrap();
        assert!(trees
            .matched("/home/al/.rustup/toolchains", true)
            .is_ignore());
        assert!(trees
            .matched("/home/al/work/app/node_modules", true)
            .is_ignore());
        assert!(!trees.matched("/home/al/.cargo", true).is_ignore());
        assert!(!trees
            .matched("/home/al/.cache/huggingface", true)
            .is_ignore());
    }

    #[test]
    fn tool_trees_are_not_searched_for_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join("src/app/.git/objects")).unwrap();
        std::fs::create_dir_all(home.join(".cargo/git/checkouts/dep/.git")).unwrap();
        let found = git::repositories_under(home, Some(&tool_trees(home)));
        assert_eq!(found, [home.join("src/app")]);
    }
}
