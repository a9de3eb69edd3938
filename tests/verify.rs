//! `--verify` and `detector revoke` over real TLS: a local HTTPS server with its own CA
//! (`kit::https`) answers as each provider documents, and the binary is pointed at it with
//! `--verify-resolve` and `--verify-ca` only, so the real hostname, SNI, method, path, headers
//! and body are what the server sees. Every verifier of `rules/` sends its example's exact
//! request and reads each example answer as its example says.
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Output,
    sync::{Arc, Mutex},
    time::Duration,
};

use kit::{
    https::{ProviderServer, Recorded, Reply},
    keys::{fingerprint, key, ALNUM},
    report::{assert_no_secret, key_of},
    run::{json, stderr, stdout},
};
use serde_json::Value;

use crate::detector;

const ORG_KEY: &str = "verify-test-org";

/// One example answer of a verifier.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    state: String,
    detail: Option<String>,
}

/// A verifier's example as `rules/*.toml` writes it, with what to plant for it.
#[derive(Clone, Debug)]
struct Example {
    id: String,
    secret: String,
    /// A text the rule finds the secret in, and the needs' values, one a line.
    plant: String,
    request: String,
    answers: Vec<Answer>,
    revoke: Option<(String, Vec<Answer>)>,
}

impl Example {
    fn host(&self) -> String {
        request_host(&self.request)
    }
}

fn request_host(request: &str) -> String {
    request
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no host line in {request}"))
        .trim()
        .to_string()
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn answers(example: &toml::Value) -> Vec<Answer> {
    example["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| Answer {
            status: a["status"].as_integer().unwrap() as u16,
            headers: a
                .get("headers")
                .and_then(|h| h.as_table())
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            body: a
                .get("body")
                .and_then(|b| b.as_str())
                .unwrap_or("")
                .to_string(),
            state: a["state"].as_str().unwrap().to_string(),
            detail: a.get("detail").and_then(|d| d.as_str()).map(str::to_string),
        })
        .collect()
}

