//! One function per subcommand: glue between the CLI and the pipeline stages.
pub mod agent;
mod args;
pub mod audit;
pub mod fix;
pub mod hook;
pub mod log;
pub mod output;
mod progress;
pub mod report;
pub mod revoke;
pub mod rules;
pub mod scan;
pub mod store;

/// Exit codes of DESIGN.md.
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;
