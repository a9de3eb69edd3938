use std::process::ExitCode;

use crate::cli::RulesCommand;

pub fn run(_command: &RulesCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("rules is not built yet")
}
