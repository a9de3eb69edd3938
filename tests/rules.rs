//! `detector rules check|list` and `detector scan --rules`, driven through the real binary.
use std::path::Path;
use std::process::{Command, Output};

use kit::{
    keys::{fingerprint, random, HEX},
    run::{stderr, stdout},
};

use crate::DETECTOR;

const RULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules");

/// `detector ARGS…` in this process's environment (HOME and all): `rules` reads no home.
fn detector(args: &[&str]) -> Output {
    Command::new(DETECTOR)
        .args(args)
        .output()
        .expect("run detector")
}

/// The rule count of a `N rules, M examples, K counter-examples: …` summary line.
fn summary_rule_count(out: &str) -> usize {
    let line = out
        .lines()
        .find(|l| l.contains(" rules, ") && l.contains(" counter-examples"))
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn repository_rules_pass_their_own_check() {
    let output = detector(&["rules", "check", RULES_DIR]);
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "rules check failed:\n{out}\n{}",
        stderr(&output)
    );
    assert!(out.trim_end().ends_with(": ok"), "{out}");
    let rules = summary_rule_count(&out);
    assert!(rules >= 80, "only {rules} rules");
    // The providers' own example keys are proven too (captured by their rule, then dropped).
    let published: usize = out
        .split(" counter-examples, ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no published examples count in:\n{out}"));
    assert!(published >= 5, "{out}");
}

#[test]
fn builtin_rules_are_the_repository_rules() {
    let builtin = detector(&["rules", "check"]);
    assert!(builtin.status.success(), "{}", stdout(&builtin));
    let repo = detector(&["rules", "check", RULES_DIR]);
    assert_eq!(
        summary_rule_count(&stdout(&builtin)),
        summary_rule_count(&stdout(&repo))
    );
}

fn write_rules(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// A passing rule; its example key is assembled at run time so this file holds none.
fn good_rule() -> String {
    let key = ["acme_", "7f3a9c1e5b2d8046"].concat();
    format!(
        r#"
[[rules]]
id = "acme-token"
provider = "Acme"
description = "Acme API token"
severity = "high"
regex = '''\b(acme_[a-z0-9]{{16}})\b'''
keywords = ["acme_"]
references = ["https://acme.test/docs/tokens"]
examples = [{{ text = "ACME_TOKEN={key}", secret = "{key}" }}]
counter_examples = ["acme_short"]
"#
    )
}

#[test]
fn a_broken_example_fails_with_the_rule_id() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), "acme.toml", &good_rule());
    write_rules(
        dir.path(),
        "broken.toml",
        r#"
[[rules]]
id = "broken-widget-key"
provider = "Widget"
description = "Widget key whose example does not match"
severity = "low"
regex = '''\b(wk_[0-9]{10})\b'''
keywords = ["wk_"]
references = ["https://widget.test/docs/keys"]
examples = [{ text = "WIDGET_KEY=wk_abc", secret = "wk_abc" }]
counter_examples = ["WIDGET_KEY=wk_1"]
"#,
    );
    // Policy files share the directory and are not rules.
    write_rules(dir.path(), "policy.toml", "this is not a rule file = [");

    let output = detector(&["rules", "check", dir.path().to_str().unwrap()]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}\n{}", stderr(&output));
    let failures: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failures.len(), 1, "{out}");
    assert!(failures[0].contains("broken-widget-key"), "{out}");
    assert!(failures[0].contains("wk_abc"), "{out}");
    assert!(
        out.contains("2 rules, 2 examples, 2 counter-examples"),
        "{out}"
    );
}

#[test]
fn malformed_toml_is_a_load_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), "acme.toml", &good_rule());
    write_rules(
        dir.path(),
        "mangled.toml",
        "[[rules]]\nid = \"x\"\nregex = '''(unclosed\n",
    );
    let output = detector(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("mangled.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_invalid_regex_is_a_load_error_naming_file_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        "bad-regex.toml",
        &good_rule().replace("[a-z0-9]{16})", "[a-z0-9]{16}"),
    );
    let output = detector(&["rules", "check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(
        err.contains("bad-regex.toml") && err.contains("acme-token"),
        "{err}"
    );
}

#[test]
fn list_prints_builtin_and_extra_rules() {
    let output = detector(&["rules", "list"]);
    assert!(output.status.success());
    let out = stdout(&output);
    assert!(out.lines().count() >= 80);
    let github = out
        .lines()
        .find(|l| l.starts_with("github-pat-classic "))
        .expect("github rule listed");
    let fields: Vec<&str> = github.split_whitespace().collect();
    assert_eq!(&fields[..3], ["github-pat-classic", "GitHub", "critical"]);

    let dir = tempfile::tempdir().unwrap();
    write_rules(dir.path(), "acme.toml", &good_rule());
    let output = detector(&["rules", "list", "--rules", dir.path().to_str().unwrap()]);
    assert!(output.status.success());
    let extended = stdout(&output);
    assert_eq!(extended.lines().count(), out.lines().count() + 1);
    assert!(extended.lines().any(|l| l.starts_with("acme-token ")));
}

#[test]
fn scan_rules_dir_adds_a_custom_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&rules).unwrap();
    // Built at run time: no key-shaped text in this file.
    let example = ["acme_", &random(HEX, 32, 1)].concat();
    let token = ["acme_", &random(HEX, 32, 2)].concat();
    write_rules(
        &rules,
        "acme.toml",
        &format!(
            r#"
[[rules]]
id = "acme-internal-token"
provider = "Acme"
description = "Acme internal service token"
severity = "high"
regex = '''\b(acme_[a-z0-9]{{32}})\b'''
keywords = ["acme_"]
examples = [{{ text = "deploy with {example} today", secret = "{example}" }}]
"#
        ),
    );
    // No secret-named key beside it: only the custom rule knows the token.
    let notes = home.join("notes.txt");
    std::fs::write(&notes, format!("staging box\ndeploy with {token} today\n")).unwrap();
    let target = format!("file:{}", notes.display());
    let org_key = Some("rules-test-org");

    let without = crate::detector(&["scan", &target, "--format", "json"], &home, org_key);
    assert_eq!(without.status.code(), Some(0), "{}", stderr(&without));
    let report: serde_json::Value = serde_json::from_slice(&without.stdout).unwrap();
    assert_eq!(report["summary"]["keys"], 0, "{report}");

    let with = crate::detector(
        &[
            "scan",
            &target,
            "--format",
            "json",
            "--rules",
            rules.to_str().unwrap(),
        ],
        &home,
        org_key,
    );
    assert_eq!(with.status.code(), Some(1), "{}", stderr(&with));
    let out = stdout(&with);
    assert!(!out.contains(&token), "the token is shown in clear");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys = report["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{out}");
    assert_eq!(keys[0]["rule"], "acme-internal-token");
    assert_eq!(keys[0]["provider"], "Acme");
    assert_eq!(
        keys[0]["fingerprint"],
        fingerprint(b"rules-test-org", &token)
    );
    let location = &keys[0]["locations"][0];
    assert_eq!(location["path"], notes.display().to_string());
    assert_eq!(location["line"], 2);
}
