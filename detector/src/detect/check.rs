//! Proof that rules do what their examples say, run through the full engine (prefilter
//! keywords, windows, regex, checks) so a wrong keyword fails as surely as a wrong regex.
use std::fmt;

use super::engine::Engine;

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
    }
    report
}
