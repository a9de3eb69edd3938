//! Container images: `docker:NAME[:TAG]` (the local daemon), `docker-archive:PATH` (`docker
//! save`, legacy or OCI layout, maybe compressed), `oci-dir:PATH` and `oci-archive:PATH`.
//!
//! Every image of the layout (or the one `--platform` names) is read: its config (`Env`,
//! `Cmd`, `Entrypoint`, labels, and the build history where `--build-arg` values leak), then
//! its layers from the top down, each streamed on its own. Reading top-down means that when a
//! layer's files are read, the whiteouts and replacements of every layer above it are known
//! ([`overlay`]), so a file a later layer deleted is reported with `deleted_in_layer`: it is
//! hidden from the image's filesystem, not from anyone who pulls the image and extracts the
//! layer. Each layer's files carry the build instruction that made it.
//!
//! A layer is known by its digest (the config's diff id); one shared by several images in a
//! run is read once, and its findings name the first image read with it.
//!
//! An archive or a layout on disk is read in place, its layers opened in that order. The
//! daemon's stream (`docker:`) cannot be: it is read twice ([`stream`]), first for the
//! metadata and each layer's changes, then for the layers' files, each read as it comes with
//! the overlay the first read gave; nothing of it is written to disk.
mod config;
mod error;
mod layer;
mod layout;
mod overlay;
mod store;
mod stream;

use std::{
    collections::BTreeSet,
    fs::File,
    path::{Path, PathBuf},
    rc::Rc,
    sync::{mpsc, Arc},
};

use rayon::iter::{ParallelBridge, ParallelIterator};

use crate::source::docker as daemon;
pub use crate::source::docker::{images as local_images, DaemonError};
pub use layout::Layout;

use self::{
    config::ImageConfig,
    error::{ArchiveError, ImageError, OpenError},
    layer::{Compression, LayerPlace, LayerRead, LayerSink},
    layout::{platform_matches, short, BlobRef, ImageSpec, METADATA_LIMIT},
    overlay::{LayerChanges, Overlay},
    store::{read_small, DirStore, Store, TarStore},
};
use super::{
    archive::budget::Charged, fs::io_reason, seen::Seen, Blob, Context, Sink, Skip, SkipReason,
    SourceError, SourceOptions, Target,
};

/// Blobs read ahead of the matching threads; bounds memory, keeps both busy.
const PIPELINE_DEPTH: usize = 32;

/// The layers read in a run, by digest, with the changes each makes to the layers below it,
/// which a later image sharing the layer still needs.
pub type ReadLayers = Seen<String, Arc<LayerChanges>>;

/// `docker-archive:PATH` or `oci-archive:PATH`.
pub fn scan_archive(
    path: &Path,
    expected: Layout,
    context: &Context,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let error = |reason: ArchiveError| SourceError::new(path, reason);
    let compression = TarStore::compression(path).map_err(error)?;
    if compression == Compression::None {
        let store = TarStore::open_path(path).map_err(error)?;
        return scan_store(
            &store,
            Layers::InStore,
            path,
            expected,
            &layout_name(path),
            None,
            context,
            sink,
        );
    }
    // Compressed as a whole (`docker save | gzip`): its members cannot be reached in place,
    // so it is read as a stream twice, as a daemon's is, and nothing is written to disk.
    // Each read's decompression is charged as a layer's is.
    let limits = &context.options.archive;
    let open = || -> Result<Box<dyn std::io::Read>, OpenError> {
        let file = crate::source::fs::open_file(path).map_err(OpenError::Io)?;
        let size = file.metadata().map(|m| m.len()).ok();
        let decoder = compression
            .decoder(std::io::BufReader::new(file))
            .map_err(OpenError::Decompress)?;
        let budget = Rc::new(layer::budget(limits, size));
        Ok(Box::new(Charged::made(decoder, budget)))
    };
    let first = open().map_err(|reason| SourceError::new(path, reason))?;
    let index = stream::StreamIndex::read(first, limits)
        .map_err(|reason| SourceError::new(path, format!("cannot decompress or read: {reason}")))?;
    scan_store(
        &index,
        Layers::Streamed {
            index: &index,
            again: &open,
        },
        path,
        expected,
        &layout_name(path),
        None,
        context,
        sink,
    )
}

