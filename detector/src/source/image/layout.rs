//! Which images a store holds: `docker save`'s `manifest.json` (the legacy layout, and the
//! OCI layout newer Docker writes, which keeps a `manifest.json` beside `index.json`), or an
//! OCI layout's `index.json`, followed through nested indexes to every image manifest.
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::{
    error::LayoutError,
    store::{read_small, Store},
};

/// Which layout to expect (the target's scheme); either is recognised when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Docker,
    Oci,
}

/// A manifest, index or config is never this large; a blob that is must not be read whole.
pub const METADATA_LIMIT: u64 = 32 * 1024 * 1024;
/// Indexes nest (an index of platform indexes); a loop of them must end.
const MAX_INDEX_DEPTH: usize = 4;

/// One image of a layout: its config and layers, by store name.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// `app:prod` when the layout names it; else the layout's name and the config digest.
    pub reference: String,
    pub config: BlobRef,
    pub layers: Vec<BlobRef>,
    /// `linux/amd64[/v8]` when an index says so.
    pub platform: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BlobRef {
    /// The name in the store (`abc…/layer.tar`, `blobs/sha256/abc…`).
    pub name: String,
    /// `sha256:…` when the layout gives it.
    pub digest: Option<String>,
    /// The size the layout promises.
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// The images in `store`. `name` (the archive's file name) makes references for images the
/// layout leaves unnamed; `errors` gets what could not be followed (a missing manifest).
pub fn images(
    store: &dyn Store,
    expected: Layout,
    name: &str,
    errors: &mut Vec<(String, LayoutError)>,
) -> Result<Vec<ImageSpec>, LayoutError> {
    let docker = read_small(store, "manifest.json", METADATA_LIMIT)?;
    let oci = read_small(store, "index.json", METADATA_LIMIT)?;
    // Prefer what the scheme says; fall back on whatever the layout has.
    let order: [(Layout, &Option<Vec<u8>>); 2] = match expected {
        Layout::Docker => [(Layout::Docker, &docker), (Layout::Oci, &oci)],
        Layout::Oci => [(Layout::Oci, &oci), (Layout::Docker, &docker)],
    };
    for (layout, bytes) in order {
        let Some(bytes) = bytes else { continue };
        let mut images = match layout {
            Layout::Docker => docker_images(bytes, name)?,
            Layout::Oci => oci_images(store, bytes, name, errors)?,
        };
        // An image is its config (the image id): listed again (another tag, a crafted
        // manifest that lists it a million times), it is the same image, read once.
        let mut configs = HashSet::new();
        images.retain(|image| {
            let first = configs.insert(image.config.name.clone());
            if !first {
                tracing::debug!(image = %image.reference, "same config as an image before it");
            }
            first
        });
        return Ok(images);
    }
    Err(match expected {
        Layout::Docker => LayoutError::NoManifest,
        Layout::Oci => LayoutError::NoIndex,
    })
}

fn docker_images(bytes: &[u8], name: &str) -> Result<Vec<ImageSpec>, LayoutError> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(bytes).map_err(LayoutError::DockerManifest)?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let config_digest = digest_of_name(&entry.config);
            ImageSpec {
                reference: entry
                    .repo_tags
                    .and_then(|tags| tags.into_iter().next())
                    .unwrap_or_else(|| unnamed(name, config_digest.as_deref())),
                config: BlobRef {
                    name: entry.config,
                    digest: config_digest,
                    size: None,
                },
                layers: entry
                    .layers
                    .into_iter()
                    .map(|layer| BlobRef {
                        digest: digest_of_name(&layer),
                        name: layer,
                        size: None,
                    })
                    .collect(),
                platform: None,
            }
        })
        .collect())
}

