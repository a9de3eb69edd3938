//! Command-line definitions, and nothing else: every flag lives here.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::source::Target;

#[derive(Parser, Debug)]
#[command(
    name = "detector",
    version,
    about = "Find and watch the API keys MCP servers use"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan targets (dir:, file:, git:, docker:, docker-archive:, oci-dir:, oci-archive:, container:, containers:, mcp:)
    /// and write one report grouped by key.
    Scan(ScanArgs),
    /// Audit this host: every home's MCP configs, the homes as directories, the git
    /// repositories found in them and the local Docker images, in one report.
    Audit(AuditArgs),
    /// Load the eBPF programs and log every open of a watched file, with the process identity.
    Agent(AgentArgs),
    /// List or check detection rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Work with saved JSON reports: merge many hosts' reports into one, or render one again;
    /// or, with `--store URL`, write the key inventory the store holds.
    #[command(args_conflicts_with_subcommands = true)]
    Report {
        #[command(subcommand)]
        command: Option<ReportCommand>,
        #[command(flatten)]
        inventory: InventoryArgs,
    },
    /// Work with the key inventory: `ingest` saved reports into it.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Work with the agent's event logs.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Move the literal keys of MCP configs into a local store and make each config refer to
    /// them in its client's own syntax (or start the server through a wrapper that loads
    /// them). A dry run that prints a redacted diff unless `--apply`.
    Fix(FixArgs),
    /// Install the git pre-commit hook that blocks a commit holding a key.
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
    /// Revoke a key at its provider, for providers that document a call by which a key
    /// revokes itself. Reports hold no secret: the targets are scanned again to find the key
    /// with FINGERPRINT. Asks on a terminal; `--yes` otherwise. Prints one JSON line; exits 0
    /// revoked, 1 not revoked (the provider refused, or could not be asked), 2 not found or
    /// unsupported.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RevokeArgs {
    /// The key's fingerprint, from a report (`hmac-sha256:…`).
    #[arg(value_name = "FINGERPRINT")]
    pub fingerprint: String,
    /// Where the key is (as for `detector scan`).
    #[arg(value_name = "TARGET", value_parser = Target::parse, required = true)]
    pub targets: Vec<Target>,
    /// Revoke without asking.
    #[arg(long)]
    pub yes: bool,
    /// A directory of extra rule files (*.toml) with their verifiers.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// The org key that fingerprints are keyed with (as for `detector scan`).
    #[arg(long, value_name = "FILE")]
    pub org_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub connection: VerifyConnection,
}

#[derive(Args, Debug, Clone)]
pub struct FixArgs {
    /// Configs to fix: `mcp:[HOME]` (every MCP config of that home) or `file:CONFIG`.
    /// Repeatable. Default: `$HOME`'s configs and the project configs of the current
    /// directory.
    #[arg(value_name = "TARGET", value_parser = Target::parse)]
    pub targets: Vec<Target>,
    /// Write the changes. Without it nothing is changed: the diff is printed, keys redacted.
    #[arg(long)]
    pub apply: bool,
    /// Where the keys go: `env-file[:PATH]` (one file per user, mode 0600, outside any git
    /// work tree; default `HOME/.config/detector/keys.env`), `pass`, or `secret-tool`.
    #[arg(long, default_value = "env-file", value_name = "STORE")]
    pub to: String,
    /// Where the client can prompt for a key (VS Code's `${input:…}`), refer to a prompt:
    /// the client asks once and keeps the key in its own secret storage (the key is stored
    /// with `--to` as well, to paste from).
    #[arg(long)]
    pub prompt: bool,
    /// Where wrapper scripts go (default: `$XDG_DATA_HOME/detector/wrappers`).
    #[arg(long, value_name = "DIR")]
    pub wrapper_dir: Option<PathBuf>,
    /// The org key that fingerprints are keyed with (as for `detector scan`).
    #[arg(long, value_name = "FILE")]
    pub org_key_file: Option<PathBuf>,
}

