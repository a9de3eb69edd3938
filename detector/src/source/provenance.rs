//! Where bytes came from: one typed value, made by the source that read them and carried
//! unchanged into every location of the keys found in them. The origin is an enum, so each
//! kind of place has exactly the facts that place has (a file its mode and inode, a git blob
//! its commit, a layer its digest); a new source is one new variant.
use std::{path::PathBuf, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{backup::Backup, git::GitHistory};

/// Where a blob's bytes came from, and so where a key found in them is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The file: on disk; inside a git tree (a blob id until the audit places it in
    /// history); inside an image's file system; `ARCHIVE!member` inside an archive;
    /// `config.Env` and the like in an image config.
    pub path: PathBuf,
    pub origin: Origin,
    /// A copy made to keep, not to use (an editor leftover, a dotfile manager's source, an
    /// archived copy), and the original it stands for when its name tells.
    pub backup: Option<Backup>,
}

/// The kinds of place a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on this host's disk now.
    File(DiskFile),
    /// An MCP client config on this host's disk now.
    McpConfig(DiskFile),
    /// detector's managed store on this host's disk now: an env file `detector fix` wrote
    /// (its first line is [`super::managed_store::HEADER`]). Keys there are held, not exposed.
    ManagedStore(DiskFile),
    /// A blob of a git repository, placed in its history by the audit.
    Git(GitBlob),
    /// The message of a git commit (the path is the commit's id).
    GitCommitMessage(GitCommit),
    /// A file in a layer of a container image.
    ImageLayer(LayerFile),
    /// A value of a container image's config (`Env`, `Cmd`, labels, build history).
    ImageConfig(ConfigValue),
    /// A member of an archive (nested members included) found in another place.
    ArchiveMember(Member),
    /// A value of a Docker daemon's container (`Config.Env`, its command line, labels).
    Container(ContainerValue),
}

/// A file on disk, as `stat` saw it when it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskFile {
    pub mtime: Option<DateTime<Utc>>,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: Option<u32>,
    /// Device and inode, to join the agent's access log.
    pub dev: Option<u64>,
    pub inode: Option<u64>,
    /// Users other than the owner can read the file (world-readable, or group-readable with
    /// others in the group); `None` when it could not be told.
    pub readable_by_others: Option<bool>,
}

/// A git blob: its id, and once the audit has placed it, one commit that holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitBlob {
    /// The blob's object id (`git cat-file -p <blob>`).
    pub blob: Option<String>,
    pub commit: Option<String>,
    pub commit_time: Option<DateTime<Utc>>,
    pub in_head: Option<bool>,
    /// The commit that took the key out of this path on the history leading to HEAD.
    pub removed_in: Option<String>,
    /// The refs (branches, tags, remote-tracking refs, stash, notes) whose history holds it.
    pub refs: Vec<String>,
    /// False for an object no ref reaches (left by `reset --hard`, a force-push, a dropped
    /// stash) that is still in the object database.
    pub reachable: Option<bool>,
    /// The repository's history, while the blob is still to be placed in it.
    pub history: Option<HistoryRef>,
}

/// A git commit whose message holds the bytes: its id and author time (committer time when
/// the author line is unreadable), as a blob's location carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitCommit {
    pub commit: String,
    pub commit_time: Option<DateTime<Utc>>,
}

/// A handle on a repository's history; two handles are equal when they are the same history.
#[derive(Clone)]
pub struct HistoryRef(pub Arc<GitHistory>);

impl PartialEq for HistoryRef {
    fn eq(&self, other: &HistoryRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HistoryRef {}

impl std::fmt::Debug for HistoryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryRef")
    }
}

/// A file in an image layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerFile {
    /// The image reference (`app:prod`).
    pub image: Option<String>,
    /// The layer's digest, its 1-based position (the base layer is 1) and the build
    /// instruction that made it (`history[].created_by`).
    pub layer: Option<String>,
    pub layer_index: Option<usize>,
    pub created_by: Option<String>,
    /// When the layer (or, failing that, the file in it) was made.
    pub mtime: Option<DateTime<Utc>>,
    /// The later layer that deleted the file (a whiteout) or put another file at its path:
    /// hidden from the image's file system, not from anyone who extracts the layer.
    pub deleted_in_layer: Option<String>,
    pub replaced_in_layer: Option<String>,
}

/// A value of an image config; a build history entry names the layer it made, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigValue {
    pub image: Option<String>,
    pub layer: Option<String>,
    pub layer_index: Option<usize>,
    pub created_by: Option<String>,
    /// When the image (or the history entry) was made.
    pub mtime: Option<DateTime<Utc>>,
}

/// A value of a container of the local Docker daemon, running or stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerValue {
    /// Its name (without Docker's leading `/`).
    pub container: String,
    pub container_id: String,
    /// The image it was started from, as given (`app:prod`), and that image's id.
    pub image: Option<String>,
    pub image_id: Option<String>,
    /// When the container was created.
    pub created: Option<DateTime<Utc>>,
    /// `running`, `exited`, `created`, … when it was read.
    pub state: Option<String>,
}

/// A member of an archive, and where the archive itself is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The archive as its place names it (a path on disk, a path inside an image layer).
    pub archive: PathBuf,
    /// `member` or `inner.tgz!member` for nested archives.
    pub member: String,
    /// The member's time, else the archive's.
    pub mtime: Option<DateTime<Utc>>,
    /// Where the archive is: a file on disk or a file in an image layer.
    pub container: Container,
}

/// What holds an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    File(DiskFile),
    ImageLayer(LayerFile),
}

