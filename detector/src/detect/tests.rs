//! Engine behaviour over the built-in rules. Fake keys are assembled at run time so that this
//! file holds nothing key-shaped.
use std::sync::OnceLock;

use super::*;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(RuleSet::builtin().unwrap()).unwrap())
}

fn github_token() -> String {
    ["ghp_", &"a1B2c3D4e5F6".repeat(3)].concat()
}

fn rule_id(m: &Match) -> &str {
    &m.rule.id
}

/// (rule id, secret) of every match.
fn found(text: &str) -> Vec<(String, String)> {
    engine()
        .scan(text.as_bytes())
        .into_iter()
        .map(|m| (rule_id(&m).to_string(), m.secret))
        .collect()
}

#[test]
fn engine_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}

#[test]
fn same_secret_twice_is_one_match_with_two_spans() {
    let key = github_token();
    let text = format!("first line\nGITHUB_TOKEN={key}\n\n  \"token\": \"{key}\"\n");
    let matches = engine().scan(text.as_bytes());
    assert_eq!(matches.len(), 1, "{matches:?}");
    let m = &matches[0];
    assert_eq!(rule_id(m), "github-pat-classic");
    assert_eq!(m.secret, key);
    let first = text.find(&key).unwrap();
    let second = text.rfind(&key).unwrap();
    assert_eq!(
        m.spans,
        vec![
            Span {
                start: first,
                end: first + key.len(),
                line: 2,
                column: 14
            },
            Span {
                start: second,
                end: second + key.len(),
                line: 4,
                column: 13
            },
        ]
    );
    assert_eq!(m.slot.as_deref(), Some("GITHUB_TOKEN"));
}

#[test]
fn detector_allow_suppresses_only_its_line() {
    let key = github_token();
    let text = format!("a = \"{key}\" # detector:allow\nb = \"{key}\"\n");
    let matches = engine().scan(text.as_bytes());
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].spans.len(), 1);
    assert_eq!(matches[0].spans[0].line, 2);

    let only_allowed = format!("{key} // detector:allow");
    assert!(engine().scan(only_allowed.as_bytes()).is_empty());
}

#[test]
fn context_rule_accepts_literals_in_every_config_shape() {
    let scavio = ["sc-live-", "9f8e7d6c5b4a3f2e1d0c"].concat();
    let foo = ["Zq4", "Lm8Rt2Vx6Nb1"].concat();
    let docker = ["k9", "Hd73Jf62Ls91Pq"].concat();
    let cases = [
        (
            format!("{{\"env\": {{\"SCAVIO_API_KEY\": \"{scavio}\"}}}}"),
            scavio.clone(),
            "SCAVIO_API_KEY",
        ),
        (
            format!("export FOO_TOKEN={foo}\n"),
            foo.clone(),
            "FOO_TOKEN",
        ),
        (
            format!("FROM node:20\nENV X_API_KEY={docker}\n"),
            docker.clone(),
            "X_API_KEY",
        ),
        (
            format!("ENV X_API_KEY {docker}\n"),
            docker.clone(),
            "X_API_KEY",
        ),
        (
            format!("[env]\nSCAVIO_API_KEY = \"{scavio}\"\n"),
            scavio.clone(),
            "SCAVIO_API_KEY",
        ),
        (
            format!("env:\n  FOO_TOKEN: {foo}\n"),
            foo.clone(),
            "FOO_TOKEN",
        ),
        (format!("FOO_TOKEN={foo}"), foo.clone(), "FOO_TOKEN"),
        (
            format!("\"args\": [\"-y\", \"acme-mcp\", \"--api-key\", \"{docker}\"]"),
            docker.clone(),
            "api-key",
        ),
        (
            format!("npx -y acme-mcp --token {foo}"),
            foo.clone(),
            "token",
        ),
    ];
    for (text, secret, slot) in cases {
        let matches = engine().scan(text.as_bytes());
        assert_eq!(matches.len(), 1, "{text}: {matches:?}");
        assert_eq!(rule_id(&matches[0]), "generic-secret-assignment", "{text}");
        assert_eq!(matches[0].secret, secret, "{text}");
        assert_eq!(matches[0].slot.as_deref(), Some(slot), "{text}");
    }
}

