//! Entry points for the fuzz targets (`fuzz/`, `cargo xtask fuzz`): each hands untrusted bytes
//! to the functions the binary itself calls on them, never to a copy of them. Built only with
//! the `fuzzing` feature; not an API.
//!
//! A target must not reach the network or write outside a temporary directory: the image and
//! git targets need a path, so they write their input to a temporary file or repository that
//! is removed when the input is done. The others read from memory.
//!
//! Inputs that carry several parts (image layouts, repositories, log files) are split on
//! [`PART`], a line of its own, so a seed is readable and a mutation stays in one part.
use std::{
    io::{self, Cursor, Write},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use crate::{
    agent::chain,
    detect::{check_rules, Engine, RuleSet, Severity},
    mcp::{self, discover::ConfigRef, discover::ConfigScope, ConfigFormat},
    report::{self, baseline, merge, Report},
    source::{self, archive, secret_file, Blob, Context, Sink, Skip, SourceOptions},
};

/// Separates the parts of a multi-part input.
pub const PART: &[u8] = b"\n=====\n";

/// The parts of a multi-part input, at most `max`.
pub fn parts(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max {
        match memchr::memmem::find(rest, PART) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + PART.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// A sink that touches what it is given and keeps nothing.
struct Discard;

impl Sink for Discard {
    fn blob(&self, blob: Blob) {
        std::hint::black_box(blob.bytes.len());
    }
    fn not_scanned(&self, skip: Skip<'_>) {
        std::hint::black_box(skip.reason);
    }
    fn error(&self, path: &Path, reason: &str) {
        std::hint::black_box((path, reason));
    }
}

/// Limits small enough that one input cannot take the fuzzer's memory (the binary's defaults
/// allow a GiB of expansion, which is a limit worth testing only by its own test).
fn options() -> SourceOptions {
    SourceOptions {
        max_file_size: 4 * 1024 * 1024,
        max_blob_size: 4 * 1024 * 1024,
        archive: archive::ArchiveLimits {
            max_bytes: 64 * 1024 * 1024,
            max_ratio: archive::DEFAULT_MAX_RATIO,
            max_members: 10_000,
            max_depth: archive::DEFAULT_MAX_DEPTH,
        },
        ..SourceOptions::default()
    }
}

/// `mcp_config`: byte 0 picks the format (JSON, JSONC, TOML, YAML, Markdown front matter),
/// byte 1 one of the catalogue's files in that format (its client and server layouts); the
/// rest is the file.
pub fn mcp_config(data: &[u8]) {
    let [format, file, rest @ ..] = data else {
        return;
    };
    let format = [
        ConfigFormat::Json,
        ConfigFormat::Jsonc,
        ConfigFormat::Toml,
        ConfigFormat::Yaml,
        ConfigFormat::Frontmatter,
    ][*format as usize % 5];
    let files: Vec<_> = mcp::clients()
        .iter()
        .flat_map(|c| c.files.iter().map(move |f| (c, f)))
        .filter(|(_, f)| f.format == format)
        .collect();
    let Some(&(client, config_file)) = files.get(*file as usize % files.len().max(1)) else {
        return;
    };
    let config = ConfigRef {
        client,
        path: PathBuf::from("/home/fuzz").join(config_file.path.replace('*', "x")),
        scope: if file % 2 == 0 {
            ConfigScope::User("fuzz".into())
        } else {
            ConfigScope::Project("/home/fuzz/project".into())
        },
    };
    let parsed = mcp::parse(&config, rest);
    for server in &parsed.servers {
        std::hint::black_box((server.scope_key(), server.literal_fields().count()));
    }
    let _ = mcp::parse::parse_document(format, rest);
}

/// `mcp_fields`: a JSON object, read as one server definition (command line, env, headers,
/// URL, the generic walk), every string classified (literal, reference, placeholder), and the
/// whole input searched for references as a text file would be.
pub fn mcp_fields(data: &[u8]) {
    for reference in crate::detect::slot::references(data) {
        std::hint::black_box(reference);
    }
    let Ok(serde_json::Value::Object(definition)) = serde_json::from_slice(data) else {
        return;
    };
    if mcp::fields::looks_like_server(&definition) {
        let parts = mcp::fields::server_parts(&definition);
        for field in &parts.fields {
            std::hint::black_box(crate::detect::value::classify(&field.value));
        }
    }
    for value in definition.values() {
        if let Some(text) = value.as_str() {
            std::hint::black_box(crate::detect::value::classify(text));
        }
    }
}

/// `secret_file`: byte 0 picks a credential-file kind (by a path the binary recognises),
/// the rest is the file.
pub fn secret_file(data: &[u8]) {
    const PATHS: &[&str] = &[
        ".env",
        ".bashrc",
        ".netrc",
        ".npmrc",
        ".pypirc",
        ".aws/credentials",
        ".docker/config.json",
        ".kube/config",
        ".config/gcloud/application_default_credentials.json",
        ".git-credentials",
        "compose.yaml",
        "deploy/k8s.yaml",
    ];
    let [pick, rest @ ..] = data else { return };
    let path = Path::new(PATHS[*pick as usize % PATHS.len()]);
    let Some(parsed) = secret_file::read(path, rest) else {
        return;
    };
    for offset in [0, rest.len() / 2, rest.len().saturating_sub(1)] {
        std::hint::black_box(parsed.field_at(offset));
    }
}

/// `archive`: any bytes an archive may start with, sniffed and opened as an archive inside an
/// image layer is (streamed, nested archives opened, members to a sink).
pub fn archive(data: &[u8]) {
    let Some(format) = archive::sniff(&data[..data.len().min(archive::SNIFF_LEN)]) else {
        return;
    };
    let place = archive::ArchivePlace {
        archive: PathBuf::from("fuzz.bin"),
        container: source::Container::File(source::DiskFile {
            mtime: None,
            mode: None,
            dev: None,
            inode: None,
            readable_by_others: None,
        }),
        project: "fuzz".into(),
        root: PathBuf::from("/"),
    };
    let limits = options();
    let archive_options = archive::ArchiveOptions {
        limits: limits.archive,
        max_member_size: limits.max_file_size,
    };
    archive::scan_reader(
        &mut Cursor::new(data),
        Some(data.len() as u64),
        format,
        &place,
        &archive_options,
        &Discard,
    );
}

/// The object id a `git_repo` input gives its `index`th object: the byte `index + 1`, twenty
/// times. Ids are positions, not hashes, so that a mutated object is still found where other
/// objects point: the repository is a damaged one, whose objects are not what their names say.
pub fn git_object_id(index: usize) -> [u8; 20] {
    [(index + 1) as u8; 20]
}

/// `git_repo`: a repository of loose objects, one per part (a kind byte `b`/`t`/`c`/`g`, then
/// the object's body), the `n`th part stored as [`git_object_id`]`(n)`; `refs/heads/main` is
/// the first commit. Read as `git:PATH` is: every object decoded, commits parsed, trees walked
/// and diffed, every blob to the sink.
pub fn git_repo(data: &[u8]) {
    let _ = git_repo_scan(data);
}

fn git_repo_scan(data: &[u8]) -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let git = dir.path().join(".git");
    for sub in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        std::fs::create_dir_all(git.join(sub))?;
    }
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n")?;
    std::fs::write(
        git.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n",
    )?;
    let mut first_commit = None;
    for (index, part) in parts(data, 32).into_iter().enumerate() {
        let Some((&kind, body)) = part.split_first() else {
            continue;
        };
        let kind = match kind {
            b't' => "tree",
            b'c' => "commit",
            b'g' => "tag",
            _ => "blob",
        };
        let id = hex::encode(git_object_id(index));
        if kind == "commit" && first_commit.is_none() {
            first_commit = Some(id.clone());
        }
        let mut object = format!("{kind} {}\0", body.len()).into_bytes();
        object.extend_from_slice(body);
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&object)?;
        let folder = git.join("objects").join(&id[..2]);
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(&id[2..]), encoder.finish()?)?;
    }
    if let Some(id) = first_commit {
        std::fs::write(git.join("refs/heads/main"), format!("{id}\n"))?;
    }
    let _ = source::git::scan(dir.path(), &options(), &Discard);
    Ok(())
}

