//! One way for every benchmark to run a tool: spawn it, wait for it with `wait4` (the child's
//! own peak resident memory, `ru_maxrss`), optionally kill it at a deadline.
use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, ExitStatus},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// How a run went.
pub(super) struct Waited {
    pub(super) wall: Duration,
    pub(super) max_rss_kib: i64,
    pub(super) status: ExitStatus,
    /// The deadline passed and the child was killed.
    pub(super) killed: bool,
}

/// Spawn `cmd` (its stdio as the caller set it) and wait for it to end, or kill it once
/// `deadline` has passed.
pub(super) fn wait(cmd: &mut Command, deadline: Option<Duration>) -> Result<Waited> {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let watchdog = deadline.map(|deadline| {
        let (done, killed) = (Arc::clone(&done), Arc::clone(&killed));
        std::thread::spawn(move || {
            while started.elapsed() < deadline {
                if done.load(Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !done.load(Ordering::Acquire) {
                killed.store(true, Ordering::Release);
                // SAFETY: our own child, not reaped before `done` is set.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child. `child` is not
    // waited for again (dropping a Child neither waits nor kills).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    done.store(true, Ordering::Release);
    if let Some(watchdog) = watchdog {
        let _ = watchdog.join();
    }
    if rc != pid {
        bail!("wait4 on {cmd:?}: {}", std::io::Error::last_os_error());
    }
    Ok(Waited {
        wall,
        max_rss_kib: usage.ru_maxrss,
        status: ExitStatus::from_raw(status),
        killed: killed.load(Ordering::Acquire),
    })
}