/// `blobs/sha256/abc` → `sha256:abc`; `abc.json` → `sha256:abc` (the legacy config name).
fn digest_of_name(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("blobs/") {
        let (algorithm, hex) = rest.split_once('/')?;
        return Some(format!("{algorithm}:{hex}"));
    }
    let hex = name.strip_suffix(".json")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

fn unnamed(layout: &str, config_digest: Option<&str>) -> String {
    match config_digest {
        Some(digest) => format!("{layout}@{}", short(digest)),
        None => layout.to_string(),
    }
}

/// `sha256:0123456789ab…` → `sha256:0123456789ab`
pub fn short(digest: &str) -> &str {
    let start = digest.find(':').map_or(0, |i| i + 1);
    // Twelve characters, not bytes: a digest from a hostile config may be any text.
    let end = digest[start..]
        .char_indices()
        .nth(12)
        .map_or(digest.len(), |(at, _)| start + at);
    &digest[..end]
}

/// The store name of a blob by digest, refusing anything but `algorithm:hex`.
pub fn blob_name(digest: &str) -> Option<String> {
    let (algorithm, hex) = digest.split_once(':')?;
    let ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'.' || b == b'_' || b == b'-')
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| format!("blobs/{algorithm}/{hex}"))
}

fn oci_images(
    store: &dyn Store,
    index: &[u8],
    name: &str,
    errors: &mut Vec<(String, LayoutError)>,
) -> Result<Vec<ImageSpec>, LayoutError> {
    let index: Value = serde_json::from_slice(index).map_err(LayoutError::IndexJson)?;
    let mut walk = IndexWalk {
        store,
        layout: name,
        visited: HashSet::new(),
        images: Vec::new(),
        errors,
    };
    walk.index(&index, None, 0);
    Ok(walk.images)
}

/// The walk of an OCI layout's indexes. Indexes nest, and may name the same index or
/// manifest many times (a crafted layout: 200 descriptors of an index of 200 descriptors of
/// … is 200⁴ paths to one image in four levels): each digest is read once, the first time
/// it is met, so the walk is as long as the layout, whatever its shape.
struct IndexWalk<'w> {
    store: &'w dyn Store,
    layout: &'w str,
    visited: HashSet<String>,
    images: Vec<ImageSpec>,
    errors: &'w mut Vec<(String, LayoutError)>,
}

