//! Every MCP client we know, where it keeps its server configs on Linux and macOS, in which
//! format, and where in the file the servers live.
//!
//! Paths are relative: to a home directory (`Scope::Global`) or to a project directory
//! (`Scope::Project`). A path component may hold `*` wildcards (`.continue/mcpServers/*.yaml`,
//! `.config/*/User/globalStorage/…` for every VS Code fork that hosts an extension).
use std::path::Path;

use serde::Serialize;

/// How a config file is written. JSON files are read leniently (comments and trailing commas
/// allowed) because half the clients write JSONC and a hand-edited file is still a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    Json,
    Jsonc,
    Toml,
    Yaml,
}

impl ConfigFormat {
    /// Guess from a file name, for files the catalogue does not describe.
    pub fn from_path(path: &Path) -> ConfigFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => ConfigFormat::Toml,
            Some("yaml" | "yml") => ConfigFormat::Yaml,
            Some("jsonc") => ConfigFormat::Jsonc,
            _ => ConfigFormat::Json,
        }
    }
}

/// Whether a path is relative to a home directory or to a project directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Global,
    Project,
}

/// The operating system a path belongs to. Discovery checks every path whatever the host is,
/// because a scanned home may be a backup or a mounted disk from another machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Any,
    Linux,
    MacOs,
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
}

/// An MCP client (an app, an editor, an extension or a CLI).
#[derive(Debug, Serialize)]
pub struct Client {
    /// Stable identifier used in reports: `claude-desktop`, `claude-code`, `cursor`, `vscode`, …
    pub id: &'static str,
    pub name: &'static str,
    pub files: &'static [ConfigFile],
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
    CLIENTS
}

pub fn client_by_id(id: &str) -> Option<&'static Client> {
    CLIENTS.iter().find(|c| c.id == id)
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

use ConfigFormat::{Json, Jsonc, Toml, Yaml};
use Os::{Any, Linux, MacOs};
use Scope::{Global, Project};
use ServerLayout::{At, ClaudeProjects};

const MCP_SERVERS: &[ServerLayout] = &[At("mcpServers")];

const fn file(
    path: &'static str,
    scope: Scope,
    os: Os,
    format: ConfigFormat,
    servers: &'static [ServerLayout],
) -> ConfigFile {
    ConfigFile {
        path,
        scope,
        os,
        format,
        servers,
    }
}

/// `mcpServers` in a JSON file, the de-facto standard shape.
const fn standard(path: &'static str, scope: Scope, os: Os) -> ConfigFile {
    file(path, scope, os, Json, MCP_SERVERS)
}

