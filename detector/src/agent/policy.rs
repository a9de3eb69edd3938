//! The agent's policy: file groups (MCP client configs, secret files, project `.env` files)
//! and the processes expected to read them. Schema and defaults: `deploy/policy.toml`.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs, io,
    path::{Path, PathBuf},
};

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::mcp::{self, Home};

/// The default policy, compiled in.
pub const DEFAULT_POLICY: &str = include_str!("../../../deploy/policy.toml");

/// The `policy_rule` of a read of an MCP server's environment that no group claims.
pub const ENVIRON_RULE: &str = "mcp-server-environ";

/// How deep below a project root `project_files` are looked for.
const PROJECT_DEPTH: usize = 4;
/// Directories never entered while looking for project files.
const SKIPPED_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    ".cache",
];

/// A policy that cannot be read or used; `origin` is its path, or "built-in".
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {}: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    #[error("policy {origin}: {}", error.to_string().trim())]
    Syntax {
        origin: String,
        error: toml::de::Error,
    },
    #[error("policy {origin}: group {group:?}: {problem}")]
    Group {
        origin: String,
        group: String,
        problem: GroupProblem,
    },
    #[error("policy {origin}: no [[group]]")]
    NoGroups { origin: String },
}

/// What is wrong with one `[[group]]` of a policy.
#[derive(Debug, thiserror::Error)]
pub enum GroupProblem {
    #[error("names no files (mcp_clients, paths or project_files)")]
    NamesNoFiles,
    #[error("unknown MCP client {0:?}")]
    UnknownClient(String),
    #[error("bad glob {pattern:?}: {error}")]
    BadGlob {
        pattern: String,
        error: globset::Error,
    },
    #[error("bad project_files glob: {0}")]
    BadProjectFiles(globset::Error),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    project_roots: Vec<String>,
    #[serde(default)]
    group: Vec<GroupFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    name: String,
    #[serde(default)]
    mcp_clients: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    project_files: Vec<String>,
    /// The group claims `/proc/PID/environ` of every running MCP server of a watched config.
    #[serde(default)]
    mcp_server_environ: bool,
    #[serde(default)]
    allow: Vec<AllowFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    exe: String,
    parent: Option<String>,
    cmdline: Option<String>,
}

pub struct Policy {
    /// Where it came from (a path, or "built-in"), for messages.
    pub origin: String,
    project_roots: Vec<String>,
    groups: Vec<Group>,
}

pub struct Group {
    pub name: String,
    mcp_clients: Vec<String>,
    paths: Vec<String>,
    project_files: Vec<GlobMatcher>,
    project_file_patterns: Vec<String>,
    mcp_server_environ: bool,
    allow: Vec<Allow>,
}

struct Allow {
    exe: GlobMatcher,
    parent: Option<GlobMatcher>,
    cmdline: Option<GlobMatcher>,
    text: String,
}

/// Who opened a file, as far as the policy needs to know.
pub struct Reader<'a> {
    pub exe: &'a str,
    pub parent_exe: Option<&'a str>,
    pub cmdline: &'a [String],
}

/// The policy's answer for one open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// `group` when nothing allowed the reader, `group/allow[i]` when allow rule i did.
    pub rule: String,
}

