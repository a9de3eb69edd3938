//! A Docker daemon of the test process's own: private socket, data root and exec root, so it
//! never meets the host's daemon or another run's. Started once per process, on first use, and
//! shared by every test that asks for it.
use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::guard;

pub struct Daemon {
    /// Its directory: socket, data, logs, and room for the tests' build contexts.
    pub dir: PathBuf,
    /// `unix://…/docker.sock`, for `DOCKER_HOST`.
    pub host: String,
}

impl Daemon {
    /// `docker ARGS…` talking to this daemon (classic builder, a client config of its own).
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.join("client"));
        cmd
    }

    /// An image of busybox (static) with its common applets, imported once per process: what
    /// the tests run containers of (this machine pulls nothing).
    pub fn busybox(&self) -> &'static str {
        static IMPORTED: OnceLock<()> = OnceLock::new();
        IMPORTED.get_or_init(|| self.import_busybox());
        BUSYBOX_IMAGE
    }

    fn import_busybox(&self) {
        let busybox =
            fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
        let mut rootfs = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(busybox.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        rootfs
            .append_data(&mut header, "bin/busybox", busybox.as_slice())
            .unwrap();
        for applet in BUSYBOX_APPLETS {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            link.set_mode(0o777);
            rootfs
                .append_link(&mut link, format!("bin/{applet}"), "busybox")
                .unwrap();
        }
        for dir in ["tmp", "app", "run", "etc"] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o1777);
            header.set_cksum();
            rootfs
                .append_data(&mut header, format!("{dir}/"), std::io::empty())
                .unwrap();
        }
        let rootfs = rootfs.into_inner().unwrap();
        let mut import = self
            .docker(&["import", "-", BUSYBOX_IMAGE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut import.stdin.take().unwrap(), &rootfs).unwrap();
        let out = import.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The image [`Daemon::busybox`] imports.
pub const BUSYBOX_IMAGE: &str = "detector-test-busybox:1";

const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "cat", "sleep", "env", "echo", "ls", "rm", "mkdir", "true", "false", "test", "head",
    "dd", "touch", "printf", "kill", "ps", "wc", "grep", "tail",
];

/// The process's daemon, or `None` when this machine cannot run one (skipped, or a failure
/// under `CI=true`: see [`guard::skip`]).
pub fn daemon() -> Option<&'static Daemon> {
    static DAEMON: OnceLock<Option<Daemon>> = OnceLock::new();
    DAEMON
        .get_or_init(|| match start() {
            Ok(daemon) => Some(daemon),
            Err(reason) => {
                guard::skip(&format!("cannot start a Docker daemon: {reason}"));
                None
            }
        })
        .as_ref()
}

fn start() -> Result<Daemon, String> {
    if !guard::is_root() {
        return Err("dockerd needs root".into());
    }
    for tool in ["dockerd", "docker"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!("`{tool}` not found (apt-get install docker.io)"));
        }
    }
    remove_stale_daemon_dirs();
    // Under /tmp: unix socket paths must stay short, whatever the checkout's path.
    let dir = PathBuf::from(format!("/tmp/detector-dockerd-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("client")).map_err(|e| e.to_string())?;
    let socket = dir.join("docker.sock");
    let log = fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("dockerd");
    cmd.args([
        "--storage-driver",
        "vfs",
        "--iptables=false",
        "--bridge=none",
    ])
    .arg("--host")
    .arg(format!("unix://{}", socket.display()))
    .arg("--data-root")
    .arg(dir.join("data"))
    .arg("--exec-root")
    .arg(dir.join("exec"))
    .arg("--pidfile")
    .arg(dir.join("docker.pid"))
    .stdin(Stdio::null())
    .stdout(log.try_clone().map_err(|e| e.to_string())?)
    .stderr(log);
    // SAFETY: prctl is async-signal-safe; the daemon gets SIGTERM when the thread that
    // started it ends, which is when this test process exits (the thread below never ends).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (started, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || match cmd.spawn() {
        Ok(mut child) => {
            let _ = started.send(Ok(()));
            let _ = child.wait();
            // Keep this thread (the daemon's parent) alive until the process exits.
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
        }
    });
    result.recv().map_err(|e| e.to_string())??;
    let daemon = Daemon {
        host: format!("unix://{}", socket.display()),
        dir: dir.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if socket.exists()
            && daemon
                .docker(&["version"])
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return Ok(daemon);
        }
        if Instant::now() > deadline {
            let log = fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            return Err(format!(
                "dockerd did not answer within 60 s: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Daemon directories of test runs whose process is gone.
fn remove_stale_daemon_dirs() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("detector-dockerd-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A stand-in for a Docker daemon on a unix socket, speaking just enough HTTP/1.1: each
/// request's path is answered with what `answer` gives (`"200 OK"` and a JSON body, say), and
/// the connection closed. For what a real daemon will not say (an odd answer, a daemon that
/// knows an image a test wrote byte by byte).
pub fn fake_daemon(
    socket: &Path,
    answer: impl Fn(&str) -> (&'static str, Vec<u8>) + Send + 'static,
) {
    use std::io::{Read, Write};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = answer(&path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
}
