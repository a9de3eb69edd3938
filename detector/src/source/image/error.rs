//! What can go wrong reading an image, one enum per stage: indexing an archive or a stream,
//! reading a small metadata blob, following the layout's manifests, parsing a config, reading
//! a layer, reading a stream the second time. (Talking to the daemon: [`super::DaemonError`].)
//!
//! Each variant carries what its message names; the message becomes text only at the edge of
//! the module, in a [`SourceError`](crate::source::SourceError) (the target could not be read)
//! or a [`Sink::error`](crate::source::Sink::error) (one image, config or layer could not).
use std::io;

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