/// `git_commit`: one commit object's body, parsed as the object pass parses every commit.
pub fn git_commit(data: &[u8]) {
    let id = gix::ObjectId::from_bytes_or_panic(&git_object_id(0));
    std::hint::black_box(source::git::history::parse_commit(
        id,
        data,
        gix::hash::Kind::Sha1,
    ));
}

/// `image_archive`: a `docker save` or OCI archive (a tar, maybe compressed as a whole), read
/// as `docker-archive:PATH` is: layout, manifests, indexes, configs, layers, the overlay.
pub fn image_archive(data: &[u8]) {
    let _ = image_scan(data, source::image::Layout::Docker);
}

/// `image_layout`: an image layout given part by part, so that the fuzzer mutates the JSON
/// itself and not the tar around it. Byte 0 says which layout to expect (even: `docker save`,
/// odd: OCI); part 0 (after byte 0) is `manifest.json` (docker) or `index.json` (OCI); part
/// `n` is the blob `blobs/sha256/<n>`, so a manifest names it as the digest `sha256:<n>`.
/// The tar built of them is read as `oci-archive:PATH` or `docker-archive:PATH`.
pub fn image_layout(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let parts = parts(rest, 16);
    let oci = pick % 2 == 1;
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes)
    };
    let mut built = add(if oci { "index.json" } else { "manifest.json" }, parts[0]);
    if oci {
        built = built.and_then(|()| add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#));
    }
    for (n, part) in parts.iter().enumerate().skip(1) {
        built = built.and_then(|()| add(&format!("blobs/sha256/{n}"), part));
    }
    let Ok(bytes) = built.and_then(|()| tar.into_inner()) else {
        return;
    };
    let layout = if oci {
        source::image::Layout::Oci
    } else {
        source::image::Layout::Docker
    };
    let _ = image_scan(&bytes, layout);
}

