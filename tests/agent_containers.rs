//! The agent and containers, on the real kernel and a real Docker daemon (the kit's own):
//! opens by processes inside containers name the container, files inside a container are
//! watched through its root, and reads of an MCP server's `/proc/PID/environ` name both
//! processes.
//!
//! Needs root, BPF, BTF and Docker. Elsewhere these tests skip with a reason; under `CI=true`
//! a missing prerequisite fails them.
use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use kit::{docker::Daemon, guard::kernel_available};
use serde_json::Value;

use crate::{
    agent::{opens_by, run_cat, run_opener, write_policy, Agent},
    DETECTOR,
};

/// The kit's daemon, when the kernel tests can run too.
fn daemon() -> Option<&'static Daemon> {
    if !kernel_available() {
        return None;
    }
    kit::docker::daemon()
}

/// `docker ARGS…`, which must succeed; its standard output, trimmed.
fn docker(daemon: &Daemon, args: &[&str]) -> String {
    let out = daemon.docker(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container that removes itself when the test ends, however it ends.
struct Running<'a> {
    daemon: &'a Daemon,
    name: String,
    id: String,
}

impl<'a> Running<'a> {
    fn start(daemon: &'a Daemon, name: &str, args: &[&str]) -> Running<'a> {
        let name = format!("{name}-{}", std::process::id());
        let _ = daemon.docker(&["rm", "-f", &name]).output();
        let mut all = vec!["run", "-d", "--network", "none", "--name", &name];
        all.extend_from_slice(args);
        let id = docker(daemon, &all);
        assert_eq!(id.len(), 64, "a container id: {id}");
        Running { daemon, name, id }
    }

    /// `docker exec NAME ARGS…`, which must succeed.
    fn exec(&self, args: &[&str]) {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        docker(self.daemon, &all);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.daemon.docker(&["rm", "-f", &self.name]).output();
    }
}

/// Waits for a record that `found` accepts.
fn wait_for(agent: &Agent, limit: Duration, found: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(record) = agent.records().into_iter().find(|r| found(r)) {
            return record;
        }
        assert!(Instant::now() < deadline, "no such record within {limit:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

fn opens_of<'a>(records: &'a [Value], file: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "open" && r["file"] == file)
        .collect()
}

#[test]
fn a_bind_mounted_file_read_in_a_container_names_the_container_and_its_pod() {
    let Some(daemon) = daemon() else { return };
    let image = daemon.busybox();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    fs::write(&env_file, "LOG_LEVEL=debug\n").unwrap();
    let volume = format!("{}:/app/.env", env_file.display());
    let plain = Running::start(
        daemon,
        "detector-agent-bind",
        &["-v", &volume, image, "sleep", "600"],
    );
    let pod = Running::start(
        daemon,
        "detector-agent-pod",
        &[
            "--label",
            "io.kubernetes.pod.name=api-7d9f",
            "--label",
            "io.kubernetes.pod.namespace=payments",
            "--label",
            "io.kubernetes.container.name=api",
            "-v",
            &volume,
            image,
            "sleep",
            "600",
        ],
    );
    let agent = Agent::start_in_env(&[&env_file], &[], &[("DOCKER_HOST", &daemon.host)]);
    plain.exec(&["cat", "/app/.env"]);
    pod.exec(&["cat", "/app/.env"]);
    let records = agent.stop();

    let file = env_file.display().to_string();
    let opens = opens_of(&records, &file);
    let by = |id: &str| {
        opens
            .iter()
            .find(|r| r["container"]["id"] == id)
            .unwrap_or_else(|| panic!("no open by container {id}: {opens:#?}"))
    };
    let open = by(&plain.id);
    assert_eq!(open["container"]["name"], plain.name.as_str());
    assert_eq!(open["container"]["image"], image);
    assert_eq!(open["container"]["runtime"], "docker");
    assert!(open["container"]["pod"].is_null(), "{open}");
    // The container's path (the host has a /bin/cat of its own that must not be named).
    assert!(
        ["/bin/cat", "/bin/busybox"].contains(&open["exe"].as_str().unwrap()),
        "{open}"
    );
    let open = by(&pod.id);
    assert_eq!(open["container"]["pod"], "api-7d9f");
    assert_eq!(open["container"]["namespace"], "payments");
    assert_eq!(open["container"]["name"], "api");
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for record in &records {
        assert_eq!(record["host"], host.trim(), "every record names the host");
    }
}

#[test]
fn a_file_inside_a_container_is_watched_until_the_container_stops() {
    let Some(daemon) = daemon() else { return };
    let image = daemon.busybox();
    let inside = Running::start(
        daemon,
        "detector-agent-inside",
        &[
            image,
            "sh",
            "-c",
            "echo LOG_LEVEL=debug > /app/.env && exec sleep 600",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon
        .docker(&["exec", &inside.name, "test", "-f", "/app/.env"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the container never wrote its file"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let agent = Agent::start_in_env(
        &[Path::new("/app/.env")],
        &["--container", &inside.name],
        &[("DOCKER_HOST", &daemon.host)],
    );
    let ready = wait_for(&agent, Duration::from_secs(5), |r| r["type"] == "ready");
    assert_eq!(ready["watched"][0]["file"], "/app/.env", "{ready}");
    assert_eq!(ready["watched"][0]["container"]["id"], inside.id.as_str());
    // The same file by the container's init process, as any runtime's container is given.
    let init_pid = docker(daemon, &["inspect", "-f", "{{.State.Pid}}", &inside.name]);
    let by_pid = Agent::start_in_env(
        &[Path::new("/app/.env")],
        &["--container-pid", &init_pid],
        &[("DOCKER_HOST", &daemon.host)],
    );
    inside.exec(&["cat", "/app/.env"]);
    for agent in [&agent, &by_pid] {
        // The agents' own reads of the file (its baseline scan) are each other's opens too.
        let open = wait_for(agent, Duration::from_secs(5), |r| {
            r["type"] == "open" && r["file"] == "/app/.env" && r["comm"] == "cat"
        });
        assert_eq!(open["file_container"]["id"], inside.id.as_str());
        assert_eq!(open["file_container"]["name"], inside.name.as_str());
        assert_eq!(open["container"]["id"], inside.id.as_str(), "{open}");
    }
    docker(daemon, &["kill", &inside.name]);
    for agent in [agent, by_pid] {
        let exit = wait_for(&agent, Duration::from_secs(10), |r| {
            r["type"] == "container-exit"
        });
        assert_eq!(exit["container"]["id"], inside.id.as_str());
        assert_eq!(exit["files"][0], "/app/.env");
        let records = agent.stop();
        let last = records.last().unwrap();
        assert_eq!(last["watched"], 0, "the container's watches are dropped");
    }
}

#[test]
fn a_container_that_does_not_exist_is_one_line_and_exit_2() {
    let Some(daemon) = daemon() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(DETECTOR)
        .args(["agent", "--container", "no-such-container-here"])
        .args(["--watch", "/app/.env", "--events"])
        .arg(dir.path().join("events.jsonl"))
        .env("DOCKER_HOST", &daemon.host)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-such-container-here"), "{stderr}");
}

#[test]
fn a_read_of_an_mcp_servers_environment_names_both_processes() {
    if !kernel_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A project MCP config whose server is `sleep` with an argument nothing else uses.
    let nap = format!("{}.{}", 900 + std::process::id() % 97, std::process::id());
    let config = dir.path().join(".mcp.json");
    let server = serde_json::json!({"mcpServers": {"env-test": {
        "command": "sleep", "args": [nap]}}});
    fs::write(&config, server.to_string()).unwrap();
    let policy = write_policy(
        dir.path(),
        "[[group]]\nname = \"project-configs\"\nmcp_clients = [\"claude-code\"]\n\n\
         [[group]]\nname = \"server-environment\"\nmcp_server_environ = true\n\
         allow = [{ exe = \"**/cat\" }]\n",
    );
    let agent = Agent::start_with(&[&config], &["--policy", policy.to_str().unwrap()]);
    // The key the server is started with, made here (never whole in the source).
    let key = format!("sk-{}-{}", "proj", "Zq8".repeat(12));
    let mut server = Command::new("sleep")
        .arg(&nap)
        .env("EXAMPLE_API_KEY", &key)
        .spawn()
        .unwrap();
    let server_pid = server.id();
    let environ = format!("/proc/{server_pid}/environ");
    // The agent pins the environment once it has seen the exec: read until it reports.
    let deadline = Instant::now() + Duration::from_secs(10);
    let reader = loop {
        let pid = run_opener(&["path", &environ]);
        thread::sleep(Duration::from_millis(100));
        if agent
            .records()
            .iter()
            .any(|r| r["type"] == "open" && r["pid"] == pid)
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no read of {environ} reported");
    };
    let cat_pid = run_cat(Path::new(&environ));
    thread::sleep(Duration::from_millis(200));
    let _ = server.kill();
    let _ = server.wait();
    let records = agent.stop();

    let alerted = opens_by(&records, reader);
    assert_eq!(alerted.len(), 1, "{alerted:#?}");
    let open = alerted[0];
    assert_eq!(open["file"], environ.as_str());
    assert_eq!(open["verdict"], "alert");
    assert_eq!(open["policy_rule"], "server-environment");
    assert_eq!(open["target"]["pid"], server_pid);
    assert_eq!(open["target"]["mcp_server"], "env-test");
    assert!(open["target"]["exe"].as_str().unwrap().ends_with("sleep"));
    assert_eq!(open["target"]["cmdline"][1], nap.as_str());
    let allowed = opens_by(&records, cat_pid);
    assert_eq!(allowed.len(), 1, "{allowed:#?}");
    assert_eq!(allowed[0]["verdict"], "allow");
    assert_eq!(allowed[0]["policy_rule"], "server-environment/allow[0]");
    for record in &records {
        assert!(!record.to_string().contains(&key), "a secret in {record}");
    }
}
