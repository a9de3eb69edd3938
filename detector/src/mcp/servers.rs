//! The MCP servers we know: how each is run (npm, PyPI and Docker packages, remote endpoints,
//! commands), which of its environment variables, flags, headers and URL parts carry which
//! provider's key, and where that provider's keys are rotated. Data, each entry with the
//! server's own documentation it was taken from: `catalogue/servers-*.toml` (the schema is in
//! their headers), compiled in and read once.
//!
//! A configured server is known by its command line or URL ([`identify`]); a key in one of its
//! fields is then the key of the provider that field carries ([`KnownServer::credential_for`]):
//! a generic-format `SCAVIO_API_KEY` given to `@scavio/mcp-server` is a Scavio key.
use std::sync::OnceLock;

use serde::Deserialize;

use super::parse::McpServer;

const CATALOGUES: [(&str, &str); 2] = [
    (
        "catalogue/servers-dev.toml",
        include_str!("../../../catalogue/servers-dev.toml"),
    ),
    (
        "catalogue/servers-apps.toml",
        include_str!("../../../catalogue/servers-apps.toml"),
    ),
];

/// One MCP server of the catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownServer {
    pub id: String,
    pub name: String,
    /// `npm:NAME`, `pypi:NAME`, `docker:IMAGE`, `url:PREFIX`, `binary:NAME`.
    pub packages: Vec<String>,
    pub sources: Vec<String>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
}

/// One credential a server takes, and where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// As the rules name the provider.
    pub provider: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub url_params: Vec<String>,
    /// The key is a segment of the endpoint's path.
    #[serde(default)]
    pub url_path: bool,
    /// The provider's page where such keys are created and revoked; empty when none is
    /// documented.
    #[serde(default)]
    pub rotate: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueDoc {
    servers: Vec<KnownServer>,
}

/// Every server of the catalogue.
pub fn known_servers() -> &'static [KnownServer] {
    static SERVERS: OnceLock<Vec<KnownServer>> = OnceLock::new();
    SERVERS.get_or_init(|| {
        CATALOGUES
            .iter()
            .flat_map(|(name, text)| {
                toml::from_str::<CatalogueDoc>(text)
                    .unwrap_or_else(|e| panic!("{name} (built in): {e}"))
                    .servers
            })
            .collect()
    })
}

/// A package name as a command line names it, without its version or tag:
/// `@scope/pkg@1.2` → `@scope/pkg`, `pkg==1.0` → `pkg`, `ghcr.io/o/img:tag` → `ghcr.io/o/img`.
fn bare_package(word: &str) -> &str {
    let word = word.split("@sha256:").next().unwrap_or(word);
    let word = match word.strip_prefix('@') {
        Some(rest) => match rest.find('@') {
            Some(at) => &word[..at + 1],
            None => word,
        },
        None => word.split('@').next().unwrap_or(word),
    };
    let word = word.split("==").next().unwrap_or(word);
    // An image tag follows the last `:` after the last `/` (a registry port comes before).
    match word.rfind(':') {
        Some(colon) if word.rfind('/').is_none_or(|slash| colon > slash) => &word[..colon],
        _ => word,
    }
}

/// The catalogue server `server` runs, if it is one: a package its command line names (the
/// program, or any argument: `npx -y PKG`, `uvx PKG`, `docker run … IMAGE`), or the endpoint
/// its URL starts with.
pub fn identify(server: &McpServer) -> Option<&'static KnownServer> {
    let words: Vec<&str> = server
        .argv
        .iter()
        .map(|w| bare_package(w.trim()))
        .filter(|w| !w.is_empty() && !w.starts_with('-'))
        .collect();
    let urls: Vec<&str> = server
        .values
        .iter()
        .filter(|(path, _)| matches!(path.as_str(), "url" | "uri" | "serverUrl" | "httpUrl"))
        .map(|(_, url)| url.as_str())
        .collect();
    known_servers().iter().find(|known| {
        known.packages.iter().any(|package| {
            let Some((kind, name)) = package.split_once(':') else {
                return false;
            };
            match kind {
                "url" => urls.iter().any(|url| url.starts_with(name)),
                "docker" => words
                    .iter()
                    .any(|w| *w == name || w.strip_prefix("docker.io/") == Some(name)),
                "binary" => words
                    .first()
                    .is_some_and(|program| program.rsplit('/').next() == Some(name)),
                _ => words.contains(&name),
            }
        })
    })
}

