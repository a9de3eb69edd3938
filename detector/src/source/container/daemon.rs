//! `container:NAME|ID` and `containers:[running|stopped]`: the containers of the local Docker
//! daemon, running or stopped, read from its API (`GET /containers/json?all=1`, then
//! `GET /containers/{id}/json`): each one's environment (`Config.Env`, where `docker run -e
//! KEY=…` puts a key), the command it was started with (`Path` and `Args`), its labels, and the
//! files bind-mounted into it (scanned from this host, and named as the container's). The
//! image it runs is named on each of its locations, so its keys sit beside those the image's
//! own scan (`docker:IMAGE`) finds.
//!
//! Source: Docker Engine API, ContainerList and ContainerInspect
//! (<https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Container>): `Created` is
//! Unix seconds in the list and an RFC 3339 string in the inspect answer; `Name` starts with `/`.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{Part, Place, Workload, WorkloadEntry, WorkloadField};
use crate::{
    detect::{filter::is_literal_secret, value::classify},
    mcp::is_secret_name,
    source::{
        docker::{self, DaemonError},
        fs,
        secret_file::{FileField, Secrecy, SecretFile, SecretFileKind},
        Blob, ContainerValue, Origin, Provenance, Sink, SourceError, SourceOptions,
    },
    uri,
};

/// Which containers `containers:` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Running,
    Stopped,
}

impl Which {
    pub fn parse(text: &str) -> Option<Which> {
        match text {
            "" | "all" => Some(Which::All),
            "running" => Some(Which::Running),
            "stopped" => Some(Which::Stopped),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Which::All => "",
            Which::Running => "running",
            Which::Stopped => "stopped",
        }
    }