impl IndexWalk<'_> {
    /// Follow every descriptor of an index: nested indexes recursively, image manifests into
    /// [`ImageSpec`]s. `reference` is the name an enclosing descriptor gave.
    fn index(&mut self, index: &Value, reference: Option<&str>, depth: usize) {
        let (store, layout) = (self.store, self.layout);
        let Some(manifests) = index.get("manifests").and_then(Value::as_array) else {
            return;
        };
        for descriptor in manifests {
            let annotations = descriptor.get("annotations");
            let annotation =
                |key: &str| annotations.and_then(|a| a.get(key)).and_then(Value::as_str);
            // BuildKit's provenance/SBOM attestations are manifests too, of no image.
            if annotation("vnd.docker.reference.type") == Some("attestation-manifest") {
                continue;
            }
            let name = annotation("io.containerd.image.name")
                .map(str::to_string)
                .or_else(|| {
                    annotation("org.opencontainers.image.ref.name").map(|r| {
                        // A bare tag (`prod`) names the layout's image; a full reference is kept.
                        if r.contains([':', '/', '@']) {
                            r.to_string()
                        } else {
                            format!("{layout}:{r}")
                        }
                    })
                })
                .or_else(|| reference.map(str::to_string));
            let Some(digest) = descriptor.get("digest").and_then(Value::as_str) else {
                continue;
            };
            let label = name
                .clone()
                .unwrap_or_else(|| format!("{layout}@{}", short(digest)));
            if !self.visited.insert(digest.to_string()) {
                tracing::debug!(%digest, "index or manifest already read");
                continue;
            }
            let Some(blob) = blob_name(digest) else {
                self.errors
                    .push((label, LayoutError::InvalidDigest(digest.to_string())));
                continue;
            };
            let manifest = match read_small(store, &blob, METADATA_LIMIT) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    self.errors
                        .push((label, LayoutError::MissingManifest(digest.to_string())));
                    continue;
                }
                Err(e) => {
                    self.errors.push((label, LayoutError::Metadata(e)));
                    continue;
                }
            };
            let manifest: Value = match serde_json::from_slice(&manifest) {
                Ok(value) => value,
                Err(error) => {
                    let digest = digest.to_string();
                    self.errors
                        .push((label, LayoutError::ManifestJson { digest, error }));
                    continue;
                }
            };
            if manifest.get("manifests").is_some() {
                if depth < MAX_INDEX_DEPTH {
                    self.index(&manifest, name.as_deref(), depth + 1);
                } else {
                    self.errors
                        .push((label, LayoutError::TooDeep(MAX_INDEX_DEPTH)));
                }
                continue;
            }
            let Some(config) = manifest.get("config").and_then(descriptor_ref) else {
                self.errors
                    .push((label, LayoutError::NoConfig(digest.to_string())));
                continue;
            };
            let layers = manifest
                .get("layers")
                .and_then(Value::as_array)
                .map(|layers| layers.iter().filter_map(descriptor_ref).collect())
                .unwrap_or_default();
            let platform = descriptor.get("platform").and_then(|p| {
                let os = p.get("os")?.as_str()?;
                let arch = p.get("architecture")?.as_str()?;
                Some(match p.get("variant").and_then(Value::as_str) {
                    Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
                    _ => format!("{os}/{arch}"),
                })
            });
            self.images.push(ImageSpec {
                reference: name.unwrap_or_else(|| unnamed(layout, config.digest.as_deref())),
                config,
                layers,
                platform,
            });
        }
    }
}

fn descriptor_ref(descriptor: &Value) -> Option<BlobRef> {
    let digest = descriptor.get("digest")?.as_str()?;
    Some(BlobRef {
        name: blob_name(digest)?,
        digest: Some(digest.to_string()),
        size: descriptor.get("size").and_then(Value::as_u64),
    })
}

/// Whether `platform` (`os/arch[/variant]`) is what the user asked for (`wanted`): os and
/// architecture equal, and the variant too when both name one.
pub fn platform_matches(platform: &str, wanted: &str) -> bool {
    let mut have = platform.split('/');
    let mut want = wanted.split('/');
    let (Some(os), Some(arch)) = (have.next(), have.next()) else {
        return false;
    };
    if want.next() != Some(os) || want.next() != Some(arch) {
        return false;
    }
    match (have.next(), want.next()) {
        (Some(have), Some(want)) => have == want,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digests_cut_at_characters() {
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(short("sha256:abc"), "sha256:abc");
        // A hostile config's digest: the twelfth character is two bytes (found by fuzzing).
        assert_eq!(short("sha256:aaaaaaaaaaaéé"), "sha256:aaaaaaaaaaaé");
        assert_eq!(short("éééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn names_and_digests() {
        assert_eq!(
            digest_of_name(&format!("{}.json", "a".repeat(64))),
            Some(format!("sha256:{}", "a".repeat(64)))
        );
        assert_eq!(
            digest_of_name("blobs/sha256/abc").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(digest_of_name("x/layer.tar"), None);
        assert_eq!(
            blob_name("sha256:ab12").as_deref(),
            Some("blobs/sha256/ab12")
        );
        assert_eq!(blob_name("sha256:../../etc"), None);
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
    }

    #[test]
    fn platforms_match_with_or_without_variant() {
        assert!(platform_matches("linux/arm64/v8", "linux/arm64"));
        assert!(platform_matches("linux/arm64", "linux/arm64/v8"));
        assert!(!platform_matches("linux/arm/v6", "linux/arm/v7"));
        assert!(!platform_matches("linux/amd64", "linux/arm64"));
    }
}
