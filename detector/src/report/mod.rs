//! Report writers: json, sarif, markdown, html, text. A writer never re-reads a source.
