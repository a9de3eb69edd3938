//! Match → Key: fingerprint, scope (project, environment, MCP server), rotation, violations.
