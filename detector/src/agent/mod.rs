//! The eBPF agent: loads the kernel programs, keeps the process table, and writes one JSON
//! line per open of a watched file, with the process that did it.
//!
//! Kernel side: `detector-ebpf`. Filtering by file identity happens there; what reaches this
//! module is only opens of watched files plus exec/fork/exit records for the process table.
pub mod btf;
pub mod chain;
pub mod container;
pub mod environ;
pub mod kernel;
pub mod live;
pub mod policy;
pub mod process;
pub mod rescan;
pub mod sink;
pub mod watch;

use std::{
    collections::{BTreeSet, HashMap},
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use aya::{
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{RawTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use chrono::{DateTime, Utc};
use detector_common::{
    lost, ExecEvent, FileKey, OpenEvent, RecordKind, Syscall, TaskEvent, COMM_LEN,
};
use tokio::{io::unix::AsyncFd, signal::unix::SignalKind};

use self::{
    kernel::KernelError,
    live::{LiveFiles, WatchError},
    policy::{Policy, PolicyError, Reader, Verdict},
    process::ProcessTable,
    rescan::Rescanner,
    sink::{Sink, SinkError},
    watch::{dev_string, KernelWatch},
};
use crate::{
    audit::{fingerprint::OrgKeyError, OrgKey},
    detect::RuleError,
    event::{self, rfc3339, Access, CanaryState, Gap, Heartbeat, Open, Ready, Record},
};

/// Why the agent could not start, or stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the agent must run as root (it loads eBPF programs: CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN); try sudo")]
    NotRoot,
    #[error("this binary was built without its eBPF programs (the eBPF toolchain was missing): run `cargo xtask setup`, then rebuild")]
    NoPrograms,
    #[error("--ring-buffer-kib must be a power of two, at least 4")]
    RingBufferSize,
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Policy(Box<PolicyError>),
    #[error(transparent)]
    OrgKey(#[from] OrgKeyError),
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("no directory for the canary file")]
    NoCanaryDirectory,
    #[error("cannot create canary file {}: {error}", path.display())]
    CreateCanary { path: PathBuf, error: io::Error },
    /// The canary file, just created, cannot be looked at.
    #[error(transparent)]
    CanaryIdentity(io::Error),
    #[error("no container {name:?} (--container): {reason}")]
    NoSuchContainer { name: String, reason: String },
    #[error("container {0:?} (--container) is not running")]
    ContainerNotRunning(String),
    #[error("--container-pid {0}: no such process")]
    NoSuchProcess(u32),
    #[error("--watch {0}: a path inside a container must be absolute")]
    RelativeContainerPath(PathBuf),
    #[error("cannot start the event loop: {0}")]
    EventLoop(io::Error),
    #[error("cannot poll the ring buffer: {0}")]
    PollRing(io::Error),
    #[error("cannot poll the eBPF log buffer: {0}")]
    PollLog(io::Error),
    /// Installing the handlers of SIGINT, SIGTERM and SIGUSR1.
    #[error(transparent)]
    Signals(io::Error),
    /// Waiting for the ring buffer to be readable.
    #[error(transparent)]
    ReadRing(io::Error),
}

/// A policy error is boxed: it is the largest of these, and would make every `Result` of the
/// agent as large.
impl From<PolicyError> for Error {
    fn from(error: PolicyError) -> Error {
        Error::Policy(Box::new(error))
    }
}

/// How long changed paths wait before they are re-scanned, so a burst of writes is read once.
const CHANGE_SETTLE: Duration = Duration::from_millis(30);

/// The kernel programs, built by `detector/build.rs` (empty when the eBPF toolchain was
/// missing at build time).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("DETECTOR_EBPF_OBJECT"));

/// What the agent is asked to do; filled from the command line.
pub struct Options {
    pub watch: Vec<PathBuf>,
    /// The policy file (default: the built-in `deploy/policy.toml`).
    pub policy: Option<PathBuf>,
    pub org_key_file: Option<PathBuf>,
    /// Watch these homes (default: every home on the host).
    pub homes: Vec<PathBuf>,
    pub sinks: sink::Options,
    pub heartbeat: Duration,
    pub ring_buffer_bytes: u32,
    pub duration: Option<Duration>,
    /// `--container NAME|ID`: `watch` paths are inside this Docker container.
    pub container: Option<String>,
    /// `--container-pid PID`: `watch` paths are inside the mount namespace of this process.
    pub container_pid: Option<u32>,
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

/// Where a program attaches.
#[derive(Debug, Clone, Copy)]
pub enum Attach {
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
pub fn run(options: Options) -> Result<(), Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot);
    }
    if EBPF_OBJECT.is_empty() {
        return Err(Error::NoPrograms);
    }
    if !options.ring_buffer_bytes.is_power_of_two() || options.ring_buffer_bytes < 4096 {
        return Err(Error::RingBufferSize);
    }
    let tracefs = kernel::ensure_tracefs()?;
    let offsets = kernel::offsets(&tracefs)?;
    tracing::debug!(?offsets, "kernel offsets from BTF");

    let policy = match &options.policy {
        Some(path) => Policy::load(path)?,
        None => Policy::builtin()?,
    };
    let rescanner = Rescanner::new(OrgKey::load(options.org_key_file.as_deref())?)?;
    let canary = Canary::create()?;
    let canary_key = canary.key()?;

    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", &offsets, true)
        .map_max_entries("EVENTS", options.ring_buffer_bytes)
        .load(EBPF_OBJECT)
        .map_err(KernelError::Load)?;
    let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
        Ok(logger) => Some(logger),
        Err(err) => {
            tracing::warn!("eBPF program logs unavailable: {err}");
            None
        }
    };

    let kernel_watch = KernelWatch::new(
        take_map(&mut ebpf, "INODE_BITMAP")?,
        take_map(&mut ebpf, "WATCHED")?,
    );
    let containers = container::Directory::start();
    let watched_container = WatchedContainer::resolve(&options, &containers)?;
    let watch_paths = match &watched_container {
        Some(watched) => watched.paths.clone(),
        None => options.watch.clone(),
    };
    let (mut files, changes, not_watched) = LiveFiles::start(
        policy,
        homes(&options.homes),
        &watch_paths,
        kernel_watch,
        rescanner,
    )?;
    if let Some(watched) = &watched_container {
        for (path, name) in watched.paths.iter().zip(&watched.names) {
            files.set_in_container(
                path,
                watch::InContainer {
                    path: name.clone(),
                    container: watched.container.clone(),
                },
            );
        }
    }
    files.insert_kernel_key(canary_key)?;
    // The baselines are taken: what only re-scans need goes until a file changes.
    files.release_idle_memory();
    crate::platform::release_freed_heap();
    let lost_counters: PerCpuArray<MapData, u64> = take_map(&mut ebpf, "LOST")?;
    let ring: RingBuf<MapData> = take_map(&mut ebpf, "EVENTS")?;

    let mut programs = Vec::new();
    for (name, attach) in PROGRAMS {
        if let Attach::TracePoint("syscalls", "sys_exit_open") = attach {
            // arm64 and riscv64 kernels have no `open` syscall (only `openat`, `openat2`),
            // so no such tracepoint: every open goes through the others.
            if !tracefs.join("events/syscalls/sys_exit_open").is_dir() {
                tracing::info!("no open syscall on this kernel: {name} is not attached");
                continue;
            }
        }
        attach_program(&mut ebpf, name, *attach)?;
        programs.push(format!("{name} ({})", attach.describe()));
    }

    // Parsing BTF, seeding the process table and the baseline scan leave megabytes of freed
    // heap behind; give them back, since this process is meant to sit idle for days.
    files.release_idle_memory();
    crate::platform::release_freed_heap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::EventLoop)?;
    let mut agent = Agent {
        views: HashMap::new(),
        ebpf: None,
        sink: Sink::open(&options.sinks)?,
        processes: ProcessTable::from_proc(),
        containers,
        cgroup_ids: container::CgroupIds::default(),
        watched_container,
        environ: environ::Pins::default(),
        files,
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
    // Names of the containers running now, asked ahead of their first open.
    for (_, process) in agent.processes.living() {
        if let Some(container) = &process.container {
            agent.containers.request(&container.id);
        }
    }
    agent.pin_servers()?;
    let ready = Ready {
        pid: agent.own_pid,
        programs,
        ring_buffer_bytes: options.ring_buffer_bytes,
        watched: agent.files.describe(),
        not_watched,
    };
    agent.sink.write(Utc::now(), &Record::Ready(ready))?;
    // The ready record of a large watch set is big; give its memory back too.
    crate::platform::release_freed_heap();
    agent.sink.flush()?;
    agent.canary.probe();

    agent.ebpf = Some(ebpf);
    let result = runtime.block_on(agent.event_loop(ring, logger, changes, &options));
    // Detach: dropping the object closes the links and programs.
    agent.ebpf = None;
    result
}