#[test]
fn context_rule_rejects_references_and_placeholders() {
    for text in [
        "\"OPENAI_API_KEY\": \"${OPENAI_API_KEY}\"",
        "OPENAI_API_KEY=$OPENAI_API_KEY",
        "\"OPENAI_API_KEY\": \"{env:OPENAI_API_KEY}\"",
        "token: ${{ secrets.GITHUB_TOKEN }}",
        "\"apiKey\": \"${input:openai-key}\"",
        "OPENAI_API_KEY=op://Private/OpenAI/credential",
        "OPENAI_API_KEY=$(pass show openai)",
        "OPENAI_API_KEY=your-api-key-here",
        "\"OPENAI_API_KEY\": \"<YOUR_KEY>\"",
        "OPENAI_API_KEY=xxxxxxxxxxxxxxxxxxxx",
        "DB_PASSWORD=changeme",
        "OPENAI_API_KEY=sk-...",
        "OPENAI_API_KEY=\"\"",
        "OPENAI_API_KEY=short1",
        "GOOGLE_TOKEN=/home/me/.config/token.json",
        "AUTH_TOKEN=https://auth.example.org/token",
        "SESSION_TOKEN=86400000",
        "ENABLE_TOKEN=true",
        "api_key = settings.OPENAI_API_KEY",
    ] {
        assert_eq!(found(text), Vec::<(String, String)>::new(), "{text}");
    }
}

#[test]
fn adjacent_matches_sharing_a_boundary_byte_are_all_found() {
    let a = ["Zq4", "Lm8Rt2Vx6Nb1"].concat();
    let b = ["k9", "Hd73Jf62Ls91Pq"].concat();
    // The first match ends by consuming the newline (or space) the second needs before it.
    for text in [
        format!("A_TOKEN={a}\nB_TOKEN={b}\n"),
        format!("A_TOKEN={a} B_TOKEN={b}"),
    ] {
        let got: Vec<String> = found(&text).into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, vec![a.clone(), b.clone()], "{text}");
    }
    let bot = |id: &str| [id, ":AA", &"h7Rk2Lq9Xw4Zm1Tb6Yc3Vn8Pd5Sf0Gj2Ke"[..33]].concat();
    let (t1, t2) = (bot("583920174"), bot("790312458"));
    let got: Vec<String> = found(&format!("{t1},{t2}"))
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(got, vec![t1, t2]);
}

#[test]
fn provider_rule_wins_over_the_context_rule() {
    let key = github_token();
    let text = format!("\"env\": {{\"GITHUB_PERSONAL_ACCESS_TOKEN\": \"{key}\"}}");
    assert_eq!(found(&text), vec![("github-pat-classic".to_string(), key)]);
}

