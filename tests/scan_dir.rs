//! `detector scan dir:` and `file:` over a home directory built at test time: keys in shell
//! profiles, `.env` files, credential files, backups and nested archives, beside the things a
//! real home holds that must not hang or break a scan (FIFOs, sockets, devices, symlink loops,
//! unreadable files, a zip bomb, a truncated tarball). Driven through the real binary.
use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{Cursor, Write},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

use kit::{
    accounts::{can_make_accounts, Accounts},
    keys::{fingerprint, key, random, ALNUM, DIGITS},
    mkfifo,
    report::target_errors,
    run::{json, run_with_deadline, stderr, which},
};
use serde_json::Value;

use crate::{detector, DETECTOR};

const ORG_KEY: &str = "scan-dir-test-org";
/// Only to catch a hang: never a performance claim.
const HANG: Duration = Duration::from_secs(60);

fn write(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn scan(args: &[&str], home: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let output = detector(&all, home, Some(ORG_KEY));
    (output, started.elapsed())
}

/// [`scan`] of hostile input, its peak memory held to the kit's bound.
fn scan_bounded(args: &[&str], home: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let mut all = vec!["scan", "--format", "json"];
    all.extend_from_slice(args);
    let output = kit::rss::bounded(Path::new(DETECTOR), &all, home, Some(ORG_KEY));
    (output, started.elapsed())
}

/// A tar.gz of `files` (name, text) in memory.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A zip of `files` (name, data), stored or deflated.
fn zip(files: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Small on disk, a GiB expanded: one deflated member of 4 MiB of text, copied (still
/// compressed) under 256 names.
fn zip_bomb(path: &Path) {
    let one = zip(&[("filler-0.txt", &vec![b'a'; 4 << 20])], true);
    let mut source = zip::ZipArchive::new(Cursor::new(one)).unwrap();
    let mut bomb = zip::ZipWriter::new(File::create(path).unwrap());
    for i in 0..256 {
        bomb.raw_copy_file_rename(source.by_index(0).unwrap(), format!("filler-{i}.txt"))
            .unwrap();
    }
    bomb.finish().unwrap();
}

/// The key with this secret's fingerprint.
fn key_of<'a>(report: &'a Value, secret: &str) -> &'a Value {
    kit::report::key_of(report, ORG_KEY, secret)
}

fn location<'a>(key: &'a Value, path: &Path) -> &'a Value {
    let path = path.to_str().unwrap();
    key["locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no location {path} in {key:#}"))
}

fn violations(key: &Value) -> BTreeSet<String> {
    key["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn error_for(report: &Value, path: &Path) -> String {
    let path = path.to_str().unwrap();
    target_errors(report)
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, reason)| reason)
        .unwrap_or_else(|| panic!("no error for {path}: {:#?}", target_errors(report)))
}

struct Keys {
    zshrc: String,
    env: String,
    shared_env: String,
    aws_id: String,
    aws_secret: String,
    archived_mcp: String,
    chezmoi: String,
    mcp_backup: String,
    netrc: String,
    npm_in_truncated: String,
}

fn keys() -> Keys {
    let slack = [
        "xoxb-",
        &random(DIGITS, 12, 40),
        "-",
        &random(DIGITS, 13, 41),
        "-",
        &random(ALNUM, 24, 42),
    ]
    .concat();
    Keys {
        zshrc: key("ghp_", ALNUM, 36, 31),
        env: key("glpat-", ALNUM, 20, 32),
        shared_env: key("hf_", ALNUM, 34, 33),
        aws_id: key("AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 34),
        aws_secret: random(ALNUM, 40, 35),
        archived_mcp: key("ghp_", ALNUM, 36, 36),
        chezmoi: key("npm_", ALNUM, 36, 37),
        mcp_backup: slack,
        // No provider rule knows it: the `.netrc` format says it is a password.
        netrc: random(ALNUM, 14, 38),
        npm_in_truncated: key("npm_", ALNUM, 36, 39),
    }
}

fn claude_config(server: &str, var: &str, secret: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "mcpServers": { server: {
            "command": "npx",
            "args": ["-y", "acme-mcp"],
            "env": { var: secret }
        }}
    }))
    .unwrap()
}

/// `…/home/alice` with every kind of leak and every kind of trouble.
fn build_home(root: &Path, k: &Keys) -> PathBuf {
    let home = root.join("home/alice");
    fs::create_dir_all(&home).unwrap();
    write(
        &home.join(".zshrc"),
        &format!("alias ll='ls -l'\nexport GITHUB_TOKEN={}\n", k.zshrc),
        0o600,
    );
    write(
        &home.join("work/api/.env"),
        &format!("DEBUG=1\nGITLAB_TOKEN={}\n", k.env),
        0o600,
    );
    write(
        &home.join("work/shared/.env"),
        &format!("HF_TOKEN=\"{}\"\n", k.shared_env),
        0o644,
    );
    write(
        &home.join(".aws/credentials"),
        &format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            k.aws_id, k.aws_secret
        ),
        0o600,
    );
    write(
        &home.join(".netrc"),
        &format!(
            "machine api.example.com\n  login bob\n  password {}\n",
            k.netrc
        ),
        0o600,
    );
    // An MCP config inside a tar.gz inside a zip.
    let inner = tar_gz(&[(
        ".config/Claude/claude_desktop_config.json",
        claude_config("github", "GITHUB_PERSONAL_ACCESS_TOKEN", &k.archived_mcp).as_bytes(),
    )]);
    fs::write(
        home.join("backup.zip"),
        zip(
            &[("configs.tar.gz", &inner), ("readme.txt", b"old configs")],
            false,
        ),
    )
    .unwrap();
    write(
        &home.join(".local/share/chezmoi/dot_zshrc"),
        &format!("export NPM_TOKEN={}\n", k.chezmoi),
        0o600,
    );
    write(
        &home.join(".config/Claude/claude_desktop_config.json.bak"),
        &claude_config("slack", "SLACK_BOT_TOKEN", &k.mcp_backup),
        0o600,
    );
    // A tarball of an old home, cut short in the middle of its second member.
    let big: String = (0..4000)
        .map(|i| format!("line {i} {}\n", random(ALNUM, 40, 100 + i)))
        .collect();
    let npmrc = format!("//registry.npmjs.org/:_authToken={}\n", k.npm_in_truncated);
    let whole = tar_gz(&[
        (".npmrc", npmrc.as_bytes()),
        ("notes/big.txt", big.as_bytes()),
    ]);
    fs::write(home.join("old-home.tar.gz"), &whole[..whole.len() * 6 / 10]).unwrap();
    zip_bomb(&home.join("bomb.zip"));

    // Things a walk must pass by without blocking or failing.
    mkfifo(&home.join("pipe"));
    let _socket = std::os::unix::net::UnixListener::bind(home.join("agent.sock")).unwrap();
    std::os::unix::fs::symlink("/dev/null", home.join("null-device")).unwrap();
    std::os::unix::fs::symlink("loop-b", home.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", home.join("loop-b")).unwrap();
    std::os::unix::fs::symlink(home.join("gone"), home.join("dangling")).unwrap();
    // Root reads every file it may open; sysctl files check their mode even for root, so
    // this one cannot be opened for reading by anyone.
    std::os::unix::fs::symlink("/proc/sys/vm/drop_caches", home.join("unreadable")).unwrap();
    // A git repository: reported, its internals not read as files.
    write(
        &home.join("src/app/.git/HEAD"),
        "ref: refs/heads/main\n",
        0o644,
    );
    write(
        &home.join("src/app/.git/config"),
        "[core]\n\tbare = false\n",
        0o644,
    );
    home
}

