//! `cargo xtask bench image`: scanning a large `docker save` archive, ours vs Kingfisher's
//! `scan docker --archive`, on the same file in the same run.
//!
//! The archive is built here from real files (`/usr/share`, `/usr/include`, `/usr/lib`, the
//! cargo registry's sources), one layer per tree, at least 1 GiB of layer data, plus a layer
//! with planted keys, a layer whose whiteout deletes one of them, and keys in the config's
//! `Env` and build history. It is cached under `target/bench-image/` and rebuilt only when
//! missing. Each tool runs once on a warm page cache; wall time, MB/s of layer data, peak
//! resident memory (`wait4`'s `ru_maxrss`), what it reported, and which planted keys it found.
use std::{
    fs::{self, File},
    io::{self, BufWriter, Write},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use kit::{
    image::{layer_tar, legacy_image_of_files, ImageArchive},
    keys::{fingerprint, key, ALNUM},
};
use serde_json::{json, Value};

const DETECTOR: &str = "target/release/detector";
const WORK: &str = "target/bench-image";
/// Layer data to reach, at least.
const MIN_LAYER_BYTES: u64 = 1 << 30;
/// Trees are cut into layers of at most this size: Kingfisher skips any archive member over
/// its default `--max-file-size` (256 MB), a `docker save` layer included.
const MAX_LAYER_BYTES: u64 = 240 << 20;
const ORG_KEY: &str = "bench-image-org";

/// Trees that become layers, each up to a byte budget (files in sorted order).
fn layer_sources() -> Vec<(PathBuf, u64)> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    vec![
        (PathBuf::from("/usr/share"), 520 << 20),
        (PathBuf::from("/usr/include"), 170 << 20),
        (PathBuf::from(home).join(".cargo/registry/src"), 200 << 20),
        (PathBuf::from("/usr/lib"), 420 << 20),
    ]
}

