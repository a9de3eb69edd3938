//! The Debian package of the agent host, `detector_<version>_amd64.deb`, built with Debian's
//! own `dpkg-deb` from the static Linux binary and `deploy/`: `cargo xtask deb` writes it
//! into the dist folder, and the package test builds one of its own from the same binary, so
//! both are made by this code.
//!
//! What it holds: `/usr/bin/detector`, stripped; the hardened unit of `deploy/detector-agent.service` at
//! `/lib/systemd/system/`, its `ExecStart` pointed at `/usr/bin/detector` and at the policy
//! below; `deploy/policy.toml` at `/etc/detector/policy.toml`, a conffile (an edited policy
//! survives upgrades and removal). `postinst` makes `/var/log/detector` (mode 0750, root's),
//! where the unit writes the events. The agent is not enabled on install: an administrator
//! reviews the policy, then `systemctl enable --now detector-agent`.
//!
//! Removal leaves the conffile and the logs; purge removes the conffile and the enablement
//! link too, and still leaves the events a run wrote: they are the record of who read which
//! secret, deleted by a person, never as a side effect (the empty log directory goes).
use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The package's name.
pub const PACKAGE: &str = "detector";
/// The unit's name, as `systemctl` takes it.
pub const UNIT: &str = "detector-agent.service";
/// Where the package puts the binary, the unit, the policy and the logs.
pub const BINARY_PATH: &str = "/usr/bin/detector";
pub const UNIT_PATH: &str = "/lib/systemd/system/detector-agent.service";
pub const POLICY_PATH: &str = "/etc/detector/policy.toml";
pub const LOG_DIR: &str = "/var/log/detector";

/// The Debian version of a Cargo version: a pre-release sorts before its release
/// (`0.2.0-rc.1` → `0.2.0~rc.1`).
pub fn debian_version(cargo_version: &str) -> String {
    cargo_version.replacen('-', "~", 1)
}

/// The file name `dpkg-deb` gives the package of `cargo_version`.
pub fn file_name(cargo_version: &str) -> String {
    format!("{PACKAGE}_{}_amd64.deb", debian_version(cargo_version))
}