#[test]
fn a_home_directory_every_key_and_every_bad_item() {
    let tmp = tempfile::tempdir().unwrap();
    let k = keys();
    let home = build_home(tmp.path(), &k);
    let target = format!("dir:{}", home.display());
    let (output, took) = scan(&[&target], &home);
    assert!(took < HANG, "the scan took {took:?}");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);

    // A shell profile's export line.
    let zshrc = key_of(&report, &k.zshrc);
    let at = location(zshrc, &home.join(".zshrc"));
    assert_eq!(at["kind"], "file");
    assert_eq!(at["line"], 2);
    assert_eq!(at["slot"], "GITHUB_TOKEN");
    assert_eq!(zshrc["status"], "live");

    // `.env` files: a private one, and one others can read.
    let env = key_of(&report, &k.env);
    assert_eq!(
        location(env, &home.join("work/api/.env"))["slot"],
        "GITLAB_TOKEN"
    );
    assert!(!violations(env).contains("world-readable"));
    let shared = key_of(&report, &k.shared_env);
    let at = location(shared, &home.join("work/shared/.env"));
    assert_eq!(at["mode"], "0644");
    assert_eq!(at["readable_by_others"], true);
    assert!(violations(shared).contains("world-readable"), "{shared:#}");

    // `~/.aws/credentials`, field by field.
    let aws = home.join(".aws/credentials");
    let secret = key_of(&report, &k.aws_secret);
    assert_eq!(
        location(secret, &aws)["slot"],
        "default.aws_secret_access_key"
    );
    assert_eq!(secret["provider"], "AWS");
    let id = key_of(&report, &k.aws_id);
    assert_eq!(location(id, &aws)["slot"], "default.aws_access_key_id");

    // A `.netrc` password no rule knows: the format says it is one.
    let netrc = key_of(&report, &k.netrc);
    assert_eq!(netrc["rule"], "file-literal-secret");
    let at = location(netrc, &home.join(".netrc"));
    assert_eq!(at["slot"], "machine api.example.com password");
    assert_eq!(at["line"], 3);

    // An MCP config in a tar.gz in a zip: the whole chain, and still the config.
    let archived = key_of(&report, &k.archived_mcp);
    let chain = PathBuf::from(format!(
        "{}!configs.tar.gz!.config/Claude/claude_desktop_config.json",
        home.join("backup.zip").display()
    ));
    let at = location(archived, &chain);
    assert_eq!(at["kind"], "archive-member");
    assert_eq!(at["archive"], home.join("backup.zip").to_str().unwrap());
    assert_eq!(
        at["member"],
        "configs.tar.gz!.config/Claude/claude_desktop_config.json"
    );
    assert_eq!(at["mcp_client"], "claude-desktop");
    assert_eq!(at["mcp_server"], "github");
    assert_eq!(at["mcp_field"], "env.GITHUB_PERSONAL_ACCESS_TOKEN");
    assert_eq!(at["backup"]["kind"], "archive");
    let v = violations(archived);
    assert!(
        v.contains("in-backup") && v.contains("plaintext-in-mcp-config"),
        "{v:?}"
    );
    assert_eq!(
        archived["scope"]["mcp_servers"][0]["config"],
        chain.to_str().unwrap()
    );

    // A chezmoi source file stands for `~/.zshrc`.
    let chezmoi = key_of(&report, &k.chezmoi);
    let at = location(chezmoi, &home.join(".local/share/chezmoi/dot_zshrc"));
    assert_eq!(at["backup"]["kind"], "chezmoi");
    assert_eq!(at["backup"]["original"], "~/.zshrc");
    assert_eq!(at["slot"], "NPM_TOKEN");
    assert!(violations(chezmoi).contains("in-backup"));

    // A backup of Claude Desktop's config: still parsed as that config.
    let backup = key_of(&report, &k.mcp_backup);
    let bak = home.join(".config/Claude/claude_desktop_config.json.bak");
    let at = location(backup, &bak);
    assert_eq!(at["kind"], "mcp-config");
    assert_eq!(at["mcp_client"], "claude-desktop");
    assert_eq!(at["mcp_server"], "slack");
    assert_eq!(at["mcp_field"], "env.SLACK_BOT_TOKEN");
    assert_eq!(at["backup"]["kind"], "leftover");
    assert_eq!(
        at["backup"]["original"],
        home.join(".config/Claude/claude_desktop_config.json")
            .to_str()
            .unwrap()
    );
    let v = violations(backup);
    assert!(
        v.contains("in-backup") && v.contains("plaintext-in-mcp-config"),
        "{v:?}"
    );
    assert!(report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["server"] == "slack" && s["config"] == bak.to_str().unwrap()));

    // What the truncated tarball held before the cut is scanned; the cut is reported.
    let npm = key_of(&report, &k.npm_in_truncated);
    let member = PathBuf::from(format!("{}!.npmrc", home.join("old-home.tar.gz").display()));
    assert_eq!(
        location(npm, &member)["slot"],
        "//registry.npmjs.org/:_authToken"
    );
    let truncated = target_errors(&report)
        .into_iter()
        .find(|(p, _)| p.starts_with(home.join("old-home.tar.gz").to_str().unwrap()))
        .unwrap_or_else(|| panic!("truncation not reported: {:#?}", target_errors(&report)));
    assert!(
        truncated.1.contains("truncated")
            || truncated.1.contains("cut short")
            || truncated.1.contains("end of file"),
        "{truncated:?}"
    );

    // The bomb stopped at a limit, reported; the rest of the scan went on.
    let bomb = error_for(&report, &home.join("bomb.zip"));
    assert!(bomb.starts_with("archive limit:"), "{bomb}");
    assert!(bomb.contains("--max-archive-ratio"), "{bomb}");

    // Every bad item, with its reason.
    assert!(error_for(&report, &home.join("pipe")).contains("FIFO"));
    assert!(error_for(&report, &home.join("agent.sock")).contains("socket"));
    assert!(error_for(&report, &home.join("null-device")).contains("device"));
    assert!(error_for(&report, &home.join("loop-a")).starts_with("symlink loop"));
    assert!(error_for(&report, &home.join("dangling")).starts_with("dangling symlink"));
    assert_eq!(
        error_for(&report, &home.join("unreadable")),
        "permission denied"
    );
    // A FIFO, a socket and a device are special files, never opened: not scanned, and named.
    let special: BTreeSet<&str> = report["targets"][0]["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["reason"] == "special-file")
        .filter_map(|n| n["path"].as_str())
        .collect();
    let names = ["pipe", "agent.sock", "null-device"].map(|n| home.join(n));
    assert_eq!(special, names.iter().filter_map(|p| p.to_str()).collect());
    assert_eq!(report["targets"][0]["skipped"]["special-file"], 3);

    // The repository is named, its internals are not scanned as files.
    assert_eq!(
        report["targets"][0]["repositories"],
        serde_json::json!([home.join("src/app").to_str().unwrap()])
    );
    assert!(report["targets"][0]["skipped"]["binary"]
        .as_u64()
        .is_none_or(|n| n < 5));

    // Nothing else: every planted key is a key, nothing more fails.
    let want: BTreeSet<String> = [
        &k.zshrc,
        &k.env,
        &k.shared_env,
        &k.aws_id,
        &k.aws_secret,
        &k.archived_mcp,
        &k.chezmoi,
        &k.mcp_backup,
        &k.netrc,
        &k.npm_in_truncated,
    ]
    .iter()
    .map(|s| fingerprint(ORG_KEY.as_bytes(), s))
    .collect();
    let got: BTreeSet<String> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap().to_string())
        .collect();
    assert!(want.is_subset(&got), "missing keys");
}

