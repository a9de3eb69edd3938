//! An image archive that arrives as a stream and is not to be kept: the Docker daemon's
//! `docker save` stream (`docker:`), or a `docker save` compressed as a whole (its members
//! cannot be reached in place). Its `manifest.json` comes last, and its layers in no useful
//! order, yet a layer's files can only be told hidden (`deleted_in_layer`) once the layers
//! above it are known. So the stream is read twice, and written nowhere:
//!
//! 1. [`StreamIndex::read`] keeps in memory the small metadata members (manifests, indexes,
//!    image configs: JSON, at most [`METADATA_LIMIT`] each) and, of every other member (a
//!    layer), only the changes it makes to the layers below ([`LayerChanges`]: its paths,
//!    whiteouts and opaque directories), its files' contents passed over unread. The index is
//!    a [`Store`] of those metadata members, for the layout and config code.
//! 2. [`read_layers`] reads a second stream of the same image and scans each layer as it
//!    arrives, with the overlay of the layers above it computed from the first read.
//!
//! When the second stream is not the first (the image was retagged or rebuilt in between), the
//! read stops with an error that says so.
use std::{
    collections::{HashMap, HashSet},
    io::{self, Cursor, Read},
    sync::Arc,
};

use super::{
    error::{ArchiveError, Change, NotMetadata, OpenError, StreamError},
    layer::{self, layer_changes},
    layout::METADATA_LIMIT,
    overlay::{LayerChanges, Overlay},
    store::{link_target, member_name, resolve, Opened, Store},
    Out, Outcome, Prepared,
};
use crate::source::{archive::ArchiveLimits, SourceOptions};

/// Opens the stream once more.
pub type Reopen<'a> = dyn Fn() -> Result<Box<dyn Read>, OpenError> + 'a;

/// How many leading bytes of a member tell metadata (JSON) from a layer (a tar).
const SNIFF: u64 = 512;

/// What the first read of the stream kept.
#[derive(Debug, Default)]
pub struct StreamIndex {
    /// What reading a member as a layer may expand to.
    limits: ArchiveLimits,
    /// Every regular member: name → size.
    sizes: HashMap<String, u64>,
    /// Symlink and hard link members → their target, as a member name.
    links: HashMap<String, String>,
    /// The metadata members, whole.
    kept: HashMap<String, Vec<u8>>,
    /// Every other member, read as a layer: the changes it makes to the layers below.
    changes: HashMap<String, Arc<LayerChanges>>,
}

impl StreamIndex {
    /// The first read: the whole stream, keeping only what [`StreamIndex`] says.
    pub fn read(
        reader: Box<dyn Read + '_>,
        limits: &ArchiveLimits,
    ) -> Result<StreamIndex, ArchiveError> {
        let mut index = StreamIndex {
            limits: *limits,
            ..StreamIndex::default()
        };
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(ArchiveError::NotTar)?;
        let mut seen = 0usize;
        for entry in entries {
            let mut entry = entry.map_err(|error| match seen {
                0 => ArchiveError::NotTar(error),
                members => ArchiveError::Broke { members, error },
            })?;
            seen += 1;
            let Some(name) = member_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let unread = |error| ArchiveError::Member {
                        name: name.clone(),
                        error,
                    };
                    let mut head = Vec::new();
                    (&mut entry)
                        .take(SNIFF)
                        .read_to_end(&mut head)
                        .map_err(unread)?;
                    if is_metadata(&name, &head, size) {
                        (&mut entry)
                            .take(METADATA_LIMIT + 1 - head.len() as u64)
                            .read_to_end(&mut head)
                            .map_err(unread)?;
                        index.kept.insert(name.clone(), head);
                    } else {
                        let rest = Cursor::new(head).chain(&mut entry);
                        let changes = layer_changes(Box::new(rest), Some(size), limits);
                        index.changes.insert(name.clone(), Arc::new(changes));
                    }
                    index.sizes.insert(name, size);
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = link_target(&entry, &name) {
                        index.links.insert(name, target);
                    }
                }
                _ => {}
            }
        }
        if seen == 0 {
            return Err(ArchiveError::NoMembers);
        }
        Ok(index)
    }

    /// The changes of the member `name` read as a layer. A member kept as metadata is read
    /// as a layer here, in the rare case a manifest names it as one.
    fn changes_of(&self, name: &str) -> Option<Arc<LayerChanges>> {
        match self.kept.get(name) {
            Some(bytes) => Some(Arc::new(layer_changes(
                Box::new(bytes.as_slice()),
                Some(bytes.len() as u64),
                &self.limits,
            ))),
            None => self.changes.get(name).cloned(),
        }
    }

    /// The member `name` is (following links), and its size.
    fn member(&self, name: &str) -> Option<(&str, u64)> {
        resolve(&self.sizes, &self.links, name).map(|(name, &size)| (name, size))
    }
}

