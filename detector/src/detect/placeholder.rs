//! Documentation filler in the place of a secret, in one place and at two strengths.
//!
//! [`is_filler`] is what every rule's capture is dropped for, whatever the rule: markers a
//! random key carries by chance about once in 10^4 or less (`example`, `xxxx`, a mask such as
//! `***` or `••••`, a template token in any brace style such as `{secret}`, `{{API_KEY}}` or
//! `[[token]]`, `<…>`, `...`), a value of one repeated character or of two alternating ones,
//! a run such as `123456789` or `abcdefghi`, and the dummy passwords of example connection
//! strings (`user:pass@`).
//!
//! It also drops the key values providers publish in their own documentation as examples
//! ([`is_published_example`]): the built-in rules list them (`[[published_examples]]`).
//!
//! [`is_placeholder`] is what a configured value (an MCP field, the context rule's capture) is
//! classified for: filler, and words a value may hold but a key would not (`your-…`,
//! `…-here`, `todo`, `none`, `replace`…).
use std::collections::HashSet;
use std::sync::LazyLock;

use memchr::memmem;

use super::rules::RuleSet;

/// The example values the built-in rules' providers publish: public facts, read once. A
/// configured value equal to one (an MCP field) is filler; a scan's own rule set, built-in or
/// not, drops its published values in the engine (see `Engine`).
static BUILTIN_PUBLISHED: LazyLock<HashSet<Box<[u8]>>> = LazyLock::new(|| {
    RuleSet::builtin_published()
        .iter()
        .map(|p| p.secret.as_bytes().into())
        .collect()
});

/// Whether `secret` is, byte for byte, a key value a provider publishes as an example.
pub fn is_published_example(secret: &[u8]) -> bool {
    BUILTIN_PUBLISHED.contains(secret)
}

/// Markers that make any capture filler.
const FILLER_MARKERS: &[&[u8]] = &[
    b"example",
    b"xxxx",
    b"***",
    b"...",
    // `…`, `•`, `●`: ellipses and masks as typed by documentation and dashboards.
    "\u{2026}".as_bytes(),
    "\u{2022}".as_bytes(),
    "\u{25cf}".as_bytes(),
    b"your-",
    b"your_",
    b"<",
    b">",
    // Template tokens: `{secret}`, `{{API_KEY}}`, `${…}` (references are classified before
    // they get here), `[[token]]`.
    b"{",
    b"}",
    b"[[",
    b"]]",
    b"placeholder",
    b"redacted",
    b"dummy",
    b"changeme",
];

/// Passwords that example connection strings and tutorials use (`postgres://user:pass@…`):
/// the whole captured value, case aside. Real weak passwords (`admin`, `root`, `postgres`)
/// are not here: a service that uses one is worth a finding.
const DUMMY_PASSWORDS: &[&str] = &[
    "pass",
    "password",
    "passwd",
    "pwd",
    "pw",
    "secret",
    "changeit",
    "user",
    "username",
    "foo",
    "bar",
    "foobar",
    "mypassword",
    "yourpassword",
    "mysecretpassword",
    "mysecret",
    "yoursecret",
];

/// A value that its URL shows on purpose, where `data[..end]` ends with it: the password of
/// a URL whose host is reserved for documentation (`user:pass@example.com`), or a query
/// parameter that the URL's host publishes (see [`PUBLIC_URL_PARAMETERS`]).
pub fn in_example_url(data: &[u8], end: usize) -> bool {
    password_of_example_host(data, end) || in_public_url_parameter(data, end)
}

/// Query parameters whose value the URL's service makes public, by host (the host or a
/// subdomain of it), a fragment the path must hold (empty: any path), and the parameter:
/// - the `key` of a Google Docs / Sheets URL is the document's id (the legacy
///   `spreadsheets/ccc?key=…` and `pub?key=…` links of published sheets), not an API key;
/// - the `token` of a Codecov badge URL is the repository's graphing token, which Codecov
///   puts in the badge markdown it hands out for README files
///   (https://docs.codecov.com/docs/status-badges), and Shields.io's Codecov badge takes
///   the same token: Shields only takes a token in a badge URL that can be public with no
///   consequence (https://contributing.shields.io/tutorial-authentication.html).
///
/// A value in the shape of a Google API key (`AIza…`) stays a key whatever URL holds it.
const PUBLIC_URL_PARAMETERS: &[(&str, &str, &str)] = &[
    ("docs.google.com", "", "key"),
    ("spreadsheets.google.com", "", "key"),
    ("codecov.io", "badge.svg", "token"),
    ("codecov.io", "/graphs/", "token"),
    ("img.shields.io", "/codecov/", "token"),
];

/// How far back from a value the start of its URL is looked for.
const URL_REACH: usize = 2048;

