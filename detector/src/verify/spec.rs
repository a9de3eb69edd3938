//! Verifiers as data: the `[[verifiers]]` of `rules/*.toml`, beside the rules whose keys they
//! check. Each names the provider's documented endpoint, how the key is sent, and what the
//! answers mean; its example proves the exact request and the mapping of each answer. The
//! schema is documented for authors in `rules/README.md`.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the provider says of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The provider accepted the key.
    Active,
    /// The provider refused it: revoked, deleted or never valid.
    Revoked,
    /// No answer that tells: no verifier, a timeout, a rate limit, a network refusal.
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Revoked => "revoked",
            State::Unknown => "unknown",
        }
    }
}

/// One verifier: a request that succeeds only with a working key, and what its answers mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verifier {
    /// Unique, lowercase kebab-case.
    pub id: String,
    /// The rules whose keys this verifier checks.
    pub rules: Vec<String>,
    /// The provider's page (https) that documents the endpoint and its answers.
    pub source: String,
    #[serde(flatten)]
    pub request: RequestSpec,
    /// Values the request needs besides the key, found next to it (the same file or blob):
    /// an access key ID, a site's host, an account's email.
    #[serde(default)]
    pub needs: Vec<Need>,
    /// The hosts a request may go to when the URL's host comes from a need, as the provider
    /// documents them: exact names, or `*.suffix` for one label before the suffix.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// What the answers mean, first match wins. 429 and 5xx are retried and then `unknown`
    /// whatever this says; an answer no entry matches is `unknown`.
    pub responses: Vec<ResponseRule>,
    /// What of the answer describes the account: JSON pointers into the body (`/login`), or
    /// `header:NAME`. Never the key: a value that holds it is dropped.
    #[serde(default)]
    pub detail: Vec<String>,
    /// The proof: one key, the exact request it makes, and answers with their meaning.
    pub example: Example,
    /// The provider's documented call by which a key revokes itself (`detector revoke`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Revoke>,
}

/// How the key is sent. Templates hold `{secret}` and `{NAME}` of the verifier's needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// `GET`, `POST`, `HEAD`, `DELETE`.
    pub method: String,
    /// `https://` only. A template in the path or query is percent-encoded; one in the host
    /// must be a need whose value then matches `hosts`.
    pub url: String,
    /// Header templates, sent as written with the values put in.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `Authorization: Basic base64(user:password)` from two templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<[String; 2]>,
    /// An `application/x-www-form-urlencoded` body, fields in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Vec<[String; 2]>>,
    /// A JSON body template; values put into it are JSON-string escaped (write `"{secret}"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// A request signature the provider requires instead of sending the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<Signature>,
}

/// A signing scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "scheme", rename_all = "kebab-case")]
pub enum Signature {
    /// AWS Signature Version 4: the key is the secret access key, `access_key_id` the
    /// template of its ID.
    AwsSigv4 {
        access_key_id: String,
        region: String,
        service: String,
    },
}

/// A value the request needs besides the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Need {
    /// The template name (`{name}`): lowercase letters, digits and `_`.
    pub name: String,
    /// Found in the key's file or blob: the first capture group of the match nearest the key.
    pub regex: String,
    /// What it is, for the `unknown` detail when it is missing.
    pub description: String,
    /// The value when none is found, where the provider documents one (Datadog's site is
    /// `datadoghq.com` unless the config names another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One mapping from an answer to a state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// HTTP statuses this entry takes.
    pub status: Vec<u16>,
    /// JSON pointers into the body and the value each must equal.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    pub state: State,
}

/// The proof of a verifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// The key; default: the first example secret of the verifier's first rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The needs' values, when it has needs.
    #[serde(default)]
    pub needs: BTreeMap<String, String>,
    /// The request exactly as sent: `METHOD /path?query`, then `name: value` lines (each
    /// header must be sent with that value; a value ending in `*` is a prefix), then a blank
    /// line and the body, if any. The first header line is `host: …`.
    pub request: String,
    /// Answers and what each must mean.
    pub answers: Vec<Answer>,
}

/// An answer and its meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    pub state: State,
    /// The detail the answer must give; default: none checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A key's call to revoke itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoke {
    /// The provider's page that documents the call.
    pub source: String,
    #[serde(flatten)]
    pub request: RequestSpec,
    /// Which answers mean revoked (`revoked`) and refused (`active`: the key still works).
    pub responses: Vec<ResponseRule>,
    pub example: Example,
}

