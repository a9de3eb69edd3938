//! Where MCP configs are on this host: the homes to look in, the config files of every client
//! under a home (and under the projects that home's clients know about), and whether a file
//! met while walking a directory is one of them.
//!
//! Every file read here (a client's state, naming its projects) goes through the file gate of
//! [`crate::source::fs`], as the files a `dir:` walk meets do: FIFOs and devices are never
//! opened, nothing larger than `--max-file-size` is read, and what the gate refuses is
//! returned in [`Discovery::unread`] for the target to list.
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::catalogue::{
    client_by_id, clients, files_named, split_suffix, wildcard_match, Client, ConfigFile,
    ConfigFormat, Os, Scope, UNIQUE_FILE_NAMES,
};

/// Windows' per-user known folders the catalogue's paths start with, and the variables that
/// say where they are: an administrator may redirect them out of the profile (Microsoft's
/// "Folder Redirection"; KNOWNFOLDERID `FOLDERID_RoamingAppData`, `FOLDERID_LocalAppData`).
const KNOWN_FOLDERS: &[(&str, &str)] = &[
    ("APPDATA", "AppData/Roaming"),
    ("LOCALAPPDATA", "AppData/Local"),
];
use super::parse::parse_document;
use crate::source::{
    fs::{check_type, read_path, read_system_file, too_large_reason, FileRead},
    SkipReason, DEFAULT_MAX_FILE_SIZE,
};

/// A user's home directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Home {
    pub user: String,
    pub uid: u32,
    pub dir: PathBuf,
}

/// Whose config a file is: a user's (global to that user), a project's, or every user's of
/// the machine (managed by an administrator: `/etc/codex/config.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigScope {
    /// The user name.
    User(String),
    /// The project directory.
    Project(PathBuf),
    System,
}

impl ConfigScope {
    /// `user:<name>`, the project directory or `system`, as the report's scope names it.
    pub fn label(&self) -> String {
        match self {
            ConfigScope::User(user) => format!("user:{user}"),
            ConfigScope::Project(dir) => dir.display().to_string(),
            ConfigScope::System => "system".to_string(),
        }
    }
}

/// A config file of a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ConfigRef {
    #[serde(serialize_with = "client_id")]
    pub client: &'static Client,
    pub path: PathBuf,
    pub scope: ConfigScope,
}

fn client_id<S: Serializer>(client: &&'static Client, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(client.id)
}

/// The homes to look in: every user's when running as root (from `/etc/passwd`, plus
/// `/root`, plus `/Users/*` on macOS), else the current user's.
pub fn homes() -> Vec<Home> {
    // Windows has no uids and no password database: the running user's home (uid 0 there
    // stands for "unknown").
    let Some(euid) = crate::platform::euid() else {
        return current_home(0).into_iter().collect();
    };
    if euid != 0 {
        return current_home(euid).into_iter().collect();
    }
    let passwd = read_system_file(Path::new("/etc/passwd"));
    let mut homes = homes_from_passwd(&passwd, uid_min());
    let mut seen: BTreeSet<PathBuf> = homes.iter().map(|h| h.dir.clone()).collect();
    let root = PathBuf::from("/root");
    if root.is_dir() && seen.insert(root.clone()) {
        homes.push(Home {
            user: "root".into(),
            uid: 0,
            dir: root,
        });
    }
    // macOS keeps its users in Directory Services, not in /etc/passwd.
    if let Ok(entries) = fs::read_dir("/Users") {
        for entry in entries.flatten() {
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() || name == "Shared" || name.starts_with('.') {
                continue;
            }
            if seen.insert(dir.clone()) {
                homes.push(Home {
                    user: name,
                    uid: crate::platform::owner(&meta).map_or(0, |(uid, _)| uid),
                    dir,
                });
            }
        }
    }
    homes
}

fn current_home(uid: u32) -> Option<Home> {
    let entry = passwd_entries().iter().find(|e| e.uid == uid);
    let dir = crate::platform::home_var()
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| entry.map(|e| e.dir.clone()))?;
    let user = entry
        .map(|e| e.user.clone())
        .or_else(crate::platform::user_var)
        .unwrap_or_else(|| uid.to_string());
    Some(Home { user, uid, dir })
}