/// `oci-dir:PATH`.
pub fn scan_oci_dir(path: &Path, context: &Context, sink: &dyn Sink) -> Result<(), SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::new(path, io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(SourceError::new(
            path,
            "not a directory (use oci-archive:PATH for an OCI layout in a tar)",
        ));
    }
    let store = DirStore::new(path);
    scan_store(
        &store,
        Layers::InStore,
        path,
        Layout::Oci,
        &layout_name(path),
        None,
        context,
        sink,
    )
}

/// `docker:NAME[:TAG]`.
pub fn scan_daemon(name: &str, context: &Context, sink: &dyn Sink) -> Result<(), SourceError> {
    let origin = Path::new(name);
    daemon::inspect(name).map_err(|err| SourceError::new(origin, err))?;
    let save =
        || -> Result<Box<dyn std::io::Read>, OpenError> { Ok(Box::new(daemon::save(name)?)) };
    let first = save().map_err(|reason| SourceError::new(origin, reason))?;
    let index = stream::StreamIndex::read(first, &context.options.archive).map_err(|reason| {
        SourceError::new(origin, format!("the daemon's image stream: {reason}"))
    })?;
    scan_store(
        &index,
        Layers::Streamed {
            index: &index,
            again: &save,
        },
        origin,
        Layout::Docker,
        name,
        Some(name),
        context,
        sink,
    )
}

/// The image target a bare path is, if it is one: a directory with `oci-layout` and
/// `index.json`, or a tar whose members are those of a `docker save` or OCI layout.
pub fn layout_at(path: &Path) -> Option<Target> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        let oci = path.join("oci-layout").is_file() && path.join("index.json").is_file();
        return oci.then(|| Target::OciDir(path.to_path_buf()));
    }
    if !meta.is_file() {
        return None;
    }
    let file = File::open(path).ok()?;
    let mut magic = [0u8; 5];
    crate::platform::read_exact_at(&file, &mut magic, 257).ok()?;
    if &magic != b"ustar" {
        return None;
    }
    let (mut docker, mut oci_layout, mut oci_index) = (false, false, false);
    let mut archive = tar::Archive::new(&file);
    for entry in archive.entries_with_seek().ok()? {
        let entry = entry.ok()?;
        let Some(name) = store::member_name(&entry.path_bytes()) else {
            continue; // `./`
        };
        let top = name.split('/').next().unwrap_or_default();
        match name.as_str() {
            "manifest.json" => docker = true,
            "oci-layout" => oci_layout = true,
            "index.json" => oci_index = true,
            "repositories" => {}
            _ if top == "blobs" => {}
            _ if is_hex64(top.strip_suffix(".json").unwrap_or(top)) => {}
            // Anything else: an ordinary tar, left to the file source.
            _ => return None,
        }
    }
    let path = path.to_path_buf();
    if docker {
        Some(Target::DockerArchive(path))
    } else if oci_layout && oci_index {
        Some(Target::OciArchive(path))
    } else {
        None
    }
}

fn is_hex64(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `img.tar.gz` → `img`: the name of images the layout leaves unnamed.
fn layout_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut name = name.as_str();
    for ext in [".gz", ".tgz", ".zst", ".tar", ".oci", ".docker"] {
        if let Some(stem) = name.strip_suffix(ext).filter(|s| !s.is_empty()) {
            name = stem;
        }
    }
    name.to_string()
}

/// How the layers of a store are read.
enum Layers<'a> {
    /// Opened from the store, each image's from the top down.
    InStore,
    /// From a second stream of what `index` was read from, in the stream's order, with the
    /// changes `index` kept of each layer.
    Streamed {
        index: &'a stream::StreamIndex,
        again: &'a stream::Reopen<'a>,
    },
}

