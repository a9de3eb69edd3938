//! The eBPF open watcher on the real kernel: the real `detector agent` binary watches a file,
//! child processes open it in every way a path can name it, and the JSON lines must say
//! exactly who did.
//!
//! Needs root, BPF and BTF. Elsewhere these tests skip with a reason; under `CI=true` a
//! missing prerequisite fails them.
use std::{
    ffi::CString,
    fs,
    io::{BufRead, BufReader},
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use kit::guard::kernel_available;
use serde_json::Value;

use crate::DETECTOR;

/// Set in a child process of this test binary: what to open, then exit.
const OPENER_ENV: &str = "DETECTOR_TEST_OPENER";

/// The body of the child processes, run by the `opener` test (see `main.rs`). This test
/// binary re-runs itself with `--exact opener` and `DETECTOR_TEST_OPENER` set, so the children
/// are real processes with a known exe, cmdline and parent, and each opens the file exactly
/// as asked; without the variable it returns at once.
pub fn opener() {
    let Ok(spec) = std::env::var(OPENER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(3, '\t').collect();
    let result = match parts.as_slice() {
        ["path", path] => open_path(path),
        ["cwd", dir, name] => {
            std::env::set_current_dir(dir).unwrap();
            open_path(name)
        }
        ["dirfd", dir, name] => with_dirfd(
            dir,
            |dirfd, name| {
                // SAFETY: valid fd and C string.
                unsafe { libc::openat(dirfd, name.as_ptr(), libc::O_RDONLY) as i64 }
            },
            name,
        ),
        ["openat2", dir, name] => with_dirfd(
            dir,
            |dirfd, name| {
                let how = OpenHow {
                    flags: libc::O_RDONLY as u64,
                    mode: 0,
                    resolve: 0,
                };
                // SAFETY: the openat2 ABI: dirfd, path, struct open_how, its size.
                unsafe {
                    libc::syscall(
                        libc::SYS_openat2,
                        dirfd,
                        name.as_ptr(),
                        &how,
                        size_of::<OpenHow>(),
                    )
                }
            },
            name,
        ),
        ["open", path] => {
            let path = CString::new(*path).unwrap();
            // SAFETY: the legacy open(2) syscall with a valid C string.
            unsafe { libc::syscall(libc::SYS_open, path.as_ptr(), libc::O_RDONLY) }
        }
        ["repeat", path, count] => {
            let path = CString::new(*path).unwrap();
            for _ in 0..count.parse::<u64>().unwrap() {
                // SAFETY: valid C string; the fd is closed at once.
                let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
                assert!(fd >= 0);
                // SAFETY: our own fd.
                unsafe { libc::close(fd) };
            }
            0
        }
        ["many", dir, count] => {
            for i in 0..count.parse::<u64>().unwrap() {
                drop(fs::File::open(Path::new(dir).join(format!("f{i}"))).unwrap());
            }
            0
        }
        other => panic!("unknown opener spec {other:?}"),
    };
    assert!(
        result >= 0,
        "open failed: {}",
        std::io::Error::last_os_error()
    );
    // Exit at once, before the harness prints anything: the agent must still name us.
    std::process::exit(0);
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn open_path(path: &str) -> i64 {
    let path = CString::new(path).unwrap();
    // SAFETY: valid C string (glibc's open is the openat syscall with AT_FDCWD).
    unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) as i64 }
}

fn with_dirfd(dir: &str, open: impl Fn(i32, &CString) -> i64, name: &str) -> i64 {
    let c_dir = CString::new(dir).unwrap();
    // SAFETY: valid C string.
    let dirfd = unsafe { libc::open(c_dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(dirfd >= 0);
    open(dirfd, &CString::new(name).unwrap())
}

/// Runs this binary as an opener child; returns its pid.
pub(crate) fn run_opener(spec: &[&str]) -> u32 {
    run_opener_with_env(spec, &[])
}

/// [`run_opener`] with more variables in the child's environment.
pub fn run_opener_with_env(spec: &[&str], env: &[(&str, &str)]) -> u32 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "opener", "--nocapture", "--test-threads=1"])
        .env(OPENER_ENV, spec.join("\t"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "opener {spec:?} failed");
    pid
}

pub(crate) struct Agent {
    child: Child,
    events: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(watch: &[&Path]) -> Agent {
        Agent::start_with(watch, &[])
    }

    pub(crate) fn start_with(watch: &[&Path], options: &[&str]) -> Agent {
        Agent::start_in_env(watch, options, &[])
    }

    /// [`Agent::start_with`], with more variables in the agent's environment.
    pub(crate) fn start_in_env(watch: &[&Path], options: &[&str], env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl");
        let mut command = Command::new(DETECTOR);
        // One file: rotation has tests of its own (agent_log.rs).
        command
            .arg("agent")
            .args(options)
            .args(["--rotate-size", "0", "--events"])
            .arg(&events);
        if !watch.is_empty() {
            command.arg("--watch").args(watch);
        }
        let child = command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut agent = Agent {
            child,
            events,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !agent.records().iter().any(|r| r["type"] == "ready") {
            if let Some(status) = agent.child.try_wait().unwrap() {
                panic!("the agent exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "agent never printed ready");
            thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub(crate) fn records(&self) -> Vec<Value> {
        let Ok(file) = fs::File::open(&self.events) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.ends_with('}'))
            .map(|l| serde_json::from_str(&l).expect("every line is JSON"))
            .collect()
    }

    /// SIGINT, wait, and every record written.
    pub(crate) fn stop(mut self) -> Vec<Value> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "agent exited with {status}");
        let records = self.records();
        let last = records.last().expect("records");
        assert_eq!(last["type"], "heartbeat");
        assert_eq!(last["final"], true);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record["seq"], (i + 1) as u64, "seq is contiguous");
            assert!(record["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        }
        records
    }
}

impl Drop for Agent {
    /// A failed test must not leave its agent running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory holding `NAME`, an empty JSON config to watch.
fn empty_config(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join(name);
    fs::write(&watched, "{}").unwrap();
    (dir, watched)
}

pub(crate) fn opens_by(records: &[Value], pid: u32) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["type"] == "open" && r["pid"] == pid)
        .collect()
}

fn canonical_test_exe() -> String {
    fs::canonicalize(std::env::current_exe().unwrap())
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn every_way_of_naming_a_watched_file_is_one_open_event() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let watched = root.join("mcp.json");
    fs::write(&watched, "{\"mcpServers\":{}}").unwrap();
    std::os::unix::fs::symlink(&watched, root.join("symlink.json")).unwrap();
    fs::hard_link(&watched, root.join("hardlink.json")).unwrap();
    let bind = root.join("bind");
    fs::create_dir(&bind).unwrap();
    let agent = Agent::start(&[&watched]);

    let root_str = root.to_str().unwrap();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "absolute path",
            vec!["path".into(), watched.display().to_string()],
            "openat",
        ),
        (
            "relative to the cwd",
            vec!["cwd".into(), root_str.into(), "mcp.json".into()],
            "openat",
        ),
        (
            "through a symlink",
            vec![
                "path".into(),
                root.join("symlink.json").display().to_string(),
            ],
            "openat",
        ),
        (
            "through a hard link",
            vec![
                "path".into(),
                root.join("hardlink.json").display().to_string(),
            ],
            "openat",
        ),
        (
            "openat with a dirfd",
            vec!["dirfd".into(), root_str.into(), "mcp.json".into()],
            "openat",
        ),
        (
            "openat2",
            vec!["openat2".into(), root_str.into(), "mcp.json".into()],
            "openat2",
        ),
        (
            "legacy open",
            vec!["open".into(), watched.display().to_string()],
            "open",
        ),
    ];
    let mut pids = Vec::new();
    for (name, spec, _) in &cases {
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        pids.push((name, run_opener(&spec)));
    }
    // A bind mount of the directory: same superblock and inode, another path.
    let bind_pid = with_bind_mount(root, &bind, || {
        run_opener(&["path", bind.join("mcp.json").to_str().unwrap()])
    });
    let records = agent.stop();

    let me = std::process::id();
    let exe = canonical_test_exe();
    let ino = fs::metadata(&watched).unwrap().ino();
    let mut all = pids.clone();
    if let Some(pid) = bind_pid {
        all.push((&"through a bind mount", pid));
    }
    for (i, (name, pid)) in all.iter().enumerate() {
        let opens = opens_by(&records, *pid);
        assert_eq!(
            opens.len(),
            1,
            "{name}: exactly one open event, got {opens:#?}"
        );
        let open = opens[0];
        assert_eq!(open["file"], watched.display().to_string(), "{name}");
        assert_eq!(open["ino"], ino, "{name}");
        assert_eq!(open["ppid"], me, "{name}");
        assert_eq!(open["uid"], 0, "{name}");
        assert_eq!(open["gid"], 0, "{name}");
        assert_eq!(open["exe"], exe.as_str(), "{name}");
        assert_eq!(open["access"], "read", "{name}");
        assert!(open["result"].as_i64().unwrap() >= 3, "{name}");
        assert!(open["cgroup_id"].as_u64().unwrap() > 0, "{name}");
        // The harness runs the opener in a thread named after the test: comm and tid are the
        // thread's own, pid is the process's.
        assert_eq!(open["comm"], "opener", "{name}");
        assert_ne!(open["tid"], open["pid"], "{name}");
        let cmdline: Vec<&str> = open["cmdline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            &cmdline[1..],
            ["--exact", "opener", "--nocapture", "--test-threads=1"],
            "{name}"
        );
        let ancestry = open["ancestry"].as_array().unwrap();
        assert_eq!(ancestry[0]["pid"], me, "{name}: parent first in ancestry");
        assert_eq!(ancestry[0]["exe"], exe.as_str(), "{name}");
        if let Some((_, _, syscall)) = cases.get(i) {
            assert_eq!(open["syscall"], *syscall, "{name}");
        }
    }
    let heartbeat = records.last().unwrap();
    assert_eq!(heartbeat["lost"], 0);
    assert_eq!(heartbeat["canary"], "ok");
}

/// Runs `f` with `source` bind-mounted on `target`; None when this host forbids mounts.
fn with_bind_mount<T>(source: &Path, target: &Path, f: impl FnOnce() -> T) -> Option<T> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let (src, dst) = (c(source), c(target));
    // SAFETY: valid C strings; a bind mount has no data argument.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        assert!(
            std::env::var("CI").is_err(),
            "bind mount failed under CI: {err}"
        );
        eprintln!("bind-mount case skipped: {err}");
        return None;
    }
    let result = f();
    // SAFETY: unmounting what we mounted.
    unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
    Some(result)
}