/// Homes of `/etc/passwd` worth looking in: root's and those of regular users (uid from
/// `UID_MIN`), plus any system account's home that holds an MCP config (a CI runner, a
/// service running an agent). Skips homes that do not exist and `/`.
pub(crate) fn homes_from_passwd(passwd: &str, uid_min: u32) -> Vec<Home> {
    let mut seen = BTreeSet::new();
    let mut homes = Vec::new();
    for entry in parse_passwd(passwd) {
        if entry.dir == Path::new("/") || !entry.dir.is_dir() || seen.contains(&entry.dir) {
            continue;
        }
        let home = Home {
            user: entry.user,
            uid: entry.uid,
            dir: entry.dir,
        };
        let regular = home.uid == 0 || (home.uid >= uid_min && home.uid != 65534);
        if regular || !config_paths(&home).is_empty() {
            seen.insert(home.dir.clone());
            homes.push(home);
        }
    }
    homes
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    user: String,
    uid: u32,
    dir: PathBuf,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 6 || fields[5].is_empty() {
                return None;
            }
            Some(PasswdEntry {
                user: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                dir: PathBuf::from(fields[5]),
            })
        })
        .collect()
}

fn passwd_entries() -> &'static [PasswdEntry] {
    static ENTRIES: OnceLock<Vec<PasswdEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| parse_passwd(&read_system_file(Path::new("/etc/passwd"))))
}

fn uid_min() -> u32 {
    read_system_file(Path::new("/etc/login.defs"))
        .lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some("UID_MIN"))
                .then(|| parts.next()?.parse().ok())
                .flatten()
        })
        .unwrap_or(1000)
}

/// The existing global config files of every client under `home` (what the agent watches).
pub fn config_paths(home: &Home) -> Vec<PathBuf> {
    let mut found = Discovery::default();
    found.global_configs(home);
    found.configs.into_iter().map(|c| c.path).collect()
}

/// A file discovery met but could not read, and why: a FIFO, device or dangling link at a
/// config path, or a client's state file the file gate refused. Nothing of it is scanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub path: PathBuf,
    /// [`SkipReason::SpecialFile`] (a FIFO, socket or device, never opened),
    /// [`SkipReason::TooLarge`] (over `--max-file-size`), else [`SkipReason::Unreadable`].
    pub reason: SkipReason,
    /// What exactly: `not a regular file (FIFO), not opened`, `dangling symlink (to …)`.
    pub detail: String,
}

/// What discovery found under one home: the config files to read (regular files, or
/// symlinks to them), and the files it could not read, each path once.
#[derive(Debug, Default)]
pub struct Discovery {
    pub configs: Vec<ConfigRef>,
    /// Files refused by the gate that are not in `configs` (a config that is there is listed
    /// by whoever reads it, if the gate refuses it then).
    pub unread: Vec<Unread>,
}

impl Discovery {
    /// Every config file under `home`: the clients' global configs, then the project configs
    /// of projects the clients know about (`~/.claude.json` `projects`, Codex trusted
    /// projects, VS Code-family workspaces) when those directories exist. Client state is
    /// read through the file gate, no larger than `max_file_size`.
    pub fn of(home: &Home, max_file_size: u64) -> Discovery {
        let mut found = Discovery::default();
        found.global_configs(home);
        for project in found.known_projects(home, max_file_size) {
            found.project_configs(&project);
        }
        let mut seen = BTreeSet::new();
        found.configs.retain(|c| seen.insert(c.path.clone()));
        found.unread.retain(|u| seen.insert(u.path.clone()));
        found
    }

    fn global_configs(&mut self, home: &Home) {
        self.global_configs_in(home, &|var| std::env::var_os(var));
    }