impl Verifier {
    /// The problems of this entry that need no example run: ids, https, templates, needs.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |reason: String| Err(format!("verifier {}: {reason}", self.id));
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return fail("id must be lowercase kebab-case".into());
        }
        if self.rules.is_empty() {
            return fail("names no rule".into());
        }
        if !self.source.starts_with("https://") {
            return fail("needs the provider's https page that documents it as its source".into());
        }
        for need in &self.needs {
            if need.name.is_empty()
                || need.name == "secret"
                || !need
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return fail(format!(
                    "need {:?}: a lowercase name other than secret",
                    need.name
                ));
            }
            match regex::Regex::new(&need.regex) {
                Ok(re) if re.captures_len() == 2 => {}
                Ok(_) => return fail(format!("need {}: the regex needs one group", need.name)),
                Err(e) => return fail(format!("need {}: {e}", need.name)),
            }
        }
        if self.responses.is_empty() {
            return fail("says nothing of what the answers mean".into());
        }
        let names: Vec<&str> = self.needs.iter().map(|n| n.name.as_str()).collect();
        self.request.validate(&names, &self.hosts).or_else(&fail)?;
        for pointer in &self.detail {
            if !(pointer.starts_with('/') || pointer.starts_with("header:")) {
                return fail(format!(
                    "detail {pointer:?}: a JSON pointer (/a/b) or header:NAME"
                ));
            }
        }
        if let Some(revoke) = &self.revoke {
            if !revoke.source.starts_with("https://") {
                return fail("revoke needs its https source".into());
            }
            revoke
                .request
                .validate(&names, &self.hosts)
                .map_err(|e| format!("verifier {}: revoke: {e}", self.id))?;
        }
        Ok(())
    }
}

impl RequestSpec {
    fn validate(&self, needs: &[&str], hosts: &[String]) -> Result<(), String> {
        if !matches!(
            self.method.as_str(),
            "GET" | "POST" | "HEAD" | "DELETE" | "PUT"
        ) {
            return Err(format!(
                "method {:?} is not GET, POST, HEAD, PUT or DELETE",
                self.method
            ));
        }
        let Some(rest) = self.url.strip_prefix("https://") else {
            return Err(format!("url {:?} is not https", self.url));
        };
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority.contains('{') {
            if hosts.is_empty() {
                return Err("a host from a need needs the documented `hosts`".into());
            }
        } else if authority.is_empty() || authority.contains(['@', ':']) {
            return Err(format!("url {:?}: a plain host, no port or user", self.url));
        }
        let mut templates: Vec<&str> = vec![&self.url];
        templates.extend(self.headers.values().map(String::as_str));
        templates.extend(self.basic.iter().flatten().map(String::as_str));
        templates.extend(self.form.iter().flatten().flatten().map(String::as_str));
        templates.extend(self.json.as_deref());
        if let Some(Signature::AwsSigv4 { access_key_id, .. }) = &self.sign {
            templates.push(access_key_id);
        }
        for template in templates {
            for name in super::render::placeholders(template)? {
                if name != "secret" && !needs.contains(&name) {
                    return Err(format!("{{{name}}} is neither secret nor a need"));
                }
            }
        }
        if self.form.is_some() && self.json.is_some() {
            return Err("a body is a form or JSON, not both".into());
        }
        Ok(())
    }
}

/// Whether `host` is one of `patterns`: an exact name, or `*.suffix` with one DNS label
/// (letters, digits, `-`) before the suffix.
pub fn host_allowed(host: &str, patterns: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    patterns
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                }),
            None => host == pattern.to_ascii_lowercase(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_one_label() {
        let patterns = vec![
            "*.atlassian.net".to_string(),
            "api.datadoghq.eu".to_string(),
        ];
        assert!(host_allowed("acme.atlassian.net", &patterns));
        assert!(host_allowed("API.datadoghq.eu", &patterns));
        assert!(!host_allowed("atlassian.net", &patterns));
        assert!(!host_allowed("a.b.atlassian.net", &patterns));
        assert!(!host_allowed("evil.com", &patterns));
        assert!(!host_allowed("acme.atlassian.net.evil.com", &patterns));
        assert!(!host_allowed("x_y.atlassian.net", &patterns));
    }
}
