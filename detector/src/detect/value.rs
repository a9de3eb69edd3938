//! What a configured value is: a literal secret, a reference to one kept elsewhere, a prompt,
//! a placeholder or nothing. Shared by the context rule (references and placeholders are never
//! keys) and the MCP field classification of the report.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueClass {
    /// The secret itself, in clear.
    Literal,
    /// `${VAR}`, `${env:VAR}`, `$VAR`, `{env:VAR}`, `${{ secrets.X }}`, `%VAR%`, and a file
    /// read when the config is loaded (opencode's `{file:PATH}`, as `$(cat PATH)`).
    EnvRef,
    /// `op://…`, `$(aws secretsmanager …)`, `vault kv get`, `gcloud secrets`, … .
    SecretManager,
    /// `${input:…}`: the client prompts for it.
    InputPrompt,
    /// A reference to an orchestrator's secret object: a Kubernetes `secretKeyRef` or
    /// `secretRef`, a Compose service's `secrets:` entry.
    SecretRef,
    /// A reference to a Kubernetes ConfigMap's key (`configMapKeyRef`, `configMapRef`): given
    /// from elsewhere, but from a store not meant for secrets.
    ConfigRef,
    /// Documentation filler: `your-api-key-here`, `<YOUR_KEY>`, `xxxx`, `changeme`, `sk-...`.
    Placeholder,
    Empty,
}

impl ValueClass {
    /// Only a literal is a leaked key; everything else is how it should be done (or nothing).
    pub fn is_secret(self) -> bool {
        self == ValueClass::Literal
    }

    /// The name the report uses (`env-ref`).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueClass::Literal => "literal",
            ValueClass::EnvRef => "env-ref",
            ValueClass::SecretManager => "secret-manager",
            ValueClass::InputPrompt => "input-prompt",
            ValueClass::SecretRef => "secret-ref",
            ValueClass::ConfigRef => "config-ref",
            ValueClass::Placeholder => "placeholder",
            ValueClass::Empty => "empty",
        }
    }
}

const SECRET_MANAGER_MARKERS: &[&str] = &[
    "op://",
    "op read",
    "secretsmanager",
    "get-secret-value",
    "ssm get-parameter",
    "vault kv get",
    "vault read",
    "gcloud secrets",
    "az keyvault secret",
    "keyring get",
    "security find-generic-password",
    "pass show",
    "bw get",
    "doppler secrets",
    "infisical secrets",
    "secret-tool lookup",
    "sops -d",
    "sops --decrypt",
    // Names of a stored secret rather than the secret: AWS Parameter Store ARNs, Azure Key
    // Vault secret identifiers.
    "arn:aws:ssm:",
    ".vault.azure.net/secrets/",
];

/// A Google Secret Manager resource name, `projects/P/secrets/S` (with `/versions/V`).
fn is_gcp_secret_name(v: &str) -> bool {
    let parts: Vec<&str> = v.split('/').collect();
    let named = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    match parts.as_slice() {
        ["projects", p, "secrets", s] => named(p) && named(s),
        ["projects", p, "secrets", s, "versions", v] => named(p) && named(s) && named(v),
        _ => false,
    }
}

/// Classify one configured value (already unquoted).
pub fn classify(value: &str) -> ValueClass {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    if v.is_empty() {
        return ValueClass::Empty;
    }
    let lower = v.to_ascii_lowercase();
    let unschemed = strip_auth_scheme(&lower);
    if unschemed.starts_with("${input:") {
        return ValueClass::InputPrompt;
    }
    if SECRET_MANAGER_MARKERS.iter().any(|m| lower.contains(m)) || is_gcp_secret_name(v) {
        return ValueClass::SecretManager;
    }
    // `${VAR:-default}`: a reference, unless its default is itself a key written down.
    if let Some(default) = reference_default(strip_auth_scheme(v)) {
        if classify(default) == ValueClass::Literal {
            return ValueClass::Literal;
        }
    }
    if is_env_reference(v) || is_command_substitution(strip_auth_scheme(v)) {
        return ValueClass::EnvRef;
    }
    if is_placeholder(&lower) {
        return ValueClass::Placeholder;
    }
    ValueClass::Literal
}

/// The whole value (after an optional scheme such as `Bearer `) is a variable reference.
fn is_env_reference(v: &str) -> bool {
    let v = strip_auth_scheme(v);
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
    };
    if let Some(inner) = v.strip_prefix("${{").and_then(|s| s.strip_suffix("}}")) {
        return !inner.trim().is_empty();
    }
    if let Some(inner) = v.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
        let inner = inner.strip_prefix("env:").unwrap_or(inner);
        // `${VAR:-default}`, `${VAR:?message}`, `${VAR:+alternative}` (Compose, shells).
        let name = inner.split([':', '?', '+']).next().unwrap_or(inner);
        return ident(name);
    }
    if let Some(inner) = v.strip_prefix("{env:").and_then(|s| s.strip_suffix('}')) {
        return ident(inner);
    }
    // opencode: the file's contents, read when the config is loaded.
    if let Some(path) = v.strip_prefix("{file:").and_then(|s| s.strip_suffix('}')) {
        return !path.trim().is_empty() && !path.contains(['{', '}']);
    }
    if let Some(inner) = v.strip_prefix("{{").and_then(|s| s.strip_suffix("}}")) {
        return !inner.trim().is_empty();
    }
    if let Some(name) = v.strip_prefix('$') {
        return ident(name);
    }
    if let Some(inner) = v.strip_prefix('%').and_then(|s| s.strip_suffix('%')) {
        return ident(inner);
    }
    false
}