/// `--verify` and how it asks.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Ask each key's provider whether it still works: one read-only HTTPS request per key
    /// whose rule has a verifier (`detector rules list` shows which), to the provider's own
    /// host. Off by default: without it nothing leaves the host.
    #[arg(long)]
    pub verify: bool,
    /// With --verify: also try to log in with database URLs' passwords (they point at
    /// private hosts, so only when asked).
    #[arg(long, requires = "verify")]
    pub verify_network: bool,
    /// With --verify: report only the keys their provider says are active.
    #[arg(long, requires = "verify")]
    pub only_verified: bool,
    /// How long a provider's answer is remembered, by fingerprint, in
    /// `$XDG_CACHE_HOME/detector/verify.json` (`24h`, `30m`; `0s`: always ask).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub verify_ttl: std::time::Duration,
    /// Ask again, whatever the cache holds.
    #[arg(long)]
    pub verify_refresh: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub verify_concurrency: usize,
    /// Requests in flight at once to one provider host.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub verify_per_host: usize,
    /// All verification ends after this long; keys not asked by then are `unknown`.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub verify_budget: std::time::Duration,
    #[command(flatten)]
    pub connection: VerifyConnection,
}

/// How requests to providers connect: shared by `--verify` and `detector revoke`.
#[derive(Args, Debug, Clone)]
pub struct VerifyConnection {
    /// Send requests for HOST:PORT to ADDR (as curl's --resolve; HOST may be `*`; ADDR may
    /// carry its own port). The hostname, SNI and headers stay the provider's. Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR[:ADDRPORT]")]
    pub verify_resolve: Vec<crate::verify::Resolve>,
    /// Trust the CA certificates in this PEM file too (a corporate proxy's). `HTTPS_PROXY`
    /// is honoured.
    #[arg(long, value_name = "FILE")]
    pub verify_ca: Option<PathBuf>,
    /// Give up on one request after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub verify_timeout: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Write a `pre-commit` hook running `detector scan git:. --staged` into this repository's
    /// hooks directory (`core.hooksPath` honoured), or with `--global` into the global one.
    Install {
        /// Install into the global hooks path (`git config --global core.hooksPath`, set to
        /// `~/.config/git/hooks` when unset): every repository of the user runs it.
        #[arg(long)]
        global: bool,
        /// Replace an existing `pre-commit` hook.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Join reports of many hosts and CI jobs into one org-wide map: a key shared across
    /// reports (same fingerprint, same org key) becomes one entry with every location, and
    /// its status is recomputed (live anywhere is live).
    Merge {
        /// Reports saved with `--format json`.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
        /// Rotation policy for the merged keys' `overdue`.
        #[arg(long, default_value_t = 90, value_name = "N")]
        max_age_days: u64,
        #[command(flatten)]
        gate: GateArgs,
        /// Keep the secrets in clear of reports saved with `--show-secrets` (left out by
        /// default: what was shown once is not shown again unless asked).
        #[arg(long)]
        show_secrets: bool,
    },
    /// Render a saved JSON report in another format.
    Render {
        /// A report saved with `--format json`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        gate: GateArgs,
        /// Show the secrets in clear of a report saved with `--show-secrets` (left out by
        /// default).
        #[arg(long)]
        show_secrets: bool,
    },
}

/// `detector report --store URL`: the inventory, every key over every recorded run.
#[derive(Args, Debug, Clone)]
pub struct InventoryArgs {
    /// The inventory to read: `sqlite:PATH` or `postgres://USER@HOST/DB`.
    #[arg(long, value_name = "URL", env = "DETECTOR_STORE")]
    pub store: Option<String>,
    /// Only the runs of this last period (`30d`, `12w`): what they saw, fixed and reopened.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub since: Option<std::time::Duration>,
    /// Only the keys of this project (as the report's `scope.projects` names it). Repeatable.
    #[arg(long, value_name = "PROJECT")]
    pub project: Vec<String>,
    /// `json` (the inventory, `detector/inventory/v1`) or `text` (default: text on a
    /// terminal, json elsewhere).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write it here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Forget runs older than `--keep-days` (their sightings and states), and the keys and
    /// places only they held; never a key that is still open, whose every run is kept.
    Prune {
        /// Keep the runs of the last N days.
        #[arg(long, value_name = "N")]
        keep_days: u32,
        /// The inventory: `sqlite:PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, value_name = "URL", env = "DETECTOR_STORE")]
        store: String,
    },
    /// Record saved JSON reports (`--format json`, `report merge` output, a spool file of a
    /// run the store missed) as runs, and the agent's JSON-lines logs (their hash chains
    /// checked: each break is kept and said as `log verify` says it). The same file twice
    /// changes nothing. Exit 0, 1 when a log's chain is broken, 2 when a file cannot be taken.
    Ingest {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The inventory: `sqlite:PATH` or `postgres://USER@HOST/DB`.
        #[arg(long, value_name = "URL", env = "DETECTOR_STORE")]
        store: String,
        /// The host of agent records that name none (logs of agents before records had a
        /// `host`); default: the host the file's other records name.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
}

/// Baseline and failure threshold for commands that read saved reports.
#[derive(Args, Debug, Clone)]
pub struct GateArgs {
    /// Leave out the keys of this baseline (or saved report), counting them as suppressed.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 when a key at or above this severity remains (default: exit 0 whatever the
    /// report holds).
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Check the hash chain of event logs: exit 0 when intact, 1 when a record was removed,
    /// altered or moved (each place is named), 2 when a file cannot be read.
    Verify {
        /// The log and its rotated files, in any order (e.g. `events.jsonl*`): they are
        /// taken in the order of their records' seq.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// What to scan: `dir:PATH`, `file:PATH`, `git:PATH`, `mcp:[HOME]`, `docker:NAME[:TAG]`,
    /// `docker-archive:PATH`, `oci-dir:PATH`, `oci-archive:PATH`, `container:NAME`, `containers:[running|stopped]`, or a bare path.
    #[arg(required = true, value_name = "TARGET", value_parser = Target::parse)]
    pub targets: Vec<Target>,
    /// git: scan only what `git commit` would record (the index's changes against HEAD),
    /// as a pre-commit hook does.
    #[arg(long, conflicts_with = "since_commit")]
    pub staged: bool,
    /// git: scan only what the commits after REV (up to HEAD) brought in, as a pull-request
    /// job does (the same as `git:PATH@REV..HEAD`).
    #[arg(long, value_name = "REV")]
    pub since_commit: Option<String>,
    #[command(flatten)]
    pub scan: ScanOptions,
}

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Audit these home directories instead of every home on the host (when root) or
    /// `$HOME`. Repeatable.
    #[arg(long = "home", value_name = "DIR")]
    pub homes: Vec<PathBuf>,
    /// Leave out the local Docker daemon's images.
    #[arg(long)]
    pub no_images: bool,
    /// Leave out the local Docker daemon's containers (their environment, command lines,
    /// labels and mounted files).
    #[arg(long)]
    pub no_containers: bool,
    /// Do not record this audit in the host's key inventory (recorded by default: root's
    /// under /var/lib/detector, else under the XDG data directory; `--store` names another).
    #[arg(long, conflicts_with = "store")]
    pub no_store: bool,
    /// Walk the homes' tool-managed trees too (toolchains, package registries and caches such
    /// as `.rustup/toolchains`, `.cargo/registry`, `node_modules`), which are left out by
    /// default: gigabytes of downloaded code, and no place a person keeps a key.
    #[arg(long)]
    pub all_files: bool,
    /// More targets to scan with the host's (as for `detector scan`).
    #[arg(value_name = "TARGET", value_parser = Target::parse)]
    pub targets: Vec<Target>,
    #[command(flatten)]
    pub scan: ScanOptions,
}

/// What `scan` and `audit` share: output, rules, policy, baseline, access logs.
#[derive(Args, Debug, Clone)]
pub struct ScanOptions {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Print secrets in clear. Off by default: reports carry fingerprints and redacted previews.
    #[arg(long)]
    pub show_secrets: bool,
    /// Agent events (JSON lines, `detector agent --events`) to join: each key lists the
    /// processes that opened a file holding it. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub access_log: Vec<PathBuf>,
    /// Leave out the keys of this baseline (or saved JSON report): they are counted in
    /// `summary.suppressed` and never fail the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Record the run in this key inventory (`sqlite:PATH`, `postgres://USER@HOST/DB`) and
    /// say what changed since its last run of the same targets. `audit` records by default
    /// (in `DETECTOR_STORE` when set, else in the host's inventory).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Record every key of this run (by fingerprint) as a baseline in FILE.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// A directory of extra rule files (*.toml), added to the built-in rules.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Exit 2 when anything could not be read or was cut short (any entry in a target's
    /// `errors`), for CI that must prove full coverage.
    #[arg(long)]
    pub strict: bool,
    /// Exit 1 when a key at or above this severity is found.
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,
    /// Rotation policy: a live key older than this is overdue.
    #[arg(long, default_value_t = 90, value_name = "N")]
    pub max_age_days: u64,
    /// Skip files larger than this (archives excepted: their limits are below); archive
    /// members larger than this are skipped too. Sizes take K, M, G suffixes (powers of 1024).
    #[arg(long, default_value = "50M", value_parser = parse_size, value_name = "SIZE")]
    pub max_file_size: u64,
    /// dir: honour `.gitignore` files (off by default: ignored files are where secrets hide).
    #[arg(long)]
    pub respect_gitignore: bool,
    /// dir: leave out paths matching this glob (gitignore syntax, relative to the scanned
    /// directory; `node_modules`, `*.log`, `/build`). Repeatable. A `.detectorignore` file
    /// (gitignore syntax) at the root or in any subdirectory excludes paths too.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Stop reading an archive (with everything nested in it) once it has expanded to this
    /// many bytes; the stop is reported and the scan goes on.
    #[arg(long, default_value = "1G", value_parser = parse_size, value_name = "SIZE")]
    pub max_archive_bytes: u64,
    /// Stop reading an archive, or an image layer, once it has expanded to more than this
    /// many times its stored size (checked after the first 4 MiB): decompression bombs.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_archive_ratio: u64,
    /// Stop reading an archive after this many members (all nesting levels together).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_archive_members: u64,
    /// Open archives nested this many levels deep (1: only archives found as files; 0: do
    /// not open archives).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub max_archive_depth: usize,
    /// Skip git blobs larger than this (they are counted in the report). Sizes take K, M, G
    /// suffixes (powers of 1024).
    #[arg(long, default_value = "50M", value_parser = parse_size, value_name = "SIZE")]
    pub max_blob_size: u64,
    /// Images: scan only the image of this platform in a multi-platform index (default:
    /// every image).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Scanning threads (default: one per CPU core).
    #[arg(long, value_name = "N")]
    pub threads: Option<std::num::NonZeroUsize>,
    /// The org key that fingerprints are keyed with (default: `$DETECTOR_ORG_KEY`, else
    /// `$XDG_CONFIG_HOME/detector/org.key`, created on first use). Share it across hosts to
    /// get the same fingerprint for the same key everywhere.
    #[arg(long, value_name = "FILE")]
    pub org_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// A command-line value that is not what its flag takes.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a size (e.g. 1048576, 512K, 50M, 1G)")]
    NotASize(String),
    #[error("`{0}` is too large")]
    TooLarge(String),
    #[error("`{0}` is not a number of KiB")]
    NotKib(String),
    #[error("{0} KiB is not a power of two from 4 to 2097152 (the ring buffer is whole pages)")]
    RingBuffer(u32),
}

/// `1048576`, `1024K`, `50M`, `1G` (powers of 1024; a trailing `B`/`iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        Some('t') => (&lower[..lower.len() - 1], 40),
        _ => (lower, 0),
    };
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| ValueError::NotASize(text.to_string()))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| ValueError::TooLarge(text.to_string()))
}