static CLIENTS: &[Client] = &[
    Client {
        id: "claude-desktop",
        name: "Claude Desktop",
        files: &[
            standard(".config/Claude/claude_desktop_config.json", Global, Linux),
            standard(
                "Library/Application Support/Claude/claude_desktop_config.json",
                Global,
                MacOs,
            ),
        ],
    },
    Client {
        id: "claude-code",
        name: "Claude Code",
        files: &[
            // User scope at the top, local scope per project under `projects`.
            file(
                ".claude.json",
                Global,
                Any,
                Json,
                &[At("mcpServers"), ClaudeProjects],
            ),
            standard(".mcp.json", Project, Any),
        ],
    },
    Client {
        id: "cursor",
        name: "Cursor",
        files: &[
            standard(".cursor/mcp.json", Global, Any),
            standard(".cursor/mcp.json", Project, Any),
        ],
    },
    Client {
        id: "vscode",
        name: "Visual Studio Code",
        files: &[
            file(".config/Code/User/mcp.json", Global, Linux, Jsonc, &[At("servers")]),
            file(
                ".config/Code - Insiders/User/mcp.json",
                Global,
                Linux,
                Jsonc,
                &[At("servers")],
            ),
            file(".config/VSCodium/User/mcp.json", Global, Linux, Jsonc, &[At("servers")]),
            file(
                ".config/Code/User/settings.json",
                Global,
                Linux,
                Jsonc,
                &[At("mcp.servers")],
            ),
            file(
                ".config/Code - Insiders/User/settings.json",
                Global,
                Linux,
                Jsonc,
                &[At("mcp.servers")],
            ),
            file(
                "Library/Application Support/Code/User/mcp.json",
                Global,
                MacOs,
                Jsonc,
                &[At("servers")],
            ),
            file(
                "Library/Application Support/Code - Insiders/User/mcp.json",
                Global,
                MacOs,
                Jsonc,
                &[At("servers")],
            ),
            file(
                "Library/Application Support/VSCodium/User/mcp.json",
                Global,
                MacOs,
                Jsonc,
                &[At("servers")],
            ),
            file(
                "Library/Application Support/Code/User/settings.json",
                Global,
                MacOs,
                Jsonc,
                &[At("mcp.servers")],
            ),
            file(
                "Library/Application Support/Code - Insiders/User/settings.json",
                Global,
                MacOs,
                Jsonc,
                &[At("mcp.servers")],
            ),
            file(".vscode/mcp.json", Project, Any, Jsonc, &[At("servers")]),
        ],
    },
    Client {
        id: "copilot-cli",
        name: "GitHub Copilot CLI",
        files: &[standard(".copilot/mcp-config.json", Global, Any)],
    },
    Client {
        id: "windsurf",
        name: "Windsurf",
        files: &[
            standard(".codeium/windsurf/mcp_config.json", Global, Any),
            standard(".codeium/windsurf-next/mcp_config.json", Global, Any),
        ],
    },
    Client {
        id: "cline",
        name: "Cline",
        files: &[
            // The extension's storage inside whichever VS Code fork hosts it.
            standard(
                ".config/*/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
                Global,
                Linux,
            ),
            standard(
                "Library/Application Support/*/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json",
                Global,
                MacOs,
            ),
            // The CLI and newer extensions share one directory.
            standard(".cline/data/settings/cline_mcp_settings.json", Global, Any),
        ],
    },
    Client {
        id: "roo-code",
        name: "Roo Code",
        files: &[
            standard(
                ".config/*/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
                Global,
                Linux,
            ),
            standard(
                "Library/Application Support/*/User/globalStorage/rooveterinaryinc.roo-cline/settings/mcp_settings.json",
                Global,
                MacOs,
            ),
            standard(".roo/mcp.json", Project, Any),
        ],
    },
    Client {
        id: "continue",
        name: "Continue",
        files: &[
            file(".continue/config.yaml", Global, Any, Yaml, MCP_SERVERS),
            file(
                ".continue/config.json",
                Global,
                Any,
                Json,
                &[At("experimental.modelContextProtocolServers")],
            ),
            // Block files: YAML with an `mcpServers` list, or JSON copied from other clients.
            file(".continue/mcpServers/*.yaml", Global, Any, Yaml, MCP_SERVERS),
            file(".continue/mcpServers/*.yml", Global, Any, Yaml, MCP_SERVERS),
            file(".continue/mcpServers/*.json", Global, Any, Json, MCP_SERVERS),
            file(".continue/mcpServers/*.yaml", Project, Any, Yaml, MCP_SERVERS),
            file(".continue/mcpServers/*.yml", Project, Any, Yaml, MCP_SERVERS),
            file(".continue/mcpServers/*.json", Project, Any, Json, MCP_SERVERS),
        ],
    },
    Client {
        id: "zed",
        name: "Zed",
        files: &[
            file(
                ".config/zed/settings.json",
                Global,
                Any,
                Jsonc,
                &[At("context_servers")],
            ),
            file(
                ".zed/settings.json",
                Project,
                Any,
                Jsonc,
                &[At("context_servers")],
            ),
        ],
    },
    Client {
        id: "gemini-cli",
        name: "Gemini CLI",
        files: &[
            standard(".gemini/settings.json", Global, Any),
            standard(".gemini/extensions/*/gemini-extension.json", Global, Any),
            standard(".gemini/settings.json", Project, Any),
        ],
    },
    Client {
        id: "codex",
        name: "OpenAI Codex",
        files: &[
            file(".codex/config.toml", Global, Any, Toml, &[At("mcp_servers")]),
            file(".codex/config.toml", Project, Any, Toml, &[At("mcp_servers")]),
        ],
    },
    Client {
        id: "goose",
        name: "Goose",
        files: &[file(
            ".config/goose/config.yaml",
            Global,
            Any,
            Yaml,
            &[At("extensions")],
        )],
    },
    Client {
        id: "lm-studio",
        name: "LM Studio",
        files: &[standard(".lmstudio/mcp.json", Global, Any)],
    },
    Client {
        id: "amazon-q",
        name: "Amazon Q Developer",
        files: &[
            standard(".aws/amazonq/mcp.json", Global, Any),
            standard(".aws/amazonq/cli-agents/*.json", Global, Any),
            standard(".aws/amazonq/agents/*.json", Global, Any),
            standard(".amazonq/mcp.json", Project, Any),
            standard(".amazonq/cli-agents/*.json", Project, Any),
        ],
    },
    Client {
        id: "kiro",
        name: "Kiro",
        files: &[
            standard(".kiro/settings/mcp.json", Global, Any),
            standard(".kiro/settings/mcp.json", Project, Any),
        ],
    },
    Client {
        id: "opencode",
        name: "opencode",
        // `mcp.<name>` (v1) or `mcp.servers.<name>` (v2); both are read.
        files: &[
            file(
                ".config/opencode/opencode.json",
                Global,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                ".config/opencode/opencode.jsonc",
                Global,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                ".config/opencode/config.json",
                Global,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                "opencode.json",
                Project,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                "opencode.jsonc",
                Project,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                ".opencode/opencode.json",
                Project,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
            file(
                ".opencode/opencode.jsonc",
                Project,
                Any,
                Jsonc,
                &[At("mcp.servers"), At("mcp")],
            ),
        ],
    },
    Client {
        id: "junie",
        name: "JetBrains Junie",
        files: &[
            standard(".junie/mcp/mcp.json", Global, Any),
            standard(".junie/mcp/mcp.json", Project, Any),
        ],
    },
    // Not a client: a file whose name says MCP config but which sits where no client reads it
    // (a copy in a repository, a backup). Recognised by name only, never discovered.
    Client {
        id: "generic",
        name: "MCP config (client unknown)",
        files: &[
            file(
                "mcp.json",
                Project,
                Any,
                Jsonc,
                &[
                    At("mcpServers"),
                    At("servers"),
                    At("mcp_servers"),
                    At("context_servers"),
                ],
            ),
            file(
                "mcp_config.json",
                Project,
                Any,
                Jsonc,
                &[At("mcpServers"), At("servers")],
            ),
            file(
                "mcp-config.json",
                Project,
                Any,
                Jsonc,
                &[At("mcpServers"), At("servers")],
            ),
            file(
                "mcp_settings.json",
                Project,
                Any,
                Jsonc,
                &[At("mcpServers"), At("servers")],
            ),
            file(
                "mcp-servers.json",
                Project,
                Any,
                Jsonc,
                &[At("mcpServers"), At("servers")],
            ),
            file(
                "mcp_servers.json",
                Project,
                Any,
                Jsonc,
                &[At("mcpServers"), At("servers")],
            ),
        ],
    },
];

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
