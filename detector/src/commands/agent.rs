use std::{process::ExitCode, time::Duration};

use crate::{agent, cli::AgentArgs};

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    agent::run(agent::Options {
        watch: args.watch.clone(),
        events: args.events.clone(),
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        ring_buffer_bytes: args.ring_buffer_kib.saturating_mul(1024),
        duration: args.duration.map(Duration::from_secs),
    })?;
    Ok(ExitCode::from(super::EXIT_CLEAN))
}
