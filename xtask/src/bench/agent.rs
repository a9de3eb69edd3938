//! `cargo xtask bench agent`: what watching costs the rest of the machine.
//!
//! The cost that matters is on opens of files nobody watches (every process pays it), so the
//! headline is ns per open+close of an unwatched file: with nothing attached, with our agent,
//! with auditd watching one file, and with bpftrace filtering `sys_enter_openat` by path. Then
//! the watched path: ns per open of a watched file, and whether a 100,000-open burst loses
//! records. Then the idle footprint with 10,000 watched files.
use std::{
    ffi::CString,
    fs,
    io::{BufRead, BufReader},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

const BURST: u64 = 100_000;
const IDLE_WATCHED: usize = 10_000;

pub fn run(iterations: u64) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("detector-bench-")
        .tempdir_in("/tmp")?;
    let unwatched = dir.path().join("unwatched.json");
    let watched = dir.path().join("watched.json");
    fs::write(&unwatched, "{}")?;
    fs::write(&watched, "{}")?;

    let mut rows: Vec<(String, f64)> = Vec::new();
    let mut baseline = vec![open_close_ns(&unwatched, iterations)?];

    let events = dir.path().join("events.jsonl");
    let agent = Agent::start(std::slice::from_ref(&watched), &events)?;
    rows.push((
        "detector agent (1 watched file)".into(),
        open_close_ns(&unwatched, iterations)?,
    ));
    let watched_ns = open_close_in_child(&watched, BURST)?;
    let agent_stats = agent.stop()?;
    let delivered = count_opens(&events, &watched)?;

    baseline.push(open_close_ns(&unwatched, iterations)?);

    match Auditd::start(&watched) {
        Ok(auditd) => {
            rows.push((
                "auditd, `-w FILE -p r`".into(),
                open_close_ns(&unwatched, iterations)?,
            ));
            auditd.stop();
        }
        Err(err) => eprintln!("auditd: skipped: {err:#}"),
    }
    let floor = "tracepoint:syscalls:sys_exit_openat /pid == 0/ { @never = count(); }".to_string();
    match Bpftrace::start(floor) {
        Ok(bpftrace) => {
            rows.push((
                "floor: a near-empty program on `sys_exit_openat` (bpftrace)".into(),
                open_close_ns(&unwatched, iterations)?,
            ));
            bpftrace.stop();
        }
        Err(err) => eprintln!("bpftrace: skipped: {err:#}"),
    }
    let path_filter = format!(
        "tracepoint:syscalls:sys_enter_openat /str(args->filename) == \"{}\"/ {{ @opens = count(); }}",
        watched.display()
    );
    match Bpftrace::start(path_filter) {
        Ok(bpftrace) => {
            rows.push((
                "bpftrace, `sys_enter_openat` + path compare".into(),
                open_close_ns(&unwatched, iterations)?,
            ));
            bpftrace.stop();
        }
        Err(err) => eprintln!("bpftrace: skipped: {err:#}"),
    }
    baseline.push(open_close_ns(&unwatched, iterations)?);
    baseline.sort_by(f64::total_cmp);
    let base = baseline[baseline.len() / 2];

    let idle = idle_footprint(dir.path())?;

    println!("\nUnwatched file, ns per open+close (median of 3 × {iterations}; baseline = median of {} no-tracing runs):\n", baseline.len());
    println!("| configuration | ns per open+close | vs no tracing |");
    println!("|---|---:|---:|");
    println!("| no tracing | {base:.0} | 1.00x |");
    for (name, ns) in &rows {
        println!("| {name} | {ns:.0} | {:.2}x |", ns / base);
    }
    println!("\nWatched file, detector agent:\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| ns per open+close of the watched file ({BURST} in a burst) | {watched_ns:.0} |");
    println!("| records delivered in the burst | {delivered} |");
    println!(
        "| records lost (reported by the kernel side) | {} |",
        agent_stats.lost_open
    );
    println!(
        "| delivered + lost | {} of {BURST} |",
        delivered + agent_stats.lost_open
    );
    println!(
        "| idle, {IDLE_WATCHED} watched files: resident memory | {:.1} MiB |",
        idle.rss_kib as f64 / 1024.0
    );
    println!(
        "| idle, {IDLE_WATCHED} watched files: CPU over {} s | {} ms |",
        idle.seconds, idle.cpu_ms
    );
    Ok(())
}

/// Median ns per open+close over 3 runs, each in a new process: auditd only instruments
/// processes forked after it was enabled, so a long-lived measuring process would miss its cost.
fn open_close_ns(path: &Path, iterations: u64) -> Result<f64> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(open_close_in_child(path, iterations)?);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[1])
}

