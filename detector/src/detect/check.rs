//! Proof that rules do what their examples say, run through the full engine (prefilter
//! keywords, windows, regex, checks) so a wrong keyword fails as surely as a wrong regex.
use std::fmt;

use regex_automata::meta;
use regex_automata::util::syntax;

use super::engine::Engine;
use super::rules::{secret_group, Rule};

/// What went wrong with one example or counter-example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The example produced no match for its rule.
    NoMatch { rule: String, text: String },
    /// The rule matched the example but did not capture exactly its secret.
    WrongSecret {
        rule: String,
        text: String,
        expected: String,
        captured: Vec<String>,
    },
    /// A counter-example produced a match for its rule.
    CounterExampleMatched {
        rule: String,
        text: String,
        captured: Vec<String>,
    },
    /// A published example value that the rule's regex does not capture: it is not an example
    /// of this rule's format, so listing it proves nothing.
    PublishedExampleNoMatch {
        rule: String,
        secret: String,
        text: String,
    },
    /// A published example value that a rule still reports.
    PublishedExampleReported {
        rule: String,
        secret: String,
        reported_by: Vec<String>,
    },
    /// The rule says nothing of where its format is documented, or is not proven both ways:
    /// it has no reference, no example or no counter-example.
    Unproven { rule: String, missing: &'static str },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoMatch { rule, text } => {
                write!(f, "{rule}: example does not match: {text:?}")
            }
            Failure::WrongSecret {
                rule,
                text,
                expected,
                captured,
            } => write!(
                f,
                "{rule}: example captured {captured:?} instead of {expected:?}: {text:?}"
            ),
            Failure::CounterExampleMatched {
                rule,
                text,
                captured,
            } => write!(
                f,
                "{rule}: counter-example matches, capturing {captured:?}: {text:?}"
            ),
            Failure::PublishedExampleNoMatch { rule, secret, text } => write!(
                f,
                "{rule}: published example {secret:?} is not captured by the rule's regex \
                 in {text:?}"
            ),
            Failure::PublishedExampleReported {
                rule,
                secret,
                reported_by,
            } => write!(
                f,
                "{rule}: published example {secret:?} is still reported, by {reported_by:?}"
            ),
            Failure::Unproven { rule, missing } => write!(f, "{rule}: {missing}"),
        }
    }
}

/// The outcome of checking every rule of an engine.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub rules: usize,
    pub examples: usize,
    pub counter_examples: usize,
    /// Published example values proven to match their rule's regex and to be dropped.
    pub published_examples: usize,
    pub failures: Vec<Failure>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Scan every example and counter-example of every rule.
pub fn check_rules(engine: &Engine) -> CheckReport {
    let mut report = CheckReport {
        rules: engine.rules().len(),
        ..CheckReport::default()
    };
    for (index, rule) in engine.rules().iter().enumerate() {
        let captured_by_rule = |text: &str| -> Vec<String> {
            engine
                .scan(text.as_bytes())
                .into_iter()
                .filter(|m| m.rule.rank == index)
                .map(|m| m.secret)
                .collect()
        };
        let unproven = [
            (
                rule.references.iter().all(|r| r.trim().is_empty()),
                "no references (where the provider documents the format)",
            ),
            (rule.examples.is_empty(), "no examples"),
            (rule.counter_examples.is_empty(), "no counter-examples"),
        ];
        for (_, missing) in unproven.into_iter().filter(|(lacks, _)| *lacks) {
            report.failures.push(Failure::Unproven {
                rule: rule.id.clone(),
                missing,
            });
        }
        for example in &rule.examples {
            report.examples += 1;
            let captured = captured_by_rule(&example.text);
            if captured.is_empty() {
                report.failures.push(Failure::NoMatch {
                    rule: rule.id.clone(),
                    text: example.text.clone(),
                });
            } else if captured != [example.secret.as_str()] {
                report.failures.push(Failure::WrongSecret {
                    rule: rule.id.clone(),
                    text: example.text.clone(),
                    expected: example.secret.clone(),
                    captured,
                });
            }
        }
        for text in &rule.counter_examples {
            report.counter_examples += 1;
            let captured = captured_by_rule(text);
            if !captured.is_empty() {
                report.failures.push(Failure::CounterExampleMatched {
                    rule: rule.id.clone(),
                    text: text.clone(),
                    captured,
                });
            }
        }
        check_published(engine, rule, &mut report);
    }
    report
}

/// Prove each published example of `rule` both ways: the rule's regex alone captures it (it
/// is a real example of the format, not a value of another shape), and the engine, filter
/// included, reports it for no rule.
fn check_published(engine: &Engine, rule: &Rule, report: &mut CheckReport) {
    let published: Vec<_> = engine.published_examples_of(&rule.id).cloned().collect();
    if published.is_empty() {
        return;
    }
    let regex = match secret_group(rule).map(|group| (compile(&rule.regex), group)) {
        Ok((Ok(regex), group)) => Some((regex, group)),
        _ => None,
    };
    for example in published {
        report.published_examples += 1;
        let text = example.text.as_deref().unwrap_or(&example.secret);
        let captured = regex.as_ref().is_some_and(|(regex, group)| {
            regex
                .captures_iter(text.as_bytes())
                .filter_map(|caps| caps.get_group(*group))
                .any(|span| &text.as_bytes()[span.range()] == example.secret.as_bytes())
        });
        if !captured {
            report.failures.push(Failure::PublishedExampleNoMatch {
                rule: rule.id.clone(),
                secret: example.secret.clone(),
                text: text.to_string(),
            });
        }
        let reported_by: Vec<String> = engine
            .scan(text.as_bytes())
            .into_iter()
            .filter(|m| m.secret == example.secret)
            .map(|m| m.rule.id.clone())
            .collect();
        if !reported_by.is_empty() {
            report.failures.push(Failure::PublishedExampleReported {
                rule: rule.id.clone(),
                secret: example.secret,
                reported_by,
            });
        }
    }
}

/// The rule's regex alone, compiled as the engine compiles it.
fn compile(pattern: &str) -> Result<meta::Regex, Box<meta::BuildError>> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(meta::Config::new().utf8_empty(false))
        .build(pattern)
        .map_err(Box::new)
}