/// Build the package of `binary` (the x86-64 static build) with the files of `deploy` (the
/// repository's `deploy/`) into `out_dir`; its path. Each step that fails says which.
pub fn build(
    binary: &Path,
    deploy: &Path,
    cargo_version: &str,
    out_dir: &Path,
) -> Result<PathBuf, String> {
    let staging = tempfile::tempdir().map_err(|e| format!("cannot make a staging folder: {e}"))?;
    let root = staging.path().join("root");
    let read = |name: &str| {
        fs::read_to_string(deploy.join(name))
            .map_err(|e| format!("cannot read {}: {e}", deploy.join(name).display()))
    };
    let unit = packaged_unit(&read(UNIT)?)?;
    let policy = read("policy.toml")?;
    let binary_bytes = stripped(binary, staging.path())?;

    put(&root, BINARY_PATH, &binary_bytes, 0o755)?;
    put(&root, UNIT_PATH, unit.as_bytes(), 0o644)?;
    put(&root, POLICY_PATH, policy.as_bytes(), 0o644)?;
    put(
        &root,
        "/usr/share/doc/detector/copyright",
        COPYRIGHT.as_bytes(),
        0o644,
    )?;
    let maintainer = maintainer();
    put(
        &root,
        "/usr/share/doc/detector/changelog.gz",
        &changelog(cargo_version, &maintainer)?,
        0o644,
    )?;
    put(
        &root,
        "/usr/share/lintian/overrides/detector",
        LINTIAN_OVERRIDES.as_bytes(),
        0o644,
    )?;
    let mut files = Vec::new();
    collect_files(&root, &root, &mut files)?;
    // As dpkg-gencontrol counts: each file's KiB, rounded up, and one per folder.
    let folders: std::collections::BTreeSet<&Path> =
        files.iter().flat_map(|f| f.ancestors().skip(1)).collect();
    let installed_kib = files
        .iter()
        .map(|f| fs::metadata(root.join(f)).map_or(0, |m| m.len().div_ceil(1024)))
        .sum::<u64>()
        + folders.len() as u64;
    let control = control(cargo_version, &maintainer, installed_kib);
    let md5sums = md5sums(&root, &files)?;
    put(&root, "/DEBIAN/control", control.as_bytes(), 0o644)?;
    put(
        &root,
        "/DEBIAN/conffiles",
        format!("{POLICY_PATH}\n").as_bytes(),
        0o644,
    )?;
    put(&root, "/DEBIAN/md5sums", md5sums.as_bytes(), 0o644)?;
    put(&root, "/DEBIAN/postinst", POSTINST.as_bytes(), 0o755)?;
    put(&root, "/DEBIAN/prerm", PRERM.as_bytes(), 0o755)?;
    put(&root, "/DEBIAN/postrm", POSTRM.as_bytes(), 0o755)?;
    directories_0755(&root)?;

    fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let deb = out_dir.join(file_name(cargo_version));
    let output = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .map_err(|e| format!("cannot run dpkg-deb (Debian's dpkg): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "dpkg-deb --build failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(deb)
}

/// The binary's bytes without debug information or symbols, as Debian ships binaries
/// (`dh_strip`): binutils' `strip` of a copy in `scratch`.
fn stripped(binary: &Path, scratch: &Path) -> Result<Vec<u8>, String> {
    let copy = scratch.join("detector.stripped");
    fs::copy(binary, &copy).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let output = Command::new("strip")
        .args([
            "--strip-unneeded",
            "--remove-section=.comment",
            "--remove-section=.note",
        ])
        .arg(&copy)
        .output()
        .map_err(|e| format!("cannot run strip (Debian's binutils): {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "strip {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    fs::read(&copy).map_err(|e| format!("cannot read {}: {e}", copy.display()))
}

/// The unit of `deploy/` as the package installs it: the binary at `/usr/bin`, the policy
/// the conffile, and the header's manual install lines (the package did that) left out.
pub fn packaged_unit(deploy_unit: &str) -> Result<String, String> {
    const EXEC: &str = "ExecStart=/usr/local/bin/detector agent ";
    if deploy_unit.matches(EXEC).count() != 1 {
        return Err(format!(
            "deploy/{UNIT} has no single `{EXEC}…` line to point at {BINARY_PATH}"
        ));
    }
    let unit = deploy_unit.replace(
        EXEC,
        &format!("ExecStart={BINARY_PATH} agent --policy {POLICY_PATH} "),
    );
    let mut out = String::new();
    for line in unit.lines() {
        if line.starts_with('#') && line.contains("install -m") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if out.contains("/usr/local/bin/detector") {
        return Err(format!(
            "deploy/{UNIT} names /usr/local/bin/detector outside ExecStart"
        ));
    }
    Ok(out)
}

/// `$DEBFULLNAME <$DEBEMAIL>` (Debian's variables for who builds a package), else a
/// placeholder.
fn maintainer() -> String {
    match (std::env::var("DEBFULLNAME"), std::env::var("DEBEMAIL")) {
        (Ok(name), Ok(email)) if !name.is_empty() && !email.is_empty() => {
            format!("{name} <{email}>")
        }
        _ => "detector maintainers <maintainers@detector.invalid>".to_string(),
    }
}

/// A native package's `changelog.gz`: one entry for this version, dated
/// `$SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn changelog(cargo_version: &str, maintainer: &str) -> Result<Vec<u8>, String> {
    let mut date = Command::new("date");
    date.arg("-R");
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        date.arg("-d").arg(format!("@{epoch}"));
    }
    let date = date
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run date: {e}"))?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    let text = format!(
        "{PACKAGE} ({}) unstable; urgency=medium\n\n  * Release {cargo_version}.\n\n -- {maintainer}  {date}\n",
        debian_version(cargo_version)
    );
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, text.as_bytes()).map_err(|e| e.to_string())?;
    gz.finish().map_err(|e| e.to_string())
}

fn control(cargo_version: &str, maintainer: &str, installed_kib: u64) -> String {
    format!(
        "Package: {PACKAGE}\n\
         Version: {}\n\
         Architecture: amd64\n\
         Maintainer: {maintainer}\n\
         Installed-Size: {installed_kib}\n\
         Section: admin\n\
         Priority: optional\n\
         Description: audit and leak detector for the secrets of MCP servers\n \
         detector finds the API keys MCP (Model Context Protocol) clients keep in their\n \
         configs wherever they leaked (files, git history, container images), reports\n \
         each key's project, environment and rotation status, and its agent records\n \
         which processes open those files (eBPF, systemd unit detector-agent).\n \
         .\n \
         The binary is static: the package depends on nothing.\n",
        debian_version(cargo_version)
    )
}

/// `md5sums` of `files` (relative to `root`), as `md5sum` writes them.
fn md5sums(root: &Path, files: &[PathBuf]) -> Result<String, String> {
    let output = Command::new("md5sum")
        .current_dir(root)
        .arg("--")
        .args(files)
        .output()
        .map_err(|e| format!("cannot run md5sum: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "md5sum failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("md5sum: {e}"))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        if rel.starts_with("DEBIAN") {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            out.push(rel);
        }
    }
    out.sort();
    Ok(())
}

/// Write `bytes` at the absolute `path` under `root`, with `mode`.
fn put(root: &Path, path: &str, bytes: &[u8], mode: u32) -> Result<(), String> {
    let at = root.join(path.trim_start_matches('/'));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", at.display());
    fs::create_dir_all(at.parent().unwrap()).map_err(fail)?;
    fs::write(&at, bytes).map_err(fail)?;
    fs::set_permissions(&at, fs::Permissions::from_mode(mode)).map_err(fail)
}

/// Every folder 0755, whatever the umask (dpkg-deb refuses a group-writable `DEBIAN`).
fn directories_0755(dir: &Path) -> Result<(), String> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            directories_0755(&path)?;
        }
    }
    Ok(())
}