    /// The global configs under `home`, with `env` standing for this process's environment.
    fn global_configs_in(&mut self, home: &Home, env: &dyn Fn(&str) -> Option<OsString>) {
        // A relocation the environment documents (`$CODEX_HOME`) is this process's user's.
        let own_home = env(crate::platform::HOME_VAR).is_some_and(|h| Path::new(&h) == home.dir);
        for client in clients() {
            for file in client.files.iter().filter(|f| f.scope == Scope::Global) {
                let mut paths = self.expand(&home.dir, file.path);
                if let Some(moved) = file.env_dir.filter(|_| own_home) {
                    let rest = file
                        .path
                        .strip_prefix(moved.default)
                        .and_then(|rest| rest.strip_prefix('/'));
                    if let (Some(dir), Some(rest)) = (env(moved.var), rest) {
                        paths.extend(self.expand(Path::new(&dir), rest));
                    }
                }
                if own_home && file.os == Os::Windows {
                    for (var, default) in KNOWN_FOLDERS {
                        let rest = file
                            .path
                            .strip_prefix(default)
                            .and_then(|rest| rest.strip_prefix('/'));
                        let Some((dir, rest)) = env(var).zip(rest) else {
                            continue;
                        };
                        // Where the profile has it already: found above.
                        if Path::new(&dir) != home.dir.join(default) {
                            paths.extend(self.expand(Path::new(&dir), rest));
                        }
                    }
                }
                for path in paths {
                    self.configs.push(ConfigRef {
                        client,
                        path,
                        scope: ConfigScope::User(home.user.clone()),
                    });
                }
            }
        }
    }

    /// The global configs of every client under `home` as a process whose environment is
    /// `env` finds them: documented relocations (`$CODEX_HOME`, `$CLAUDE_CONFIG_DIR`) apply
    /// when `env` names `home` as its `HOME`.
    #[cfg(test)]
    pub(crate) fn global_in(home: &Home, env: &dyn Fn(&str) -> Option<OsString>) -> Discovery {
        let mut found = Discovery::default();
        found.global_configs_in(home, env);
        found
    }

    /// The configs an administrator keeps for every user of the machine under `root`
    /// (`/etc/codex/config.toml`, Claude Code's `managed-mcp.json`).
    pub fn system(root: &Path) -> Discovery {
        let mut found = Discovery::default();
        found.scoped_configs(root, Scope::System, &ConfigScope::System);
        let mut seen = BTreeSet::new();
        found.configs.retain(|c| seen.insert(c.path.clone()));
        found
    }

    fn project_configs(&mut self, project: &Path) {
        let scope = ConfigScope::Project(project.to_path_buf());
        self.scoped_configs(project, Scope::Project, &scope);
    }

    /// The config files of every client's `scope` under `base`, each of `config_scope`.
    fn scoped_configs(&mut self, base: &Path, scope: Scope, config_scope: &ConfigScope) {
        for client in clients() {
            for file in client.files.iter().filter(|f| f.scope == scope) {
                for path in self.expand(base, file.path) {
                    self.configs.push(ConfigRef {
                        client,
                        path,
                        scope: config_scope.clone(),
                    });
                }
            }
        }
    }

    /// The files matching a catalogue path under `base` that the gate lets through; the
    /// others (a FIFO, a device, a dangling link) are unread.
    fn expand(&mut self, base: &Path, pattern: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for path in expand(base, pattern) {
            match check_type(&path) {
                None => files.push(path),
                Some(FileRead::Special(what)) => self.unread.push(Unread {
                    path,
                    reason: SkipReason::SpecialFile,
                    detail: what.to_string(),
                }),
                Some(FileRead::Failed(detail)) => self.unread.push(Unread {
                    path,
                    reason: SkipReason::Unreadable,
                    detail,
                }),
                // A directory where a file is expected is no config.
                Some(_) => {}
            }
        }
        files
    }

