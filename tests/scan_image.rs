//! `detector scan` over container images: real images built by a real Docker daemon (started
//! by these tests, shared by them), read through `docker-archive:` and `docker:`, and OCI
//! layouts written here blob by blob, with gzip and zstd layers, an opaque whiteout, two
//! platforms sharing a layer, and a truncated layer; `docker save` archives written member by
//! member (legacy and OCI layouts, several images, labels/Cmd/Entrypoint, corrupt layers, an
//! archive cut short).
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
};

use kit::{
    docker::{daemon, Daemon},
    image::{
        gzip, layer_tar, legacy_image, oci_blob_name, oci_save_image, oci_save_metadata, sha256,
        ImageArchive, OciLayout,
    },
    keys::{fingerprint, key, random, ALNUM},
    report::{locations, report_fingerprints},
    run::{json, run_ok, stderr, stdout},
};
use serde_json::{json, Value};

use crate::DETECTOR;

const ORG_KEY: &str = "scan-image-test-org";
const APP: &str = "detector-test-app:prod";

/// `detector ARGS…` in a clean environment, with `DOCKER_HOST` set when given.
fn detector(args: &[&str], home: &Path, docker_host: Option<&str>) -> Output {
    detector_command(args, home, docker_host)
        .output()
        .expect("run the detector binary")
}

fn detector_command(args: &[&str], home: &Path, docker_host: Option<&str>) -> Command {
    let mut cmd = Command::new(DETECTOR);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("RUST_LOG")
        .env_remove("DOCKER_HOST")
        .env("DETECTOR_ORG_KEY", ORG_KEY)
        .env("NO_COLOR", "1");
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    cmd
}

/// `detector ARGS…` with a `TMPDIR` no file can be made in: a temporary file (even an unlinked
/// one, which an empty directory would not show) fails to be created, and so does the run
/// that needs one.
fn detector_without_disk(args: &[&str], home: &Path, docker_host: Option<&str>) -> Output {
    let tmp = home.join("no-such-tmp");
    assert!(!tmp.exists());
    let out = detector_command(args, home, docker_host)
        .env("TMPDIR", &tmp)
        .output()
        .expect("run the detector binary");
    assert!(!tmp.exists());
    out
}

fn fp(secret: &str) -> String {
    fingerprint(ORG_KEY.as_bytes(), secret)
}

fn key_of<'a>(report: &'a Value, secret: &str) -> &'a Value {
    kit::report::key_of(report, ORG_KEY, secret)
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// Nothing secret may reach the report or the logs in clear.
fn assert_no_secret(output: &Output, secrets: &[&String]) {
    let text = [stdout(output), stderr(output)].concat();
    kit::report::assert_no_secret(&text, secrets, "the scan's output or messages");
}

// ---------------------------------------------------------------------------------------
// The image: a busybox base from `docker import`, then a Dockerfile that leaks three ways.

struct Built {
    daemon: &'static Daemon,
    archive: PathBuf,
    /// In `/app/.env`, COPY'd in one layer and `rm`'d in the next.
    dotenv_key: String,
    /// A `--build-arg`, used by a RUN.
    build_arg_key: String,
    /// Set with ENV.
    env_key: String,
}

fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    BUILT.get_or_init(|| daemon().map(build_app)).as_ref()
}

fn build_app(daemon: &'static Daemon) -> Built {
    let dotenv_key = key("ghp_", ALNUM, 36, 101);
    let build_arg_key = key("glpat-", ALNUM, 20, 102);
    let env_key = [&key("sk-ant-api03-", ALNUM, 93, 103), "AA"].concat();

    // The base: busybox, with the applets the Dockerfile runs.
    let base = daemon.busybox();

    let context = daemon.dir.join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(
        context.join(".env"),
        format!("DEBUG=0\nGITHUB_TOKEN={dotenv_key}\n"),
    )
    .unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!(
            "FROM {base}\n\
             ARG GITLAB_TOKEN\n\
             COPY .env /app/.env\n\
             RUN mkdir -p /srv && echo \"fetched with ${{GITLAB_TOKEN:+a token}}\" > /srv/built.txt\n\
             RUN rm /app/.env\n\
             ENV ANTHROPIC_API_KEY={env_key}\n\
             LABEL team=payments\n\
             CMD [\"sh\"]\n"
        ),
    )
    .unwrap();
    run_ok(
        daemon
            .docker(&["build", "-q", "-t", APP, "--build-arg"])
            .arg(format!("GITLAB_TOKEN={build_arg_key}"))
            .arg(&context),
    );
    let archive = daemon.dir.join("app.tar");
    run_ok(daemon.docker(&["save", "-o"]).arg(&archive).arg(APP));
    Built {
        daemon,
        archive,
        dotenv_key,
        build_arg_key,
        env_key,
    }
}

/// What both ways of reading the app image must say.
fn assert_app_report(report: &Value, built: &Built) {
    // The COPY'd .env, deleted by the next layer: still there, with both layers named.
    let dotenv = key_of(report, &built.dotenv_key);
    assert_eq!(
        dotenv["status"], "live",
        "a hidden file is still extractable"
    );
    assert!(strings(&dotenv["violations"]).contains(&"in-image-layer"));
    assert_eq!(strings(&dotenv["scope"]["projects"]), [APP]);
    assert!(strings(&dotenv["scope"]["environments"]).contains(&"production"));
    let file = locations(dotenv)
        .iter()
        .find(|l| l["kind"] == "image-layer")
        .expect("an image-layer location");
    assert_eq!(file["path"], "/app/.env");
    assert_eq!(file["line"], 2);
    assert_eq!(file["image"], APP);
    assert_eq!(file["layer_index"], 2);
    assert!(file["layer"].as_str().unwrap().starts_with("sha256:"));
    let copy = file["created_by"].as_str().unwrap();
    assert!(
        copy.contains("COPY") && copy.contains("/app/.env"),
        "{copy}"
    );
    let deleted_in = file["deleted_in_layer"].as_str().expect("deleted_in_layer");
    let remediation = dotenv["remediation"].to_string();
    assert!(
        remediation.contains("only hides /app/.env"),
        "{remediation}"
    );

    // The build arg: in the history of every RUN after the ARG, each tied to its layer.
    let arg = key_of(report, &built.build_arg_key);
    assert!(strings(&arg["violations"]).contains(&"in-image-config"));
    let runs = locations(arg);
    assert!(runs.iter().all(|l| l["kind"] == "image-config"));
    let rm = runs
        .iter()
        .find(|l| l["created_by"].as_str().unwrap().contains("rm /app/.env"))
        .expect("the RUN rm history entry");
    assert!(rm["path"].as_str().unwrap().starts_with("history["));
    assert_eq!(rm["layer_index"], 4);
    assert_eq!(
        rm["layer"], deleted_in,
        "the layer that deleted .env is the RUN rm"
    );
    let mkdir = runs
        .iter()
        .find(|l| l["created_by"].as_str().unwrap().contains("built.txt"))
        .expect("the RUN that used the build arg");
    assert_eq!(mkdir["layer_index"], 3);
    for location in runs {
        let created_by = location["created_by"].as_str().unwrap();
        assert!(
            created_by.contains("GITLAB_TOKEN=") && !created_by.contains(&built.build_arg_key),
            "the instruction is kept, the build arg scrubbed: {created_by}"
        );
    }

    // ENV: in the config, and in the history entry that set it (no layer).
    let env = key_of(report, &built.env_key);
    assert_eq!(env["rule"], "anthropic-api-key");
    assert!(strings(&env["violations"]).contains(&"in-image-config"));
    let config = locations(env)
        .iter()
        .find(|l| l["path"] == "config.Env")
        .expect("a config.Env location");
    assert_eq!(config["kind"], "image-config");
    assert_eq!(config["slot"], "ANTHROPIC_API_KEY");
    assert_eq!(config["image"], APP);
    assert!(locations(env).iter().any(|l| l["created_by"]
        .as_str()
        .is_some_and(|c| c.contains("ENV ANTHROPIC_API_KEY"))
        && l["layer"].is_null()));

    assert_eq!(report["targets"][0]["failed"], false);
    assert_eq!(report["targets"][0]["errors"], json!([]));
}

