//! The MCP client catalogue, config parsers, and reference-vs-literal classification.
//!
//! `catalogue` knows every client and where its configs live; `discover` finds them on a host
//! (or recognises one met during a walk); `parse` reads a config into servers whose
//! secret-bearing fields are classified (literal, env-ref, secret-manager, input-prompt,
//! placeholder, empty) and checked against the seed patterns.
pub mod catalogue;
pub mod discover;
pub(crate) mod fields;
pub mod parse;
pub mod servers;
mod shell;

pub use catalogue::{client_by_id, clients, Client, ConfigFile, ConfigFormat, Scope, ServerLayout};
pub use discover::{
    config_paths, discover, homes, project_configs, recognise, ConfigRef, ConfigScope, Discovery,
    Home, Unread,
};
pub(crate) use fields::is_secret_name;
pub use parse::{check_per_project_keys, parse, McpServer, ParsedConfig, SecretField, ServerCheck};

/// A blob met without a name (a git object: history gives its paths only once the walk is
/// done) whose content holds an MCP server map: read as an unknown client's config, its
/// format told by its first bytes (`{` JSON with comments, an `[mcp…` table TOML, else
/// YAML), its servers in `project`. Reported under `name`. None when nothing in it parses to a
/// server.
pub fn read_unnamed(name: &std::path::Path, project: &str, bytes: &[u8]) -> Option<ParsedConfig> {
    // Every server map's name holds one of these (`mcpServers`, `mcp_servers`, `servers`,
    // opencode's `mcp`): one pass rules out nearly every blob.
    memchr::memmem::find(bytes, b"ervers").or_else(|| memchr::memmem::find(bytes, b"mcp"))?;
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let extension = if bytes[start] == b'{' {
        "jsonc"
    } else if memchr::memmem::find(bytes, b"[mcp").is_some() {
        "toml"
    } else {
        "yaml"
    };
    let sniffed = std::path::PathBuf::from(format!("unnamed.{extension}"));
    let mut config = discover::recognise_content(&sniffed, bytes)?;
    config.scope = ConfigScope::Project(std::path::PathBuf::from(project));
    let mut parsed = parse(&config, bytes);
    if parsed.servers.is_empty() {
        return None;
    }
    parsed.path = name.to_path_buf();
    for server in &mut parsed.servers {
        server.config = name.to_path_buf();
    }
    Some(parsed)
}

#[cfg(test)]
mod tests;
