//! detector: finds the API keys MCP servers use wherever they leak (git history, directories,
//! backups, images) and watches, in the kernel, which processes open the files that hold them.
//!
//! The pipeline, one folder per stage: `source` (bytes + provenance) → `detect` (matches) →
//! `audit` (keys) → `report` (writers). `mcp` knows MCP clients and their configs; `agent`
//! loads the eBPF programs and feeds the same pipeline when a watched config changes.
#[cfg(target_os = "linux")]
pub mod agent;
/// Elsewhere the agent is not built (it needs eBPF); its log's hash chain is, for
/// `detector log verify` of logs copied off a Linux host.
#[cfg(not(target_os = "linux"))]
pub mod agent {
    pub mod chain;
}
pub mod audit;
pub mod cli;
pub mod commands;
pub mod detect;
pub mod event;
pub mod fix;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod mcp;
pub mod path_text;
pub mod pipeline;
pub mod platform;
pub mod report;
pub mod source;
pub mod store;
pub mod uri;
pub mod verify;
