//! The agent's log on the real kernel: the real `detector agent` writes hash-chained records
//! to a rotated file and to a real rsyslogd, and `detector log verify` names every place a
//! record was removed, altered or moved.
//!
//! Needs root, BPF and BTF (and rsyslogd for the syslog test). Elsewhere these tests skip
//! with a reason; under `CI=true` a missing prerequisite fails them.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use kit::{
    guard::{kernel_available, skip},
    run::stdout,
};
use serde_json::Value;

use crate::{agent::run_opener_with_env, DETECTOR};

/// In the opener's environment and in the watched file: must never reach a record.
const SECRET_ENV: &str = "DETECTOR_TEST_API_KEY";

/// Opens `path` `count` times from a child process that has the secret in its environment.
fn open_from_child(path: &Path, count: u64, secret: &str) {
    let path = path.to_str().unwrap();
    run_opener_with_env(
        &["repeat", path, &count.to_string()],
        &[(SECRET_ENV, secret)],
    );
}

/// A fake API key, made at run time so that no key-shaped text sits in the source.
fn fake_secret() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("sk-proj-{}", ring_hex(&nanos.to_le_bytes()))
}

fn ring_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A temporary directory with a watched MCP config holding a fresh fake secret, and the
/// path of the events file.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) secret: String,
    pub(crate) watched: PathBuf,
    pub(crate) events: PathBuf,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let secret = fake_secret();
        let watched = watched_file(dir.path(), &secret);
        let events = dir.path().join("events.jsonl");
        Setup {
            dir,
            secret,
            watched,
            events,
        }
    }

    /// One run of the agent writing to `events` with `args`: ready, `opens` opens of the
    /// watched file by a child process, a clean stop.
    pub(crate) fn run(&self, events: &Path, args: &[&str], opens: u64) {
        let agent = Agent::start(&self.watched, events, args);
        open_from_child(&self.watched, opens, &self.secret);
        agent.stop();
    }
}