#[test]
fn unreadable_files_and_directories_are_reported_with_the_reason() {
    // Tests run as root, which reads everything: the scan runs as `nobody` instead, on a
    // tree that nobody may traverse, except for what is made private to root.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
    let tree = root.join("tree");
    let readable = key("ghp_", ALNUM, 36, 51);
    let private = key("ghp_", ALNUM, 36, 52);
    write(
        &tree.join("ok/.env"),
        &format!("GITHUB_TOKEN={readable}\n"),
        0o644,
    );
    write(
        &tree.join("private.env"),
        &format!("GITHUB_TOKEN={private}\n"),
        0o600,
    );
    write(&tree.join("locked/inside.txt"), "x", 0o644);
    for dir in [&tree, &tree.join("ok")] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(tree.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
    // The binary may sit where nobody cannot reach it (a clone under /root): run a copy.
    let binary = root.join("detector");
    fs::copy(DETECTOR, &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();

    let Some(setpriv) = which("setpriv") else {
        panic!(
            "setpriv (util-linux) is needed to drop privileges for this test; install util-linux"
        );
    };
    let started = Instant::now();
    let output = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&binary)
        .args(["scan", "--format", "json"])
        .arg(format!("dir:{}", tree.display()))
        .env("HOME", root)
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(started.elapsed() < HANG);
    assert_eq!(
        output.status.code(),
        Some(1),
        "the scan as nobody failed: {}",
        stderr(&output)
    );
    let report = json(&output);
    key_of(&report, &readable);
    assert!(report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["fingerprint"] != fingerprint(ORG_KEY.as_bytes(), &private)));
    assert_eq!(
        error_for(&report, &tree.join("private.env")),
        "permission denied"
    );
    assert!(error_for(&report, &tree.join("locked")).contains("permission denied"));
}

