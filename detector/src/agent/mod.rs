//! The eBPF agent: loads the kernel programs, keeps the process table, and writes one JSON
//! line per open of a watched file, with the process that did it.
//!
//! Kernel side: `detector-ebpf`. Filtering by file identity happens there; what reaches this
//! module is only opens of watched files plus exec/fork/exit records for the process table.
pub mod btf;
pub mod chain;
pub mod event;
pub mod kernel;
pub mod process;
pub mod sink;
pub mod watch;

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use aya::{
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use chrono::{DateTime, Utc};
use detector_common::{kind, lost, ExecEvent, FileKey, OpenEvent, TaskEvent, COMM_LEN};
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};

use self::{
    event::{Gap, Heartbeat, Open, Ready, Record},
    process::ProcessTable,
    sink::Sink,
    watch::{dev_string, WatchSet},
};

/// The kernel programs, built by `detector/build.rs` (empty when the eBPF toolchain was
/// missing at build time).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("DETECTOR_EBPF_OBJECT"));

/// What the agent is asked to do; filled from the command line.
pub struct Options {
    pub watch: Vec<PathBuf>,
    pub sinks: sink::Options,
    pub heartbeat: Duration,
    pub ring_buffer_bytes: u32,
    pub duration: Option<Duration>,
}

/// (program, how it attaches).
const PROGRAMS: &[(&str, Attach)] = &[
    (
        "detector_exit_open",
        Attach::TracePoint("syscalls", "sys_exit_open"),
    ),
    (
        "detector_exit_openat",
        Attach::TracePoint("syscalls", "sys_exit_openat"),
    ),
    (
        "detector_exit_openat2",
        Attach::TracePoint("syscalls", "sys_exit_openat2"),
    ),
    (
        "detector_exec",
        Attach::TracePoint("sched", "sched_process_exec"),
    ),
    ("detector_fork", Attach::RawTracePoint("sched_process_fork")),
    (
        "detector_exit",
        Attach::TracePoint("sched", "sched_process_exit"),
    ),
];

#[derive(Clone, Copy)]
enum Attach {
    TracePoint(&'static str, &'static str),
    RawTracePoint(&'static str),
}

impl Attach {
    fn describe(self) -> String {
        match self {
            Attach::TracePoint(category, name) => format!("tracepoint {category}/{name}"),
            Attach::RawTracePoint(name) => format!("raw tracepoint {name}"),
        }
    }
}

/// Loads, attaches and runs until SIGINT/SIGTERM (or `duration`), then detaches and writes a
/// final heartbeat.
pub fn run(options: Options) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the agent must run as root (it loads eBPF programs: CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN); try sudo");
    }
    if EBPF_OBJECT.is_empty() {
        bail!("this binary was built without its eBPF programs (the eBPF toolchain was missing): run `cargo xtask setup`, then rebuild");
    }
    if !options.ring_buffer_bytes.is_power_of_two() || options.ring_buffer_bytes < 4096 {
        bail!("--ring-buffer-kib must be a power of two, at least 4");
    }
    let tracefs = kernel::ensure_tracefs()?;
    let offsets = kernel::offsets(&tracefs)?;
    tracing::debug!(?offsets, "kernel offsets from BTF");

    let mut watch = WatchSet::default();
    if options.watch.is_empty() {
        watch.add_mcp_configs();
    } else {
        for path in &options.watch {
            watch.add(
                path,
                crate::mcp::recognise(path).map(|c| c.client.id.to_string()),
            );
        }
    }
    let canary = Canary::create()?;
    let canary_key = canary.key()?;

    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", &offsets, true)
        .map_max_entries("EVENTS", options.ring_buffer_bytes)
        .load(EBPF_OBJECT)
        .map_err(|e| anyhow!("loading the eBPF programs failed: {e} (does this kernel allow bpf()? is this root?)"))?;
    let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
        Ok(logger) => Some(logger),
        Err(err) => {
            tracing::warn!("eBPF program logs unavailable: {err}");
            None
        }
    };

    let mut bitmap: Array<MapData, u64> = take_map(&mut ebpf, "INODE_BITMAP")?;
    let mut files: BpfHashMap<MapData, FileKey, u32> = take_map(&mut ebpf, "WATCHED")?;
    for key in watch.iter().map(|(k, _)| *k).chain([canary_key]) {
        let (word, bit) = detector_common::inode_bit(key.ino);
        let bits = bitmap.get(&word, 0).context("reading the inode bitmap")?;
        bitmap
            .set(word, bits | bit, 0)
            .context("filling the inode bitmap")?;
        files
            .insert(key, 1, 0)
            .context("filling the file watch map")?;
    }
    let lost_counters: PerCpuArray<MapData, u64> = take_map(&mut ebpf, "LOST")?;
    let ring: RingBuf<MapData> = take_map(&mut ebpf, "EVENTS")?;

    let mut programs = Vec::new();
    for (name, attach) in PROGRAMS {
        attach_program(&mut ebpf, name, *attach)?;
        programs.push(format!("{name} ({})", attach.describe()));
    }

    // Parsing BTF and seeding the process table leave megabytes of freed heap behind; give
    // them back, since this process is meant to sit idle for days.
    // SAFETY: malloc_trim only releases free memory.
    unsafe { libc::malloc_trim(0) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the event loop")?;
    let mut agent = Agent {
        sink: Sink::open(&options.sinks)?,
        processes: ProcessTable::from_proc(),
        watch,
        canary,
        canary_key,
        canary_seen: false,
        clock: Clock::now(),
        open_events: 0,
        lost: LostCounters {
            map: lost_counters,
            open: 0,
            process: 0,
            checked_at: Utc::now(),
        },
        own_pid: std::process::id(),
    };
    let ready = Ready {
        pid: agent.own_pid,
        programs,
        ring_buffer_bytes: options.ring_buffer_bytes,
        watched: agent.watch.describe(),
        not_watched: std::mem::take(&mut agent.watch.not_watched),
    };
    agent.sink.write(Utc::now(), &Record::Ready(ready))?;
    agent.sink.flush()?;
    agent.canary.probe();

    let result = runtime.block_on(agent.event_loop(ring, logger, &options));
    // Detach: dropping the object closes the links and programs.
    drop(ebpf);
    result
}