#[test]
fn a_blob_with_several_providers() {
    let github = github_token();
    let stripe = ["sk_live_", &"4eC39HqLyjWDarjtT1zdp7dc".repeat(2)].concat();
    let slack = [
        "xoxb-",
        "123456789012-",
        "1234567890123-",
        &"AbCdEfGhIjKl".repeat(2),
    ]
    .concat();
    let aws_id = ["AKIA", "Q3EGRTZ6WLYX5NVD"].concat();
    let aws_secret = ["wJal", &"rXUtnFMI7K".repeat(3), "bPxRfi"].concat();
    let openai = [
        "sk-proj-",
        "Ab3Cd4Ef5Gh6Ij7Kl8Mn9Op0Qr1St2",
        "T3BlbkFJ",
        "Uv3Wx4Yz5aB6cD7eF8gH9iJ0kL1mN2",
    ]
    .concat();
    let text = format!(
        "# .env\nGITHUB_TOKEN={github}\nSTRIPE_SECRET_KEY={stripe}\n\
         SLACK_BOT_TOKEN={slack} # detector:allow\n\
         aws_access_key_id = {aws_id}\naws_secret_access_key = {aws_secret}\n\
         OPENAI_API_KEY=${{OPENAI_API_KEY}}\nANTHROPIC_API_KEY=your-api-key-here\n\
         {{\"OPENAI_API_KEY\": \"{openai}\"}}\n"
    );
    let mut got = found(&text);
    got.sort();
    let mut want = vec![
        ("github-pat-classic".to_string(), github),
        ("stripe-secret-key-live".to_string(), stripe.clone()),
        ("aws-access-key-id".to_string(), aws_id),
        ("aws-secret-access-key".to_string(), aws_secret),
        ("openai-project-key".to_string(), openai),
    ];
    want.sort();
    assert_eq!(got, want);
    let matches = engine().scan(text.as_bytes());
    let stripe_match = matches.iter().find(|m| m.secret == stripe).unwrap();
    assert_eq!(
        stripe_match.rule.environment(&stripe_match.secret),
        Some("production")
    );
    assert_eq!(stripe_match.spans[0].line, 3);
}

#[test]
fn keys_at_the_edges_of_a_blob() {
    let key = github_token();
    // The blob is only the key; the key starts the blob; the key ends the blob.
    assert_eq!(found(&key).len(), 1);
    assert_eq!(found(&format!("{key}\n{}", "x".repeat(5000))).len(), 1);
    let tail = format!("{}\n{key}", "y ".repeat(5000));
    let matches = engine().scan(tail.as_bytes());
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].spans[0].end, tail.len());
    assert_eq!(matches[0].spans[0].line, 2);
    assert_eq!(matches[0].spans[0].column, 1);
    // Glued to a word character on either side: not a token boundary, no match.
    assert!(found(&format!("a{key}")).is_empty());
    assert!(found(&format!("{key}b")).is_empty());
    // Word characters far before the window do not matter.
    assert_eq!(found(&format!("{} {key}", "z".repeat(3000))).len(), 1);
}

#[test]
fn keys_far_apart_in_a_large_blob() {
    let key = github_token();
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("line {i} with nothing to see here, token-free\n"));
    }
    text.push_str(&format!("GITHUB_TOKEN={key}\n"));
    text.push_str(&"filler text\n".repeat(20_000));
    text.push_str(&format!("again {key}"));
    let matches = engine().scan(text.as_bytes());
    assert_eq!(matches.len(), 1);
    let lines: Vec<usize> = matches[0].spans.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![201, 20_202]);
    assert_eq!(matches[0].spans[1].column, 7);
}

#[test]
fn keywords_match_case_insensitively_and_rules_without_keywords_run_everywhere() {
    let rules = RuleSet::parse(
        std::path::Path::new("t.toml"),
        r#"
[[rules]]
id = "demo-token"
provider = "Demo"
description = "Demo"
severity = "low"
regex = '''(?i)\b(demo_[a-z0-9]{8})\b'''
keywords = ["demo_"]

[[rules]]
id = "everywhere"
provider = "Demo"
description = "No keywords"
severity = "low"
regex = '''\b(zz[0-9]{6})\b'''
"#,
    )
    .unwrap();
    let engine = Engine::new(rules).unwrap();
    let text = "x DEMO_ab12cd34 y zz123456";
    let got: Vec<(usize, String)> = engine
        .scan(text.as_bytes())
        .into_iter()
        .map(|m| (m.rule.rank, m.secret))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "DEMO_ab12cd34".to_string()),
            (1, "zz123456".to_string())
        ]
    );
}

