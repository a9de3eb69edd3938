use std::process::ExitCode;

use crate::cli::ScanArgs;

pub fn run(_args: &ScanArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("scan is not built yet")
}