    fn takes(self, state: &str) -> bool {
        match self {
            Which::All => true,
            Which::Running => state == "running",
            Which::Stopped => state != "running",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Listed {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "State")]
    state: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Inspected {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Created")]
    created: Option<String>,
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Args")]
    args: Option<Vec<String>>,
    #[serde(rename = "Image")]
    image_id: Option<String>,
    #[serde(rename = "Config")]
    config: Option<Config>,
    #[serde(rename = "State")]
    state: Option<State>,
    #[serde(rename = "Mounts")]
    mounts: Option<Vec<Mount>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {
    #[serde(rename = "Env")]
    env: Option<Vec<String>>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Image")]
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    #[serde(rename = "Status")]
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Mount {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Source")]
    source: Option<String>,
    #[serde(rename = "Destination")]
    destination: Option<String>,
}

/// Compose's label naming the project a container belongs to.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// The kubelet's label naming a container's pod namespace (dockershim, cri-dockerd).
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";

/// Scan one container, by name or id.
pub fn scan_container(
    name: &str,
    options: &SourceOptions,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let origin = PathBuf::from(format!("container:{name}"));
    let inspected = inspect(name).map_err(|err| match err {
        DaemonError::NotFound { .. } => SourceError::new(&origin, "no such container"),
        other => SourceError::new(&origin, other),
    })?;
    read(&inspected, options, sink);
    Ok(())
}

/// Scan the daemon's containers (all of them, or the running or stopped ones).
pub fn scan_containers(
    which: Which,
    options: &SourceOptions,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let origin = PathBuf::from("containers:");
    let listed: Vec<Listed> =
        docker::get_json("/containers/json?all=1").map_err(|err| SourceError::new(&origin, err))?;
    for container in listed.iter().filter(|c| which.takes(&c.state)) {
        match inspect(&container.id) {
            Ok(inspected) => read(&inspected, options, sink),
            // Removed since it was listed: nothing left to leak.
            Err(DaemonError::NotFound { .. }) => {}
            Err(err) => sink.error(
                Path::new(&format!("container:{}", short(&container.id))),
                &err.to_string(),
            ),
        }
    }
    Ok(())
}

/// How many containers the daemon has, running or not (for `detector audit`).
pub fn count() -> Result<usize, DaemonError> {
    let listed: Vec<Listed> = docker::get_json("/containers/json?all=1")?;
    Ok(listed.len())
}

fn inspect(name: &str) -> Result<Inspected, DaemonError> {
    docker::get_json(&format!(
        "/containers/{}/json",
        uri::encode(name, uri::PATH)
    ))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The blobs of one container: its environment, command line and labels, and the files
/// mounted into it.
fn read(inspected: &Inspected, options: &SourceOptions, sink: &dyn Sink) {
    let name = inspected.name.trim_start_matches('/').to_string();
    let name = if name.is_empty() {
        short(&inspected.id).to_string()
    } else {
        name
    };
    let config = inspected.config.as_ref();
    let labels = config.and_then(|c| c.labels.clone()).unwrap_or_default();
    let place = ContainerValue {
        container: name.clone(),
        container_id: inspected.id.clone(),
        image: config.and_then(|c| c.image.clone()),
        image_id: inspected.image_id.clone(),
        created: inspected.created.as_deref().and_then(time),
        state: inspected.state.as_ref().and_then(|s| s.status.clone()),
    };
    let project = labels
        .get(COMPOSE_PROJECT)
        .or_else(|| labels.get(POD_NAMESPACE))
        .cloned()
        .unwrap_or_else(|| format!("container:{name}"));
    // A container of a Compose project or a Kubernetes pod is named within it.
    let workload = Workload {
        kind: Workload::CONTAINER.to_string(),
        namespace: labels
            .get(COMPOSE_PROJECT)
            .or_else(|| labels.get(POD_NAMESPACE))
            .cloned(),
        name: name.clone(),
    };
    let blob = |path: &str, lines: &[String], file: Option<SecretFile>| Blob {
        bytes: lines.join("\n").into_bytes(),
        provenance: Provenance {
            path: PathBuf::from(path),
            origin: Origin::Container(place.clone()),
            backup: None,
        },
        project: project.clone(),
        root: PathBuf::from("/"),
        mcp: None,
        fields: file.map(Arc::new),
    };

    let env = config.and_then(|c| c.env.clone()).unwrap_or_default();
    let mut entry = WorkloadEntry {
        workload: workload.clone(),
        fields: Vec::new(),
        files: Vec::new(),
    };
    let env_fields = assignments(&env, "Config.Env", &workload, Part::Env, &mut entry);
    for mount in inspected.mounts.iter().flatten() {
        if mount.kind.as_deref() != Some("bind") {
            continue;
        }
        let Some(source) = mount.source.as_deref() else {
            continue;
        };
        let source = Path::new(source);
        // A mounted directory is the directory's own target (`dir:`); a file is read here.
        if source.is_file() {
            entry.files.push((source.to_path_buf(), Part::Mount));
            tracing::debug!(container = %name, source = %source.display(), destination = mount.destination.as_deref().unwrap_or(""), "bind-mounted file");
            if let Err(err) = fs::scan_file(source, options, sink) {
                sink.error(&err.path, &err.reason);
            }
        }
    }
    sink.blob(blob(
        "Config.Env",
        &env,
        Some(SecretFile {
            kind: SecretFileKind::Container,
            fields: env_fields,
            workloads: vec![entry],
        }),
    ));

    let command: Vec<String> = inspected
        .path
        .iter()
        .cloned()
        .chain(inspected.args.iter().flatten().cloned())
        .collect();
    if !command.is_empty() {
        let line = shlex::try_join(command.iter().map(String::as_str))
            .unwrap_or_else(|_| command.join(" "));
        let field = FileField {
            slot: "command".to_string(),
            value: line.clone(),
            range: 0..line.len(),
            secrecy: Secrecy::No,
            decoded: None,
            place: Some(Place {
                workload: workload.clone(),
                part: Part::Command,
            }),
        };
        sink.blob(blob(
            "Command",
            std::slice::from_ref(&line),
            Some(SecretFile {
                kind: SecretFileKind::Container,
                fields: vec![field],
                workloads: Vec::new(),
            }),
        ));
    }

    let label_lines: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !label_lines.is_empty() {
        let mut unused = WorkloadEntry {
            workload: workload.clone(),
            fields: Vec::new(),
            files: Vec::new(),
        };
        let fields = assignments(
            &label_lines,
            "Config.Labels",
            &workload,
            Part::Label,
            &mut unused,
        );
        sink.blob(blob(
            "Config.Labels",
            &label_lines,
            Some(SecretFile {
                kind: SecretFileKind::Container,
                fields,
                workloads: Vec::new(),
            }),
        ));
    }
}

/// `NAME=value` lines (joined by `\n` into the blob) as fields; the secret-bearing ones are
/// classified into `entry`.
fn assignments(
    lines: &[String],
    what: &str,
    workload: &Workload,
    part: Part,
    entry: &mut WorkloadEntry,
) -> Vec<FileField> {
    let mut fields = Vec::new();
    let mut offset = 0;
    for line in lines {
        let start = offset;
        offset += line.len() + 1;
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value_at = start + name.len() + 1;
        let secret_named = is_secret_name(name);
        fields.push(FileField {
            slot: name.to_string(),
            value: value.to_string(),
            range: value_at..value_at + value.len(),
            secrecy: if secret_named {
                Secrecy::Named
            } else {
                Secrecy::No
            },
            decoded: None,
            place: Some(Place {
                workload: workload.clone(),
                part,
            }),
        });
        let class = classify(value);
        if secret_named || is_literal_secret(value) {
            entry.fields.push(WorkloadField {
                field: format!("{what}.{name}"),
                name: Some(name.to_string()),
                part,
                class,
                value: value.to_string(),
            });
        }
    }
    fields
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspect_answer_with_odd_and_missing_parts_reads() {
        let inspected: Inspected = serde_json::from_str(
            r#"{"Id":"abc","Name":"/api","Created":"2025-02-17T17:43:39.64001363Z",
                "Config":{"Env":null,"Cmd":null,"Labels":null,"Extra":1},"Mounts":null,"State":{"Status":"exited","Pid":0}}"#,
        )
        .unwrap();
        assert_eq!(inspected.name, "/api");
        assert!(time(inspected.created.as_deref().unwrap()).is_some());
        let listed: Vec<Listed> = serde_json::from_str(
            r#"[{"Id":"a","Names":["/x"],"Created":1700000000,"State":"running"}]"#,
        )
        .unwrap();
        assert_eq!(listed[0].state, "running");
        assert!(Which::Stopped.takes("exited") && !Which::Stopped.takes("running"));
    }

    #[test]
    fn env_lines_become_fields_at_their_values() {
        let key = ["sk-ant-api03-", &"Q".repeat(40)].concat();
        let lines = vec!["PATH=/bin".to_string(), format!("ANTHROPIC_API_KEY={key}")];
        let workload = Workload {
            kind: Workload::CONTAINER.into(),
            namespace: None,
            name: "api".into(),
        };
        let mut entry = WorkloadEntry {
            workload: workload.clone(),
            fields: Vec::new(),
            files: Vec::new(),
        };
        let fields = assignments(&lines, "Config.Env", &workload, Part::Env, &mut entry);
        let text = lines.join("\n");
        assert_eq!(&text[fields[1].range.clone()], key);
        assert_eq!(entry.fields.len(), 1);
        assert_eq!(entry.fields[0].field, "Config.Env.ANTHROPIC_API_KEY");
    }
}
