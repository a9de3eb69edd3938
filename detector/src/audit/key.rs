//! What the audit hands the report: one [`Key`] per secret, and every MCP server found.
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::location::{time, time_opt, Location};
use crate::{detect::value::ValueClass, detect::Severity, path_text};

/// One exposed secret, with everywhere it was seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    /// `hmac-sha256:<hex>` under the org key.
    pub fingerprint: String,
    pub rule: String,
    pub provider: String,
    pub severity: Severity,
    pub description: String,
    /// `sc-l…f456`: enough for the owner to recognise it, never more than a third of it.
    pub redacted: String,
    /// The secret in clear, only with `--show-secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub status: Status,
    /// What the provider says of the key, with `--verify` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<crate::verify::Verification>,
    /// Held in detector's managed store and nowhere else: every location is a managed store
    /// that only its owner can read. Listed, but not an exposure: no violation of its own, and
    /// not counted against `--fail-on`. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_in_store: bool,
    /// What took the key's place in its slot when it was rotated: a newer key or a reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<Successor>,
    #[serde(serialize_with = "time_opt")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(serialize_with = "time_opt")]
    pub last_seen: Option<DateTime<Utc>>,
    pub age_days: Option<i64>,
    pub overdue: bool,
    /// The variables and fields the key is assigned to (`OPENAI_API_KEY`, `env.GITHUB_TOKEN`).
    pub slots: Vec<String>,
    pub scope: Scope,
    pub violations: Vec<Violation>,
    pub locations: Vec<Location>,
    /// Processes that opened a file holding the key (joined from agent events).
    #[serde(default)]
    pub accessed_by: Vec<Access>,
    /// What to do about it, most urgent first.
    #[serde(default)]
    pub remediation: Vec<String>,
    /// The provider's page where its keys are rotated, from the server catalogue; the
    /// remediation names it.
    #[serde(skip)]
    pub rotate_at: Option<String>,
}

/// The value that replaced a key in its slot (same file, same variable or field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Successor {
    /// The key now in the slot, when a key replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// How the slot is filled when a reference replaced it (`env-ref`, `secret-manager`,
    /// `input-prompt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ValueClass>,
    #[serde(serialize_with = "path_text::one")]
    pub path: PathBuf,
    pub slot: String,
    /// The commit that made the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(serialize_with = "time_opt", skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// In a current location: a file on disk now, an MCP config now, a HEAD tree, an image.
    Live,
    /// Not current anywhere, and its slot holds another value or a reference now.
    Rotated,
    /// Not current anywhere, and nothing took its place.
    Removed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Rotated => "rotated",
            Status::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scope {
    pub projects: Vec<String>,
    pub environments: Vec<Environment>,
    pub mcp_servers: Vec<McpServerRef>,
    /// The workloads that hold or read the key: Compose services, Kubernetes objects,
    /// containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<crate::source::container::Workload>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Staging,
    Development,
    Test,
    Unknown,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Unknown => "unknown",
        }
    }
}

/// An MCP server field that holds the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct McpServerRef {
    pub client: String,
    pub server: String,
    #[serde(serialize_with = "path_text::one")]
    pub config: PathBuf,
    pub field: String,
    /// The project a per-project server belongs to (Claude Code's `projects.*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Violation {
    PlaintextInMcpConfig,
    /// In a shell profile on disk (`export KEY=…` in `~/.zshrc`): every shell and every
    /// process started from one holds it.
    PlaintextInShellProfile,
    InGitHistory,
    InImageLayer,
    InImageConfig,
    InBackup,
    SharedAcrossProjects,
    DevProdReuse,
    WorldReadable,
    Overdue,
    /// A process that policy does not allow opened a file holding the key (agent events).
    ReadByUnexpectedProcess,
    /// Rotated or removed, and the provider says it still works (`--verify`): never revoked.
    RotatedNotRevoked,
    /// In a current location, and the provider says it no longer works (`--verify`).
    DeadKeyInConfig,
    /// Given to a container in clear through its environment (`docker run -e`, Compose
    /// `environment:`, a Kubernetes `env[].value`): `docker inspect`, `/proc/PID/environ` and
    /// every process in the container see it.
    PlaintextInContainerEnv,
    /// In the data of a Kubernetes Secret manifest kept as a file (base64 is not encryption).
    InK8sSecretManifest,
    /// In a ConfigMap, which is not meant for secrets.
    SecretInConfigmap,
}

impl Violation {
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::PlaintextInMcpConfig => "plaintext-in-mcp-config",
            Violation::PlaintextInShellProfile => "plaintext-in-shell-profile",
            Violation::InGitHistory => "in-git-history",
            Violation::InImageLayer => "in-image-layer",
            Violation::InImageConfig => "in-image-config",
            Violation::InBackup => "in-backup",
            Violation::SharedAcrossProjects => "shared-across-projects",
            Violation::DevProdReuse => "dev-prod-reuse",
            Violation::WorldReadable => "world-readable",
            Violation::Overdue => "overdue",
            Violation::ReadByUnexpectedProcess => "read-by-unexpected-process",
            Violation::RotatedNotRevoked => "rotated-not-revoked",
            Violation::DeadKeyInConfig => "dead-key-in-config",
            Violation::PlaintextInContainerEnv => "plaintext-in-container-env",
            Violation::InK8sSecretManifest => "in-k8s-secret-manifest",
            Violation::SecretInConfigmap => "secret-in-configmap",
        }
    }
}

/// A process that opened a file holding the key (from the agent's events).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    #[serde(serialize_with = "time")]
    pub time: DateTime<Utc>,
    pub pid: u32,
    pub exe: String,
    pub comm: String,
    pub uid: u32,
    #[serde(serialize_with = "path_text::one")]
    pub file: PathBuf,
    pub allowed: bool,
}

/// One MCP server, as configured: which fields carry secrets and how (never their values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerEntry {
    /// The host whose report listed the server (set when reports are merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub client: String,
    #[serde(serialize_with = "path_text::one")]
    pub config: PathBuf,
    pub server: String,
    pub project: Option<String>,
    /// The user whose global config defines the server.
    pub user: Option<String>,
    pub transport: String,
    /// The program only (`npx`, `uvx`, `docker`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `scheme://host[:port]` of a remote server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub fields: Vec<FieldEntry>,
    pub checks: Vec<CheckEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldEntry {
    /// `env.OPENAI_API_KEY`, `headers.Authorization`, `args[3]`, `url?apiKey`.
    pub field: String,
    /// The variable or header name, when the field has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub class: ValueClass,
    /// The key a literal value is, when the audit reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// A seed pattern checked on a server (env-injection, secret-manager, per-project key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckEntry {
    pub check: String,
    pub pass: bool,
    pub reason: String,
}
