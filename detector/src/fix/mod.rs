//! `detector fix`: rewrites literal keys in MCP client configs to references and moves each key into a local store.
pub mod destination;
