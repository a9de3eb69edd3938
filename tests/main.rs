//! The end-to-end tests, in one binary: each module drives the real `detector` binary against
//! files, git repositories, image archives, a Docker daemon and the kernel, with what they
//! share in the test kit (`tests/kit`, the crate `kit` here).
//!
//! The tests of all modules run side by side in this one process: nothing here changes the
//! process's environment, working directory or umask, ports are picked by the kernel, and
//! what is host-wide (accounts and homes, the Docker daemon) goes through the kit, which
//! serialises or shares it. `tracefs.rs` is a binary of its own: it unmounts tracefs.
mod agent;
mod agent_containers;
mod agent_log;
mod containers;
mod coverage;
mod fix;
mod homes;
mod hostile;
mod managed_store;
mod package;
mod platforms;
mod prevent;
mod report;
mod rules;
mod scan_dir;
mod scan_git;
mod scan_image;
mod scan_mcp;
mod schema;
mod snapshot;
mod store;
mod store_agent;
mod verify;

use std::{path::Path, process::Output};

/// The binary under test.
pub const DETECTOR: &str = env!("CARGO_BIN_EXE_detector");

/// `detector ARGS…` with a clean environment and a deadline: see [`kit::run::detector`].
pub fn detector(args: &[&str], home: &Path, org_key: Option<&str>) -> Output {
    kit::run::detector(Path::new(DETECTOR), args, home, org_key)
}

/// Not a test: the body of the child processes of the agent tests, which re-run this binary
/// with `--exact opener` (see [`agent::opener`]). Without their variable it does nothing.
#[test]
fn opener() {
    agent::opener();
}
