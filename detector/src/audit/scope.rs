//! Which environment a key serves, inferred from the words around it: server names, config
//! paths, variable names, project names, and the key's own prefix (`sk_live_` vs `sk_test_`).
use std::collections::BTreeSet;

use super::key::Environment;

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
/// and at lower-to-upper case changes (`stripeProd`).
pub fn environments_in(text: &str) -> BTreeSet<Environment> {
    words(text)
        .iter()
        .filter_map(|w| word_environment(w))
        .collect()
}

fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in text.chars() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
