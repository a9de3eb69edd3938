use std::{path::PathBuf, sync::Arc};

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::{
    detect::{RuleMeta, Severity},
    source::{DiskFile, Provenance},
};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
}

fn auditor(show_secrets: bool) -> Auditor {
    Auditor::new(
        OrgKey::from_bytes(b"test-org", "test"),
        AuditOptions {
            show_secrets,
            max_age_days: 90,
            now: now(),
        },
    )
}

fn rule(id: &str, severity: Severity, rank: usize) -> Arc<RuleMeta> {
    Arc::new(RuleMeta {
        id: id.to_string(),
        provider: "Example".to_string(),
        description: String::new(),
        severity,
        rank,
        environment_hints: Vec::new(),
    })
}

fn finding(secret: &str, path: &str, project: &str, context: &[&str]) -> Finding {
    Finding {
        secret: secret.to_string(),
        rule: rule("example-key", Severity::High, 0),
        location: Location {
            line: Some(1),
            column: Some(5),
            ..Location::at(Provenance {
                path: PathBuf::from(path),
                origin: Origin::File(DiskFile {
                    mtime: Some(now() - Duration::days(10)),
                    mode: Some(0o600),
                    ..DiskFile::default()
                }),
                backup: None,
            })
        },
        project: project.to_string(),
        mcp_servers: Vec::new(),
        context: context.iter().map(|s| s.to_string()).collect(),
        credential: None,
    }
}

/// The file a test finding is in.
fn disk_file(finding: &mut Finding) -> &mut DiskFile {
    match &mut finding.location.provenance.origin {
        Origin::File(file) | Origin::McpConfig(file) => file,
        other => panic!("not a file: {other:?}"),
    }
}

fn secret() -> String {
    ["exk_", &"Zq7".repeat(10)].concat()
}

#[test]
fn one_key_per_secret_with_every_location() {
    let s = secret();
    let mut a = finding(&s, "/p/api/.env", "/p/api", &["api/.env"]);
    disk_file(&mut a).mtime = Some(now() - Duration::days(120));
    let b = finding(&s, "/p/web/.env", "/p/web", &["web/.env"]);
    let other = finding(
        &["exk_", &"Yw3".repeat(10)].concat(),
        "/p/web/.env",
        "/p/web",
        &[],
    );
    let keys = auditor(false).keys(vec![a, b.clone(), b, other]);
    assert_eq!(keys.len(), 2);
    let key = keys
        .iter()
        .find(|k| k.locations.len() == 2)
        .expect("the shared key");
    assert_eq!(key.scope.projects, ["/p/api", "/p/web"]);
    assert!(key.violations.contains(&Violation::SharedAcrossProjects));
    assert_eq!(key.status, Status::Live);
    assert_eq!(key.age_days, Some(120));
    assert!(key.overdue);
    assert!(key.violations.contains(&Violation::Overdue));
    assert_eq!(key.first_seen, Some(now() - Duration::days(120)));
    assert_eq!(key.last_seen, Some(now() - Duration::days(10)));
    assert_eq!(key.secret, None);
    assert_eq!(key.redacted, redact(&s));
    assert!(key.fingerprint.starts_with("hmac-sha256:"));
    assert!(!serde_json::to_string(&keys).unwrap().contains(&s));
}

#[test]
fn secrets_appear_only_when_asked() {
    let s = secret();
    let keys = auditor(true).keys(vec![finding(&s, "/p/a", "/p", &[])]);
    assert_eq!(keys[0].secret.as_deref(), Some(s.as_str()));
}

#[test]
fn environments_and_dev_prod_reuse() {
    let s = secret();
    let keys = auditor(false).keys(vec![
        finding(&s, "/p/a", "/p", &["stripe-prod"]),
        finding(&s, "/p/b", "/p", &["STRIPE_DEV_KEY"]),
    ]);
    assert_eq!(
        keys[0].scope.environments,
        [Environment::Production, Environment::Development]
    );
    assert!(keys[0].violations.contains(&Violation::DevProdReuse));

    let keys = auditor(false).keys(vec![finding(&s, "/p/a", "/p", &["github"])]);
    assert_eq!(keys[0].scope.environments, [Environment::Unknown]);
    assert!(keys[0].violations.is_empty());
    assert_eq!(
        keys[0].remediation.len(),
        1,
        "revoking is always the first step"
    );
}

#[test]
fn world_readable_and_mcp_config_violations() {
    let s = secret();
    let mut f = finding(&s, "/h/.cursor/mcp.json", "user:al", &[]);
    disk_file(&mut f).mode = Some(0o644);
    let file = disk_file(&mut f).clone();
    f.location.provenance.origin = Origin::McpConfig(file);
    f.mcp_servers.push(McpServerRef {
        client: "cursor".into(),
        server: "example".into(),
        config: "/h/.cursor/mcp.json".into(),
        field: "env.EXAMPLE_KEY".into(),
        project: None,
    });
    let keys = auditor(false).keys(vec![f]);
    assert_eq!(
        keys[0].violations,
        [Violation::PlaintextInMcpConfig, Violation::WorldReadable]
    );
    assert!(keys[0]
        .remediation
        .iter()
        .any(|r| r.contains("chmod 600 /h/.cursor/mcp.json")));
    assert!(keys[0]
        .remediation
        .iter()
        .any(|r| r.contains("env.EXAMPLE_KEY")));
}

#[test]
fn a_real_rule_beats_the_mcp_fallback() {
    let s = secret();
    let mut literal = finding(&s, "/h/a.json", "user:al", &[]);
    literal.rule = Arc::new(RuleMeta {
        id: MCP_LITERAL_RULE.into(),
        provider: "unknown".into(),
        description: String::new(),
        severity: Severity::High,
        rank: RuleMeta::FALLBACK_RANK,
        environment_hints: Vec::new(),
    });
    let mut real = finding(&s, "/h/b.json", "user:al", &[]);
    real.rule = rule("example-key", Severity::Medium, 3);
    let keys = auditor(false).keys(vec![literal, real]);
    assert_eq!(keys[0].rule, "example-key");
    assert_eq!(keys[0].severity, Severity::Medium);
}

#[test]
fn backups_are_recognised() {
    let s = secret();
    let keys = auditor(false).keys(vec![finding(&s, "/h/backups/dotfiles/.env", "/h", &[])]);
    assert!(keys[0].violations.contains(&Violation::InBackup));
    let keys = auditor(false).keys(vec![finding(&s, "/h/.env.bak", "/h", &[])]);
    assert!(keys[0].violations.contains(&Violation::InBackup));
}

#[test]
fn scrubber_redacts_known_secrets() {
    let s = secret();
    let scrubber = Scrubber::new(&[finding(&s, "/a", "/", &[])], &[]);
    let text = format!("line 3: token = \"{s}\"");
    let scrubbed = scrubber.scrub(&text);
    assert!(!scrubbed.contains(&s));
    assert!(scrubbed.contains(&redact(&s)));
}