    /// A client's state file as a document, read through the gate: `None` when it is not
    /// there, is refused (then it is unread), or does not parse.
    fn read_state(&mut self, path: &Path, format: ConfigFormat, max_size: u64) -> Option<Value> {
        fs::symlink_metadata(path).ok()?;
        let (reason, detail) = match read_path(path, max_size) {
            FileRead::Loaded(loaded) => return parse_document(format, &loaded.bytes).ok(),
            FileRead::Failed(detail) => (SkipReason::Unreadable, detail),
            FileRead::Special(what) => (SkipReason::SpecialFile, what.to_string()),
            FileRead::Skipped(SkipReason::TooLarge) => {
                (SkipReason::TooLarge, too_large_reason(path, max_size))
            }
            // Binary, a directory: no document, as one that does not parse.
            _ => return None,
        };
        self.unread.push(Unread {
            path: path.to_path_buf(),
            reason,
            detail,
        });
        None
    }

    /// Project directories named by the clients' own state under `home`.
    fn known_projects(&mut self, home: &Home, max_size: u64) -> Vec<PathBuf> {
        let mut dirs = BTreeSet::new();

        // Claude Code: `projects` of ~/.claude.json.
        if let Some(Value::Object(projects)) = self
            .read_state(&home.dir.join(".claude.json"), ConfigFormat::Json, max_size)
            .as_ref()
            .and_then(|v| v.get("projects"))
        {
            dirs.extend(projects.keys().map(PathBuf::from));
        }
        // Codex: `[projects."/path"]` trust entries.
        if let Some(Value::Object(projects)) = self
            .read_state(
                &home.dir.join(".codex/config.toml"),
                ConfigFormat::Toml,
                max_size,
            )
            .as_ref()
            .and_then(|v| v.get("projects"))
        {
            dirs.extend(projects.keys().map(PathBuf::from));
        }
        // VS Code and its forks: one `workspace.json` per opened folder.
        for storage in [
            ".config/*/User/workspaceStorage/*/workspace.json",
            "Library/Application Support/*/User/workspaceStorage/*/workspace.json",
        ] {
            for path in expand(&home.dir, storage) {
                let folder = self
                    .read_state(&path, ConfigFormat::Json, max_size)
                    .and_then(|v| v.get("folder").and_then(Value::as_str).map(str::to_string));
                if let Some(dir) = folder.as_deref().and_then(file_uri_path) {
                    dirs.insert(dir);
                }
            }
        }
        dirs.into_iter()
            .filter(|d| d.is_absolute() && d.is_dir())
            .collect()
    }
}

/// The config files under `home` that can be read, as [`Discovery::of`] finds them with
/// the default `--max-file-size` (the agent's watch set: what the gate refuses is not
/// watched).
pub fn discover(home: &Home) -> Vec<ConfigRef> {
    Discovery::of(home, DEFAULT_MAX_FILE_SIZE).configs
}

/// The config files of every client inside one project directory (those the gate lets
/// through).
pub fn project_configs(project: &Path) -> Vec<ConfigRef> {
    let mut found = Discovery::default();
    found.project_configs(project);
    found.configs
}

/// Paths matching a catalogue path (wildcards expanded) under `base` that are there and are
/// not directories (nor symlinks to one): files, and the FIFOs, devices and dangling links
/// that the gate will refuse.
fn expand(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![base.to_path_buf()];
    for component in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &current {
            if component.contains('*') {
                let Ok(entries) = fs::read_dir(dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    if wildcard_match(component, &entry.file_name().to_string_lossy()) {
                        next.push(entry.path());
                    }
                }
            } else {
                next.push(dir.join(component));
            }
        }
        current = next;
    }
    current.retain(|p| fs::symlink_metadata(p).is_ok() && !p.is_dir());
    current.sort();
    current
}

/// `file:///home/a/my%20proj` → `/home/a/my proj`; other schemes (remote workspaces) → None.
fn file_uri_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    Some(PathBuf::from(
        percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned(),
    ))
}

