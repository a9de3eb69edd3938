//! `detector rules list|check`.
use std::path::Path;
use std::process::ExitCode;

use crate::cli::RulesCommand;
use crate::commands::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::detect::{check_rules, Engine, RuleSet};
use crate::verify::check::check_verifiers;

pub fn run(command: &RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::List { rules } => list(rules.as_deref()),
        RulesCommand::Check { dir } => check(dir.as_deref()),
    }
}

/// `id  provider  severity  verifier  description`, one rule a line: built-in rules plus
/// `--rules DIR`. The verifier column names the verifier that checks the rule's keys with
/// `--verify`, or `-`.
fn list(extra: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut set = RuleSet::builtin()?;
    if let Some(dir) = extra {
        set.extend(RuleSet::load_dir(dir)?);
    }
    let rules = set.rules();
    let id_width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    let provider_width = rules.iter().map(|r| r.provider.len()).max().unwrap_or(0);
    let verifier_of = |id: &str| set.verifier_of(id).map_or("-", |v| v.id.as_str());
    let verifier_width = rules
        .iter()
        .map(|r| verifier_of(&r.id).len())
        .max()
        .unwrap_or(1);
    let mut out = String::new();
    for rule in rules {
        out.push_str(&format!(
            "{:id_width$}  {:provider_width$}  {:8}  {:verifier_width$}  {}\n",
            rule.id,
            rule.provider,
            rule.severity,
            verifier_of(&rule.id),
            rule.description
        ));
    }
    print!("{out}");
    Ok(ExitCode::from(EXIT_CLEAN))
}

/// Prove every example and counter-example of DIR's rules (default: the built-in ones).
fn check(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = match dir {
        Some(dir) => RuleSet::load_dir(dir),
        None => RuleSet::builtin(),
    };
    let (engine, verifiers) = match loaded.and_then(|set| {
        let verifiers = check_verifiers(&set);
        Ok((Engine::new(set)?, verifiers))
    }) {
        Ok(checked) => checked,
        Err(err) => {
            eprintln!("detector: {err:#}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let report = check_rules(&engine);
    for failure in report.failures.iter().map(ToString::to_string) {
        println!("FAIL {failure}");
    }
    for failure in &verifiers.failures {
        println!("FAIL verifier {failure}");
    }
    let summary = format!(
        "{} rules, {} examples, {} counter-examples, {} published examples, \
         {} verifiers ({} answers, {} revokers)",
        report.rules,
        report.examples,
        report.counter_examples,
        report.published_examples,
        verifiers.verifiers,
        verifiers.answers,
        verifiers.revokers
    );
    if report.is_ok() && verifiers.failures.is_empty() {
        println!("{summary}: ok");
        Ok(ExitCode::from(EXIT_CLEAN))
    } else {
        println!(
            "{summary}: {} failed",
            report.failures.len() + verifiers.failures.len()
        );
        Ok(ExitCode::from(EXIT_FINDINGS))
    }
}
