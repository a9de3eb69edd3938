//! Image archives written by hand, member by member: `docker save` in its legacy layout
//! (`HEX/layer.tar`, `HEX.json`, `manifest.json`) and in the OCI layout newer Docker writes
//! (`index.json`, `oci-layout`, `blobs/sha256/…` and a `manifest.json`), and OCI image layouts
//! as a directory.
use std::{
    fs::{self, File},
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use serde_json::{json, Value};

/// When the images made here were created, unless an archive says otherwise.
pub const CREATED: &str = "2024-03-01T12:00:00Z";

/// `sha256:HEX` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

/// `sha256:HEX` of a file, read in pieces (layers of a benchmark are large).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(context.finish().as_ref())))
}

/// A layer tar of (path, contents); a path ending in `/` is a directory.
pub fn layer_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_ustar();
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header.set_mode(0o755);
        } else {
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
        }
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, path, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip stream of `head` and then `zeros` zero bytes, a few KiB per MiB of zeros: one gzip
/// member of `head`, then one member per MiB of zeros, compressed once and repeated (gzip
/// readers take concatenated members as one stream). A decompression bomb built in little
/// time and memory.
pub fn gzip_bomb(head: &[u8], zeros: u64) -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    let member = |len: u64| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0; len as usize]).unwrap();
        encoder.finish().unwrap()
    };
    let mut out = gzip(head);
    let whole = member(MIB);
    for _ in 0..zeros / MIB {
        out.extend_from_slice(&whole);
    }
    if !zeros.is_multiple_of(MIB) {
        out.extend(member(zeros % MIB));
    }
    out
}

/// The header of a tar member `name` of `size` bytes: a file, or a layer in an image archive.
pub fn tar_header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    header
}

/// One member of an image archive: bytes in memory, or a file streamed in when the archive
/// is written (a benchmark's layers do not fit in memory).
pub enum Member {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// The members of an image archive, in the order they are written.
pub struct ImageArchive {
    pub members: Vec<(String, Member)>,
    /// The `created` time of its images' configs and history.
    pub created: String,
}

impl Default for ImageArchive {
    fn default() -> ImageArchive {
        ImageArchive::created_at(CREATED)
    }
}

impl ImageArchive {
    /// An archive whose images were created at `created` (RFC 3339).
    pub fn created_at(created: &str) -> ImageArchive {
        ImageArchive {
            members: Vec::new(),
            created: created.to_string(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.members.iter().any(|(n, _)| n == name)
    }

    /// Add a member; one already there (a layer two images share) is kept once.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        if !self.has(name) {
            self.members
                .push((name.to_string(), Member::Bytes(bytes.to_vec())));
        }
    }

    /// Add a member whose bytes are `path`'s, read when the archive is written.
    pub fn add_file(&mut self, name: &str, path: &Path) {
        if !self.has(name) {
            self.members
                .push((name.to_string(), Member::File(path.to_path_buf())));
        }
    }

    /// Add `blobs/sha256/HEX`; its descriptor.
    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        self.add(&oci_blob_name(&digest), bytes);
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    pub fn json(&mut self, name: &str, value: &Value) {
        self.add(name, &serde_json::to_vec(value).unwrap());
    }

    /// The tar bytes, and where each member's data starts in them (members in memory only).
    pub fn tar(&self) -> (Vec<u8>, Vec<(String, u64)>) {
        let members: Vec<(&str, &[u8])> = self
            .members
            .iter()
            .map(|(n, m)| match m {
                Member::Bytes(b) => (n.as_str(), b.as_slice()),
                Member::File(p) => panic!("{n} is the file {}, not in memory", p.display()),
            })
            .collect();
        let bytes = layer_tar(&members);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let offsets = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                (name, e.raw_file_position())
            })
            .collect();
        (bytes, offsets)
    }

    /// Write the archive to `path`, files streamed in.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut tar = tar::Builder::new(BufWriter::new(File::create(path)?));
        for (name, member) in &self.members {
            match member {
                Member::Bytes(bytes) => {
                    let mut header = tar::Header::new_ustar();
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    header.set_mtime(1_700_000_000);
                    header.set_cksum();
                    tar.append_data(&mut header, name, bytes.as_slice())?;
                }
                Member::File(file) => tar.append_path_with_name(file, name)?,
            }
        }
        tar.into_inner()?.flush()
    }
}