/// A member is metadata when it is small enough to be and looks like JSON (or is one of the
/// layouts' fixed names); everything else might be a layer.
fn is_metadata(name: &str, head: &[u8], size: u64) -> bool {
    if size > METADATA_LIMIT {
        return false;
    }
    let fixed = matches!(
        name,
        "manifest.json" | "index.json" | "oci-layout" | "repositories"
    );
    let json = head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_none_or(|&b| b == b'{' || b == b'[');
    fixed || json
}

impl Store for StreamIndex {
    fn open(&self, name: &str) -> io::Result<Option<Opened<'_>>> {
        let Some((name, size)) = self.member(name) else {
            return Ok(None);
        };
        let reader: Box<dyn Read + Send + '_> = match self.kept.get(name) {
            Some(bytes) => Box::new(bytes.as_slice()),
            // Read as a layer, not kept: what asks for it as metadata gets an error (after
            // the size check of `read_small`, which comes first).
            None => Box::new(NotKept(name.to_string())),
        };
        Ok(Some(Opened { reader, size }))
    }
}

struct NotKept(String);

impl Read for NotKept {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other(NotMetadata(self.0.clone())))
    }
}

/// The second read: every layer the images need that no image read before in this run, each
/// scanned as it arrives in the stream `again` opens, with the overlay of the layers above it
/// from `index`. Errors of a layer go to its image; an `Err` is a stream that broke or is not
/// the one `index` was read from.
pub(super) fn read_layers(
    index: &StreamIndex,
    again: &Reopen<'_>,
    images: &mut [Prepared],
    options: &SourceOptions,
    out: &mut Out<'_>,
    outcome: &mut Outcome,
) -> Result<(), StreamError> {
    // Which layer of which image reads each member: the first to need it in the order the
    // layers of a store are read (image by image, from the top down), as `read_layers` of a
    // store would. And the changes of every layer of every image, for the overlays.
    let mut readers: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut claimed: HashMap<String, Option<Arc<LayerChanges>>> = HashMap::new();
    let mut above: Vec<Vec<Option<Arc<LayerChanges>>>> = Vec::new();
    for (p, image) in images.iter_mut().enumerate() {
        let mut changes = vec![None; image.layers.len()];
        for (i, layer) in image.layers.iter_mut().enumerate().rev() {
            let digest = layer.place.digest.clone();
            if let Some(known) = out.read_layers.get(&digest) {
                changes[i] = Some(known);
                outcome.readable = true;
                continue;
            }
            if let Some(known) = claimed.get(&digest) {
                changes[i] = known.clone();
                outcome.readable = true;
                continue;
            }
            let Some((member, size)) = index.member(&layer.blob.name) else {
                layer.missing();
                continue;
            };
            layer.check_size(size);
            changes[i] = index.changes_of(member);
            claimed.insert(digest, changes[i].clone());
            readers.entry(member).or_insert((p, i));
        }
        above.push(changes);
    }
    if readers.is_empty() {
        return Ok(());
    }

    let reader = again().map_err(StreamError::Reopen)?;
    let mut archive = tar::Archive::new(reader);
    let mut seen: HashSet<String> = HashSet::new();
    for entry in archive.entries().map_err(StreamError::Broke)? {
        let mut entry = entry.map_err(StreamError::Broke)?;
        let Some(name) = member_name(&entry.path_bytes()) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if link_target(&entry, &name).as_ref() != index.links.get(&name) {
                    return Err(StreamError::Changed(Change::Link(name)));
                }
                continue;
            }
            _ => continue,
        }
        let size = entry.size();
        if index.sizes.get(&name) != Some(&size) {
            return Err(StreamError::Changed(Change::Size(name)));
        }
        seen.insert(name.clone());
        let kept = index.kept.get(&name);
        if let Some(kept) = kept {
            let mut bytes = Vec::with_capacity(kept.len());
            (&mut entry)
                .take(METADATA_LIMIT + 1)
                .read_to_end(&mut bytes)
                .map_err(StreamError::Broke)?;
            if &bytes != kept {
                return Err(StreamError::Changed(Change::Content(name)));
            }
        }
        let Some(&(p, i)) = readers.get(name.as_str()) else {
            continue;
        };
        let reader: Box<dyn Read + '_> = match kept {
            Some(bytes) => Box::new(bytes.as_slice()),
            None => Box::new(&mut entry),
        };
        let mut overlay = Overlay::default();
        for (j, changes) in above[p].iter().enumerate().skip(i + 1).rev() {
            if let Some(changes) = changes {
                overlay.apply(j, changes);
            }
        }
        let Prepared {
            layers, digests, ..
        } = &mut images[p];
        let layer = &mut layers[i];
        tracing::debug!(layer = %layer.label, "reading");
        let read = layer::read_layer(
            reader,
            Some(size),
            &layer.place,
            &overlay,
            digests,
            options,
            out,
        );
        let whole = read.error.is_none();
        let changes = layer.finish(read, outcome, out.read_layers);
        let first = above[p][i].as_ref();
        if whole && first.is_some_and(|first| !same_changes(first, &changes)) {
            return Err(StreamError::Changed(Change::Files(name)));
        }
    }
    if let Some(gone) = index.sizes.keys().find(|name| !seen.contains(*name)) {
        return Err(StreamError::Changed(Change::Gone(gone.clone())));
    }
    Ok(())
}