/// The homes named with `--home`, if any.
pub fn homes(dirs: &[PathBuf]) -> Option<Vec<crate::mcp::Home>> {
    (!dirs.is_empty()).then(|| dirs.iter().map(|d| live::home_at(d)).collect())
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, KernelError>
where
    M: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(KernelError::NoMap(name))?;
    M::try_from(map).map_err(|error| KernelError::Map { name, error })
}

fn attach_program(ebpf: &mut Ebpf, name: &'static str, attach: Attach) -> Result<(), KernelError> {
    let program = ebpf.program_mut(name).ok_or(KernelError::NoProgram(name))?;
    let fail = |error| KernelError::Attach { attach, error };
    match attach {
        Attach::TracePoint(category, tracepoint) => {
            let program: &mut TracePoint = program.try_into().map_err(fail)?;
            program.load().map_err(fail)?;
            program.attach(category, tracepoint).map_err(fail)?;
        }
        Attach::RawTracePoint(tracepoint) => {
            let program: &mut RawTracePoint = program.try_into().map_err(fail)?;
            program.load().map_err(fail)?;
            program.attach(tracepoint).map_err(fail)?;
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
    fn create() -> Result<Canary, Error> {
        let dir = ["/run/detector", "/tmp"]
            .iter()
            .map(PathBuf::from)
            .find(|dir| fs::create_dir_all(dir).is_ok())
            .ok_or(Error::NoCanaryDirectory)?;
        let path = dir.join(format!("canary-{}", std::process::id()));
        if let Err(error) = fs::write(&path, b"detector canary\n") {
            return Err(Error::CreateCanary { path, error });
        }
        Ok(Canary { path })
    }

    fn key(&self) -> Result<FileKey, Error> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&self.path).map_err(Error::CanaryIdentity)?;
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
            from: rfc3339(from),
            to: rfc3339(now),
            reason: format!(
                "ring buffer full: {new_open} open and {new_process} process records lost"
            ),
            lost_open: new_open,
            lost_process: new_process,
        })
    }
}