/// Read every image of `store`. `reference` overrides the layout's names (the name a
/// `docker:` target was given).
#[allow(clippy::too_many_arguments)]
fn scan_store(
    store: &dyn Store,
    layers: Layers<'_>,
    origin: &Path,
    expected: Layout,
    name: &str,
    reference: Option<&str>,
    context: &Context,
    sink: &dyn Sink,
) -> Result<(), SourceError> {
    let options = &context.options;
    let mut index_errors = Vec::new();
    let damage = store.damage();
    let mut images =
        layout::images(store, expected, name, &mut index_errors).map_err(|reason| {
            SourceError::new(
                origin,
                match damage {
                    Some(damage) => format!("{damage}; {reason}"),
                    None => reason.to_string(),
                },
            )
        })?;
    if let Some(reference) = reference {
        for image in &mut images {
            image.reference = reference.to_string();
        }
    }
    // What a limit stopped is listed as such; the archive's damage first, then what of the
    // layout could not be followed.
    let (limits, index_errors): (Vec<_>, Vec<_>) = index_errors
        .into_iter()
        .partition(|(_, reason)| reason.is_limit());
    for (image, reason) in &limits {
        report(sink, Path::new(image), &reason.to_string(), true);
    }
    let index_errors: Vec<(String, String)> = damage
        .map(|damage| (origin.display().to_string(), damage.to_string()))
        .into_iter()
        .chain(
            index_errors
                .into_iter()
                .map(|(image, reason)| (image, reason.to_string())),
        )
        .collect();
    for (image, reason) in &index_errors {
        sink.error(Path::new(image), reason);
    }
    if images.is_empty() {
        let reason = index_errors
            .first()
            .map(|(image, reason)| format!("{image}: {reason}"))
            .unwrap_or_else(|| "the layout lists no image".to_string());
        return Err(SourceError::new(origin, reason));
    }

    let mut outcome = Outcome::default();
    let mut broken = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Blob>(PIPELINE_DEPTH);
        let matcher = scope.spawn(move || {
            receiver
                .into_iter()
                .par_bridge()
                .for_each(|blob| sink.blob(blob));
        });
        let mut out = Out {
            sender,
            sink,
            read_layers: &context.read_layers,
        };
        let mut prepared: Vec<Prepared> = images
            .iter()
            .filter_map(|image| prepare_image(store, image, options, &mut out, &mut outcome))
            .collect();
        match layers {
            Layers::InStore => read_layers(store, &mut prepared, options, &mut out, &mut outcome),
            Layers::Streamed { index, again } => {
                broken = stream::read_layers(
                    index,
                    again,
                    &mut prepared,
                    options,
                    &mut out,
                    &mut outcome,
                )
                .err();
            }
        }
        for image in prepared {
            outcome.errors.extend(image.errors());
        }
        drop(out);
        if matcher.join().is_err() {
            outcome
                .errors
                .push((PathBuf::from(name), ImageError::Panicked));
        }
    });
    if let Some(reason) = broken {
        // What was read is reported, but the target failed: the rest is unknown.
        for (path, reason) in &outcome.errors {
            report_error(sink, path, reason);
        }
        return Err(SourceError::new(origin, reason));
    }
    if let Some(wanted) = &options.platform {
        if outcome.selected == 0 {
            let found: Vec<&str> = outcome.platforms.iter().map(String::as_str).collect();
            return Err(SourceError::new(
                origin,
                format!(
                    "no image for platform {wanted} (found: {})",
                    if found.is_empty() {
                        "none that says".to_string()
                    } else {
                        found.join(", ")
                    }
                ),
            ));
        }
    }
    if !outcome.readable {
        // The first error becomes the target's; the rest are listed after it.
        let mut errors = outcome.errors.into_iter();
        let reason = errors
            .next()
            .map(|(path, reason)| format!("{}: {reason}", path.display()))
            .unwrap_or_else(|| "nothing in the image could be read".to_string());
        for (path, reason) in errors {
            report_error(sink, &path, &reason);
        }
        return Err(SourceError::new(origin, reason));
    }
    for (path, reason) in &outcome.errors {
        report_error(sink, path, reason);
    }
    Ok(())
}

/// What could not be read of a target: what a limit cut short is listed as over-limit (not
/// scanned), anything else as an error.
fn report(sink: &dyn Sink, path: &Path, reason: &str, limit: bool) {
    if limit {
        sink.not_scanned(Skip {
            detail: Some(reason),
            ..Skip::new(path, SkipReason::OverLimit)
        });
    } else {
        sink.error(path, reason);
    }
}

fn report_error(sink: &dyn Sink, path: &Path, error: &ImageError) {
    report(sink, path, &error.to_string(), error.is_limit());
}

#[derive(Default)]
struct Outcome {
    /// Something was read: a config or a layer, even in part.
    readable: bool,
    /// Images that passed the platform filter.
    selected: usize,
    /// The platforms seen, to say what there was when none matched.
    platforms: BTreeSet<String>,
    errors: Vec<(PathBuf, ImageError)>,
}

