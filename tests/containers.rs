//! Where keys sit once a server runs: Compose files and Kubernetes manifests read field by
//! field (as files, and in git history), and the containers of a real Docker daemon (started
//! by the kit): one run with `-e KEY=…`, one only created, one with a bind-mounted `.env`, and
//! a project brought up by Debian's `docker-compose` (v1) with `network_mode: none`.
use std::{
    fs,
    path::Path,
    process::{Command, Output},
};

use kit::{
    docker::{daemon, Daemon},
    keys::{fingerprint, key, ALNUM},
    report::{locations, report_fingerprints},
    run::{json, run_ok, stderr, stdout},
};
use serde_json::Value;

use crate::{schema::assert_report_valid, DETECTOR};

const ORG_KEY: &str = "containers-test-org";

fn detector(args: &[&str], home: &Path, docker_host: Option<&str>) -> Output {
    let mut cmd = kit::run::detector_command(Path::new(DETECTOR), args, home, Some(ORG_KEY));
    cmd.env_remove("DOCKER_HOST");
    if let Some(host) = docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    kit::run::run_with_deadline(cmd, kit::run::deadline(), &args.join(" "))
}

/// `detector scan dir:DIR --format json`, with no Docker daemon.
fn scan_json(dir: &Path, home: &Path) -> Output {
    detector(
        &[
            "scan",
            &format!("dir:{}", dir.display()),
            "--format",
            "json",
        ],
        home,
        None,
    )
}

fn fp(secret: &str) -> String {
    fingerprint(ORG_KEY.as_bytes(), secret)
}

fn key_of<'a>(report: &'a Value, secret: &str) -> &'a Value {
    kit::report::key_of(report, ORG_KEY, secret)
}

fn has_violation(key: &Value, violation: &str) -> bool {
    kit::report::strings(&key["violations"])
        .iter()
        .any(|v| v == violation)
}

/// The `(kind, namespace, name)` of the key's scope's workloads.
fn workloads(key: &Value) -> Vec<(String, String, String)> {
    key["scope"]["workloads"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|w| {
                    (
                        w["kind"].as_str().unwrap().to_string(),
                        w["namespace"].as_str().unwrap_or("").to_string(),
                        w["name"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The class of `field` of the report's workload `kind`/`name`.
fn class_of<'a>(report: &'a Value, kind: &str, name: &str, field: &str) -> &'a Value {
    let workload = report["workloads"]
        .as_array()
        .unwrap_or_else(|| panic!("no workloads in {report:#}"))
        .iter()
        .find(|w| w["kind"] == kind && w["name"] == name)
        .unwrap_or_else(|| panic!("no workload {kind} {name}: {:#}", report["workloads"]));
    workload["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == field)
        .unwrap_or_else(|| panic!("no field {field} in {workload:#}"))
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The keys of the file tests: one shared by a `.env`, a Compose file and a Secret, and one
/// each for the other places.
struct Keys {
    shared: String,
    compose: String,
    env_file: String,
    deployment: String,
    config_map: String,
}

fn keys(seed: u64) -> Keys {
    Keys {
        shared: key("ghp_", ALNUM, 36, seed),
        compose: key("glpat-", ALNUM, 20, seed + 1),
        env_file: [&key("sk-ant-api03-", ALNUM, 93, seed + 2), "AA"].concat(),
        deployment: key("ghp_", ALNUM, 36, seed + 3),
        config_map: key("glpat-", ALNUM, 20, seed + 4),
    }
}

fn write_project(dir: &Path, k: &Keys) {
    fs::create_dir_all(dir.join("k8s")).unwrap();
    fs::write(dir.join(".env"), format!("GITHUB_TOKEN={}\n", k.shared)).unwrap();
    fs::write(
        dir.join(".env.api"),
        format!("ANTHROPIC_API_KEY={}\n", k.env_file),
    )
    .unwrap();
    fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"name: shop
x-common: &common
  environment:
    GITHUB_TOKEN: "{shared}"
services:
  api:
    <<: *common
    image: shop/api:1
    env_file: .env.api
  worker:
    image: shop/worker:1
    environment:
      - GITLAB_TOKEN={compose}
      - OPENAI_API_KEY=${{OPENAI_API_KEY}}
      - SLACK_BOT_TOKEN
    build:
      context: .
      args:
        NPM_TOKEN: ${{NPM_TOKEN:?set it}}
    secrets: [db_password]
secrets:
  db_password:
    file: ./db_password.txt
"#,
            shared = k.shared,
            compose = k.compose
        ),
    )
    .unwrap();
    fs::write(
        dir.join("k8s/app.yaml"),
        format!(
            r#"# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: prod
spec:
  template:
    spec:
      containers:
        - name: app
          image: shop/api:1
          env:
            - name: GITHUB_TOKEN
              value: "{deployment}"
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: report, namespace: prod}}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: job
              env:
                - name: GITHUB_TOKEN
                  valueFrom:
                    secretKeyRef: {{name: github, key: token}}
                - name: REGION
                  valueFrom:
                    configMapKeyRef: {{name: settings, key: region}}
              envFrom:
                - secretRef: {{name: api-keys}}
---
apiVersion: v1
kind: Secret
metadata: {{name: github, namespace: prod}}
type: Opaque
data:
  token: {shared_b64}
  username: {user_b64}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: prod}}
data:
  region: eu-west-1
  GITLAB_TOKEN: "{config_map}"
"#,
            deployment = k.deployment,
            shared_b64 = b64(&k.shared),
            user_b64 = b64("robot"),
            config_map = k.config_map
        ),
    )
    .unwrap();
}

