use std::process::ExitCode;

use crate::cli::AgentArgs;

pub fn run(_args: &AgentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("agent is not built yet")
}