pub fn oci_blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
}

/// An image config: `run` as its `config`, one history entry per layer (diff id, created_by).
pub fn image_config(
    layers: &[(String, &str)],
    run: Value,
    platform: &str,
    created: &str,
) -> Vec<u8> {
    let (os, arch) = platform.split_once('/').unwrap();
    let history: Vec<Value> = layers
        .iter()
        .map(|(_, by)| json!({"created": created, "created_by": by}))
        .collect();
    serde_json::to_vec(&json!({
        "created": created,
        "os": os, "architecture": arch,
        "config": run,
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.0).collect::<Vec<_>>()},
    }))
    .unwrap()
}

/// One image in the legacy `docker save` layout (`HEX/layer.tar`, `HEX.json`); its
/// `manifest.json` entry.
pub fn legacy_image(
    archive: &mut ImageArchive,
    tag: &str,
    layers: &[(&[u8], &str)],
    run: Value,
) -> Value {
    let diff_ids: Vec<(String, &str)> = layers
        .iter()
        .map(|(tar, by)| {
            let digest = sha256(tar);
            archive.add(&legacy_layer_name(&digest), tar);
            (digest, *by)
        })
        .collect();
    legacy_entry(archive, tag, &diff_ids, run)
}

/// [`legacy_image`] of layer tars that are files, streamed in when the archive is written.
pub fn legacy_image_of_files(
    archive: &mut ImageArchive,
    tag: &str,
    layers: &[(PathBuf, String)],
    run: Value,
) -> io::Result<Value> {
    let mut diff_ids = Vec::new();
    for (path, by) in layers {
        let digest = sha256_file(path)?;
        archive.add_file(&legacy_layer_name(&digest), path);
        diff_ids.push((digest, by.as_str()));
    }
    Ok(legacy_entry(archive, tag, &diff_ids, run))
}

fn legacy_layer_name(digest: &str) -> String {
    format!("{}/layer.tar", digest.strip_prefix("sha256:").unwrap())
}

fn legacy_entry(
    archive: &mut ImageArchive,
    tag: &str,
    layers: &[(String, &str)],
    run: Value,
) -> Value {
    let config = image_config(layers, run, "linux/amd64", &archive.created);
    let config_name = format!("{}.json", sha256(&config).strip_prefix("sha256:").unwrap());
    archive.add(&config_name, &config);
    let names: Vec<String> = layers.iter().map(|(d, _)| legacy_layer_name(d)).collect();
    json!({"Config": config_name, "RepoTags": [tag], "Layers": names})
}

/// One image in the OCI layout of a newer `docker save` (uncompressed layers under
/// `blobs/sha256`): its index descriptor (with its platform) and `manifest.json` entry.
pub fn oci_save_image(
    archive: &mut ImageArchive,
    tag: &str,
    layers: &[(&[u8], &str)],
    run: Value,
    platform: &str,
) -> (Value, Value) {
    let diff_ids: Vec<(String, &str)> = layers.iter().map(|(tar, by)| (sha256(tar), *by)).collect();
    let config = image_config(&diff_ids, run, platform, &archive.created);
    let config = archive.blob("application/vnd.oci.image.config.v1+json", &config);
    let layer_descriptors: Vec<Value> = layers
        .iter()
        .map(|(tar, _)| archive.blob("application/vnd.oci.image.layer.v1.tar", tar))
        .collect();
    let entry = json!({
        "Config": oci_blob_name(config["digest"].as_str().unwrap()),
        "RepoTags": [tag],
        "Layers": layer_descriptors
            .iter()
            .map(|d| oci_blob_name(d["digest"].as_str().unwrap()))
            .collect::<Vec<_>>(),
    });
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": layer_descriptors,
    });
    let mut descriptor = archive.blob(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let (os, arch) = platform.split_once('/').unwrap();
    descriptor["platform"] = json!({"os": os, "architecture": arch});
    (descriptor, entry)
}

