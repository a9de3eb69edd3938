//! What can be wrong with rules: a file that cannot be read or parsed, a rule that breaks the
//! schema's checks, a regex that does not compile. Every message names the file or rule.
use std::path::PathBuf;

use super::rules::MAX_WINDOW;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule file or directory that could not be read.
    #[error("{}: {what}: {error}", path.display())]
    Read {
        path: PathBuf,
        what: &'static str,
        error: std::io::Error,
    },
    #[error("built-in {}: not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    /// Not TOML of the rules schema.
    #[error("{}: {reason}", path.display())]
    Syntax { path: PathBuf, reason: String },
    /// A rule of the file breaks the schema's checks.
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: RuleProblem },
    #[error("{}: rule {id} is defined twice in this rule set", path.display())]
    Duplicate { path: PathBuf, id: String },
    /// A rule that loaded but does not compile.
    #[error("{0}")]
    Compile(RuleProblem),
    #[error("building the keyword prefilter: {0}")]
    Prefilter(String),
}

/// What is wrong with one rule.
#[derive(Debug, thiserror::Error)]
pub enum RuleProblem {
    #[error("rule id {0:?} must be non-empty lowercase kebab-case")]
    Id(String),
    #[error("rule {id}: empty keyword")]
    EmptyKeyword { id: String },
    #[error("rule {id}: keyword {keyword:?} must be lowercase")]
    UppercaseKeyword { id: String, keyword: String },
    #[error("rule {id}: window {window} is outside 1..={MAX_WINDOW}")]
    Window { id: String, window: usize },
    #[error("rule {id}: min_entropy {entropy} is outside 0..=8")]
    Entropy { id: String, entropy: f64 },
    #[error("rule {id}: {problem}")]
    Regex { id: String, problem: RegexProblem },
}

/// What is wrong with a rule's regex.
#[derive(Debug, thiserror::Error)]
pub enum RegexProblem {
    #[error("invalid regex: {0}")]
    Invalid(String),
    #[error("regex has no capture group for the secret")]
    NoGroup,
    #[error("regex has {0} capture groups: name the secret's `(?P<secret>…)` or use one")]
    Groups(usize),
    #[error("compiling its regex: {0}")]
    Compile(String),
}

impl RegexProblem {
    pub(crate) fn of(self, id: &str) -> RuleProblem {
        RuleProblem::Regex {
            id: id.to_string(),
            problem: self,
        }
    }
}