fn take_map<M>(ebpf: &mut Ebpf, name: &str) -> Result<M>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| anyhow!("the eBPF object has no map {name}"))?;
    M::try_from(map).map_err(|e| anyhow!("map {name}: {e}"))
}

fn attach_program(ebpf: &mut Ebpf, name: &str, attach: Attach) -> Result<()> {
    let program = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("the eBPF object has no program {name}"))?;
    let fail = |e: &dyn std::fmt::Display| anyhow!("attaching {} failed: {e}", attach.describe());
    match attach {
        Attach::TracePoint(category, tracepoint) => {
            let program: &mut TracePoint = program.try_into().map_err(|e| fail(&e))?;
            program.load().map_err(|e| fail(&e))?;
            program.attach(category, tracepoint).map_err(|e| fail(&e))?;
        }
        Attach::RawTracePoint(tracepoint) => {
            let program: &mut RawTracePoint = program.try_into().map_err(|e| fail(&e))?;
            program.load().map_err(|e| fail(&e))?;
            program.attach(tracepoint).map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

/// Monotonic kernel timestamps (`bpf_ktime_get_ns`) to wall-clock time.
struct Clock {
    wall_minus_mono_ns: i128,
}

impl Clock {
    fn now() -> Clock {
        let read = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid out-pointer.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        let mono = read(libc::CLOCK_MONOTONIC);
        let wall = read(libc::CLOCK_REALTIME);
        Clock {
            wall_minus_mono_ns: wall - mono,
        }
    }

    fn wall(&self, ktime_ns: u64) -> DateTime<Utc> {
        let ns = ktime_ns as i128 + self.wall_minus_mono_ns;
        DateTime::from_timestamp_nanos(ns as i64)
    }
}

/// A file of the agent's own that it opens before every heartbeat: if the kernel side does
/// not report that open, the pipeline is broken, and the heartbeat says so.
struct Canary {
    path: PathBuf,
}

impl Canary {
    fn create() -> Result<Canary> {
        let dir = ["/run/detector", "/tmp"]
            .iter()
            .map(PathBuf::from)
            .find(|dir| fs::create_dir_all(dir).is_ok())
            .ok_or_else(|| anyhow!("no directory for the canary file"))?;
        let path = dir.join(format!("canary-{}", std::process::id()));
        fs::write(&path, b"detector canary\n")
            .with_context(|| format!("cannot create canary file {}", path.display()))?;
        Ok(Canary { path })
    }

    fn key(&self) -> Result<FileKey> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&self.path)?;
        Ok(FileKey {
            ino: meta.ino(),
            dev: watch::kernel_dev(meta.dev()),
            _pad: 0,
        })
    }

    fn probe(&self) {
        if let Err(err) = fs::File::open(&self.path) {
            tracing::warn!("canary {}: {err}", self.path.display());
        }
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

struct LostCounters {
    map: PerCpuArray<MapData, u64>,
    open: u64,
    process: u64,
    checked_at: DateTime<Utc>,
}

impl LostCounters {
    fn read(&self, slot: u32) -> u64 {
        self.map
            .get(&slot, 0)
            .map(|values| values.iter().sum())
            .unwrap_or(0)
    }

    /// A `gap` record when the kernel dropped records since the last check.
    fn check(&mut self) -> Option<Gap> {
        let now = Utc::now();
        let (open, process) = (self.read(lost::OPEN), self.read(lost::PROCESS));
        let (new_open, new_process) = (open - self.open, process - self.process);
        let from = std::mem::replace(&mut self.checked_at, now);
        (self.open, self.process) = (open, process);
        (new_open + new_process > 0).then(|| Gap {
            from: event::rfc3339(from),
            to: event::rfc3339(now),
            reason: format!(
                "ring buffer full: {new_open} open and {new_process} process records lost"
            ),
            lost_open: new_open,
            lost_process: new_process,
        })
    }
}

struct Agent {
    sink: Sink,
    processes: ProcessTable,
    watch: WatchSet,
    canary: Canary,
    canary_key: FileKey,
    canary_seen: bool,
    clock: Clock,
    open_events: u64,
    lost: LostCounters,
    own_pid: u32,
}

impl Agent {
    async fn event_loop(
        &mut self,
        ring: RingBuf<MapData>,
        logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
        options: &Options,
    ) -> Result<()> {
        // SAFETY: the ring buffer owns its fd, which stays open while registered.
        let mut ring = unsafe { AsyncFd::register(ring) }
            .map_err(|e| anyhow!("cannot poll the ring buffer: {e}"))?;
        if let Some(logger) = logger {
            // SAFETY: as above, for the logger's own ring buffer.
            let mut logger = unsafe { AsyncFd::register(logger) }
                .map_err(|e| anyhow!("cannot poll the eBPF log buffer: {e}"))?;
            tokio::spawn(async move {
                while let Ok(mut guard) = logger.readable_mut().await {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
            });
        }
        let mut interrupt = tokio::signal::unix::signal(SignalKind::interrupt())?;
        let mut terminate = tokio::signal::unix::signal(SignalKind::terminate())?;
        // No periodic wake-up besides the heartbeat: an idle agent costs no CPU.
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + options.heartbeat,
            options.heartbeat,
        );
        let stop_at = options.duration.map(|d| tokio::time::Instant::now() + d);
        let stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stop);

        loop {
            tokio::select! {
                guard = ring.readable_mut() => {
                    let mut guard = guard?;
                    self.drain(guard.get_inner_mut())?;
                    guard.clear_ready();
                    self.check_lost()?;
                }
                _ = heartbeat.tick() => {
                    self.check_lost()?;
                    self.processes.collect_garbage();
                    self.heartbeat(false)?;
                    self.canary.probe();
                }
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                _ = &mut stop => break,
            }
        }

        // A last canary round trip, so the final heartbeat says whether the pipeline still
        // worked at the end, then everything left in the ring.
        self.canary_seen = false;
        self.canary.probe();
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            self.drain(ring.get_mut())?;
            if self.canary_seen || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.check_lost()?;
        self.heartbeat(true)
    }

    fn drain(&mut self, ring: &mut RingBuf<MapData>) -> Result<()> {
        while let Some(item) = ring.next() {
            self.handle(&item)?;
        }
        self.sink.flush()
    }

    fn check_lost(&mut self) -> Result<()> {
        if let Some(gap) = self.lost.check() {
            self.sink.write(Utc::now(), &Record::Gap(gap))?;
            self.sink.flush()?;
        }
        Ok(())
    }

    fn heartbeat(&mut self, last: bool) -> Result<()> {
        let heartbeat = Heartbeat {
            events: self.open_events,
            lost: self.lost.open + self.lost.process,
            lost_open: self.lost.open,
            lost_process: self.lost.process,
            canary: if self.canary_seen { "ok" } else { "missed" },
            watched: self.watch.len(),
            processes: self.processes.len(),
            last,
        };
        self.canary_seen = false;
        self.clock = Clock::now();
        self.sink.write(Utc::now(), &Record::Heartbeat(heartbeat))?;
        self.sink.flush()
    }

    fn handle(&mut self, record: &[u8]) -> Result<()> {
        let Some(kind) = record
            .get(..4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        else {
            return Ok(());
        };
        match kind {
            kind::OPEN => {
                if let Some(open) = read_record::<OpenEvent>(record) {
                    self.on_open(&open)?;
                }
            }
            kind::EXEC => {
                if let Some(exec) = read_record::<ExecEvent>(record) {
                    let filename = c_string(&exec.filename);
                    let args = &exec.args[..(exec.args_len as usize).min(exec.args.len())];
                    self.processes.exec(exec.tgid, exec.ppid, &filename, args);
                }
            }
            kind::FORK => {
                if let Some(task) = read_record::<TaskEvent>(record) {
                    self.processes.fork(task.tgid, task.arg);
                }
            }
            kind::EXIT => {
                if let Some(task) = read_record::<TaskEvent>(record) {
                    self.processes.exit(task.tgid);
                }
            }
            other => tracing::warn!("unknown record kind {other} from the kernel"),
        }
        Ok(())
    }

    fn on_open(&mut self, open: &OpenEvent) -> Result<()> {
        if open.key == self.canary_key {
            if open.tgid == self.own_pid {
                self.canary_seen = true;
            }
            return Ok(());
        }
        let Some(watched) = self.watch.get(&open.key) else {
            // Watched when the record was queued, since dropped from the set.
            return Ok(());
        };
        let (file, mcp_client) = (
            watched.path.display().to_string(),
            watched.mcp_client.clone(),
        );
        let (exe, cmdline) = match self.processes.lookup(open.tgid) {
            Some(process) => (process.exe.clone(), process.cmdline.clone()),
            None => (String::new(), Vec::new()),
        };
        let record = Open {
            file,
            dev: dev_string(open.key.dev),
            ino: open.key.ino,
            syscall: ["open", "openat", "openat2"]
                .get(open.syscall as usize)
                .copied()
                .unwrap_or("?"),
            flags: open.flags,
            access: access(open.flags),
            result: open.result,
            pid: open.tgid,
            tid: open.tid,
            ppid: open.ppid,
            uid: open.uid,
            gid: open.gid,
            comm: c_string(&open.comm[..COMM_LEN]),
            exe,
            cmdline,
            ancestry: self.processes.ancestry(open.tgid),
            cgroup_id: open.cgroup_id,
            // Without a policy every reader is reported for review.
            verdict: "alert",
            policy_rule: None,
            mcp_client,
            mcp_server: None,
        };
        self.open_events += 1;
        self.sink.write(
            self.clock.wall(open.ktime_ns),
            &Record::Open(Box::new(record)),
        )
    }
}

fn read_record<T: Copy>(bytes: &[u8]) -> Option<T> {
    (bytes.len() >= size_of::<T>()).then(|| {
        // SAFETY: length checked; T is a repr(C) plain-old-data record from detector-common.
        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) }
    })
}

fn c_string(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

fn access(flags: u32) -> &'static str {
    const O_PATH: u32 = libc::O_PATH as u32;
    if flags & O_PATH != 0 {
        return "path";
    }
    match flags & libc::O_ACCMODE as u32 {
        0 => "read",
        1 => "write",
        _ => "read-write",
    }
}