/// Tags lintian raises on what this package is on purpose.
const LINTIAN_OVERRIDES: &str = "\
# The point of the package: one static binary that needs no libc.
detector: statically-linked-binary [usr/bin/detector]
# unsafe-libyaml, a Rust translation of libyaml, compiled in; not a copy of the C library.
detector: embedded-library libyaml [usr/bin/detector]
";

const COPYRIGHT: &str = "\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: detector

Files: *
Copyright: 2026 the detector authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0, is in
 /usr/share/common-licenses/Apache-2.0.
";

/// After unpacking: the log directory (when missing; an administrator's mode stays), and
/// systemd told about the unit (a running agent restarted on upgrade). Not enabled.
const POSTINST: &str = r#"#!/bin/sh
# detector: make the agent's log directory and tell systemd about the unit. The agent is
# not enabled here: review /etc/detector/policy.toml, then
#   systemctl enable --now detector-agent
set -e
if [ "$1" = configure ]; then
    if [ ! -d /var/log/detector ]; then
        install -d -m 0750 -o root -g root /var/log/detector
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            deb-systemd-invoke try-restart detector-agent.service >/dev/null || true
        fi
    fi
fi
exit 0
"#;

/// Before removal: a running agent is stopped (it writes its final heartbeat on SIGTERM).
const PRERM: &str = r#"#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop detector-agent.service >/dev/null 2>&1 || true
fi
exit 0
"#;

/// After removal: systemd forgets the unit. On purge the enablement link goes too, and the
/// log directory if it is empty; the events an agent wrote stay (see the module's comment).
const POSTRM: &str = r#"#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -f /etc/systemd/system/multi-user.target.wants/detector-agent.service
    # The events are the record of who read which secret: removed by a person, not here.
    rmdir /var/log/detector 2>/dev/null || true
fi
if [ "$1" = remove ] || [ "$1" = purge ]; then
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
fi
exit 0
"#;