fn image_scan(data: &[u8], layout: source::image::Layout) -> io::Result<()> {
    let mut file = tempfile::Builder::new().suffix(".tar").tempfile()?;
    file.write_all(data)?;
    file.flush()?;
    let context = Context::new(options());
    let _ = source::image::scan_archive(file.path(), layout, &context, &Discard);
    Ok(())
}

/// `report`: a saved JSON report, read as `report render` and `report merge` read one, then
/// rendered in every format, merged with itself, made a baseline of and suppressed by it; and
/// the same bytes read as a baseline file.
pub fn report(data: &[u8]) {
    let _ = baseline::parse_fingerprints(data);
    let Ok(mut report) = Report::from_slice(data) else {
        return;
    };
    report.forget_secrets();
    report.recount(Severity::High);
    render_all(&report);
    let merged = merge::merge(
        vec![report.clone(), report.clone()],
        &merge::MergeOptions {
            now: fixed_now(),
            max_age_days: 90,
            fail_on: Severity::Medium,
        },
    );
    render_all(&merged);
    let fingerprints = baseline::Baseline::of(&report)
        .keys
        .iter()
        .map(|k| k.fingerprint.clone())
        .take(1)
        .collect();
    baseline::suppress(&mut report, &fingerprints, Severity::Low);
    render_all(&report);
}

fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

fn render_all(report: &Report) {
    for format in [
        report::Format::Text(report::text::TextOptions {
            color: false,
            coverage: true,
        }),
        report::Format::Text(report::text::TextOptions {
            color: true,
            coverage: false,
        }),
        report::Format::Json,
        report::Format::Sarif,
        report::Format::Markdown,
        report::Format::Html,
    ] {
        let _ = report::render(report, format, &mut io::sink());
    }
}

/// `agent_log`: the agent's event log, up to four files (parts), verified as `detector log
/// verify` does (every problem described); each line also read as the tail a restarted agent
/// continues the chain from.
pub fn agent_log(data: &[u8]) {
    let files = parts(data, 4);
    let paths: Vec<PathBuf> = (0..files.len())
        .map(|i| PathBuf::from(format!("events.jsonl.{i}")))
        .collect();
    let read: Vec<_> = files
        .iter()
        .enumerate()
        .filter_map(|(i, bytes)| chain::read_records(*bytes, i).ok())
        .collect();
    if read.len() != files.len() {
        return;
    }
    let verification = chain::verify_read(&paths, read);
    for problem in &verification.problems {
        std::hint::black_box(verification.describe(problem));
    }
    std::hint::black_box(verification.intact());
    for line in data.split(|&b| b == b'\n') {
        let _ = chain::Tail::parse(line);
    }
}

/// `rules`: a rule file (`--rules DIR`), loaded, compiled into an engine, its examples checked
/// as `detector rules check` does, and the file scanned by its own rules.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(set) = RuleSet::parse(Path::new("fuzz.toml"), text) else {
        return;
    };
    let Ok(engine) = Engine::new(set) else {
        return;
    };
    std::hint::black_box(check_rules(&engine).is_ok());
    std::hint::black_box(engine.scan(data).len());
}

/// `detect`: any bytes, scanned by the built-in rules (the engine every source feeds).
pub fn detect(data: &[u8]) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        Engine::new(RuleSet::builtin().expect("built-in rules load"))
            .expect("built-in rules compile")
    });
    std::hint::black_box(engine.scan(data));
}