#[test]
fn compose_files_and_kubernetes_manifests_name_the_workload_of_each_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let k = keys(1701);
    write_project(&dir, &k);
    let out = scan_json(&dir, tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_report_valid(&report, "a report of Compose files and manifests");

    // The key of the .env, the Compose file and the Secret: one entry, three places, and the
    // Secret's base64 is not a key of its own.
    let shared = key_of(&report, &k.shared);
    let places: Vec<&str> = locations(shared)
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    for file in [".env", "compose.yaml", "k8s/app.yaml"] {
        assert!(
            places.iter().any(|p| p.ends_with(file)),
            "{file} not in {places:?}"
        );
    }
    assert!(!report_fingerprints(&report).contains(&fp(&b64(&k.shared))));
    assert!(has_violation(shared, "plaintext-in-container-env"));
    assert!(has_violation(shared, "in-k8s-secret-manifest"));
    let scope = workloads(shared);
    assert!(scope.contains(&("compose-service".into(), "shop".into(), "api".into())));
    assert!(scope.contains(&("Secret".into(), "prod".into(), "github".into())));
    let in_secret = locations(shared)
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("k8s/app.yaml"))
        .unwrap();
    assert_eq!(in_secret["workload"]["part"], "secret-data");
    assert_eq!(in_secret["slot"], "data.token");

    // A Compose literal, a key in the service's env_file, a Deployment literal, a ConfigMap.
    let compose = key_of(&report, &k.compose);
    assert!(has_violation(compose, "plaintext-in-container-env"));
    assert_eq!(
        workloads(compose),
        [("compose-service".into(), "shop".into(), "worker".into())]
    );
    let env_file = key_of(&report, &k.env_file);
    assert_eq!(
        workloads(env_file),
        [("compose-service".into(), "shop".into(), "api".into())],
        "a key in a service's env_file is the service's"
    );
    let deployment = key_of(&report, &k.deployment);
    assert!(has_violation(deployment, "plaintext-in-container-env"));
    assert_eq!(
        workloads(deployment),
        [("Deployment".into(), "prod".into(), "api".into())]
    );
    assert!(deployment["scope"]["environments"]
        .as_array()
        .unwrap()
        .contains(&Value::from("production")));
    let config_map = key_of(&report, &k.config_map);
    assert!(has_violation(config_map, "secret-in-configmap"));

    // Every reference classified.
    let class = |kind, name, field| class_of(&report, kind, name, field)["class"].clone();
    for (kind, name, field, expected) in [
        (
            "compose-service",
            "worker",
            "environment.OPENAI_API_KEY",
            "env-ref",
        ),
        (
            "compose-service",
            "worker",
            "environment.SLACK_BOT_TOKEN",
            "env-ref",
        ),
        (
            "compose-service",
            "worker",
            "build.args.NPM_TOKEN",
            "env-ref",
        ),
        (
            "compose-service",
            "worker",
            "secrets.db_password",
            "secret-ref",
        ),
        (
            "CronJob",
            "report",
            "containers[job].env.GITHUB_TOKEN",
            "secret-ref",
        ),
        (
            "CronJob",
            "report",
            "containers[job].env.REGION",
            "config-ref",
        ),
        (
            "CronJob",
            "report",
            "containers[job].envFrom[0].secretRef",
            "secret-ref",
        ),
    ] {
        assert_eq!(class(kind, name, field), expected, "{kind} {name} {field}");
    }
    let literal = class_of(
        &report,
        "compose-service",
        "worker",
        "environment.GITLAB_TOKEN",
    );
    assert_eq!(literal["class"], "literal");
    assert_eq!(literal["fingerprint"], fp(&k.compose));
    let deployed = class_of(
        &report,
        "Deployment",
        "api",
        "containers[app].env.GITHUB_TOKEN",
    );
    assert_eq!(deployed["fingerprint"], fp(&k.deployment));

    // A Compose file named on its own brings the files its services read.
    let out = detector(
        &[
            "scan",
            &format!("file:{}", dir.join("compose.yaml").display()),
            "--format",
            "json",
        ],
        tmp.path(),
        None,
    );
    let alone = json(&out);
    let env_file_alone = key_of(&alone, &k.env_file);
    assert!(locations(env_file_alone)[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("shop/.env.api"));
    assert_eq!(
        workloads(env_file_alone),
        [("compose-service".into(), "shop".into(), "api".into())]
    );

    // Nothing in clear, in any format.
    let secrets = [
        &k.shared,
        &k.compose,
        &k.env_file,
        &k.deployment,
        &k.config_map,
    ];
    kit::report::assert_no_secret(&stdout(&out), secrets, "the JSON report");
    for format in ["text", "markdown", "sarif", "html"] {
        let out = detector(
            &[
                "scan",
                &format!("dir:{}", dir.display()),
                "--format",
                format,
            ],
            tmp.path(),
            None,
        );
        let text = stdout(&out);
        kit::report::assert_no_secret(&text, secrets, format);
        if format != "sarif" {
            assert!(text.contains("Deployment prod/api"), "{format}: {text}");
        }
    }
}