#[test]
fn unwatched_opens_produce_nothing() {
    if !kernel_available() {
        return;
    }
    let (dir, watched) = empty_config("watched.json");
    let others = dir.path().join("others");
    fs::create_dir(&others).unwrap();
    for i in 0..10_000 {
        fs::write(others.join(format!("f{i}")), "x").unwrap();
    }
    let agent = Agent::start(&[&watched]);
    let pid = run_opener(&["many", others.to_str().unwrap(), "10000"]);
    let records = agent.stop();
    assert_eq!(opens_by(&records, pid).len(), 0);
    assert_eq!(records.iter().filter(|r| r["type"] == "open").count(), 0);
}

#[test]
fn a_burst_is_delivered_or_counted_as_lost() {
    burst(&[]);
}

/// A ring buffer far too small for the burst: records are lost, and every one is counted.
#[test]
fn a_burst_into_a_tiny_buffer_counts_every_loss() {
    let lost = burst(&["--ring-buffer-kib", "16"]);
    assert!(
        lost.is_some_and(|lost| lost > 0),
        "a 16 KiB buffer must overflow"
    );
}

/// 100,000 opens of a watched file; returns how many records were lost.
fn burst(options: &[&str]) -> Option<u64> {
    if !kernel_available() {
        return None;
    }
    const BURST: u64 = 100_000;
    let (_dir, watched) = empty_config("burst.json");
    let agent = Agent::start_with(&[&watched], options);
    let pid = run_opener(&["repeat", watched.to_str().unwrap(), &BURST.to_string()]);
    let records = agent.stop();
    let delivered = opens_by(&records, pid).len() as u64;
    let heartbeat = records.last().unwrap();
    let lost = heartbeat["lost_open"].as_u64().unwrap();
    eprintln!("burst of {BURST}: {delivered} delivered, {lost} lost");
    assert_eq!(
        delivered + lost,
        BURST,
        "delivered {delivered} + lost {lost}"
    );
    assert_eq!(heartbeat["events"].as_u64().unwrap(), delivered);
    let gaps: u64 = records
        .iter()
        .filter(|r| r["type"] == "gap")
        .map(|r| r["lost_open"].as_u64().unwrap())
        .sum();
    assert_eq!(gaps, lost, "every loss is announced by a gap record");
    Some(lost)
}