#[test]
fn slots_are_read_from_the_assignment() {
    let key = github_token();
    let cases = [
        (format!("GITHUB_TOKEN={key}"), Some("GITHUB_TOKEN")),
        (
            format!("  \"GITHUB_TOKEN\": \"{key}\","),
            Some("GITHUB_TOKEN"),
        ),
        (
            format!("export GITHUB_TOKEN=\"{key}\""),
            Some("GITHUB_TOKEN"),
        ),
        (format!("ENV GITHUB_TOKEN={key}"), Some("GITHUB_TOKEN")),
        (
            format!("\"Authorization\": \"Bearer {key}\""),
            Some("Authorization"),
        ),
        (format!("clone with {key} please"), None),
    ];
    for (text, slot) in cases {
        let matches = engine().scan(text.as_bytes());
        assert_eq!(matches.len(), 1, "{text}");
        assert_eq!(matches[0].slot.as_deref(), slot, "{text}");
    }
}

#[test]
fn builtin_rules_prove_their_examples() {
    let report = check_rules(engine());
    assert!(report.is_ok(), "{:#?}", report.failures);
    assert!(report.rules >= 400, "{} rules", report.rules);
}

/// Each built-in rule names the provider's own documentation of its format: a web page.
#[test]
fn builtin_rules_name_their_sources() {
    for rule in engine().rules() {
        assert!(
            rule.references.iter().all(|r| r.starts_with("https://")),
            "{}: {:?}",
            rule.id,
            rule.references
        );
    }
}

#[test]
fn a_failing_example_is_reported() {
    let rules = RuleSet::parse(
        std::path::Path::new("t.toml"),
        r#"
[[rules]]
id = "demo-token"
provider = "Demo"
description = "Demo"
severity = "low"
regex = '''\b(demo_[a-z0-9]{8})\b'''
keywords = ["demo_"]
references = ["https://demo.example/docs/tokens"]
examples = [{ text = "demo_ab12cd34", secret = "demo_" }, { text = "nothing", secret = "x" }]
counter_examples = ["demo_99887766"]

[[rules]]
id = "undocumented-token"
provider = "Demo"
description = "Demo"
severity = "low"
regex = '''\b(undoc_[a-z0-9]{8})\b'''
keywords = ["undoc_"]
"#,
    )
    .unwrap();
    let report = check_rules(&Engine::new(rules).unwrap());
    let failures: Vec<String> = report.failures.iter().map(|f| f.to_string()).collect();
    assert_eq!(report.failures.len(), 6, "{failures:#?}");
    assert!(matches!(report.failures[0], Failure::WrongSecret { .. }));
    assert!(matches!(report.failures[1], Failure::NoMatch { .. }));
    assert!(matches!(
        report.failures[2],
        Failure::CounterExampleMatched { .. }
    ));
    // A rule with no source and nothing to prove it is not a rule yet.
    assert_eq!(
        failures[3..],
        [
            "undocumented-token: no references (where the provider documents the format)",
            "undocumented-token: no examples",
            "undocumented-token: no counter-examples",
        ]
    );
}

/// A key value a provider publishes in its documentation is not reported, by its own rule or
/// the context rule; a different key of the same shape still is.
#[test]
fn published_examples_are_not_reported() {
    let set = RuleSet::builtin().unwrap();
    let published = set
        .published_examples()
        .iter()
        .find(|p| p.rule == "stripe-secret-key-test")
        .expect("Stripe's sample test key is listed")
        .secret
        .clone();
    let engine = engine();
    let (prefix, body) = published.split_at("sk_test_".len());
    // Same prefix, length and alphabet: the body reversed.
    let other = [prefix, &body.chars().rev().collect::<String>()].concat();
    for text in [
        format!("STRIPE_SECRET_KEY={published}"),
        format!("curl https://api.stripe.com/v1/charges -u {published}:"),
        format!("\"STRIPE_API_KEY\": \"{published}\""),
    ] {
        let reported = engine.scan(text.as_bytes());
        assert!(reported.is_empty(), "{text}: {reported:?}");
    }
    assert_eq!(
        found(&format!("STRIPE_SECRET_KEY={other}")),
        [("stripe-secret-key-test".to_string(), other.clone())],
        "{other}"
    );
}

