//! One layer, streamed: decompressed on the fly (none, gzip or zstd, told by its first
//! bytes, not by what the manifest claims), its tar read entry by entry, each regular file
//! handed on as a blob with the layer's provenance, nothing written to disk.
use std::{
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};

use super::{
    error::LayerError,
    overlay::{Entry, How, LayerChanges, Overlay},
};
use crate::source::{
    archive::{
        self,
        budget::{Budget, Charged},
        ArchiveLimits, ArchiveOptions, ArchivePlace,
    },
    fs::{is_binary, recognise_within},
    Blob, Container, LayerFile, Origin, Provenance, Sink, Skip, SkipReason, SourceOptions,
};

/// How many leading bytes of a file decide whether it is binary, or an archive (as for files
/// on disk).
const BINARY_PROBE: u64 = 8 * 1024;
const READ_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// A reader of the decompressed bytes.
    pub fn decoder<'a, R: BufRead + 'a>(self, reader: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            // Concatenated gzip members are one stream (pigz, some registries).
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
        })
    }
}

/// The budget a layer's decompression is charged to, one per read of a layer: the ratio
/// limit of archives alone. Real layers pass a gigabyte and a hundred thousand files, so the
/// byte and member limits of an archive a user packed do not apply to them, but a layer that
/// expands to more than `--max-archive-ratio` times its stored size (`stored`, when known) is
/// a bomb. An image compressed as a whole (`docker save | gzip`) is charged to one too.
pub fn budget(limits: &ArchiveLimits, stored: Option<u64>) -> Budget {
    let limits = ArchiveLimits {
        max_bytes: u64::MAX,
        max_members: u64::MAX,
        ..*limits
    };
    Budget::new(limits, stored)
}

/// What a layer is, for the provenance of its files.
#[derive(Debug, Clone)]
pub struct LayerPlace {
    pub image: String,
    /// The layer's digest (`sha256:…`, its diff id when the config names one).
    pub digest: String,
    /// 1-based, the base layer is 1.
    pub index: usize,
    pub created_by: Option<String>,
    pub created: Option<DateTime<Utc>>,
}

/// What reading a layer gave: its changes for the layers below, and the error that cut it
/// short, if any (the files before it were still handed on).
pub struct LayerRead {
    pub changes: LayerChanges,
    pub files: u64,
    pub error: Option<LayerError>,
}

/// Where the files of a layer go.
pub trait LayerSink {
    fn blob(&mut self, blob: Blob);
    fn skipped(&mut self, path: &Path, reason: SkipReason);
    /// The target's sink, for the members of archives found in the layer.
    fn target(&self) -> &dyn Sink;
}

/// Read one layer, of `stored` bytes as stored when that is known. `overlay` holds the
/// changes of every layer above this one, and `digests[i]` is the digest of layer `i`
/// (0-based), to name the layer that hides a file.
#[allow(clippy::too_many_arguments)]
pub fn read_layer(
    reader: Box<dyn Read + '_>,
    stored: Option<u64>,
    place: &LayerPlace,
    overlay: &Overlay,
    digests: &[String],
    options: &SourceOptions,
    out: &mut dyn LayerSink,
) -> LayerRead {
    let mut changes = LayerChanges::default();
    let mut files = 0;
    let budget = budget(&options.archive, stored);
    let error = match read_entries(
        reader,
        &budget,
        place,
        overlay,
        digests,
        options,
        out,
        &mut changes,
        &mut files,
    ) {
        Ok(()) => None,
        Err(_) if budget.hit().is_some() => Some(LayerError::OverLimit {
            digest: place.digest.clone(),
            limit: budget.limit(),
            files,
            expanded: budget.expanded(),
        }),
        Err(e) if files == 0 && changes.entries.is_empty() => Some(LayerError::Unreadable(e)),
        Err(error) => Some(LayerError::Truncated {
            entries: changes.entries.len() + changes.whiteouts.len() + changes.opaque.len(),
            error,
        }),
    };
    LayerRead {
        changes,
        files,
        error,
    }
}

/// Only the changes a layer makes to the layers below it (the paths of its entries, its
/// whiteouts), its files' contents passed over unread. A layer that is corrupt or cut short
/// (by damage, or by a limit) gives the changes of the entries before, as [`read_layer`]
/// does.
pub fn layer_changes(
    reader: Box<dyn Read + '_>,
    stored: Option<u64>,
    limits: &ArchiveLimits,
) -> LayerChanges {
    let mut changes = LayerChanges::default();
    let budget = budget(limits, stored);
    // The damage is for `read_layer` to report, when the layer's files are read.
    let _ = record_changes(reader, &budget, &mut changes);
    changes
}

