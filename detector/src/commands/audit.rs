//! `detector audit`: this host in one report. The MCP configs of every home, the homes as
//! directories, the git repositories found in them, and the local Docker daemon's images,
//! through the same pipeline as `detector scan`.
use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{scan, EXIT_ERROR};
use crate::{
    cli::AuditArgs,
    mcp::{self, Home},
    source::{git, mcp::home_at, Target},
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

pub fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let homes: Vec<Home> = if args.homes.is_empty() {
        mcp::homes()
    } else {
        let mut homes = Vec::new();
        for dir in &args.homes {
            match home_at(dir) {
                Ok(home) => homes.push(home),
                Err(err) => {
                    eprintln!("detector: cannot audit home {err}");
                    return Ok(EXIT_ERROR.into());
                }
            }
        }
        homes
    };
    if homes.is_empty() {
        eprintln!("detector: no home directory found (set HOME or pass --home DIR)");
        return Ok(EXIT_ERROR.into());
    }

    let mut targets: Vec<Target> = Vec::new();
    targets.extend(homes.iter().map(|h| Target::Mcp(Some(h.dir.clone()))));
    targets.extend(homes.iter().map(|h| Target::Dir(h.dir.clone())));

    let repositories: Vec<PathBuf> = homes
        .iter()
        .flat_map(|h| {
            let skip = (!args.all_files).then(|| tool_trees(&h.dir));
            repositories_under(&h.dir, skip.as_ref())
        })
        .collect();
    let git = history_targets(&repositories);
    let git_count = git.len();
    targets.extend(git);

    let (images, image_note) = if args.no_images {
        (Vec::new(), None)
    } else {
        image_targets()
    };
    let image_count = images.len();
    targets.extend(images);

    for raw in &args.targets {
        match Target::parse(raw) {
            Ok(target) => targets.push(target),
            Err(err) => {
                eprintln!("detector: {err}");
                return Ok(EXIT_ERROR.into());
            }
        }
    }

    let names: Vec<String> = homes.iter().map(|h| h.dir.display().to_string()).collect();
    eprintln!(
        "detector audit: {} home{} ({}), {} git repositor{}, {} image{}",
        homes.len(),
        if homes.len() == 1 { "" } else { "s" },
        names.join(", "),
        git_count,
        if git_count == 1 { "y" } else { "ies" },
        image_count,
        if image_count == 1 { "" } else { "s" },
    );
    if let Some(note) = image_note {
        eprintln!("detector audit: {note}");
    }
    if !args.all_files {
        eprintln!(
            "detector audit: tool-managed trees (toolchains, package caches, node_modules) left out; --all-files reads them"
        );
    }
    let mut options = args.scan.clone();
    if !args.all_files {
        options
            .exclude
            .extend(TOOL_TREES.iter().map(|t| t.to_string()));
    }
    scan::run_targets(&targets, &options)
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
        if git::is_repository(&dir) {
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

/// `git:` targets for the repositories.
fn history_targets(repositories: &[PathBuf]) -> Vec<Target> {
    repositories
        .iter()
        .map(|repo| Target::Git(repo.clone()))
        .collect()
}

/// `docker:` targets for the local daemon's images, or a note saying why there are none.
fn image_targets() -> (Vec<Target>, Option<String>) {
    match local_images() {
        Ok(names) => (names.into_iter().map(Target::Docker).collect(), None),
        Err(reason) => (Vec::new(), Some(format!("no images scanned: {reason}"))),
    }
}

/// The local daemon's images by tag (by id when untagged), from `GET /images/json`.
fn local_images() -> Result<Vec<String>, String> {
    let socket = crate::source::image::docker_socket()?;
    if !socket.exists() {
        return Err(format!("no Docker daemon socket at {}", socket.display()));
    }
    let mut stream = UnixStream::connect(&socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let timeout = Some(Duration::from_secs(20));
    stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0: the daemon answers with the whole body and closes, never chunked.
    stream
        .write_all(b"GET /images/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| format!("Docker daemon at {}: {e}", socket.display()))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("Docker daemon at {}: {e}", socket.display()))?;
    let split = memchr::memmem::find(&response, b"\r\n\r\n")
        .ok_or_else(|| "the Docker daemon's answer has no HTTP header".to_string())?;
    let status = String::from_utf8_lossy(&response[..split]);
    let status_line = status.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(format!("the Docker daemon answered `{status_line}`"));
    }
    images_from_json(&response[split + 4..])
}

fn images_from_json(body: &[u8]) -> Result<Vec<String>, String> {
    let images: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the Docker daemon's image list is not JSON: {e}"))?;
    let mut names = Vec::new();
    for image in &images {
        let tags: Vec<String> = image["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .filter(|t| *t != "<none>:<none>")
            .map(str::to_string)
            .collect();
        match (tags.first(), image["Id"].as_str()) {
            // One name per image: its tags share the same layers.
            (Some(tag), _) => names.push(tag.clone()),
            (None, Some(id)) => names.push(id.to_string()),
            (None, None) => {}
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
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
        std::fs::create_dir_all(home.join(".cargo/git/checkouts/dep/.git")).unwrap();
        let found = repositories_under(home, Some(&tool_trees(home)));
        assert_eq!(
            found,
            [
                home.join("mirror.git"),
                home.join("src/app"),
                home.join("src/app/vendor/lib")
            ]
        );
    }

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
    fn image_names_prefer_tags() {
        let body = br#"[{"Id":"sha256:aa","RepoTags":["app:prod","app:latest"]},
                        {"Id":"sha256:bb","RepoTags":["<none>:<none>"]},
                        {"Id":"sha256:cc"}]"#;
        assert_eq!(
            images_from_json(body).unwrap(),
            ["app:prod", "sha256:bb", "sha256:cc"]
        );
    }
}
