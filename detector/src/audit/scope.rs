//! Which project and environment a key serves. Projects: a file inside a git work tree read
//! for history belongs to that repository's project, a file of a home whose MCP configs were
//! read to that user; environments are inferred from the words around the key: server names,
//! config paths, variable names, project names, and the key's own prefix (`sk_live_` vs
//! `sk_test_`).
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::LazyLock,
};

use regex::Regex;

use super::{evidence::Finding, key::Environment};
use crate::detect::names::words;
use crate::source::{Blob, Origin};

/// A directory whose files all belong to one project, learnt from what a run read: a git
/// work tree scanned for history (the project is its remote URL, else its path), or a home
/// whose MCP configs were read (`user:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopeRoot {
    pub dir: PathBuf,
    pub project: String,
}

impl ScopeRoot {
    /// The scope root a blob shows, if any: a git blob's repository, the home of a
    /// user-global MCP config, or a home scanned as a directory (its files are that user's,
    /// as its MCP configs are, but for the repositories in it).
    pub fn of(blob: &Blob) -> Option<ScopeRoot> {
        let project = match blob.provenance.origin {
            Origin::Git(_) => blob.project.clone(),
            Origin::McpConfig(_) if blob.project.starts_with("user:") => blob.project.clone(),
            Origin::File(_) | Origin::ManagedStore(_) => home_label(&blob.root)?,
            _ => return None,
        };
        Some(ScopeRoot {
            dir: blob.root.clone(),
            project,
        })
    }
}

/// `user:NAME` when `root` is a home. Every file of a walk has the same root: the last answer
/// of each thread is kept.
fn home_label(root: &Path) -> Option<String> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(PathBuf, Option<String>)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((dir, label)) if dir.as_os_str() == root.as_os_str() => label.clone(),
        _ => {
            let label = crate::mcp::discover::home_user(root)
                .map(|user| crate::mcp::ConfigScope::User(user).label());
            *last = Some((root.to_path_buf(), label.clone()));
            label
        }
    })
}

/// Give each file read from disk the project of the deepest scope root that holds it, unless
/// it already names a narrower project (a project MCP config below the root). So a `.env`
/// found by `dir:$HOME` inside a repository that was also read as `git:` is that repository's
/// project, not the home's, and one key in both is not "shared across projects".
pub fn place_in_scope_roots(findings: &mut [Finding], roots: &[ScopeRoot]) {
    if roots.is_empty() {
        return;
    }
    for finding in findings.iter_mut() {
        let location = &finding.location;
        let path: &Path = match location.origin() {
            Origin::File(_)
            | Origin::McpConfig(_)
            | Origin::ManagedStore(_)
            | Origin::ArchiveMember(_) => location.provenance.file(),
            Origin::Git(_)
            | Origin::GitCommitMessage(_)
            | Origin::ImageLayer(_)
            | Origin::ImageConfig(_)
            | Origin::Container(_) => continue,
        };
        let project = finding.project.as_str();
        if project.starts_with("user:") {
            continue;
        }
        let root = roots
            .iter()
            .filter(|r| path.starts_with(&r.dir))
            // The project the source gave is a directory: a root no deeper than it says less.
            .filter(|r| r.dir.starts_with(Path::new(project)))
            .max_by_key(|r| r.dir.components().count());
        if let Some(root) = root {
            finding.project = root.project.clone();
        }
    }
}

/// The environment one word names, if any (`prod`, `staging`, `dev`, `test`, …).
fn word_environment(word: &str) -> Option<Environment> {
    Some(match word {
        "prod" | "production" | "prd" | "live" => Environment::Production,
        "staging" | "stage" | "stg" | "preprod" | "uat" => Environment::Staging,
        "dev" | "development" | "develop" => Environment::Development,
        "test" | "tests" | "testing" | "qa" | "sandbox" => Environment::Test,
        _ => return None,
    })
}

/// Environments named in free text: split into words at anything but letters and digits,
/// and at case changes (`stripeProd`).
pub fn environments_in(text: &str) -> BTreeSet<Environment> {
    words(text)
        .iter()
        .filter_map(|w| word_environment(&w.to_ascii_lowercase()))
        .collect()
}

