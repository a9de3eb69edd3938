//! Percent-encoding of the URI paths the tool writes: file URIs in SARIF, request paths to the
//! Docker daemon. One set of characters kept, RFC 3986's unreserved ones and `/`.
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path keeps: letters, digits, `-`, `.`, `_`, `~` and `/`.
pub const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `text` with every character outside `keep` percent-encoded (UTF-8 bytes).
pub fn encode(text: &str, keep: &'static AsciiSet) -> String {
    utf8_percent_encode(text, keep).to_string()
}
