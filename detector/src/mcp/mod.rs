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

#[cfg(test)]
mod tests;
