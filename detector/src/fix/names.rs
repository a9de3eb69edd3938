//! The names keys get in the store: the variable's own name where the config gives one, else
//! the server's and the field's; a name already holding another key gets the server's name,
//! then a number, so that every reference names its own key.
use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::destination::{is_variable_name as is_variable, Destination};

pub struct Names<'d> {
    taken: BTreeMap<String, Zeroizing<String>>,
    store: &'d Destination,
}

/// `[A-Z_][A-Z0-9_]*` made of any text: letters upper-cased, the rest `_`.
pub fn variable(text: &str) -> String {
    // `apiKey` reads as `API_KEY`: a word starts where a capital follows a small letter.
    let mut out = String::new();
    let mut previous_small = false;
    for c in text.chars() {
        if c.is_ascii_uppercase() && previous_small {
            out.push('_');
        }
        previous_small = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("KEY_{out}")
    } else {
        out
    }
}

impl<'d> Names<'d> {
    pub fn new(store: &'d Destination) -> Names<'d> {
        Names {
            taken: BTreeMap::new(),
            store,
        }
    }

    /// Whether `name` may hold `secret`: free, or holding it already (in this run or in the
    /// store).
    fn fits(&mut self, name: &str, secret: &str) -> bool {
        if let Some(held) = self.taken.get(name) {
            return held.as_str() == secret;
        }
        match self.store.lookup(name) {
            Ok(Some(held)) if held.as_str() != secret => false,
            _ => {
                self.taken
                    .insert(name.to_string(), Zeroizing::new(secret.to_string()));
                true
            }
        }
    }

    /// Exactly `name` (a server reads the variable by it), or None when it holds another key.
    pub fn exact(&mut self, name: &str, secret: &str) -> Option<String> {
        (is_variable(name) && self.fits(name, secret)).then(|| name.to_string())
    }

    /// A name for `secret`: the config's own (`GITHUB_TOKEN`), else server and field
    /// (`GITHUB_AUTHORIZATION`), made distinct from names that hold other keys.
    pub fn name_for(
        &mut self,
        secret: &str,
        hint: Option<&str>,
        server: Option<&str>,
        field: Option<&str>,
    ) -> String {
        let server_part = server.map(variable);
        let base = match (hint.filter(|h| !h.is_empty()), &server_part) {
            (Some(h), _) if is_variable(h) && h.len() > 3 => h.to_string(),
            (Some(h), Some(s)) => format!("{s}_{}", variable(h)),
            (Some(h), None) => variable(h),
            (None, Some(s)) => format!("{s}_{}", variable(field.unwrap_or("KEY"))),
            (None, None) => variable(field.unwrap_or("KEY")),
        };
        let mut candidates = vec![base.clone()];
        if let Some(s) = &server_part {
            if !base.ends_with(s.as_str()) {
                candidates.push(format!("{base}_{s}"));
            }
        }
        for candidate in candidates {
            if self.fits(&candidate, secret) {
                return candidate;
            }
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|c| self.fits(c, secret))
            .expect("an unused name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_variables_and_distinct() {
        assert_eq!(variable("api-key"), "API_KEY");
        assert_eq!(variable("--x"), "X");
        assert_eq!(variable("9lives"), "KEY_9LIVES");
        assert_eq!(variable("apiKey"), "API_KEY");
        let store = Destination::EnvFile(std::path::PathBuf::from("/nonexistent/keys.env"));
        let mut names = Names::new(&store);
        let a = "a".repeat(20);
        let b = "b".repeat(20);
        assert_eq!(
            names.name_for(&a, Some("GITHUB_TOKEN"), Some("gh"), Some("env")),
            "GITHUB_TOKEN"
        );
        assert_eq!(
            names.name_for(&a, Some("GITHUB_TOKEN"), Some("gh2"), Some("env")),
            "GITHUB_TOKEN"
        );
        assert_eq!(
            names.name_for(&b, Some("GITHUB_TOKEN"), Some("work"), Some("env")),
            "GITHUB_TOKEN_WORK"
        );
        assert_eq!(names.exact("GITHUB_TOKEN", &b), None);
        assert_eq!(
            names.name_for(&b, Some("Authorization"), Some("linear"), Some("headers")),
            "LINEAR_AUTHORIZATION"
        );
    }
}