#[test]
fn a_process_that_exits_at_once_is_still_named() {
    if !kernel_available() {
        return;
    }
    let (_dir, watched) = empty_config("quick.json");
    let agent = Agent::start(&[&watched]);
    // /bin/cat runs, opens, exits: by the time its record is read it is gone from /proc.
    let mut pids = Vec::new();
    for _ in 0..5 {
        let mut child = Command::new("/bin/cat")
            .arg(&watched)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        pids.push(child.id());
        child.wait().unwrap();
    }
    let records = agent.stop();
    let cat = fs::canonicalize("/bin/cat").unwrap().display().to_string();
    for pid in pids {
        let opens = opens_by(&records, pid);
        assert_eq!(opens.len(), 1);
        assert_eq!(opens[0]["exe"], cat.as_str());
        assert_eq!(opens[0]["comm"], "cat");
        assert_eq!(
            opens[0]["cmdline"],
            serde_json::json!(["/bin/cat", watched.display().to_string()])
        );
    }
}

#[test]
fn the_agent_refuses_clearly_without_root() {
    if !kernel_available() {
        return;
    }
    let (_dir, watched) = empty_config("x.json");
    // setpriv (util-linux) drops to nobody for this one command.
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            DETECTOR,
            "agent",
            "--watch",
        ])
        .arg(&watched)
        .output()
        .expect("setpriv");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must run as root"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