/// The environment a key's prefix names: `sk_live_…`, `rk_test_…`, `sc-live-…`. Only the
/// short leading segments count, so random characters never do.
pub fn key_prefix_environment(secret: &str) -> Option<Environment> {
    secret
        .split(['_', '-'])
        .take(3)
        .take_while(|segment| segment.len() <= 8)
        .find_map(|segment| word_environment(&segment.to_ascii_lowercase()))
}

/// A secret-manager reference: 1Password (`op://vault/item/field`), AWS Secrets Manager and
/// SSM Parameter Store ARNs, Google Secret Manager resource names.
static SECRET_MANAGER_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"op://[^\s"'`)}]+|arn:aws[a-z-]*:(?:secretsmanager|ssm):[^\s"'`)}]+|projects/[^/\s"'`)}]+/secrets/[^/\s"'`)}]+"#,
    )
    .expect("the secret-manager id pattern compiles")
});

/// The names inside the secret-manager references in `text`, whose words may name the
/// environment of the keys kept next to them: `op://prod-vault/stripe/key` →
/// `prod-vault/stripe/key`, `arn:aws:secretsmanager:…:secret:staging/db-Ab12Cd` →
/// `staging/db`, `projects/acme-dev/secrets/stripe/versions/3` → `acme-dev/stripe`. Region,
/// account and AWS's random suffix are left out: they name no environment but could spell one.
pub fn secret_manager_ids(text: &str) -> Vec<String> {
    SECRET_MANAGER_ID
        .find_iter(text)
        .map(|m| secret_manager_name(m.as_str()))
        .filter(|name| !name.is_empty())
        .collect()
}

fn secret_manager_name(id: &str) -> String {
    if let Some(path) = id.strip_prefix("op://") {
        return path.to_string();
    }
    if let Some(rest) = id.strip_prefix("projects/") {
        return rest.replacen("/secrets/", "/", 1);
    }
    if let Some((_, name)) = id.split_once(":secret:") {
        // A full ARN ends in `-` and six random characters; a name's own last word is not
        // that random (no digit, one case).
        return match name.rsplit_once('-') {
            Some((stem, suffix)) if is_random_suffix(suffix) => stem.to_string(),
            _ => name.to_string(),
        };
    }
    if let Some((_, name)) = id.split_once(":parameter") {
        return name.to_string();
    }
    String::new()
}