fn record_changes(
    reader: Box<dyn Read + '_>,
    budget: &Budget,
    changes: &mut LayerChanges,
) -> io::Result<()> {
    let mut archive = open_tar(reader, budget)?;
    for entry in archive.entries()? {
        let entry = entry?;
        if let Some(path) = super::store::member_name(&entry.path_bytes()) {
            changes.record(&path, entry.header().entry_type().is_dir());
        }
    }
    Ok(())
}

/// The layer's tar, decompressed as its first bytes say, what decompression makes charged to
/// `budget`.
fn open_tar<'a>(
    reader: Box<dyn Read + 'a>,
    budget: &'a Budget,
) -> io::Result<tar::Archive<Box<dyn Read + 'a>>> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER, reader);
    let tar: Box<dyn Read + 'a> = match Compression::sniff(buffered.fill_buf()?) {
        Compression::None => Box::new(buffered),
        compression => Box::new(Charged::made(compression.decoder(buffered)?, budget)),
    };
    Ok(tar::Archive::new(tar))
}

#[allow(clippy::too_many_arguments)]
fn read_entries(
    reader: Box<dyn Read + '_>,
    budget: &Budget,
    place: &LayerPlace,
    overlay: &Overlay,
    digests: &[String],
    options: &SourceOptions,
    out: &mut dyn LayerSink,
    changes: &mut LayerChanges,
    files: &mut u64,
) -> io::Result<()> {
    let mut archive = open_tar(reader, budget)?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(path) = super::store::member_name(&entry.path_bytes()) else {
            continue;
        };
        let kind = entry.header().entry_type();
        if changes.record(&path, kind.is_dir()) == Entry::Whiteout {
            continue;
        }
        if !(kind.is_file() || kind.is_gnu_sparse() || kind == tar::EntryType::Continuous) {
            // Directories, links (their target is read where it is), devices.
            continue;
        }
        *files += 1;
        // A sparse file's size is the file's; what the layer stores of it is less (its
        // holes are made up as it is read).
        let size = entry.size();
        let stored = if kind.is_gnu_sparse() {
            entry.header().entry_size().unwrap_or(0)
        } else {
            size
        };
        let mut bytes = Vec::with_capacity(size.min(BINARY_PROBE) as usize);
        (&mut entry).take(BINARY_PROBE).read_to_end(&mut bytes)?;
        let hidden = overlay.hidden(&path);
        let hider = |how: How| {
            hidden
                .filter(|h| h.how == how)
                .and_then(|h| digests.get(h.layer).cloned())
        };
        let mtime = place.created.or_else(|| {
            entry
                .header()
                .mtime()
                .ok()
                .and_then(|t| DateTime::from_timestamp(t as i64, 0))
        });
        let file = LayerFile {
            image: Some(place.image.clone()),
            layer: Some(place.digest.clone()),
            layer_index: Some(place.index),
            created_by: place.created_by.clone(),
            mtime,
            deleted_in_layer: hider(How::Deleted),
            replaced_in_layer: hider(How::Replaced),
        };
        let path = PathBuf::from(format!("/{path}"));
        // Archives in the layer (a `.tar.gz` backup, a `.jar`) are opened as the directory
        // source opens them, within the same limits, their members streamed too.
        if options.archive.max_depth > 0 {
            if let Some(format) = archive::sniff(&bytes) {
                let place = ArchivePlace {
                    archive: path,
                    container: Container::ImageLayer(file),
                    project: place.image.clone(),
                    root: PathBuf::from("/"),
                };
                let archive_options = ArchiveOptions {
                    limits: options.archive,
                    max_member_size: options.max_file_size,
                };
                let mut member = io::Cursor::new(bytes).chain(&mut entry);
                archive::scan_reader(
                    &mut member,
                    Some(stored),
                    format,
                    &place,
                    &archive_options,
                    out.target(),
                );
                continue;
            }
        }
        if size > options.max_file_size {
            let detail = format!(
                "{size} bytes, over --max-file-size {}",
                options.max_file_size
            );
            out.target().not_scanned(Skip {
                detail: Some(&detail),
                ..Skip::new(&path, SkipReason::TooLarge)
            });
            continue;
        }
        if is_binary(&bytes) {
            out.skipped(&path, SkipReason::Binary);
            continue;
        }
        bytes.reserve(size.saturating_sub(bytes.len() as u64) as usize);
        entry.read_to_end(&mut bytes)?;
        let blob = Blob {
            bytes,
            provenance: Provenance {
                path: path.clone(),
                // Hidden or not, the file is in a layer of the image as it ships.
                origin: Origin::ImageLayer(file),
                backup: None,
            },
            project: place.image.clone(),
            root: PathBuf::from("/"),
            mcp: None,
            fields: None,
        };
        // An MCP config or a credential file in the image is read as one, in the image's scope.
        out.blob(recognise_within(blob, &path, false, Some(&place.image)));
    }
    Ok(())
}