impl Agent {
    /// Waits until a record satisfies `found`, or fails after `limit`.
    /// The first `config-change` record, which must be written within a second of `written`.
    fn change_within_a_second(&self, written: chrono::DateTime<chrono::Utc>) -> Value {
        let change = self.wait_for(Duration::from_secs(1), |r| r["type"] == "config-change");
        let reported =
            chrono::DateTime::parse_from_rfc3339(change["time"].as_str().unwrap()).unwrap();
        assert!(
            (reported.to_utc() - written).num_milliseconds() < 1000,
            "alert after {reported} for a write at {written}"
        );
        change
    }

    fn wait_for(&self, limit: Duration, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(record) = self.records().into_iter().find(|r| found(r)) {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "no such record in {limit:?}: {:#?}",
                self.records()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `cat PATH`, to the end; its pid.
pub(crate) fn run_cat(path: &Path) -> u32 {
    let mut cat = Command::new("/bin/cat")
        .arg(path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = cat.id();
    assert!(cat.wait().unwrap().success(), "cat {}", path.display());
    pid
}

pub(crate) fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.toml");
    fs::write(&path, text).unwrap();
    path
}

/// Writes `contents` the way editors save: a temporary file renamed over the original.
fn save_by_rename(path: &Path, contents: &str) {
    let temp = path.with_extension("tmp-save");
    fs::write(&temp, contents).unwrap();
    fs::rename(&temp, path).unwrap();
}

#[test]
fn the_policy_judges_readers_and_names_the_mcp_server() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = canonical_test_exe();
    // A project MCP config whose one server is this test binary running the opener: when the
    // opener reads the config, the reader is that server.
    let config = dir.path().join(".mcp.json");
    let server = serde_json::json!({"mcpServers": {"self-test": {
        "command": exe, "args": ["--exact", "opener"]}}});
    fs::write(&config, server.to_string()).unwrap();
    let policy = write_policy(
        dir.path(),
        "[[group]]\nname = \"project-configs\"\nmcp_clients = [\"claude-code\"]\nallow = [{ exe = \"**/cat\" }]\n",
    );
    let agent = Agent::start_with(&[&config], &["--policy", policy.to_str().unwrap()]);
    let cat_pid = run_cat(&config);
    let server_pid = run_opener(&["path", config.to_str().unwrap()]);
    let records = agent.stop();

    let allowed = opens_by(&records, cat_pid);
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["verdict"], "allow");
    assert_eq!(allowed[0]["policy_rule"], "project-configs/allow[0]");
    assert_eq!(allowed[0]["mcp_client"], "claude-code");
    assert!(allowed[0]["mcp_server"].is_null());

    let alerted = opens_by(&records, server_pid);
    assert_eq!(alerted.len(), 1);
    assert_eq!(alerted[0]["verdict"], "alert");
    assert_eq!(alerted[0]["policy_rule"], "project-configs");
    assert_eq!(alerted[0]["mcp_server"], "self-test");
}

#[test]
fn a_saved_config_stays_watched_and_a_new_plaintext_key_alerts_at_once() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".mcp.json");
    let with = |value: &str| {
        serde_json::json!({"mcpServers": {"gh": {"command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": value}}}})
        .to_string()
    };
    fs::write(&config, with("${GITHUB_PERSONAL_ACCESS_TOKEN}")).unwrap();
    let agent = Agent::start_with(&[&config], &["--heartbeat-secs", "3600"]);

    // A reference written in place of a reference: nothing to say.
    save_by_rename(&config, &with("${GH_TOKEN}"));
    thread::sleep(Duration::from_millis(300));
    assert!(!agent.records().iter().any(|r| r["type"] == "config-change"));

    // Keep the current inode allocated (so the save cannot reuse its number), and learn it.
    let old_name = dir.path().join("old-inode.json");
    fs::hard_link(&config, &old_name).unwrap();
    let first_ino = fs::metadata(&config).unwrap().ino();

    // A plaintext key: a config-change alert within a second of the write.
    let secret = ["ghp_", &"Zx9Q".repeat(9)].concat();
    let written = chrono::Utc::now();
    save_by_rename(&config, &with(&secret));
    let change = agent.change_within_a_second(written);
    assert_eq!(change["verdict"], "alert");
    assert_eq!(change["file"], config.display().to_string());
    assert_eq!(change["added"].as_array().unwrap().len(), 1);
    assert!(change["added"][0]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));

    // The rename gave the path a new inode; it is watched.
    let second_ino = fs::metadata(&config).unwrap().ino();
    assert_ne!(first_ino, second_ino);
    let mut cat = Command::new("/bin/cat")
        .arg(&config)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cat_pid = cat.id();
    cat.wait().unwrap();
    // … and the replaced one is not.
    let old_reader = run_opener(&["path", old_name.to_str().unwrap()]);

    // Back to a reference: the key is gone from the file, which is no alert.
    save_by_rename(&config, &with("${GITHUB_PERSONAL_ACCESS_TOKEN}"));
    let back = agent.wait_for(Duration::from_secs(2), |r| {
        r["type"] == "config-change" && r["removed"].as_array().is_some_and(|a| !a.is_empty())
    });
    assert_eq!(back["verdict"], "allow");
    let records = agent.stop();
    let opens = opens_by(&records, cat_pid);
    assert_eq!(opens.len(), 1, "the new inode is watched");
    assert_eq!(opens[0]["ino"], second_ino);
    assert!(
        opens_by(&records, old_reader).is_empty(),
        "the replaced inode is dropped"
    );
    let alerts = records
        .iter()
        .filter(|r| r["type"] == "config-change" && r["verdict"] == "alert")
        .count();
    assert_eq!(alerts, 1);
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains(&secret), "the secret never reaches the log");
}