#[test]
fn archive_limits_stop_that_archive_and_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir_all(&dir).unwrap();
    let early = key("ghp_", ALNUM, 36, 61);
    let late = key("ghp_", ALNUM, 36, 62);
    let deep = key("ghp_", ALNUM, 36, 63);
    let beside = key("ghp_", ALNUM, 36, 64);
    // Many members: the first ones are read, the limit stops the rest.
    let mut members: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("m{i:02}.txt"), b"nothing\n".to_vec()))
        .collect();
    members[0].1 = format!("TOKEN={early}\n").into_bytes();
    members[49].1 = format!("TOKEN={late}\n").into_bytes();
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    fs::write(dir.join("many.tar.gz"), tar_gz(&refs)).unwrap();
    // Four levels: zip → tar.gz → zip → text.
    let level3 = zip(&[("deep.txt", format!("TOKEN={deep}\n").as_bytes())], true);
    let level2 = tar_gz(&[("level3.zip", &level3)]);
    fs::write(
        dir.join("nested.zip"),
        zip(&[("level2.tar.gz", &level2)], true),
    )
    .unwrap();
    write(&dir.join("beside.txt"), &format!("TOKEN={beside}\n"), 0o600);
    // A lone .gz and a tar.xz, tar.zst and tar.bz2, told by their bytes (no extension).
    let lone = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(format!("TOKEN={}\n", key("ghp_", ALNUM, 36, 65)).as_bytes())
            .unwrap();
        e.finish().unwrap()
    };
    fs::write(dir.join("notes.txt.gz"), lone).unwrap();
    let tar_plain = {
        let mut b = tar::Builder::new(Vec::new());
        let text = format!("TOKEN={}\n", key("ghp_", ALNUM, 36, 66));
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "t.txt", text.as_bytes()).unwrap();
        b.into_inner().unwrap()
    };
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar_plain).unwrap();
    fs::write(dir.join("a-blob"), xz.finish().unwrap()).unwrap();
    fs::write(
        dir.join("b-blob"),
        zstd::stream::encode_all(Cursor::new(&tar_plain), 3).unwrap(),
    )
    .unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar_plain).unwrap();
    fs::write(dir.join("c-blob"), bz.finish().unwrap()).unwrap();

    let target = format!("dir:{}", dir.display());
    let (output, _) = scan(
        &[
            &target,
            "--max-archive-members",
            "10",
            "--max-archive-depth",
            "2",
        ],
        tmp.path(),
    );
    let report = json(&output);
    let fps: BTreeSet<String> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap().to_string())
        .collect();
    let has = |s: &str| fps.contains(&fingerprint(ORG_KEY.as_bytes(), s));
    assert!(has(&early) && has(&beside));
    assert!(!has(&late), "members past the limit are not read");
    assert!(!has(&deep), "archives past the depth limit are not opened");
    assert!(has(&key("ghp_", ALNUM, 36, 65)), "lone .gz");
    let tar_key = key_of(&report, &key("ghp_", ALNUM, 36, 66));
    for name in ["a-blob", "b-blob", "c-blob"] {
        location(
            tar_key,
            &PathBuf::from(format!("{}!t.txt", dir.join(name).display())),
        );
    }
    let members = error_for(&report, &dir.join("many.tar.gz"));
    assert!(members.contains("--max-archive-members"), "{members}");
    let depth = error_for(
        &report,
        &PathBuf::from(format!(
            "{}!level2.tar.gz!level3.zip",
            dir.join("nested.zip").display()
        )),
    );
    assert!(depth.contains("--max-archive-depth"), "{depth}");
}

#[test]
fn file_targets_open_archives_and_exclusions_apply_to_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    let inside = key("ghp_", ALNUM, 36, 71);
    let excluded = key("ghp_", ALNUM, 36, 72);
    let ignored = key("ghp_", ALNUM, 36, 73);
    let gitignored = key("ghp_", ALNUM, 36, 74);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("configs.zip"),
        zip(
            &[(".env", format!("GITHUB_TOKEN={inside}\n").as_bytes())],
            true,
        ),
    )
    .unwrap();
    write(&dir.join("vendor/x.txt"), &format!("T={excluded}\n"), 0o600);
    write(&dir.join("sub/.detectorignore"), "skip.txt\n", 0o600);
    write(&dir.join("sub/skip.txt"), &format!("T={ignored}\n"), 0o600);
    write(&dir.join(".gitignore"), "local.env\n", 0o600);
    write(&dir.join("local.env"), &format!("T={gitignored}\n"), 0o600);

    let file = format!("file:{}", dir.join("configs.zip").display());
    let (output, _) = scan(&[&file], tmp.path());
    let report = json(&output);
    let at = location(
        key_of(&report, &inside),
        &PathBuf::from(format!("{}!.env", dir.join("configs.zip").display())),
    );
    assert_eq!(at["slot"], "GITHUB_TOKEN");

    let target = format!("dir:{}", dir.display());
    let has = |report: &Value, s: &str| {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["fingerprint"] == fingerprint(ORG_KEY.as_bytes(), s))
    };
    let (output, _) = scan(&[&target, "--exclude", "vendor"], tmp.path());
    let report = json(&output);
    assert!(has(&report, &inside) && has(&report, &gitignored));
    assert!(!has(&report, &excluded) && !has(&report, &ignored));
    let (output, _) = scan(&[&target, "--respect-gitignore"], tmp.path());
    let report = json(&output);
    assert!(has(&report, &excluded) && !has(&report, &gitignored));
}

#[test]
fn help_documents_the_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let output = detector(&["scan", "--help"], tmp.path(), None);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--max-archive-bytes",
        "--max-archive-ratio",
        "--max-archive-members",
        "--max-archive-depth",
        "--max-file-size",
        "--exclude",
        "--respect-gitignore",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for default in [
        "[default: 1G]",
        "[default: 100]",
        "[default: 100000]",
        "[default: 4]",
        "[default: 50M]",
    ] {
        assert!(help.contains(default), "{default} missing from --help");
    }
}

/// Whether the report has a key with this secret's fingerprint.
fn has_key(report: &Value, secret: &str) -> bool {
    let fp = fingerprint(ORG_KEY.as_bytes(), secret);
    report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["fingerprint"] == fp)
}

/// The member `archive!member` as the report shows it.
fn member_path(archive: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}!{member}", archive.display()))
}

/// A plain tar whose member names are written into the header by hand: the builder refuses
/// `..` and absolute names, which is what a hostile archive holds.
fn tar_with_raw_names(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn a_tarball_of_a_home_names_the_home_paths_and_is_a_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    fs::create_dir_all(&dir).unwrap();
    let zshrc = key("ghp_", ALNUM, 36, 81);
    let aws_secret = random(ALNUM, 40, 82);
    // `tar czf home-backup.tar.gz /home/al` stores `home/al/…`; `cd ~ && tar czf … .` stores
    // `./.aws/…`.
    let tarball = dir.join("home-backup.tar.gz");
    fs::write(
        &tarball,
        tar_gz(&[
            (
                "home/al/.zshrc",
                format!("alias ll='ls -l'\nexport GITHUB_TOKEN={zshrc}\n").as_bytes(),
            ),
            (
                "./.aws/credentials",
                format!("[default]\naws_secret_access_key = {aws_secret}\n").as_bytes(),
            ),
        ]),
    )
    .unwrap();

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);

    let found = key_of(&report, &zshrc);
    let at = location(found, &member_path(&tarball, "home/al/.zshrc"));
    assert_eq!(at["kind"], "archive-member", "{at:#}");
    assert_eq!(at["archive"], tarball.to_str().unwrap());
    assert_eq!(at["member"], "home/al/.zshrc");
    assert_eq!(at["backup"]["kind"], "archive", "{at:#}");
    assert_eq!(at["backup"]["original"], "/home/al/.zshrc", "{at:#}");
    // Read as the shell profile it stands for.
    assert_eq!(at["slot"], "GITHUB_TOKEN", "{at:#}");
    assert_eq!(at["line"], 2);
    assert!(violations(found).contains("in-backup"), "{found:#}");

    let found = key_of(&report, &aws_secret);
    let at = location(found, &member_path(&tarball, ".aws/credentials"));
    assert_eq!(at["backup"]["original"], "~/.aws/credentials", "{at:#}");
    assert_eq!(at["slot"], "default.aws_secret_access_key", "{at:#}");
    assert!(violations(found).contains("in-backup"), "{found:#}");
}

