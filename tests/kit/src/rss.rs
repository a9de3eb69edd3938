//! The peak memory of one run of the binary: its resident set size at its highest (the
//! child's own `VmHWM`, read every few milliseconds until it exits), so that a test can assert
//! that a hostile input is refused in bounded memory, not merely that the run ends.
use std::{
    io::Read,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::{Command, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The most a run over one small hostile input (a few MB, built by a test) may hold at once,
/// in KiB. The inputs that broke this promise took 0.5 to 3 GiB (a 10 MB file of one key on
/// every line, a 10 MB config of tiny tables); a bounded run of the test build peaks under
/// 100 MiB.
pub const HOSTILE_PEAK_KIB: u64 = 192 * 1024;

/// [`detector`], its peak printed and asserted to stay under [`HOSTILE_PEAK_KIB`].
pub fn bounded(binary: &Path, args: &[&str], home: &Path, org_key: Option<&str>) -> Output {
    let (output, peak_kib) = detector(binary, args, home, org_key);
    let what = format!("detector {}", args.join(" "));
    eprintln!("{what}: peak {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < HOSTILE_PEAK_KIB,
        "{what}: peaked at {} MiB, over {} MiB",
        peak_kib / 1024,
        HOSTILE_PEAK_KIB / 1024
    );
    output
}

/// `BINARY ARGS…` with the clean environment and deadline of [`crate::run::detector`], and
/// the peak resident set size of the run in KiB.
pub fn detector(binary: &Path, args: &[&str], home: &Path, org_key: Option<&str>) -> (Output, u64) {
    let cmd = crate::run::detector_command(binary, args, home, org_key);
    measured(
        cmd,
        crate::run::deadline(),
        &format!("detector {}", args.join(" ")),
    )
}

/// Run `cmd` to completion, its output collected, and return its peak resident set size in
/// KiB; kill it after `deadline` and panic naming `what`. The peak is the child's `VmHWM`
/// (its own mapping since exec, whatever else the test process holds or runs), read while it
/// runs; the child is reaped with `wait4`.
// The child is reaped, by `wait4`, which clippy does not know of.
#[allow(clippy::zombie_processes)]
pub fn measured(mut cmd: Command, deadline: Duration, what: &str) -> (Output, u64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let started = Instant::now();
    let mut peak_kib = None;
    let (status, usage) = loop {
        if let Some(now) = high_water_kib(pid) {
            peak_kib = peak_kib.max(Some(now));
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value; wait4 only writes into it and `status`.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped; the pointers are to live locals.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        match reaped {
            r if r == pid => break (ExitStatus::from_raw(status), usage),
            0 if started.elapsed() >= deadline => {
                let _ = child.kill();
                // SAFETY: as above; this reaps the killed child.
                unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
                let err = stderr.join().unwrap_or_default();
                panic!(
                    "{what} did not finish within {deadline:?} (a hang?): killed; stderr:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            0 => thread::sleep(Duration::from_millis(5)),
            _ => {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    panic!("wait4 for {what}: {err}");
                }
            }
        }
    };
    let output = Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    // A run too short to be read once: `ru_maxrss` (KiB), an upper bound (see above).
    let peak_kib = peak_kib.unwrap_or_else(|| u64::try_from(usage.ru_maxrss).unwrap_or(0));
    (output, peak_kib)
}

/// The high-water mark of `pid`'s resident set (`VmHWM` of `/proc/PID/status`, KiB): its own
/// memory since it exec'd, which `ru_maxrss` is not (Linux carries the parent's high-water
/// mark across `fork` and `exec` into it, and this test process holds the inputs it built).
fn high_water_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
