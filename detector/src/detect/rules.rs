//! Detection rules as data: the TOML schema, loading (built-in or from a directory) and the
//! checks a rule must pass before the engine accepts it. The schema is documented for rule
//! authors in `rules/README.md`.
use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{RegexProblem, RuleError, RuleProblem};
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

use crate::verify::spec::Verifier;

static BUILTIN_RULES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../rules");

/// The widest window a rule may ask for around a keyword hit.
pub const MAX_WINDOW: usize = 1024 * 1024;

/// How bad a leak of this kind of secret is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A text the rule must match, capturing exactly `secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub secret: String,
}

/// A key value the provider itself publishes in its documentation as an example (AWS's
/// example access key, the sample test key of Stripe's API reference). Anyone can read it on
/// the provider's page, so a match equal to it is never a leaked key: the engine drops it,
/// whichever rule matched (see `Engine::is_published`). Written in a
/// rule file as `[[published_examples]]` naming its rule, and proven by `detector rules
/// check`: the rule's regex matches it (in `text`, or the value alone) and the engine drops it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedExample {
    /// The id of the rule whose regex matches the value.
    pub rule: String,
    /// The value exactly as the provider publishes it.
    pub secret: String,
    /// The provider's page (https) where the value is published.
    pub source: String,
    /// Optional context the rule's regex needs around the value (a name-anchored rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A secret prefix that tells which environment a key belongs to (`sk_live_` → production).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentHint {
    pub prefix: String,
    pub environment: String,
}

/// One detection rule, as written in `rules/*.toml` under `[[rules]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Built in: its regex is compiled by the test suite (`rules check`), so the engine may
    /// compile it when a keyword of it is first met rather than before a scan starts.
    #[serde(skip)]
    pub proven: bool,
    pub id: String,
    pub provider: String,
    pub description: String,
    pub severity: Severity,
    /// Rust `regex` syntax, compiled over bytes with Unicode classes off. Exactly one capture
    /// group, or a group named `secret`, captures the secret.
    pub regex: String,
    /// Lowercase literals, matched ASCII case-insensitively; each must occur inside a match.
    /// Empty: the rule runs over the whole blob.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Every keyword starts a word in every match (the regex has `\b` or a non-word byte
    /// before it): a hit right after a letter, digit or `_` (`setup_` for `up_`) runs no regex.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keywords_start_words: bool,
    /// Minimum Shannon entropy (bits per byte) of the captured secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_entropy: Option<f64>,
    /// The captured value must be a literal: not a reference (`${VAR}`, `op://…`), placeholder,
    /// path, URL without credentials, number, boolean or code expression.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_literal: bool,
    /// The name the value is assigned to, when the text shows one, must be a secret name
    /// (see [`super::names`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_secret_name: bool,
    /// Where matches of two rules overlap, the higher priority wins (default 0; fallback
    /// rules such as the generic context rule are negative).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// How many bytes either side of a keyword hit the regex runs over. Default: the regex's
    /// longest possible match, or 1024 when it has none (unbounded repetition). Set it for
    /// unbounded regexes with long matches, such as private key blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_hints: Vec<EnvironmentHint>,
    /// Where the format is documented.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default)]
    pub examples: Vec<Example>,
    #[serde(default)]
    pub counter_examples: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// What the stages after the engine need to know of the rule behind a match: its name,
/// provider and severity, how it ranks against other rules that matched the same secret, and
/// what a secret's prefix says of its environment. A match carries it (shared), so the audit
/// never needs the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMeta {
    pub id: String,
    pub provider: String,
    pub description: String,
    pub severity: Severity,
    /// Preference among rules that matched the same secret: on equal severity the lower
    /// rank (the rule loaded first) wins; [`RuleMeta::FALLBACK_RANK`] for findings that no
    /// rule made, which lose to any rule.
    pub rank: usize,
    pub environment_hints: Vec<EnvironmentHint>,
}

impl RuleMeta {
    /// The rank of findings no rule made (a literal in a secret field).
    pub const FALLBACK_RANK: usize = usize::MAX;

    pub fn of(rule: &Rule, rank: usize) -> RuleMeta {
        RuleMeta {
            id: rule.id.clone(),
            provider: rule.provider.clone(),
            description: rule.description.clone(),
            severity: rule.severity,
            rank,
            environment_hints: rule.environment_hints.clone(),
        }
    }

