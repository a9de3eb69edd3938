//! Benchmarks: each prints a Markdown table, ours beside the peers, measured in one run on
//! this machine. README carries the latest tables with the command that made them.
mod agent;
mod child;
mod dir;
mod git;
mod hostile;
mod image;
pub mod peers;
mod precision;
mod scan;
mod staged;
mod store;
mod verify;

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum Which {
    /// Open-path overhead of the agent vs no agent, auditd and bpftrace; burst loss; idle
    /// footprint with 10,000 watched files.
    Agent {
        /// open+close pairs per measurement (each measurement is the median of 3 runs).
        #[arg(long, default_value_t = 1_000_000)]
        iterations: u64,
    },
    /// Full-history scan of a large repository built from the local crate sources (cached
    /// under target/bench-git): ours, Kingfisher and gitleaks, wall time, peak memory, recall.
    Git {
        /// At least this many commits.
        #[arg(long, default_value_t = 20_000)]
        commits: usize,
        /// At least this many bytes of distinct blob content.
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
    },
    /// Directory scan of a large home-like tree with archives, built from the local crate
    /// sources and /usr/share/doc (cached under target/bench-dir): ours, Kingfisher and
    /// gitleaks, MB/s, peak memory, recall of planted keys.
    Dir,
    /// Scanning a ≥1 GiB `docker save` archive built from real files: MB/s of layer data and
    /// peak memory, ours vs Kingfisher `scan docker --archive`, with what each found.
    Image,
    /// `detector scan dir:` beside gitleaks and Kingfisher on a 1 GiB tree of real source text
    /// with planted keys: throughput, peak RSS and recall of the planted keys.
    Scan {
        /// Size of the generated tree in MiB (kept under target/bench and reused).
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Runs per tool; the table shows the median wall time.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// The pre-commit check (`scan git:. --staged`) of a typical staged change in work trees
    /// of 1,000 to 100,000 files (cached under target/bench-staged), beside `git diff --cached`
    /// and gitleaks' pre-commit mode: median and slowest wall time, peak memory.
    Staged,
    /// What ours, gitleaks and Kingfisher report on real text without planted keys (the cargo
    /// registry's sources and /usr/share/doc unless paths are given): every report of ours,
    /// the peers' by rule.
    Precision {
        /// Directories to scan instead.
        paths: Vec<PathBuf>,
    },
    /// The crafted inputs of the hardening tests at their worst (a key on every line of 10 MB,
    /// 100,000 image `Env` entries, merges of 100,000 places, …), through ours and the peers
    /// that take them: wall time, peak RSS, and whether the deadline killed the run.
    Hostile {
        /// Seconds a run may take before it is killed and shown as a hang.
        #[arg(long, default_value_t = 120)]
        deadline: u64,
        /// Another build of ours to run beside (e.g. the last release).
        #[arg(long, value_name = "BINARY")]
        before: Option<std::path::PathBuf>,
    },
    /// The key inventory at an organisation's size: 10,000 reports (1,000,000 sightings of
    /// 100,000 keys) ingested by `detector store ingest` into SQLite and PostgreSQL
    /// (sightings/s), then the org report rendered from each (wall time).
    Store {
        /// Reports to ingest (100 sightings each; cached under target/bench-store).
        #[arg(long, default_value_t = 10_000)]
        reports: usize,
        /// Another build of detector to run instead of the release build.
        #[arg(long, value_name = "BINARY")]
        binary: Option<PathBuf>,
    },
    /// `scan dir: --verify` of 1,000 keys of 20 providers against a local HTTPS provider
    /// (its own CA, 50 ms latency): wall time and keys/s with an empty verification cache,
    /// then with the cache (no request expected), requests seen, keys found active.
    Verify {
        /// Keys planted (spread over 50 `.env` files); the report must show all of them.
        #[arg(long, default_value_t = 1_000)]
        keys: usize,
        /// Cold runs, then as many warm runs; the table shows the median wall time.
        #[arg(long, default_value_t = 1)]
        runs: usize,
        /// Milliseconds the provider waits before each reply.
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        /// Another build of detector to run instead of the release build.
        #[arg(long, value_name = "BINARY")]
        binary: Option<PathBuf>,
    },
    /// (internal) Build the inputs of `hostile` (in a process of their own).
    #[command(hide = true)]
    HostileInputs,
    /// (internal) One measuring loop in a fresh process; prints ns per open+close.
    #[command(hide = true)]
    OpenLoop {
        path: std::path::PathBuf,
        iterations: u64,
    },
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Agent { iterations } => agent::run(iterations),
        Which::Git { commits, bytes } => git::run(commits, bytes),
        Which::Dir => dir::run(),
        Which::Image => image::run(),
        Which::Scan { size_mib, runs } => scan::run(size_mib, runs),
        Which::Staged => staged::run(),
        Which::Precision { paths } => precision::run(paths),
        Which::Hostile { deadline, before } => hostile::run(deadline, before),
        Which::Verify {
            keys,
            runs,
            latency_ms,
            binary,
        } => verify::run(verify::Options {
            keys,
            runs,
            latency: std::time::Duration::from_millis(latency_ms),
            binary,
        }),
        Which::Store { reports, binary } => store::run(store::Options { reports, binary }),
        Which::HostileInputs => hostile::build_inputs(),
        Which::OpenLoop { path, iterations } => {
            println!("{}", agent::open_close_once(&path, iterations)?);
            Ok(())
        }
    }
}

/// The workspace root (xtask's parent), whatever directory `cargo xtask` was started in.
pub(crate) use crate::workspace_root;
