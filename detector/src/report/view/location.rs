//! One place a key was seen, as the writers show it: the facts its typed origin holds, and the
//! phrases every writer's description of it is made of, so that a layer or a commit reads the
//! same in every format.
use std::path::Path;

use chrono::{DateTime, Utc};

use super::short_commit;
use crate::{
    audit::Location,
    report::time_text,
    source::{
        backup::Backup,
        container::{Place as WorkloadPlace, Workload},
        ContainerValue, GitBlob, GitCommit, LocationKind, Member, Origin,
    },
};

pub struct LocationView<'r> {
    pub kind: LocationKind,
    pub path: &'r Path,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The host whose report named the place (set in merged reports).
    pub host: Option<&'r str>,
    pub mcp_client: Option<&'r str>,
    pub mcp_server: Option<&'r str>,
    pub mcp_field: Option<&'r str>,
    /// The variable or field that holds the key there.
    pub slot: Option<&'r str>,
    /// Permission bits of the file on disk (of the archive, for a member of one).
    pub mode: Option<u32>,
    /// When the place shows the bytes were written: a commit's time for git, else a file's,
    /// member's, layer's or image config's.
    pub time: Option<DateTime<Utc>>,
    pub git: Option<&'r GitBlob>,
    /// The commit whose message holds the key.
    pub commit_message: Option<&'r GitCommit>,
    pub image: Option<ImagePlace<'r>>,
    pub archive: Option<&'r Member>,
    pub backup: Option<&'r Backup>,
    /// The Docker daemon's container the value is of.
    pub container: Option<&'r ContainerValue>,
    /// The workload whose value holds the key, and which part of it.
    pub workload: Option<&'r WorkloadPlace>,
}

/// What a place in an image says of the image: a file of a layer (or an archive in one), or
/// a value of the image config, whose build history entry may name a layer.
#[derive(Default)]
pub struct ImagePlace<'r> {
    /// The image reference (`app:prod`).
    pub image: Option<&'r str>,
    /// The layer's digest and its 1-based position.
    pub layer: Option<&'r str>,
    pub layer_index: Option<usize>,
    /// The build instruction as the image history records it.
    pub created_by: Option<&'r str>,
    /// The later layer that hid the file (only a layer's file has these).
    pub deleted_in_layer: Option<&'r str>,
    pub replaced_in_layer: Option<&'r str>,
}

impl<'r> ImagePlace<'r> {
    fn of(origin: &'r Origin) -> Option<ImagePlace<'r>> {
        if let Origin::ImageConfig(config) = origin {
            return Some(ImagePlace {
                image: config.image.as_deref(),
                layer: config.layer.as_deref(),
                layer_index: config.layer_index,
                created_by: config.created_by.as_deref(),
                ..ImagePlace::default()
            });
        }
        origin.layer_file().map(|file| ImagePlace {
            image: file.image.as_deref(),
            layer: file.layer.as_deref(),
            layer_index: file.layer_index,
            created_by: file.created_by.as_deref(),
            deleted_in_layer: file.deleted_in_layer.as_deref(),
            replaced_in_layer: file.replaced_in_layer.as_deref(),
        })
    }

    /// `layer 3 (sha256:…)`, the instruction that made it, and the layer that hid the file:
    /// what every writer says after the image's name.
    pub fn layer_phrases(&self) -> Vec<String> {
        let mut phrases = Vec::new();
        if let Some(layer) = self.layer {
            let index = self
                .layer_index
                .map(|i| format!(" {i}"))
                .unwrap_or_default();
            phrases.push(format!("layer{index} ({})", short_digest(layer)));
        }
        if let Some(created_by) = self.created_by {
            phrases.push(format!("`{}`", instruction(created_by)));
        }
        if let Some(layer) = self.deleted_in_layer {
            phrases.push(format!(
                "deleted in layer {} (still extractable)",
                short_digest(layer)
            ));
        }
        if let Some(layer) = self.replaced_in_layer {
            phrases.push(format!(
                "replaced in layer {} (still extractable)",
                short_digest(layer)
            ));
        }
        phrases
    }
}

impl<'r> LocationView<'r> {
    pub fn new(location: &'r Location) -> LocationView<'r> {
        let origin = location.origin();
        LocationView {
            kind: location.kind(),
            path: location.path(),
            line: location.line,
            column: location.column,
            host: location.host.as_deref(),
            mcp_client: location.mcp_client.as_deref(),
            mcp_server: location.mcp_server.as_deref(),
            mcp_field: location.mcp_field.as_deref(),
            slot: location.slot.as_deref(),
            mode: origin.disk_file().and_then(|file| file.mode),
            time: origin.time(),
            git: origin.git(),
            commit_message: origin.commit_message(),
            image: ImagePlace::of(origin),
            archive: origin.member(),
            backup: location.provenance.backup.as_ref(),
            container: origin.container(),
            workload: location.workload.as_ref(),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }

    pub fn image_name(&self) -> Option<&'r str> {
        self.image.as_ref().and_then(|image| image.image)
    }

    pub fn member(&self) -> Option<&'r str> {
        self.archive.map(|member| member.member.as_str())
    }

