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
    io::{self, BufWriter, Read, Write},
    os::unix::{fs::MetadataExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
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
        write_archive(&small, &[], &planted)?;
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
            .filter(|s| text.contains(&fingerprint(s)))
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
        let fill = |seed: u64, len: usize| -> String {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            (0..len)
                .map(|_| {
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    alphabet[(state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize
                        % alphabet.len()] as char
                })
                .collect()
        };
        Planted {
            dotenv_deleted: ["ghp_", &fill(1, 36)].concat(),
            dotenv_kept: ["glpat-", &fill(2, 20)].concat(),
            config_env: ["sk_live_", &fill(3, 32)].concat(),
            build_arg: ["ghp_", &fill(5, 36)].concat(),
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

fn fingerprint(secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ORG_KEY.as_bytes());
    let tag = ring::hmac::sign(&key, secret.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

struct Measured {
    seconds: f64,
    max_rss_kib: i64,
}

/// Run to completion; wall time and the child's peak resident memory.
fn measure(cmd: &mut Command) -> Result<Measured> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; writes only into `status` and `usage`.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid < 0 {
        bail!("wait4: {}", io::Error::last_os_error());
    }
    let seconds = start.elapsed().as_secs_f64();
    let status = std::process::ExitStatus::from_raw(status);
    // Exit codes say "found keys" (ours 1, Kingfisher 200/205) or "failed" (reported from
    // the output); only death by a signal stops the benchmark.
    if status.code().is_none() {
        bail!("{cmd:?} died: {status}");
    }
    Ok(Measured {
        seconds,
        max_rss_kib: usage.ru_maxrss,
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
    let bytes = write_archive(archive, &layers, planted)?;
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
/// layers and config; the bytes of layer data.
fn write_archive(archive: &Path, layers: &[(PathBuf, String)], planted: &Planted) -> Result<u64> {
    let plant = small_layer(&[
        ("app/", None),
        (
            "app/.env",
            Some(format!(
                "GITHUB_TOKEN={}\nGITLAB_TOKEN={}\n",
                planted.dotenv_deleted, planted.dotenv_kept
            )),
        ),
        (
            "app/keep.env",
            Some(format!("GITLAB_TOKEN={}\n", planted.dotenv_kept)),
        ),
    ])?;
    let delete = small_layer(&[("app/", None), ("app/.wh..env", Some(String::new()))])?;
    let plant_path = Path::new(WORK).join("plant.tar");
    let delete_path = Path::new(WORK).join("delete.tar");
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

    let mut outer = tar::Builder::new(BufWriter::new(File::create(archive)?));
    let mut diff_ids = Vec::new();
    let mut names = Vec::new();
    let mut bytes = 0u64;
    for (i, (path, _)) in all.iter().enumerate() {
        let digest = sha256_file(path)?;
        let name = format!("{:064x}/layer.tar", i + 1);
        let mut file = File::open(path)?;
        bytes += file.metadata()?.len();
        outer.append_file(&name, &mut file)?;
        diff_ids.push(format!("sha256:{digest}"));
        names.push(name);
    }
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": "2024-06-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin", format!("STRIPE_SECRET_KEY={}", planted.config_env)], "Cmd": ["sh"]},
        "history": all.iter().map(|(_, by)| json!({"created": "2024-06-01T00:00:00Z", "created_by": by})).collect::<Vec<_>>(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config)?;
    let config_name = format!("{}.json", sha256_bytes(&config));
    append_bytes(&mut outer, &config_name, &config)?;
    let manifest =
        json!([{"Config": config_name, "RepoTags": ["bench/app:prod"], "Layers": names}]);
    append_bytes(&mut outer, "manifest.json", &serde_json::to_vec(&manifest)?)?;
    outer.into_inner()?.flush()?;
    let _ = fs::remove_file(plant_path);
    let _ = fs::remove_file(delete_path);
    Ok(bytes)
}

fn small_layer(entries: &[(&str, Option<String>)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_ustar();
        match data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
            }
            Some(text) => {
                header.set_mode(0o644);
                header.set_size(text.len() as u64);
            }
        }
        header.set_cksum();
        builder.append_data(&mut header, path, data.as_deref().unwrap_or("").as_bytes())?;
    }
    Ok(builder.into_inner()?)
}

fn append_bytes<W: Write>(outer: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    outer.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn sha256_bytes(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn sha256_file(path: &Path) -> Result<String> {
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
    Ok(hex(context.finish().as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
