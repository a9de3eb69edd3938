//! The slot of a secret: the key name it is assigned to, read backwards from the secret on its
//! line. `OPENAI_API_KEY=…`, `"OPENAI_API_KEY": "…"`, `OPENAI_API_KEY: …`,
//! `OPENAI_API_KEY = "…"`, `export OPENAI_API_KEY=…`, `ENV OPENAI_API_KEY=…`,
//! `ENV OPENAI_API_KEY …`, `"Authorization": "Bearer …"` and `?api_key=…` all name one. A
//! secret inside a larger value (the password of `DATABASE_URL=postgres://u:p@h`) belongs to
//! the key of that value.

use super::value::{classify, ValueClass};

/// How far back from the secret the key name may start.
const LOOKBACK: usize = 512;

/// A slot assigned a reference instead of a value (`X=${X}`, `"X": "op://vault/item/x"`,
/// `X: ${input:x}`): where a key may have stood before it was rotated out of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub slot: String,
    /// [`ValueClass::EnvRef`], [`ValueClass::SecretManager`] or [`ValueClass::InputPrompt`].
    pub class: ValueClass,
    /// 1-based.
    pub line: usize,
}

/// Every slot of `data` assigned a reference. Only values that start with `$` or `op://`
/// are looked at (env references, input prompts, `$(vault …)`-style commands, 1Password
/// URIs), so the pass costs one `memchr` over text that has none.
pub fn references(data: &[u8]) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut candidates: Vec<usize> = memchr::memchr_iter(b'$', data).collect();
    candidates.extend(memchr::memmem::find_iter(data, b"op://"));
    if candidates.is_empty() {
        return found;
    }
    candidates.sort_unstable();
    let (mut counted_to, mut line) = (0, 1);
    let mut consumed = 0;
    for start in candidates {
        if start < consumed {
            continue;
        }
        let before = start.checked_sub(1).map(|i| data[i]);
        let opens_value = match before {
            None => true,
            Some(b) => matches!(b, b'"' | b'\'' | b'`' | b'=' | b':' | b' ' | b'\t' | b'\n'),
        };
        if !opens_value {
            continue;
        }
        let end = value_end(data, start, before);
        let Ok(value) = std::str::from_utf8(&data[start..end]) else {
            continue;
        };
        let class = classify(value);
        if !matches!(
            class,
            ValueClass::EnvRef | ValueClass::SecretManager | ValueClass::InputPrompt
        ) {
            continue;
        }
        consumed = end;
        if let Some(slot) = slot_at(data, start) {
            line += memchr::memchr_iter(b'\n', &data[counted_to..start]).count();
            counted_to = start;
            found.push(Reference { slot, class, line });
        }
    }
    found
}

/// Where a value that starts at `start` ends: at its closing quote when `quote` opened it,
/// at the `)` that closes a `$(…)` command, else at the first blank, comma or semicolon.
fn value_end(data: &[u8], start: usize, quote: Option<u8>) -> usize {
    let line_end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
    let line = &data[start..line_end];
    if let Some(q @ (b'"' | b'\'' | b'`')) = quote {
        return memchr::memchr(q, line).map_or(line_end, |i| start + i);
    }
    if line.starts_with(b"$(") {
        return memchr::memchr(b')', line).map_or(line_end, |i| start + i + 1);
    }
    line.iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b',' | b';'))
        .map_or(line_end, |i| start + i)
}