    /// The environment a secret of this rule belongs to, when its prefix tells.
    pub fn environment(&self, secret: &str) -> Option<&str> {
        self.environment_hints
            .iter()
            .find(|h| secret.starts_with(&h.prefix))
            .map(|h| h.environment.as_str())
    }

    pub fn is_fallback(&self) -> bool {
        self.rank == RuleMeta::FALLBACK_RANK
    }

    /// Whether the rule knows whose key it found: not the context rule, not a fallback (an
    /// MCP or credential-file literal of unknown provider).
    pub fn names_provider(&self) -> bool {
        !matches!(self.provider.as_str(), "Generic" | "unknown" | "") && !self.is_fallback()
    }
}

impl Rule {
    /// Everything about the rule that can be proven without compiling it for the engine.
    fn validate(&self) -> Result<(), RuleProblem> {
        let id = || self.id.clone();
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(RuleProblem::Id(id()));
        }
        for keyword in &self.keywords {
            if keyword.is_empty() {
                return Err(RuleProblem::EmptyKeyword { id: id() });
            }
            if keyword.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(RuleProblem::UppercaseKeyword {
                    id: id(),
                    keyword: keyword.clone(),
                });
            }
        }
        if let Some(window) = self.window {
            if window == 0 || window > MAX_WINDOW {
                return Err(RuleProblem::Window { id: id(), window });
            }
        }
        if let Some(entropy) = self.min_entropy {
            if !(0.0..=8.0).contains(&entropy) {
                return Err(RuleProblem::Entropy { id: id(), entropy });
            }
        }
        secret_group(self).map_err(|problem| problem.of(&self.id))?;
        Ok(())
    }
}

/// Parse a rule's regex with the syntax the engine compiles it with.
pub(crate) fn parse_regex(pattern: &str) -> Result<regex_syntax::hir::Hir, RegexProblem> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| RegexProblem::Invalid(e.to_string()))
}

/// Index of the capture group holding the secret: the group named `secret`, else the only one.
pub(crate) fn secret_group(rule: &Rule) -> Result<usize, RegexProblem> {
    secret_group_in(&parse_regex(&rule.regex)?)
}

/// [`secret_group`] of a parsed regex.
pub(crate) fn secret_group_in(hir: &regex_syntax::hir::Hir) -> Result<usize, RegexProblem> {
    let mut names = Vec::new();
    collect_group_names(hir, &mut names);
    if let Some((index, _)) = names.iter().find(|(_, n)| n.as_deref() == Some("secret")) {
        return Ok(*index as usize);
    }
    match names.len() {
        1 => Ok(names[0].0 as usize),
        0 => Err(RegexProblem::NoGroup),
        n => Err(RegexProblem::Groups(n)),
    }
}

fn collect_group_names(hir: &regex_syntax::hir::Hir, out: &mut Vec<(u32, Option<String>)>) {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(cap) => {
            out.push((cap.index, cap.name.as_ref().map(|n| n.to_string())));
            collect_group_names(&cap.sub, out);
        }
        HirKind::Concat(subs) | HirKind::Alternation(subs) => {
            for sub in subs {
                collect_group_names(sub, out);
            }
        }
        HirKind::Repetition(rep) => collect_group_names(&rep.sub, out),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_) => {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<Rule>,
    /// The vocabulary of secret names, in the file of the context rule that uses it.
    #[serde(default)]
    #[allow(dead_code)]
    secret_names: Option<super::names::SecretNames>,
    /// The providers' own example values of the file's rules.
    #[serde(default)]
    published_examples: Vec<PublishedExample>,
    /// How the provider is asked whether a key of the file's rules still works.
    #[serde(default)]
    verifiers: Vec<Verifier>,
}

/// An ordered set of rules with unique ids, and the published example values of those rules.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    published: Vec<PublishedExample>,
    verifiers: Vec<Verifier>,
}

impl RuleSet {
    pub fn new() -> RuleSet {
        RuleSet::default()
    }

