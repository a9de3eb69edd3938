//! Checks a regex match must pass before it is reported: entropy of the secret, the literal
//! test of context rules, and inline suppression.
use memchr::memmem;

use super::value::{classify, ValueClass};

/// The marker that silences every match on its line.
pub const ALLOW_MARKER: &str = "detector:allow";

/// Shannon entropy of `bytes`, in bits per byte.
pub fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

/// A value assigned to a secret-named key is a leaked secret only when it is a literal: not a
/// reference or placeholder (see [`classify`]), and not a path, a URL without credentials, a
/// number, a boolean or a code expression.
pub fn is_literal_secret(value: &str) -> bool {
    if classify(value) != ValueClass::Literal {
        return false;
    }
    let v = value.trim();
    // Binary data (compiled files, images) is not a configured value.
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "nil" | "required" | "optional"
    ) {
        return false;
    }
    // Numbers, dates, times (ISO 8601 too) and versions.
    if v.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b':' | b'+' | b'T' | b'Z'))
    {
        return false;
    }
    if looks_like_path(v, &lower) {
        return false;
    }
    if let Some(scheme_end) = v.find("://") {
        // A URL is a secret only through its credentials (`user:pass@`); a provider rule for
        // the scheme captures the password part.
        let rest = &v[scheme_end + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if !authority.contains('@') {
            return false;
        }
    }
    !looks_like_code(v)
}

fn looks_like_path(v: &str, lower: &str) -> bool {
    let b = v.as_bytes();
    if v.starts_with('/') || v.starts_with("./") || v.starts_with("../") || v.starts_with("~/") {
        return true;
    }
    if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
    {
        return true;
    }
    const FILE_EXTENSIONS: &[&str] = &[
        ".pem",
        ".key",
        ".json",
        ".txt",
        ".crt",
        ".cer",
        ".p12",
        ".pfx",
        ".env",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".conf",
        ".cfg",
        ".jks",
        ".keystore",
        ".gpg",
        ".asc",
    ];
    (v.contains('/') || v.contains('\\') || !v.contains(['+', '=']))
        && FILE_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

/// Program text rather than a value: `config.apiKey`, `process.env.X`, `token::Paren`,
/// `getToken`, `node.or1_token`, `_bindgen_ty_7`, and words without any digit such as
/// `refresh_token`. A real key nearly always has a digit inside a run of mixed characters; one
/// without a digit has to mix at least three of lowercase, uppercase and symbols.
fn looks_like_code(v: &str) -> bool {
    if v.contains("::") || v.contains("->") || is_format_string(v) {
        return true;
    }
    if v.split(['_', '-', '.', '$'])
        .all(|part| part.is_empty() || is_identifier_word(part))
    {
        return true;
    }
    if v.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    let lower = v.bytes().any(|b| b.is_ascii_lowercase());
    let upper = v.bytes().any(|b| b.is_ascii_uppercase());
    let symbol = v.bytes().any(|b| !b.is_ascii_alphanumeric());
    let dotted_identifiers = v.split('.').count() > 1
        && v.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        });
    dotted_identifiers || (lower as u8 + upper as u8 + symbol as u8) < 3
}

/// A printf-style template (`%s`, `%d`, `%(name)s`) rather than a value.
fn is_format_string(v: &str) -> bool {
    let b = v.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'%' && matches!(w[1], b's' | b'd' | b'r' | b'x' | b'('))
}

/// A word of an identifier: letters in one case, `Capitalized` or `camelCase` (never two
/// capitals in a row), with at most two trailing digits; a short `UPPER2CASE` word (`X509`,
/// `D3DKMT`); or a number of at most three digits.
fn is_identifier_word(part: &str) -> bool {
    let bytes = part.as_bytes();
    if bytes.len() <= 8
        && bytes.iter().any(|b| b.is_ascii_uppercase())
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return true;
    }
    let letters_end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let (letters, digits) = bytes.split_at(letters_end);
    if letters.is_empty() {
        return digits.len() <= 3;
    }
    if digits.len() > 2 || !letters.iter().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    let all_upper = letters.iter().all(|b| b.is_ascii_uppercase());
    let no_adjacent_capitals = letters
        .windows(2)
        .all(|w| !(w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase()));
    all_upper || no_adjacent_capitals
}

/// Whether a `detector:allow` marker sits on any line the span `start..end` touches.
pub fn is_suppressed(data: &[u8], start: usize, end: usize) -> bool {
    let line_start = memchr::memrchr(b'\n', &data[..start]).map_or(0, |i| i + 1);
    let line_end = memchr::memchr(b'\n', &data[end..]).map_or(data.len(), |i| end + i);
    memmem::find(&data[line_start..line_end], ALLOW_MARKER.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_simple_strings() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert!((shannon_entropy(b"abcdefgh") - 3.0).abs() < 1e-9);
    }

    #[test]
    fn literal_secrets() {
        let key = ["sc-live-", "9f8e7d6c5b4a3f2e1d0c"].concat();
        assert!(is_literal_secret(&key));
        assert!(is_literal_secret(&["Sup3r", "S3cret!"].concat()));
        assert!(is_literal_secret(&["Summer", "2024!"].concat()));
        assert!(is_literal_secret(
            &["123e4567-e89b-12d3", "-a456-426614174000"].concat()
        ));
        assert!(is_literal_secret(&["Zq4Lm8", "Rt2Vx6Nb1"].concat()));
        assert!(is_literal_secret(&["SuperSecret", "Password!"].concat()));
        assert!(is_literal_secret(&["AKIA", "Q3EGRTZ6WLYX5NVD"].concat()));
        assert!(is_literal_secret(
            &["postgres://app:", "pw9x@db/x"].concat()
        ));
        for not_secret in [
            "${OPENAI_API_KEY}",
            "$OPENAI_API_KEY",
            "{env:OPENAI_API_KEY}",
            "${{ secrets.OPENAI_API_KEY }}",
            "${input:openai-key}",
            "op://Private/OpenAI/credential",
            "$(cat /run/secrets/key)",
            "your-api-key-here",
            "<YOUR_API_KEY>",
            "xxxxxxxxxxxxxxxx",
            "changeme",
            "sk-...",
            "",
            "12345678901234",
            "2024-01-01T00:00:00",
            "/run/secrets/openai",
            "~/.config/key.txt",
            "C:\\keys\\openai.txt",
            "secrets/service-account.json",
            "https://api.example.com/v1",
            "process.env.OPENAI_API_KEY",
            "config.apiKey",
            "refresh_token",
            "getAccessToken",
            "true",
            "token::Paren",
            "node.or1_token",
            "_bindgen_ty_7",
            "SOME_CONSTANT_2",
            "Password1",
            "%szValid",
            "Uri_PROPERTY",
            "D3DKMT_DEFRAG_ESCAPE_OPERATION",
            "r\u{1}\u{0}submitzServer",
        ] {
            assert!(!is_literal_secret(not_secret), "{not_secret:?}");
        }
    }

    #[test]
    fn suppression_is_per_line() {
        let data = b"a = 1\nkey = 2 # detector:allow\nkey = 3\n";
        let second = 10;
        let third = 36;
        assert!(is_suppressed(data, second, second + 1));
        assert!(!is_suppressed(data, third, third + 1));
        assert!(!is_suppressed(data, 0, 1));
        // A span that ends on the marker's line.
        assert!(is_suppressed(data, 4, second + 1));
    }
}
