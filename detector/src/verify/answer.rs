//! A provider's answer → what it says of the key, and what it says of the account.
use super::spec::{ResponseRule, State};

/// A provider's answer, its body parsed once (as JSON, when it is).
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    json: Option<serde_json::Value>,
}

impl<'a> Answer<'a> {
    pub fn new(status: u16, headers: &'a [(String, String)], body: &[u8]) -> Answer<'a> {
        Answer {
            status,
            headers,
            json: serde_json::from_slice(body).ok(),
        }
    }

    /// The state the first matching rule gives, or `None` when none matches.
    pub fn judge(&self, rules: &[ResponseRule]) -> Option<State> {
        rules
            .iter()
            .find(|rule| {
                rule.status.contains(&self.status)
                    && rule.json.iter().all(|(pointer, expected)| {
                        self.pointer(pointer).is_some_and(|v| v == expected)
                    })
            })
            .map(|rule| rule.state)
    }

    /// `name=value, …` of the pointers and headers asked for (see [`detail`]).
    pub fn detail(&self, wanted: &[String], secrets: &[&str]) -> String {
        detail(wanted, self, secrets)
    }

    fn pointer(&self, pointer: &str) -> Option<&serde_json::Value> {
        self.json.as_ref().and_then(|j| j.pointer(pointer))
    }
}

/// The most a detail value may hold.
const MAX_VALUE: usize = 80;

/// `name=value, …` of the pointers and headers asked for, each value cut short and made
/// printable; a value that holds any of `secrets` is left out.
fn detail(wanted: &[String], answer: &Answer, secrets: &[&str]) -> String {
    let mut parts = Vec::new();
    for want in wanted {
        let (name, value) = match want.strip_prefix("header:") {
            Some(header) => (
                header.to_ascii_lowercase(),
                answer
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(header))
                    .map(|(_, v)| v.clone()),
            ),
            None => (
                want.rsplit('/').next().unwrap_or(want).to_string(),
                answer.pointer(want).and_then(scalar),
            ),
        };
        let Some(value) = value else { continue };
        if value.is_empty() || secrets.iter().any(|s| !s.is_empty() && value.contains(s)) {
            continue;
        }
        parts.push(format!("{name}={}", printable(&value)));
    }
    parts.join(", ")
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().filter_map(scalar).collect();
            (!items.is_empty()).then(|| items.join(" "))
        }
        _ => None,
    }
}

fn printable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_VALUE)
        .collect();
    if value.chars().count() > MAX_VALUE {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn first_matching_rule_wins_and_json_must_equal() {
        let rules = vec![
            ResponseRule {
                status: vec![200],
                json: BTreeMap::from([("/ok".to_string(), serde_json::json!(true))]),
                state: State::Active,
            },
            ResponseRule {
                status: vec![200],
                json: BTreeMap::from([("/ok".to_string(), serde_json::json!(false))]),
                state: State::Revoked,
            },
        ];
        let judge = |status, body: &[u8]| Answer::new(status, &[], body).judge(&rules);
        assert_eq!(judge(200, br#"{"ok":true}"#), Some(State::Active));
        assert_eq!(judge(200, br#"{"ok":false}"#), Some(State::Revoked));
        assert_eq!(judge(200, b"not json"), None);
        assert_eq!(judge(401, br#"{"ok":true}"#), None);
    }

    #[test]
    fn detail_never_echoes_the_key() {
        let body = br#"{"login":"octo","token":"sk-1","scopes":["repo","gist"]}"#;
        let wanted = vec![
            "/login".into(),
            "/token".into(),
            "/scopes".into(),
            "header:X-Plan".into(),
        ];
        let headers = vec![("x-plan".to_string(), "free\u{1b}[1m".to_string())];
        assert_eq!(
            Answer::new(200, &headers, body).detail(&wanted, &["sk-1"]),
            "login=octo, scopes=repo gist, x-plan=free [1m"
        );
    }
}