pub fn run() -> Result<()> {
    fs::create_dir_all(WORK)?;
    let planted = Planted::new();
    let archive = Path::new(WORK).join("image.tar");
    let layer_bytes = match fs::read_to_string(Path::new(WORK).join("image.layer-bytes")) {
        Ok(text) if archive.exists() => text.trim().parse()?,
        _ => build_archive(&archive, &planted)?,
    };
    if layer_bytes < MIN_LAYER_BYTES {
        bail!("the image holds only {layer_bytes} bytes of layers; add trees to layer_sources()");
    }
    let kingfisher = super::peers::kingfisher()?;

    // Warm the page cache, and Kingfisher's compiled-rule cache (a one-time cost).
    io::copy(&mut File::open(&archive)?, &mut io::sink())?;
    let small = Path::new(WORK).join("small.tar");
    if !small.exists() {
        write_archive(Path::new(WORK), &small, &[], &planted)?;
    }
    measure(&mut kingfisher_cmd(
        &kingfisher,
        &small,
        &Path::new(WORK).join("warm.json"),
        &Path::new(WORK).join("warm.log"),
    ))?;

    // Ours twice: as it comes (archives inside layers opened), and with archives closed,
    // the same work as Kingfisher's `--no-extract-archives` run below.
    let mut ours = Vec::new();
    for (name, flags) in [
        ("detector `scan docker-archive:`", vec![]),
        (
            "detector `scan docker-archive: --max-archive-depth 0`",
            vec!["--max-archive-depth", "0"],
        ),
    ] {
        let out = Path::new(WORK).join(format!("detector{}.json", ours.len()));
        let measured = measure(
            Command::new(DETECTOR)
                .arg("scan")
                .arg(format!("docker-archive:{}", archive.display()))
                .args(&flags)
                .args(["--format", "json", "--output"])
                .arg(&out)
                .env("DETECTOR_ORG_KEY", ORG_KEY),
        )?;
        let report: Value = serde_json::from_slice(&fs::read(&out)?)?;
        let keys = report["keys"].as_array().map_or(0, Vec::len);
        let locations: usize = report["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| k["locations"].as_array().map_or(0, Vec::len))
                    .sum()
            })
            .unwrap_or(0);
        let text = report.to_string();
        let found = planted
            .all()
            .iter()
            .filter(|s| text.contains(&fingerprint(ORG_KEY.as_bytes(), s)))
            .count();
        let reported = format!("{keys} keys ({locations} locations)");
        ours.push((name.to_string(), measured, reported, found));
    }

    // Kingfisher twice: as it comes, and with its content limits off (it refuses images this
    // size otherwise) and nested archives left closed, as ours leaves them.
    let version = super::peers::version(&kingfisher);
    let runs = [
        (
            format!("{version} `scan docker --archive`, defaults"),
            vec![],
        ),
        (
            format!("{version} `scan docker --archive --no-limits --no-extract-archives`"),
            vec!["--no-limits", "--no-extract-archives"],
        ),
    ];
    let mut rows = Vec::new();
    for (i, (name, flags)) in runs.iter().enumerate() {
        let out = Path::new(WORK).join(format!("kingfisher{i}.json"));
        let log = Path::new(WORK).join(format!("kingfisher{i}.log"));
        let _ = fs::remove_file(&out);
        let mut cmd = kingfisher_cmd(&kingfisher, &archive, &out, &log);
        cmd.args(flags);
        let measured = measure(&mut cmd)?;
        let text = fs::read_to_string(&out).unwrap_or_default();
        let findings = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["findings"].as_array().map(Vec::len));
        let found = planted
            .all()
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .count();
        let reported = match findings {
            Some(n) => format!("{n} findings"),
            None => format!("failed: {}", last_cause(&log)),
        };
        rows.push((name.clone(), measured, reported, found));
    }

    let mb = layer_bytes as f64 / 1e6;
    println!(
        "\nScanning a `docker save` archive: {:.0} MB of layer data in {} layers ({} files), warm page cache, one run each:\n",
        mb,
        layer_count(&archive)?,
        fs::read_to_string(Path::new(WORK).join("image.files")).unwrap_or_default().trim()
    );
    println!(
        "| tool | wall time | layer data MB/s | peak memory | reported | planted keys found |"
    );
    println!("|---|---:|---:|---:|---|---:|");
    let total = planted.all().len();
    for (name, measured, reported, found) in ours.iter().chain(&rows) {
        println!(
            "| {name} | {:.1} s | {:.0} | {:.0} MiB | {reported} | {found} of {total} |",
            measured.seconds,
            mb / measured.seconds,
            measured.max_rss_kib as f64 / 1024.0,
        );
    }
    if let (Some((_, theirs, _, _)), Some((_, same_work, _, _))) = (rows.last(), ours.last()) {
        println!(
            "\nSame work (archives in layers left closed): detector {:.1}x the speed of Kingfisher with its limits off (which extracts every layer to disk first).",
            theirs.seconds / same_work.seconds
        );
    }
    Ok(())
}

fn layer_count(archive: &Path) -> Result<usize> {
    let mut outer = tar::Archive::new(File::open(archive)?);
    let mut count = 0;
    for entry in outer.entries_with_seek()? {
        if entry?.path()?.ends_with("layer.tar") {
            count += 1;
        }
    }
    Ok(count)
}

/// Fake keys made at run time, of providers both tools know.
struct Planted {
    dotenv_deleted: String,
    dotenv_kept: String,
    config_env: String,
    build_arg: String,
}

impl Planted {
    fn new() -> Planted {
        Planted {
            dotenv_deleted: key("ghp_", ALNUM, 36, 1),
            dotenv_kept: key("glpat-", ALNUM, 20, 2),
            config_env: key("sk_live_", ALNUM, 32, 3),
            build_arg: key("ghp_", ALNUM, 36, 5),
        }
    }

    fn all(&self) -> Vec<&String> {
        vec![
            &self.dotenv_deleted,
            &self.dotenv_kept,
            &self.config_env,
            &self.build_arg,
        ]
    }
}

struct Measured {
    seconds: f64,
    max_rss_kib: i64,
}