/// The default of `${NAME:-default}`, when it has one.
fn reference_default(v: &str) -> Option<&str> {
    let inner = v.strip_prefix("${")?.strip_suffix('}')?;
    let (name, default) = inner.split_once(":-")?;
    let ident = !name.is_empty()
        && name
            .trim_start_matches("env:")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ident && !default.is_empty()).then_some(default)
}

/// `$(…)` or a backquoted command: the value is computed when the shell runs, not stored here
/// (which secret manager, if any, the markers above tell).
fn is_command_substitution(v: &str) -> bool {
    (v.starts_with("$(") && v.ends_with(')'))
        || (v.len() > 1 && v.starts_with('`') && v.ends_with('`'))
}

/// `Bearer abc` → `abc`: the credential, not the header syntax.
pub fn strip_auth_scheme(v: &str) -> &str {
    for scheme in ["Bearer ", "bearer ", "Token ", "token ", "Basic ", "Bot "] {
        if let Some(rest) = v.strip_prefix(scheme) {
            return rest.trim();
        }
    }
    v
}

/// Documentation filler rather than a key ([`super::placeholder`]), after any auth scheme.
/// `lower` is already lower-cased.
fn is_placeholder(lower: &str) -> bool {
    super::placeholder::is_placeholder(strip_auth_scheme(lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_stored_secrets_are_secret_manager_references() {
        for name in [
            "projects/acme-prod/secrets/stripe-key",
            "projects/123456/secrets/stripe-key/versions/latest",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/stripe",
            "https://acme.vault.azure.net/secrets/stripe-key",
        ] {
            assert_eq!(classify(name), ValueClass::SecretManager, "{name}");
        }
        assert_eq!(classify("projects/a b/secrets/"), ValueClass::Literal);
    }

    #[test]
    fn auth_schemes_are_not_part_of_the_credential() {
        assert_eq!(strip_auth_scheme("Bearer abc"), "abc");
        assert_eq!(strip_auth_scheme("Bot  abc "), "abc");
        assert_eq!(strip_auth_scheme("abc"), "abc");
    }

    #[test]
    fn classifies_references() {
        for v in [
            "${OPENAI_API_KEY}",
            "${env:GITHUB_TOKEN}",
            "$TOKEN",
            "{env:X}",
            "${{ secrets.X }}",
            "Bearer ${API_KEY}",
        ] {
            assert_eq!(classify(v), ValueClass::EnvRef, "{v}");
        }
        assert_eq!(classify("${input:apiKey}"), ValueClass::InputPrompt);
        assert_eq!(classify("Bearer ${input:token}"), ValueClass::InputPrompt);
        assert_eq!(classify("$(cat ~/.config/token)"), ValueClass::EnvRef);
        for v in [
            "{file:~/.secrets/openai-key}",
            "Bearer {file:./token.txt}",
            "{file:/run/secrets/x}",
        ] {
            assert_eq!(classify(v), ValueClass::EnvRef, "{v}");
        }
        assert_eq!(classify("{file:}"), ValueClass::Placeholder);
        assert_eq!(classify("op://vault/item/field"), ValueClass::SecretManager);
        assert_eq!(
            classify("$(aws secretsmanager get-secret-value --secret-id x)"),
            ValueClass::SecretManager
        );
        assert_eq!(classify(""), ValueClass::Empty);
    }

    #[test]
    fn placeholders_are_not_keys() {
        for v in [
            "your-api-key-here",
            "<YOUR_KEY>",
            "xxxxxxxxxxxx",
            "changeme",
            "sk-...",
            "REPLACE_ME",
            "{secret}",
            "Bearer {token}",
            "***",
            "ntn_****",
            "YOUR_NOTION_TOKEN",
            "notion-token-here",
        ] {
            assert_eq!(classify(v), ValueClass::Placeholder, "{v}");
        }
        // A reference whose default is a key written down is that key; a placeholder default
        // or none is a reference.
        let key = ["sk-live-", "9f8e7d6c5b4a3f2e1d0cb7a6"].concat();
        assert_eq!(
            classify(&format!("${{OPENAI_KEY:-{key}}}")),
            ValueClass::Literal
        );
        assert_eq!(classify("${OPENAI_KEY:-}"), ValueClass::EnvRef);
        assert_eq!(classify("${OPENAI_KEY:-changeme}"), ValueClass::EnvRef);
        assert_eq!(classify("${OPENAI_KEY:?set it}"), ValueClass::EnvRef);
        assert_eq!(classify("${OPENAI_KEY?}"), ValueClass::EnvRef);
        // Template tokens of the double-brace kind are references of a templating tool.
        for v in ["{{API_KEY}}", "Bearer {{ token }}"] {
            assert_eq!(classify(v), ValueClass::EnvRef, "{v}");
        }
        let key = ["sc-live-", "9f8e7d6c5b4a3f2e1d0c"].concat();
        assert_eq!(classify(&key), ValueClass::Literal);
    }
}