fn open_close_in_child(path: &Path, iterations: u64) -> Result<f64> {
    let output = Command::new(std::env::current_exe()?)
        .args(["bench", "open-loop"])
        .arg(path)
        .arg(iterations.to_string())
        .output()?;
    if !output.status.success() {
        bail!(
            "open loop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

/// The measuring loop: `iterations` open+close pairs; ns per pair.
pub fn open_close_once(path: &Path, iterations: u64) -> Result<f64> {
    let c_path = CString::new(path.as_os_str().as_bytes())?;
    let start = Instant::now();
    for _ in 0..iterations {
        // SAFETY: a valid C string; the fd is closed right away.
        let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            bail!(
                "open {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: fd was just opened by us.
        unsafe { libc::close(fd) };
    }
    Ok(start.elapsed().as_nanos() as f64 / iterations as f64)
}

struct Agent {
    child: Child,
    events: PathBuf,
}

#[derive(Default)]
struct AgentStats {
    lost_open: u64,
}

impl Agent {
    fn start(watch: &[PathBuf], events: &Path) -> Result<Agent> {
        let _ = fs::remove_file(events);
        // The release build, in CARGO_TARGET_DIR when it is set.
        let detector = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| super::workspace_root().join("target"), PathBuf::from)
            .join("release/detector");
        let child = Command::new(&detector)
            .arg("agent")
            .arg("--events")
            .arg(events)
            // One file, whatever the run's length: the lost counts are read from it at the end.
            .args(["--rotate-size", "0"])
            .arg("--watch")
            .args(watch)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} agent (build it first: cargo build --release -p detector)",
                    detector.display()
                )
            })?;
        let agent = Agent {
            child,
            events: events.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if fs::read_to_string(events)
                .unwrap_or_default()
                .contains("\"type\":\"ready\"")
            {
                return Ok(agent);
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("detector agent did not get ready in 60 s")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) -> Result<AgentStats> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait()?;
        if !status.success() {
            bail!("detector agent exited with {status}");
        }
        let mut stats = AgentStats::default();
        for line in BufReader::new(fs::File::open(&self.events)?).lines() {
            let record: serde_json::Value = serde_json::from_str(&line?)?;
            if record["type"] == "heartbeat" && record["final"] == true {
                stats.lost_open = record["lost_open"].as_u64().unwrap_or(0);
            }
        }
        Ok(stats)
    }
}

fn count_opens(events: &Path, file: &Path) -> Result<u64> {
    let file = file.display().to_string();
    let mut count = 0;
    for line in BufReader::new(fs::File::open(events)?).lines() {
        let record: serde_json::Value = serde_json::from_str(&line?)?;
        if record["type"] == "open" && record["file"] == file.as_str() {
            count += 1;
        }
    }
    Ok(count)
}

struct Auditd;

impl Auditd {
    fn start(watched: &Path) -> Result<Auditd> {
        if !Path::new("/var/run/auditd.pid").exists() {
            crate::run(&mut Command::new("auditd"))?;
            thread::sleep(Duration::from_secs(1));
        }
        crate::run(Command::new("auditctl").arg("-w").arg(watched).args([
            "-p",
            "r",
            "-k",
            "detector-bench",
        ]))?;
        Ok(Auditd)
    }

    fn stop(self) {
        let _ = Command::new("auditctl")
            .args(["-D", "-k", "detector-bench"])
            .output();
        if let Ok(pid) = fs::read_to_string("/var/run/auditd.pid") {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: stopping the daemon this benchmark started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        thread::sleep(Duration::from_secs(1));
    }
}

struct Bpftrace {
    child: Child,
}

impl Bpftrace {
    fn start(program: String) -> Result<Bpftrace> {
        let mut child = Command::new("bpftrace")
            .arg("-e")
            .arg(program)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start bpftrace")?;
        let stdout = child.stdout.take().context("bpftrace stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("Attaching") => {}
            other => {
                let _ = child.kill();
                bail!("bpftrace did not attach: {other:?}");
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        thread::sleep(Duration::from_millis(500));
        Ok(Bpftrace { child })
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

struct Idle {
    rss_kib: u64,
    cpu_ms: u64,
    seconds: u64,
}

/// Resident memory and CPU of an agent watching 10,000 files while nothing happens.
fn idle_footprint(dir: &Path) -> Result<Idle> {
    let files_dir = dir.join("idle");
    fs::create_dir_all(&files_dir)?;
    let files: Vec<PathBuf> = (0..IDLE_WATCHED)
        .map(|i| {
            let path = files_dir.join(format!("config-{i}.json"));
            fs::write(&path, "{}").map(|_| path)
        })
        .collect::<std::io::Result<_>>()?;
    let events = dir.join("idle-events.jsonl");
    let agent = Agent::start(&files, &events)?;
    thread::sleep(Duration::from_secs(2));
    let seconds = 10;
    let cpu_before = cpu_ticks(agent.pid())?;
    thread::sleep(Duration::from_secs(seconds));
    let cpu_after = cpu_ticks(agent.pid())?;
    let rss_kib = fs::read_to_string(format!("/proc/{}/status", agent.pid()))?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>())
        })
        .context("no VmRSS")??;
    agent.stop()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Ok(Idle {
        rss_kib,
        cpu_ms: (cpu_after - cpu_before) * 1000 / ticks_per_second,
        seconds,
    })
}

fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat[stat.rfind(')').context("stat")? + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after "pid (comm) ".
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}
