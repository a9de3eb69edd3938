//! Every MCP client we know, where it keeps its server configs on Linux, macOS and Windows,
//! in which format, where in the file the servers live, and how it refers to a secret instead
//! of holding it. The catalogue is data, `catalogue/clients.toml` (its schema is in the file's
//! header), each client with the pages of its own documentation it was taken from; it is
//! compiled into the binary and read once.
//!
//! Paths are relative: to a home directory (`Scope::Global`), to a project directory
//! (`Scope::Project`) or to the filesystem root (`Scope::System`). A path component may hold
//! `*` wildcards (`.continue/mcpServers/*.yaml`, `.config/*/User/globalStorage/…` for every
//! VS Code fork that hosts an extension).
use std::{path::Path, sync::OnceLock};

use serde::{Deserialize, Serialize};

/// How a config file is written. JSON files are read leniently (comments and trailing commas
/// allowed) because half the clients write JSONC and a hand-edited file is still a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    Json,
    Jsonc,
    Toml,
    Yaml,
    /// The YAML front matter of a Markdown file (Claude Code subagents, Kiro agents).
    Frontmatter,
}

impl ConfigFormat {
    /// Guess from a file name, for files the catalogue does not describe.
    pub fn from_path(path: &Path) -> ConfigFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => ConfigFormat::Toml,
            Some("yaml" | "yml") => ConfigFormat::Yaml,
            Some("jsonc") => ConfigFormat::Jsonc,
            Some("md") => ConfigFormat::Frontmatter,
            _ => ConfigFormat::Json,
        }
    }
}

/// Whether a path is relative to a home directory, a project directory or the filesystem
/// root (a config an administrator manages for every user, `/etc/codex/config.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Project,
    System,
}

/// The operating system a path belongs to. Discovery checks every path whatever the host is,
/// because a scanned home may be a backup or a mounted disk from another machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Any,
    Linux,
    MacOs,
    /// Paths relative to the user profile (`AppData/Roaming/…`) or the system drive.
    Windows,
}

/// Where the servers sit inside a parsed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerLayout {
    /// At this dotted key path: an object of `name → server` or a list of servers carrying a
    /// `name`. A dotted path also matches a flat key (`"mcp.servers"` in VS Code settings).
    At(&'static str),
    /// `~/.claude.json`: `projects.<project dir>.mcpServers`, one map per project.
    ClaudeProjects,
}

/// One config file of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConfigFile {
    pub path: &'static str,
    pub scope: Scope,
    pub os: Os,
    pub format: ConfigFormat,
    pub servers: &'static [ServerLayout],
    /// Dotted paths (`*` for any key) of secrets outside the MCP section (LLM provider keys).
    pub secret_fields: &'static [&'static str],
    /// A documented relocation: when `var` is set, it replaces the leading `default`
    /// directory of `path` (`$CODEX_HOME` for `.codex`).
    pub env_dir: Option<EnvDir>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct EnvDir {
    pub var: &'static str,
    pub default: &'static str,
}

/// How a client's config refers to a secret instead of holding it, as the client documents
/// it: `syntax` with `{NAME}` for the variable (`${env:{NAME}}`), the fields that honour it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Reference {
    pub syntax: &'static str,
    pub fields: &'static [&'static str],
    pub source: &'static str,
}

/// An MCP client (an app, an editor, an extension or a CLI).
#[derive(Debug, Serialize)]
pub struct Client {
    /// Stable identifier used in reports: `claude-desktop`, `claude-code`, `cursor`, `vscode`, …
    pub id: &'static str,
    pub name: &'static str,
    /// The client's own pages the entry was taken from.
    pub sources: &'static [&'static str],
    pub references: &'static [Reference],
    pub launch: Launch,
    pub files: &'static [ConfigFile],
}

/// How a client is started, which decides whether its environment holds what the user's shell
/// exports (`detector fix` starts a desktop client's stdio servers through a wrapper).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Launch {
    /// A CLI run from a shell: it inherits the shell's environment.
    Terminal,
    /// An app or editor extension started by the desktop.
    #[default]
    Desktop,
}

impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Client {}

impl std::hash::Hash for Client {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl Client {
    /// The catalogue entry that describes `path`, if the path ends like one of this client's
    /// config files.
    pub fn file_for(&self, path: &Path) -> Option<&'static ConfigFile> {
        self.files
            .iter()
            .find(|f| split_suffix(path, f.path).is_some())
    }

    /// Every place this client may keep servers, for files the catalogue does not describe.
    pub fn all_layouts(&self) -> Vec<ServerLayout> {
        let mut layouts: Vec<ServerLayout> = Vec::new();
        for file in self.files {
            for layout in file.servers {
                if !layouts.contains(layout) {
                    layouts.push(*layout);
                }
            }
        }
        layouts
    }
}

/// Every client in the catalogue, `generic` last.
pub fn clients() -> &'static [Client] {
    static CLIENTS: OnceLock<&'static [Client]> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        load(CATALOGUE).unwrap_or_else(|e| panic!("catalogue/clients.toml (built in): {e}"))
    })
}

pub fn client_by_id(id: &str) -> Option<&'static Client> {
    clients().iter().find(|c| c.id == id)
}

