//! What can go wrong reading an image, one enum per stage: indexing an archive or a stream,
//! reading a small metadata blob, following the layout's manifests, parsing a config, reading
//! a layer, reading a stream the second time. (Talking to the daemon: [`super::DaemonError`].)
//!
//! Each variant carries what its message names; the message becomes text only at the edge of
//! the module, in a [`SourceError`](crate::source::SourceError) (the target could not be read)
//! or a [`Sink::error`](crate::source::Sink::error) (one image, config or layer could not).
use std::io;

use crate::source::docker::DaemonError;
use crate::source::fs::io_reason;

/// A file or stream that cannot be indexed as the tar archive of an image layout.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}", io_reason(.0))]
    Io(io::Error),
    #[error("is a directory (use oci-dir:PATH for an OCI layout directory)")]
    Directory,
    #[error("not a regular file")]
    NotRegularFile,
    #[error("not a tar archive: {}", io_reason(.0))]
    NotTar(io::Error),
    #[error("not a tar archive (no members)")]
    NoMembers,
    /// A stream that broke after `members` members: unlike a file, not indexed in part.
    #[error("broke after {members} members: {}", io_reason(error))]
    Broke { members: usize, error: io::Error },
    /// A member of a stream that could not be read.
    #[error("{name}: {}", io_reason(error))]
    Member { name: String, error: io::Error },
}

/// What is wrong with an archive file whose members were indexed up to the damage: those are
/// still read, and the damage is reported beside them.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error(
        "the archive is corrupt or truncated after {members} members: {}",
        io_reason(error)
    )]
    Corrupt { members: usize, error: io::Error },
    /// The last member's header was whole but its data is cut short.
    #[error("the archive is truncated: it ends inside {member}")]
    EndsInside { member: String },
}

/// A small metadata blob (a manifest, an index, a config) that cannot be read whole.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{}", io_reason(.0))]
    Open(io::Error),
    #[error("{name} is {size} bytes, more than a metadata file may be")]
    TooLarge { name: String, size: u64 },
    #[error("{name}: {}", io_reason(error))]
    Read { name: String, error: io::Error },
}

/// A member of a stream that was read as a layer and not kept, asked for as metadata (it
/// reaches [`MetadataError::Read`] as the error of a read).
#[derive(Debug, thiserror::Error)]
#[error("{0} is not JSON, so not an image's metadata")]
pub struct NotMetadata(pub String);

/// A layout whose images cannot be listed (from [`super::layout::images`]: the target
/// fails), or one image of an OCI index that cannot be followed (listed against the image).
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("not an image archive: no manifest.json (nor an OCI index.json)")]
    NoManifest,
    #[error("not an OCI image layout: no index.json")]
    NoIndex,
    #[error("manifest.json is not a docker save manifest: {0}")]
    DockerManifest(serde_json::Error),
    #[error("index.json is not valid JSON: {0}")]
    IndexJson(serde_json::Error),
    #[error("invalid digest {0:?} in an index")]
    InvalidDigest(String),
    #[error("missing blob {0} named by the index")]
    MissingManifest(String),
    #[error("manifest {digest} is not valid JSON: {error}")]
    ManifestJson {
        digest: String,
        error: serde_json::Error,
    },
    #[error("an index nested more than {0} deep: not followed")]
    TooDeep(usize),
    #[error("manifest {0} names no config")]
    NoConfig(String),
}

impl LayoutError {
    /// One of the scan's limits, rather than something wrong with the layout: what it stopped
    /// is over-limit, not unreadable.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            LayoutError::TooDeep(_) | LayoutError::Metadata(MetadataError::TooLarge { .. })
        )
    }
}

/// An image config that is not JSON of the config's shape.
#[derive(Debug, thiserror::Error)]
#[error("the image config is not valid JSON: {0}")]
pub struct ConfigError(pub serde_json::Error);

/// A layer read only in part (the files before the damage were handed on), or not at all.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("not a readable layer: {}", io_reason(.0))]
    Unreadable(io::Error),
    #[error(
        "layer is corrupt or truncated after {entries} entries: {}",
        io_reason(error)
    )]
    Truncated { entries: usize, error: io::Error },
    /// Decompression that passed a limit ([`super::layer::budget`]): the files before the
    /// cut were handed on.
    #[error(
        "layer {digest} {limit}; stopped after {expanded} decompressed bytes \
         (files read before the cut: {files}), the rest is not scanned"
    )]
    OverLimit {
        digest: String,
        limit: String,
        files: u64,
        expanded: u64,
    },
}

/// What went wrong with one image's config or one of its layers: listed against it, while
/// the rest of the target is read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The config or layer blob the manifest names (by digest, else by name) is not there.
    #[error("missing blob {0} named by the manifest")]
    MissingBlob(String),
    #[error(transparent)]
    Metadata(MetadataError),
    #[error(transparent)]
    Config(ConfigError),
    /// A layer's blob that is there but could not be opened.
    #[error("{}", io_reason(.0))]
    Open(io::Error),
    #[error("blob is {size} bytes, the manifest says {expected}")]
    Size { size: u64, expected: u64 },
    #[error(transparent)]
    Layer(LayerError),
    #[error("scanning a layer's files panicked")]
    Panicked,
}

impl ImageError {
    /// One of the scan's limits, rather than something wrong with the image: what it stopped
    /// is over-limit, not unreadable.
    pub fn is_limit(&self) -> bool {
        matches!(self, ImageError::Layer(LayerError::OverLimit { .. }))
    }
}

/// A stream of the image that cannot be opened (the first time, or again).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{}", io_reason(.0))]
    Io(io::Error),
    #[error("cannot decompress: {}", io_reason(.0))]
    Decompress(io::Error),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

/// The second read of a stream that failed: what was read of it is reported, the rest is
/// unknown, so the target fails.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the image again: {0}")]
    Reopen(OpenError),
    #[error("the image's second stream broke: {}", io_reason(.0))]
    Broke(io::Error),
    #[error("the image changed between the two reads of its stream ({0}); scan it again")]
    Changed(Change),
}

/// How the second stream of an image differs from the first, by member name.
#[derive(Debug, thiserror::Error)]
pub enum Change {
    #[error("{0} links elsewhere")]
    Link(String),
    #[error("{0} is new or of another size")]
    Size(String),
    #[error("{0} differs")]
    Content(String),
    #[error("layer {0} holds other files")]
    Files(String),
    #[error("{0} is gone")]
    Gone(String),
}