#[test]
fn corrupt_zips_keep_what_was_readable_and_report_the_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir_all(&dir).unwrap();
    let find = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };

    // The central directory cut off: only the local headers are left.
    let (a, b) = (key("ghp_", ALNUM, 36, 91), key("ghp_", ALNUM, 36, 92));
    let whole = zip(
        &[
            ("a/.env", format!("GITHUB_TOKEN={a}\n").as_bytes()),
            ("b.txt", format!("TOKEN={b}\n").as_bytes()),
        ],
        true,
    );
    let no_directory = dir.join("no-directory.zip");
    fs::write(&no_directory, &whole[..find(&whole, b"PK\x01\x02")]).unwrap();

    // Cut short in the middle of its second member, whose start holds a key too.
    let (c, d) = (key("ghp_", ALNUM, 36, 93), key("ghp_", ALNUM, 36, 94));
    let big: String = std::iter::once(format!("TOKEN={d}\n"))
        .chain((0..1500).map(|i| format!("line {i} {}\n", random(ALNUM, 40, 900 + i))))
        .collect();
    let whole = zip(
        &[
            ("first.env", format!("GITHUB_TOKEN={c}\n").as_bytes()),
            ("big.txt", big.as_bytes()),
        ],
        true,
    );
    let second = {
        let mut archive = zip::ZipArchive::new(Cursor::new(&whole)).unwrap();
        let big = archive.by_name("big.txt").unwrap();
        (big.data_start().unwrap() + big.compressed_size() / 2) as usize
    };
    let truncated = dir.join("truncated.zip");
    fs::write(&truncated, &whole[..second]).unwrap();

    // One member's deflate stream destroyed; the central directory intact.
    let (e, f) = (key("ghp_", ALNUM, 36, 95), key("ghp_", ALNUM, 36, 96));
    let mut damaged = zip(
        &[
            ("before.env", format!("GITHUB_TOKEN={e}\n").as_bytes()),
            ("bad.txt", big.as_bytes()),
            ("after.env", format!("GITHUB_TOKEN={f}\n").as_bytes()),
        ],
        true,
    );
    let (start, len) = {
        let mut archive = zip::ZipArchive::new(Cursor::new(&damaged)).unwrap();
        let bad = archive.by_name("bad.txt").unwrap();
        (
            bad.data_start().unwrap() as usize,
            bad.compressed_size() as usize,
        )
    };
    // 0xFF: a deflate block of the reserved type, refused at once.
    damaged[start..start + len].fill(0xff);
    let one_bad = dir.join("one-bad-member.zip");
    fs::write(&one_bad, &damaged).unwrap();

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    let all_errors = target_errors(&report);

    for (secret, member) in [(&a, "a/.env"), (&b, "b.txt")] {
        location(key_of(&report, secret), &member_path(&no_directory, member));
    }
    let reason = error_for(&report, &no_directory);
    assert!(
        reason.contains("central directory") || reason.contains("truncated"),
        "{reason}"
    );

    let at = location(key_of(&report, &c), &member_path(&truncated, "first.env"));
    assert_eq!(at["slot"], "GITHUB_TOKEN");
    // The readable start of the member that was cut is scanned too.
    location(key_of(&report, &d), &member_path(&truncated, "big.txt"));
    assert!(
        all_errors
            .iter()
            .any(|(p, _)| p.starts_with(truncated.to_str().unwrap())),
        "truncation not reported: {all_errors:#?}"
    );

    for (secret, member) in [(&e, "before.env"), (&f, "after.env")] {
        location(key_of(&report, secret), &member_path(&one_bad, member));
    }
    let bad = all_errors
        .iter()
        .find(|(p, _)| p.starts_with(one_bad.to_str().unwrap()))
        .unwrap_or_else(|| panic!("the bad member is not reported: {all_errors:#?}"));
    assert_eq!(
        bad.0,
        member_path(&one_bad, "bad.txt").to_str().unwrap(),
        "{bad:?}"
    );
}

#[test]
fn group_readable_files_are_world_readable_only_when_the_group_is_shared() {
    if !can_make_accounts() {
        return;
    }
    let tag = std::process::id();
    let mut accounts = Accounts::new();
    let listed = format!("dtlist{tag}");
    let primary = format!("dtprim{tag}");
    let private = format!("dtpriv{tag}");
    let listed_gid = accounts.group(&listed);
    let primary_gid = accounts.group(&primary);
    let private_gid = accounts.group(&private);
    // A user whose primary group is one, and who is listed in another (/etc/group).
    accounts.user(&format!("dtpeer{tag}"), &primary, &[&listed]);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("srv");
    let cases = [
        ("listed/.env", listed_gid, key("ghp_", ALNUM, 36, 101), true),
        (
            "primary/.env",
            primary_gid,
            key("ghp_", ALNUM, 36, 102),
            true,
        ),
        (
            "private/.env",
            private_gid,
            key("ghp_", ALNUM, 36, 103),
            false,
        ),
    ];
    for (name, gid, secret, _) in &cases {
        let path = dir.join(name);
        write(&path, &format!("GITHUB_TOKEN={secret}\n"), 0o640);
        std::os::unix::fs::chown(&path, None, Some(*gid)).unwrap();
    }

    let target = format!("dir:{}", dir.display());
    let (output, _) = scan(&[&target], tmp.path());
    let report = json(&output);
    for (name, _, secret, shared) in &cases {
        let found = key_of(&report, secret);
        let at = location(found, &dir.join(name));
        assert_eq!(at["mode"], "0640", "{name}: {at:#}");
        assert_eq!(at["readable_by_others"], *shared, "{name}: {at:#}");
        assert_eq!(
            violations(found).contains("world-readable"),
            *shared,
            "{name}: {found:#}"
        );
    }
}