/// Run to completion; wall time and the child's peak resident memory.
fn measure(cmd: &mut Command) -> Result<Measured> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let waited = super::child::wait(cmd, None)?;
    // Exit codes say "found keys" (ours 1, Kingfisher 200/205) or "failed" (reported from
    // the output); only death by a signal stops the benchmark.
    if waited.status.code().is_none() {
        bail!("{cmd:?} died: {}", waited.status);
    }
    Ok(Measured {
        seconds: waited.wall.as_secs_f64(),
        max_rss_kib: waited.max_rss_kib,
    })
}

fn kingfisher_cmd(kingfisher: &Path, archive: &Path, output: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(kingfisher);
    cmd.args(["scan", "docker", "--archive"])
        .arg(archive)
        .args(["--no-validate", "--no-update-check", "-f", "json", "-o"])
        .arg(output)
        .env("RUST_BACKTRACE", "0")
        .stderr(File::create(log).map_or(Stdio::null(), Stdio::from));
    cmd
}

/// The innermost cause of a failed run (`    2: archive … did not contain …`).
fn last_cause(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    // The `Caused by:` list, before any backtrace.
    let causes = text.split("Stack backtrace").next().unwrap_or_default();
    causes
        .lines()
        .rev()
        .find_map(|l| {
            let (n, cause) = l.trim().split_once(": ")?;
            n.parse::<u32>().is_ok().then(|| cause.to_string())
        })
        .or_else(|| {
            text.lines()
                .find(|l| l.starts_with("Error"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "no report".to_string())
}

/// Build the archive; the bytes of layer data it holds.
fn build_archive(archive: &Path, planted: &Planted) -> Result<u64> {
    eprintln!("bench image: building {} (once; cached)", archive.display());
    let sources = layer_sources();
    let mut layers = Vec::new();
    let mut files = 0u64;
    for (root, budget) in &sources {
        let made = tree_layers(root, *budget, layers.len())
            .with_context(|| format!("making layers of {}", root.display()))?;
        for (path, count) in made {
            files += count;
            layers.push((
                path,
                format!("/bin/sh -c #(nop) COPY dir:{} in / ", root.display()),
            ));
        }
    }
    let bytes = write_archive(Path::new(WORK), archive, &layers, planted)?;
    for (path, _) in &layers {
        let _ = fs::remove_file(path);
    }
    fs::write(Path::new(WORK).join("image.layer-bytes"), bytes.to_string())?;
    fs::write(Path::new(WORK).join("image.files"), files.to_string())?;
    Ok(bytes)
}

/// Layer tars of `root`'s regular files (sorted, up to `budget` bytes), a new
/// layer every [`MAX_LAYER_BYTES`]; each with its file count.
fn tree_layers(root: &Path, budget: u64, first: usize) -> Result<Vec<(PathBuf, u64)>> {
    let mut layers = Vec::new();
    let new_layer = |n: usize| -> Result<(PathBuf, tar::Builder<BufWriter<File>>)> {
        let path = Path::new(WORK).join(format!("layer{n}.tar"));
        let builder = tar::Builder::new(BufWriter::new(File::create(&path)?));
        Ok((path, builder))
    };
    let (mut path, mut builder) = new_layer(first)?;
    let (mut total, mut in_layer, mut files) = (0u64, 0u64, 0u64);
    let mut stack = vec![root.to_path_buf()];
    'walk: while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = match fs::read_dir(&dir) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(_) => continue,
        };
        entries.sort();
        for entry in entries.into_iter().rev() {
            let Ok(meta) = fs::symlink_metadata(&entry) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry);
                continue;
            }
            // Regular files only: Kingfisher extracts layers to disk and follows their
            // absolute symlinks out into the host's filesystem.
            if !meta.is_file() {
                continue;
            }
            let size = meta.size();
            // The member as tar stores it: data padded to 512, a header, maybe a long name.
            let stored = size.div_ceil(512) * 512 + 1536;
            if stored > MAX_LAYER_BYTES {
                continue; // alone it would make a layer Kingfisher skips
            }
            if total + size > budget {
                break 'walk;
            }
            if in_layer + stored > MAX_LAYER_BYTES {
                builder.into_inner()?.flush()?;
                layers.push((path, files));
                (path, builder) = new_layer(first + layers.len())?;
                (in_layer, files) = (0, 0);
            }
            let name = entry.strip_prefix("/").unwrap_or(&entry);
            if builder.append_path_with_name(&entry, name).is_ok() {
                total += size;
                in_layer += stored;
                files += 1;
            }
        }
    }
    builder.into_inner()?.flush()?;
    layers.push((path, files));
    Ok(layers)
}