/// Every verifier of the built-in rules, with its example.
fn examples() -> Vec<Example> {
    let mut rules: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut verifiers = Vec::new();
    let mut paths: Vec<PathBuf> = fs::read_dir(rules_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let file: toml::Value = toml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for rule in file
            .get("rules")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            let examples = rule["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["text"].as_str().unwrap().to_string(),
                        e["secret"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            rules.insert(rule["id"].as_str().unwrap().to_string(), examples);
        }
        for verifier in file
            .get("verifiers")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            verifiers.push(verifier.clone());
        }
    }
    verifiers
        .iter()
        .map(|v| {
            let id = v["id"].as_str().unwrap().to_string();
            let verifier_rules: Vec<&str> = v["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            let example = &v["example"];
            let secret = example
                .get("secret")
                .and_then(|s| s.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| rules[verifier_rules[0]][0].1.clone());
            let text = verifier_rules
                .iter()
                .flat_map(|r| rules[*r].iter())
                .find(|(_, s)| *s == secret)
                .map(|(t, _)| t.clone())
                .unwrap_or_else(|| format!("API_KEY={secret}"));
            let mut plant = text;
            for (_, value) in example
                .get("needs")
                .and_then(|n| n.as_table())
                .into_iter()
                .flatten()
            {
                plant.push('\n');
                plant.push_str(value.as_str().unwrap());
            }
            plant.push('\n');
            let revoke = v.get("revoke").map(|r| {
                (
                    r["example"]["request"].as_str().unwrap().to_string(),
                    answers(&r["example"]),
                )
            });
            Example {
                id,
                secret,
                plant,
                request: example["request"].as_str().unwrap().to_string(),
                answers: answers(example),
                revoke,
            }
        })
        .collect()
}

/// How `got` differs from the `expected` request text (`METHOD target`, `name: value`
/// lines, a blank line, the body; a value ending in `*` is a prefix), or `None`. The host
/// line must be both the SNI and the Host header.
fn differs(expected: &str, got: &Recorded) -> Option<String> {
    let expected = expected.strip_suffix('\n').unwrap_or(expected);
    let (head, body) = expected.split_once("\n\n").unwrap_or((expected, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap();
    let sent = format!("{} {}", got.method, got.path_and_query);
    if first != sent {
        return Some(format!("sent {sent:?}, expected {first:?}"));
    }
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        let (name, value) = (name.trim(), value.trim());
        if name == "host" {
            if got.host.as_deref() != Some(value) || got.sni.as_deref() != Some(value) {
                return Some(format!(
                    "host {:?} / SNI {:?}, expected {value:?}",
                    got.host, got.sni
                ));
            }
            continue;
        }
        let actual = got.header(name);
        let ok = match (actual, value.strip_suffix('*')) {
            (Some(a), Some(prefix)) => a.starts_with(prefix),
            (Some(a), None) => a == value,
            (None, _) => false,
        };
        if !ok {
            return Some(format!("{name}: {actual:?}, expected {value:?}"));
        }
    }
    if got.body != body.as_bytes() {
        return Some(format!(
            "body {:?}, expected {body:?}",
            String::from_utf8_lossy(&got.body)
        ));
    }
    None
}

fn reply(answer: &Answer) -> Reply {
    let mut reply = Reply::json(answer.status, answer.body.clone());
    for (name, value) in &answer.headers {
        reply = reply.with_header(name.clone(), value.clone());
    }
    reply
}

/// A home, a cache folder and the files planted.
struct Place {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    dir: PathBuf,
}

impl Place {
    fn new() -> Place {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let dir = tmp.path().join("scanned");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&dir).unwrap();
        Place {
            home,
            dir,
            _tmp: tmp,
        }
    }

    fn plant(&self, name: &str, text: &str) {
        fs::write(self.dir.join(name), text).unwrap();
    }

    fn target(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    fn cache_file(&self) -> PathBuf {
        self.home.join(".cache/detector/verify.json")
    }

    /// `detector scan TARGET --format json ARGS… <the server's resolve and CA>`.
    fn scan(&self, server: &ProviderServer, target: &str, args: &[&str]) -> Output {
        let mut all: Vec<String> = ["scan", target, "--format", "json", "--verify"]
            .map(String::from)
            .to_vec();
        all.extend(args.iter().map(|a| a.to_string()));
        all.extend(server.resolve_args());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        detector(&all, &self.home, Some(ORG_KEY))
    }
}

fn state(key: &Value) -> &str {
    key["verification"]["state"]
        .as_str()
        .unwrap_or_else(|| panic!("no verification in {key:#}"))
}

fn violations(key: &Value) -> Vec<String> {
    kit::report::strings(&key["violations"])
}

#[test]
fn every_verifier_sends_its_documented_request_and_reads_each_answer() {
    let examples = examples();
    assert!(examples.len() >= 40, "only {} verifiers", examples.len());
    let secrets: BTreeSet<&str> = examples.iter().map(|e| e.secret.as_str()).collect();
    assert_eq!(
        secrets.len(),
        examples.len(),
        "two verifiers share an example key"
    );
    let hosts: BTreeSet<String> = examples.iter().map(Example::host).collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let server = ProviderServer::start(&hosts);
    // The answer each verifier gets this round, by verifier id; a request that matches no
    // example's request gets 404, so its key is `unknown` and the round fails.
    let round: Arc<Mutex<BTreeMap<String, Answer>>> = Arc::default();
    {
        let examples = examples.clone();
        let round = Arc::clone(&round);
        server.set_handler(move |got| {
            let round = round.lock().unwrap();
            examples
                .iter()
                .filter(|e| differs(&e.request, got).is_none())
                .find_map(|e| round.get(&e.id))
                .map_or_else(|| Reply::status(404), reply)
        });
    }
    let rounds = examples.iter().map(|e| e.answers.len()).max().unwrap();
    for r in 0..rounds {
        let place = Place::new();
        let mut planted = Vec::new();
        {
            let mut answers = round.lock().unwrap();
            answers.clear();
            for example in &examples {
                // Rate limits and provider errors are retried, whatever the verifier says:
                // `rate_limits_are_honoured` covers them.
                let Some(answer) = example
                    .answers
                    .get(r)
                    .filter(|a| a.status != 429 && a.status < 500)
                else {
                    continue;
                };
                place.plant(&format!("{}.txt", example.id), &example.plant);
                answers.insert(example.id.clone(), answer.clone());
                planted.push((example, answer.clone()));
            }
        }
        server.clear();
        let output = place.scan(&server, &place.target(), &["--verify-refresh"]);
        let report = json(&output);
        for (example, answer) in &planted {
            let key = key_of(&report, ORG_KEY, &example.secret);
            let verification = &key["verification"];
            if r == 0 {
                let to_host: Vec<&Recorded> = Vec::new();
                let requests = server.requests();
                let mine: Vec<&Recorded> = requests
                    .iter()
                    .filter(|got| differs(&example.request, got).is_none())
                    .collect();
                let near: Vec<String> = requests
                    .iter()
                    .filter(|got| got.sni.as_deref() == Some(example.host().as_str()))
                    .chain(to_host)
                    .filter_map(|got| differs(&example.request, got))
                    .collect();
                assert_eq!(
                    mine.len(),
                    1,
                    "{}: expected one request exactly as its example writes it; to its host: {near:?}; verification: {verification}",
                    example.id
                );
            }
            assert_eq!(
                verification["state"], answer.state,
                "{}: HTTP {} {:?} must mean {}: {verification}",
                example.id, answer.status, answer.body, answer.state
            );
            assert_eq!(verification["verifier"], example.id.as_str());
            if let Some(detail) = &answer.detail {
                assert_eq!(verification["detail"], detail.as_str(), "{}", example.id);
            }
        }
    }
}

#[test]
fn every_revoker_sends_its_documented_call() {
    let examples: Vec<Example> = examples()
        .into_iter()
        .filter(|e| e.revoke.is_some())
        .collect();
    assert!(examples.len() >= 3, "GitHub, GitLab and Slack at least");
    let hosts: BTreeSet<String> = examples
        .iter()
        .map(|e| request_host(&e.revoke.as_ref().unwrap().0))
        .collect();
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let server = ProviderServer::start(&hosts);
    for example in &examples {
        let (request, answers) = example.revoke.clone().unwrap();
        let place = Place::new();
        place.plant("key.txt", &example.plant);
        for answer in answers.iter().filter(|a| a.status != 429 && a.status < 500) {
            let expected = request.clone();
            let reply_with = answer.clone();
            server.set_handler(move |got| match differs(&expected, got) {
                None => reply(&reply_with),
                Some(_) => Reply::status(404),
            });
            server.clear();
            let fp = fingerprint(ORG_KEY.as_bytes(), &example.secret);
            let mut args = vec![
                "revoke".to_string(),
                fp.clone(),
                place.target(),
                "--yes".to_string(),
            ];
            args.extend(server.resolve_args());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = detector(&args, &place.home, Some(ORG_KEY));
            let line: Value = serde_json::from_str(stdout(&output).trim()).unwrap_or_else(|e| {
                panic!(
                    "{}: not one JSON line ({e}): {}",
                    example.id,
                    stderr(&output)
                )
            });
            let requests = server.requests();
            assert_eq!(requests.len(), 1, "{}: {line}", example.id);
            assert_eq!(
                differs(&request, &requests[0]),
                None,
                "{}: the revoke call differs from its example",
                example.id
            );
            let (outcome, code) = match answer.state.as_str() {
                "revoked" => ("revoked", 0),
                "active" => ("refused", 1),
                _ => ("failed", 1),
            };
            assert_eq!(line["outcome"], outcome, "{}: {line}", example.id);
            assert_eq!(line["fingerprint"], fp.as_str());
            assert_eq!(output.status.code(), Some(code), "{}: {line}", example.id);
            assert_no_secret(&stdout(&output), [&example.secret], "revoke's line");
            assert_no_secret(&stderr(&output), [&example.secret], "revoke's stderr");
        }
    }
}

/// A GitHub OAuth token built at run time: a high-severity rule, so that a raise to
/// critical shows.
fn github_token(seed: u64) -> String {
    key(&["gh", "o_"].concat(), ALNUM, 36, seed)
}

fn github_server() -> ProviderServer {
    ProviderServer::start(&["api.github.com"])
}

/// 200 for `active` keys, 401 for the rest, by the bearer token.
fn answer_by_token(server: &ProviderServer, active: &[String]) {
    let active: Vec<String> = active.to_vec();
    server.set_handler(move |got| {
        let token = got
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if active.iter().any(|a| a == token) {
            Reply::json(200, r#"{"login":"octocat","id":1}"#)
        } else {
            Reply::json(401, r#"{"message":"Bad credentials"}"#)
        }
    });
}

#[test]
fn a_rotated_key_the_provider_still_takes_was_never_revoked() {
    let repo = kit::git::Repo::temporary();
    let (old, new) = (github_token(11), github_token(12));
    repo.commit(
        "2024-01-01",
        &[(".env", &format!("GITHUB_TOKEN={old}\n"))],
        "add",
    );
    repo.commit(
        "2024-02-01",
        &[(".env", &format!("GITHUB_TOKEN={new}\n"))],
        "rotate",
    );
    let server = github_server();
    let place = Place::new();
    let target = format!("git:{}", repo.dir.display());

    // Both keys still work: the old one was rotated in the file, never revoked.
    answer_by_token(&server, &[old.clone(), new.clone()]);
    let output = place.scan(&server, &target, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let key = key_of(&report, ORG_KEY, &old);
    assert_eq!(key["status"], "rotated");
    assert_eq!(state(key), "active");
    assert_eq!(key["verification"]["detail"], "login=octocat");
    assert!(
        violations(key).contains(&"rotated-not-revoked".to_string()),
        "{key:#}"
    );
    assert_eq!(key["severity"], "critical");
    assert!(key["remediation"][0]
        .as_str()
        .unwrap()
        .starts_with("Revoke it at GitHub now"));
    let live = key_of(&report, ORG_KEY, &new);
    assert_eq!(state(live), "active");
    assert!(!violations(live)
        .iter()
        .any(|v| v == "rotated-not-revoked" || v == "dead-key-in-config"));
    assert_eq!(report["summary"]["by_verification"]["active"], 2);

    // The old key answered 401: revoked, as it should be; the live one refused: a dead key.
    answer_by_token(&server, &[]);
    let output = place.scan(&server, &target, &["--verify-refresh"]);
    let report = json(&output);
    let key = key_of(&report, ORG_KEY, &old);
    assert_eq!(state(key), "revoked");
    assert!(
        !violations(key).contains(&"rotated-not-revoked".to_string()),
        "{key:#}"
    );
    assert_eq!(key["severity"], "high");
    let live = key_of(&report, ORG_KEY, &new);
    assert_eq!(state(live), "revoked");
    assert!(
        violations(live).contains(&"dead-key-in-config".to_string()),
        "{live:#}"
    );

    // The human formats say both out loud.
    answer_by_token(&server, std::slice::from_ref(&old));
    for (format, alarm) in [
        ("text", "STILL WORKS"),
        ("markdown", "STILL WORKS"),
        ("html", "STILL WORKS"),
    ] {
        let mut args = vec![
            "scan".to_string(),
            target.clone(),
            "--verify".into(),
            "--verify-refresh".into(),
            "--format".into(),
            format.into(),
        ];
        args.extend(server.resolve_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = detector(&args, &place.home, Some(ORG_KEY));
        let text = stdout(&output);
        assert!(text.contains(alarm), "{format}: {text}");
        assert!(text.contains("DEAD"), "{format}: {text}");
        assert!(text.contains("provider says active"), "{format}: {text}");
    }
}

#[test]
fn nothing_is_sent_without_verify() {
    let server = github_server();
    answer_by_token(&server, &[]);
    let place = Place::new();
    place.plant(".env", &format!("GITHUB_TOKEN={}\n", github_token(21)));
    let mut args = vec![
        "scan".to_string(),
        place.target(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(server.resolve_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = detector(&args, &place.home, Some(ORG_KEY));
    let report = json(&output);
    assert_eq!(report["keys"].as_array().unwrap().len(), 1);
    assert!(report["keys"][0].get("verification").is_none());
    assert_eq!(server.count(), 0, "a request left without --verify");
    assert!(!place.cache_file().exists());
}

#[test]
fn the_cache_answers_a_second_run_and_holds_no_secret() {
    let server = github_server();
    let token = github_token(31);
    answer_by_token(&server, std::slice::from_ref(&token));
    let place = Place::new();
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    let first = json(&place.scan(&server, &place.target(), &[]));
    assert_eq!(state(&first["keys"][0]), "active");
    assert_eq!(server.count(), 1);
    let cache = place.cache_file();
    let mode = fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the cache is private");
    let dir_mode = fs::metadata(cache.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_no_secret(&fs::read_to_string(&cache).unwrap(), [&token], "the cache");

    let second = json(&place.scan(&server, &place.target(), &[]));
    assert_eq!(server.count(), 1, "the cache must answer the second run");
    assert_eq!(state(&second["keys"][0]), "active");
    assert_eq!(second["keys"][0]["verification"]["cached"], true);

    let refreshed = json(&place.scan(&server, &place.target(), &["--verify-refresh"]));
    assert_eq!(server.count(), 2, "--verify-refresh asks again");
    assert!(refreshed["keys"][0]["verification"].get("cached").is_none());

    let expired = json(&place.scan(&server, &place.target(), &["--verify-ttl", "0s"]));
    assert_eq!(
        server.count(),
        3,
        "an answer older than the TTL is asked again"
    );
    assert_eq!(state(&expired["keys"][0]), "active");
}

#[test]
fn rate_limits_and_provider_errors_are_retried_as_the_provider_asks() {
    let server = github_server();
    let tokens = [github_token(41), github_token(42)];
    let calls = Arc::new(Mutex::new(0usize));
    {
        let calls = Arc::clone(&calls);
        server.set_handler(move |_| {
            let mut n = calls.lock().unwrap();
            *n += 1;
            match *n {
                1 => Reply::json(429, r#"{"message":"slow down"}"#).with_header("Retry-After", "2"),
                2 => Reply::status(503),
                _ => Reply::json(200, r#"{"login":"octocat"}"#),
            }
        });
    }
    let place = Place::new();
    place.plant(
        ".env",
        &format!("GITHUB_TOKEN={}\nGH_TOKEN={}\n", tokens[0], tokens[1]),
    );
    // One request at a time to the host: each after the answer to the one before.
    let report = json(&place.scan(&server, &place.target(), &["--verify-per-host", "1"]));
    for token in &tokens {
        assert_eq!(
            state(key_of(&report, ORG_KEY, token)),
            "active",
            "{report:#}"
        );
    }
    let requests = server.requests();
    assert!(requests.len() >= 3, "{} requests", requests.len());
    // After the 429, nothing went to the host before its Retry-After was up.
    let limited = requests[0].at;
    for later in &requests[1..] {
        let gap = later.at.duration_since(limited);
        assert!(
            gap >= Duration::from_millis(1900),
            "a request {gap:?} after a 429 that asked for 2 s"
        );
    }

    // A provider that asks for longer than detector waits: unknown, said why, not retried.
    server.set_handler(|_| Reply::json(429, "{}").with_header("Retry-After", "3600"));
    server.clear();
    let report = json(&place.scan(&server, &place.target(), &["--verify-refresh"]));
    let key = key_of(&report, ORG_KEY, &tokens[0]);
    assert_eq!(state(key), "unknown");
    let detail = key["verification"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("rate limited") && detail.contains("3600"),
        "{detail}"
    );
    assert_eq!(server.count(), 2, "one request per key, no retry");
}

#[test]
fn a_slow_or_unreachable_provider_is_unknown_and_says_why() {
    let server = github_server();
    server.set_handler(|_| Reply::json(200, "{}").after(Duration::from_secs(5)));
    let place = Place::new();
    let token = github_token(51);
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    let report = json(&place.scan(&server, &place.target(), &["--verify-timeout", "1s"]));
    let key = key_of(&report, ORG_KEY, &token);
    assert_eq!(state(key), "unknown");
    assert!(key["verification"]["detail"]
        .as_str()
        .unwrap()
        .contains("did not answer in time"));

    // A CA the client does not trust: the certificate is refused, nothing is sent.
    let other = ProviderServer::start(&["api.github.com"]);
    let mut args = vec![
        "scan".to_string(),
        place.target(),
        "--format".into(),
        "json".into(),
        "--verify".into(),
        "--verify-refresh".into(),
    ];
    args.extend([
        "--verify-resolve".to_string(),
        format!("*:443:127.0.0.1:{}", other.port()),
        "--verify-ca".into(),
        server.ca_file().display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = json(&detector(&args, &place.home, Some(ORG_KEY)));
    let key = key_of(&report, ORG_KEY, &token);
    assert_eq!(state(key), "unknown");
    assert!(
        key["verification"]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{key:#}"
    );
    assert_eq!(other.count(), 0);
}

#[test]
fn a_host_from_the_scanned_file_is_asked_only_when_the_provider_documents_it() {
    let server = ProviderServer::start(&["acme.atlassian.net", "evil.example.com"]);
    server
        .set_handler(|_| Reply::json(200, r#"{"accountId":"1","emailAddress":"mia@example.com"}"#));
    let example = examples()
        .into_iter()
        .find(|e| e.id == "atlassian-jira-myself")
        .expect("the Atlassian verifier");
    let place = Place::new();
    place.plant(
        ".env",
        &example
            .plant
            .replace("acme.atlassian.net", "evil.example.com"),
    );
    let report = json(&place.scan(&server, &place.target(), &[]));
    let key = key_of(&report, ORG_KEY, &example.secret);
    assert_eq!(state(key), "unknown");
    assert_eq!(
        server.count(),
        0,
        "a host the provider does not document was asked"
    );

    place.plant(".env", &example.plant);
    let report = json(&place.scan(&server, &place.target(), &["--verify-refresh"]));
    assert_eq!(state(key_of(&report, ORG_KEY, &example.secret)), "active");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].sni.as_deref(), Some("acme.atlassian.net"));
}

#[test]
fn only_verified_keeps_the_active_keys() {
    let server = github_server();
    let (good, dead) = (github_token(61), github_token(62));
    answer_by_token(&server, std::slice::from_ref(&good));
    let place = Place::new();
    place.plant(
        ".env",
        &format!(
            "GITHUB_TOKEN={good}\nGH_TOKEN={dead}\nOTHER_SECRET_KEY=sk-not-verifiable-{}\n",
            kit::keys::random(ALNUM, 24, 63)
        ),
    );
    let report = json(&place.scan(&server, &place.target(), &["--only-verified"]));
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{report:#}");
    assert_eq!(
        keys[0]["fingerprint"],
        fingerprint(ORG_KEY.as_bytes(), &good)
    );
}

#[test]
fn no_secret_reaches_stderr_the_cache_or_any_report_format() {
    // The provider echoes the key back in the body and a header; the verifier's detail reads
    // `/login`, which holds it too. SerpApi's verifier sends its key in the URL's query.
    let token = github_token(71);
    let serpapi = examples()
        .into_iter()
        .find(|e| e.id == "serpapi-account")
        .expect("a verifier with the key in its URL");
    let server = ProviderServer::start(&["api.github.com", "serpapi.com"]);
    {
        let token = token.clone();
        server.set_handler(move |_| {
            Reply::json(200, format!(r#"{{"login":"{token}","token":"{token}"}}"#))
                .with_header("X-OAuth-Scopes", format!("repo {token}"))
        });
    }
    let place = Place::new();
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    place.plant("serp.env", &serpapi.plant);
    let secrets = [token.as_str(), serpapi.secret.as_str()];
    for format in ["json", "sarif", "markdown", "html", "text"] {
        let mut cmd =
            kit::run::detector_command(Path::new(crate::DETECTOR), &[], &place.home, Some(ORG_KEY));
        cmd.args([
            "scan",
            &place.target(),
            "--verify",
            "--verify-refresh",
            "--format",
            format,
        ]);
        cmd.args(server.resolve_args());
        cmd.env("RUST_LOG", "trace");
        let output = kit::run::run_with_deadline(cmd, kit::run::deadline(), "verify scan");
        assert!(
            stdout(&output).contains("active"),
            "{format}: {}",
            stdout(&output)
        );
        assert_no_secret(&stdout(&output), secrets, format);
        assert_no_secret(&stderr(&output), secrets, "stderr with RUST_LOG=trace");
    }
    assert_eq!(
        server.count(),
        10,
        "both keys asked in each of the five runs"
    );
    assert_no_secret(
        &fs::read_to_string(place.cache_file()).unwrap(),
        secrets,
        "the cache",
    );
}

#[test]
fn revoke_asks_first_and_says_what_it_could_not_do() {
    let server = ProviderServer::start(&["api.github.com"]);
    server.set_handler(|_| Reply::json(202, "{}"));
    let place = Place::new();
    let token = github_token(81);
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    let fp = fingerprint(ORG_KEY.as_bytes(), &token);
    let run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(server.resolve_args());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        detector(&all, &place.home, Some(ORG_KEY))
    };
    let target = place.target();

    // No terminal and no --yes: refused, nothing sent.
    let output = run(&["revoke", &fp, &target]);
    assert_eq!(output.status.code(), Some(2));
    let line: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["outcome"], "not-confirmed");
    assert_eq!(server.count(), 0);

    // A fingerprint no key has.
    let other = fingerprint(ORG_KEY.as_bytes(), "nothing");
    let output = run(&["revoke", &other, &target, "--yes"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        serde_json::from_str::<Value>(stdout(&output).trim()).unwrap()["outcome"],
        "not-found"
    );

    // A key whose provider documents no self-revocation.
    let openai = [
        "sk-proj-",
        &kit::keys::random(ALNUM, 74, 82),
        "T3BlbkFJ",
        &kit::keys::random(ALNUM, 74, 83),
    ]
    .concat();
    place.plant("openai.env", &format!("OPENAI_API_KEY={openai}\n"));
    let output = run(&[
        "revoke",
        &fingerprint(ORG_KEY.as_bytes(), &openai),
        &target,
        "--yes",
    ]);
    let line: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["outcome"], "unsupported", "{line}");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(server.count(), 0);

    // Revoked; the next --verify need not ask.
    let output = run(&["revoke", &fp, &target, "--yes"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        serde_json::from_str::<Value>(stdout(&output).trim()).unwrap()["outcome"],
        "revoked"
    );
    assert_eq!(server.count(), 1);
    let report = json(&place.scan(&server, &target, &[]));
    let key = key_of(&report, ORG_KEY, &token);
    assert_eq!(state(key), "revoked");
    assert_eq!(key["verification"]["cached"], true);
    assert_eq!(server.count(), 1);
}

#[test]
fn database_urls_are_logged_in_to_only_with_verify_network() {
    let password = kit::keys::random(ALNUM, 24, 91);
    let (pg, redis) = match (
        kit::db::Postgres::start(&password),
        kit::db::Redis::start(&password),
    ) {
        (Ok(pg), Ok(redis)) => (pg, redis),
        (Err(reason), _) | (_, Err(reason)) => {
            kit::guard::skip(&reason);
            return;
        }
    };
    let place = Place::new();
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--format", "json", "--verify", "--verify-refresh"];
        let target = place.target();
        args.push(&target);
        args.extend_from_slice(extra);
        json(&detector(&args, &place.home, Some(ORG_KEY)))
    };
    let wrong = kit::keys::random(ALNUM, 24, 92);
    place.plant(
        "db.env",
        &format!(
            "DATABASE_URL={}\nREDIS_URL={}\nOLD_DATABASE_URL={}\n",
            pg.url(&password),
            redis.url(&password),
            pg.url(&wrong)
        ),
    );

    // Without --verify-network no login is tried, and the report says so.
    let report = scan(&[]);
    let key = key_of(&report, ORG_KEY, &password);
    assert_eq!(state(key), "unknown");
    assert!(key["verification"]["detail"]
        .as_str()
        .unwrap()
        .contains("--verify-network"));

    let report = scan(&["--verify-network"]);
    let key = key_of(&report, ORG_KEY, &password);
    // The same password in both URLs is one key: whichever URL was nearest logged in.
    assert_eq!(state(key), "active", "{key:#}");
    let refused = key_of(&report, ORG_KEY, &wrong);
    assert_eq!(state(refused), "revoked", "{refused:#}");
    assert!(violations(refused).contains(&"dead-key-in-config".to_string()));

    // Each server on its own, with the right password and a wrong one.
    for (name, url, secret, expected) in [
        ("pg", pg.url(&password), &password, "active"),
        ("redis", redis.url(&password), &password, "active"),
        ("redis", redis.url(&wrong), &wrong, "revoked"),
    ] {
        let place_one = Place::new();
        place_one.plant("db.env", &format!("URL={url}\n"));
        let target = place_one.target();
        let args = [
            "scan",
            "--format",
            "json",
            "--verify",
            "--verify-network",
            &target,
        ];
        let report = json(&detector(&args, &place_one.home, Some(ORG_KEY)));
        let key = key_of(&report, ORG_KEY, secret);
        assert_eq!(state(key), expected, "{name}: {key:#}");
        assert_no_secret(&report.to_string(), [secret], name);
    }
}

#[test]
fn a_regional_key_is_asked_at_its_own_site_or_the_documented_default() {
    let datadog = examples()
        .into_iter()
        .find(|e| e.id == "datadog-validate")
        .expect("the Datadog verifier");
    let server = ProviderServer::start(&[
        "api.datadoghq.com",
        "api.us5.datadoghq.com",
        "api.datadoghq.eu",
    ]);
    server.set_handler(|_| Reply::json(200, r#"{"valid":true}"#));
    let key_line = datadog.plant.lines().next().unwrap().to_string();
    for (site_line, host) in [
        ("", "api.datadoghq.com"),
        ("DD_SITE=us5.datadoghq.com\n", "api.us5.datadoghq.com"),
    ] {
        let place = Place::new();
        place.plant("dd.env", &format!("{key_line}\n{site_line}"));
        server.clear();
        let report = json(&place.scan(&server, &place.target(), &[]));
        assert_eq!(state(key_of(&report, ORG_KEY, &datadog.secret)), "active");
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].sni.as_deref(), Some(host));
    }
}

#[test]
fn requests_to_one_host_stay_within_the_limit_and_the_budget() {
    let server = github_server();
    server.set_handler(|_| {
        Reply::json(200, r#"{"login":"octocat"}"#).after(Duration::from_millis(400))
    });
    let place = Place::new();
    let tokens: Vec<String> = (0..6).map(|i| github_token(100 + i)).collect();
    let text: String = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("GITHUB_TOKEN_{i}={t}\n"))
        .collect();
    place.plant(".env", &text);
    let report = json(&place.scan(&server, &place.target(), &["--verify-per-host", "2"]));
    for token in &tokens {
        assert_eq!(state(key_of(&report, ORG_KEY, token)), "active");
    }
    // Two at a time: the third request starts only when one of the first two was answered.
    let mut arrivals: Vec<_> = server.requests().iter().map(|r| r.at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 6);
    for window in arrivals.windows(3) {
        let spread = window[2].duration_since(window[0]);
        assert!(
            spread >= Duration::from_millis(350),
            "three requests in flight at once ({spread:?} apart)"
        );
    }

    // A budget spent before every key was asked: the rest are unknown, and say why.
    server.clear();
    let report = json(&place.scan(
        &server,
        &place.target(),
        &[
            "--verify-refresh",
            "--verify-per-host",
            "1",
            "--verify-budget",
            "1s",
        ],
    ));
    let unknown: Vec<&Value> = tokens
        .iter()
        .map(|t| key_of(&report, ORG_KEY, t))
        .filter(|k| state(k) == "unknown")
        .collect();
    assert!(unknown.len() >= 3, "{report:#}");
    for key in unknown {
        let detail = key["verification"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("budget") || detail.contains("in time"),
            "{detail}"
        );
    }
}

/// An HTTP CONNECT proxy on loopback that tunnels every request to `to`, recording the
/// CONNECT targets it was asked for.
fn connect_proxy(to: std::net::SocketAddr) -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = Arc::clone(&asked);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                record.lock().unwrap().push(line.trim().to_string());
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let upstream = std::net::TcpStream::connect(to).unwrap();
                let mut client_w = client;
                client_w
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_r = upstream.try_clone().unwrap();
                let mut client_r = client_w.try_clone().unwrap();
                let mut up_w = upstream;
                let buffered = reader.buffer().to_vec();
                up_w.write_all(&buffered).unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut client_w);
                });
                let _ = std::io::copy(&mut client_r, &mut up_w);
            });
        }
    });
    (port, asked)
}

#[test]
fn https_proxy_is_honoured() {
    let server = github_server();
    let token = github_token(121);
    answer_by_token(&server, std::slice::from_ref(&token));
    let (proxy_port, asked) = connect_proxy(server.addr());
    let place = Place::new();
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    let mut cmd =
        kit::run::detector_command(Path::new(crate::DETECTOR), &[], &place.home, Some(ORG_KEY));
    cmd.args(["scan", &place.target(), "--format", "json", "--verify"]);
    cmd.args(["--verify-ca", &server.ca_file().display().to_string()]);
    cmd.env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    let output = kit::run::run_with_deadline(cmd, kit::run::deadline(), "verify through a proxy");
    let report = json(&output);
    assert_eq!(
        state(key_of(&report, ORG_KEY, &token)),
        "active",
        "{}",
        stderr(&output)
    );
    assert_eq!(
        asked.lock().unwrap().as_slice(),
        ["CONNECT api.github.com:443 HTTP/1.1"],
        "the request went through the proxy, to the provider's own host"
    );
    assert_eq!(server.requests()[0].sni.as_deref(), Some("api.github.com"));
}

#[test]
fn revoke_on_a_terminal_asks_and_takes_the_answer() {
    let Some(script) = kit::run::which("script") else {
        kit::guard::skip("no script(1) to give revoke a terminal (util-linux)");
        return;
    };
    let server = github_server();
    server.set_handler(|_| Reply::json(202, "{}"));
    let place = Place::new();
    let token = github_token(131);
    place.plant(".env", &format!("GITHUB_TOKEN={token}\n"));
    let fp = fingerprint(ORG_KEY.as_bytes(), &token);
    let words: Vec<String> = [
        crate::DETECTOR.to_string(),
        "revoke".into(),
        fp,
        place.target(),
    ]
    .into_iter()
    .chain(server.resolve_args())
    .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
    .collect();
    for (answer, outcome, requests) in [("n", "not-confirmed", 0), ("y", "revoked", 1)] {
        server.clear();
        let mut cmd = std::process::Command::new(&script);
        cmd.args(["-qec", &words.join(" "), "/dev/null"])
            .env("HOME", &place.home)
            .env("DETECTOR_ORG_KEY", ORG_KEY)
            .env("NO_COLOR", "1")
            .env_remove("XDG_CACHE_HOME")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            // The prompt comes after a scan: give it time to ask before the answer arrives.
            std::thread::sleep(Duration::from_secs(2));
            writeln!(stdin, "{answer}").unwrap();
        }
        let output = child.wait_with_output().unwrap();
        let text = stdout(&output);
        assert!(
            text.contains("Revoke the GitHub key"),
            "no question asked: {text}"
        );
        assert!(
            text.contains(&format!("\"outcome\":\"{outcome}\"")),
            "{answer}: {text}"
        );
        assert_no_secret(&text, [&token], "the terminal");
        assert_eq!(server.count(), requests, "{answer}");
    }
}

#[test]
fn a_key_of_a_self_managed_instance_is_not_judged_by_the_hosted_service() {
    let server = ProviderServer::start(&["gitlab.com", "gitlab.acme.internal", "api.github.com"]);
    server.set_handler(|_| Reply::json(401, r#"{"message":"401 Unauthorized"}"#));
    let gitlab = key(&["gl", "pat-"].concat(), ALNUM, 20, 141);
    let github = github_token(142);
    let place = Place::new();
    place.plant(
        "mcp.json",
        &format!(
            r#"{{"mcpServers": {{
  "gitlab": {{"command": "npx", "args": ["-y", "@modelcontextprotocol/server-gitlab"],
    "env": {{"GITLAB_PERSONAL_ACCESS_TOKEN": "{gitlab}", "GITLAB_API_URL": "https://gitlab.acme.internal/api/v4"}}}},
  "github": {{"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
    "env": {{"GITHUB_PERSONAL_ACCESS_TOKEN": "{github}", "GITHUB_API_URL": "https://github.acme.internal/api/v3"}}}}
}}}}"#
        ),
    );
    let report = json(&place.scan(&server, &place.target(), &[]));
    for secret in [&gitlab, &github] {
        let key = key_of(&report, ORG_KEY, secret);
        assert_eq!(state(key), "unknown", "{key:#}");
        assert!(!violations(key).contains(&"dead-key-in-config".to_string()));
    }
    assert_eq!(
        server.count(),
        0,
        "a self-managed instance's key went to the hosted service"
    );

    // Terraform Enterprise, named by the variable its CLI reads.
    let terraform = examples()
        .into_iter()
        .find(|e| e.id == "terraform-cloud-account")
        .expect("the HCP Terraform verifier");
    place.plant("mcp.json", "{}");
    place.plant(
        "tf.env",
        &format!("TFE_HOSTNAME=tfe.acme.internal\n{}", terraform.plant),
    );
    let report = json(&place.scan(&server, &place.target(), &["--verify-refresh"]));
    assert_eq!(
        state(key_of(&report, ORG_KEY, &terraform.secret)),
        "unknown"
    );
    assert_eq!(server.count(), 0);
    std::fs::remove_file(place.dir.join("tf.env")).unwrap();

    // Named as the hosted service itself, it is asked there.
    place.plant(
        "mcp.json",
        &format!("GITLAB_URL=https://gitlab.com\nGITLAB_TOKEN={gitlab}\n"),
    );
    let report = json(&place.scan(&server, &place.target(), &["--verify-refresh"]));
    assert_eq!(state(key_of(&report, ORG_KEY, &gitlab)), "revoked");
    assert_eq!(server.requests()[0].sni.as_deref(), Some("gitlab.com"));
}

/// The inventory keeps what providers said: a key removed from the file but still in git
/// history is "fixed, still in history" while GitHub still takes it, and "revoked" from the
/// run in which GitHub first refused it.
#[test]
fn the_inventory_remembers_when_a_provider_first_said_revoked() {
    let repo = kit::git::Repo::temporary();
    let token = github_token(21);
    repo.commit(
        "2024-01-01",
        &[(".env", &format!("GITHUB_TOKEN={token}\n"))],
        "add",
    );
    let server = github_server();
    let place = Place::new();
    let target = format!("git:{}", repo.dir.display());
    let store = format!("sqlite:{}", place.home.join("inventory.sqlite").display());
    let inventory = || {
        let out = detector(
            &["report", "--store", &store, "--format", "json"],
            &place.home,
            Some(ORG_KEY),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let inventory = json(&out);
        let fp = fingerprint(ORG_KEY.as_bytes(), &token);
        let key = inventory["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["fingerprint"] == fp.as_str())
            .unwrap_or_else(|| panic!("no key in {inventory:#}"))
            .clone();
        key
    };

    answer_by_token(&server, std::slice::from_ref(&token));
    let output = place.scan(&server, &target, &["--store", &store]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(inventory()["state"], "open");
    assert_eq!(inventory()["verification"]["state"], "active");

    // Out of the file, still in history, still working.
    repo.commit(
        "2024-02-01",
        &[(".env", "GITHUB_TOKEN=${GITHUB_TOKEN}\n")],
        "use the environment",
    );
    place.scan(&server, &target, &["--store", &store]);
    let key = inventory();
    assert_eq!(key["state"], "fixed-still-in-history", "{key:#}");
    assert_eq!(key["revoked_at"], Value::Null);
    assert!(!key["now"].as_array().unwrap().is_empty(), "{key:#}");

    // GitHub refuses it now.
    answer_by_token(&server, &[]);
    let output = place.scan(&server, &target, &["--store", &store, "--verify-refresh"]);
    let checked = key_of(&json(&output), ORG_KEY, &token)["verification"]["checked_at"].clone();
    let key = inventory();
    assert_eq!(key["state"], "revoked", "{key:#}");
    assert_eq!(key["verification"]["state"], "revoked");
    assert_eq!(key["revoked_at"], checked);
    assert_eq!(key["verification"]["checked_at"], checked);
}
