//! One place a key was seen: the [`Provenance`] of the bytes it was found in, where in them
//! it sits, and the MCP server field or variable that holds it there.
//!
//! In memory the place is typed ([`Origin`]); in a v1 report it is one flat object whose
//! `kind` says which of its optional fields apply. [`LocationV1`] is that object, and the two
//! convert both ways without loss for every location a source makes, so saved reports read
//! back into the same locations.
use std::{
    collections::{hash_map::Entry, HashMap},
    path::PathBuf,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::path_text;
use crate::source::{
    backup::Backup, container::Place as WorkloadPlace, ConfigValue, Container, ContainerValue,
    DiskFile, GitBlob, GitCommit, LayerFile, LocationKind, Member, Origin, Provenance,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LocationV1", into = "LocationV1")]
pub struct Location {
    pub provenance: Provenance,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The client whose config holds the key, and the server and field that hold it.
    pub mcp_client: Option<String>,
    pub mcp_server: Option<String>,
    pub mcp_field: Option<String>,
    /// The variable the secret is assigned to there.
    pub slot: Option<String>,
    /// The host whose report named this location (set when reports of many hosts are merged).
    pub host: Option<String>,
    /// The workload (Compose service, Kubernetes object, container) whose value holds the
    /// key here, and which part of it.
    pub workload: Option<WorkloadPlace>,
}

impl Location {
    /// The place of `provenance`, with nothing known yet of where in it.
    pub fn at(provenance: Provenance) -> Location {
        Location {
            provenance,
            line: None,
            column: None,
            mcp_client: None,
            mcp_server: None,
            mcp_field: None,
            slot: None,
            host: None,
            workload: None,
        }
    }

    pub fn kind(&self) -> LocationKind {
        self.provenance.origin.kind()
    }

    pub fn path(&self) -> &std::path::Path {
        &self.provenance.path
    }

    pub fn origin(&self) -> &Origin {
        &self.provenance.origin
    }

    /// Can anyone but the owner read it?
    pub fn is_readable_by_others(&self) -> bool {
        self.provenance.is_readable_by_others()
    }

    /// What makes two locations the same place (two targets may read one file).
    fn place(&self) -> Place {
        let origin = self.origin();
        let git = origin.git();
        Place {
            kind: self.kind(),
            host: self.host.clone(),
            path: self.path().to_path_buf(),
            line: self.line,
            column: self.column,
            commit: origin.commit().map(str::to_string),
            blob: git.and_then(|g| g.blob.clone()),
            layer: origin.layer_file().and_then(|f| f.layer.clone()),
            member: origin.member().map(|m| m.member.clone()),
            container: origin.container().map(|c| c.container_id.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Place {
    kind: LocationKind,
    host: Option<String>,
    path: PathBuf,
    line: Option<usize>,
    column: Option<usize>,
    commit: Option<String>,
    blob: Option<String>,
    layer: Option<String>,
    member: Option<String>,
    container: Option<String>,
}

/// A key's locations, each place once: of two copies of one place, the one that knows the MCP
/// server that holds the key is kept. Indexed by place, so a key seen on every line of a big
/// file, or in many merged reports, costs one lookup per location, not a search.
#[derive(Debug, Default)]
pub struct Locations {
    list: Vec<Location>,
    index: HashMap<Place, usize>,
}

impl Locations {
    pub fn add(&mut self, location: Location) {
        match self.index.entry(location.place()) {
            Entry::Occupied(at) => {
                let existing = &mut self.list[*at.get()];
                if existing.mcp_server.is_none() && location.mcp_server.is_some() {
                    *existing = location;
                } else if existing.workload.is_none() {
                    existing.workload = location.workload;
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(self.list.len());
                self.list.push(location);
            }
        }
    }

    pub fn into_vec(self) -> Vec<Location> {
        self.list
    }
}

impl FromIterator<Location> for Locations {
    fn from_iter<I: IntoIterator<Item = Location>>(locations: I) -> Locations {
        let mut set = Locations::default();
        for location in locations {
            set.add(location);
        }
        set
    }
}

/// A location as a v1 report writes it: every field of every kind, those that do not apply
/// left out (`line` and `column` are always written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocationV1 {
    pub kind: LocationKind,
    #[serde(serialize_with = "path_text::one")]
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    #[serde(serialize_with = "time_opt", skip_serializing_if = "Option::is_none")]
    pub mtime: Option<DateTime<Utc>>,
    /// Permission bits, octal (`"0644"`).
    #[serde(
        serialize_with = "mode_opt",
        deserialize_with = "mode_opt_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(serialize_with = "time_opt", skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_head: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_in_layer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_in_layer: Option<String>,
    #[serde(
        serialize_with = "path_text::maybe",
        skip_serializing_if = "Option::is_none"
    )]
    pub archive: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<Backup>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readable_by_others: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadPlace>,
}

impl LocationV1 {
    fn disk_file(&mut self, file: DiskFile) {
        self.mtime = file.mtime;
        self.mode = file.mode;
        self.dev = file.dev;
        self.inode = file.inode;
        self.readable_by_others = file.readable_by_others;
    }

    fn layer_file(&mut self, file: LayerFile) {
        self.mtime = file.mtime;
        self.image = file.image;
        self.layer = file.layer;
        self.layer_index = file.layer_index;
        self.created_by = file.created_by;
        self.deleted_in_layer = file.deleted_in_layer;
        self.replaced_in_layer = file.replaced_in_layer;
    }

    fn take_disk_file(&mut self) -> DiskFile {
        DiskFile {
            mtime: self.mtime,
            mode: self.mode,
            dev: self.dev,
            inode: self.inode,
            readable_by_others: self.readable_by_others,
        }
    }

    fn take_layer_file(&mut self) -> LayerFile {
        LayerFile {
            image: self.image.take(),
            layer: self.layer.take(),
            layer_index: self.layer_index,
            created_by: self.created_by.take(),
            mtime: self.mtime,
            deleted_in_layer: self.deleted_in_layer.take(),
            replaced_in_layer: self.replaced_in_layer.take(),
        }
    }
}

impl From<Location> for LocationV1 {
    fn from(location: Location) -> LocationV1 {
        let Provenance {
            path,
            origin,
            backup,
        } = location.provenance;
        let mut v1 = LocationV1 {
            kind: origin.kind(),
            path,
            line: location.line,
            column: location.column,
            mcp_client: location.mcp_client,
            mcp_server: location.mcp_server,
            mcp_field: location.mcp_field,
            slot: location.slot,
            backup,
            host: location.host,
            workload: location.workload,
            ..LocationV1::default()
        };
        match origin {
            Origin::File(file) | Origin::McpConfig(file) | Origin::ManagedStore(file) => {
                v1.disk_file(file)
            }
            Origin::Git(git) => {
                v1.commit = git.commit;
                v1.commit_time = git.commit_time;
                v1.in_head = git.in_head;
                v1.removed_in = git.removed_in;
                v1.blob = git.blob;
                v1.refs = git.refs;
                v1.reachable = git.reachable;
            }
            Origin::GitCommitMessage(commit) => {
                v1.commit = Some(commit.commit);
                v1.commit_time = commit.commit_time;
            }
            Origin::ImageLayer(layer) => v1.layer_file(layer),
            Origin::ImageConfig(config) => {
                v1.mtime = config.mtime;
                v1.image = config.image;
                v1.layer = config.layer;
                v1.layer_index = config.layer_index;
                v1.created_by = config.created_by;
            }
            Origin::ArchiveMember(member) => {
                match member.container {
                    Container::File(file) => v1.disk_file(file),
                    Container::ImageLayer(layer) => v1.layer_file(layer),
                }
                v1.mtime = member.mtime;
                v1.archive = Some(member.archive);
                v1.member = Some(member.member);
            }
            Origin::Container(container) => {
                v1.container = Some(container.container);
                v1.container_id = Some(container.container_id);
                v1.image = container.image;
                v1.image_id = container.image_id;
                v1.mtime = container.created;
                v1.state = container.state;
            }
        }
        v1
    }
}

impl From<LocationV1> for Location {
    fn from(mut v1: LocationV1) -> Location {
        let origin = match v1.kind {
            LocationKind::File => Origin::File(v1.take_disk_file()),
            LocationKind::McpConfig => Origin::McpConfig(v1.take_disk_file()),
            LocationKind::ManagedStore => Origin::ManagedStore(v1.take_disk_file()),
            LocationKind::Git => Origin::Git(GitBlob {
                blob: v1.blob.take(),
                commit: v1.commit.take(),
                commit_time: v1.commit_time,
                in_head: v1.in_head,
                removed_in: v1.removed_in.take(),
                refs: std::mem::take(&mut v1.refs),
                reachable: v1.reachable,
                history: None,
            }),
            LocationKind::GitCommitMessage => Origin::GitCommitMessage(GitCommit {
                commit: v1.commit.take().unwrap_or_default(),
                commit_time: v1.commit_time,
            }),
            LocationKind::ImageLayer => Origin::ImageLayer(v1.take_layer_file()),
            LocationKind::ImageConfig => Origin::ImageConfig(ConfigValue {
                image: v1.image.take(),
                layer: v1.layer.take(),
                layer_index: v1.layer_index,
                created_by: v1.created_by.take(),
                mtime: v1.mtime,
            }),
            LocationKind::ArchiveMember => {
                // A member of an archive in an image layer names the layer; one on disk, the
                // archive file's mode and inode.
                let in_layer = v1.layer.is_some() || v1.image.is_some();
                let mtime = v1.mtime;
                let container = if in_layer {
                    Container::ImageLayer(LayerFile {
                        mtime: None,
                        ..v1.take_layer_file()
                    })
                } else {
                    Container::File(DiskFile {
                        mtime: None,
                        ..v1.take_disk_file()
                    })
                };
                Origin::ArchiveMember(Member {
                    archive: v1.archive.take().unwrap_or_default(),
                    member: v1.member.take().unwrap_or_default(),
                    mtime,
                    container,
                })
            }
            LocationKind::Container => Origin::Container(ContainerValue {
                container: v1.container.take().unwrap_or_default(),
                container_id: v1.container_id.take().unwrap_or_default(),
                image: v1.image.take(),
                image_id: v1.image_id.take(),
                created: v1.mtime,
                state: v1.state.take(),
            }),
        };
        Location {
            provenance: Provenance {
                path: v1.path,
                origin,
                backup: v1.backup,
            },
            line: v1.line,
            column: v1.column,
            mcp_client: v1.mcp_client,
            mcp_server: v1.mcp_server,
            mcp_field: v1.mcp_field,
            slot: v1.slot,
            host: v1.host,
            workload: v1.workload,
        }
    }
}

pub(crate) fn time_opt<S: Serializer>(
    value: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(t) => time(t, s),
        None => s.serialize_none(),
    }
}

pub(crate) fn time<S: Serializer>(value: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `"0644"` → `0o644`.
fn mode_opt_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    u32::from_str_radix(&text, 8)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("mode `{text}` is not octal")))
}

fn mode_opt<S: Serializer>(value: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(mode) => s.serialize_str(&format!("{mode:04o}")),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(location: Location) {
        let json = serde_json::to_value(&location).unwrap();
        let back: Location = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, location, "{json}");
    }

    #[test]
    fn every_kind_of_place_reads_back_as_written() {
        let time = DateTime::from_timestamp(1_700_000_000, 0);
        let disk = DiskFile {
            mtime: time,
            mode: Some(0o644),
            dev: Some(2049),
            inode: Some(7),
            readable_by_others: Some(true),
        };
        let layer = LayerFile {
            image: Some("app:prod".into()),
            layer: Some("sha256:aa".into()),
            layer_index: Some(2),
            created_by: Some("COPY . /app".into()),
            mtime: time,
            deleted_in_layer: Some("sha256:bb".into()),
            replaced_in_layer: None,
        };
        let place = |path: &str, origin: Origin| Location {
            line: Some(3),
            column: Some(9),
            slot: Some("API_KEY".into()),
            ..Location::at(Provenance {
                path: path.into(),
                origin,
                backup: None,
            })
        };
        round_trip(place("/h/.env", Origin::File(disk.clone())));
        round_trip(place(
            "/h/.config/detector/keys.env",
            Origin::ManagedStore(disk.clone()),
        ));
        round_trip(Location {
            mcp_client: Some("cursor".into()),
            mcp_server: Some("gh".into()),
            mcp_field: Some("env.GITHUB_TOKEN".into()),
            ..place("/h/.cursor/mcp.json", Origin::McpConfig(disk.clone()))
        });
        round_trip(place(
            ".env",
            Origin::Git(GitBlob {
                blob: Some("ab".into()),
                commit: Some("cd".into()),
                commit_time: time,
                in_head: Some(false),
                removed_in: Some("ef".into()),
                refs: vec!["refs/heads/main".into()],
                reachable: Some(true),
                history: None,
            }),
        ));
        round_trip(place(
            "0123456789abcdef0123456789abcdef01234567",
            Origin::GitCommitMessage(GitCommit {
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
                commit_time: time,
            }),
        ));
        round_trip(place("/app/.env", Origin::ImageLayer(layer.clone())));
        round_trip(place(
            "history[2].created_by",
            Origin::ImageConfig(ConfigValue {
                image: Some("app:prod".into()),
                layer: Some("sha256:aa".into()),
                layer_index: Some(2),
                created_by: Some("RUN x".into()),
                mtime: time,
            }),
        ));
        round_trip(Location {
            workload: Some(WorkloadPlace {
                workload: crate::source::container::Workload {
                    kind: "container".into(),
                    namespace: None,
                    name: "api".into(),
                },
                part: crate::source::container::Part::Env,
            }),
            ..place(
                "Config.Env",
                Origin::Container(ContainerValue {
                    container: "api".into(),
                    container_id: "0123abcd".into(),
                    image: Some("app:prod".into()),
                    image_id: Some("sha256:cc".into()),
                    created: time,
                    state: Some("running".into()),
                }),
            )
        });
        for container in [
            Container::File(DiskFile {
                mtime: None,
                ..disk
            }),
            Container::ImageLayer(LayerFile {
                mtime: None,
                ..layer
            }),
        ] {
            round_trip(place(
                "/b/home.tar!inner.tgz!.env",
                Origin::ArchiveMember(Member {
                    archive: "/b/home.tar".into(),
                    member: "inner.tgz!.env".into(),
                    mtime: time,
                    container,
                }),
            ));
        }
    }

    #[test]
    fn a_commit_message_is_its_own_kind_with_the_commit() {
        let location = Location::at(Provenance {
            path: "cd".into(),
            origin: Origin::GitCommitMessage(GitCommit {
                commit: "cd".into(),
                commit_time: DateTime::from_timestamp(1_700_000_000, 0),
            }),
            backup: None,
        });
        assert_eq!(
            serde_json::to_value(&location).unwrap(),
            serde_json::json!({"kind": "git-commit-message", "path": "cd", "line": null,
                "column": null, "commit": "cd", "commit_time": "2023-11-14T22:13:20Z"})
        );
    }

    #[test]
    fn the_v1_object_has_the_fields_of_its_kind_only() {
        let location = Location::at(Provenance {
            path: "/h/.env".into(),
            origin: Origin::File(DiskFile {
                mode: Some(0o600),
                ..DiskFile::default()
            }),
            backup: None,
        });
        assert_eq!(
            serde_json::to_value(&location).unwrap(),
            serde_json::json!({"kind": "file", "path": "/h/.env", "line": null, "column": null,
                "mode": "0600"})
        );
    }
}
