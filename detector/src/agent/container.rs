//! Which container a process runs in: its id and runtime from the cgroup path the host's
//! `/proc/PID/cgroup` shows, and its name, image and Kubernetes pod from the Docker daemon's
//! `GET /containers/{id}/json` (asked on a thread of its own, answers cached).
//!
//! Cgroup layouts recognised (the last path element that names a container wins):
//!
//! | runtime | cgroup driver | path ends in |
//! |---|---|---|
//! | Docker | systemd | `docker-<id>.scope` |
//! | Docker | cgroupfs | `/docker/<id>` |
//! | containerd (CRI) | systemd | `cri-containerd-<id>.scope` (cgroup v1: `…:cri-containerd:<id>`) |
//! | CRI-O | systemd | `crio-<id>.scope` (not `crio-conmon-<id>.scope`, the monitor) |
//! | Podman | systemd | `libpod-<id>.scope` (not `libpod-conmon-<id>.scope`) |
//! | Kubernetes | cgroupfs | `/kubepods/<qos>/pod<uid>/<id>` (taken as containerd) |
use std::{
    collections::{HashMap, VecDeque},
    sync::{mpsc, Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

use serde::Deserialize;

pub use crate::event::{Container, Runtime};

/// A container id and runtime, as the cgroup path tells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupContainer {
    pub id: String,
    pub runtime: Runtime,
}

/// The container of the first line of `/proc/PID/cgroup` (v2 `0::PATH`, v1 `N:ctrl:PATH`)
/// whose path names one; `None` for a process on the host, or text that is not a cgroup file.
pub fn parse_cgroup(text: &str) -> Option<CgroupContainer> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, _, path) = (parts.next()?, parts.next()?, parts.next()?);
        parse_cgroup_path(path)
    })
}

/// The container a cgroup path names (see the table above).
pub fn parse_cgroup_path(path: &str) -> Option<CgroupContainer> {
    let elements: Vec<&str> = path.split('/').filter(|e| !e.is_empty()).collect();
    let (last, parents) = elements.split_last()?;
    let found = |id: &str, runtime| {
        is_container_id(id).then(|| CgroupContainer {
            id: id.to_string(),
            runtime,
        })
    };
    let scope = last.strip_suffix(".scope").unwrap_or(last);
    for (prefix, runtime) in [
        ("docker-", Runtime::Docker),
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("libpod-", Runtime::Podman),
    ] {
        if let Some(id) = scope.strip_prefix(prefix) {
            // `crio-conmon-<id>` and `libpod-conmon-<id>` are the monitors, not the container.
            return found(id, runtime);
        }
    }
    // containerd's systemd cgroups under cgroup v1: `SLICE:cri-containerd:<id>`.
    if let Some((_, id)) = last.rsplit_once(":cri-containerd:") {
        return found(id, Runtime::Containerd);
    }
    match parents.last() {
        Some(&"docker") => found(last, Runtime::Docker),
        Some(parent) if parent.starts_with("pod") && elements.contains(&"kubepods") => {
            found(last, Runtime::Containerd)
        }
        _ => None,
    }
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The container of a running process, read from the host's `/proc`.
pub fn of_pid(pid: u32) -> Option<CgroupContainer> {
    let text = std::fs::read(format!("/proc/{pid}/cgroup")).ok()?;
    parse_cgroup(&String::from_utf8_lossy(&text))
}

/// Cgroups (v2 ids) known at most; ids are never reused, so an answer stays true.
const CGROUP_IDS: usize = 4096;
/// Directories looked at, at most, to find one cgroup by id.
const CGROUP_WALK: usize = 20_000;

/// The container of a cgroup v2 id (what the kernel programs record of every opener), found
/// by the cgroup's directory in the cgroup2 mount, whose inode number is that id: the
/// container of an opener that was gone before its process record could be read.
#[derive(Default)]
pub struct CgroupIds {
    mount: Option<Option<std::path::PathBuf>>,
    known: HashMap<u64, Option<CgroupContainer>>,
    order: VecDeque<u64>,
}

impl CgroupIds {
    pub fn container(&mut self, cgroup_id: u64) -> Option<CgroupContainer> {
        // 0: no id; 1: the root cgroup, never a container's.
        if cgroup_id <= 1 {
            return None;
        }
        if let Some(known) = self.known.get(&cgroup_id) {
            return known.clone();
        }
        let mount = self.mount.get_or_insert_with(cgroup2_mount).clone()?;
        let found = find_cgroup(&mount, cgroup_id).and_then(|path| {
            let relative = path.strip_prefix(&mount).ok()?;
            parse_cgroup_path(&relative.to_string_lossy())
        });
        self.known.insert(cgroup_id, found.clone());
        self.order.push_back(cgroup_id);
        while self.order.len() > CGROUP_IDS {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
        found
    }
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `…/unified` on a hybrid
/// host), from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split(' ').next()? == "cgroup2")
            .then(|| before.split(' ').nth(4).map(std::path::PathBuf::from))
            .flatten()
    })
}