struct Agent {
    views: HashMap<u32, ProcessView>,
    /// The loaded programs; dropping it detaches them (the maps were taken out and live on).
    ebpf: Option<Ebpf>,
    sink: Sink,
    processes: ProcessTable,
    files: LiveFiles,
    canary: Canary,
    canary_key: FileKey,
    canary_seen: bool,
    clock: Clock,
    open_events: u64,
    lost: LostCounters,
    own_pid: u32,
    containers: container::Directory,
    cgroup_ids: container::CgroupIds,
    /// `--container`: the container whose files are watched, until it stops.
    watched_container: Option<WatchedContainer>,
    /// The environments of running MCP servers, held open so their identity stays.
    environ: environ::Pins,
}

/// The container of `--container`/`--container-pid`, and its watched paths.
struct WatchedContainer {
    container: event::Container,
    /// Its init process on the host: the paths are seen through its root.
    init_pid: u32,
    /// `/proc/PID/root/PATH` of every `--watch PATH`.
    paths: Vec<PathBuf>,
    /// The same, as the container names them.
    names: Vec<String>,
}

impl WatchedContainer {
    fn resolve(
        options: &Options,
        containers: &container::Directory,
    ) -> Result<Option<WatchedContainer>, Error> {
        let (container, init_pid) = match (&options.container, options.container_pid) {
            (Some(name), _) => {
                let details = container::inspect(name).map_err(|error| {
                    use crate::source::docker::DaemonError;
                    Error::NoSuchContainer {
                        name: name.clone(),
                        reason: match error {
                            DaemonError::NotFound { .. } => {
                                "the Docker daemon has none by that name or id".into()
                            }
                            other => other.to_string(),
                        },
                    }
                })?;
                if !details.running || details.pid == 0 {
                    return Err(Error::ContainerNotRunning(name.clone()));
                }
                let pid = details.pid;
                let found = container::of_pid(pid).unwrap_or(container::CgroupContainer {
                    id: details.id.clone(),
                    runtime: event::Runtime::Docker,
                });
                (containers.describe(&found, container::LOOKUP_WAIT * 8), pid)
            }
            (None, Some(pid)) => {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    return Err(Error::NoSuchProcess(pid));
                }
                let Some(found) = container::of_pid(pid) else {
                    return Err(Error::NoSuchContainer {
                        name: format!("of process {pid}"),
                        reason: "its cgroup names no container".into(),
                    });
                };
                (containers.describe(&found, container::LOOKUP_WAIT * 8), pid)
            }
            (None, None) => return Ok(None),
        };
        let mut paths = Vec::new();
        let mut names = Vec::new();
        for path in &options.watch {
            let Ok(inside) = path.strip_prefix("/") else {
                return Err(Error::RelativeContainerPath(path.clone()));
            };
            paths.push(PathBuf::from(format!("/proc/{init_pid}/root")).join(inside));
            names.push(path.display().to_string());
        }
        Ok(Some(WatchedContainer {
            container,
            init_pid,
            paths,
            names,
        }))
    }
}