impl Policy {
    pub fn builtin() -> Result<Policy, PolicyError> {
        Policy::parse(DEFAULT_POLICY, "built-in")
    }

    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = crate::source::fs::read_named_text(path).map_err(|error| PolicyError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|error| PolicyError::Syntax {
            origin: origin.to_string(),
            error,
        })?;
        let mut groups = Vec::new();
        for group in file.group {
            let group_error = |problem| PolicyError::Group {
                origin: origin.to_string(),
                group: group.name.clone(),
                problem,
            };
            if group.mcp_clients.is_empty()
                && group.paths.is_empty()
                && group.project_files.is_empty()
                && !group.mcp_server_environ
            {
                return Err(group_error(GroupProblem::NamesNoFiles));
            }
            for id in &group.mcp_clients {
                if id != "*" && mcp::client_by_id(id).is_none() {
                    return Err(group_error(GroupProblem::UnknownClient(id.clone())));
                }
            }
            let bad_glob = |pattern: &str| {
                let pattern = pattern.to_string();
                move |error| group_error(GroupProblem::BadGlob { pattern, error })
            };
            let mut allow = Vec::new();
            for rule in &group.allow {
                let glob = |pattern: &str| {
                    GlobBuilder::new(pattern)
                        .literal_separator(true)
                        .build()
                        .map(|g| g.compile_matcher())
                        .map_err(bad_glob(pattern))
                };
                let cmdline = match &rule.cmdline {
                    Some(p) => Some(
                        Glob::new(p)
                            .map(|g| g.compile_matcher())
                            .map_err(bad_glob(p))?,
                    ),
                    None => None,
                };
                let mut text = format!("exe {}", rule.exe);
                if let Some(parent) = &rule.parent {
                    let _ = write!(text, ", parent {parent}");
                }
                if let Some(cmdline) = &rule.cmdline {
                    let _ = write!(text, ", cmdline {cmdline}");
                }
                allow.push(Allow {
                    exe: glob(&rule.exe)?,
                    parent: rule.parent.as_deref().map(glob).transpose()?,
                    cmdline,
                    text,
                });
            }
            let project_files = group
                .project_files
                .iter()
                .map(|p| Glob::new(p).map(|g| g.compile_matcher()))
                .collect::<Result<_, _>>()
                .map_err(|error| group_error(GroupProblem::BadProjectFiles(error)))?;
            groups.push(Group {
                name: group.name,
                mcp_clients: group.mcp_clients,
                paths: group.paths,
                project_files,
                project_file_patterns: group.project_files,
                mcp_server_environ: group.mcp_server_environ,
                allow,
            });
        }
        if groups.is_empty() {
            return Err(PolicyError::NoGroups {
                origin: origin.to_string(),
            });
        }
        Ok(Policy {
            origin: origin.to_string(),
            project_roots: file.project_roots,
            groups,
        })
    }

    pub fn group(&self, index: usize) -> &Group {
        &self.groups[index]
    }

    /// Every file the policy watches now, on this host: path → group index.
    pub fn files(&self, homes: &[Home]) -> BTreeMap<PathBuf, usize> {
        let mut files = BTreeMap::new();
        for home in homes {
            for config in mcp::discover(home) {
                if let Some(group) = self.group_for_client(config.client.id) {
                    files.entry(config.path).or_insert(group);
                }
            }
            for (index, group) in self.groups.iter().enumerate() {
                for pattern in &group.paths {
                    for path in expand(pattern, &home.dir) {
                        files.entry(path).or_insert(index);
                    }
                }
            }
            for root in self.project_roots(home) {
                find_project_files(&root, PROJECT_DEPTH, &mut |path| {
                    if let Some(group) = self.group_for_project_file(path) {
                        files.entry(path.to_path_buf()).or_insert(group);
                    }
                });
            }
        }
        files
    }

    /// Directories whose changes can add files to the watch set: the homes, the directories of
    /// every possible MCP config and policy path, and the project roots.
    pub fn directories(&self, homes: &[Home]) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for home in homes {
            dirs.push(home.dir.clone());
            for client in mcp::clients() {
                for file in client.files {
                    if file.scope == mcp::Scope::Global {
                        dirs.push(literal_parent(&home.dir.join(file.path)));
                    }
                }
            }
            for group in &self.groups {
                for pattern in &group.paths {
                    dirs.push(literal_parent(&expand_home(pattern, &home.dir)));
                }
            }
            dirs.extend(self.project_roots(home));
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// The group a path belongs to, for a file seen later (created, renamed into place) or
    /// named with `--watch`.
    pub fn group_for_path(&self, path: &Path, homes: &[Home]) -> Option<usize> {
        if let Some(config) = mcp::recognise(path) {
            if let Some(group) = self.group_for_client(config.client.id) {
                return Some(group);
            }
        }
        for home in homes {
            for (index, group) in self.groups.iter().enumerate() {
                for pattern in &group.paths {
                    let full = expand_home(pattern, &home.dir);
                    if path_matches(&full, path) {
                        return Some(index);
                    }
                }
            }
            if self
                .project_roots(home)
                .iter()
                .any(|root| path.starts_with(root))
            {
                if let Some(group) = self.group_for_project_file(path) {
                    return Some(group);
                }
            }
        }
        None
    }

    fn group_for_client(&self, client: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.mcp_clients.iter().any(|c| c == client))
            .or_else(|| {
                self.groups
                    .iter()
                    .position(|g| g.mcp_clients.iter().any(|c| c == "*"))
            })
    }

    fn group_for_project_file(&self, path: &Path) -> Option<usize> {
        let name = path.file_name()?;
        self.groups
            .iter()
            .position(|g| g.project_files.iter().any(|m| m.is_match(name)))
    }

    fn project_roots(&self, home: &Home) -> Vec<PathBuf> {
        self.project_roots
            .iter()
            .map(|r| expand_home(r, &home.dir))
            .collect()
    }

    /// The group that claims the environment (`/proc/PID/environ`) of MCP servers, if any.
    pub fn environ_group(&self) -> Option<usize> {
        self.groups.iter().position(|g| g.mcp_server_environ)
    }

    /// Whether `reader` may read an MCP server's environment: the [`Policy::environ_group`]'s
    /// rules, and without such a group nobody may (`policy_rule` "mcp-server-environ").
    pub fn environ_verdict(&self, reader: &Reader) -> Verdict {
        match self.environ_group() {
            Some(group) => self.verdict(Some(group), reader),
            None => Verdict {
                allowed: false,
                rule: ENVIRON_RULE.into(),
            },
        }
    }

    /// Whether `reader` may open a file of `group` (`None`: a file no group claims).
    pub fn verdict(&self, group: Option<usize>, reader: &Reader) -> Verdict {
        let Some(index) = group else {
            return Verdict {
                allowed: false,
                rule: "unlisted".into(),
            };
        };
        let group = &self.groups[index];
        let cmdline = reader.cmdline.join(" ");
        for (i, allow) in group.allow.iter().enumerate() {
            let exe_ok = allow.exe.is_match(reader.exe);
            let parent_ok = match (&allow.parent, reader.parent_exe) {
                (None, _) => true,
                (Some(glob), Some(parent)) => glob.is_match(parent),
                (Some(_), None) => false,
            };
            let cmdline_ok = allow
                .cmdline
                .as_ref()
                .is_none_or(|glob| glob.is_match(&cmdline));
            if exe_ok && parent_ok && cmdline_ok {
                return Verdict {
                    allowed: true,
                    rule: format!("{}/allow[{i}]", group.name),
                };
            }
        }
        Verdict {
            allowed: false,
            rule: group.name.clone(),
        }
    }

    /// `detector agent --check-policy`: the policy in words, and what it watches on this host.
    pub fn explain(&self, homes: &[Home]) -> String {
        let files = self.files(homes);
        let mut out = format!("policy {} ({} groups)\n", self.origin, self.groups.len());
        if !self.project_roots.is_empty() {
            let _ = writeln!(out, "project roots: {}", self.project_roots.join(", "));
        }
        for (index, group) in self.groups.iter().enumerate() {
            let _ = writeln!(out, "\ngroup {}", group.name);
            if !group.mcp_clients.is_empty() {
                let _ = writeln!(out, "  MCP configs of: {}", group.mcp_clients.join(", "));
            }
            if !group.paths.is_empty() {
                let _ = writeln!(out, "  files: {}", group.paths.join(", "));
            }
            if !group.project_file_patterns.is_empty() {
                let _ = writeln!(
                    out,
                    "  project files: {}",
                    group.project_file_patterns.join(", ")
                );
            }
            if group.mcp_server_environ {
                let _ = writeln!(out, "  the environment (/proc/PID/environ) of MCP servers");
            }
            if group.allow.is_empty() {
                let _ = writeln!(out, "  allowed readers: none (every reader alerts)");
            } else {
                let _ = writeln!(out, "  allowed readers:");
                for (i, allow) in group.allow.iter().enumerate() {
                    let _ = writeln!(out, "    allow[{i}]: {}", allow.text);
                }
            }
            let watched: Vec<&PathBuf> = files
                .iter()
                .filter(|(_, g)| **g == index)
                .map(|(p, _)| p)
                .collect();
            let _ = writeln!(out, "  watched on this host now: {}", watched.len());
            for path in watched {
                let _ = writeln!(out, "    {}", path.display());
            }
        }
        out
    }
}

