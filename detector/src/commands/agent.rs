//! `detector agent`: Linux only (eBPF). The subcommand exists everywhere, so that help text
//! and documentation agree; elsewhere it refuses in one line (exit 2).
use std::process::ExitCode;
#[cfg(target_os = "linux")]
use std::time::Duration;

use crate::cli::AgentArgs;
#[cfg(target_os = "linux")]
use crate::{
    agent::{self, policy::Policy, sink},
    cli::SyslogFacility,
};

#[cfg(not(target_os = "linux"))]
pub fn run(_args: &AgentArgs) -> anyhow::Result<ExitCode> {
    eprintln!("detector: the agent needs Linux (eBPF); scan, audit, fix and report work here");
    Ok(ExitCode::from(super::EXIT_ERROR))
}

#[cfg(target_os = "linux")]
pub fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.check_policy {
        let policy = Policy::load(path)?;
        let homes = agent::homes(&args.home).unwrap_or_else(crate::mcp::homes);
        print!("{}", policy.explain(&homes));
        return Ok(ExitCode::from(super::EXIT_CLEAN));
    }
    let sinks = sink::Options::new(
        &args.events,
        args.rotate_size,
        args.rotate_keep,
        &args.syslog,
        facility(args.syslog_facility),
    )?;
    agent::run(agent::Options {
        watch: args.watch.clone(),
        policy: args.policy.clone(),
        org_key_file: args.org_key_file.clone(),
        homes: args.home.clone(),
        sinks,
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        ring_buffer_bytes: args.ring_buffer_kib.saturating_mul(1024),
        duration: args.duration.map(Duration::from_secs),
        container: args.container.clone(),
        container_pid: args.container_pid,
    })?;
    Ok(ExitCode::from(super::EXIT_CLEAN))
}

#[cfg(target_os = "linux")]
fn facility(facility: SyslogFacility) -> sink::syslog::Facility {
    use SyslogFacility::*;
    sink::syslog::Facility(match facility {
        User => 1,
        Daemon => 3,
        Auth => 4,
        Authpriv => 10,
        Local0 => 16,
        Local1 => 17,
        Local2 => 18,
        Local3 => 19,
        Local4 => 20,
        Local5 => 21,
        Local6 => 22,
        Local7 => 23,
    })
}