/// The key name `data[start..]` is assigned to, if the text before it on its line shows one.
pub fn slot_at(data: &[u8], start: usize) -> Option<String> {
    let floor = start.saturating_sub(LOOKBACK);
    let line_start = memchr::memrchr(b'\n', &data[floor..start]).map_or(floor, |i| floor + i + 1);
    let line = &data[line_start..start];
    let mut i = line.len();

    // The rest of the value that holds the secret (URL, connection string, …).
    while i > 0 && !is_value_delimiter(line[i - 1]) {
        i -= 1;
    }
    // An authorization scheme: `Bearer …`, `Basic …`, `token …`, `Bot …`.
    let before_scheme = skip_back(line, i, |b| b == b' ' || b == b'\t');
    if before_scheme < i {
        let word_start = skip_back(line, before_scheme, |b| b.is_ascii_alphabetic());
        let word = &line[word_start..before_scheme];
        // `--token value` is a flag, not the `token` scheme.
        let flag = word_start > 0 && line[word_start - 1] == b'-';
        if !flag
            && ["bearer", "basic", "token", "bot"]
                .iter()
                .any(|s| word.eq_ignore_ascii_case(s.as_bytes()))
        {
            i = word_start;
        }
    }
    // The value's opening quote.
    if i > 0 && matches!(line[i - 1], b'"' | b'\'' | b'`') {
        i -= 1;
    }
    // The operator: `=`, `:`, `:=`, `=>`, or plain whitespace after a Dockerfile ENV name.
    let after_op = i;
    i = skip_back(line, i, |b| b == b' ' || b == b'\t');
    let spaced = i < after_op;
    // `"--api-key", "value"` in an args array: the comma separates a flag from its value.
    let comma = i > 0 && line[i - 1] == b',';
    let operator = if comma {
        i -= 1;
        true
    } else if i > 0 && line[i - 1] == b'=' {
        i -= 1;
        if i > 0 && line[i - 1] == b':' {
            i -= 1;
        }
        true
    } else if i > 0 && line[i - 1] == b':' {
        i -= 1;
        true
    } else if i > 1 && line[i - 1] == b'>' && line[i - 2] == b'=' {
        i -= 2;
        true
    } else {
        false
    };
    if !operator && !spaced {
        return None;
    }
    if operator {
        i = skip_back(line, i, |b| b == b' ' || b == b'\t');
    }
    // The key's closing quote, then the key.
    let quoted = i > 0 && matches!(line[i - 1], b'"' | b'\'');
    if quoted {
        i -= 1;
    }
    let name_end = i;
    i = skip_back(line, i, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
    });
    let mut full_name = &line[i..name_end];
    // A declaration with a type (`apiKey: string = …`, `token: &'static str = …`): the name is
    // the one before the type.
    if operator && !quoted {
        let mut j = skip_back(line, i, |b| matches!(b, b' ' | b'\t' | b'&'));
        if line[..j].ends_with(b"'static") {
            j = skip_back(line, j - b"'static".len(), |b| {
                matches!(b, b' ' | b'\t' | b'&')
            });
        }
        if j > 1 && line[j - 1] == b':' && line[j - 2] != b':' {
            let end = skip_back(line, j - 1, |b| b == b' ' || b == b'\t');
            let start = skip_back(line, end, |b| b.is_ascii_alphanumeric() || b == b'_');
            if start < end {
                i = start;
                full_name = &line[start..end];
            }
        }
    }
    let is_flag = full_name.starts_with(b"-");
    let name = trim_leading(full_name, b'-');
    if name.is_empty() || !name.iter().any(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    if comma && !(is_flag && quoted) {
        return None;
    }
    if !operator && !is_flag {
        // `NAME value` is an assignment only in a Dockerfile `ENV` (or `ARG`) instruction,
        // or after a command-line flag (`--api-key value`).
        let head = trim_ascii(&line[..i]);
        if !(head.eq_ignore_ascii_case(b"ENV") || head.eq_ignore_ascii_case(b"ARG")) || quoted {
            return None;
        }
    }
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Bytes that end a value when walking back from the secret.
fn is_value_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'"' | b'\'' | b'`' | b' ' | b'\t' | b'\r' | b'=' | b',' | b'{' | b'(' | b'[' | b';'
    )
}

fn skip_back(line: &[u8], mut i: usize, pred: impl Fn(u8) -> bool) -> usize {
    while i > 0 && pred(line[i - 1]) {
        i -= 1;
    }
    i
}