    /// The published example values of the built-in rule files, read without the rules
    /// (which `builtin` parses and checks; a file that does not parse gives none here).
    pub(crate) fn builtin_published() -> Vec<PublishedExample> {
        #[derive(Deserialize)]
        struct Published {
            #[serde(default)]
            published_examples: Vec<PublishedExample>,
        }
        BUILTIN_RULES
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            .filter_map(|f| toml::from_str::<Published>(f.contents_utf8()?).ok())
            .flat_map(|p| p.published_examples)
            .collect()
    }

    /// The rules under `rules/` at build time, compiled into the binary.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        let mut files: Vec<(&Path, &str)> = Vec::new();
        for file in BUILTIN_RULES.files() {
            if file.path().extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = file
                .contents_utf8()
                .ok_or_else(|| RuleError::NotUtf8(file.path().to_path_buf()))?;
            files.push((file.path(), text));
        }
        files.sort_by_key(|(path, _)| *path);
        let mut set = RuleSet::new();
        set.add_files(
            files
                .into_iter()
                .map(|(path, text)| (Path::new("rules").join(path), text.into())),
        )?;
        for rule in &mut set.rules {
            rule.proven = true;
        }
        Ok(set)
    }

    /// Every `*.toml` (except `policy*`) directly in `dir`, in file-name order.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleError> {
        let read = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |error| RuleError::Read { path, what, error }
        };
        let entries = std::fs::read_dir(dir).map_err(read("cannot read rules directory", dir))?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(read("cannot list", dir))?;
            let path = entry.path();
            if is_rule_file(&path) && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text =
                crate::source::fs::read_named_text(&path).map_err(read("cannot read", &path))?;
            files.push((path, text.into()));
        }
        let mut set = RuleSet::new();
        set.add_files(files)?;
        Ok(set)
    }

    /// Parse one rule file's text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::new();
        set.add_file(path, text)?;
        Ok(set)
    }

    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), RuleError> {
        let file = read_file(path, text)?;
        self.absorb(path, file)
    }

    /// Add one file's rules, read by [`read_file`]: an id another file already gave is an
    /// error.
    fn absorb(&mut self, path: &Path, file: RuleFile) -> Result<(), RuleError> {
        for rule in file.rules {
            if self.rules.iter().any(|r| r.id == rule.id) {
                return Err(RuleError::Duplicate {
                    path: path.to_path_buf(),
                    id: rule.id,
                });
            }
            self.rules.push(rule);
        }
        self.published.extend(file.published_examples);
        for verifier in file.verifiers {
            if self.verifiers.iter().any(|v| v.id == verifier.id) {
                return Err(RuleError::Syntax {
                    path: path.to_path_buf(),
                    reason: format!("verifier {} is defined twice", verifier.id),
                });
            }
            self.verifiers.push(verifier);
        }
        Ok(())
    }

    /// Files read (in parallel), then added in the order given: the first bad file in that
    /// order is the error.
    fn add_files<'a>(
        &mut self,
        files: impl IntoIterator<Item = (PathBuf, std::borrow::Cow<'a, str>)>,
    ) -> Result<(), RuleError> {
        let files: Vec<(PathBuf, std::borrow::Cow<'a, str>)> = files.into_iter().collect();
        let read = super::map_in_threads(&files, |(path, text)| read_file(path, text));
        for ((path, _), file) in files.iter().zip(read) {
            self.absorb(path, file?)?;
        }
        Ok(())
    }

    /// Add `other`'s rules; a rule whose id already exists replaces the existing one in place.
    pub fn extend(&mut self, other: RuleSet) {
        self.published
            .retain(|p| !other.rules.iter().any(|r| r.id == p.rule));
        self.published.extend(other.published);
        for verifier in other.verifiers {
            match self.verifiers.iter_mut().find(|v| v.id == verifier.id) {
                Some(existing) => *existing = verifier,
                None => self.verifiers.push(verifier),
            }
        }
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(existing) => *existing = rule,
                None => self.rules.push(rule),
            }
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The published example values of the set's rules.
    pub fn published_examples(&self) -> &[PublishedExample] {
        &self.published
    }

    /// How keys of the rules are checked with their providers (`--verify`).
    pub fn verifiers(&self) -> &[Verifier] {
        &self.verifiers
    }

    /// The verifier of `rule`: the last one loaded that names it (`--rules` replaces).
    pub fn verifier_of(&self, rule: &str) -> Option<&Verifier> {
        self.verifiers
            .iter()
            .rev()
            .find(|v| v.rules.iter().any(|r| r == rule))
    }

    /// The rules and the published example values, for the engine.
    pub fn into_parts(self) -> (Vec<Rule>, Vec<PublishedExample>) {
        (self.rules, self.published)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// One rule file's text parsed and checked on its own: each rule valid, no id twice, each
/// published example naming one of its rules, non-empty, with an https source.
fn read_file(path: &Path, text: &str) -> Result<RuleFile, RuleError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| RuleError::Syntax {
        path: path.to_path_buf(),
        reason: e.to_string().trim_end().to_string(),
    })?;
    for (i, rule) in file.rules.iter().enumerate() {
        rule.validate().map_err(|problem| RuleError::Invalid {
            path: path.to_path_buf(),
            problem,
        })?;
        if file.rules[..i].iter().any(|r| r.id == rule.id) {
            return Err(RuleError::Duplicate {
                path: path.to_path_buf(),
                id: rule.id.clone(),
            });
        }
    }
    for verifier in &file.verifiers {
        verifier.validate().map_err(|reason| RuleError::Syntax {
            path: path.to_path_buf(),
            reason,
        })?;
    }
    for example in &file.published_examples {
        let problem = if !file.rules.iter().any(|r| r.id == example.rule) {
            Some(format!(
                "published example {:?} names rule {}, which this file does not define",
                example.secret, example.rule
            ))
        } else if example.secret.trim().is_empty() {
            Some(format!("rule {}: published example is empty", example.rule))
        } else if !example.source.starts_with("https://") {
            Some(format!(
                "rule {}: published example {:?} needs the https page that publishes it \
                 as its source",
                example.rule, example.secret
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(RuleError::Syntax {
                path: path.to_path_buf(),
                reason,
            });
        }
    }
    Ok(file)
}

impl From<Vec<Rule>> for RuleSet {
    fn from(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules,
            published: Vec::new(),
            verifiers: Vec::new(),
        }
    }
}

/// `*.toml` of a `--rules` directory, except the agent's `policy*` files, which a deployment
/// may keep beside its own rules (`/etc/detector/`).
fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.extension().is_some_and(|e| e == "toml") && !name.starts_with("policy")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_RULE: &str = r#"
[[rules]]
id = "demo-token"
provider = "Demo"
description = "Demo token"
severity = "high"
regex = '''\b(demo_[a-z0-9]{8})\b'''
keywords = ["demo_"]
"#;

    #[test]
    fn severity_orders_and_prints_lowercase() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert_eq!(format!("{:>6}", Severity::Low), "   low");
    }

    #[test]
    fn parses_and_extends_by_id() {
        let mut set = RuleSet::parse(Path::new("a.toml"), ONE_RULE).unwrap();
        let mut replaced = set.rules()[0].clone();
        replaced.description = "Replaced".into();
        set.extend(RuleSet::from(vec![replaced]));
        assert_eq!(set.len(), 1);
        assert_eq!(set.rules()[0].description, "Replaced");
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let err = RuleSet::parse(Path::new("bad.toml"), "[[rules]]\nid = 3")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.toml: "), "{err}");

        let two_groups = ONE_RULE.replace(r"(demo_[a-z0-9]{8})", r"(demo_)([a-z0-9]{8})");
        let err = RuleSet::parse(Path::new("groups.toml"), &two_groups)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("groups.toml") && err.contains("demo-token"),
            "{err}"
        );
        assert!(err.contains("2 capture groups"), "{err}");

        let upper = ONE_RULE.replace(r#"["demo_"]"#, r#"["DEMO_"]"#);
        let err = RuleSet::parse(Path::new("k.toml"), &upper)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lowercase"), "{err}");
    }

    #[test]
    fn named_secret_group_wins() {
        let named = ONE_RULE.replace(r"(demo_[a-z0-9]{8})", r"(demo_)(?P<secret>[a-z0-9]{8})");
        let set = RuleSet::parse(Path::new("n.toml"), &named).unwrap();
        assert_eq!(secret_group(&set.rules()[0]).unwrap(), 2);
    }

    #[test]
    fn builtin_rules_load() {
        let set = RuleSet::builtin().unwrap();
        assert!(set.len() >= 80, "only {} built-in rules", set.len());
    }
}
