//! Secret names: does a variable, field, header, flag or parameter name hold a secret? The
//! vocabulary is data, the `[secret_names]` table of `rules/generic.toml`, next to the context
//! rule that uses it; the parsers of MCP configs and credential files ask the same question
//! here, so what counts as a secret name is written down once.
use std::sync::LazyLock;

use serde::Deserialize;

/// The file that holds the vocabulary (and the context rule).
const GENERIC_RULES: &str = include_str!("../../../rules/generic.toml");

/// The `[secret_names]` table (see its comments for what each list means).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretNames {
    words: Vec<String>,
    words_not_alone: Vec<String>,
    word_endings: Vec<String>,
    not_words: Vec<String>,
    word_parts: Vec<String>,
    not_word_prefixes: Vec<NotPrefix>,
    not_last: Vec<String>,
    switches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotPrefix {
    prefix: String,
    unless: String,
}

#[derive(Deserialize)]
struct GenericFile {
    secret_names: SecretNames,
}

static VOCABULARY: LazyLock<SecretNames> = LazyLock::new(|| {
    toml::from_str::<GenericFile>(GENERIC_RULES)
        .map(|file| file.secret_names)
        // Proven by the tests below and by `rules check`: the built-in file always parses.
        .unwrap_or_default()
});

/// Does this name hold a secret (`OPENAI_API_KEY`, `apiKey`, `Authorization`, `--token`)?
pub fn is_secret_name(name: &str) -> bool {
    VOCABULARY.holds_secret(name)
}

impl SecretNames {
    pub fn holds_secret(&self, name: &str) -> bool {
        let words = words(name);
        let (Some(first), Some(last)) = (words.first(), words.last()) else {
            return false;
        };
        if self.not_last.contains(last) || self.switches.contains(first) {
            return false;
        }
        words
            .iter()
            .any(|word| self.is_secret_word(word, words.len()))
    }

    fn is_secret_word(&self, word: &str, of: usize) -> bool {
        let listed = |list: &[String]| list.iter().any(|w| w == word);
        listed(&self.words)
            || (of > 1 && listed(&self.words_not_alone))
            || (self.word_endings.iter().any(|e| word.ends_with(e.as_str()))
                && !listed(&self.not_words))
            || (self.word_parts.iter().any(|p| word.contains(p.as_str()))
                && !self
                    .not_word_prefixes
                    .iter()
                    .any(|n| word.starts_with(&n.prefix) && !word.starts_with(&n.unless)))
    }
}

/// Upper-case words of a name: `OPENAI_API_KEY`, `apiKey`, `X-Api-Key`, `--api-key`.
pub fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = !current.is_empty()
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
                    && chars[i - 1].is_ascii_uppercase());
        if boundary {
            words.push(std::mem::take(&mut current));
        }
        current.push(c.to_ascii_uppercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_loads_from_the_rules() {
        let file: GenericFile = toml::from_str(GENERIC_RULES).expect("[secret_names] parses");
        assert!(!file.secret_names.words.is_empty());
        assert_eq!(*VOCABULARY, file.secret_names);
    }

    #[test]
    fn secret_names() {
        for name in [
            "OPENAI_API_KEY",
            "apiKey",
            "X-Api-Key",
            "Authorization",
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "api-key",
            "DB_PASS",
            "DB_PWD",
            "PGPASSWORD",
            "SENTRY_DSN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "x-goog-api-key",
            "accessToken",
            "client_secret",
            "SLACK_BOT_TOKEN",
            "token",
            "key",
            "AUTH",
            "Proxy-Authorization",
            "OAUTH_CLIENT_SECRET",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "SLACK_TEAM_ID",
            "OAUTH_CLIENT_ID",
            "GITHUB_TOKEN_PATH",
            "PWD",
            "AUTHOR_NAME",
            "Content-Type",
            "NODE_ENV",
            "KEYBOARD_LAYOUT",
            "monkey",
            "BYPASS",
            "AUTH_URL",
            "bearer_token_env_var",
            "no-auth",
            "auth-server",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn word_splitting() {
        assert_eq!(words("XApiKey"), vec!["X", "API", "KEY"]);
        assert_eq!(words("OPENAI_API_KEY"), vec!["OPENAI", "API", "KEY"]);
        assert_eq!(words("--api-key"), vec!["API", "KEY"]);
        assert_eq!(words("githubPAT"), vec!["GITHUB", "PAT"]);
    }
}