#[test]
fn manifests_and_compose_files_in_git_history_are_read_by_their_content() {
    let repo = kit::git::Repo::temporary();
    let k = keys(1801);
    write_project(&repo.dir, &k);
    repo.commit("2024-03-01", &[], "deploy");
    // The manifests move and the Secret goes: still in history, read by content.
    fs::rename(repo.dir.join("k8s/app.yaml"), repo.dir.join("k8s/all.yml")).unwrap();
    repo.write(
        "k8s/all.yml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n",
    );
    repo.commit("2024-03-02", &[], "no secrets in git");
    let out = detector(
        &[
            "scan",
            &format!("git:{}", repo.dir.display()),
            "--format",
            "json",
        ],
        &repo.home,
        None,
    );
    let report = json(&out);
    let shared = key_of(&report, &k.shared);
    assert!(
        workloads(shared).contains(&("Secret".into(), "prod".into(), "github".into())),
        "{:#}",
        shared["scope"]
    );
    assert!(has_violation(shared, "in-k8s-secret-manifest"));
    assert!(has_violation(shared, "in-git-history"));
    assert!(!report_fingerprints(&report).contains(&fp(&b64(&k.shared))));
}

/// Hostile manifests: no panic, no hang, what cannot be read is still scanned as text.
#[test]
fn broken_manifests_and_compose_files_are_scanned_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    fs::create_dir_all(&dir).unwrap();
    let token = key("ghp_", ALNUM, 36, 1901);
    // An alias bomb, a Secret whose data is not base64, and a Compose file cut short.
    let mut bomb =
        String::from("apiVersion: v1\nkind: ConfigMap\na0: &a0 [x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    bomb.push_str(&format!("token: {token}\n"));
    fs::write(dir.join("bomb.yaml"), bomb).unwrap();
    fs::write(
        dir.join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata:\n  token: '%%%not base64'\n",
    )
    .unwrap();
    fs::write(
        dir.join("compose.yaml"),
        format!("services:\n  api:\n    environment:\n      GITHUB_TOKEN: \"{token}"),
    )
    .unwrap();
    // Many values of one name, each written once: placed in one pass, not one per value
    // (the run's deadline would end a quadratic search).
    let mut many = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n",
    );
    for i in 0..40_000 {
        many.push_str(&format!(
            "        - {{name: LOG_LEVEL, value: value-{i:08}-x}}\n"
        ));
    }
    many.push_str(&format!(
        "        - {{name: GITHUB_TOKEN, value: {token}}}\n"
    ));
    fs::write(dir.join("big.yaml"), many).unwrap();
    let out = scan_json(&dir, tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let found = key_of(&report, &token);
    let places = locations(found);
    assert_eq!(places.len(), 3, "{found:#}");
    let big = places
        .iter()
        .find(|l| l["path"].as_str().unwrap().ends_with("big.yaml"))
        .unwrap();
    assert_eq!(big["workload"]["name"], "big", "{big:#}");
}

