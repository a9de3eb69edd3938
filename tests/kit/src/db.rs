//! Real database servers of a test's own, on loopback: a PostgreSQL cluster made with
//! `initdb` (password authentication, SCRAM) and a Redis server with `requirepass`, each in a
//! temporary directory, stopped when dropped. `cargo xtask setup` installs both (Debian's
//! `postgresql` and `redis-server`); as root, PostgreSQL runs as the `postgres` account,
//! since it refuses to run as root.
use std::{
    ffi::CString,
    fs,
    net::{TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a server may take to listen.
const START: Duration = Duration::from_secs(30);

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16, child: &mut Child, what: &str) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < START {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited: {status}"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{what} did not listen within {START:?}"))
}

/// The newest PostgreSQL server's `bin` directory.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

/// The uid and gid of account `name`.
fn account(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated name; the result is read before any other call.
    let entry = unsafe { libc::getpwnam(c.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: getpwnam returned a valid entry.
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path.
    unsafe { libc::chown(c.as_ptr(), uid, gid) };
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

/// A PostgreSQL cluster of one user, `tester`, whose password is given.
pub struct Postgres {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Made and started; `None` when it cannot run here, after [`crate::guard::skip`] said
    /// why (which fails the test under `CI=true`).
    pub fn start_or_skip(password: &str) -> Option<Postgres> {
        Postgres::start(password)
            .map_err(|reason| crate::guard::skip(&format!("no PostgreSQL server: {reason}")))
            .ok()
    }

    /// Made and started; `Err` says why it cannot run here.
    pub fn start(password: &str) -> Result<Postgres, String> {
        let bin = postgres_bin().ok_or("no PostgreSQL server (cargo xtask setup installs it)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sockets = dir.path().join("sockets");
        let pwfile = dir.path().join("pw");
        fs::create_dir(&sockets).unwrap();
        fs::write(&pwfile, password).unwrap();
        let run_as = if crate::guard::is_root() {
            Some(account("postgres").ok_or("running as root, and no postgres account")?)
        } else {
            None
        };
        if let Some((uid, gid)) = run_as {
            chown_tree(dir.path(), uid, gid);
        }
        let command = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            if let Some((uid, gid)) = run_as {
                cmd.uid(uid).gid(gid);
            }
            cmd.stdin(Stdio::null()).env("LC_ALL", "C");
            cmd
        };
        let init = command("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "tester",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        let port = free_port();
        let mut child = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-k"])
            .arg(&sockets)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        wait_for(port, &mut child, "postgres")?;
        Ok(Postgres {
            port,
            child,
            _dir: dir,
        })
    }

    /// Everything the database holds, as `pg_dump` writes it (to look for what must not be
    /// there).
    pub fn dump(&self, password: &str) -> String {
        let bin = postgres_bin().expect("PostgreSQL is installed: it runs");
        let out = Command::new(bin.join("pg_dump"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tester",
                "postgres",
            ])
            .env("PGPASSWORD", password)
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `postgresql://tester:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self, password: &str) -> String {
        format!(
            "postgresql://tester:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// A Redis server whose default user's password is given.
pub struct Redis {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Started; `Err` says why it cannot run here.
    pub fn start(password: &str) -> Result<Redis, String> {
        let program = crate::run::which("redis-server")
            .ok_or("no redis-server (cargo xtask setup installs it)")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let mut child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--requirepass",
                password,
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        wait_for(port, &mut child, "redis-server")?;
        Ok(Redis {
            port,
            child,
            _dir: dir,
        })
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT/0`.
    pub fn url(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
