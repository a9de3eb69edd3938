//! Where containers run, and so where production keys sit once a server is deployed: the
//! local Docker daemon's containers (`container:NAME`, `containers:`), Compose files and
//! Kubernetes manifests.
//!
//! Each names its **workloads** (a container, a Compose service, a Deployment, a Secret) and
//! says of every value that may carry a secret which part of the workload holds it (the
//! containers' environment, a command line, a Secret's data) and how it is given (a literal,
//! a `${VAR}` reference, a reference to a Secret). Files are read into a
//! [`SecretFile`](super::secret_file::SecretFile) whose fields carry that place, so the audit
//! can name the workload a key is in and what that means (`plaintext-in-container-env`,
//! `in-k8s-secret-manifest`, `secret-in-configmap`); the report lists each workload's fields.
pub mod compose;
pub mod daemon;
pub mod kubernetes;

use serde::{Deserialize, Serialize};

use crate::detect::value::ValueClass;

/// What runs containers (or feeds them), as the report names it in a key's scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Workload {
    /// A Kubernetes kind (`Deployment`, `CronJob`, `Pod`, `Secret`, `ConfigMap`, …),
    /// `compose-service`, or `container` (one of the Docker daemon's).
    pub kind: String,
    /// The Kubernetes namespace (`default` when the manifest gives none), or the Compose
    /// project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl Workload {
    pub const COMPOSE_SERVICE: &'static str = "compose-service";
    pub const CONTAINER: &'static str = "container";

    /// `Deployment prod/api`, `compose-service shop/web`, `container api-1`.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// The part of a workload a value sits in: what a key found there means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The environment its containers start with (`environment:`, `env[].value`,
    /// `Config.Env`, an `env_file:`): every process in them, and `docker inspect`, sees it.
    Env,
    /// The command line of its containers (`command:`, `args:`, `Config.Cmd`).
    Command,
    /// A label or annotation.
    Label,
    /// A build argument: it ends up in the image's build history.
    BuildArg,
    /// A file mounted into its containers (`secrets: file:`, a bind mount).
    Mount,
    /// The data of a Kubernetes Secret.
    SecretData,
    /// The data of a ConfigMap, which is not meant for secrets.
    ConfigData,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Env => "env",
            Part::Command => "command",
            Part::Label => "label",
            Part::BuildArg => "build-arg",
            Part::Mount => "mount",
            Part::SecretData => "secret-data",
            Part::ConfigData => "config-data",
        }
    }
}

/// Where in a workload a value sits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Place {
    #[serde(flatten)]
    pub workload: Workload,
    pub part: Part,
}

/// One value of a workload that may carry a secret, and how it is given (never the value
/// itself, which stays in memory for the audit to fingerprint).
#[derive(Debug, Clone)]
pub struct WorkloadField {
    /// `environment.OPENAI_API_KEY`, `containers[app].env.API_KEY`, `data.token`.
    pub field: String,
    /// The variable or key name.
    pub name: Option<String>,
    pub part: Part,
    pub class: ValueClass,
    /// The value as written (a literal's secret; a reference's text).
    pub value: String,
}

/// A workload a file (or the daemon) defines, and its secret-bearing values.
#[derive(Debug, Clone)]
pub struct WorkloadEntry {
    pub workload: Workload,
    pub fields: Vec<WorkloadField>,
    /// Files it reads its environment or secrets from (`env_file:`, `secrets: file:`),
    /// resolved against the defining file's directory: a key found in one of them is this
    /// workload's too.
    pub files: Vec<(std::path::PathBuf, Part)>,
}

/// A YAML scalar as text (numbers and booleans as written); `None` for anything else.
fn scalar(value: &serde_norway::Value) -> Option<String> {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