/// Layer files go to the matching threads; skips go straight to the target's sink; the
/// layers read are remembered for the rest of the run.
struct Out<'a> {
    sender: mpsc::SyncSender<Blob>,
    sink: &'a dyn Sink,
    read_layers: &'a ReadLayers,
}

impl LayerSink for Out<'_> {
    fn blob(&mut self, blob: Blob) {
        // The receiver only goes away if matching panicked; that is reported on join.
        let _ = self.sender.send(blob);
    }

    fn skipped(&mut self, path: &Path, reason: SkipReason) {
        self.sink.skipped(path, reason);
    }

    fn target(&self) -> &dyn Sink {
        self.sink
    }
}

/// An image whose config is read and whose layers are yet to be: each layer's place, and the
/// errors so far (kept apart until the platform filter has chosen the image: errors about an
/// image the user did not ask for are not theirs to read).
struct Prepared {
    /// Layer `i`'s digest (0 = the base): the config's diff id, else the layout's.
    digests: Vec<String>,
    layers: Vec<PreparedLayer>,
    /// The config's errors.
    errors: Vec<(PathBuf, ImageError)>,
}

struct PreparedLayer {
    blob: BlobRef,
    /// `app:prod layer 3 (sha256:0123…)`, for errors.
    label: String,
    place: LayerPlace,
    errors: Vec<(PathBuf, ImageError)>,
}

impl Prepared {
    /// The image's errors in the order they are met reading it: the config's, then the
    /// layers' from the top down.
    fn errors(self) -> impl Iterator<Item = (PathBuf, ImageError)> {
        self.errors
            .into_iter()
            .chain(self.layers.into_iter().rev().flat_map(|l| l.errors))
    }
}

impl PreparedLayer {
    fn error(&mut self, reason: ImageError) {
        self.errors.push((PathBuf::from(&self.label), reason));
    }

    fn missing(&mut self) {
        let blob = self.blob.digest.as_ref().unwrap_or(&self.blob.name);
        self.error(ImageError::MissingBlob(blob.clone()));
    }

    /// Whether the blob's size is the one the manifest promises (when it promises one).
    fn check_size(&mut self, size: u64) {
        if let Some(expected) = self.blob.size.filter(|&s| s != size) {
            self.error(ImageError::Size { size, expected });
        }
    }

    /// Take in what reading the layer gave: its error, and its changes, which are remembered
    /// for the images read later in the run that share the layer.
    fn finish(
        &mut self,
        read: LayerRead,
        outcome: &mut Outcome,
        read_layers: &ReadLayers,
    ) -> Arc<LayerChanges> {
        if read.error.is_none() || read.files > 0 || !read.changes.entries.is_empty() {
            outcome.readable = true;
        }
        if let Some(reason) = read.error {
            self.error(ImageError::Layer(reason));
        }
        let changes = Arc::new(read.changes);
        read_layers.record(self.place.digest.clone(), changes.clone());
        changes
    }
}