    /// The commit that holds the blob, or whose message holds the key, in full.
    pub fn commit(&self) -> Option<&'r str> {
        match self.commit_message {
            Some(message) => Some(&message.commit),
            None => self.git.and_then(|git| git.commit.as_deref()),
        }
    }

    pub fn mode_phrase(&self) -> Option<String> {
        self.mode.map(|mode| format!("mode {mode:04o}"))
    }

    pub fn commit_phrase(&self) -> Option<String> {
        self.commit()
            .map(|commit| format!("commit {}", short_commit(commit)))
    }

    pub fn removed_phrase(&self) -> Option<String> {
        let removed = self.git.and_then(|git| git.removed_in.as_deref())?;
        Some(format!("removed in {}", short_commit(removed)))
    }

    /// `image app:prod`, or for a container `container api (0123456789ab, running) of image
    /// app:prod`.
    pub fn image_phrase(&self) -> Option<String> {
        if let Some(container) = self.container {
            let state = container
                .state
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default();
            let image = container
                .image
                .as_deref()
                .map(|i| format!(" of image {i}"))
                .unwrap_or_default();
            return Some(format!(
                "container {} ({}{state}){image}",
                container.container,
                short_commit(&container.container_id)
            ));
        }
        self.image_name().map(|image| format!("image {image}"))
    }

    /// `Deployment prod/api env`: the workload whose value holds the key.
    pub fn workload_phrase(&self) -> Option<String> {
        let place = self.workload?;
        // A container's own values: its phrase already names it.
        if self.container.is_some() && place.workload.kind == Workload::CONTAINER {
            return None;
        }
        Some(format!(
            "{} {}",
            place.workload.label(),
            place.part.as_str()
        ))
    }

    pub fn member_phrase(&self) -> Option<String> {
        self.member().map(|member| format!("member {member}"))
    }

    /// What the place says beyond its kind, path and line: the detail column of the
    /// markdown and HTML location tables.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some(host) = self.host {
            parts.push(format!("host {host}"));
        }
        if let Some(server) = self.mcp_server {
            parts.push(format!(
                "{} `{}` {}",
                self.mcp_client.unwrap_or("?"),
                server,
                self.mcp_field.unwrap_or("")
            ));
        }
        if let Some(slot) = self.slot {
            parts.push(format!("slot {slot}"));
        }
        parts.extend(self.mode_phrase());
        match (self.git, self.commit_message) {
            (Some(git), _) => parts.extend(self.history_phrases(git)),
            (None, Some(_)) => {
                parts.extend(self.commit_phrase());
                parts.extend(self.time.map(|t| format!("committed {}", time_text(&t))));
            }
            (None, None) => parts.extend(self.time.map(|t| format!("modified {}", time_text(&t)))),
        }
        parts.extend(self.image_phrase());
        if let Some(image) = &self.image {
            parts.extend(image.layer_phrases());
        }
        if let Some(member) = self.archive {
            parts.push(format!("archive {}", member.archive.display()));
        }
        parts.extend(self.member_phrase());
        parts.extend(self.workload_phrase());
        parts.join(", ")
    }

    /// A blob's place in history, as the detail column tells it.
    fn history_phrases(&self, git: &GitBlob) -> Vec<String> {
        let mut parts: Vec<String> = self.commit_phrase().into_iter().collect();
        if let Some(t) = git.commit_time {
            parts.push(format!("committed {}", time_text(&t)));
        }
        if let Some(in_head) = git.in_head {
            parts.push(if in_head { "in HEAD" } else { "history only" }.to_string());
        }
        if !git.refs.is_empty() {
            parts.push(format!("refs {}", git.refs.join(" ")));
        }
        if git.reachable == Some(false) {
            parts.push("unreachable (no ref holds it)".to_string());
        }
        parts.extend(self.removed_phrase());
        parts
    }
}