/// What kind of place a location is; the report's `locations[].kind`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum LocationKind {
    #[default]
    File,
    McpConfig,
    Git,
    ImageLayer,
    ImageConfig,
    ArchiveMember,
    GitCommitMessage,
    ManagedStore,
    Container,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::File => "file",
            LocationKind::McpConfig => "mcp-config",
            LocationKind::Git => "git",
            LocationKind::ImageLayer => "image-layer",
            LocationKind::ImageConfig => "image-config",
            LocationKind::ArchiveMember => "archive-member",
            LocationKind::GitCommitMessage => "git-commit-message",
            LocationKind::ManagedStore => "managed-store",
            LocationKind::Container => "container",
        }
    }
}

impl Origin {
    pub fn kind(&self) -> LocationKind {
        match self {
            Origin::File(_) => LocationKind::File,
            Origin::McpConfig(_) => LocationKind::McpConfig,
            Origin::Git(_) => LocationKind::Git,
            Origin::ImageLayer(_) => LocationKind::ImageLayer,
            Origin::ImageConfig(_) => LocationKind::ImageConfig,
            Origin::ArchiveMember(_) => LocationKind::ArchiveMember,
            Origin::GitCommitMessage(_) => LocationKind::GitCommitMessage,
            Origin::ManagedStore(_) => LocationKind::ManagedStore,
            Origin::Container(_) => LocationKind::Container,
        }
    }

    /// The file on disk, directly or as the archive that holds the member.
    pub fn disk_file(&self) -> Option<&DiskFile> {
        match self {
            Origin::File(file) | Origin::McpConfig(file) | Origin::ManagedStore(file) => Some(file),
            Origin::ArchiveMember(Member {
                container: Container::File(file),
                ..
            }) => Some(file),
            _ => None,
        }
    }

    /// The image layer file, directly or as the archive that holds the member.
    pub fn layer_file(&self) -> Option<&LayerFile> {
        match self {
            Origin::ImageLayer(layer) => Some(layer),
            Origin::ArchiveMember(Member {
                container: Container::ImageLayer(layer),
                ..
            }) => Some(layer),
            _ => None,
        }
    }

    pub fn git(&self) -> Option<&GitBlob> {
        match self {
            Origin::Git(git) => Some(git),
            _ => None,
        }
    }

    pub fn git_mut(&mut self) -> Option<&mut GitBlob> {
        match self {
            Origin::Git(git) => Some(git),
            _ => None,
        }
    }

    /// The commit whose message holds the bytes.
    pub fn commit_message(&self) -> Option<&GitCommit> {
        match self {
            Origin::GitCommitMessage(commit) => Some(commit),
            _ => None,
        }
    }

    /// The commit a git place names: the one that holds a blob, or whose message it is.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Origin::Git(git) => git.commit.as_deref(),
            Origin::GitCommitMessage(commit) => Some(&commit.commit),
            _ => None,
        }
    }

    pub fn member(&self) -> Option<&Member> {
        match self {
            Origin::ArchiveMember(member) => Some(member),
            _ => None,
        }
    }

    /// The container of the Docker daemon the place is a value of.
    pub fn container(&self) -> Option<&ContainerValue> {
        match self {
            Origin::Container(container) => Some(container),
            _ => None,
        }
    }

    /// The image the place belongs to (a container's: the image it runs).
    pub fn image(&self) -> Option<&str> {
        match self {
            Origin::ImageConfig(config) => config.image.as_deref(),
            Origin::Container(container) => container.image.as_deref(),
            _ => self.layer_file().and_then(|l| l.image.as_deref()),
        }
    }

    /// When the place shows the bytes were written: a file's or member's mtime, a layer's or
    /// config's creation, a commit's time.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Origin::File(file) | Origin::McpConfig(file) | Origin::ManagedStore(file) => file.mtime,
            Origin::Git(git) => git.commit_time,
            Origin::GitCommitMessage(commit) => commit.commit_time,
            Origin::ImageLayer(layer) => layer.mtime,
            Origin::ImageConfig(config) => config.mtime,
            Origin::ArchiveMember(member) => member.mtime,
            Origin::Container(container) => container.created,
        }
    }

    /// The build instruction a layer or history entry carries (it may hold `--build-arg`
    /// values in clear, to be scrubbed).
    pub fn created_by_mut(&mut self) -> Option<&mut String> {
        match self {
            Origin::ImageLayer(layer)
            | Origin::ArchiveMember(Member {
                container: Container::ImageLayer(layer),
                ..
            }) => layer.created_by.as_mut(),
            Origin::ImageConfig(config) => config.created_by.as_mut(),
            _ => None,
        }
    }

    /// True when the place is current: a file on disk now, a blob in a HEAD tree, a file or
    /// value of an image as it ships (a layer's file stays in the layer even when a later
    /// layer hides it). A commit message is history, never current. Keys only ever seen in
    /// places that are not current are rotated or removed.
    pub fn is_current(&self) -> bool {
        match self {
            Origin::Git(git) => git.in_head == Some(true),
            Origin::GitCommitMessage(_) => false,
            _ => true,
        }
    }
}

impl Provenance {
    /// Can anyone but the owner read it? Where the source could not tell, the mode says.
    pub fn is_readable_by_others(&self) -> bool {
        self.origin.disk_file().is_some_and(|file| {
            file.readable_by_others
                .unwrap_or_else(|| file.mode.is_some_and(|mode| mode & 0o004 != 0))
        })
    }

    /// The file to act on (chmod, delete): the archive for a member, else the path.
    pub fn file(&self) -> &std::path::Path {
        match &self.origin {
            Origin::ArchiveMember(member) => &member.archive,
            _ => &self.path,
        }
    }
}