/// Read the config of `image` (its blobs go to the sink) and place its layers; `None` when
/// the platform filter leaves the image out.
fn prepare_image(
    store: &dyn Store,
    image: &ImageSpec,
    options: &SourceOptions,
    out: &mut Out<'_>,
    outcome: &mut Outcome,
) -> Option<Prepared> {
    let reference = image.reference.as_str();
    let mut errors: Vec<(PathBuf, ImageError)> = Vec::new();
    let mut error = |what: String, reason: ImageError| errors.push((PathBuf::from(what), reason));

    let config = match read_small(store, &image.config.name, METADATA_LIMIT) {
        Ok(Some(bytes)) => match ImageConfig::parse(&bytes) {
            Ok(config) => Some(config),
            Err(reason) => {
                error(format!("{reference} config"), ImageError::Config(reason));
                None
            }
        },
        Ok(None) => {
            let blob = image.config.digest.as_ref().unwrap_or(&image.config.name);
            error(
                format!("{reference} config"),
                ImageError::MissingBlob(blob.clone()),
            );
            None
        }
        Err(reason) => {
            error(format!("{reference} config"), ImageError::Metadata(reason));
            None
        }
    };

    let platform = image
        .platform
        .clone()
        .or_else(|| config.as_ref().and_then(ImageConfig::platform));
    if let Some(wanted) = &options.platform {
        let matches = platform
            .as_deref()
            .is_some_and(|p| platform_matches(p, wanted));
        if let Some(p) = platform {
            outcome.platforms.insert(p);
        }
        if !matches {
            return None;
        }
    }
    outcome.selected += 1;

    let diff_ids = config.as_ref().map_or(&[][..], |c| c.diff_ids());
    let digests: Vec<String> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            diff_ids
                .get(i)
                .cloned()
                .or_else(|| layer.digest.clone())
                .unwrap_or_else(|| layer.name.clone())
        })
        .collect();

    if let Some(config) = &config {
        outcome.readable = true;
        for blob in config.blobs(reference, &digests) {
            out.sink.blob(blob);
        }
    }

    let made_by = config
        .as_ref()
        .map(ImageConfig::layer_history)
        .unwrap_or_default();
    let layers = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let digest = &digests[i];
            let history = made_by
                .get(i)
                .and_then(|&h| config.as_ref().and_then(|c| c.history.get(h)));
            PreparedLayer {
                blob: layer.clone(),
                label: format!("{reference} layer {} ({})", i + 1, short(digest)),
                place: LayerPlace {
                    image: reference.to_string(),
                    digest: digest.clone(),
                    index: i + 1,
                    created_by: history
                        .and_then(|h| h.created_by.clone().or_else(|| h.comment.clone())),
                    created: history.and_then(|h| config::time(h.created.as_deref())),
                },
                errors: Vec::new(),
            }
        })
        .collect();
    Some(Prepared {
        digests,
        layers,
        errors,
    })
}

/// Read the layers of each image from the store, from the top down: when a layer's files are
/// read, the changes of every layer above it are in the overlay.
fn read_layers(
    store: &dyn Store,
    images: &mut [Prepared],
    options: &SourceOptions,
    out: &mut Out<'_>,
    outcome: &mut Outcome,
) {
    for image in images {
        // An image whose layers were all read (the same layers as an image before it) needs
        // no overlay: building one would cost as much as its layers have entries, per image.
        let read_before = |layer: &PreparedLayer| out.read_layers.get(&layer.place.digest);
        if image.layers.iter().all(|l| read_before(l).is_some()) {
            outcome.readable |= !image.layers.is_empty();
            continue;
        }
        let mut overlay = Overlay::default();
        for (i, layer) in image.layers.iter_mut().enumerate().rev() {
            if let Some(changes) = out.read_layers.get(&layer.place.digest) {
                tracing::debug!(layer = %layer.label, "already read in this run");
                overlay.apply(i, &changes);
                outcome.readable = true;
                continue;
            }
            let opened = match store.open(&layer.blob.name) {
                Ok(Some(opened)) => opened,
                Ok(None) => {
                    layer.missing();
                    continue;
                }
                Err(e) => {
                    layer.error(ImageError::Open(e));
                    continue;
                }
            };
            layer.check_size(opened.size);
            tracing::debug!(layer = %layer.label, "reading");
            let read = layer::read_layer(
                opened.reader,
                Some(opened.size),
                &layer.place,
                &overlay,
                &image.digests,
                options,
                out,
            );
            overlay.apply(i, &layer.finish(read, outcome, out.read_layers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_drop_archive_extensions() {
        assert_eq!(layout_name(Path::new("/x/app.tar.gz")), "app");
        assert_eq!(layout_name(Path::new("/x/app-v1.tar")), "app-v1");
        assert_eq!(layout_name(Path::new("/x/layout")), "layout");
    }

    #[test]
    fn plain_tars_are_not_images() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        let mut header = tar::Header::new_ustar();
        header.set_size(1);
        header.set_cksum();
        builder
            .append_data(&mut header, "home/me/.env", &b"x"[..])
            .unwrap();
        builder.finish().unwrap();
        assert_eq!(layout_at(&path), None);
        assert_eq!(layout_at(dir.path()), None);
        std::fs::write(dir.path().join("oci-layout"), "{}").unwrap();
        std::fs::write(dir.path().join("index.json"), "{}").unwrap();
        assert_eq!(
            layout_at(dir.path()),
            Some(Target::OciDir(dir.path().to_path_buf()))
        );
    }
}