/// Whether `data[..end]` ends with the value of a query parameter listed in
/// [`PUBLIC_URL_PARAMETERS`] for the URL's host.
fn in_public_url_parameter(data: &[u8], end: usize) -> bool {
    let Some(before) = data.get(..end) else {
        return false;
    };
    let from = end.saturating_sub(URL_REACH);
    let url_byte =
        |b: &u8| !(b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`'));
    // The parameter: `?name=` or `&name=` right before the value.
    let Some(eq) = memchr::memrchr(b'=', &before[from..]).map(|i| from + i) else {
        return false;
    };
    if before[eq + 1..]
        .iter()
        .any(|b| !url_byte(b) || matches!(b, b'&' | b'?' | b'/' | b'#' | b'='))
    {
        return false;
    }
    let Some(separator) = before[from..eq]
        .iter()
        .rposition(|b| matches!(b, b'?' | b'&'))
        .map(|i| from + i)
    else {
        return false;
    };
    let name = before[separator + 1..eq].to_ascii_lowercase();
    if before[eq + 1..].starts_with(b"AIza") {
        return false;
    }
    // The URL: back from the separator to its scheme.
    let url_start = before[from..separator]
        .iter()
        .rposition(|b| !url_byte(b))
        .map_or(from, |i| from + i + 1);
    let url = &before[url_start..separator];
    let Some(scheme_end) = memmem::find(url, b"://") else {
        return false;
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host = authority
        .rsplit(|&b| b == b'@')
        .next()
        .unwrap_or(authority)
        .split(|&b| b == b':')
        .next()
        .unwrap_or(authority)
        .to_ascii_lowercase();
    let path = &rest[authority_end..];
    PUBLIC_URL_PARAMETERS
        .iter()
        .any(|(domain, fragment, parameter)| {
            name == parameter.as_bytes()
                && (host == domain.as_bytes()
                    || host.ends_with(&[b".", domain.as_bytes()].concat()))
                && (fragment.is_empty() || memmem::find(path, fragment.as_bytes()).is_some())
        })
}

/// The password of a URL whose host is reserved for documentation (RFC 2606:
/// `example.com`, `example.org`, `example.net`, and names under `.example` and `.invalid`):
/// `data[end]` is the `@` after the captured secret.
fn password_of_example_host(data: &[u8], end: usize) -> bool {
    let Some(rest) = data.get(end..).and_then(|r| r.strip_prefix(b"@")) else {
        return false;
    };
    let host_end = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        .unwrap_or(rest.len());
    let host = rest[..host_end].to_ascii_lowercase();
    let host = host.strip_suffix(b".").unwrap_or(&host);
    [&b"example.com"[..], b"example.org", b"example.net"]
        .iter()
        .any(|reserved| host == *reserved || host.ends_with(&[b".", *reserved].concat()))
        || host.ends_with(b".example")
        || host.ends_with(b".invalid")
        || host == b"example"
}

/// Words that make a configured value a placeholder, beyond filler.
const PLACEHOLDER_WORDS: &[&str] = &[
    "yourkey",
    "replace",
    "insert",
    "todo",
    "fixme",
    "-here",
    "_here",
    "here>",
    "enter-",
    "enter_",
    "put-your",
    "my-api-key",
    "my_api_key",
    "change-me",
    "change_me",
    "null",
    "none",
    "undefined",
];

/// The shortest ascending run (`123456789`, `abcdefghi`) that makes a value filler: a random
/// base62 key of 64 characters holds one by chance about once in 10^14.
const RUN: usize = 9;

/// Documentation filler in the shape of a key: AWS's `AKIA…EXAMPLE`, `ghp_xxxx…`, `sk-...`,
/// `<token>`, `{{API_KEY}}`, `ntn_****`, one repeated character, and the example values
/// providers publish ([`is_published_example`]). Every rule drops these.
pub fn is_filler(secret: &[u8]) -> bool {
    if is_published_example(secret) {
        return true;
    }
    let lower = secret.to_ascii_lowercase();
    if FILLER_MARKERS
        .iter()
        .any(|m| memmem::find(&lower, m).is_some())
    {
        return true;
    }
    if DUMMY_PASSWORDS.iter().any(|p| lower == p.as_bytes()) {
        return true;
    }
    let alnum: Vec<u8> = lower
        .iter()
        .copied()
        .filter(u8::is_ascii_alphanumeric)
        .collect();
    is_repetitive(&alnum) || has_ascending_run(&alnum)
}

/// One character repeated, or two alternating (`abababab`, `0a0a0a0a`), or nothing at all.
fn is_repetitive(alnum: &[u8]) -> bool {
    let Some(&first) = alnum.first() else {
        return true;
    };
    if alnum.iter().all(|&b| b == first) {
        return true;
    }
    alnum.len() >= 8 && alnum.chunks(2).all(|pair| pair == &alnum[..pair.len()])
}

/// [`RUN`] characters in a row that each follow the one before (`3456789ab` does not count
/// across the digit-letter gap).
fn has_ascending_run(alnum: &[u8]) -> bool {
    let mut run = 1;
    for pair in alnum.windows(2) {
        run = if pair[1] == pair[0] + 1 { run + 1 } else { 1 };
        if run >= RUN {
            return true;
        }
    }
    false
}

/// A configured value that is documentation filler rather than a key. `lower` is already
/// lower-cased (and any auth scheme such as `Bearer ` is the caller's to strip).
pub fn is_placeholder(lower: &str) -> bool {
    if is_filler(lower.as_bytes()) || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    matches!(
        lower,
        "true" | "false" | "test" | "token" | "apikey" | "api_key"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_in_the_shape_of_a_key() {
        let aws_doc_example = ["AKIA", "IOSFODNN7", "EXAMPLE"].concat();
        assert!(is_filler(aws_doc_example.as_bytes()));
        let github_filler = ["ghp_", &"x".repeat(36)].concat();
        assert!(is_filler(github_filler.as_bytes()));
        for filler in [
            "sk-\u{2026}",
            "00000000-0000-0000-0000-000000000000",
            "<token>",
            "{secret}",
            "{{API_KEY}}",
            "Bearer {token}",
            "[[token]]",
            "ntn_****",
            "sk-***",
            "sk-\u{2022}\u{2022}\u{2022}\u{2022}abcd",
            "pass",
            "Password",
            "abababababab",
            "sk-1234567890",
            "key-abcdefghijklmnop",
        ] {
            assert!(is_filler(filler.as_bytes()), "{filler}");
        }
        let key = ["sc-live-", "9f8e7d6c5b4a3f2e1d0c"].concat();
        assert!(!is_filler(key.as_bytes()));
        // Weak but real passwords are reported.
        for real in ["admin", "postgres", "Sup3r-OODbQHuu66", "abc12345xyz"] {
            assert!(!is_filler(real.as_bytes()), "{real}");
        }
    }

    #[test]
    fn passwords_of_documentation_urls() {
        let at = |text: &str| in_example_url(text.as_bytes(), text.find('@').unwrap());
        assert!(at("http://user:p%40ss@example.com/path"));
        assert!(at("https://u:secret@api.example.org"));
        assert!(at("ftp://u:x@host.example/"));
        assert!(!at("https://u:secret@example.company.com"));
        assert!(!at("postgres://app:secret@db.internal:5432/app"));
        assert!(!in_example_url(b"no at here", 3));
    }

    #[test]
    fn values_their_url_publishes() {
        let at = |url: &str, value: &str| {
            let text = format!("see {url}{value}&usp=sharing) for more");
            in_example_url(text.as_bytes(), text.find(value).unwrap() + value.len())
        };
        let id = ["0AqRtZ4kLmN8pQ2s", "UvWxYz7BcD3fGhJ5"].concat();
        assert!(at("https://docs.google.com/spreadsheets/ccc?key=", &id));
        assert!(at("https://spreadsheets.google.com/pub?key=", &id));
        assert!(at(
            "https://docs.google.com/document/d/1Qb7/edit?usp=x&key=",
            &id
        ));
        assert!(at(
            "https://codecov.io/gh/acme/w/branch/main/graph/badge.svg?token=",
            "Q8ZK2M4TJX"
        ));
        assert!(at(
            "https://img.shields.io/codecov/c/gh/acme/w?logo=codecov&style=flat-square&token=",
            "Q8ZK2M4TJX"
        ));
        // Another host, another parameter, or a non-badge Codecov URL is not public.
        assert!(!at("https://img.shields.io/github/x?token=", "Q8ZK2M4TJX"));
        assert!(!at("https://api.acme.io/v1?key=", &id));
        assert!(!at("https://docs.google.com.evil.io/x?key=", &id));
        assert!(!at("https://docs.google.com/x?api_key=", &id));
        assert!(!at("https://codecov.io/upload/v4?token=", "Q8ZK2M4TJX"));
        assert!(!in_public_url_parameter(b"key=abc", 7));
        let api_key = ["AIzaN3dwZp9wyjOF5h", "ZT4xjuTV2TiePC1KE4m4I"].concat();
        assert!(!at(
            "https://docs.google.com/spreadsheets/d/1Qb7/gviz/tq?key=",
            &api_key
        ));
    }

    #[test]
    fn placeholders_of_configured_values() {
        for value in [
            "your-api-key-here",
            "api-token-here",
            "put_your_key_here",
            "enter_your_token",
            "none",
            "todo",
            "replace_me",
        ] {
            assert!(is_placeholder(value), "{value}");
        }
        assert!(!is_placeholder("9f8e7d6c5b4a3f2e1d0cb7a6"));
    }
}