/// `index.json` naming `manifests` as `docker save` does, `oci-layout`, and `manifest.json`.
pub fn oci_save_metadata(
    archive: &mut ImageArchive,
    tag: &str,
    manifests: Vec<Value>,
    entries: Vec<Value>,
) {
    let annotations = json!({
        "io.containerd.image.name": format!("docker.io/library/{tag}"),
        "org.opencontainers.image.ref.name": tag.rsplit(':').next().unwrap(),
    });
    let manifests = if manifests.len() == 1 {
        let mut only = manifests.into_iter().next().unwrap();
        only["annotations"] = annotations;
        vec![only]
    } else {
        // A multi-platform image: the index names an index of the platforms.
        let mut nested = archive.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": manifests,
            }))
            .unwrap(),
        );
        nested["annotations"] = annotations;
        vec![nested]
    };
    archive.json(
        "index.json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}),
    );
    archive.json("manifest.json", &Value::Array(entries));
    archive.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
}

/// An OCI image layout as a directory, written blob by blob.
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    pub fn new(dir: PathBuf) -> OciLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        OciLayout { dir }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    pub fn read_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    /// Write a blob; its descriptor.
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// An image: (uncompressed tar, stored bytes, media type, created_by) per layer; the
    /// manifest's descriptor.
    pub fn image(
        &self,
        layers: &[(&[u8], &[u8], &str, &str)],
        env: &[String],
        platform: &str,
    ) -> Value {
        let diff_ids: Vec<(String, &str)> = layers
            .iter()
            .map(|(tar, _, _, by)| (sha256(tar), *by))
            .collect();
        let config = image_config(
            &diff_ids,
            json!({"Env": env, "Cmd": ["/app/run"]}),
            platform,
            CREATED,
        );
        let config = self.blob("application/vnd.oci.image.config.v1+json", &config);
        let layer_descriptors: Vec<Value> = layers
            .iter()
            .map(|(_, stored, media_type, _)| self.blob(media_type, stored))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layer_descriptors,
        });
        let mut descriptor = self.blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        let (os, arch) = platform.split_once('/').unwrap();
        descriptor["platform"] = json!({"os": os, "architecture": arch});
        descriptor
    }

    /// An index blob of `manifests` (descriptors of manifests or of other indexes); its
    /// descriptor.
    pub fn index_blob(&self, manifests: &[Value]) -> Value {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        )
    }

    /// `index.json` listing `manifests` as they are.
    pub fn top_index(&self, manifests: &[Value]) {
        let index = json!({"schemaVersion": 2, "manifests": manifests});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// `index.json`: an index of `manifests`, tagged `tag`.
    pub fn index(&self, manifests: Vec<Value>, tag: &str) {
        let inner = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut nested = self.blob(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&inner).unwrap(),
        );
        nested["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let index = json!({"schemaVersion": 2, "manifests": [nested]});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// The layout as an OCI archive (a tar of the directory).
    pub fn archive(&self, path: &Path) {
        let mut builder = tar::Builder::new(File::create(path).unwrap());
        builder.append_dir_all(".", &self.dir).unwrap();
        builder.finish().unwrap();
    }
}

/// A GNU sparse tar member of `size` bytes whose stored data is `data` (a multiple of 512
/// bytes) at offset 0; the rest is one hole, which the tar does not store but a reader makes
/// up as zeros. Append it with `tar::Builder::append(&header, data)`.
pub fn sparse_member(name: &str, data: &[u8], size: u64) -> tar::Header {
    assert_eq!(data.len() % 512, 0, "sparse data is stored in whole blocks");
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_size(data.len() as u64);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.set_real_size(size);
    gnu.sparse[0].set_offset(0);
    gnu.sparse[0].set_length(data.len() as u64);
    // The hole runs to the end: an empty block there says where that is.
    gnu.sparse[1].set_offset(size);
    gnu.sparse[1].set_length(0);
    header.set_cksum();
    header
}

/// The data of a sparse member that reads as a tar of one member as large as the hole
/// behind it: a tar reader that opens it and skips that member reads `size` bytes of zeros
/// that are stored nowhere.
pub fn sparse_tar_bomb(size: u64) -> (tar::Header, Vec<u8>) {
    let mut inner = tar::Header::new_ustar();
    inner.set_path("zeros.bin").unwrap();
    inner.set_size(size - 1024);
    inner.set_mode(0o644);
    inner.set_cksum();
    let data = inner.as_bytes().to_vec();
    (sparse_member("disk.img", &data, size), data)
}