#[test]
fn credential_files_are_read_field_by_field() {
    use base64::Engine as _;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home/bo");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // A registry token a provider rule knows (GitHub's, for ghcr.io), and one no rule knows.
    let ghcr = key("ghp_", ALNUM, 36, 111);
    let registry = random(ALNUM, 32, 112);
    write(
        &home.join(".docker/config.json"),
        &serde_json::to_string_pretty(&serde_json::json!({
            "auths": {
                "ghcr.io": { "auth": b64(&format!("bo:{ghcr}")) },
                "registry.example.com": { "auth": b64(&format!("bo:{registry}")) },
            },
            "credsStore": "",
        }))
        .unwrap(),
        0o600,
    );
    let kube_token = random(ALNUM, 48, 113);
    write(
        &home.join(".kube/config"),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://k8s.example.com\nusers:\n- name: admin\n  user:\n    token: {kube_token}\n"
        ),
        0o600,
    );
    let pypi = key("pypi-", ALNUM, 60, 114);
    write(
        &home.join(".pypirc"),
        &format!("[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = {pypi}\n"),
        0o600,
    );
    let refresh = ["1//0", &random(ALNUM, 60, 115)].concat();
    let gcloud = home.join(".config/gcloud/application_default_credentials.json");
    write(
        &gcloud,
        &serde_json::to_string_pretty(&serde_json::json!({
            "client_id": "000000000000-example.apps.googleusercontent.com",
            "client_secret": random(ALNUM, 24, 116),
            "refresh_token": refresh,
            "type": "authorized_user",
        }))
        .unwrap(),
        0o600,
    );

    let target = format!("dir:{}", home.display());
    let (output, _) = scan(&[&target], &home);
    let report = json(&output);
    let docker = home.join(".docker/config.json");
    for (secret, path, slot) in [
        (&ghcr, &docker, "auths.ghcr.io.auth"),
        (&registry, &docker, "auths.registry.example.com.auth"),
        (&kube_token, &home.join(".kube/config"), "users.admin.token"),
        (&pypi, &home.join(".pypirc"), "pypi.password"),
        (&refresh, &gcloud, "refresh_token"),
    ] {
        let found = key_of(&report, secret);
        let at = location(found, path);
        assert_eq!(at["slot"], slot, "{found:#}");
    }
    // The decoded `auth` holds a GitHub token: the rule knows it; the other is the format's.
    assert_ne!(key_of(&report, &ghcr)["rule"], "file-literal-secret");
    assert_eq!(key_of(&report, &registry)["rule"], "file-literal-secret");
    // The base64 of `user:token` is not itself the key.
    assert!(!has_key(&report, &b64(&format!("bo:{ghcr}"))));
}

#[test]
fn jars_and_wheels_are_opened_whatever_their_size_and_limit_flags_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dist");
    fs::create_dir_all(&dir).unwrap();
    let filler: String = (0..200)
        .map(|i| format!("{}\n", random(ALNUM, 60, 1200 + i)))
        .collect();
    let in_jar = key("ghp_", ALNUM, 36, 121);
    let jar = dir.join("app.jar");
    fs::write(
        &jar,
        zip(
            &[
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
                (
                    "BOOT-INF/classes/application.properties",
                    format!("github.token={in_jar}\n").as_bytes(),
                ),
                ("BOOT-INF/lib/filler.txt", filler.as_bytes()),
            ],
            true,
        ),
    )
    .unwrap();
    let in_wheel = key("ghp_", ALNUM, 36, 122);
    let wheel = dir.join("acme-1.0-py3-none-any.whl");
    fs::write(
        &wheel,
        zip(
            &[
                (
                    "acme/settings.py",
                    format!("GITHUB_TOKEN = \"{in_wheel}\"\n").as_bytes(),
                ),
                ("acme-1.0.dist-info/RECORD", filler.as_bytes()),
            ],
            true,
        ),
    )
    .unwrap();
    // A text file as large: skipped, as files over --max-file-size are.
    let in_big_file = key("ghp_", ALNUM, 36, 123);
    write(
        &dir.join("big.txt"),
        &format!("TOKEN={in_big_file}\n{filler}"),
        0o600,
    );
    for path in [&jar, &wheel] {
        assert!(
            fs::metadata(path).unwrap().len() > 4096,
            "{path:?} too small"
        );
    }
    // 3 KB of text in a tar.gz: past 1K expanded, under 4K.
    let in_small = key("ghp_", ALNUM, 36, 124);
    let small = dir.join("small.tar.gz");
    fs::write(
        &small,
        tar_gz(&[(
            "notes.txt",
            format!("TOKEN={in_small}\n{}", &filler[..3000]).as_bytes(),
        )]),
    )
    .unwrap();
    // 7 MiB of text that gzip shrinks about tenfold: under the default ratio of 100.
    let text: String = (0..300_000)
        .map(|i| format!("record {i:07} status=ok\n"))
        .collect();
    let medium = dir.join("records.log.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    let gz = encoder.finish().unwrap();
    let ratio = text.len() / gz.len();
    assert!((6..90).contains(&ratio), "test data ratio {ratio}");
    fs::write(&medium, gz).unwrap();

    let target = format!("dir:{}", dir.display());
    let limit_errors = |report: &Value| -> Vec<(String, String)> {
        target_errors(report)
            .into_iter()
            .filter(|(_, r)| r.starts_with("archive limit:"))
            .collect()
    };

    // --max-file-size skips the text file, not the archives larger than it.
    let (output, took) = scan(&[&target, "--max-file-size", "4K"], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    for (secret, archive, member) in [
        (&in_jar, &jar, "BOOT-INF/classes/application.properties"),
        (&in_wheel, &wheel, "acme/settings.py"),
    ] {
        let at = location(key_of(&report, secret), &member_path(archive, member));
        assert_eq!(at["kind"], "archive-member", "{at:#}");
        assert_eq!(at["archive"], archive.to_str().unwrap());
        assert_eq!(at["member"], member);
        // A package's files were built and shipped, not backed up.
        assert!(at.get("backup").is_none(), "{at:#}");
        let violations = &key_of(&report, secret)["violations"];
        assert!(
            !violations
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == "in-backup"),
            "{violations}"
        );
    }
    assert!(!has_key(&report, &in_big_file), "big.txt is over 4K");
    let skipped = &report["targets"][0]["skipped"];
    assert!(
        skipped["too-large"].as_u64().unwrap_or(0) >= 1,
        "too-large not counted: {skipped:#}"
    );
    assert!(has_key(&report, &in_small));
    assert_eq!(limit_errors(&report), [], "no limit is hit by default");

    // --max-archive-bytes 1K stops the tar.gz and the jar; the rest of the scan goes on.
    let (output, _) = scan(&[&target, "--max-archive-bytes", "1K"], tmp.path());
    let report = json(&output);
    let reason = error_for(&report, &small);
    assert!(
        reason.starts_with("archive limit:") && reason.contains("--max-archive-bytes"),
        "{reason}"
    );
    assert!(reason.contains("1024"), "{reason}");
    assert!(
        has_key(&report, &in_big_file),
        "files outside archives still scanned"
    );

    // --max-archive-ratio 3 stops the log (about tenfold), not the small ones.
    let (output, _) = scan(&[&target, "--max-archive-ratio", "3"], tmp.path());
    let report = json(&output);
    let reason = error_for(&report, &medium);
    assert!(
        reason.starts_with("archive limit:") && reason.contains("--max-archive-ratio"),
        "{reason}"
    );
    assert!(reason.contains("3×"), "{reason}");
    assert_eq!(
        limit_errors(&report).len(),
        1,
        "{:#?}",
        limit_errors(&report)
    );
    assert!(has_key(&report, &in_small) && has_key(&report, &in_jar));
}