/// A legacy `docker save` archive of `layers` (tar file, instruction) plus the planted
/// layers and config (made in `work`); the bytes of layer data.
fn write_archive(
    work: &Path,
    archive: &Path,
    layers: &[(PathBuf, String)],
    planted: &Planted,
) -> Result<u64> {
    let dotenv = format!(
        "GITHUB_TOKEN={}\nGITLAB_TOKEN={}\n",
        planted.dotenv_deleted, planted.dotenv_kept
    );
    let kept = format!("GITLAB_TOKEN={}\n", planted.dotenv_kept);
    let plant = layer_tar(&[
        ("app/", b""),
        ("app/.env", dotenv.as_bytes()),
        ("app/keep.env", kept.as_bytes()),
    ]);
    let delete = layer_tar(&[("app/", b""), ("app/.wh..env", b"")]);
    let plant_path = work.join("plant.tar");
    let delete_path = work.join("delete.tar");
    fs::write(&plant_path, &plant)?;
    fs::write(&delete_path, &delete)?;
    let mut all: Vec<(PathBuf, String)> = layers.to_vec();
    all.push((
        plant_path.clone(),
        "/bin/sh -c #(nop) COPY file:env in /app/ ".into(),
    ));
    all.push((
        delete_path.clone(),
        format!("|1 GH_TOKEN={} /bin/sh -c rm /app/.env", planted.build_arg),
    ));
    let mut image = ImageArchive::created_at("2024-06-01T00:00:00Z");
    let run = json!({"Env": ["PATH=/usr/bin", format!("STRIPE_SECRET_KEY={}", planted.config_env)], "Cmd": ["sh"]});
    let entry = legacy_image_of_files(&mut image, "bench/app:prod", &all, run)?;
    image.json("manifest.json", &json!([entry]));
    image.write(archive)?;
    let mut bytes = 0;
    for (path, _) in &all {
        bytes += fs::metadata(path)?.len();
    }
    let _ = fs::remove_file(plant_path);
    let _ = fs::remove_file(delete_path);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The archive the benchmark scans: the given layers, then the planted one and the one
    /// whose whiteout deletes its `.env`, each named by its digest; the keys in the config's
    /// `Env` and in the build history.
    #[test]
    fn the_archive_holds_every_planted_key_where_the_table_says() {
        let work = tempfile::tempdir().unwrap();
        let planted = Planted::new();
        let base = work.path().join("base.tar");
        fs::write(
            &base,
            layer_tar(&[("etc/", b""), ("etc/os-release", b"ID=bench\n")]),
        )
        .unwrap();
        let archive = work.path().join("image.tar");
        let layers = [(base.clone(), "ADD rootfs.tar /".to_string())];
        let bytes = write_archive(work.path(), &archive, &layers, &planted).unwrap();
        assert!(bytes > fs::metadata(&base).unwrap().len());
        assert_eq!(layer_count(&archive).unwrap(), 3);

        let mut members = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(File::open(&archive).unwrap())
            .entries()
            .unwrap()
        {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            members.insert(name, bytes);
        }
        let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
        assert_eq!(manifest[0]["RepoTags"], json!(["bench/app:prod"]));
        let config = String::from_utf8_lossy(&members[manifest[0]["Config"].as_str().unwrap()]);
        assert!(config.contains(&planted.config_env) && config.contains(&planted.build_arg));
        let plant = &members[manifest[0]["Layers"][1].as_str().unwrap()];
        let plant = String::from_utf8_lossy(plant);
        assert!(plant.contains(&planted.dotenv_deleted) && plant.contains(&planted.dotenv_kept));
        let delete = &members[manifest[0]["Layers"][2].as_str().unwrap()];
        assert!(String::from_utf8_lossy(delete).contains("app/.wh..env"));
        assert!(
            !work.path().join("plant.tar").exists(),
            "its layers are cleaned up"
        );
    }
}