fn trim_leading(mut s: &[u8], byte: u8) -> &[u8] {
    while let [first, rest @ ..] = s {
        if *first != byte {
            break;
        }
        s = rest;
    }
    s
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot of the first occurrence of `secret` in `text`.
    fn slot(text: &str, secret: &str) -> Option<String> {
        let start = text.find(secret).expect("secret in text");
        slot_at(text.as_bytes(), start)
    }

    #[test]
    fn assignment_forms_name_the_slot() {
        let s = "abc123secretvalue";
        let cases = [
            format!("OPENAI_API_KEY={s}"),
            format!("export OPENAI_API_KEY=\"{s}\""),
            format!("ENV OPENAI_API_KEY={s}"),
            format!("ENV OPENAI_API_KEY {s}"),
            format!("ARG OPENAI_API_KEY={s}"),
            format!("  \"OPENAI_API_KEY\": \"{s}\","),
            format!("    OPENAI_API_KEY: {s}"),
            format!("OPENAI_API_KEY = '{s}'"),
            format!("OPENAI_API_KEY := {s}"),
            format!("'OPENAI_API_KEY' => '{s}',"),
            format!("  - OPENAI_API_KEY={s}"),
        ];
        for case in &cases {
            assert_eq!(slot(case, s).as_deref(), Some("OPENAI_API_KEY"), "{case}");
        }
    }

    #[test]
    fn headers_urls_and_nested_values() {
        let s = "abc123secretvalue";
        assert_eq!(
            slot(&format!("\"Authorization\": \"Bearer {s}\""), s).as_deref(),
            Some("Authorization")
        );
        assert_eq!(
            slot(&format!("-H 'x-api-key: {s}'"), s).as_deref(),
            Some("x-api-key")
        );
        assert_eq!(
            slot(
                &format!("\"url\": \"https://api.example.com/v1?api_key={s}&q=1\""),
                s
            )
            .as_deref(),
            Some("api_key")
        );
        assert_eq!(
            slot(&format!("DATABASE_URL=postgres://app:{s}@db:5432/app"), s).as_deref(),
            Some("DATABASE_URL")
        );
        assert_eq!(
            slot(&format!("\"args\": [\"--api-key={s}\"]"), s).as_deref(),
            Some("api-key")
        );
        assert_eq!(
            slot(&format!("\"args\": [\"--api-key\", \"{s}\"]"), s).as_deref(),
            Some("api-key")
        );
        assert_eq!(
            slot(&format!("npx acme-mcp --api-key {s}"), s).as_deref(),
            Some("api-key")
        );
    }

    #[test]
    fn references_name_their_slots() {
        let text = concat!(
            "API_KEY=${API_KEY}\n",
            "  \"TOKEN\": \"${input:token}\",\n",
            "export DB_PASSWORD=$(vault read -field=pw secret/db)\n",
            "  \"Authorization\": \"Bearer ${GH_TOKEN}\"\n",
            "SCAVIO: op://vault/scavio/key\n",
            "macro_rules! m { ($x:expr) => { $x } }\n",
            "echo $HOME\n",
        );
        let found: Vec<(String, ValueClass, usize)> = references(text.as_bytes())
            .into_iter()
            .map(|r| (r.slot, r.class, r.line))
            .collect();
        assert_eq!(
            found,
            [
                ("API_KEY".to_string(), ValueClass::EnvRef, 1),
                ("TOKEN".to_string(), ValueClass::InputPrompt, 2),
                ("DB_PASSWORD".to_string(), ValueClass::SecretManager, 3),
                ("Authorization".to_string(), ValueClass::EnvRef, 4),
                ("SCAVIO".to_string(), ValueClass::SecretManager, 5),
            ]
        );
    }

    #[test]
    fn no_slot_without_an_assignment() {
        let s = "abc123secretvalue";
        assert_eq!(slot(s, s), None);
        assert_eq!(slot(&format!("the key {s} leaked"), s), None);
        assert_eq!(slot(&format!("\"args\": [\"run\", \"{s}\"]"), s), None);
        assert_eq!(slot(&format!("a, {s}"), s), None);
        assert_eq!(slot(&format!("KEY=1\n{s}"), s), None);
        assert_eq!(slot(&format!("= {s}"), s), None);
    }
}
