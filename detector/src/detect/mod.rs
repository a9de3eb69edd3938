//! The matching engine: rules → keyword prefilter → regex → entropy/context checks → Match.
//! It sees bytes only; where they came from is the source's business.
//!
//! Rules are data (`rules/*.toml`, compiled into the binary; schema in `rules/README.md`).
//! One Aho-Corasick pass over a blob finds every rule keyword; each hit opens a window as wide
//! as the rule's longest possible match on either side, and only there the rule's regex runs.
//! Matches are checked (entropy, literal value for context rules, `detector:allow`), overlaps
//! are settled by rule priority, and what is left is grouped by secret.
pub mod check;
mod engine;
mod error;
pub mod filter;
mod keywords;
pub mod names;
pub mod placeholder;
mod prefilter;
mod rules;
pub mod slot;
pub mod value;

pub use check::{check_rules, CheckReport, Failure};
pub use engine::{Engine, Match, Span};
pub use error::{RegexProblem, RuleError, RuleProblem};
pub use rules::{EnvironmentHint, Example, PublishedExample, Rule, RuleMeta, RuleSet, Severity};

#[cfg(test)]
mod tests;