/// The catalogue's files whose path ends with a file named `name`, in catalogue order (client
/// by client): what a file met in a walk may be, found without trying every path of the
/// catalogue on it (most files are none).
pub fn files_named(name: &str) -> Vec<(&'static Client, &'static ConfigFile)> {
    /// Last path component → (client, file) indexes; wildcard components apart.
    struct Index {
        exact: std::collections::HashMap<&'static str, Vec<(usize, usize)>>,
        wildcard: Vec<(&'static str, (usize, usize))>,
    }
    static INDEX: OnceLock<Index> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = Index {
            exact: std::collections::HashMap::new(),
            wildcard: Vec::new(),
        };
        for (c, client) in clients().iter().enumerate() {
            for (f, file) in client.files.iter().enumerate() {
                let last = file.path.rsplit('/').find(|p| !p.is_empty()).unwrap_or("");
                if last.contains('*') {
                    index.wildcard.push((last, (c, f)));
                } else {
                    index.exact.entry(last).or_default().push((c, f));
                }
            }
        }
        index
    });
    let mut at: Vec<(usize, usize)> = index.exact.get(name).cloned().unwrap_or_default();
    at.extend(
        index
            .wildcard
            .iter()
            .filter(|(pattern, _)| wildcard_match(pattern, name))
            .map(|(_, at)| *at),
    );
    at.sort_unstable();
    at.into_iter()
        .map(|(c, f)| (&clients()[c], &clients()[c].files[f]))
        .collect()
}

/// When `path` ends with the components of `pattern` (wildcards allowed), the part of `path`
/// before them: the home or project directory. `None` when it does not end that way.
pub fn split_suffix<'p>(path: &'p Path, pattern: &str) -> Option<&'p Path> {
    // Called for every file of a directory walk: no allocation unless a name is not UTF-8.
    let mut base = path;
    for want in pattern.rsplit('/').filter(|c| !c.is_empty()) {
        let name = base.file_name()?;
        if !wildcard_match(want, &name.to_string_lossy()) {
            return None;
        }
        base = base.parent()?;
    }
    Some(base)
}

/// `*` matches any run of characters (none included); everything else matches itself.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = rest.split('*').collect();
    let (last, middle) = pieces
        .split_last()
        .expect("split yields at least one piece");
    for piece in middle {
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// The catalogue, compiled in; `mcp::tests` prove every entry.
const CATALOGUE: &str = include_str!("../../../catalogue/clients.toml");

/// `catalogue/clients.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueDoc {
    clients: Vec<ClientDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientDoc {
    id: String,
    name: String,
    sources: Vec<String>,
    #[serde(default)]
    references: Vec<ReferenceDoc>,
    #[serde(default)]
    launch: Launch,
    files: Vec<FileDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceDoc {
    syntax: String,
    fields: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    path: String,
    scope: Scope,
    os: Os,
    format: ConfigFormat,
    servers: Vec<String>,
    #[serde(default)]
    secret_fields: Vec<String>,
    #[serde(default)]
    env_dir: Option<EnvDirDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvDirDoc {
    var: String,
    default: String,
}

/// The catalogue lives as long as the process: its strings are leaked once, so that clients
/// and files are `&'static` everywhere (configs, reports and the agent's watch set hold them).
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn leak_all<T, U>(items: Vec<T>, each: impl FnMut(T) -> U) -> &'static [U] {
    Box::leak(
        items
            .into_iter()
            .map(each)
            .collect::<Vec<U>>()
            .into_boxed_slice(),
    )
}

/// The layout a catalogue `servers` entry names.
fn layout(text: String) -> ServerLayout {
    match text.as_str() {
        "@claude-projects" => ServerLayout::ClaudeProjects,
        _ => ServerLayout::At(leak(text)),
    }
}

fn load(text: &str) -> Result<&'static [Client], toml::de::Error> {
    let doc: CatalogueDoc = toml::from_str(text)?;
    Ok(leak_all(doc.clients, |client| Client {
        id: leak(client.id),
        name: leak(client.name),
        sources: leak_all(client.sources, leak),
        references: leak_all(client.references, |r| Reference {
            syntax: leak(r.syntax),
            fields: leak_all(r.fields, leak),
            source: leak(r.source),
        }),
        launch: client.launch,
        files: leak_all(client.files, |file| ConfigFile {
            path: leak(file.path),
            scope: file.scope,
            os: file.os,
            format: file.format,
            servers: leak_all(file.servers, layout),
            secret_fields: leak_all(file.secret_fields, leak),
            env_dir: file.env_dir.map(|d| EnvDir {
                var: leak(d.var),
                default: leak(d.default),
            }),
        }),
    }))
}

/// File names that belong to exactly one client wherever they are found (a copy committed to a
/// dotfiles repository is still that client's config).
pub(crate) const UNIQUE_FILE_NAMES: &[(&str, &str)] = &[
    ("claude_desktop_config.json", "claude-desktop"),
    ("cline_mcp_settings.json", "cline"),
    ("gemini-extension.json", "gemini-cli"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*.yaml", "github.yaml"));
        assert!(!wildcard_match("*.yaml", "github.yml"));
        assert!(wildcard_match("*", "Code - Insiders"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXbY"));
        assert!(wildcard_match("mcp.json", "mcp.json"));
        assert!(!wildcard_match("*ab", "a"));
    }

    #[test]
    fn suffix_split_yields_base_dir() {
        let p = Path::new("/home/al/.config/Cursor/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json");
        let f = client_by_id("cline").unwrap().file_for(p).unwrap();
        assert_eq!(split_suffix(p, f.path), Some(Path::new("/home/al")));
        assert_eq!(
            split_suffix(
                Path::new("proj/.continue/mcpServers/gh.yaml"),
                ".continue/mcpServers/*.yaml"
            ),
            Some(Path::new("proj"))
        );
        assert_eq!(
            split_suffix(Path::new("mcp.json"), ".cursor/mcp.json"),
            None
        );
    }

    #[test]
    fn ids_are_unique_and_every_client_has_files() {
        let mut ids: Vec<_> = clients().iter().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(clients().iter().all(|c| !c.files.is_empty()));
        assert!(client_by_id("codex").is_some());
        assert!(client_by_id("nope").is_none());
    }
}