/// `evil.txt` in each of `dirs`: its length and mtime, if it exists.
fn evil_files(dirs: &[PathBuf]) -> Vec<Option<(u64, std::time::SystemTime)>> {
    dirs.iter()
        .map(|d| {
            fs::symlink_metadata(d.join("evil.txt"))
                .ok()
                .map(|m| (m.len(), m.modified().unwrap()))
        })
        .collect()
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.insert(path);
        }
    }
    out
}

#[test]
fn path_traversal_member_names_are_only_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/scan");
    fs::create_dir_all(&dir).unwrap();
    let in_tar = key("ghp_", ALNUM, 36, 131);
    let in_zip = key("ghp_", ALNUM, 36, 132);
    let tarball = dir.join("evil.tar");
    fs::write(
        &tarball,
        tar_with_raw_names(&[("../../evil.txt", format!("TOKEN={in_tar}\n").as_bytes())]),
    )
    .unwrap();
    let zipped = dir.join("evil.zip");
    fs::write(
        &zipped,
        zip(
            &[("../../evil.txt", format!("TOKEN={in_zip}\n").as_bytes())],
            true,
        ),
    )
    .unwrap();
    let before_files = files_under(tmp.path());
    // Every directory a `..` could reach from the archives, the binary's working directory
    // and HOME, up to the root.
    let mut dirs: Vec<PathBuf> = dir.ancestors().map(Path::to_path_buf).collect();
    dirs.extend(
        std::env::current_dir()
            .unwrap()
            .ancestors()
            .map(Path::to_path_buf),
    );
    let before = evil_files(&dirs);

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    for (secret, archive) in [(&in_tar, &tarball), (&in_zip, &zipped)] {
        let at = location(
            key_of(&report, secret),
            &member_path(archive, "../../evil.txt"),
        );
        assert_eq!(at["kind"], "archive-member");
        assert_eq!(at["member"], "../../evil.txt");
    }
    assert_eq!(
        evil_files(&dirs),
        before,
        "an evil.txt was written in one of {dirs:#?}"
    );
    assert_eq!(files_under(tmp.path()), before_files, "files appeared");
}

#[test]
#[should_panic(expected = "did not finish within")]
fn a_hung_binary_fails_the_test_instead_of_blocking_it() {
    let mut sleeper = std::process::Command::new("sleep");
    sleeper.arg("30");
    run_with_deadline(sleeper, Duration::from_secs(1), "sleep 30");
}

/// The target's `not_scanned` entries: (path, reason, detail).
fn not_scanned(report: &Value) -> Vec<(String, String, String)> {
    report["targets"][0]["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let text = |f: &str| n[f].as_str().unwrap_or_default().to_string();
            (text("path"), text("reason"), text("detail"))
        })
        .collect()
}

#[test]
fn a_sparse_tarball_bomb_stops_at_the_archive_limit_and_the_scan_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir_all(&dir).unwrap();
    let before = key("ghp_", ALNUM, 36, 1301);
    let beside = key("ghp_", ALNUM, 36, 1302);
    // A PiB member made of one stored block: the header of a nested tar whose one member is
    // the hole after it. Opened as the tar it looks like, that member is zeros to skip.
    let (header, data) = kit::image::sparse_tar_bomb(1 << 50);
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let text = format!("GITHUB_TOKEN={before}\n");
    let mut first = tar::Header::new_gnu();
    first.set_size(text.len() as u64);
    first.set_mode(0o600);
    first.set_cksum();
    builder
        .append_data(&mut first, "before.env", text.as_bytes())
        .unwrap();
    for _ in 0..4 {
        builder.append(&header, data.as_slice()).unwrap();
    }
    let bomb = builder.into_inner().unwrap().finish().unwrap();
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let archive = dir.join("sparse.tar.gz");
    fs::write(&archive, &bomb).unwrap();
    write(&dir.join("beside.txt"), &format!("TOKEN={beside}\n"), 0o600);

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan_bounded(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    location(
        key_of(&report, &before),
        &member_path(&archive, "before.env"),
    );
    location(key_of(&report, &beside), &dir.join("beside.txt"));
    // Listed as cut short, with the limit that cut it and where; an error as well.
    let archive = archive.to_str().unwrap();
    let cut = not_scanned(&report)
        .into_iter()
        .find(|(path, reason, _)| path == archive && reason == "over-limit")
        .unwrap_or_else(|| panic!("{:#}", report["targets"][0]["not_scanned"]));
    assert!(
        cut.2.starts_with("archive limit:")
            && cut.2.contains("--max-archive-ratio")
            && cut.2.contains("disk.img"),
        "{}",
        cut.2
    );
    assert_eq!(error_for(&report, Path::new(archive)), cut.2);
}

