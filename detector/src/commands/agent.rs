use std::{process::ExitCode, time::Duration};

use crate::{
    agent::{self, policy::Policy},
    cli::AgentArgs,
};

pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.check_policy {
        let policy = Policy::load(path)?;
        print!("{}", policy.explain(&crate::mcp::homes()));
        return Ok(ExitCode::from(super::EXIT_CLEAN));
    }
    agent::run(agent::Options {
        watch: args.watch.clone(),
        policy: args.policy.clone(),
        org_key_file: args.org_key_file.clone(),
        events: args.events.clone(),
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        ring_buffer_bytes: args.ring_buffer_kib.saturating_mul(1024),
        duration: args.duration.map(Duration::from_secs),
    })?;
    Ok(ExitCode::from(super::EXIT_CLEAN))
}
