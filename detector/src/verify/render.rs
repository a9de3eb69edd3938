//! A verifier's request templates with a key's values put in: the exact request sent.
use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::spec::{host_allowed, RequestSpec, Signature};

/// What RFC 3986 leaves unescaped in a path or query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request ready to send. Its URL may hold the key: never log it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// `https://host/path?query`.
    pub url: String,
    pub host: String,
    /// `/path?query`, as sent.
    pub target: String,
    /// In the order sent, `host` not among them (the client adds it).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The key and the values found next to it.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub secret: &'a str,
    pub needs: &'a BTreeMap<String, String>,
}

/// Why a request could not be made; never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("needs {0} next to the key, and none was found")]
    Missing(String),
    #[error("the host found next to the key is not one the provider documents")]
    HostNotAllowed,
    #[error("the key holds characters that cannot be sent in a header")]
    Unsendable,
}

/// The names of `{name}` placeholders in `template` (lowercase letters, digits, `_`); other
/// braces are text (a JSON body's).
pub fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    Ok(pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Name(n) => Some(n),
            Piece::Text(_) => None,
        })
        .collect())
}

enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            out.push(Piece::Text(&rest[..open]));
            out.push(Piece::Name(&after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            out.push(Piece::Text(&rest[..open + 1]));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// `template` with each placeholder's value put in through `escape`.
fn fill(
    template: &str,
    values: Values<'_>,
    escape: impl Fn(&str) -> String,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len() + values.secret.len());
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Name("secret") => out.push_str(&escape(values.secret)),
            Piece::Name(name) => {
                let value = values
                    .needs
                    .get(name)
                    .ok_or_else(|| RenderError::Missing(name.to_string()))?;
                out.push_str(&escape(value));
            }
        }
    }
    Ok(out)
}

fn header_value(text: String) -> Result<String, RenderError> {
    if text
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        Ok(text)
    } else {
        Err(RenderError::Unsendable)
    }
}

/// The request `spec` makes for `values`, at `now` (a signature's time).
pub fn render(
    spec: &RequestSpec,
    hosts: &[String],
    values: Values<'_>,
    now: DateTime<Utc>,
) -> Result<Request, RenderError> {
    let rest = spec
        .url
        .strip_prefix("https://")
        .expect("verifier urls are checked to be https");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let host = fill(authority, values, |v| v.to_string())?.to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !host_ok || (!hosts.is_empty() && !host_allowed(&host, hosts)) {
        return Err(RenderError::HostNotAllowed);
    }
    let mut target = fill(path, values, |v| {
        utf8_percent_encode(v, COMPONENT).to_string()
    })?;
    if !target.starts_with('/') {
        target.insert(0, '/');
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, template) in &spec.headers {
        headers.push((
            name.to_ascii_lowercase(),
            header_value(fill(template, values, |v| v.to_string())?)?,
        ));
    }
    if let Some([user, password]) = &spec.basic {
        let pair = format!(
            "{}:{}",
            fill(user, values, |v| v.to_string())?,
            fill(password, values, |v| v.to_string())?
        );
        headers.push((
            "authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        ));
    }
    let mut body = Vec::new();
    if let Some(form) = &spec.form {
        let mut encoded = Vec::with_capacity(form.len());
        for [name, value] in form {
            encoded.push(format!(
                "{}={}",
                utf8_percent_encode(name, COMPONENT),
                utf8_percent_encode(&fill(value, values, |v| v.to_string())?, COMPONENT)
            ));
        }
        body = encoded.join("&").into_bytes();
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    if let Some(json) = &spec.json {
        body = fill(json, values, json_escaped)?.into_bytes();
        headers.push(("content-type".into(), "application/json".into()));
    }
    if let Some(Signature::AwsSigv4 {
        access_key_id,
        region,
        service,
    }) = &spec.sign
    {
        let id = header_value(fill(access_key_id, values, |v| v.to_string())?)?;
        let signed = super::sigv4::sign(
            &super::sigv4::Unsigned {
                method: &spec.method,
                host: &host,
                target: &target,
                headers: &headers,
                body: &body,
            },
            &super::sigv4::Credentials {
                access_key_id: &id,
                secret_access_key: values.secret,
                region,
                service,
            },
            now,
        );
        headers.extend(signed);
    }
    Ok(Request {
        method: spec.method.clone(),
        url: format!("https://{host}{target}"),
        host,
        target,
        headers,
        body,
    })
}

/// A value as the inside of a JSON string.
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RequestSpec {
        RequestSpec {
            method: "GET".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            basic: None,
            form: None,
            json: None,
            sign: None,
        }
    }

    #[test]
    fn values_are_escaped_where_they_go() {
        let needs = BTreeMap::from([("site".to_string(), "acme.atlassian.net".to_string())]);
        let values = Values {
            secret: "a/b c\"d",
            needs: &needs,
        };
        let mut s = spec("https://{site}/v1/check?key={secret}");
        s.headers.insert("X-Key".into(), "{secret}".into());
        s.json = Some(r#"{"token": "{secret}"}"#.into());
        let hosts = vec!["*.atlassian.net".to_string()];
        let r = render(&s, &hosts, values, Utc::now()).unwrap();
        assert_eq!(
            r.url,
            "https://acme.atlassian.net/v1/check?key=a%2Fb%20c%22d"
        );
        assert_eq!(r.headers[0], ("x-key".into(), "a/b c\"d".into()));
        assert_eq!(r.body, br#"{"token": "a/b c\"d"}"#);
    }

    #[test]
    fn a_host_from_the_file_must_be_documented() {
        let needs = BTreeMap::from([("site".to_string(), "evil.com/x".to_string())]);
        let values = Values {
            secret: "k",
            needs: &needs,
        };
        let hosts = vec!["*.atlassian.net".to_string()];
        let s = spec("https://{site}/rest");
        assert_eq!(
            render(&s, &hosts, values, Utc::now()),
            Err(RenderError::HostNotAllowed)
        );
        let none = BTreeMap::new();
        let missing = Values {
            secret: "k",
            needs: &none,
        };
        assert_eq!(
            render(&s, &hosts, missing, Utc::now()),
            Err(RenderError::Missing("site".into()))
        );
    }

    #[test]
    fn basic_auth_and_forms() {
        let none = BTreeMap::new();
        let values = Values {
            secret: "sk&1",
            needs: &none,
        };
        let mut s = spec("https://api.example.com/");
        s.basic = Some(["{secret}".into(), String::new()]);
        s.form = Some(vec![["token".into(), "{secret}".into()]]);
        let r = render(&s, &[], values, Utc::now()).unwrap();
        assert_eq!(r.headers[0].1, "Basic c2smMTo=");
        assert_eq!(r.body, b"token=sk%261");
        let crlf = Values {
            secret: "a\r\nb",
            needs: &none,
        };
        s.form = None;
        s.basic = None;
        s.headers.insert("X-Key".into(), "{secret}".into());
        assert_eq!(
            render(&s, &[], crlf, Utc::now()),
            Err(RenderError::Unsendable)
        );
    }
}