/// The directory under `root` whose inode number is `ino` (breadth first, bounded).
fn find_cgroup(root: &std::path::Path, ino: u64) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::DirEntryExt;
    let mut queue = VecDeque::from([root.to_path_buf()]);
    let mut seen = 0;
    while let Some(dir) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.ino() == ino {
                return Some(entry.path());
            }
            seen += 1;
            if seen > CGROUP_WALK {
                return None;
            }
            queue.push_back(entry.path());
        }
    }
    None
}

/// Containers known to the cache at most; the oldest are forgotten first.
const CACHE_CAPACITY: usize = 1024;
/// A lookup that failed (no daemon, not a Docker container) is asked again after this.
const FAILED_TTL: Duration = Duration::from_secs(30);
/// A container's name and image do not change; its answer is asked again after this anyway,
/// in case an id was reused or the daemon restarted.
const KNOWN_TTL: Duration = Duration::from_secs(600);
/// Longest wait of a record for a lookup under way.
pub const LOOKUP_WAIT: Duration = Duration::from_millis(250);
/// Longest kept name, image or label value: container metadata is anyone's to set.
const MAX_FIELD: usize = 256;

/// The daemon's word on one container.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// The full id.
    pub id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    /// `State.Pid`: the container's init process on the host (0 when it is not running).
    pub pid: u32,
    pub running: bool,
}

enum Entry {
    Pending,
    Answered {
        details: Option<Details>,
        at: Instant,
    },
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Ids in the order they were first asked for, to forget the oldest.
    order: VecDeque<String>,
}