/// A structured file that no catalogue path names but whose content holds an MCP server map
/// (`mcpServers`, `mcp_servers`, `context_servers`, `servers` beside a `command`, opencode's
/// `mcp` beside a `command` or a `url`): a
/// config of a client we do not know, read with the layouts of the `generic` client. Only
/// JSON, JSONC, YAML and TOML files by their extension; the parse decides (a file whose map
/// holds nothing like a server gives no servers).
pub fn recognise_content(path: &Path, bytes: &[u8]) -> Option<ConfigRef> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    if !matches!(
        extension.as_str(),
        "json" | "jsonc" | "json5" | "yaml" | "yml" | "toml"
    ) {
        return None;
    }
    let has = |marker: &str| memchr::memmem::find(bytes, marker.as_bytes()).is_some();
    // A map named `servers` holds servers only beside a command (an API description's
    // `servers` are URLs); one named `mcp` (opencode's) beside a command or a URL.
    let mcp_named = has("\"mcp\"") || has("mcp:") || has("[mcp");
    let mcp_map = has("mcpServers")
        || has("mcp_servers")
        || has("context_servers")
        || (has("servers") && has("command"))
        || (mcp_named && (has("command") || has("url") || has("Url")));
    if !mcp_map {
        return None;
    }
    Some(ConfigRef {
        client: client_by_id("generic")?,
        path: path.to_path_buf(),
        scope: ConfigScope::Project(project_dir(path.parent()?)),
    })
}

/// Is this file (met while walking a directory, an archive or an image) an MCP config, and
/// whose? A global config's user comes from the home it sits in (`/etc/passwd`, else the
/// directory name under `home/` or `Users/`, else `unknown`). A path that both a global and a
/// project config could explain (`~/.cursor/mcp.json`) is global when its base looks like a
/// home. Looks at the path only, never at the file.
pub fn recognise(path: &Path) -> Option<ConfigRef> {
    let mut best: Option<(usize, &'static Client, &'static ConfigFile, &Path)> = None;
    let name = path.file_name()?.to_string_lossy();
    for (client, file) in files_named(&name) {
        let Some(base) = split_suffix(path, file.path) else {
            continue;
        };
        let specificity = file.path.split('/').filter(|c| !c.is_empty()).count();
        let better = match best {
            None => true,
            Some((s, _, current, _)) => {
                specificity > s
                    || specificity == s
                        && current.scope != file.scope
                        && (file.scope == Scope::Global) == looks_like_home(base)
            }
        };
        if better {
            best = Some((specificity, client, file, base));
        }
    }
    if let Some((_, client, file, base)) = best {
        let scope = match file.scope {
            Scope::Global => ConfigScope::User(user_of_home(base)),
            Scope::Project => ConfigScope::Project(project_dir(base)),
            Scope::System => ConfigScope::System,
        };
        return Some(ConfigRef {
            client,
            path: path.to_path_buf(),
            scope,
        });
    }
    let name = path.file_name()?.to_str()?;
    let (_, id) = UNIQUE_FILE_NAMES.iter().find(|(n, _)| *n == name)?;
    Some(ConfigRef {
        client: client_by_id(id)?,
        path: path.to_path_buf(),
        scope: ConfigScope::Project(project_dir(path.parent()?)),
    })
}

fn project_dir(base: &Path) -> PathBuf {
    if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base.to_path_buf()
    }
}

/// The user whose home `dir` is, if it is one: a scanned directory's files then belong to that
/// user, as the user's global MCP configs do (see `audit::ScopeRoot`).
pub fn home_user(dir: &Path) -> Option<String> {
    looks_like_home(dir).then(|| user_of_home(dir))
}

fn looks_like_home(base: &Path) -> bool {
    if passwd_entries().iter().any(|e| e.dir == base) {
        return true;
    }
    let parent_name = base
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    let name = base.file_name().and_then(|n| n.to_str());
    matches!(parent_name, Some("home" | "Users"))
        || name == Some("root") && base.parent().is_some_and(|p| p.file_name().is_none())
}

fn user_of_home(base: &Path) -> String {
    if let Some(entry) = passwd_entries().iter().find(|e| e.dir == base) {
        return entry.user.clone();
    }
    let parent_name = base
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    let name = base.file_name().and_then(|n| n.to_str());
    match (parent_name, name) {
        (Some("home" | "Users"), Some(name)) => name.to_string(),
        (None, Some("root")) => "root".to_string(),
        _ => "unknown".to_string(),
    }
}