fn expand_home(pattern: &str, home: &Path) -> PathBuf {
    match pattern.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(pattern),
    }
}

/// The files a pattern names now (a glob is allowed in the last component only).
fn expand(pattern: &str, home: &Path) -> Vec<PathBuf> {
    let full = expand_home(pattern, home);
    let Some(name) = full.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    if !name.contains(['*', '?', '[']) {
        return if full.is_file() {
            vec![full]
        } else {
            Vec::new()
        };
    }
    let Ok(matcher) = Glob::new(&name).map(|g| g.compile_matcher()) else {
        return Vec::new();
    };
    let Some(dir) = full.parent() else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| matcher.is_match(e.file_name()) && e.path().is_file())
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn path_matches(pattern: &Path, path: &Path) -> bool {
    if pattern.parent() != path.parent() {
        return false;
    }
    match (pattern.file_name(), path.file_name()) {
        (Some(p), Some(n)) => Glob::new(&p.to_string_lossy())
            .map(|g| g.compile_matcher().is_match(n))
            .unwrap_or(false),
        _ => false,
    }
}

/// The directory part of a path pattern before any glob character.
fn literal_parent(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.parent().unwrap_or(path).components() {
        if part.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        out.push(part);
    }
    out
}

fn find_project_files(dir: &Path, depth: usize, found: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_file() {
            found(&path);
        } else if kind.is_dir() && depth > 0 {
            let name = entry.file_name();
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                find_project_files(&path, depth - 1, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(dir: &Path) -> Home {
        Home {
            user: "al".into(),
            uid: 1000,
            dir: dir.to_path_buf(),
        }
    }

    #[test]
    fn a_group_may_claim_the_environment_of_mcp_servers() {
        let reader = |exe| Reader {
            exe,
            parent_exe: None,
            cmdline: &[],
        };
        let none = Policy::parse("[[group]]\nname = \"a\"\npaths = [\"/x\"]\n", "t").unwrap();
        let verdict = none.environ_verdict(&reader("/usr/bin/cat"));
        assert_eq!(
            (verdict.allowed, verdict.rule.as_str()),
            (false, ENVIRON_RULE)
        );
        let policy = Policy::parse(
            "[[group]]\nname = \"env\"\nmcp_server_environ = true\nallow = [{ exe = \"/usr/bin/ps\" }]\n",
            "t",
        )
        .unwrap();
        assert_eq!(policy.environ_group(), Some(0));
        let allowed = policy.environ_verdict(&reader("/usr/bin/ps"));
        assert_eq!(
            (allowed.allowed, allowed.rule.as_str()),
            (true, "env/allow[0]")
        );
        let alerted = policy.environ_verdict(&reader("/usr/bin/cat"));
        assert_eq!((alerted.allowed, alerted.rule.as_str()), (false, "env"));
    }

    #[test]
    fn the_default_policy_parses() {
        let policy = Policy::builtin().unwrap();
        assert!(policy.groups.len() >= 5);
    }

    #[test]
    fn readers_are_judged_by_exe_parent_and_cmdline() {
        let policy = Policy::parse(
            r#"
            [[group]]
            name = "cursor"
            mcp_clients = ["cursor"]
            allow = [{ exe = "/usr/share/cursor/**" }, { exe = "**/node", parent = "**/cursor", cmdline = "*mcp*" }]
            "#,
            "test",
        )
        .unwrap();
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let judge = |exe, parent, cmdline: &[String]| {
            policy.verdict(
                Some(0),
                &Reader {
                    exe,
                    parent_exe: parent,
                    cmdline,
                },
            )
        };
        assert!(judge("/usr/share/cursor/resources/app/cursor", None, &[]).allowed);
        assert_eq!(
            judge("/usr/share/cursor/x", None, &[]).rule,
            "cursor/allow[0]"
        );
        assert!(
            judge(
                "/usr/bin/node",
                Some("/opt/cursor"),
                &args("node mcp-server.js")
            )
            .allowed
        );
        assert!(
            !judge(
                "/usr/bin/node",
                Some("/usr/bin/bash"),
                &args("node mcp-server.js")
            )
            .allowed
        );
        assert!(!judge("/usr/bin/node", Some("/opt/cursor"), &args("node other.js")).allowed);
        let cat = judge("/usr/bin/cat", None, &[]);
        assert_eq!(
            cat,
            Verdict {
                allowed: false,
                rule: "cursor".into()
            }
        );
    }

    #[test]
    fn files_come_from_the_catalogue_paths_and_project_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join(".cursor")).unwrap();
        fs::write(root.join(".cursor/mcp.json"), "{}").unwrap();
        fs::create_dir_all(root.join(".ssh")).unwrap();
        fs::write(root.join(".ssh/id_ed25519"), "k").unwrap();
        fs::write(root.join(".ssh/known_hosts"), "h").unwrap();
        fs::create_dir_all(root.join("src/app/node_modules/x")).unwrap();
        fs::write(root.join("src/app/.env"), "A=b").unwrap();
        fs::write(root.join("src/app/node_modules/x/.env"), "A=b").unwrap();
        let policy = Policy::builtin().unwrap();
        let homes = [home(root)];
        let files = policy.files(&homes);
        let name = |p: &PathBuf| policy.group(files[p]).name.clone();
        assert_eq!(name(&root.join(".cursor/mcp.json")), "cursor");
        assert_eq!(name(&root.join(".ssh/id_ed25519")), "ssh-keys");
        assert_eq!(name(&root.join("src/app/.env")), "dotenv");
        assert!(!files.contains_key(&root.join(".ssh/known_hosts")));
        assert!(!files.contains_key(&root.join("src/app/node_modules/x/.env")));
        assert_eq!(
            policy
                .group_for_path(&root.join(".ssh/id_rsa"), &homes)
                .map(|g| policy.group(g).name.as_str()),
            Some("ssh-keys")
        );
        assert_eq!(
            policy
                .group_for_path(&root.join("src/new/.env.local"), &homes)
                .map(|g| policy.group(g).name.as_str()),
            Some("dotenv")
        );
        assert!(policy.directories(&homes).contains(&root.join(".ssh")));
        assert!(policy
            .explain(&homes)
            .contains("watched on this host now: 1"));
    }

    #[test]
    fn bad_policies_say_what_is_wrong() {
        let err = |text| Policy::parse(text, "p.toml").err().expect("an error");
        let err1 = err("[[group]]\nname = \"x\"\nmcp_clients = [\"nope\"]\n");
        assert_eq!(
            err1.to_string(),
            "policy p.toml: group \"x\": unknown MCP client \"nope\""
        );
        // Its text is the whole message: `main` prints sources too, and would repeat it.
        assert!(std::error::Error::source(&err1).is_none());
        let err2 = err("[[group]]\nname = \"x\"\n");
        assert!(err2.to_string().contains("names no files"), "{err2}");
        assert!(err("[[group]\n").to_string().starts_with("policy p.toml:"));
    }
}