#[test]
fn the_canary_notices_a_detached_kernel_side() {
    if !kernel_available() {
        return;
    }
    let (_dir, watched) = empty_config("w.json");
    let agent = Agent::start_with(&[&watched], &["--heartbeat-secs", "1"]);
    agent.wait_for(Duration::from_secs(5), |r| {
        r["type"] == "heartbeat" && r["canary"] == "ok"
    });
    // SAFETY: signalling our own child: SIGUSR1 detaches its kernel programs (self-test).
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGUSR1) };
    agent.wait_for(Duration::from_secs(5), |r| {
        r["type"] == "heartbeat" && r["canary"] == "missed"
    });
    let records = agent.stop();
    assert_eq!(records.last().unwrap()["canary"], "missed");
}

#[test]
fn check_policy_explains_and_rejects_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let builtin = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/policy.toml");
    let output = Command::new(DETECTOR)
        .args(["agent", "--check-policy", builtin])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for group in ["claude-desktop", "cursor", "ssh-keys", "dotenv"] {
        assert!(text.contains(&format!("group {group}")), "{text}");
    }
    let bad = write_policy(
        dir.path(),
        "[[group]]\nname = \"x\"\nmcp_clients = [\"no-such-client\"]\n",
    );
    let output = Command::new(DETECTOR)
        .args(["agent", "--check-policy"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-client") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn files_the_policy_names_are_picked_up_when_they_appear() {
    if !kernel_available() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path();
    // The built-in policy, on a home of our own: nothing to watch yet.
    let agent = Agent::start_with(
        &[],
        &[
            "--home",
            home_dir.to_str().unwrap(),
            "--heartbeat-secs",
            "3600",
        ],
    );
    let ready = agent.wait_for(Duration::from_secs(1), |r| r["type"] == "ready");
    assert_eq!(ready["watched"].as_array().unwrap().len(), 0, "{ready}");

    // A client installed later: its config directory and config appear, with a plaintext key.
    fs::create_dir(home_dir.join(".cursor")).unwrap();
    thread::sleep(Duration::from_millis(200));
    let config = home_dir.join(".cursor/mcp.json");
    let secret = ["xoxb-", "5829103746-", "7402958163184-", &"aB3d".repeat(6)].concat();
    let text = serde_json::json!({"mcpServers": {"slack": {"command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-slack"], "env": {"SLACK_BOT_TOKEN": secret}}}});
    save_by_rename(&config, &text.to_string());
    let change = agent.wait_for(Duration::from_secs(2), |r| r["type"] == "config-change");
    assert_eq!(change["file"], config.display().to_string());
    assert_eq!(change["verdict"], "alert");
    assert_eq!(change["mcp_client"], "cursor");
    assert_eq!(change["policy_rule"], "cursor");

    // An SSH key created later is a policy file too.
    fs::create_dir(home_dir.join(".ssh")).unwrap();
    thread::sleep(Duration::from_millis(200));
    let ssh_key = home_dir.join(".ssh/id_ed25519");
    fs::write(&ssh_key, "not really a key").unwrap();
    thread::sleep(Duration::from_millis(300));

    let mut readers = Vec::new();
    for path in [&config, &ssh_key] {
        let mut cat = Command::new("/bin/cat")
            .arg(path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        readers.push(cat.id());
        cat.wait().unwrap();
    }
    // Deleted: dropped (a later reader of a file of that name sees nothing until it returns).
    fs::remove_file(&ssh_key).unwrap();
    let records = agent.stop();
    let config_open = opens_by(&records, readers[0]);
    assert_eq!(config_open.len(), 1);
    assert_eq!(config_open[0]["policy_rule"], "cursor");
    assert_eq!(config_open[0]["verdict"], "alert");
    let key_open = opens_by(&records, readers[1]);
    assert_eq!(key_open.len(), 1);
    assert_eq!(key_open[0]["policy_rule"], "ssh-keys");
    assert!(!serde_json::to_string(&records).unwrap().contains(&secret));
}

#[test]
fn a_home_made_while_the_agent_runs_is_watched() {
    if !kernel_available() {
        return;
    }
    // Every home of the host (no --home), as a deployed agent runs.
    let agent = Agent::start_with(&[], &["--heartbeat-secs", "3600"]);
    let user = kit::accounts::TemporaryUser::create("dtest");
    thread::sleep(Duration::from_millis(300));

    // Claude Code's config in the new home, with a plaintext key.
    let config = user.home.join(".claude.json");
    let secret = ["sk-ant-api03-", &"Qw7_".repeat(23), "AA"].concat();
    let text = serde_json::json!({"mcpServers": {"fetch": {"command": "uvx",
        "args": ["mcp-server-fetch"], "env": {"ANTHROPIC_API_KEY": secret}}}});
    save_by_rename(&config, &text.to_string());
    let change = agent.wait_for(Duration::from_secs(2), |r| {
        r["type"] == "config-change" && r["file"] == config.display().to_string()
    });
    assert_eq!(change["verdict"], "alert", "{change}");
    assert_eq!(change["mcp_client"], "claude-code", "{change}");

    // Its readers are judged like those of any other home.
    let reader = run_opener(&["path", config.to_str().unwrap()]);
    let records = agent.stop();
    let opens = opens_by(&records, reader);
    assert_eq!(opens.len(), 1, "the new home's config is watched");
    assert_eq!(opens[0]["verdict"], "alert");
    assert_eq!(opens[0]["mcp_client"], "claude-code");
    assert!(!serde_json::to_string(&records).unwrap().contains(&secret));
}

#[test]
fn a_key_written_in_place_alerts_within_a_second_and_neighbours_are_no_change() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".mcp.json");
    let with = |value: &str| {
        serde_json::json!({"mcpServers": {"linear": {"command": "npx",
            "args": ["-y", "linear-mcp"], "env": {"LINEAR_API_KEY": value}}}})
        .to_string()
    };
    fs::write(&config, with("${LINEAR_API_KEY}")).unwrap();
    let inode = fs::metadata(&config).unwrap().ino();
    let agent = Agent::start_with(&[&config], &["--heartbeat-secs", "3600"]);

    // Opens and reads of other files in the watched directory are no change.
    let neighbour = dir.path().join("notes.txt");
    fs::write(&neighbour, "x").unwrap();
    for _ in 0..100 {
        fs::read(&neighbour).unwrap();
    }
    // Written in place (same inode, as `>` in a shell or an editor that writes through does).
    let secret = kit::keys::key("lin_api_", kit::keys::ALNUM, 40, 41);
    let written = chrono::Utc::now();
    fs::write(&config, with(&secret)).unwrap();
    assert_eq!(fs::metadata(&config).unwrap().ino(), inode);
    let change = agent.change_within_a_second(written);
    assert_eq!(change["verdict"], "alert");
    assert_eq!(change["file"], config.display().to_string());
    let records = agent.stop();
    let changes: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "config-change")
        .collect();
    assert_eq!(changes.len(), 1, "only the config's change: {changes:?}");
    assert!(!serde_json::to_string(&records).unwrap().contains(&secret));
}