impl KnownServer {
    /// The credential a field of this server carries: `env.NAME` (and `command:NAME`, an
    /// assignment in the command line), `headers.NAME`, `url?PARAM`, the URL itself (a key in
    /// its path), a flag's value (`name` is the flag); a positional argument is the server's
    /// one credential when it takes one.
    pub fn credential_for(&self, field: &str, name: Option<&str>) -> Option<&Credential> {
        let named = |list: &[String], wanted: &str| {
            list.iter().any(|item| item.eq_ignore_ascii_case(wanted))
        };
        let found = if let Some(var) = field
            .strip_prefix("env.")
            .or_else(|| field.strip_prefix("command:"))
        {
            self.credentials.iter().find(|c| named(&c.env, var))
        } else if let Some(header) = field.strip_prefix("headers.") {
            self.credentials.iter().find(|c| named(&c.headers, header))
        } else if let Some(param) = field.split_once('?').map(|(_, p)| p) {
            self.credentials
                .iter()
                .find(|c| named(&c.url_params, param))
        } else if matches!(field, "url" | "uri" | "serverUrl" | "httpUrl") {
            self.credentials.iter().find(|c| c.url_path)
        } else {
            None
        };
        found.or_else(|| {
            let flag = name.filter(|n| n.starts_with('-'));
            match flag {
                Some(flag) => self.credentials.iter().find(|c| named(&c.flags, flag)),
                None if field.starts_with("args[") && self.credentials.len() == 1 => {
                    self.credentials.first()
                }
                None => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_named_without_versions() {
        assert_eq!(bare_package("@scope/pkg@1.2.3"), "@scope/pkg");
        assert_eq!(bare_package("@scope/pkg"), "@scope/pkg");
        assert_eq!(bare_package("tavily-mcp@latest"), "tavily-mcp");
        assert_eq!(bare_package("mcp-server-qdrant==0.7"), "mcp-server-qdrant");
        assert_eq!(
            bare_package("ghcr.io/github/github-mcp-server:v1"),
            "ghcr.io/github/github-mcp-server"
        );
        assert_eq!(bare_package("localhost:5000/mcp/x"), "localhost:5000/mcp/x");
        assert_eq!(bare_package("mcp/slack@sha256:abcd"), "mcp/slack");
    }

    /// Every entry names its sources and what it runs as; every credential says where it is
    /// carried and whose it is; ids are unique.
    #[test]
    fn every_entry_is_sourced_and_complete() {
        let servers = known_servers();
        assert!(servers.len() >= 150, "{} servers", servers.len());
        let mut ids: Vec<&str> = servers.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids");
        for server in servers {
            assert!(
                server.sources.iter().all(|s| s.starts_with("https://"))
                    && !server.sources.is_empty(),
                "{}: sources",
                server.id
            );
            for package in &server.packages {
                let kind = package.split_once(':').map(|(k, _)| k);
                assert!(
                    matches!(kind, Some("npm" | "pypi" | "docker" | "url" | "binary")),
                    "{}: {package}",
                    server.id
                );
            }
            for credential in &server.credentials {
                assert!(!credential.provider.is_empty(), "{}", server.id);
                assert!(
                    credential.rotate.is_empty() || credential.rotate.starts_with("https://"),
                    "{}: {}",
                    server.id,
                    credential.rotate
                );
            }
        }
    }
}