#[test]
fn docker_save_archive_reports_deleted_files_build_args_and_env() {
    let Some(built) = built() else { return };
    let home = tempfile::tempdir().unwrap();
    let target = format!("docker-archive:{}", built.archive.display());
    let out = detector(&["scan", &target, "--format", "json"], home.path(), None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_app_report(&json(&out), built);
    assert_no_secret(
        &out,
        &[&built.dotenv_key, &built.build_arg_key, &built.env_key],
    );

    // A bare path is recognised as the image it is.
    let out = detector(
        &["scan", built.archive.to_str().unwrap(), "--format", "json"],
        home.path(),
        None,
    );
    let report = json(&out);
    assert_eq!(report["targets"][0]["kind"], "docker-archive");
    assert_app_report(&report, built);

    // The text report names the layer, the instruction and the layer that hid the file.
    let out = detector(&["scan", &target, "--format", "text"], home.path(), None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/app/.env:2:14  image-layer image detector-test-app:prod, layer 2 (sha256:"),
        "{text}"
    );
    assert!(
        text.contains("`RUN rm /app/.env (build args GITLAB_TOKEN=glpa…"),
        "{text}"
    );
    assert!(text.contains("deleted in layer sha256:"), "{text}");
    assert_no_secret(
        &out,
        &[&built.dotenv_key, &built.build_arg_key, &built.env_key],
    );

    let out = detector(
        &["scan", &target, "--show-secrets", "--format", "json"],
        home.path(),
        None,
    );
    assert_eq!(
        key_of(&json(&out), &built.env_key)["secret"],
        built.env_key.as_str()
    );
}

#[test]
fn docker_daemon_image_reports_what_its_save_does() {
    let Some(built) = built() else { return };
    let home = tempfile::tempdir().unwrap();
    let host = Some(built.daemon.host.as_str());
    // The daemon's stream is read as it comes: nothing of it goes to disk, not even to an
    // unlinked temporary file.
    let out = detector_without_disk(
        &["scan", &format!("docker:{APP}"), "--format", "json"],
        home.path(),
        host,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["targets"][0]["kind"], "docker");
    assert_app_report(&report, built);
    assert_no_secret(
        &out,
        &[&built.dotenv_key, &built.build_arg_key, &built.env_key],
    );

    // The same keys at the same places as the archive.
    let archive = json(&detector(
        &[
            "scan",
            &format!("docker-archive:{}", built.archive.display()),
            "--format",
            "json",
        ],
        home.path(),
        None,
    ));
    let places = |report: &Value| -> BTreeSet<String> {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|k| {
                locations(k).iter().map(move |l| {
                    format!(
                        "{} {} {} {} {}",
                        k["fingerprint"],
                        l["path"],
                        l["layer"],
                        l["layer_index"],
                        l["deleted_in_layer"]
                    )
                })
            })
            .collect()
    };
    assert_eq!(places(&report), places(&archive));

    // A `docker save` compressed as a whole is read as a stream too, twice, with nothing on
    // disk: the same keys at the same places.
    let compressed = home.path().join("app.tar.gz");
    fs::write(&compressed, gzip(&fs::read(&built.archive).unwrap())).unwrap();
    let out = detector_without_disk(
        &[
            "scan",
            &format!("docker-archive:{}", compressed.display()),
            "--format",
            "json",
        ],
        home.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(places(&json(&out)), places(&archive));

    // And the check bites: with that TMPDIR, making a temporary file fails.
    let tmp = home.path().join("no-such-tmp");
    let made = Command::new("mktemp").env("TMPDIR", &tmp).output().unwrap();
    assert!(
        !made.status.success(),
        "mktemp made a file in {}",
        tmp.display()
    );

    let out = detector(
        &["scan", "docker:detector-test-missing:1"],
        home.path(),
        host,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("docker:detector-test-missing:1") && err.contains("no such image"),
        "{err}"
    );
}

#[test]
fn a_daemon_that_is_not_running_is_a_one_line_error() {
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("no-daemon.sock");
    let host = format!("unix://{}", socket.display());
    let out = detector(&["scan", "docker:app:prod"], home.path(), Some(&host));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("docker:app:prod") && err.contains("cannot connect to the Docker daemon"),
        "{err}"
    );
    assert!(err.contains("no-daemon.sock"), "{err}");
}

// ---------------------------------------------------------------------------------------
// OCI layouts written blob by blob.

struct OciFixture {
    _tmp: tempfile::TempDir,
    layout: PathBuf,
    archive: PathBuf,
    /// Base layer (gzip, both platforms): a file the amd64 top layer hides with an opaque
    /// directory, and a file nothing hides.
    hidden_key: String,
    kept_key: String,
    /// amd64's zstd top layer.
    zstd_key: String,
    /// arm64's truncated top layer, in the file before the cut.
    truncated_key: String,
    /// amd64's config Env.
    env_key: String,
    /// In `/srv/backup.tgz` of the base layer.
    archived_key: String,
    base_digest: String,
    amd64_top_digest: String,
}

fn oci_fixture() -> OciFixture {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(tmp.path().join("payments-api"));
    let hidden_key = key("ghp_", ALNUM, 36, 201);
    let kept_key = key("glpat-", ALNUM, 20, 202);
    let zstd_key = key("hf_", ALNUM, 34, 203);
    let truncated_key = key("ghp_", ALNUM, 36, 204);
    let env_key = [&key("sk-ant-api03-", ALNUM, 93, 205), "AA"].concat();
    let archived_key = key("ghp_", ALNUM, 36, 207);
    // A backup archive in a layer: opened like one on disk.
    let backup = gzip(&layer_tar(&[(
        "config/.env",
        format!("GITHUB_TOKEN={archived_key}\n").as_bytes(),
    )]));

    let base = layer_tar(&[
        ("etc/", b""),
        ("etc/app/", b""),
        (
            "etc/app/secrets.env",
            format!("GITHUB_TOKEN={hidden_key}\n").as_bytes(),
        ),
        ("srv/", b""),
        (
            "srv/notes.txt",
            format!("deploy\ngitlab token: {kept_key}\n").as_bytes(),
        ),
        ("srv/backup.tgz", &backup),
    ]);
    let amd64_top = layer_tar(&[
        ("etc/app/", b""),
        ("etc/app/.wh..wh..opq", b""),
        ("etc/app/app.conf", b"log=info\n"),
        ("srv/hub.yml", format!("hf_token: {zstd_key}\n").as_bytes()),
    ]);
    let noise = random(ALNUM, 200_000, 206);
    let arm64_top = layer_tar(&[
        ("opt/", b""),
        (
            "opt/first.env",
            format!("GH_TOKEN={truncated_key}\n").as_bytes(),
        ),
        ("opt/second.txt", noise.as_bytes()),
        ("opt/third.txt", b"never reached\n"),
    ]);
    let base_gz = gzip(&base);
    let amd64_zst = zstd::encode_all(amd64_top.as_slice(), 3).unwrap();
    let arm64_gz = gzip(&arm64_top);

    let gz = "application/vnd.oci.image.layer.v1.tar+gzip";
    let zst = "application/vnd.oci.image.layer.v1.tar+zstd";
    let amd64 = layout.image(
        &[
            (&base, &base_gz, gz, "ADD rootfs.tar /"),
            (&amd64_top, &amd64_zst, zst, "COPY conf/ /etc/app/"),
        ],
        &[
            "PATH=/bin".to_string(),
            format!("ANTHROPIC_API_KEY={env_key}"),
        ],
        "linux/amd64",
    );
    let arm64 = layout.image(
        &[
            (&base, &base_gz, gz, "ADD rootfs.tar /"),
            (&arm64_top, &arm64_gz, gz, "COPY opt/ /opt/"),
        ],
        &["PATH=/bin".to_string()],
        "linux/arm64",
    );
    layout.index(vec![amd64, arm64], "staging");
    // The manifest promised the whole blob; the stored one is cut short.
    let truncated = layout.blob_path(&sha256(&arm64_gz));
    let file = fs::OpenOptions::new().write(true).open(&truncated).unwrap();
    file.set_len(arm64_gz.len() as u64 * 2 / 3).unwrap();
    let archive = tmp.path().join("payments-api.tar");
    layout.archive(&archive);
    OciFixture {
        layout: layout.dir,
        archive,
        hidden_key,
        kept_key,
        zstd_key,
        truncated_key,
        env_key,
        archived_key,
        base_digest: sha256(&base),
        amd64_top_digest: sha256(&amd64_top),
        _tmp: tmp,
    }
}

impl OciFixture {
    fn secrets(&self) -> Vec<&String> {
        vec![
            &self.hidden_key,
            &self.kept_key,
            &self.zstd_key,
            &self.truncated_key,
            &self.env_key,
            &self.archived_key,
        ]
    }
}

fn assert_oci_report(out: &Output, fixture: &OciFixture, target: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let report = json(out);
    let image = "payments-api:staging";

    let hidden = key_of(&report, &fixture.hidden_key);
    let hidden_locations = locations(hidden);
    assert_eq!(
        hidden_locations.len(),
        1,
        // One location (audit would merge a second read's anyway: the read-once count is
        // docker_save_with_two_images_finds_both_and_reads_their_shared_layer_once's).
        "one location for the shared base layer: {hidden:#}"
    );
    let at = &hidden_locations[0];
    assert_eq!(at["path"], "/etc/app/secrets.env");
    assert_eq!(at["image"], image);
    assert_eq!(at["layer"], fixture.base_digest.as_str());
    assert_eq!(at["layer_index"], 1);
    assert_eq!(at["created_by"], "ADD rootfs.tar /");
    assert_eq!(
        at["deleted_in_layer"],
        fixture.amd64_top_digest.as_str(),
        "the opaque directory of the zstd layer hides it"
    );
    assert_eq!(hidden["status"], "live");
    assert!(strings(&hidden["scope"]["environments"]).contains(&"staging"));

    let kept = &locations(key_of(&report, &fixture.kept_key))[0];
    assert_eq!(kept["path"], "/srv/notes.txt");
    assert_eq!(kept["line"], 2);
    assert!(kept.get("deleted_in_layer").is_none());

    let zstd = &locations(key_of(&report, &fixture.zstd_key))[0];
    assert_eq!(zstd["path"], "/srv/hub.yml");
    assert_eq!(zstd["layer_index"], 2);
    assert_eq!(zstd["created_by"], "COPY conf/ /etc/app/");

    let truncated = &locations(key_of(&report, &fixture.truncated_key))[0];
    assert_eq!(truncated["path"], "/opt/first.env");

    let archived = key_of(&report, &fixture.archived_key);
    assert!(strings(&archived["violations"]).contains(&"in-image-layer"));
    let member = &locations(archived)[0];
    assert_eq!(member["kind"], "archive-member");
    assert_eq!(member["archive"], "/srv/backup.tgz");
    assert!(
        member["member"].as_str().unwrap().contains("config/.env"),
        "{member}"
    );
    assert_eq!(member["image"], image);
    assert_eq!(member["layer_index"], 1);

    let env = key_of(&report, &fixture.env_key);
    assert_eq!(locations(env)[0]["path"], "config.Env");
    assert_eq!(locations(env)[0]["kind"], "image-config");

    let targets = &report["targets"][0];
    assert_eq!(targets["failed"], false);
    let errors = targets["errors"].to_string();
    assert!(
        errors.contains("payments-api:staging layer 2 ("),
        "{errors}"
    );
    assert!(errors.contains("corrupt or truncated"), "{errors}");
    assert!(errors.contains("the manifest says"), "{errors}");
    let err = stderr(out);
    assert!(
        err.lines().any(|l| l.starts_with(&format!(
            "detector: {target}: payments-api:staging layer 2 ("
        )) && l.contains("truncated")),
        "{err}"
    );
    assert_no_secret(out, &fixture.secrets());
}

#[test]
fn oci_layouts_with_zstd_opaque_whiteout_platforms_and_a_truncated_layer() {
    let fixture = oci_fixture();
    let home = tempfile::tempdir().unwrap();
    for target in [
        format!("oci-dir:{}", fixture.layout.display()),
        format!("oci-archive:{}", fixture.archive.display()),
    ] {
        let out = detector(&["scan", &target, "--format", "json"], home.path(), None);
        assert_oci_report(&out, &fixture, &target);
    }

    // Bare paths: the directory and the tar are recognised as OCI layouts.
    for (path, kind) in [
        (&fixture.layout, "oci-dir"),
        (&fixture.archive, "oci-archive"),
    ] {
        let out = detector(
            &["scan", path.to_str().unwrap(), "--format", "json"],
            home.path(),
            None,
        );
        assert_eq!(json(&out)["targets"][0]["kind"], kind);
    }

    // One platform: the arm64 image alone, where nothing hides the base layer's file.
    let target = format!("oci-dir:{}", fixture.layout.display());
    let out = detector(
        &[
            "scan",
            &target,
            "--platform",
            "linux/arm64",
            "--format",
            "json",
        ],
        home.path(),
        None,
    );
    let report = json(&out);
    let found: BTreeSet<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = [
        &fixture.hidden_key,
        &fixture.kept_key,
        &fixture.truncated_key,
        &fixture.archived_key,
    ]
    .iter()
    .map(|s| fp(s))
    .collect();
    assert_eq!(found, expected.iter().map(String::as_str).collect());
    assert!(locations(key_of(&report, &fixture.hidden_key))[0]
        .get("deleted_in_layer")
        .is_none());

    let out = detector(
        &["scan", &target, "--platform", "linux/s390x"],
        home.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("no image for platform linux/s390x (found: linux/amd64, linux/arm64)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_image_with_nothing_readable_exits_2_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::new(tmp.path().join("broken"));
    let descriptor = layout.image(
        &[(
            b"x",
            b"x",
            "application/vnd.oci.image.layer.v1.tar",
            "ADD x /",
        )],
        &[],
        "linux/amd64",
    );
    // The manifest names a config and a layer that are not there.
    let manifest = layout.read_json(descriptor["digest"].as_str().unwrap());
    layout.index(vec![descriptor], "v1");
    for blob in [&manifest["config"], &manifest["layers"][0]] {
        fs::remove_file(layout.blob_path(blob["digest"].as_str().unwrap())).unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let target = format!("oci-dir:{}", layout.dir.display());
    let out = detector(&["scan", &target], home.path(), None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken:v1") && err.contains("missing blob sha256:"),
        "{err}"
    );

    let missing = tmp.path().join("nope.tar");
    let out = detector(
        &["scan", &format!("docker-archive:{}", missing.display())],
        home.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("nope.tar") && err.contains("no such file"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// `docker save` archives written member by member: the legacy layout, and the OCI layout
// newer Docker writes (`index.json`, `oci-layout`, `blobs/sha256/…` and a `manifest.json`).

/// A `docker save` archive at `path` of one legacy-layout image: its layers (tar, and the
/// history line that made each) and its run config.
fn one_image_archive(path: &Path, tag: &str, layers: &[(&[u8], &str)], run: Value) -> PathBuf {
    let mut archive = ImageArchive::default();
    let entry = legacy_image(&mut archive, tag, layers, run);
    archive.json("manifest.json", &json!([entry]));
    archive.write(path).unwrap();
    path.to_path_buf()
}

fn fingerprints_of(secrets: &[&String]) -> BTreeSet<String> {
    secrets.iter().map(|s| fp(s)).collect()
}

/// `detector scan TARGET --format json` of hostile input, its peak memory held to the kit's
/// bound; the report.
fn scan_json_bounded(target: &str, home: &Path) -> (Output, Value) {
    let args = ["scan", target, "--format", "json"];
    let out = kit::rss::bounded(Path::new(DETECTOR), &args, home, Some(ORG_KEY));
    let report = json(&out);
    (out, report)
}

fn scan_json(target: &str, extra: &[&str], home: &Path) -> (Output, Value) {
    let mut args = vec!["scan", target, "--format", "json"];
    args.extend_from_slice(extra);
    let out = detector(&args, home, None);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{target}: {}",
        stderr(&out)
    );
    let report = json(&out);
    (out, report)
}

fn scanned(report: &Value) -> (u64, u64) {
    let target = &report["targets"][0];
    (
        target["objects_scanned"].as_u64().unwrap(),
        target["bytes_scanned"].as_u64().unwrap(),
    )
}

#[test]
fn docker_save_with_two_images_finds_both_and_reads_their_shared_layer_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let base_key = key("ghp_", ALNUM, 36, 301);
    let a_key = key("glpat-", ALNUM, 20, 302);
    let b_key = key("hf_", ALNUM, 34, 303);
    let base_files: [(&str, String); 2] = [
        ("etc/base.env", format!("GITHUB_TOKEN={base_key}\n")),
        ("srv/readme.txt", random(ALNUM, 5_000, 304)),
    ];
    let mut entries: Vec<(&str, &[u8])> = vec![("etc/", b""), ("srv/", b"")];
    entries.extend(base_files.iter().map(|(p, d)| (*p, d.as_bytes())));
    let base = layer_tar(&entries);
    let top_a = layer_tar(&[
        ("app/", b""),
        ("app/a.yml", format!("gitlab: {a_key}\n").as_bytes()),
    ]);
    let top_b = layer_tar(&[
        ("app/", b""),
        ("app/b.yml", format!("hf_token: {b_key}\n").as_bytes()),
    ]);
    let run = json!({"Env": ["PATH=/bin"], "Cmd": ["/app/run"]});

    let write = |name: &str, images: &[(&str, &[u8])]| -> PathBuf {
        let mut archive = ImageArchive::default();
        let entries: Vec<Value> = images
            .iter()
            .map(|(tag, top)| {
                legacy_image(
                    &mut archive,
                    tag,
                    &[(&base, "ADD rootfs.tar /"), (top, "COPY app/ /app/")],
                    run.clone(),
                )
            })
            .collect();
        archive.json("manifest.json", &Value::Array(entries));
        let path = tmp.path().join(name);
        archive.write(&path).unwrap();
        path
    };
    let both = write("both.tar", &[("app-a:1", &top_a), ("app-b:1", &top_b)]);
    let only_a = write("a.tar", &[("app-a:1", &top_a)]);
    let only_b = write("b.tar", &[("app-b:1", &top_b)]);

    let target = format!("docker-archive:{}", both.display());
    let (out, report) = scan_json(&target, &[], home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        report_fingerprints(&report),
        fingerprints_of(&[&base_key, &a_key, &b_key])
    );
    for (secret, image, path) in [
        (&a_key, "app-a:1", "/app/a.yml"),
        (&b_key, "app-b:1", "/app/b.yml"),
    ] {
        let at = &locations(key_of(&report, secret))[0];
        assert_eq!(at["image"], image);
        assert_eq!(at["path"], path);
        assert_eq!(at["layer_index"], 2);
        assert_eq!(
            at["layer"],
            sha256(if image == "app-a:1" { &top_a } else { &top_b })
        );
    }
    let shared = locations(key_of(&report, &base_key));
    assert_eq!(shared.len(), 1, "{shared:#?}");
    assert_eq!(shared[0]["layer"], sha256(&base));
    assert_eq!(
        shared[0]["image"], "app-a:1",
        "named after the first image read"
    );
    assert_eq!(report["targets"][0]["errors"], json!([]));
    assert_no_secret(&out, &[&base_key, &a_key, &b_key]);

    // What was read: each image alone reads the base layer; together, it is read once.
    let (objects, bytes) = scanned(&report);
    let (a_objects, a_bytes) = scanned(
        &scan_json(
            &format!("docker-archive:{}", only_a.display()),
            &[],
            home.path(),
        )
        .1,
    );
    let (b_objects, b_bytes) = scanned(
        &scan_json(
            &format!("docker-archive:{}", only_b.display()),
            &[],
            home.path(),
        )
        .1,
    );
    let base_bytes: u64 = base_files.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(
        (objects, bytes),
        (
            a_objects + b_objects - base_files.len() as u64,
            a_bytes + b_bytes - base_bytes
        ),
        "the shared layer's {} files ({base_bytes} bytes) read once: A alone {a_objects}/{a_bytes}, B alone {b_objects}/{b_bytes}",
        base_files.len()
    );
}

#[test]
fn newer_docker_save_oci_layout_is_read_as_a_docker_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let dotenv_key = key("ghp_", ALNUM, 36, 311);
    let kept_key = key("glpat-", ALNUM, 20, 312);
    let env_key = [&key("sk-ant-api03-", ALNUM, 93, 313), "AA"].concat();
    let base = layer_tar(&[
        ("app/", b""),
        (
            "app/.env",
            format!("GITHUB_TOKEN={dotenv_key}\n").as_bytes(),
        ),
        (
            "app/notes.txt",
            format!("first\ngitlab: {kept_key}\n").as_bytes(),
        ),
    ]);
    let removal = layer_tar(&[("app/", b""), ("app/.wh..env", b"")]);
    let mut archive = ImageArchive::default();
    let (descriptor, entry) = oci_save_image(
        &mut archive,
        "shop:2",
        &[(&base, "COPY app/ /app/"), (&removal, "RUN rm /app/.env")],
        json!({"Env": ["PATH=/bin", format!("ANTHROPIC_API_KEY={env_key}")]}),
        "linux/amd64",
    );
    oci_save_metadata(&mut archive, "shop:2", vec![descriptor], vec![entry]);
    let path = tmp.path().join("shop.tar");
    archive.write(&path).unwrap();

    let target = format!("docker-archive:{}", path.display());
    let (out, report) = scan_json(&target, &[], home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(report["targets"][0]["kind"], "docker-archive");
    assert_eq!(report["targets"][0]["failed"], false);
    assert_eq!(report["targets"][0]["errors"], json!([]));
    assert_eq!(
        report_fingerprints(&report),
        fingerprints_of(&[&dotenv_key, &kept_key, &env_key])
    );

    let dotenv = key_of(&report, &dotenv_key);
    assert!(strings(&dotenv["violations"]).contains(&"in-image-layer"));
    let at = &locations(dotenv)[0];
    assert_eq!(at["kind"], "image-layer");
    assert_eq!(at["path"], "/app/.env");
    assert_eq!(at["image"], "shop:2", "named by manifest.json's RepoTags");
    assert_eq!(at["layer"], sha256(&base));
    assert_eq!(at["layer_index"], 1);
    assert_eq!(at["created_by"], "COPY app/ /app/");
    assert_eq!(at["deleted_in_layer"], sha256(&removal));

    let kept = &locations(key_of(&report, &kept_key))[0];
    assert_eq!(kept["path"], "/app/notes.txt");
    assert_eq!(kept["line"], 2);
    assert!(kept.get("deleted_in_layer").is_none());

    let env = key_of(&report, &env_key);
    assert!(strings(&env["violations"]).contains(&"in-image-config"));
    let config = &locations(env)[0];
    assert_eq!(config["path"], "config.Env");
    assert_eq!(config["kind"], "image-config");
    assert_eq!(config["image"], "shop:2");
    assert_no_secret(&out, &[&dotenv_key, &kept_key, &env_key]);

    // The bare path is the docker archive it is.
    let (_, bare) = scan_json(path.to_str().unwrap(), &[], home.path());
    assert_eq!(bare["targets"][0]["kind"], "docker-archive");
    assert_eq!(report_fingerprints(&bare), report_fingerprints(&report));
}

#[test]
fn platform_selects_one_image_of_a_two_platform_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let shared_key = key("ghp_", ALNUM, 36, 321);
    let amd64_key = key("glpat-", ALNUM, 20, 322);
    let arm64_key = key("hf_", ALNUM, 34, 323);
    let base = layer_tar(&[
        ("etc/", b""),
        (
            "etc/shared.env",
            format!("GITHUB_TOKEN={shared_key}\n").as_bytes(),
        ),
    ]);
    let amd64_top = layer_tar(&[
        ("opt/", b""),
        ("opt/amd64.yml", format!("gitlab: {amd64_key}\n").as_bytes()),
    ]);
    let arm64_top = layer_tar(&[
        ("opt/", b""),
        (
            "opt/arm64.yml",
            format!("hf_token: {arm64_key}\n").as_bytes(),
        ),
    ]);
    let mut archive = ImageArchive::default();
    let mut descriptors = Vec::new();
    let mut entries = Vec::new();
    for (top, platform) in [(&amd64_top, "linux/amd64"), (&arm64_top, "linux/arm64")] {
        let (descriptor, entry) = oci_save_image(
            &mut archive,
            "multi:1",
            &[(&base, "ADD rootfs.tar /"), (top, "COPY opt/ /opt/")],
            json!({"Cmd": ["/opt/run"]}),
            platform,
        );
        descriptors.push(descriptor);
        entries.push(entry);
    }
    oci_save_metadata(&mut archive, "multi:1", descriptors, entries);
    let path = tmp.path().join("multi.tar");
    archive.write(&path).unwrap();

    for scheme in ["docker-archive", "oci-archive"] {
        let target = format!("{scheme}:{}", path.display());
        let (out, all) = scan_json(&target, &[], home.path());
        assert_eq!(
            report_fingerprints(&all),
            fingerprints_of(&[&shared_key, &amd64_key, &arm64_key]),
            "{target}: every platform without --platform: {}",
            stderr(&out)
        );
        for (platform, only) in [("linux/arm64", &arm64_key), ("linux/amd64", &amd64_key)] {
            let (out, report) = scan_json(&target, &["--platform", platform], home.path());
            assert_eq!(
                report_fingerprints(&report),
                fingerprints_of(&[&shared_key, only]),
                "{target} --platform {platform}: {}",
                stderr(&out)
            );
            let at = &locations(key_of(&report, only))[0];
            assert_eq!(at["layer_index"], 2);
            assert_eq!(report["targets"][0]["errors"], json!([]));
        }
        let out = detector(
            &["scan", &target, "--platform", "linux/riscv64"],
            home.path(),
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out)
                .contains("no image for platform linux/riscv64 (found: linux/amd64, linux/arm64)"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn keys_in_labels_cmd_and_entrypoint_are_image_config_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let label_key = key("ghp_", ALNUM, 36, 331);
    let cmd_key = key("glpat-", ALNUM, 20, 332);
    let entrypoint_key = key("hf_", ALNUM, 34, 333);
    let layer = layer_tar(&[("app/", b""), ("app/run", b"#!/bin/sh\nexec true\n")]);
    let path = one_image_archive(
        &tmp.path().join("labelled.tar"),
        "labelled:1",
        &[(&layer, "COPY run /app/run")],
        json!({
            "Labels": {"team": "payments", "ci.token": label_key},
            "Cmd": ["--gitlab-token", cmd_key],
            "Entrypoint": ["/bin/sh", "-c", format!("HF_TOKEN={entrypoint_key} exec /app/run \"$@\""), "--"],
        }),
    );

    let (out, report) = scan_json(
        &format!("docker-archive:{}", path.display()),
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        report_fingerprints(&report),
        fingerprints_of(&[&label_key, &cmd_key, &entrypoint_key])
    );
    for (secret, place) in [
        (&label_key, "config.Labels"),
        (&cmd_key, "config.Cmd"),
        (&entrypoint_key, "config.Entrypoint"),
    ] {
        let found = key_of(&report, secret);
        assert!(
            strings(&found["violations"]).contains(&"in-image-config"),
            "{place}: {found:#}"
        );
        let at = locations(found);
        assert_eq!(at.len(), 1, "{place}: {found:#}");
        assert_eq!(at[0]["kind"], "image-config");
        assert_eq!(at[0]["path"], place);
        assert_eq!(at[0]["image"], "labelled:1");
        assert!(at[0]["layer"].is_null(), "{place}: {found:#}");
    }
    assert_no_secret(&out, &[&label_key, &cmd_key, &entrypoint_key]);
}

#[test]
fn a_corrupt_layer_is_named_and_the_other_layers_still_read() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let below_key = key("ghp_", ALNUM, 36, 341);
    let above_key = key("glpat-", ALNUM, 20, 342);
    let below = layer_tar(&[
        ("etc/", b""),
        (
            "etc/below.env",
            format!("GITHUB_TOKEN={below_key}\n").as_bytes(),
        ),
    ]);
    let above = layer_tar(&[
        ("srv/", b""),
        ("srv/above.yml", format!("gitlab: {above_key}\n").as_bytes()),
    ]);
    // Not truncated: bytes that are no tar at all, and a gzip stream that is garbage after
    // its header; the manifest's digests are theirs, so only their contents are wrong.
    let garbage = random(ALNUM, 4_096, 343).into_bytes();
    let bad_gzip = [&[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff][..], &garbage].concat();
    let path = one_image_archive(
        &tmp.path().join("corrupt.tar"),
        "corrupt:1",
        &[
            (&below, "ADD rootfs.tar /"),
            (&garbage, "COPY a /a"),
            (&bad_gzip, "COPY b /b"),
            (&above, "COPY srv/ /srv/"),
        ],
        json!({"Cmd": ["/srv/run"]}),
    );

    let target = format!("docker-archive:{}", path.display());
    let (out, report) = scan_json(&target, &[], home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        report_fingerprints(&report),
        fingerprints_of(&[&below_key, &above_key])
    );
    assert_eq!(locations(key_of(&report, &below_key))[0]["layer_index"], 1);
    assert_eq!(locations(key_of(&report, &above_key))[0]["layer_index"], 4);
    let targets = &report["targets"][0];
    assert_eq!(targets["failed"], false);
    let errors = targets["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let err = stderr(&out);
    for (index, layer) in [(2, &garbage), (3, &bad_gzip)] {
        let name = format!("corrupt:1 layer {index} ({})", &sha256(layer)[..19]);
        let error = errors
            .iter()
            .find(|e| e["path"] == name.as_str())
            .unwrap_or_else(|| panic!("no error for {name}: {errors:#?}"));
        assert!(
            error["reason"]
                .as_str()
                .unwrap()
                .contains("not a readable layer"),
            "{error}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("detector: {target}: {name}"))),
            "{err}"
        );
    }
}

/// An OCI archive cut short: `cut(tar, offsets)` says where, from the tar's bytes and where
/// each member's data starts.
fn truncated_oci_archive(
    dir: &Path,
    name: &str,
    cut: impl Fn(&[u8], &[(String, u64)]) -> usize,
) -> (PathBuf, [String; 3]) {
    let keys = [
        key("ghp_", ALNUM, 36, 351),
        key("glpat-", ALNUM, 20, 352),
        key("hf_", ALNUM, 34, 353),
    ];
    let first = layer_tar(&[
        ("etc/", b""),
        (
            "etc/first.env",
            format!("GITHUB_TOKEN={}\n", keys[0]).as_bytes(),
        ),
    ]);
    let noise = random(ALNUM, 200_000, 354);
    let last = layer_tar(&[
        ("opt/", b""),
        ("opt/early.yml", format!("gitlab: {}\n", keys[1]).as_bytes()),
        ("opt/noise.txt", noise.as_bytes()),
        (
            "opt/late.yml",
            format!("hf_token: {}\n", keys[2]).as_bytes(),
        ),
    ]);
    let mut blobs = ImageArchive::default();
    let (descriptor, entry) = oci_save_image(
        &mut blobs,
        "cut:1",
        &[(&first, "ADD rootfs.tar /"), (&last, "COPY opt/ /opt/")],
        json!({"Cmd": ["/opt/run"]}),
        "linux/amd64",
    );
    // Metadata first, then the blobs in the order written, the last layer last.
    let mut archive = ImageArchive::default();
    oci_save_metadata(&mut archive, "cut:1", vec![descriptor], vec![entry]);
    let mut layers_last = blobs.members;
    layers_last.sort_by_key(|(n, _)| n == &oci_blob_name(&sha256(&last)));
    archive.members.extend(layers_last);
    let (bytes, offsets) = archive.tar();
    let path = dir.join(name);
    fs::write(&path, &bytes[..cut(&bytes, &offsets)]).unwrap();
    (path, keys)
}

#[test]
fn a_truncated_oci_archive_still_reads_what_is_there() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let data_of = |offsets: &[(String, u64)], name: &str| {
        offsets
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .unwrap_or_else(|| panic!("no member {name}"))
            .1 as usize
    };
    // Cut in the middle of the last blob (inside the noise file of the last layer): the files
    // of that layer before the cut are read.
    let (mid_blob, keys) = truncated_oci_archive(tmp.path(), "mid-blob.tar", |_, offsets| {
        let (last, start) = offsets.last().unwrap();
        assert!(last.starts_with("blobs/sha256/"));
        *start as usize + 100_000
    });
    // Cut inside the last blob's header, a member after it: the first layer is read, the
    // last is missing.
    let last_layer = |offsets: &[(String, u64)]| offsets.last().unwrap().0.clone();
    let (mid_header, _) = truncated_oci_archive(tmp.path(), "mid-header.tar", |_, offsets| {
        data_of(offsets, &last_layer(offsets)) - 512 + 200
    });
    for (path, found, layer_error, archive_error) in [
        (
            &mid_blob,
            vec![&keys[0], &keys[1]],
            "layer is corrupt or truncated after",
            "the archive is truncated: it ends inside blobs/sha256/",
        ),
        (
            &mid_header,
            vec![&keys[0]],
            "missing blob sha256:",
            "the archive is corrupt or truncated after 6 members",
        ),
    ] {
        for scheme in ["oci-archive", "docker-archive"] {
            let target = format!("{scheme}:{}", path.display());
            let out = detector(&["scan", &target, "--format", "json"], home.path(), None);
            assert_eq!(out.status.code(), Some(1), "{target}: {}", stderr(&out));
            let report = json(&out);
            assert_eq!(
                report_fingerprints(&report),
                fingerprints_of(&found),
                "{target}: what comes before the cut is read"
            );
            assert_eq!(locations(key_of(&report, &keys[0]))[0]["layer_index"], 1);
            let targets = &report["targets"][0];
            assert_eq!(targets["failed"], false);
            let errors = targets["errors"].as_array().unwrap();
            let named = |what: &str, reason: &str| {
                errors.iter().any(|e| {
                    e["path"].as_str().unwrap().contains(what)
                        && e["reason"].as_str().unwrap().contains(reason)
                })
            };
            assert!(
                named("cut:1 layer 2 (", layer_error),
                "{target}: {errors:#?}"
            );
            assert!(
                named(path.to_str().unwrap(), archive_error),
                "{target}: {errors:#?}"
            );
            let err = stderr(&out);
            for reason in [layer_error, archive_error] {
                assert!(
                    err.lines()
                        .any(|l| l.starts_with(&format!("detector: {target}: "))
                            && l.contains(reason)),
                    "{target}: {err}"
                );
            }
            assert_no_secret(&out, &[&keys[0], &keys[1], &keys[2]]);
        }
    }
}

#[test]
fn oci_indexes_that_fan_out_or_list_themselves_are_each_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layer_key = key("ghp_", ALNUM, 36, 1401);
    let env_key = key("ghp_", ALNUM, 36, 1402);
    let layout = OciLayout::new(tmp.path().join("fanout"));
    let layer = layer_tar(&[
        ("app/", b""),
        ("app/.env", format!("GITHUB_TOKEN={layer_key}\n").as_bytes()),
    ]);
    let manifest = layout.image(
        &[(
            &layer,
            &layer,
            "application/vnd.oci.image.layer.v1.tar",
            "COPY .env /app/",
        )],
        &[format!("GITHUB_TOKEN={env_key}")],
        "linux/amd64",
    );
    const FAN: usize = 200;
    // Four levels of indexes, each listing the next FAN times: FAN⁴ paths to one image, all
    // within the depth bound.
    let mut level = layout.index_blob(&vec![manifest.clone(); FAN]);
    for _ in 0..3 {
        level = layout.index_blob(&vec![level; FAN]);
    }
    level["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    // An index that lists itself FAN times (a store finds blobs by name, and this one is not
    // named by its digest), and the image once.
    let looped = format!("sha256:{}", "c".repeat(64));
    let itself = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": looped});
    let mut listed = vec![itself.clone(); FAN];
    listed.push(manifest);
    fs::write(
        layout.blob_path(&looped),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": listed})).unwrap(),
    )
    .unwrap();
    let mut looped_top = itself;
    looped_top["annotations"] = json!({"org.opencontainers.image.ref.name": "loop"});
    layout.top_index(&[level, looped_top]);

    let target = format!("oci-dir:{}", layout.dir.display());
    let out = kit::rss::bounded(
        Path::new(DETECTOR),
        &["scan", &target, "--format", "json"],
        home.path(),
        Some(ORG_KEY),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    for secret in [&layer_key, &env_key] {
        key_of(&report, secret);
    }
    // A repeat is not an error: nothing was cut short.
    let errors = kit::report::target_errors(&report);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_no_secret(&out, &[&layer_key, &env_key]);
}

#[test]
fn sparse_files_in_a_layer_are_read_and_their_holes_count_toward_the_archive_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let secret = key("ghp_", ALNUM, 36, 1411);
    // A text file stored sparse: 9 KiB of text, then a hole (zeros past the binary probe).
    let mut text = format!("GITHUB_TOKEN={secret}\n").into_bytes();
    text.resize(9 * 1024, b'\n');
    let sparse_env = kit::image::sparse_member("app/.env", &text, 16 * 1024);
    // A PiB disk image whose stored block is the header of a tar of its hole.
    let (bomb, bomb_data) = kit::image::sparse_tar_bomb(1 << 50);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&sparse_env, text.as_slice()).unwrap();
    let mut bomb = bomb;
    bomb.set_path("var/disk.img").unwrap();
    bomb.set_cksum();
    builder.append(&bomb, bomb_data.as_slice()).unwrap();
    let layer = builder.into_inner().unwrap();
    assert!(layer.len() < 16 * 1024);

    let layout = OciLayout::new(tmp.path().join("sparse"));
    let manifest = layout.image(
        &[(
            &layer,
            &layer,
            "application/vnd.oci.image.layer.v1.tar",
            "COPY . /",
        )],
        &[],
        "linux/amd64",
    );
    layout.index(vec![manifest], "v1");
    let target = format!("oci-dir:{}", layout.dir.display());
    let (out, report) = scan_json_bounded(&target, home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = key_of(&report, &secret);
    assert!(
        locations(found).iter().any(|l| l["path"] == "/app/.env"),
        "{found:#}"
    );
    let cut: Vec<&Value> = report["targets"][0]["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["path"] == "/var/disk.img" && n["reason"] == "over-limit")
        .collect();
    assert_eq!(cut.len(), 1, "{:#}", report["targets"][0]);
    let detail = cut[0]["detail"].as_str().unwrap();
    assert!(detail.contains("--max-archive-ratio"), "{detail}");
    let errors = kit::report::target_errors(&report);
    assert!(
        errors.iter().any(|(path, _)| path == "/var/disk.img"),
        "{errors:#?}"
    );
    assert_no_secret(&out, &[&secret]);
}

/// Zeros the bombs below decompress to: far past the ratio limit of what they store.
const BOMB_ZEROS: u64 = 4 << 30;

/// A layer of a few MB that decompresses to gigabytes (a gzip of a tar of zeros) is read only
/// to the ratio limit: the cut is listed with the layer and its digest, and the keys in the
/// image's other layer and config are found, in bounded memory.
#[test]
fn a_layer_that_decompresses_to_gigabytes_stops_at_the_ratio_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let layer_key = key("ghp_", ALNUM, 36, 1421);
    let env_key = key("ghp_", ALNUM, 36, 1422);
    let base = layer_tar(&[
        ("app/", b""),
        ("app/.env", format!("GITHUB_TOKEN={layer_key}\n").as_bytes()),
    ]);
    // A tar of one file of zeros: all of it after the file's header is zeros.
    let file = kit::image::tar_header("var/lib/zeros.img", BOMB_ZEROS);
    let bomb = kit::image::gzip_bomb(file.as_bytes(), BOMB_ZEROS + 1024);
    assert!(bomb.len() < 10 << 20, "{} bytes", bomb.len());
    let path = one_image_archive(
        &tmp.path().join("bomb.tar"),
        "bomb:1",
        &[(&base, "COPY .env /app/"), (&bomb, "RUN make-zeros")],
        json!({"Env": [format!("GITHUB_TOKEN={env_key}")]}),
    );

    let target = format!("docker-archive:{}", path.display());
    let (out, report) = scan_json_bounded(&target, home.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    key_of(&report, &layer_key);
    key_of(&report, &env_key);
    let digest = sha256(&bomb);
    let cut: Vec<&Value> = report["targets"][0]["not_scanned"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["reason"] == "over-limit")
        .collect();
    assert_eq!(cut.len(), 1, "{:#}", report["targets"][0]);
    let layer = cut[0]["path"].as_str().unwrap();
    assert!(layer.starts_with("bomb:1 layer 2 ("), "{layer}");
    let detail = cut[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&digest), "{detail}");
    assert!(detail.contains("--max-archive-ratio"), "{detail}");
    // Coverage was lost, so it is an error too.
    let errors = kit::report::target_errors(&report);
    assert!(errors.iter().any(|(path, _)| path == layer), "{errors:#?}");
    assert_no_secret(&out, &[&layer_key, &env_key]);
}

/// `docker save | gzip` of an image whose layer is gigabytes of zeros, a few MB as stored:
/// the image cannot be indexed past the bomb, so the target fails, saying which limit, in
/// bounded memory.
#[test]
fn an_image_archive_that_decompresses_to_gigabytes_fails_at_the_ratio_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let digest = format!("sha256:{}", "b".repeat(64));
    let layer_name = oci_blob_name(&digest);
    let config = kit::image::image_config(
        &[(digest.clone(), "RUN make-zeros")],
        json!({}),
        "linux/amd64",
        "2024-01-01T00:00:00Z",
    );
    let config_digest = sha256(&config);
    let manifest = json!([{
        "Config": oci_blob_name(&config_digest),
        "RepoTags": ["bomb:2"],
        "Layers": [layer_name],
    }]);
    // The archive's tar: its manifest and config, then the layer's header and its own tar's
    // header; everything after that is zeros (the file's, the layer tar's end, the archive's).
    let mut head = tar::Builder::new(Vec::new());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    for (name, bytes) in [
        ("manifest.json", &manifest),
        (&oci_blob_name(&config_digest), &config),
    ] {
        let mut header = kit::image::tar_header(name, bytes.len() as u64);
        head.append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    let mut head = head.into_inner().unwrap();
    // Not the end of the archive, which the builder wrote.
    head.truncate(head.len() - 1024);
    let layer_size = 512 + BOMB_ZEROS + 1024;
    head.extend_from_slice(kit::image::tar_header(&layer_name, layer_size).as_bytes());
    head.extend_from_slice(kit::image::tar_header("var/lib/zeros.img", BOMB_ZEROS).as_bytes());
    let bomb = kit::image::gzip_bomb(&head, BOMB_ZEROS + 1024 + 1024);
    assert!(bomb.len() < 10 << 20, "{} bytes", bomb.len());
    let path = tmp.path().join("bomb.tar.gz");
    fs::write(&path, &bomb).unwrap();

    let target = format!("docker-archive:{}", path.display());
    let args = ["scan", target.as_str(), "--format", "json"];
    let out = kit::rss::bounded(Path::new(DETECTOR), &args, home.path(), Some(ORG_KEY));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = [stdout(&out), stderr(&out)].concat();
    assert!(text.contains("--max-archive-ratio"), "{text}");
}

#[test]
fn mcp_configs_in_a_layer_are_read_as_configs_in_the_image_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let project_key = key("ghp_", ALNUM, 36, 341);
    let user_key = key("", ALNUM, 40, 342);
    let project_config = json!({"mcpServers": {"github": {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": project_key}
    }}})
    .to_string();
    let user_config = json!({"mcpServers": {"internal": {
        "url": "https://mcp.internal.test/mcp", "headers": {"X-Api-Key": user_key}
    }}})
    .to_string();
    let layer = layer_tar(&[
        ("app/", b""),
        ("app/.mcp.json", project_config.as_bytes()),
        ("root/", b""),
        ("root/.cursor/", b""),
        ("root/.cursor/mcp.json", user_config.as_bytes()),
    ]);
    let path = one_image_archive(
        &tmp.path().join("mcp-app.tar"),
        "mcp-app:1",
        &[(&layer, "COPY . /")],
        json!({}),
    );

    let (out, report) = scan_json(
        &format!("docker-archive:{}", path.display()),
        &[],
        home.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        report_fingerprints(&report),
        fingerprints_of(&[&project_key, &user_key])
    );
    for (secret, client, server, field, config) in [
        (
            &project_key,
            "claude-code",
            "github",
            "env.GITHUB_PERSONAL_ACCESS_TOKEN",
            "app/.mcp.json",
        ),
        (
            &user_key,
            "cursor",
            "internal",
            "headers.X-Api-Key",
            "root/.cursor/mcp.json",
        ),
    ] {
        let found = key_of(&report, secret);
        let servers = found["scope"]["mcp_servers"].as_array().unwrap();
        assert!(
            servers.iter().any(|s| s["client"] == client
                && s["server"] == server
                && s["field"] == field
                && s["config"].as_str().unwrap().ends_with(config)),
            "{server}: {servers:#?}"
        );
        let at = &locations(found)[0];
        assert_eq!(at["image"], "mcp-app:1", "{at:#}");
        assert_eq!(at["mcp_server"], server, "{at:#}");
        // A key of an image belongs to the image, wherever in it the config sits.
        assert_eq!(
            found["scope"]["projects"],
            json!(["mcp-app:1"]),
            "{found:#}"
        );
    }
    // The image's servers are listed with the image's configs.
    let listed: BTreeSet<&str> = report["mcp_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["server"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from(["github", "internal"]));
    assert_no_secret(&out, &[&project_key, &user_key]);
}