impl Agent {
    async fn event_loop(
        &mut self,
        ring: RingBuf<MapData>,
        logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
        mut changes: live::Changes,
        options: &Options,
    ) -> Result<(), Error> {
        // SAFETY: the ring buffer owns its fd, which stays open while registered.
        let mut ring = unsafe { AsyncFd::register(ring) }.map_err(|e| Error::PollRing(e.into()))?;
        if let Some(logger) = logger {
            // SAFETY: as above, for the logger's own ring buffer.
            let mut logger =
                unsafe { AsyncFd::register(logger) }.map_err(|e| Error::PollLog(e.into()))?;
            tokio::spawn(async move {
                while let Ok(mut guard) = logger.readable_mut().await {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
            });
        }
        let signal = |kind| tokio::signal::unix::signal(kind).map_err(Error::Signals);
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        // Self-test: SIGUSR1 detaches the kernel programs, as a broken pipeline would be; the
        // next heartbeats must then report the canary `missed`.
        let mut detach = signal(SignalKind::user_defined1())?;
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
        // Changed paths wait a moment, so that a burst of writes is re-scanned once.
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        let settle = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(settle);

        loop {
            tokio::select! {
                Some(paths) = changes.recv() => {
                    if changed.is_empty() {
                        settle.as_mut().reset(tokio::time::Instant::now() + CHANGE_SETTLE);
                    }
                    changed.extend(paths);
                }
                _ = &mut settle, if !changed.is_empty() => {
                    let records = self.files.changed(std::mem::take(&mut changed))?;
                    // Configured servers may have changed: who is which server, again.
                    self.views.clear();
                    self.pin_servers()?;
                    for record in records {
                        self.sink.write(Utc::now(), &Record::ConfigChange(record))?;
                    }
                    self.sink.flush()?;
                }
                guard = ring.readable_mut() => {
                    let mut guard = guard.map_err(Error::ReadRing)?;
                    self.drain(guard.get_inner_mut())?;
                    guard.clear_ready();
                    self.check_lost()?;
                }
                _ = heartbeat.tick() => {
                    self.check_lost()?;
                    // An exit record lost with a full ring buffer must not keep a stopped
                    // container's watches.
                    if self
                        .watched_container
                        .as_ref()
                        .is_some_and(|w| !Path::new(&format!("/proc/{}", w.init_pid)).exists())
                    {
                        self.container_exit()?;
                    }
                    self.processes.collect_garbage();
                    self.views.clear();
                    self.files.release_idle_memory();
                    crate::platform::release_freed_heap();
                    self.heartbeat(false)?;
                    self.canary.probe();
                }
                _ = detach.recv() => {
                    tracing::warn!("SIGUSR1: detaching the kernel programs (self-test)");
                    self.ebpf = None;
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
        Ok(self.heartbeat(true)?)
    }

    fn drain(&mut self, ring: &mut RingBuf<MapData>) -> Result<(), SinkError> {
        while let Some(item) = ring.next() {
            self.handle(&item)?;
        }
        self.sink.flush()
    }

    fn check_lost(&mut self) -> Result<(), SinkError> {
        if let Some(gap) = self.lost.check() {
            self.sink.write(Utc::now(), &Record::Gap(gap))?;
            self.sink.flush()?;
        }
        Ok(())
    }

    fn heartbeat(&mut self, last: bool) -> Result<(), SinkError> {
        let heartbeat = Heartbeat {
            events: self.open_events,
            lost: self.lost.open + self.lost.process,
            lost_open: self.lost.open,
            lost_process: self.lost.process,
            canary: if self.canary_seen {
                CanaryState::Ok
            } else {
                CanaryState::Missed
            },
            watched: self.files.len(),
            processes: self.processes.len(),
            last,
        };
        self.canary_seen = false;
        self.clock = Clock::now();
        self.sink.write(Utc::now(), &Record::Heartbeat(heartbeat))?;
        self.sink.flush()
    }

    fn handle(&mut self, record: &[u8]) -> Result<(), SinkError> {
        let Some(code) = record
            .get(..4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
        else {
            return Ok(());
        };
        let kind = match RecordKind::try_from(code) {
            Ok(kind) => kind,
            Err(unknown) => {
                tracing::warn!("a record of {unknown} for its kind from the kernel");
                return Ok(());
            }
        };
        match kind {
            RecordKind::Open => {
                if let Some(open) = read_record::<OpenEvent>(record) {
                    self.on_open(&open)?;
                }
            }
            RecordKind::Exec => {
                if let Some(exec) = read_record::<ExecEvent>(record) {
                    let filename = c_string(&exec.filename);
                    let args = &exec.args[..(exec.args_len as usize).min(exec.args.len())];
                    self.processes.exec(exec.tgid, exec.ppid, &filename, args);
                    self.views.remove(&exec.tgid);
                    self.after_exec(exec.tgid)?;
                }
            }
            RecordKind::Fork => {
                if let Some(task) = read_record::<TaskEvent>(record) {
                    self.processes.fork(task.tgid, task.arg);
                    self.views.remove(&task.arg);
                }
            }
            RecordKind::Exit => {
                if let Some(task) = read_record::<TaskEvent>(record) {
                    self.processes.exit(task.tgid);
                    self.views.remove(&task.tgid);
                    self.after_exit(task.tgid)?;
                }
            }
        }
        Ok(())
    }

    fn on_open(&mut self, open: &OpenEvent) -> Result<(), SinkError> {
        if open.tgid == self.own_pid {
            // The canary round trip, the agent's own re-scans of changed files, and its pins
            // of servers' environments.
            if open.key == self.canary_key {
                self.canary_seen = true;
            }
            return Ok(());
        }
        if let Some(pin) = self.environ.get(&open.key) {
            let (pid, server) = (pin.pid, pin.server.clone());
            return self.on_environ_open(open, pid, server);
        }
        let Some(watched) = self.files.watched(&open.key) else {
            // Watched when the record was queued, since dropped from the set (or the canary,
            // opened by someone else).
            return Ok(());
        };
        let (file, group, mcp_client, file_container) = (
            watched.name(),
            watched.group,
            watched.mcp_client.clone(),
            watched.in_container.as_ref().map(|i| i.container.clone()),
        );
        self.write_open(
            open,
            file,
            Judge::Group(group),
            About {
                mcp_client,
                file_container,
                target: None,
            },
        )
    }

    /// Writes the record of an open: the kernel's facts, who the opener is (its view), what
    /// the policy says, and what the caller knows of the file.
    fn write_open(
        &mut self,
        open: &OpenEvent,
        file: String,
        judge: Judge,
        about: About,
    ) -> Result<(), SinkError> {
        let group = match judge {
            Judge::Group(group) => group,
            Judge::Environ => None,
        };
        self.view(open.tgid, group);
        let view = &self.views[&open.tgid];
        let verdict = match judge {
            Judge::Group(group) => view.verdicts[&group].clone(),
            Judge::Environ => self.files.environ_verdict(&Reader {
                exe: &view.exe,
                parent_exe: view.parent_exe.as_deref(),
                cmdline: &view.raw_cmdline,
            }),
        };
        let (mut exe, cmdline, ancestry, mcp_server) = (
            view.exe.clone(),
            view.cmdline.clone(),
            view.ancestry.clone(),
            view.mcp_server.clone(),
        );
        let container = self.container_of(open.tgid, open.cgroup_id);
        if container.is_some() {
            // In a container the table did not know of: the exec's own name, not the host's
            // file of that name.
            if let Some(process) = self.processes.get(open.tgid) {
                if let (None, Some(filename)) = (&process.container, &process.exec_filename) {
                    exe = filename.clone();
                }
            }
        }
        let record = Open {
            file,
            dev: Some(dev_string(open.key.dev)),
            ino: Some(open.key.ino),
            syscall: Syscall::try_from(open.syscall)
                .inspect_err(|e| tracing::warn!("open record with {e} for its syscall"))
                .ok(),
            flags: open.flags,
            access: Some(Access::of_flags(open.flags)),
            result: open.result,
            pid: open.tgid,
            tid: open.tid,
            ppid: open.ppid,
            uid: open.uid,
            gid: open.gid,
            comm: c_string(&open.comm[..COMM_LEN]),
            exe,
            cmdline,
            ancestry,
            cgroup_id: open.cgroup_id,
            verdict: event::Verdict::allowed(verdict.allowed),
            policy_rule: Some(verdict.rule),
            mcp_client: about.mcp_client,
            mcp_server,
            container,
            target: about.target,
            file_container: about.file_container,
        };
        self.open_events += 1;
        self.sink.write(
            self.clock.wall(open.ktime_ns),
            &Record::Open(Box::new(record)),
        )
    }
}

/// Which rules judge an open.
#[derive(Clone, Copy)]
enum Judge {
    /// The readers of a policy group (`None`: a file no group claims).
    Group(Option<usize>),
    /// The readers of MCP servers' environments.
    Environ,
}

/// What an open record says of the file besides its name.
struct About {
    mcp_client: Option<String>,
    file_container: Option<event::Container>,
    target: Option<event::Target>,
}

impl Agent {
    /// The container a process runs in, named as far as the daemon answers in a moment:
    /// from the process table, else (a process gone before its record was read) from the
    /// cgroup id the kernel recorded with its open.
    fn container_of(&mut self, pid: u32, cgroup_id: u64) -> Option<event::Container> {
        let found = match self.processes.lookup(pid).and_then(|p| p.container.clone()) {
            Some(found) => found,
            None => self.cgroup_ids.container(cgroup_id)?,
        };
        Some(self.containers.describe(&found, container::LOOKUP_WAIT))
    }

    /// A new image: its container is asked for ahead of its opens, and an MCP server's
    /// environment is pinned.
    fn after_exec(&mut self, pid: u32) -> Result<(), SinkError> {
        if let Some(found) = self.processes.get(pid).and_then(|p| p.container.as_ref()) {
            self.containers.request(&found.id);
        }
        let server = self.server_run_by(pid);
        self.pin(pid, server);
        Ok(())
    }

    fn after_exit(&mut self, pid: u32) -> Result<(), SinkError> {
        self.unpin(pid);
        if self
            .watched_container
            .as_ref()
            .is_some_and(|w| w.init_pid == pid)
        {
            self.container_exit()?;
        }
        Ok(())
    }

    /// The configured MCP server whose command this process runs, or whose server process
    /// started it (the `node` an `npx` execs inherits its environment, key included).
    fn server_run_by(&self, pid: u32) -> Option<String> {
        let process = self.processes.get(pid)?;
        self.files
            .servers()
            .iter()
            .find(|s| rescan::server_matches(&s.argv, &process.exe, &process.cmdline))
            .map(|s| s.name.clone())
            .or_else(|| self.environ.server_of(process.ppid).map(str::to_string))
    }

    /// Every running process, against the servers of the watched configs (at start, and
    /// when a config changed).
    fn pin_servers(&mut self) -> Result<(), KernelError> {
        let living: Vec<u32> = self.processes.living().map(|(pid, _)| pid).collect();
        for pid in living {
            if pid == self.own_pid {
                continue;
            }
            let server = self.server_run_by(pid);
            self.pin(pid, server);
        }
        Ok(())
    }

    /// Holds `/proc/PID/environ` of a server open (watched like a file), or lets it go when
    /// the process runs no server (any more).
    fn pin(&mut self, pid: u32, server: Option<String>) {
        match server {
            Some(server) => {
                if let Some(key) = self.environ.pin(pid, server) {
                    if let Err(err) = self.files.insert_kernel_key(key) {
                        tracing::warn!("cannot watch the environment of process {pid}: {err}");
                    }
                }
            }
            None => self.unpin(pid),
        }
    }

    fn unpin(&mut self, pid: u32) {
        if let Some(key) = self.environ.unpin(pid) {
            let mut keep = self.environ.keys();
            keep.push(self.canary_key);
            if let Err(err) = self.files.remove_kernel_key(key, &keep) {
                tracing::warn!("cannot stop watching the environment of process {pid}: {err}");
            }
        }
    }

    /// The `--container` stopped: its watches go, and a record says so.
    fn container_exit(&mut self) -> Result<(), SinkError> {
        let Some(watched) = self.watched_container.take() else {
            return Ok(());
        };
        let mut keep = self.environ.keys();
        keep.push(self.canary_key);
        if let Err(err) = self.files.unwatch(&watched.paths, &keep) {
            tracing::warn!("cannot drop the watches of a stopped container: {err}");
        }
        let record = event::ContainerExit {
            container: watched.container,
            files: watched.names,
        };
        self.sink
            .write(Utc::now(), &Record::ContainerExit(record))?;
        self.sink.flush()
    }

    /// An open of a pinned `/proc/PID/environ`: who read which server's environment.
    fn on_environ_open(
        &mut self,
        open: &OpenEvent,
        target_pid: u32,
        server: String,
    ) -> Result<(), SinkError> {
        let (target_exe, target_cmdline) = self
            .processes
            .get(target_pid)
            .map(|p| (p.exe.clone(), self.files.scrub(&p.cmdline)))
            .unwrap_or_default();
        let target = event::Target {
            pid: target_pid,
            exe: target_exe,
            cmdline: target_cmdline,
            mcp_server: server,
            container: self.container_of(target_pid, 0),
        };
        self.write_open(
            open,
            format!("/proc/{target_pid}/environ"),
            Judge::Environ,
            About {
                mcp_client: None,
                file_container: None,
                target: Some(target),
            },
        )
    }

    /// Who a process is, as the log shows it: worked out once per process (a burst of opens
    /// by one process costs one lineage walk, one scrub and one policy decision per group),
    /// forgotten when it execs or exits.
    fn view(&mut self, pid: u32, group: Option<usize>) -> &ProcessView {
        if !self.views.contains_key(&pid) {
            let lineage: Vec<(String, Vec<String>)> = self
                .processes
                .lineage(pid)
                .into_iter()
                .map(|(_, p)| (p.exe, p.cmdline))
                .collect();
            let (exe, cmdline) = lineage.first().cloned().unwrap_or_default();
            let view = ProcessView {
                cmdline: self.files.scrub(&cmdline),
                ancestry: self.processes.ancestry(pid),
                mcp_server: self.files.server_of(&lineage).map(|s| s.name.clone()),
                exe,
                raw_cmdline: cmdline,
                parent_exe: lineage.get(1).map(|(exe, _)| exe.clone()),
                verdicts: HashMap::new(),
            };
            self.views.insert(pid, view);
        }
        let view = self.views.get_mut(&pid).expect("inserted above");
        if !view.verdicts.contains_key(&group) {
            let verdict = self.files.verdict(
                group,
                &Reader {
                    exe: &view.exe,
                    parent_exe: view.parent_exe.as_deref(),
                    cmdline: &view.raw_cmdline,
                },
            );
            view.verdicts.insert(group, verdict);
        }
        view
    }
}

/// What the log says about a process (see [`Agent::view`]).
struct ProcessView {
    exe: String,
    /// With secrets redacted.
    cmdline: Vec<String>,
    raw_cmdline: Vec<String>,
    parent_exe: Option<String>,
    ancestry: Vec<process::Ancestor>,
    mcp_server: Option<String>,
    verdicts: HashMap<Option<usize>, Verdict>,
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
