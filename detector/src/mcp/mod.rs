//! The MCP client catalogue, config parsers, and reference-vs-literal classification.