impl Cache {
    fn insert(&mut self, id: &str, entry: Entry) {
        if self.entries.insert(id.to_string(), entry).is_none() {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > CACHE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

/// Names containers by id: a cache, and a thread that asks the Docker daemon, so the event
/// loop never waits for the daemon longer than [`LOOKUP_WAIT`].
#[derive(Clone)]
pub struct Directory {
    shared: Arc<(Mutex<Cache>, Condvar)>,
    requests: mpsc::Sender<String>,
}

impl Directory {
    /// Starts the lookup thread; without it (it could not start) ids are still reported.
    pub fn start() -> Directory {
        let shared = Arc::new((Mutex::new(Cache::default()), Condvar::new()));
        let (requests, incoming) = mpsc::channel::<String>();
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("containers".into())
            .spawn(move || {
                while let Ok(id) = incoming.recv() {
                    let details = inspect(&id).ok();
                    let (cache, answered) = &*worker;
                    lock(cache).insert(
                        &id,
                        Entry::Answered {
                            details,
                            at: Instant::now(),
                        },
                    );
                    answered.notify_all();
                }
            });
        if let Err(err) = spawned {
            tracing::warn!("container names unavailable: cannot start their thread: {err}");
        }
        Directory { shared, requests }
    }

    /// Asks for a container's details unless they are known or under way; never waits.
    pub fn request(&self, id: &str) {
        let mut cache = lock(&self.shared.0);
        let stale = match cache.entries.get(id) {
            None => true,
            Some(Entry::Pending) => false,
            Some(Entry::Answered { details, at }) => {
                at.elapsed()
                    > if details.is_some() {
                        KNOWN_TTL
                    } else {
                        FAILED_TTL
                    }
            }
        };
        if stale {
            cache.insert(id, Entry::Pending);
            if self.requests.send(id.to_string()).is_err() {
                cache.insert(
                    id,
                    Entry::Answered {
                        details: None,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    /// The container as a record names it: the daemon's details when known, waiting at most
    /// `wait` for a lookup under way; its id and runtime in any case.
    pub fn describe(&self, container: &CgroupContainer, wait: Duration) -> Container {
        self.request(&container.id);
        let (cache, answered) = &*self.shared;
        let deadline = Instant::now() + wait;
        let mut guard = lock(cache);
        let details = loop {
            match guard.entries.get(&container.id) {
                Some(Entry::Answered { details, .. }) => break details.clone(),
                Some(Entry::Pending) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break None;
                    }
                    guard = answered
                        .wait_timeout(guard, left)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                None => break None,
            }
        };
        drop(guard);
        let details = details.unwrap_or_default();
        Container {
            id: container.id.clone(),
            name: details.name,
            image: details.image,
            runtime: container.runtime,
            pod: details.pod,
            namespace: details.namespace,
        }
    }
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

/// `GET /containers/{id}/json`, reduced to what records say. `id` may be a name.
pub fn inspect(id: &str) -> Result<Details, crate::source::docker::DaemonError> {
    let path = format!(
        "/containers/{}/json",
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    );
    let answer: Inspect = crate::source::docker::get_json(&path)?;
    Ok(answer.details())
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Inspect {
    id: String,
    name: Option<String>,
    config: InspectConfig,
    state: InspectState,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct InspectConfig {
    image: Option<String>,
    labels: Option<HashMap<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct InspectState {
    pid: i64,
    running: bool,
}

impl Inspect {
    fn details(self) -> Details {
        let labels = self.config.labels.unwrap_or_default();
        let label = |key: &str| labels.get(key).and_then(|v| v.as_str()).and_then(field);
        let name = self
            .name
            .as_deref()
            .map(|n| n.strip_prefix('/').unwrap_or(n))
            .and_then(field);
        Details {
            id: self.id,
            // The kubelet names its containers `k8s_…`; the label has the container's own name.
            name: label("io.kubernetes.container.name").or(name),
            image: self.config.image.as_deref().and_then(field),
            pod: label("io.kubernetes.pod.name"),
            namespace: label("io.kubernetes.pod.namespace"),
            pid: u32::try_from(self.state.pid).unwrap_or(0),
            running: self.state.running,
        }
    }
}

/// A name or label fit for a record: not empty, at most [`MAX_FIELD`] bytes (cut at a
/// character boundary). JSON escaping is the writer's.
fn field(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(MAX_FIELD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2b8e9d0a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e";

    fn parsed(path: &str) -> Option<(String, Runtime)> {
        parse_cgroup_path(path).map(|c| (c.id, c.runtime))
    }

    #[test]
    fn every_runtime_layout_names_its_container() {
        let cases = [
            (format!("/system.slice/docker-{ID}.scope"), Runtime::Docker),
            (format!("/docker/{ID}"), Runtime::Docker),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            (
                format!("/system.slice/containerd.service/kubepods-besteffort-pod12.slice:cri-containerd:{ID}"),
                Runtime::Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-pod9.slice/crio-{ID}.scope"),
                Runtime::CriO,
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                Runtime::Podman,
            ),
            (
                format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
                Runtime::Podman,
            ),
            (
                format!("/kubepods/burstable/pod0b1c2d3e-aaaa-bbbb-cccc-0123456789ab/{ID}"),
                Runtime::Containerd,
            ),
            (format!("/kubepods/besteffort/pod12/{ID}"), Runtime::Containerd),
        ];
        for (path, runtime) in cases {
            assert_eq!(parsed(&path), Some((ID.to_string(), runtime)), "{path}");
        }
    }

    #[test]
    fn monitors_hosts_and_garbage_name_no_container() {
        for path in [
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            "/".to_string(),
            "".to_string(),
            "/user.slice/user-1000.slice/session-3.scope".to_string(),
            "/system.slice/docker.service".to_string(),
            format!("/system.slice/docker-{}.scope", &ID[..63]),
            format!("/system.slice/docker-{}.scope", ID.to_uppercase()),
            format!("/docker/{ID}x"),
            format!("/elsewhere/{ID}"),
            format!("/pod12/{ID}"),
            "/docker/../../etc/passwd".to_string(),
            "\u{0}\u{7f}/docker-\u{202e}.scope".to_string(),
        ] {
            assert_eq!(parsed(&path), None, "{path:?}");
        }
    }

    #[test]
    fn a_cgroup_id_is_found_by_its_directory() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let container = root
            .path()
            .join("system.slice")
            .join(format!("docker-{ID}.scope"));
        std::fs::create_dir_all(&container).unwrap();
        std::fs::create_dir_all(root.path().join("user.slice/session-1.scope")).unwrap();
        let host = std::fs::metadata(root.path().join("user.slice/session-1.scope")).unwrap();
        let mut ids = CgroupIds {
            mount: Some(Some(root.path().to_path_buf())),
            ..CgroupIds::default()
        };
        let id = std::fs::metadata(&container).unwrap().ino();
        assert_eq!(ids.container(id).map(|c| c.id), Some(ID.to_string()));
        std::fs::remove_dir(&container).unwrap();
        assert!(ids.container(id).is_some(), "remembered");
        assert_eq!(ids.container(host.ino()), None);
        assert_eq!(ids.container(1), None);
    }

    #[test]
    fn a_cgroup_file_of_either_version_is_read() {
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(parse_cgroup(&v2).unwrap().id, ID);
        let v1 = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
        );
        let found = parse_cgroup(&v1).unwrap();
        assert_eq!((found.id.as_str(), found.runtime), (ID, Runtime::Docker));
        assert_eq!(parse_cgroup("0::/\n"), None);
        assert_eq!(parse_cgroup("9:name=systemd:/\n4:memory:/x/y\n"), None);
        assert_eq!(parse_cgroup("not a cgroup file"), None);
        assert_eq!(parse_cgroup(""), None);
    }

    #[test]
    fn inspect_answers_become_record_fields() {
        let answer = serde_json::json!({
            "Id": ID,
            "Name": "/web-1",
            "Config": {"Image": "busybox:1", "Labels": {
                "io.kubernetes.pod.name": "api-7d9",
                "io.kubernetes.pod.namespace": "prod",
                "io.kubernetes.container.name": "api",
                "garbage": 12,
            }},
            "State": {"Pid": 4242, "Running": true},
        });
        let details = serde_json::from_value::<Inspect>(answer).unwrap().details();
        assert_eq!(details.name.as_deref(), Some("api"));
        assert_eq!(details.image.as_deref(), Some("busybox:1"));
        assert_eq!(details.pod.as_deref(), Some("api-7d9"));
        assert_eq!(details.namespace.as_deref(), Some("prod"));
        assert_eq!((details.pid, details.running), (4242, true));

        let odd = serde_json::json!({
            "Name": "/x",
            "Config": {"Image": "é".repeat(300), "Labels": {"io.kubernetes.pod.name": ["no"]}},
            "State": {"Pid": -1},
        });
        let details = serde_json::from_value::<Inspect>(odd).unwrap().details();
        assert_eq!(details.name.as_deref(), Some("x"));
        assert!(details.image.unwrap().len() <= MAX_FIELD);
        assert_eq!(details.pod, None);
        assert_eq!(details.pid, 0);
    }
}