/// `zip`, with the name of every member called `alias` changed to `name` (as long), in its
/// local header and its central directory entry: the writer refuses two members of one name.
fn rename_members(mut zipped: Vec<u8>, alias: &str, name: &str) -> Vec<u8> {
    assert_eq!(alias.len(), name.len());
    let mut at = 0;
    while let Some(i) = zipped[at..]
        .windows(alias.len())
        .position(|w| w == alias.as_bytes())
    {
        zipped[at + i..at + i + name.len()].copy_from_slice(name.as_bytes());
        at += i + name.len();
    }
    zipped
}

#[test]
fn zip_members_of_the_same_name_are_each_scanned_and_located() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir_all(&dir).unwrap();
    let (first, second, other) = (
        key("ghp_", ALNUM, 36, 1311),
        key("ghp_", ALNUM, 36, 1312),
        key("ghp_", ALNUM, 36, 1313),
    );
    let (nested_first, nested_second) =
        (key("ghp_", ALNUM, 36, 1314), key("ghp_", ALNUM, 36, 1315));
    let dup = |a: &str, b: &str, deflate: bool| {
        rename_members(
            zip(
                &[
                    ("app/.env", format!("GITHUB_TOKEN={a}\n").as_bytes()),
                    ("readme.txt", format!("TOKEN={other}\n").as_bytes()),
                    ("app/.enw", format!("GITHUB_TOKEN={b}\n").as_bytes()),
                ],
                deflate,
            ),
            "app/.enw",
            "app/.env",
        )
    };
    let zipped = dir.join("dup.zip");
    fs::write(&zipped, dup(&first, &second, true)).unwrap();
    // The same inside a tarball: a zip read in memory.
    let tarball = dir.join("outer.tar.gz");
    fs::write(
        &tarball,
        tar_gz(&[("dup.zip", &dup(&nested_first, &nested_second, false))]),
    )
    .unwrap();

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan_bounded(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    location(key_of(&report, &other), &member_path(&zipped, "readme.txt"));
    // The first keeps the plain name; the second, which the name alone would merge with it,
    // says which entry of the central directory it is.
    for (archive, a, b) in [
        (zipped.display().to_string(), &first, &second),
        (
            format!("{}!dup.zip", tarball.display()),
            &nested_first,
            &nested_second,
        ),
    ] {
        let shown = |member: &str| PathBuf::from(format!("{archive}!{member}"));
        let at = location(key_of(&report, a), &shown("app/.env"));
        assert_eq!(at["slot"], "GITHUB_TOKEN", "{at:#}");
        let at = location(key_of(&report, b), &shown("app/.env (entry 3)"));
        assert_eq!(at["kind"], "archive-member");
        assert_eq!(
            at["slot"], "GITHUB_TOKEN",
            "read as the .env it is named: {at:#}"
        );
    }
    assert!(
        target_errors(&report).is_empty(),
        "{:#?}",
        target_errors(&report)
    );
}

#[test]
fn junk_after_a_compressed_stream_is_reported_once_its_content_is_scanned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir_all(&dir).unwrap();
    let junk = b"this is not part of any compressed stream\n";
    let text = |secret: &str| format!("GITHUB_TOKEN={secret}\n");
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let xz = |data: &[u8]| {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let bz2 = |data: &[u8]| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let zst = |data: &[u8]| zstd::stream::encode_all(Cursor::new(data), 3).unwrap();
    type Compress<'c> = &'c dyn Fn(&[u8]) -> Vec<u8>;
    let compressors: [(&str, Compress); 4] =
        [("gz", &gz), ("xz", &xz), ("bz2", &bz2), ("zst", &zst)];
    let mut cases = Vec::new();
    for (i, (extension, compress)) in compressors.iter().enumerate() {
        let secret = key("ghp_", ALNUM, 36, 1321 + i as u64);
        // Two streams back to back are one content (pigz, `cat a.gz b.gz`); junk ends it.
        let second = key("ghp_", ALNUM, 36, 1331 + i as u64);
        let mut bytes = compress(text(&secret).as_bytes());
        bytes.extend(compress(text(&second).as_bytes()));
        bytes.extend_from_slice(junk);
        let path = dir.join(format!("secrets.env.{extension}"));
        fs::write(&path, bytes).unwrap();
        cases.push((path, secret, second));
    }
    // Zero padding after the last stream (as some tools leave it) is not junk.
    let padded_key = key("ghp_", ALNUM, 36, 1341);
    let mut padded = gz(text(&padded_key).as_bytes());
    padded.extend([0u8; 1024]);
    fs::write(dir.join("padded.env.gz"), padded).unwrap();

    let target = format!("dir:{}", dir.display());
    let (output, took) = scan_bounded(&[&target], tmp.path());
    assert!(took < HANG, "the scan took {took:?}");
    let report = json(&output);
    for (path, secret, second) in &cases {
        for secret in [secret, second] {
            let at = location(key_of(&report, secret), &member_path(path, "secrets.env"));
            assert_eq!(at["slot"], "GITHUB_TOKEN", "{at:#}");
        }
        let reason = error_for(&report, path);
        assert!(reason.contains("trailing data"), "{reason}");
    }
    location(
        key_of(&report, &padded_key),
        &member_path(&dir.join("padded.env.gz"), "padded.env"),
    );
    assert_eq!(
        target_errors(&report).len(),
        cases.len(),
        "{:#?}",
        target_errors(&report)
    );
}
