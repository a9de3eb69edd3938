//! Re-scanning a watched file when it changes, through the scanner's own pipeline (the same
//! entry point as `detector scan file:PATH`), so the agent and `detector scan` agree on what is
//! a key.
use std::{collections::BTreeSet, path::Path};

use crate::{
    audit::{redact, OrgKey},
    detect::{RuleError, RuleSet},
    mcp::McpServer,
    pipeline::{self, Pipeline, Silent},
    source::{SourceOptions, Target},
};

/// What a watched file holds now: its keys (by fingerprint) and, for an MCP config, its
/// servers.
#[derive(Debug, Default, Clone)]
pub struct Contents {
    pub fingerprints: BTreeSet<String>,
    pub servers: Vec<McpServer>,
    /// Why the file could not be read, if it could not.
    pub error: Option<String>,
}

/// The largest watched file that is re-scanned.
const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The pipeline the agent re-scans with. Its compiled rules are dropped while the agent is
/// idle ([`Rescanner::release`]): they cost megabytes, and building them again takes tens of
/// milliseconds.
pub struct Rescanner {
    pipeline: Pipeline,
}

impl Rescanner {
    pub fn new(org_key: OrgKey) -> Result<Rescanner, RuleError> {
        // Compiled once now, so that bad rules fail the start rather than the first re-scan.
        let options = pipeline::Options {
            sources: SourceOptions {
                max_file_size: MAX_FILE_SIZE,
                max_blob_size: MAX_FILE_SIZE,
                ..SourceOptions::default()
            },
            ..pipeline::Options::default()
        };
        Ok(Rescanner {
            pipeline: Pipeline::new(RuleSet::builtin()?, org_key, options)?,
        })
    }

    /// Drops the compiled rules until they are needed again.
    pub fn release(&self) {
        self.pipeline.release();
    }

    pub fn scan(&self, path: &Path) -> Contents {
        let outcome = self
            .pipeline
            .run(&[Target::File(path.to_path_buf())], &Silent);
        let target = outcome.report.targets.first();
        let error = target.and_then(|t| {
            let skipped = t.skipped.keys().next().map(|r| format!("skipped: {r}"));
            match t.errors.first() {
                Some(first) if t.failed => Some(first.reason.clone()),
                _ => t.errors.last().map(|e| e.reason.clone()).or(skipped),
            }
        });
        Contents {
            fingerprints: outcome
                .report
                .keys
                .iter()
                .map(|k| k.fingerprint.clone())
                .collect(),
            servers: outcome
                .configs
                .iter()
                .flat_map(|c| c.servers.iter().cloned())
                .collect(),
            error,
        }
    }

    /// A command line with every secret the engine finds in it redacted: a key passed as an
    /// argument (`--api-key …`, `TOKEN=…`) must not reach the event log in clear.
    pub fn scrub(&self, cmdline: &[String]) -> Vec<String> {
        let joined = cmdline.join(" ");
        let matches = self.pipeline.engine().scan(joined.as_bytes());
        if matches.is_empty() {
            return cmdline.to_vec();
        }
        cmdline
            .iter()
            .map(|arg| {
                matches.iter().fold(arg.clone(), |arg, m| {
                    arg.replace(&m.secret, &redact(&m.secret))
                })
            })
            .collect()
    }
}

/// Which configured MCP server, if any, a process is: the server's program is the process's
/// (by base name) and its arguments appear, in order, in the process's command line.
pub fn server_matches(server_argv: &[String], exe: &str, cmdline: &[String]) -> bool {
    let Some(program) = server_argv.first() else {
        return false;
    };
    let base = |s: &str| Path::new(s).file_name().map(|n| n.to_os_string());
    let program = base(program);
    let program_ok = program.is_some()
        && (cmdline.first().is_some_and(|c| base(c) == program) || base(exe) == program);
    if !program_ok {
        return false;
    }
    let mut rest = cmdline.iter().skip(1);
    server_argv[1..].iter().all(|arg| rest.any(|c| c == arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_the_server_whose_command_it_runs() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let server = argv("npx -y @modelcontextprotocol/server-github");
        assert!(server_matches(
            &server,
            "/usr/bin/node",
            &argv("/usr/bin/npx -y @modelcontextprotocol/server-github")
        ));
        assert!(!server_matches(
            &server,
            "/usr/bin/node",
            &argv("/usr/bin/npx -y @modelcontextprotocol/server-slack")
        ));
        assert!(!server_matches(
            &server,
            "/usr/bin/cat",
            &argv("cat -y @modelcontextprotocol/server-github")
        ));
        assert!(server_matches(
            &argv("/opt/tools/mcp-db"),
            "/opt/tools/mcp-db",
            &argv("mcp-db --port 1")
        ));
        assert!(!server_matches(&[], "/bin/x", &argv("x")));
    }

    #[test]
    fn secrets_in_command_lines_are_redacted() {
        let scanner = Rescanner::new(OrgKey::from_bytes(b"test", "test")).unwrap();
        // Key-like entropy: a repeated four-character chunk is filler to the engine.
        let body = "Qw3rTy7uIo9pAs2dFg5hJk8lZx4cVb6nMq1wEr0tYu3iOp5aSd7fGh9jKl2zXc4v".repeat(2);
        let key = ["sk-ant-api03-", &body[..80], "AA"].concat();
        let cmdline: Vec<String> = ["mcp-server", "--api-key", &key, "--port", "8080"]
            .map(String::from)
            .to_vec();
        let scrubbed = scanner.scrub(&cmdline);
        assert_eq!(scrubbed.len(), 5);
        assert!(!scrubbed.join(" ").contains(&key), "{scrubbed:?}");
        assert_eq!(scrubbed[4], "8080");
        let plain: Vec<String> = ["cat", "/etc/hosts"].map(String::from).to_vec();
        assert_eq!(scanner.scrub(&plain), plain);
    }

    #[test]
    fn rescans_find_keys_and_servers() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join(".mcp.json");
        let key = ["ghp_", &"a1B2".repeat(9)].concat();
        std::fs::write(&config, format!(r#"{{"mcpServers":{{"gh":{{"command":"npx","args":["gh-mcp"],"env":{{"GITHUB_TOKEN":"{key}"}}}}}}}}"#)).unwrap();
        let scanner = Rescanner::new(OrgKey::from_bytes(b"test", "test")).unwrap();
        let contents = scanner.scan(&config);
        assert_eq!(contents.fingerprints.len(), 1);
        assert_eq!(contents.servers.len(), 1);
        assert_eq!(contents.servers[0].argv, vec!["npx", "gh-mcp"]);
        std::fs::write(
            &config,
            r#"{"mcpServers":{"gh":{"command":"npx","env":{"GITHUB_TOKEN":"${GITHUB_TOKEN}"}}}}"#,
        )
        .unwrap();
        assert!(scanner.scan(&config).fingerprints.is_empty());
        assert!(scanner.scan(&dir.path().join("missing")).error.is_some());
    }
}