fn is_random_suffix(suffix: &str) -> bool {
    suffix.len() == 6
        && suffix.chars().all(|c| c.is_ascii_alphanumeric())
        && (suffix.chars().any(|c| c.is_ascii_digit())
            || (suffix.chars().any(|c| c.is_ascii_uppercase())
                && suffix.chars().any(|c| c.is_ascii_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::{
        audit::Location,
        detect::RuleMeta,
        source::{DiskFile, GitBlob, LocationKind, Provenance},
    };

    fn found(kind: LocationKind, path: &str, project: &str) -> Finding {
        let origin = match kind {
            LocationKind::File => Origin::File(DiskFile::default()),
            LocationKind::McpConfig => Origin::McpConfig(DiskFile::default()),
            LocationKind::ManagedStore => Origin::ManagedStore(DiskFile::default()),
            LocationKind::Git => Origin::Git(GitBlob::default()),
            other => panic!("no test place of kind {other:?}"),
        };
        Finding {
            secret: "s".into(),
            rule: Arc::new(RuleMeta {
                id: "r".into(),
                provider: String::new(),
                description: String::new(),
                severity: crate::detect::Severity::High,
                rank: 0,
                environment_hints: Vec::new(),
            }),
            location: Location::at(Provenance {
                path: path.into(),
                origin,
                backup: None,
            }),
            project: project.into(),
            mcp_servers: Vec::new(),
            context: Vec::new(),
            credential: None,
        }
    }

    #[test]
    fn files_take_the_project_of_the_deepest_root_holding_them() {
        let roots = [
            ScopeRoot {
                dir: "/home/al".into(),
                project: "user:al".into(),
            },
            ScopeRoot {
                dir: "/home/al/work/app".into(),
                project: "https://git.example/org/app".into(),
            },
        ];
        let mut findings = vec![
            found(LocationKind::File, "/home/al/.bashrc", "/home/al"),
            found(LocationKind::File, "/home/al/work/app/.env", "/home/al"),
            // A project config names its own directory: the repository is that project.
            found(
                LocationKind::McpConfig,
                "/home/al/work/app/.mcp.json",
                "/home/al/work/app",
            ),
            // A project below the roots stays itself.
            found(
                LocationKind::McpConfig,
                "/home/al/work/other/.mcp.json",
                "/home/al/work/other",
            ),
            found(LocationKind::Git, ".env", "https://git.example/org/app"),
            found(LocationKind::File, "/srv/x", "/srv"),
        ];
        place_in_scope_roots(&mut findings, &roots);
        let projects: Vec<&str> = findings.iter().map(|f| f.project.as_str()).collect();
        assert_eq!(
            projects,
            [
                "user:al",
                "https://git.example/org/app",
                "https://git.example/org/app",
                "/home/al/work/other",
                "https://git.example/org/app",
                "/srv"
            ]
        );
    }

    #[test]
    fn words_name_environments() {
        let envs = environments_in("stripe-prod");
        assert_eq!(
            envs.into_iter().collect::<Vec<_>>(),
            [Environment::Production]
        );
        assert!(environments_in("github").is_empty());
        assert!(environments_in("devtools").is_empty(), "whole words only");
        assert_eq!(
            environments_in("STRIPE_TEST_KEY")
                .into_iter()
                .collect::<Vec<_>>(),
            [Environment::Test]
        );
        assert_eq!(
            environments_in("apiStaging")
                .into_iter()
                .collect::<Vec<_>>(),
            [Environment::Staging]
        );
        assert_eq!(environments_in("projects/api-dev/.mcp.json").len(), 1);
    }

    #[test]
    fn key_prefixes_name_environments() {
        let live = ["sk_live_", &"Ab9".repeat(8)].concat();
        let test = ["sk_test_", &"Ab9".repeat(8)].concat();
        assert_eq!(key_prefix_environment(&live), Some(Environment::Production));
        assert_eq!(key_prefix_environment(&test), Some(Environment::Test));
        let scavio = ["sc-live-", &"0f".repeat(12)].concat();
        assert_eq!(
            key_prefix_environment(&scavio),
            Some(Environment::Production)
        );
        let github = ["ghp_", &"test".repeat(9)].concat();
        assert_eq!(key_prefix_environment(&github), None);
    }

    #[test]
    fn secret_manager_ids_name_environments() {
        let account = "123456789012";
        let aws =
            format!("arn:aws:secretsmanager:us-east-1:{account}:secret:staging/stripe-AbC1x9");
        assert_eq!(secret_manager_ids(&aws), ["staging/stripe"]);
        let ssm = format!("arn:aws:ssm:eu-west-1:{account}:parameter/prod/db/password");
        assert_eq!(secret_manager_ids(&ssm), ["/prod/db/password"]);
        assert_eq!(
            secret_manager_ids("op read \"op://prod-vault/stripe/credential\""),
            ["prod-vault/stripe/credential"]
        );
        assert_eq!(
            secret_manager_ids("projects/acme/secrets/dev-stripe/versions/latest"),
            ["acme/dev-stripe"]
        );
        // A name's own last word stays; the environments come out of the names.
        let named = format!("arn:aws:secretsmanager:us-east-1:{account}:secret:payments-stripe");
        assert_eq!(secret_manager_ids(&named), ["payments-stripe"]);
        let envs: Vec<Environment> = [aws, ssm]
            .iter()
            .flat_map(|t| secret_manager_ids(t))
            .flat_map(|n| environments_in(&n))
            .collect();
        assert_eq!(envs, [Environment::Staging, Environment::Production]);
        assert!(secret_manager_ids("${STRIPE_KEY}").is_empty());
        assert!(secret_manager_ids("https://api.example.com/projects/x").is_empty());
    }
}