fn same_changes(a: &LayerChanges, b: &LayerChanges) -> bool {
    a.entries == b.entries && a.whiteouts == b.whiteouts && a.opaque == b.opaque
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::source::{test_sink::Collect, SourceError};

    fn tar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A `docker save` stream of one image, in the order the daemon may write it: the base
    /// layer first, the manifest last. Layer 1 has `/app/.env`, layer 2 deletes it. The
    /// layers' digests are `ids` repeated (each test its own: layers read are remembered).
    fn save_stream(secret: &str, tag: &str, ids: [&str; 2]) -> Vec<u8> {
        let base = tar(&[("app/.env", format!("TOKEN={secret}\n").as_bytes())]);
        let upper = tar(&[("app/.wh..env", b"")]);
        let (one, two) = (ids[0].repeat(64), ids[1].repeat(64));
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{one}"), format!("sha256:{two}")]},
            "history": [
                {"created_by": "COPY .env /app/.env"},
                {"created_by": "RUN rm /app/.env"}
            ]
        })
        .to_string();
        let config_name = format!("{}.json", "c".repeat(64));
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": [format!("{one}/layer.tar"), format!("{two}/layer.tar")]
        }])
        .to_string();
        tar(&[
            (&format!("{one}/layer.tar"), &base),
            (&format!("{two}/layer.tar"), &upper),
            (&config_name, config.as_bytes()),
            ("manifest.json", manifest.as_bytes()),
        ])
    }

    fn scan(first: Vec<u8>, second: Vec<u8>) -> (Collect, Result<(), SourceError>) {
        let sink = Collect::default();
        let again = move || -> Result<Box<dyn Read>, OpenError> {
            Ok(Box::new(Cursor::new(second.clone())))
        };
        let index =
            StreamIndex::read(Box::new(Cursor::new(first)), &ArchiveLimits::default()).unwrap();
        let result = super::super::scan_store(
            &index,
            super::super::Layers::Streamed {
                index: &index,
                again: &again,
            },
            Path::new("test"),
            super::super::Layout::Docker,
            "test",
            None,
            &crate::source::Context::default(),
            &sink,
        );
        (sink, result)
    }

    #[test]
    fn layers_in_any_order_know_what_the_layers_above_deleted() {
        let secret = ["ghp_", &"x".repeat(36)].concat();
        let stream = save_stream(&secret, "stream-test:1", ["a", "b"]);
        let index = StreamIndex::read(
            Box::new(Cursor::new(stream.clone())),
            &ArchiveLimits::default(),
        )
        .unwrap();
        // Only metadata is kept; of the layers, their changes.
        assert_eq!(index.kept.len(), 2);
        assert!(index
            .kept
            .values()
            .all(|v| !v.windows(4).any(|w| w == b"ghp_")));
        let base = &index.changes[&format!("{}/layer.tar", "a".repeat(64))];
        assert_eq!(base.entries, [("app/.env".to_string(), false)]);

        let (sink, result) = scan(stream.clone(), stream);
        result.unwrap();
        assert!(sink.errors.lock().unwrap().is_empty());
        let blobs = sink.blobs.lock().unwrap();
        let env = blobs
            .iter()
            .find(|b| b.provenance.path == Path::new("/app/.env"))
            .expect("the deleted file is read");
        let layer = env.provenance.origin.layer_file().unwrap();
        assert_eq!(
            layer.deleted_in_layer,
            Some(format!("sha256:{}", "b".repeat(64)))
        );
        assert_eq!(layer.layer_index, Some(1));
        assert_eq!(layer.created_by.as_deref(), Some("COPY .env /app/.env"));
    }

    #[test]
    fn an_image_that_changes_between_the_reads_is_an_error() {
        let secret = ["ghp_", &"y".repeat(36)].concat();
        let first = save_stream(&secret, "stream-test:2", ["d", "e"]);
        // Rebuilt: another base layer.
        let other = save_stream(&secret, "stream-test:2", ["f", "e"]);
        let (_, result) = scan(first, other);
        let err = result.unwrap_err().reason;
        assert!(
            err.contains("the image changed between the two reads"),
            "{err}"
        );
    }
}