/// A ring buffer size in KiB: a power of two, at least 4 (a page), at most 4 GiB in bytes.
pub fn parse_ring_buffer_kib(text: &str) -> Result<u32, ValueError> {
    let kib: u32 = text
        .trim()
        .parse()
        .map_err(|_| ValueError::NotKib(text.to_string()))?;
    if kib < 4 || !kib.is_power_of_two() || kib.checked_mul(1024).is_none() {
        return Err(ValueError::RingBuffer(kib));
    }
    Ok(kib)
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Report format (default: text on a terminal, json in a pipe or file).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Text output: list every object not scanned, with its path and reason (by default
    /// they are counted by reason).
    #[arg(long)]
    pub coverage: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Grouped by key, coloured on a terminal.
    Text,
    /// The v1 report (`schema/report-v1.json`): what merge, render and baselines read.
    Json,
    /// SARIF 2.1.0 for code scanning (GitHub).
    Sarif,
    /// For pull-request comments and audit binders.
    Markdown,
    /// One self-contained page with charts, timelines and filters.
    Html,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailOn {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Print the rules (built-in plus `--rules DIR`).
    List {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Prove every example and counter-example of the rules in DIR (default: the built-in rules).
    Check { dir: Option<PathBuf> },
}

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Watch exactly these files (default: what the policy names, in every home on the host).
    #[arg(long, value_name = "PATH", num_args = 1..)]
    pub watch: Vec<PathBuf>,
    /// The policy: file groups and their allowed readers (default: the built-in
    /// `deploy/policy.toml`).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Parse a policy, explain it and list what it would watch on this host; then exit.
    #[arg(long, value_name = "FILE", conflicts_with = "policy")]
    pub check_policy: Option<PathBuf>,
    /// Watch these home directories instead of every home on the host (e.g. the host's homes
    /// as mounted into a container). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub home: Vec<PathBuf>,
    /// The org key for the fingerprints of `config-change` records (as for `detector scan`).
    #[arg(long, value_name = "FILE")]
    pub org_key_file: Option<PathBuf>,
    /// Where the JSON-lines events go: a file (appended, rotated, its hash chain continued
    /// across restarts) or `-` for standard output. Repeatable (one FILE at most); with
    /// neither --events nor --syslog, standard output.
    #[arg(long, value_name = "FILE|-")]
    pub events: Vec<String>,
    /// Rotate the events file before it grows past this size (0: never): FILE becomes
    /// FILE.1, FILE.1 becomes FILE.2, and so on. Sizes take K, M, G suffixes (powers of 1024).
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "SIZE")]
    pub rotate_size: u64,
    /// Rotated events files to keep (FILE.1 … FILE.N); older ones are deleted.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rotate_keep: u32,
    /// Send every record to syslog as RFC 5424 (the JSON line is the message):
    /// `unix:/dev/log`, `udp:HOST:PORT` or `tcp:HOST:PORT` (octet-counted framing).
    /// Repeatable, and combines with --events.
    #[arg(long, value_name = "unix:PATH|udp:HOST:PORT|tcp:HOST:PORT")]
    pub syslog: Vec<String>,
    /// Syslog facility of the records (alerts, gaps and a missed canary are `warning`, the
    /// rest `info`).
    #[arg(long, value_enum, default_value_t = SyslogFacility::Authpriv, value_name = "FACILITY")]
    pub syslog_facility: SyslogFacility,
    /// Seconds between heartbeat records.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub heartbeat_secs: u64,
    /// Size of the kernel-to-user ring buffer, in KiB (a power of two, at least 4). Its memory
    /// is mapped twice into the agent, so it counts double in resident memory. The default
    /// holds a burst of 100,000 opens with nothing lost on a 2-core machine.
    #[arg(long, default_value_t = 2048, value_parser = parse_ring_buffer_kib, value_name = "KIB")]
    pub ring_buffer_kib: u32,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// The --watch paths are inside this running Docker container (its name or id): each is
    /// watched through the container's root (`/proc/PID/root/PATH`) and named by its path
    /// there; when the container stops, a `container-exit` record says so and its watches
    /// end. A container the daemon does not know is an error (exit 2).
    #[arg(
        long,
        value_name = "NAME|ID",
        requires = "watch",
        conflicts_with = "container_pid"
    )]
    pub container: Option<String>,
    /// As --container, for a container of any runtime: the --watch paths are seen through
    /// this process's root (give the container's init process); when it exits, the watches
    /// end with a `container-exit` record.
    #[arg(long, value_name = "PID", requires = "watch")]
    pub container_pid: Option<u32>,
}

/// Syslog facilities (RFC 5424 §6.2.1) that suit a security agent.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogFacility {
    User,
    Daemon,
    Auth,
    Authpriv,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}
