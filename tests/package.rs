//! The Debian package of the agent host, installed for real on this machine with `dpkg`:
//! built (as `cargo xtask deb` builds it) from the static binary of `cargo xtask dist`, then
//! `dpkg -i`, the binary run, the unit checked with `systemd-analyze verify`, `dpkg -r`
//! (the logs stay) and `dpkg --purge` (what the package installed goes). Root only; it never
//! touches a `detector` package it did not install.
use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use kit::{
    deb::{BINARY_PATH, LOG_DIR, PACKAGE, POLICY_PATH, UNIT_PATH},
    guard::{root_or_skip, skip},
    run::{stderr, stdout, which},
};

use crate::DETECTOR;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> Output {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        stderr(&output),
        stdout(&output)
    );
    output
}

/// `dpkg-query`'s status of the package: "install ok installed", "deinstall ok config-files",
/// or `None` when dpkg does not know it.
fn package_status() -> Option<String> {
    let output = run("dpkg-query", &["-W", "-f=${Status}", PACKAGE]);
    let status = stdout(&output);
    (output.status.success() && !status.contains("not-installed")).then_some(status)
}

/// Purges the package when the test ends, passed or failed, and removes the log directory
/// the test wrote into (it did not exist before: see the test's first checks).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
        let _ = fs::remove_dir_all(LOG_DIR);
    }
}

#[test]
fn the_debian_package_installs_removes_and_purges() {
    if !root_or_skip("dpkg -i installs into the system") {
        return;
    }
    if which("dpkg-deb").is_none() || which("dpkg").is_none() {
        skip("dpkg is missing (this test needs a Debian system)");
        return;
    }
    // Never touch what someone else installed: a package, a binary, or an agent's logs.
    if let Some(status) = package_status() {
        skip(&format!(
            "a `{PACKAGE}` package is already on this machine ({status}); this test installs and purges its own"
        ));
        return;
    }
    for path in [BINARY_PATH, UNIT_PATH, POLICY_PATH, LOG_DIR] {
        if Path::new(path).exists() {
            skip(&format!(
                "{path} exists and belongs to no `{PACKAGE}` package; this test would replace or remove it"
            ));
            return;
        }
    }
    let Some(binary) = kit::dist::binary_or_skip(Path::new(DETECTOR), kit::dist::LINUX_MUSL) else {
        return;
    };
    let version = env!("CARGO_PKG_VERSION");
    let tmp = tempfile::tempdir().unwrap();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let deb = kit::deb::build(&binary, &deploy, version, tmp.path()).unwrap();
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("detector_{version}_amd64.deb")
    );

    // What dpkg-deb reads back: the control fields and the files, owned by root.
    let info = stdout(&run_ok("dpkg-deb", &["--info", deb.to_str().unwrap()]));
    for field in [
        "Package: detector",
        &format!("Version: {}", kit::deb::debian_version(version)),
        "Architecture: amd64",
        "Maintainer: ",
        "Installed-Size: ",
        "Section: admin",
        "Description: ",
    ] {
        assert!(info.contains(field), "{field} in the control file:\n{info}");
    }
    for script in ["postinst", "prerm", "postrm", "conffiles", "md5sums"] {
        assert!(info.contains(script), "{script} in the package:\n{info}");
    }
    let contents = stdout(&run_ok("dpkg-deb", &["--contents", deb.to_str().unwrap()]));
    for (path, mode) in [
        (BINARY_PATH, "-rwxr-xr-x"),
        (UNIT_PATH, "-rw-r--r--"),
        (POLICY_PATH, "-rw-r--r--"),
        ("/usr/share/doc/detector/copyright", "-rw-r--r--"),
    ] {
        let line = contents
            .lines()
            .find(|l| l.ends_with(&format!(".{path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{contents}"));
        assert!(
            line.starts_with(mode) && line.contains("root/root"),
            "{path}: {line}"
        );
    }

    let _installed = Installed;
    run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert_eq!(package_status().as_deref(), Some("install ok installed"));

    // The installed binary runs and is the version packaged.
    let out = run_ok(BINARY_PATH, &["--version"]);
    assert!(stdout(&out).contains(version), "{}", stdout(&out));
    // The conffile is dpkg's, and the installed binary accepts it as the agent's policy.
    let conffiles = stdout(&run_ok("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE]));
    assert!(conffiles.contains(POLICY_PATH), "conffiles: {conffiles}");
    assert_eq!(
        fs::read_to_string(POLICY_PATH).unwrap(),
        fs::read_to_string(deploy.join("policy.toml")).unwrap()
    );
    run_ok(BINARY_PATH, &["agent", "--check-policy", POLICY_PATH]);

    // The unit starts the packaged binary with the packaged policy, and systemd accepts it.
    let unit = fs::read_to_string(UNIT_PATH).unwrap();
    let exec: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec.len(), 1, "{unit}");
    assert!(
        exec[0].starts_with(&format!(
            "ExecStart={BINARY_PATH} agent --policy {POLICY_PATH} --events {LOG_DIR}/"
        )),
        "{}",
        exec[0]
    );
    assert!(unit.contains("LogsDirectory=detector"), "{unit}");
    kit::run::assert_unit_verifies(Path::new(UNIT_PATH));

    // The log directory: made by the package, root's, closed to others.
    let meta = fs::metadata(LOG_DIR).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o750, "{LOG_DIR} mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{LOG_DIR} owner");

    // What an agent wrote there (a record of its own; no agent runs here).
    let events = PathBuf::from(LOG_DIR).join("events.jsonl");
    let record = r#"{"type":"heartbeat","time":"2025-01-01T00:00:00Z","seq":1}"#;
    fs::write(&events, format!("{record}\n")).unwrap();

    // Removal: the binary and the unit go; the policy (a conffile) and the logs stay.
    run_ok("dpkg", &["-r", PACKAGE]);
    assert_eq!(
        package_status().as_deref(),
        Some("deinstall ok config-files")
    );
    for gone in [BINARY_PATH, UNIT_PATH] {
        assert!(!Path::new(gone).exists(), "{gone} is left after dpkg -r");
    }
    assert!(
        Path::new(POLICY_PATH).is_file(),
        "dpkg -r keeps the conffile"
    );
    assert_eq!(
        fs::read_to_string(&events).unwrap(),
        format!("{record}\n"),
        "dpkg -r keeps the logs"
    );

    // Purge: what it installed goes (the conffile and its folder too); the events stay.
    run_ok("dpkg", &["--purge", PACKAGE]);
    assert_eq!(package_status(), None);
    for gone in [
        BINARY_PATH,
        UNIT_PATH,
        POLICY_PATH,
        "/etc/detector",
        "/usr/share/doc/detector",
    ] {
        assert!(
            !Path::new(gone).exists(),
            "{gone} is left after dpkg --purge"
        );
    }
    assert_eq!(
        fs::read_to_string(&events).unwrap(),
        format!("{record}\n"),
        "purge leaves the events an agent wrote"
    );
    // An empty log directory is the package's own: purge takes it.
    fs::remove_file(&events).unwrap();
    run_ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(Path::new(LOG_DIR).is_dir());
    run_ok("dpkg", &["--purge", PACKAGE]);
    assert!(
        !Path::new(LOG_DIR).exists(),
        "purge removes an empty {LOG_DIR}"
    );
}