// ---------------------------------------------------------------------------------------
// The Docker daemon's containers.

fn docker_ok(daemon: &Daemon, args: &[&str]) -> String {
    let out = run_ok(&mut daemon.docker(args));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Containers removed when the test ends, pass or fail.
struct Containers<'d> {
    daemon: &'d Daemon,
    names: Vec<String>,
}

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.daemon.docker(&["rm", "-f", name]).output();
        }
    }
}

#[test]
fn containers_are_read_with_their_environment_command_labels_and_mounts() {
    let Some(daemon) = daemon() else { return };
    let image = daemon.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let k = keys(2001);
    let run_key = key("glpat-", ALNUM, 20, 2011);
    let created_key = key("ghp_", ALNUM, 36, 2012);
    let mounted_key = key("glpat-", ALNUM, 20, 2013);
    let pid = std::process::id();
    let running = format!("detector-test-env-{pid}");
    let stopped = format!("detector-test-created-{pid}");
    let _cleanup = Containers {
        daemon,
        names: vec![running.clone(), stopped.clone()],
    };
    let mounted = tmp.path().join("mounted.env");
    fs::write(&mounted, format!("GITLAB_TOKEN={mounted_key}\n")).unwrap();
    let id = docker_ok(
        daemon,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &running,
            "-e",
            &format!("GITLAB_TOKEN={run_key}"),
            "-e",
            &format!("GITHUB_TOKEN={}", k.shared),
            "-l",
            "team=shop",
            "-v",
            &format!("{}:/app/.env:ro", mounted.display()),
            image,
            "sleep",
            "600",
        ],
    );
    docker_ok(
        daemon,
        &[
            "create",
            "--network",
            "none",
            "--name",
            &stopped,
            "-e",
            &format!("GITHUB_TOKEN={created_key}"),
            image,
            "true",
        ],
    );
    let host = Some(daemon.host.as_str());

    // One container by name.
    let out = detector(
        &["scan", &format!("container:{running}"), "--format", "json"],
        tmp.path(),
        host,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert_report_valid(&report, "a report of a container");
    let found = key_of(&report, &run_key);
    let at = locations(found)
        .iter()
        .find(|l| l["kind"] == "container")
        .unwrap_or_else(|| panic!("no container location: {found:#}"));
    assert_eq!(at["container"], running.as_str());
    assert_eq!(at["container_id"], id.as_str());
    assert_eq!(at["image"], image);
    assert_eq!(at["path"], "Config.Env");
    assert_eq!(at["slot"], "GITLAB_TOKEN");
    assert_eq!(at["state"], "running");
    assert!(at["mtime"].is_string(), "the creation time: {at:#}");
    assert!(has_violation(found, "plaintext-in-container-env"));
    assert_eq!(
        workloads(found),
        [("container".into(), String::new(), running.clone())]
    );
    assert_eq!(
        class_of(&report, "container", &running, "Config.Env.GITLAB_TOKEN")["fingerprint"],
        fp(&run_key).as_str()
    );
    // The bind-mounted file is read from the host and is the container's.
    let mounted_found = key_of(&report, &mounted_key);
    assert_eq!(
        workloads(mounted_found),
        [("container".into(), String::new(), running.clone())]
    );
    assert!(!report_fingerprints(&report).contains(&fp(&created_key)));

    // Every container, running or only created.
    let out = detector(
        &["scan", "containers:", "--format", "json"],
        tmp.path(),
        host,
    );
    let report = json(&out);
    let created = key_of(&report, &created_key);
    let at = &locations(created)[0];
    assert_eq!(at["container"], stopped.as_str());
    assert_eq!(at["state"], "created");
    let out = detector(
        &["scan", "containers:running", "--format", "json"],
        tmp.path(),
        host,
    );
    let report = json(&out);
    assert!(report_fingerprints(&report).contains(&fp(&run_key)));
    assert!(!report_fingerprints(&report).contains(&fp(&created_key)));

    // One key in a .env, a Compose file, a running container and a Secret: one entry.
    let dir = tmp.path().join("shop");
    write_project(&dir, &k);
    let out = detector(
        &[
            "scan",
            &format!("dir:{}", dir.display()),
            "containers:",
            "--format",
            "json",
        ],
        tmp.path(),
        host,
    );
    let report = json(&out);
    let shared = key_of(&report, &k.shared);
    let kinds: Vec<(&str, &str)> = locations(shared)
        .iter()
        .map(|l| (l["kind"].as_str().unwrap(), l["path"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(kinds.contains(&("container", "Config.Env")), "{kinds:?}");
    kit::report::assert_no_secret(
        &[stdout(&out), stderr(&out)].concat(),
        [&k.shared, &run_key, &created_key, &mounted_key],
        "the report",
    );

    // `detector audit` reads the daemon's containers.
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let out = detector(
        &[
            "audit",
            "--home",
            &home.display().to_string(),
            "--no-images",
            "--format",
            "json",
        ],
        tmp.path(),
        host,
    );
    // (Other tests of this process may run containers in the same daemon.)
    assert!(stderr(&out).contains(" containers"), "{}", stderr(&out));
    assert!(report_fingerprints(&json(&out)).contains(&fp(&run_key)));

    // A container that is not there: one line naming it, exit 2.
    let out = detector(
        &["scan", "container:detector-no-such-container"],
        tmp.path(),
        host,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("container:detector-no-such-container")
            && message.contains("no such container"),
        "{message}"
    );
}

#[test]
fn a_project_brought_up_by_docker_compose_is_found_by_containers() {
    let Some(daemon) = daemon() else { return };
    if kit::run::which("docker-compose").is_none() {
        kit::guard::skip("docker-compose not found (cargo xtask setup installs it)");
        return;
    }
    let image = daemon.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let token = key("glpat-", ALNUM, 20, 2101);
    let project = format!("detectortest{}", std::process::id());
    fs::write(
        tmp.path().join("docker-compose.yml"),
        format!(
            r#"version: "2.4"
services:
  api:
    image: {image}
    command: ["sleep", "600"]
    network_mode: none
    environment:
      GITLAB_TOKEN: "{token}"
      OPENAI_API_KEY: ${{OPENAI_API_KEY:-}}
"#
        ),
    )
    .unwrap();
    let compose = |args: &[&str]| {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("-p")
            .arg(&project)
            .args(args)
            .current_dir(tmp.path())
            .env("DOCKER_HOST", &daemon.host)
            .env("DOCKER_CONFIG", daemon.dir.join("client"));
        cmd
    };
    struct Down<F: Fn()>(F);
    impl<F: Fn()> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _down = Down(|| {
        let _ = compose(&["down", "--timeout", "1"]).output();
    });
    run_ok(&mut compose(&["up", "-d"]));

    let out = detector(
        &["scan", "containers:", "--format", "json"],
        tmp.path(),
        Some(&daemon.host),
    );
    let report = json(&out);
    let found = key_of(&report, &token);
    let at = locations(found)
        .iter()
        .find(|l| l["kind"] == "container")
        .unwrap_or_else(|| panic!("{found:#}"));
    assert!(
        at["container"].as_str().unwrap().starts_with(&project),
        "{at:#}"
    );
    assert_eq!(found["scope"]["projects"][0], project.as_str());
    assert_eq!(workloads(found)[0].1, project, "named within its project");
    assert!(has_violation(found, "plaintext-in-container-env"));

    // The Compose file itself, read as a file: the same key, at the service.
    let out = detector(
        &[
            "scan",
            &format!("file:{}", tmp.path().join("docker-compose.yml").display()),
            "--format",
            "json",
        ],
        tmp.path(),
        None,
    );
    let report = json(&out);
    assert_eq!(
        workloads(key_of(&report, &token))[0].2,
        "api",
        "{:#}",
        report["keys"]
    );
    assert_eq!(
        class_of(
            &report,
            "compose-service",
            "api",
            "environment.OPENAI_API_KEY"
        )["class"],
        "env-ref"
    );
}

#[test]
fn a_key_a_container_inherits_from_its_image_is_one_key_in_both() {
    let Some(daemon) = daemon() else { return };
    let base = daemon.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let token = key("ghp_", ALNUM, 36, 2201);
    let pid = std::process::id();
    let image = format!("detector-test-envimage-{pid}:1");
    let name = format!("detector-test-inherits-{pid}");
    let _cleanup = Containers {
        daemon,
        names: vec![name.clone()],
    };
    let context = tmp.path().join("context");
    fs::create_dir_all(&context).unwrap();
    fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nENV GITHUB_TOKEN={token}\n"),
    )
    .unwrap();
    docker_ok(
        daemon,
        &["build", "-q", "-t", &image, &context.display().to_string()],
    );
    docker_ok(
        daemon,
        &[
            "create",
            "--network",
            "none",
            "--name",
            &name,
            &image,
            "true",
        ],
    );
    let out = detector(
        &[
            "scan",
            &format!("docker:{image}"),
            &format!("container:{name}"),
            "--format",
            "json",
        ],
        tmp.path(),
        Some(&daemon.host),
    );
    let report = json(&out);
    let found = key_of(&report, &token);
    let mut kinds: Vec<(String, String)> = locations(found)
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap().to_string(),
                l["image"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    kinds.sort();
    // (The image config holds it twice: in Env, and in the history entry of its ENV line.)
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            ("container".to_string(), image.clone()),
            ("image-config".to_string(), image.clone()),
        ],
        "the container's location names the image whose config holds the key: {found:#}"
    );
    assert!(has_violation(found, "in-image-config"));
    assert!(has_violation(found, "plaintext-in-container-env"));
    let _ = daemon.docker(&["rmi", "-f", &image]).output();
}

/// What a daemon says is input too: an odd inspect answer (a name of the wrong type, an env
/// entry with no `=`, controls in values, a path that is not a file as a mount) is one error
/// naming the container; the others are read.
#[test]
fn odd_answers_from_the_daemon_are_errors_not_crashes() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("docker.sock");
    let token = key("glpat-", ALNUM, 20, 2301);
    let good = serde_json::json!({
        "Id": "a".repeat(64), "Name": "/good\u{1b}[31m", "Created": "not a time",
        "Config": {"Env": ["NOEQUALS", format!("GITLAB_TOKEN={token}"), "=empty-name"],
                   "Labels": null, "Image": "app:1"},
        "Mounts": [{"Type": "bind", "Source": "/dev/null", "Destination": "/x"},
                   {"Type": "volume", "Source": "/nonexistent", "Destination": "/y"}],
        "State": {"Status": "running"}
    });
    kit::docker::fake_daemon(&socket, move |path| {
        let path = path.split_once("/containers").map_or(path, |(_, p)| p);
        match path {
            "/json?all=1" => (
                "200 OK",
                format!(
                    r#"[{{"Id":"{}","State":"running"}},{{"Id":"bad","State":"exited"}}]"#,
                    "a".repeat(64)
                )
                .into_bytes(),
            ),
            "/bad/json" => ("200 OK", br#"{"Id":"bad","Name":5}"#.to_vec()),
            p if p.ends_with("/json") => ("200 OK", good.to_string().into_bytes()),
            _ => ("404 Not Found", br#"{"message":"not here"}"#.to_vec()),
        }
    });
    let host = format!("unix://{}", socket.display());
    let out = detector(
        &["scan", "containers:", "--format", "json"],
        tmp.path(),
        Some(&host),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let found = key_of(&report, &token);
    assert_eq!(locations(found)[0]["container"], "good\u{1b}[31m");
    let errors = kit::report::target_errors(&report);
    assert!(
        errors.iter().any(|(path, _)| path == "container:bad"),
        "{errors:?}"
    );
    let text = detector(&["scan", "containers:"], tmp.path(), Some(&host));
    assert!(!stdout(&text).contains('\u{1b}'), "{}", stdout(&text));
}