#[test]
fn published_examples_are_proven_by_check() {
    let report = check_rules(engine());
    assert!(report.published_examples >= 7, "{report:?}");
    // Field classification knows the built-in ones, every one of them.
    let published = RuleSet::builtin().unwrap().published_examples().to_vec();
    assert_eq!(published, RuleSet::builtin_published());
    assert!(published
        .iter()
        .all(|p| crate::detect::placeholder::is_published_example(p.secret.as_bytes())));
    // A published example that the rule's regex does not match proves nothing; one the engine
    // still reports is not dropped.
    let rules = RuleSet::parse(
        std::path::Path::new("p.toml"),
        r#"
[[rules]]
id = "demo-token"
provider = "Demo"
description = "Demo"
severity = "low"
regex = '''\b(demo_[a-z0-9]{8})\b'''
keywords = ["demo_"]
references = ["https://demo.example/docs/tokens"]
examples = [{ text = "demo_k3x9q2w7", secret = "demo_k3x9q2w7" }]
counter_examples = ["demo_1234"]

[[published_examples]]
rule = "demo-token"
secret = "demo_TOOLONG_value"
source = "https://demo.example/docs/tokens"
"#,
    )
    .unwrap();
    let report = check_rules(&Engine::new(rules).unwrap());
    assert_eq!(report.published_examples, 1);
    assert!(
        matches!(
            report.failures.as_slice(),
            [Failure::PublishedExampleNoMatch { .. }]
        ),
        "{:#?}",
        report.failures
    );
}

#[test]
fn published_examples_need_their_rule_and_an_https_source() {
    let rule = r#"
[[rules]]
id = "demo-token"
provider = "Demo"
description = "Demo"
severity = "low"
regex = '''\b(demo_[a-z0-9]{8})\b'''
keywords = ["demo_"]
"#;
    for (published, problem) in [
        (
            "rule = \"other-token\"\nsecret = \"demo_k3x9q2w7\"\nsource = \"https://demo.example\"",
            "does not define",
        ),
        (
            "rule = \"demo-token\"\nsecret = \"demo_k3x9q2w7\"\nsource = \"http://demo.example\"",
            "https",
        ),
    ] {
        let text = format!("{rule}\n[[published_examples]]\n{published}\n");
        let err = RuleSet::parse(std::path::Path::new("p.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.toml: ") && err.contains(problem),
            "{err}"
        );
    }
}

/// Built-in rules compile when their keywords are first met, so a scan of one small file
/// compiles next to nothing; a rule from a rules directory compiles at once, so a bad one
/// fails before anything is read.
#[test]
fn built_in_regexes_compile_on_first_use_and_user_rules_at_once() {
    let engine = Engine::new(RuleSet::builtin().unwrap()).unwrap();
    assert_eq!(engine.compiled_regexes(), 0);
    let text = format!("token = {}", github_token());
    let found = engine.scan(text.as_bytes());
    assert!(
        found.iter().any(|m| m.rule.id.starts_with("github")),
        "{found:?}"
    );
    let compiled = engine.compiled_regexes();
    assert!(
        (1..20).contains(&compiled),
        "{compiled} compiled for one line"
    );
    // The same line again finds the same: the compiled regex is kept.
    assert_eq!(engine.scan(text.as_bytes()).len(), found.len());

    let dir = tempfile::tempdir().unwrap();
    let rule = "[[rules]]\nid = \"too-big\"\nprovider = \"Test\"\ndescription = \"x\"\nseverity = \"low\"\nregex = '''key=(\\w{1000}){1000}'''\nkeywords = [\"key=\"]\n";
    std::fs::write(dir.path().join("big.toml"), rule).unwrap();
    let mut rules = RuleSet::builtin().unwrap();
    rules.extend(RuleSet::load_dir(dir.path()).unwrap());
    match Engine::new(rules) {
        Ok(_) => panic!("a regex over the size limit compiled"),
        Err(e) => assert!(e.to_string().contains("too-big"), "{e}"),
    }
}