/// A watched MCP config holding `secret`.
fn watched_file(dir: &Path, secret: &str) -> PathBuf {
    let path = dir.join("mcp.json");
    fs::write(
        &path,
        format!(r#"{{"mcpServers":{{"x":{{"env":{{"OPENAI_API_KEY":"{secret}"}}}}}}}}"#),
    )
    .unwrap();
    path
}

struct Agent {
    child: Child,
    events: PathBuf,
}

impl Agent {
    /// `detector agent --watch WATCHED --events EVENTS ARGS…`, once `ready` is written.
    fn start(watched: &Path, events: &Path, args: &[&str]) -> Agent {
        let before = lines(events).len();
        let child = Command::new(DETECTOR)
            .arg("agent")
            .arg("--watch")
            .arg(watched)
            .arg("--events")
            .arg(events)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut agent = Agent {
            child,
            events: events.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let written = lines(events);
            if written.len() > before
                && written[before..]
                    .iter()
                    .any(|l| l.contains(r#""type":"ready""#))
            {
                break;
            }
            if let Some(status) = agent.child.try_wait().unwrap() {
                panic!("the agent exited before ready: {status}");
            }
            assert!(Instant::now() < deadline, "the agent never wrote ready");
            thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// SIGINT and wait: the agent writes its final heartbeat and exits 0.
    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "agent exited with {status}");
        let last = lines(&self.events).pop().expect("records");
        assert!(last.contains(r#""final":true"#), "{last}");
    }

    /// SIGKILL: no final heartbeat.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// The lines of a file (none when it does not exist).
fn lines(path: &Path) -> Vec<String> {
    let Ok(file) = fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file).lines().map(Result::unwrap).collect()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn verify(files: &[PathBuf]) -> Output {
    Command::new(DETECTOR)
        .args(["log", "verify"])
        .args(files)
        .output()
        .unwrap()
}

/// Every record: contiguous seq from `first`, each `prev` the hash of the line before.
fn assert_chained(lines: &[String], first: u64) {
    let mut prev: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let record = json(line);
        assert_eq!(record["seq"], first + i as u64, "seq of {line}");
        if let Some(prev) = &prev {
            assert_eq!(record["prev"], prev.as_str(), "prev of {line}");
        }
        prev = Some(ring_hex(line.as_bytes()));
    }
}

#[test]
fn verify_names_a_removed_an_altered_and_two_swapped_records() {
    if !kernel_available() {
        return;
    }
    let setup = Setup::new();
    let (dir, secret, events) = (&setup.dir, &setup.secret, &setup.events);
    setup.run(events, &[], 20);

    let original = lines(events);
    assert!(original.len() >= 22, "ready, 20 opens, final heartbeat");
    assert_chained(&original, 1);
    assert!(
        original.iter().all(|l| !l.contains(secret)),
        "a secret reached the log"
    );
    let intact = verify(std::slice::from_ref(events));
    assert_eq!(intact.status.code(), Some(0), "{}", stdout(&intact));
    assert!(
        stdout(&intact).ends_with(": intact\n"),
        "{}",
        stdout(&intact)
    );

    // Indices (0-based) of open records; line i holds seq i + 1.
    let opens: Vec<usize> = (0..original.len())
        .filter(|&i| json(&original[i])["type"] == "open")
        .collect();
    let (removed, altered, swapped) = (opens[3], opens[8], opens[13]);
    assert_eq!(opens[14], swapped + 1);
    let mut tampered = original.clone();
    tampered.swap(swapped, swapped + 1);
    assert!(tampered[altered].contains(r#""uid":0,"#));
    tampered[altered] = tampered[altered].replace(r#""uid":0,"#, r#""uid":1000,"#);
    tampered.remove(removed);
    let path = dir.path().join("tampered.jsonl");
    fs::write(&path, tampered.join("\n") + "\n").unwrap();

    let output = verify(std::slice::from_ref(&path));
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    let f = path.display();
    // Line numbers after the removal: every line past it moved up by one.
    let expected = [
        format!(
            "{f}:{}: seq {} is missing between {f}:{} and here: removed",
            removed + 1,
            removed + 1,
            removed
        ),
        format!(
            "{f}:{}: seq {}: altered: its hash does not match the prev of seq {} ({f}:{})",
            altered,
            altered + 1,
            altered + 2,
            altered + 1
        ),
        format!(
            "{f}:{}: seq {}: out of order: it belongs after seq {} ({f}:{})",
            swapped,
            swapped + 2,
            swapped + 1,
            swapped + 1
        ),
    ];
    let problems: Vec<&str> = report.lines().filter(|l| !l.starts_with("note")).collect();
    assert_eq!(problems[..3], expected, "{report}");
    assert!(problems[3].ends_with(": 3 problems"), "{report}");
}

#[test]
fn an_intact_rotated_log_verifies_in_any_order() {
    if !kernel_available() {
        return;
    }
    const ROTATE_SIZE: u64 = 4096;
    let setup = Setup::new();
    let (dir, events) = (&setup.dir, &setup.events);
    let size = ROTATE_SIZE.to_string();
    setup.run(
        events,
        &["--rotate-size", &size, "--rotate-keep", "1000"],
        300,
    );

    let mut rotated = numbered_files(events);
    assert!(
        rotated.len() >= 10,
        "a burst of 300 opens rotates 4 KiB files"
    );
    // Oldest first: FILE.N … FILE.1, FILE.
    rotated.reverse();
    let files: Vec<PathBuf> = rotated.into_iter().chain([events.clone()]).collect();
    let mut all = Vec::new();
    for file in &files {
        let size = fs::metadata(file).unwrap().len();
        assert!(size <= ROTATE_SIZE, "{} has {size} bytes", file.display());
        let content = lines(file);
        assert!(!content.is_empty(), "{} is empty", file.display());
        all.extend(content);
    }
    assert_chained(&all, 1);
    let opens = all.iter().filter(|l| json(l)["type"] == "open").count();
    assert_eq!(opens, 300);

    let in_order = verify(&files);
    assert_eq!(in_order.status.code(), Some(0), "{}", stdout(&in_order));
    // As a shell glob gives them: events.jsonl, events.jsonl.1, events.jsonl.10, …
    let mut globbed = files.clone();
    globbed.sort();
    let out_of_order = verify(&globbed);
    let report = stdout(&out_of_order);
    assert_eq!(out_of_order.status.code(), Some(0), "{report}");
    assert!(
        report.contains("note: files taken in seq order"),
        "{report}"
    );
    assert!(
        report.ends_with(&format!(
            "{} records in {} files, seq 1..{}: intact\n",
            all.len(),
            files.len(),
            all.len()
        )),
        "{report}"
    );

    // Keeping two: the oldest files are deleted, and what is left still verifies.
    let kept = dir.path().join("kept.jsonl");
    setup.run(&kept, &["--rotate-size", &size, "--rotate-keep", "2"], 100);
    let rotated = numbered_files(&kept);
    assert_eq!(
        rotated
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>(),
        [".1", ".2"].map(|n| format!("{}{n}", kept.display()))
    );
    let output = verify(&[rotated[1].clone(), rotated[0].clone(), kept.clone()]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("note: the chain starts at seq"), "{report}");
}

/// `FILE.1`, `FILE.2`, … as they exist, by number.
fn numbered_files(path: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .take_while(|p| p.exists())
        .collect()
}

#[test]
fn restarting_onto_the_same_file_continues_the_chain_and_writes_a_gap() {
    if !kernel_available() {
        return;
    }
    let setup = Setup::new();
    let (watched, events) = (&setup.watched, &setup.events);
    setup.run(events, &[], 3);
    let first_run = lines(events);
    let final_heartbeat = json(first_run.last().unwrap());

    // A clean restart: the gap spans from the final heartbeat to the new start.
    setup.run(events, &[], 3);
    let both = lines(events);
    assert_chained(&both, 1);
    let gap = json(&both[first_run.len()]);
    assert_eq!(gap["type"], "gap");
    assert_eq!(gap["reason"], "agent was not running");
    assert_eq!(gap["from"], final_heartbeat["time"]);
    assert!(gap["to"].as_str().unwrap() > gap["from"].as_str().unwrap());
    assert_eq!(json(&both[first_run.len() + 1])["type"], "ready");

    // Killed mid-write: no final heartbeat, and half a record at the end of the file.
    let agent = Agent::start(watched, events, &[]);
    agent.kill();
    let before_kill_restart = lines(events).len();
    fs::OpenOptions::new()
        .append(true)
        .open(events)
        .unwrap()
        .write_all(br#"{"time":"2026-01-01T00:00:00.000000000Z","seq":99"#)
        .unwrap();
    let agent = Agent::start(watched, events, &[]);
    agent.stop();
    let all = lines(events);
    assert_chained(&all, 1);
    let gap = json(&all[before_kill_restart]);
    assert_eq!(gap["type"], "gap");
    let reason = gap["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("agent was not running (it stopped without a final heartbeat"),
        "{reason}"
    );
    assert!(reason.contains("cut short"), "{reason}");
    let gaps = all.iter().filter(|l| json(l)["type"] == "gap").count();
    assert_eq!(gaps, 3, "one gap per restart");

    let output = verify(std::slice::from_ref(events));
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

/// A real rsyslogd of our own: UDP and TCP on 127.0.0.1 and a unix socket in a temp dir (never
/// the host's /dev/log), writing what it receives to a file.
struct Rsyslogd {
    child: Child,
    udp: u16,
    tcp: u16,
    socket: PathBuf,
    output: PathBuf,
}

impl Rsyslogd {
    fn start(dir: &Path) -> Option<Rsyslogd> {
        let binary = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        let Some(binary) = binary else {
            skip("rsyslogd is missing (apt-get install rsyslog; cargo xtask setup installs it)");
            return None;
        };
        let udp = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tcp = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let socket = dir.join("log.sock");
        let output = dir.join("received.log");
        let config = dir.join("rsyslog.conf");
        fs::write(
            &config,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="256k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="{udp}")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imuxsock" Socket="{socket}" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
template(name="fields" type="string" string="%inputname%|%pri%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
*.* action(type="omfile" file="{output}" template="fields")
"#,
                dir = dir.display(),
                socket = socket.display(),
                output = output.display(),
            ),
        )
        .unwrap();
        let child = Command::new(binary)
            .arg("-n")
            .arg("-f")
            .arg(&config)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut rsyslogd = Rsyslogd {
            child,
            udp,
            tcp,
            socket,
            output,
        };
        rsyslogd.wait_until_listening();
        Some(rsyslogd)
    }

    /// Until a probe sent over UDP shows in the output, the TCP port accepts and the socket
    /// exists.
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("rsyslogd exited: {status}");
            }
            let _ = probe.send_to(b"<14>1 - - probe - - - probe", ("127.0.0.1", self.udp));
            if self.socket.exists()
                && TcpStream::connect(("127.0.0.1", self.tcp)).is_ok()
                && fs::read_to_string(&self.output).is_ok_and(|o| o.contains("probe"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not start listening"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Received messages: (input, pri, app-name, procid, msgid, structured data, msg).
    fn received(&self) -> Vec<[String; 7]> {
        lines(&self.output)
            .iter()
            .filter_map(|line| {
                let parts: Vec<&str> = line.splitn(7, '|').collect();
                let parts: [&str; 7] = parts.try_into().ok()?;
                Some(parts.map(str::to_string))
            })
            .filter(|parts| parts[2] == "detector")
            .collect()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn records_reach_a_real_rsyslogd_over_udp_tcp_and_a_unix_socket() {
    if !kernel_available() {
        return;
    }
    let setup = Setup::new();
    let Some(rsyslogd) = Rsyslogd::start(setup.dir.path()) else {
        return;
    };
    let (secret, events) = (&setup.secret, &setup.events);
    let destinations = [
        format!("udp:127.0.0.1:{}", rsyslogd.udp),
        format!("tcp:127.0.0.1:{}", rsyslogd.tcp),
        format!("unix:{}", rsyslogd.socket.display()),
    ];
    let mut args = Vec::new();
    for destination in &destinations {
        args.extend(["--syslog", destination.as_str()]);
    }
    setup.run(events, &args, 2);
    let written = lines(events);

    // Every record, on every input, in order, with the JSON line unchanged as MSG (so the
    // chain verifies from the collector's copy too).
    let inputs = ["imudp", "imtcp", "imuxsock"];
    let deadline = Instant::now() + Duration::from_secs(20);
    let received = loop {
        let received = rsyslogd.received();
        let complete = inputs
            .iter()
            .all(|input| received.iter().filter(|r| r[0] == *input).count() >= written.len());
        if complete {
            break received;
        }
        assert!(
            Instant::now() < deadline,
            "rsyslogd received {} of {} records per input: {received:#?}",
            received.len(),
            written.len()
        );
        thread::sleep(Duration::from_millis(100));
    };
    let agent_pid = json(&written[0])["pid"].to_string();
    for input in inputs {
        let messages: Vec<&[String; 7]> = received.iter().filter(|r| r[0] == input).collect();
        assert_eq!(messages.len(), written.len(), "{input}");
        for (message, line) in messages.iter().zip(&written) {
            let record = json(line);
            let [_, pri, _, procid, msgid, sd, msg] = message;
            assert_eq!(msg, line, "{input}: MSG is the JSON line");
            assert_eq!(msgid, record["type"].as_str().unwrap(), "{input}");
            assert_eq!(procid, &agent_pid, "{input}");
            assert_eq!(
                sd,
                &format!("[detector@32473 seq=\"{}\"]", record["seq"]),
                "{input}"
            );
            // authpriv (10): alerts are warning (4), the rest of these info (6).
            let expected_pri = if record["verdict"] == "alert" { 84 } else { 86 };
            assert_eq!(pri, &expected_pri.to_string(), "{input}: {line}");
        }
        let ready = json(&messages[0][6]);
        assert_eq!(
            (ready["type"].as_str(), ready["seq"].as_u64()),
            (Some("ready"), Some(1))
        );
        let opens: Vec<u64> = messages
            .iter()
            .map(|m| json(&m[6]))
            .filter(|r| r["type"] == "open")
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(opens, [2, 3], "{input}");
    }
    let everything = fs::read_to_string(&rsyslogd.output).unwrap();
    assert!(!everything.contains(secret), "a secret reached syslog");
}

/// The systemd unit passes `systemd-analyze verify`, the DaemonSet parses, and both grant
/// the same capabilities.
#[test]
fn the_deploy_files_are_valid_and_agree() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let unit_text = fs::read_to_string(deploy.join("detector-agent.service")).unwrap();
    let directive = |name: &str| -> Vec<String> {
        unit_text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}=")))
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    };
    let mut unit_caps = directive("CapabilityBoundingSet");
    unit_caps.sort();
    assert!(unit_caps.contains(&"CAP_BPF".to_string()));
    assert_eq!(directive("User"), ["root"], "the agent checks for uid 0");

    let manifest: Value =
        serde_norway::from_str(&fs::read_to_string(deploy.join("daemonset.yaml")).unwrap())
            .unwrap();
    assert_eq!(manifest["kind"], "DaemonSet");
    let pod = &manifest["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    let container = &pod["containers"][0];
    let mut pod_caps: Vec<String> = container["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("CAP_{}", c.as_str().unwrap()))
        .collect();
    pod_caps.sort();
    assert_eq!(pod_caps, unit_caps, "the pod and the unit grant the same");
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert!(container["resources"]["limits"]["memory"].is_string());
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    for needed in [
        "/sys/kernel/btf",
        "/sys/kernel/tracing",
        "/home",
        "/root",
        "/etc/passwd",
        "/var/log/detector",
        "/run/detector",
    ] {
        assert!(mounts.contains(&needed), "{needed} is mounted: {mounts:?}");
    }

    // The unit names the installed path; check it against the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("detector-agent.service");
    fs::write(
        &unit,
        unit_text.replace("/usr/local/bin/detector", DETECTOR),
    )
    .unwrap();
    kit::run::assert_unit_verifies(&unit);
}