/// `sha256:0123456789ab…`
fn short_digest(digest: &str) -> String {
    let end = digest.find(':').map_or(0, |i| i + 1) + 12;
    if digest.len() > end {
        format!("{}…", &digest[..end])
    } else {
        digest.to_string()
    }
}

/// A build history entry as the Dockerfile said it: `/bin/sh -c #(nop)  COPY …` → `COPY …`,
/// `/bin/sh -c make` → `RUN make`; BuildKit's entries already read that way.
fn instruction(created_by: &str) -> String {
    let text = created_by.trim();
    let text = text.strip_suffix("# buildkit").unwrap_or(text).trim_end();
    // `|2 A=1 B=2 /bin/sh -c …`: the build args in scope, then the command.
    let (args, command) = match text.strip_prefix('|') {
        Some(rest) => match rest.find("/bin/sh -c ") {
            Some(at) => (Some(rest[..at].trim()), &rest[at..]),
            None => (None, text),
        },
        None => (None, text),
    };
    let tidy = if let Some(nop) = command.strip_prefix("/bin/sh -c #(nop) ") {
        nop.trim().to_string()
    } else if let Some(run) = command.strip_prefix("/bin/sh -c ") {
        format!("RUN {}", run.trim())
    } else {
        command.to_string()
    };
    match args.and_then(|a| a.split_once(' ')) {
        Some((_, args)) => format!("{tidy} (build args {args})"),
        None => tidy,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::source::{Container, DiskFile, LayerFile, Provenance};

    fn place(path: &str, origin: Origin) -> Location {
        Location::at(Provenance {
            path: path.into(),
            origin,
            backup: None,
        })
    }

    /// A member takes its archive's mode or layer from the container, and its own time.
    #[test]
    fn each_origin_is_described_by_its_own_facts() {
        let time = |day| Utc.with_ymd_and_hms(2024, 6, day, 0, 0, 0).unwrap();
        let layer = LayerFile {
            image: Some("app:prod".into()),
            layer: Some(format!("sha256:{}", "a".repeat(64))),
            layer_index: Some(2),
            created_by: Some("/bin/sh -c #(nop) COPY dir:x in /app".into()),
            mtime: Some(time(1)),
            deleted_in_layer: Some(format!("sha256:{}", "b".repeat(64))),
            replaced_in_layer: None,
        };
        let member = |container| {
            Origin::ArchiveMember(Member {
                archive: "/app/home.tgz".into(),
                member: ".env".into(),
                mtime: Some(time(3)),
                container,
            })
        };
        let in_layer = place("/app/home.tgz!.env", member(Container::ImageLayer(layer)));
        assert_eq!(
            LocationView::new(&in_layer).detail(),
            "modified 2024-06-03T00:00:00Z, image app:prod, layer 2 (sha256:aaaaaaaaaaaa…), \
             `COPY dir:x in /app`, deleted in layer sha256:bbbbbbbbbbbb… (still extractable), \
             archive /app/home.tgz, member .env"
        );
        let on_disk = place(
            "/app/home.tgz!.env",
            member(Container::File(DiskFile {
                mode: Some(0o644),
                mtime: Some(time(1)),
                ..DiskFile::default()
            })),
        );
        assert_eq!(
            LocationView::new(&on_disk).detail(),
            "mode 0644, modified 2024-06-03T00:00:00Z, archive /app/home.tgz, member .env"
        );
        let blob = place(
            ".env",
            Origin::Git(GitBlob {
                commit: Some("0123456789abcdef".into()),
                commit_time: Some(time(2)),
                in_head: Some(false),
                removed_in: Some("fedcba9876543210".into()),
                refs: vec!["refs/heads/main".into()],
                ..GitBlob::default()
            }),
        );
        assert_eq!(
            LocationView::new(&blob).detail(),
            "commit 0123456789ab, committed 2024-06-02T00:00:00Z, history only, \
             refs refs/heads/main, removed in fedcba987654"
        );
        let message = place(
            "0123456789abcdef",
            Origin::GitCommitMessage(GitCommit {
                commit: "0123456789abcdef".into(),
                commit_time: Some(time(2)),
            }),
        );
        assert_eq!(
            LocationView::new(&message).detail(),
            "commit 0123456789ab, committed 2024-06-02T00:00:00Z"
        );
    }
}
