//! Well-known credential files, read field by field: `.env` files, shell profiles (`export`
//! lines), `.netrc`, `.npmrc`, `.pypirc`, `~/.aws/credentials`, `~/.docker/config.json`,
//! kube configs, gcloud credentials and `.git-credentials`.
//!
//! A parse names each value's slot (`default.aws_secret_access_key`, `machine
//! api.example.com password`) and says whether the slot holds a secret, so that the audit can
//! name the field a rule matched in, and report a literal in a secret field that no rule knows.
//! Encoded credentials (docker `auth`, kube `client-key-data`) carry their decoded form, for
//! the engine to look at. Recognition looks at the path only; a file that does not parse, or
//! is over the parse budget of configs ([`crate::mcp::parse::check_budget`]), yields the
//! fields read before the error (its bytes are scanned as text anyway).
use std::{ops::Range, path::Path};

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use super::container::{self, Place, WorkloadEntry};
use crate::mcp::{is_secret_name, parse as config, ConfigFormat};

/// What kind of credential file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretFileKind {
    /// `.env`, `.env.production`, `app.env`: `NAME=value` lines.
    Env,
    /// `.zshrc`, `.bashrc`, `.profile`, `config.fish`, `.envrc`: `export NAME=value` lines.
    ShellProfile,
    Netrc,
    Npmrc,
    Pypirc,
    /// `~/.aws/credentials` and `~/.aws/config`.
    Aws,
    /// `~/.docker/config.json`, `containers/auth.json`.
    DockerConfig,
    KubeConfig,
    /// `application_default_credentials.json`, `legacy_credentials/*/adc.json`.
    Gcloud,
    GitCredentials,
    /// A Compose file (see [`super::container::compose`]).
    Compose,
    /// Kubernetes manifests (see [`super::container::kubernetes`]).
    Kubernetes,
    /// A container's configuration, from the Docker daemon (see [`super::container::daemon`]).
    Container,
}

impl SecretFileKind {
    /// Who issued the secrets of this kind of file, when the kind says.
    pub fn provider(self) -> &'static str {
        match self {
            SecretFileKind::Aws => "AWS",
            SecretFileKind::Npmrc => "npm",
            SecretFileKind::Pypirc => "PyPI",
            SecretFileKind::DockerConfig => "Container registry",
            SecretFileKind::KubeConfig => "Kubernetes",
            SecretFileKind::Gcloud => "Google Cloud",
            _ => "unknown",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecretFileKind::Env => "env",
            SecretFileKind::ShellProfile => "shell-profile",
            SecretFileKind::Netrc => "netrc",
            SecretFileKind::Npmrc => "npmrc",
            SecretFileKind::Pypirc => "pypirc",
            SecretFileKind::Aws => "aws-credentials",
            SecretFileKind::DockerConfig => "docker-config",
            SecretFileKind::KubeConfig => "kube-config",
            SecretFileKind::Gcloud => "gcloud-credentials",
            SecretFileKind::GitCredentials => "git-credentials",
            SecretFileKind::Compose => "compose",
            SecretFileKind::Kubernetes => "kubernetes",
            SecretFileKind::Container => "container",
        }
    }
}

/// Whether a field holds a secret, and how sure the file format is of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Not a secret (`login`, `aws_access_key_id`, `username`); named for the slot only.
    No,
    /// The variable's name says so (`OPENAI_API_KEY=`): a literal must look like a key.
    Named,
    /// The format says so (`.netrc` password, `aws_secret_access_key`): any literal is one.
    Field,
}

/// One value of a credential file.
#[derive(Debug, Clone)]
pub struct FileField {
    /// `default.aws_secret_access_key`, `machine api.example.com password`, `OPENAI_API_KEY`.
    pub slot: String,
    /// The value as written, unquoted.
    pub value: String,
    /// Where the value sits in the file's bytes.
    pub range: Range<usize>,
    pub secrecy: Secrecy,
    /// The credential inside an encoded value: the password of a base64 `user:password`,
    /// the PEM of `client-key-data`, a Kubernetes Secret's base64 `data`.
    pub decoded: Option<String>,
    /// The workload the value belongs to, and which part of it holds the value (Compose
    /// files, Kubernetes manifests, containers).
    pub place: Option<Place>,
}

/// A parsed credential file.
#[derive(Debug, Clone)]
pub struct SecretFile {
    pub kind: SecretFileKind,
    pub fields: Vec<FileField>,
    /// The workloads the file defines (Compose services, Kubernetes objects, a container),
    /// with how each of their secret-bearing values is given.
    pub workloads: Vec<WorkloadEntry>,
}

impl SecretFile {
    /// The field whose value holds the byte at `offset`.
    pub fn field_at(&self, offset: usize) -> Option<&FileField> {
        self.fields.iter().find(|f| f.range.contains(&offset))
    }
}

/// Is the file at `path` a credential file we read field by field?
pub fn recognise(path: &Path) -> Option<SecretFileKind> {
    let name = path.file_name()?.to_str()?;
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let grandparent = path
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
    use SecretFileKind::*;
    let kind = match name {
        ".netrc" | "_netrc" => Netrc,
        ".npmrc" => Npmrc,
        ".pypirc" => Pypirc,
        ".git-credentials" => GitCredentials,
        "credentials" | "config" if parent == ".aws" => Aws,
        "config.json" if parent == ".docker" => DockerConfig,
        "auth.json" if parent == "containers" => DockerConfig,
        "config" if parent == ".kube" => KubeConfig,
        "kubeconfig" | "kubeconfig.yaml" | "kubeconfig.yml" => KubeConfig,
        _ if name.ends_with(".kubeconfig") => KubeConfig,
        "application_default_credentials.json" if parent == "gcloud" => Gcloud,
        "adc.json" if grandparent == "legacy_credentials" => Gcloud,
        _ if container::compose::is_compose_name(path) => Compose,
        ".bashrc" | ".bash_profile" | ".bash_login" | ".bash_aliases" | ".profile" | ".zshrc"
        | ".zshenv" | ".zprofile" | ".zlogin" | ".kshrc" | ".mkshrc" | ".aliases" | ".exports"
        | ".extra" | ".envrc" | ".zshrc.local" | ".bashrc.local" | ".profile.local"
        | "config.fish" => ShellProfile,
        _ if matches!(
            parent,
            ".zshrc.d" | ".bashrc.d" | "profile.d" | "conf.d" | "custom"
        ) && [".sh", ".zsh", ".bash", ".fish"]
            .iter()
            .any(|ext| name.ends_with(ext)) =>
        {
            ShellProfile
        }
        ".env" | ".flaskenv" | "environment" => Env,
        _ if name.starts_with(".env.") || (name.ends_with(".env") && name.len() > 4) => Env,
        _ => return None,
    };
    Some(kind)
}

/// Read the file at `path` field by field, when its name (a credential file, a Compose file)
/// or its content (Kubernetes manifests) says how.
pub fn read(path: &Path, bytes: &[u8]) -> Option<SecretFile> {
    if let Some(kind) = recognise(path) {
        return Some(parse(kind, path, bytes));
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let structured = [".yaml", ".yml", ".json"]
        .iter()
        .any(|e| lower.ends_with(e));
    if !structured {
        return None;
    }
    read_unnamed(bytes)
}

/// Read a file known by its content only (a git blob): Kubernetes manifests, a Compose file.
pub fn read_unnamed(bytes: &[u8]) -> Option<SecretFile> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    let manifest = memchr::memmem::find(head, b"apiVersion").is_some();
    let services = memchr::memmem::find(head, b"services").is_some();
    if !manifest && !services {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if manifest {
        if let Some(file) = container::kubernetes::parse(text) {
            return Some(file);
        }
    }
    if services {
        return container::compose::parse(Path::new(""), text);
    }
    None
}

/// Read the fields of a credential file.
pub fn parse(kind: SecretFileKind, path: &Path, bytes: &[u8]) -> SecretFile {
    // Their fields' ranges are offsets into the text: only text that is the bytes will do.
    let workloads = match kind {
        SecretFileKind::Compose => Some(
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| container::compose::parse(path, t)),
        ),
        SecretFileKind::Kubernetes => Some(
            std::str::from_utf8(bytes)
                .ok()
                .and_then(container::kubernetes::parse),
        ),
        _ => None,
    };
    if let Some(parsed) = workloads {
        return parsed.unwrap_or(SecretFile {
            kind,
            fields: Vec::new(),
            workloads: Vec::new(),
        });
    }
    let text = String::from_utf8_lossy(bytes);
    // Offsets are into `bytes`; lossy decoding only changes invalid sequences, which a
    // credential file does not have where it matters. Keep offsets exact by falling back
    // to no fields when the lengths differ.
    let fields = if text.len() != bytes.len() {
        Vec::new()
    } else {
        match kind {
            SecretFileKind::Env | SecretFileKind::ShellProfile => assignments(&text),
            SecretFileKind::Netrc => netrc(&text),
            SecretFileKind::Npmrc => ini(&text, kind),
            SecretFileKind::Pypirc | SecretFileKind::Aws => ini(&text, kind),
            SecretFileKind::DockerConfig => docker(&text),
            SecretFileKind::KubeConfig => kube(&text),
            SecretFileKind::Gcloud => gcloud(&text),
            SecretFileKind::GitCredentials => git_credentials(&text),
            SecretFileKind::Compose | SecretFileKind::Kubernetes | SecretFileKind::Container => {
                Vec::new()
            }
        }
    };
    SecretFile {
        kind,
        fields,
        workloads: Vec::new(),
    }
}

/// Lines with the byte offset of their start.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |line| {
        let start = offset;
        offset += line.len();
        (start, line.trim_end_matches(['\n', '\r']))
    })
}

/// `NAME=value`, `export NAME="value"`, `declare -x NAME=value`, fish's `set -gx NAME value`,
/// csh's `setenv NAME value`.
fn assignments(text: &str) -> Vec<FileField> {
    let mut fields = Vec::new();
    for (start, line) in lines(text) {
        let trimmed = line.trim_start();
        let mut at = start + (line.len() - trimmed.len());
        let mut rest = trimmed;
        if rest.starts_with('#') {
            continue;
        }
        let mut spaced = false;
        for keyword in [
            "export ",
            "declare -x ",
            "typeset -x ",
            "readonly ",
            "local ",
        ] {
            if let Some(r) = rest.strip_prefix(keyword) {
                at += keyword.len();
                rest = r;
                break;
            }
        }
        for keyword in ["setenv ", "set -gx ", "set -Ux ", "set -x ", "set -xg "] {
            if let Some(r) = rest.strip_prefix(keyword) {
                at += keyword.len();
                rest = r;
                spaced = true;
                break;
            }
        }
        let skipped = rest.len() - rest.trim_start().len();
        at += skipped;
        rest = rest.trim_start();
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len == 0 || rest.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        let value_text = if spaced {
            let v = after.trim_start();
            if v.len() == after.len() {
                continue;
            }
            v
        } else {
            match after.strip_prefix('=') {
                Some(v) => v,
                None => continue,
            }
        };
        let value_at = at + name_len + (after.len() - value_text.len());
        let Some((value, range)) = shell_value(value_text, value_at) else {
            continue;
        };
        fields.push(FileField {
            slot: name.to_string(),
            value,
            range,
            secrecy: if is_secret_name(name) {
                Secrecy::Named
            } else {
                Secrecy::No
            },
            decoded: None,
            place: None,
        });
    }
    fields
}

/// The value of an assignment: quoted (to the closing quote on the line) or bare (to
/// whitespace, `;` or a comment).
fn shell_value(text: &str, at: usize) -> Option<(String, Range<usize>)> {
    let first = text.chars().next()?;
    if first == '"' || first == '\'' {
        let inner = &text[1..];
        let end = inner.find(first).unwrap_or(inner.len());
        return Some((inner[..end].to_string(), at + 1..at + 1 + end));
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(text.len());
    let value = &text[..end];
    (!value.is_empty()).then(|| (value.to_string(), at..at + end))
}

/// `.netrc`: `machine HOST login USER password SECRET [account ACCT]`, `default …`, and
/// `macdef NAME` bodies (skipped to the next blank line).
fn netrc(text: &str) -> Vec<FileField> {
    let mut tokens = Vec::new();
    let mut in_macro = false;
    for (start, line) in lines(text) {
        if in_macro {
            if line.trim().is_empty() {
                in_macro = false;
            }
            continue;
        }
        if line.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = line;
        let mut at = start;
        while let Some(skip) = rest.find(|c: char| !c.is_whitespace()) {
            at += skip;
            rest = &rest[skip..];
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            tokens.push((at, &rest[..len]));
            if &rest[..len] == "macdef" {
                in_macro = true;
            }
            at += len;
            rest = &rest[len..];
        }
    }
    let mut fields = Vec::new();
    let mut machine = String::from("default");
    let mut i = 0;
    while i < tokens.len() {
        let (_, token) = tokens[i];
        match token {
            "machine" => {
                if let Some((_, host)) = tokens.get(i + 1) {
                    machine = format!("machine {host}");
                    i += 1;
                }
            }
            "default" => machine = "default".to_string(),
            "login" | "password" | "account" => {
                if let Some(&(at, value)) = tokens.get(i + 1) {
                    let unquoted = value.trim_matches('"');
                    let inner_at = at + value.find(unquoted).unwrap_or(0);
                    fields.push(FileField {
                        slot: format!("{machine} {token}"),
                        value: unquoted.to_string(),
                        range: inner_at..inner_at + unquoted.len(),
                        secrecy: if token == "login" {
                            Secrecy::No
                        } else {
                            Secrecy::Field
                        },
                        decoded: None,
                        place: None,
                    });
                    i += 1;
                }
            }
            "macdef" => i += 1,
            _ => {}
        }
        i += 1;
    }
    fields
}

/// INI-style files: `[section]` headers and `key = value` (or `key: value`) lines.
fn ini(text: &str, kind: SecretFileKind) -> Vec<FileField> {
    let mut fields = Vec::new();
    let mut section: Option<String> = None;
    for (start, line) in lines(text) {
        let trimmed = line.trim_start();
        if trimmed.starts_with(['#', ';']) || trimmed.is_empty() {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let name = header.split(']').next().unwrap_or("").trim();
            let name = name.strip_prefix("profile ").unwrap_or(name).trim();
            section = Some(name.to_string());
            continue;
        }
        // npm keys contain `:` (`//registry.npmjs.org/:_authToken`), so only `=` separates
        // there.
        let split = match kind {
            SecretFileKind::Npmrc => trimmed.find('='),
            _ => trimmed.find(['=', ':']),
        };
        let Some(eq) = split else { continue };
        let key = trimmed[..eq].trim();
        let raw = &trimmed[eq + 1..];
        let value_text = raw.trim();
        if key.is_empty() || value_text.is_empty() {
            continue;
        }
        let value_at =
            start + (line.len() - trimmed.len()) + eq + 1 + (raw.len() - raw.trim_start().len());
        let (value, range) = match value_text.chars().next() {
            Some(q @ ('"' | '\'')) if value_text.len() > 1 && value_text.ends_with(q) => (
                value_text[1..value_text.len() - 1].to_string(),
                value_at + 1..value_at + value_text.len() - 1,
            ),
            _ => (
                value_text.to_string(),
                value_at..value_at + value_text.len(),
            ),
        };
        let lower = key.to_ascii_lowercase();
        let (secrecy, decoded) = match kind {
            SecretFileKind::Aws => (
                if matches!(
                    lower.as_str(),
                    "aws_secret_access_key" | "aws_session_token" | "aws_security_token"
                ) {
                    Secrecy::Field
                } else {
                    Secrecy::No
                },
                None,
            ),
            SecretFileKind::Pypirc => (
                if lower == "password" {
                    Secrecy::Field
                } else {
                    Secrecy::No
                },
                None,
            ),
            _ => {
                // `_auth` is base64 `user:password`, `_password` base64 of the password.
                let last = lower.rsplit(':').next().unwrap_or(&lower);
                match last {
                    "_authtoken" => (Secrecy::Field, None),
                    "_auth" => (Secrecy::Field, decode_user_password(&value)),
                    "_password" => (Secrecy::Field, decode_base64(&value)),
                    _ if is_secret_name(last) => (Secrecy::Named, None),
                    _ => (Secrecy::No, None),
                }
            }
        };
        let slot = match &section {
            Some(s) if kind != SecretFileKind::Npmrc => format!("{s}.{key}"),
            _ => key.to_string(),
        };
        fields.push(FileField {
            slot,
            value,
            range,
            secrecy,
            decoded,
            place: None,
        });
    }
    fields
}

/// `~/.docker/config.json`: `auths.<registry>.auth` (base64 `user:password`),
/// `identitytoken`, `registrytoken`, `password`.
fn docker(text: &str) -> Vec<FileField> {
    let Ok(document) = json_document(text) else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    let Some(Json::Object(auths)) = document.get("auths") else {
        return fields;
    };
    for (registry, entry) in auths {
        let Json::Object(entry) = entry else { continue };
        for (key, value) in entry {
            let Json::String(value) = value else { continue };
            let (secrecy, decoded) = match key.as_str() {
                "auth" => (Secrecy::Field, decode_user_password(value)),
                "identitytoken" | "registrytoken" | "password" => (Secrecy::Field, None),
                _ => (Secrecy::No, None),
            };
            if let Some(range) = locate(text, value) {
                fields.push(FileField {
                    slot: format!("auths.{registry}.{key}"),
                    value: value.clone(),
                    range,
                    secrecy,
                    decoded,
                    place: None,
                });
            }
        }
    }
    fields
}

/// A kube config: per user, `token`, `password`, `client-key-data` (base64 PEM), the
/// `auth-provider` tokens, and secret-named `exec.env` values.
fn kube(text: &str) -> Vec<FileField> {
    // Within the parse budget of configs: a kube config's aliases cannot expand past it.
    let Ok(document) = config::yaml_value(text) else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    let Some(Yaml::Sequence(users)) = document.get("users") else {
        return fields;
    };
    for entry in users {
        let name = entry
            .get("name")
            .and_then(Yaml::as_str)
            .unwrap_or("?")
            .to_string();
        let Some(user) = entry.get("user") else {
            continue;
        };
        let mut push = |slot: String, value: &str, secrecy: Secrecy, decoded: Option<String>| {
            if let Some(range) = locate(text, value) {
                fields.push(FileField {
                    slot,
                    value: value.to_string(),
                    range,
                    secrecy,
                    decoded,
                    place: None,
                });
            }
        };
        for key in ["token", "password", "client-key-data", "username"] {
            if let Some(value) = user.get(key).and_then(Yaml::as_str) {
                let (secrecy, decoded) = match key {
                    "username" => (Secrecy::No, None),
                    "client-key-data" => (Secrecy::Field, decode_base64(value)),
                    _ => (Secrecy::Field, None),
                };
                push(format!("users.{name}.{key}"), value, secrecy, decoded);
            }
        }
        if let Some(Yaml::Mapping(config)) = user.get("auth-provider").and_then(|p| p.get("config"))
        {
            for (key, value) in config {
                let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else {
                    continue;
                };
                if matches!(
                    key,
                    "access-token" | "refresh-token" | "id-token" | "client-secret"
                ) {
                    push(
                        format!("users.{name}.auth-provider.{key}"),
                        value,
                        Secrecy::Field,
                        None,
                    );
                }
            }
        }
        if let Some(Yaml::Sequence(env)) = user.get("exec").and_then(|e| e.get("env")) {
            for var in env {
                let (Some(var_name), Some(value)) = (
                    var.get("name").and_then(Yaml::as_str),
                    var.get("value").and_then(Yaml::as_str),
                ) else {
                    continue;
                };
                let secrecy = if is_secret_name(var_name) {
                    Secrecy::Named
                } else {
                    Secrecy::No
                };
                push(
                    format!("users.{name}.exec.env.{var_name}"),
                    value,
                    secrecy,
                    None,
                );
            }
        }
    }
    fields
}

/// gcloud's application default credentials: a user's `refresh_token`, a service account's
/// `private_key`. (`client_secret` there is the SDK's public OAuth client, not a secret.)
fn gcloud(text: &str) -> Vec<FileField> {
    let Ok(Json::Object(document)) = json_document(text) else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    for (key, value) in &document {
        let Json::String(value) = value else { continue };
        let secrecy = match key.as_str() {
            "refresh_token" | "private_key" => Secrecy::Field,
            "client_id" | "client_email" | "private_key_id" | "type" | "project_id"
            | "quota_project_id" | "account" => Secrecy::No,
            _ => continue,
        };
        // The file holds the JSON-escaped form (a PEM's newlines are `\n`).
        let escaped = serde_json::to_string(value).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        if let Some(range) = locate(text, escaped) {
            fields.push(FileField {
                slot: key.clone(),
                value: value.clone(),
                range,
                secrecy,
                decoded: None,
                place: None,
            });
        }
    }
    fields
}

/// A JSON credential file as a document, when it is within the parse budget of configs
/// (counted on the text before anything is built).
fn json_document(text: &str) -> Result<Json, ()> {
    config::check_budget(ConfigFormat::Json, text).map_err(drop)?;
    serde_json::from_str(text).map_err(drop)
}

/// `.git-credentials`: one `https://user:password@host` per line.
fn git_credentials(text: &str) -> Vec<FileField> {
    let mut fields = Vec::new();
    for (start, line) in lines(text) {
        let Some(scheme_end) = line.find("://") else {
            continue;
        };
        let rest = &line[scheme_end + 3..];
        let Some(at) = rest.rfind('@') else { continue };
        let userinfo = &rest[..at];
        let host = rest[at + 1..].split('/').next().unwrap_or("");
        let Some(colon) = userinfo.find(':') else {
            continue;
        };
        let password = &userinfo[colon + 1..];
        if password.is_empty() {
            continue;
        }
        let value_at = start + scheme_end + 3 + colon + 1;
        fields.push(FileField {
            slot: format!("{}://{host} password", &line[..scheme_end]),
            value: password.to_string(),
            range: value_at..value_at + password.len(),
            secrecy: Secrecy::Field,
            decoded: None,
            place: None,
        });
    }
    fields
}

/// The byte range of the first occurrence of `value` in `text`.
fn locate(text: &str, value: &str) -> Option<Range<usize>> {
    if value.is_empty() {
        return None;
    }
    let at = memchr::memmem::find(text.as_bytes(), value.as_bytes())?;
    Some(at..at + value.len())
}

/// Finds where the values of a parsed structured file are written (its parser keeps no
/// positions): each value is looked for from where the previous one was found, as values come
/// in document order, then from the start (a value merged from an anchor). The bytes searched
/// are bounded, a few times the text's length, so that a file of a million values costs a few
/// passes over it, not a million: past the bound, values are no longer placed (their bytes
/// are still scanned, only the field that holds a key goes unnamed).
pub(crate) struct Locator<'t> {
    text: &'t str,
    cursor: usize,
    budget: usize,
}

/// Values shorter than this hold no key: not worth a search.
const MIN_LOCATED: usize = 8;

impl<'t> Locator<'t> {
    pub fn new(text: &'t str) -> Locator<'t> {
        Locator {
            text,
            cursor: 0,
            budget: text.len().saturating_mul(8).max(1 << 20),
        }
    }

    /// Where `value` is written, next.
    pub fn find(&mut self, value: &str) -> Option<Range<usize>> {
        if value.len() < MIN_LOCATED {
            return None;
        }
        let found = self
            .search(self.cursor, value)
            .or_else(|| self.search(0, value))?;
        self.cursor = found.end;
        Some(found)
    }

    fn search(&mut self, from: usize, value: &str) -> Option<Range<usize>> {
        let haystack = self.text.as_bytes().get(from..)?;
        if self.budget == 0 {
            return None;
        }
        let found = memchr::memmem::find(haystack, value.as_bytes());
        let searched = found.map_or(haystack.len(), |at| at + value.len());
        self.budget = self.budget.saturating_sub(searched);
        let at = from + found?;
        Some(at..at + value.len())
    }
}

/// Standard base64 (RFC 4648 §4) decoded to text; whitespace anywhere in it (a value folded
/// over lines) is left out.
pub(crate) fn decode_base64(value: &str) -> Option<String> {
    let compact: String = value.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The password of a base64 `user:password`.
pub(crate) fn decode_user_password(value: &str) -> Option<String> {
    let decoded = decode_base64(value)?;
    let (_, password) = decoded.split_once(':')?;
    (!password.is_empty()).then(|| password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(kind: SecretFileKind, text: &str) -> Vec<(String, String, Secrecy)> {
        let parsed = parse(kind, Path::new(""), text.as_bytes());
        for f in &parsed.fields {
            assert_eq!(
                &text[f.range.clone()],
                f.value.as_str(),
                "range of {}",
                f.slot
            );
        }
        parsed
            .fields
            .into_iter()
            .map(|f| (f.slot, f.value, f.secrecy))
            .collect()
    }

    fn s(slot: &str, value: &str, secrecy: Secrecy) -> (String, String, Secrecy) {
        (slot.to_string(), value.to_string(), secrecy)
    }

    #[test]
    fn recognises_by_path() {
        use SecretFileKind::*;
        for (path, kind) in [
            ("/h/.env", Env),
            ("/h/app/.env.production", Env),
            ("/h/app/prod.env", Env),
            ("/h/.zshrc", ShellProfile),
            ("/h/.config/fish/config.fish", ShellProfile),
            ("/h/.netrc", Netrc),
            ("/h/.npmrc", Npmrc),
            ("/h/.pypirc", Pypirc),
            ("/h/.aws/credentials", Aws),
            ("/h/.docker/config.json", DockerConfig),
            ("/h/.kube/config", KubeConfig),
            (
                "/h/.config/gcloud/application_default_credentials.json",
                Gcloud,
            ),
            (
                "/h/.config/gcloud/legacy_credentials/a@b.c/adc.json",
                Gcloud,
            ),
            ("/h/.git-credentials", GitCredentials),
        ] {
            assert_eq!(recognise(Path::new(path)), Some(kind), "{path}");
        }
        for path in [
            "/h/config.json",
            "/h/env",
            "/h/.env-tools/x",
            "/h/credentials",
        ] {
            assert_eq!(recognise(Path::new(path)), None, "{path}");
        }
    }

    #[test]
    fn env_and_shell_assignments() {
        let text = "# c\nexport OPENAI_API_KEY=\"abc def\"\nDEBUG=1\n  API_TOKEN='x1' # note\nset -gx FISH_TOKEN val9\nsetenv CSH_SECRET v\nexport PATH=$PATH:/x\n";
        assert_eq!(
            slots(SecretFileKind::ShellProfile, text),
            vec![
                s("OPENAI_API_KEY", "abc def", Secrecy::Named),
                s("DEBUG", "1", Secrecy::No),
                s("API_TOKEN", "x1", Secrecy::Named),
                s("FISH_TOKEN", "val9", Secrecy::Named),
                s("CSH_SECRET", "v", Secrecy::Named),
                s("PATH", "$PATH:/x", Secrecy::No),
            ]
        );
    }

    #[test]
    fn netrc_fields() {
        let text = "machine api.example.com\n  login bob\n  password hunter2\nmacdef init\ncd x\n\ndefault login anon password guest\n";
        assert_eq!(
            slots(SecretFileKind::Netrc, text),
            vec![
                s("machine api.example.com login", "bob", Secrecy::No),
                s(
                    "machine api.example.com password",
                    "hunter2",
                    Secrecy::Field
                ),
                s("default login", "anon", Secrecy::No),
                s("default password", "guest", Secrecy::Field),
            ]
        );
    }

    #[test]
    fn ini_files() {
        let aws = "[default]\naws_access_key_id = AKID\naws_secret_access_key=SECRET\n[profile prod]\naws_session_token = TOK\n";
        assert_eq!(
            slots(SecretFileKind::Aws, aws),
            vec![
                s("default.aws_access_key_id", "AKID", Secrecy::No),
                s("default.aws_secret_access_key", "SECRET", Secrecy::Field),
                s("prod.aws_session_token", "TOK", Secrecy::Field),
            ]
        );
        let npm = "registry=https://r.example.com/\n//registry.npmjs.org/:_authToken=\"tok1\"\n_auth=dXNlcjpwYXNz\n";
        let parsed = parse(SecretFileKind::Npmrc, Path::new(""), npm.as_bytes());
        assert_eq!(parsed.fields[1].slot, "//registry.npmjs.org/:_authToken");
        assert_eq!(parsed.fields[1].value, "tok1");
        assert_eq!(parsed.fields[1].secrecy, Secrecy::Field);
        assert_eq!(parsed.fields[2].decoded.as_deref(), Some("pass"));
        let pypi = "[pypi]\nusername: __token__\npassword: pypi-abc\n";
        assert_eq!(
            slots(SecretFileKind::Pypirc, pypi)[1],
            s("pypi.password", "pypi-abc", Secrecy::Field)
        );
    }

    #[test]
    fn structured_files() {
        let docker = r#"{"auths": {"ghcr.io": {"auth": "dXNlcjpzM2NyZXQ="}}, "credsStore": "x"}"#;
        let parsed = parse(
            SecretFileKind::DockerConfig,
            Path::new(""),
            docker.as_bytes(),
        );
        assert_eq!(parsed.fields[0].slot, "auths.ghcr.io.auth");
        assert_eq!(parsed.fields[0].decoded.as_deref(), Some("s3cret"));
        let kube = "apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: abc123\n    client-key-data: LS0tLQ==\n";
        let parsed = parse(SecretFileKind::KubeConfig, Path::new(""), kube.as_bytes());
        let got: Vec<(&str, Option<&str>)> = parsed
            .fields
            .iter()
            .map(|f| (f.slot.as_str(), f.decoded.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("users.admin.token", None),
                ("users.admin.client-key-data", Some("----"))
            ]
        );
        let adc = r#"{"client_id": "x.apps", "client_secret": "pub", "refresh_token": "1//0abc", "type": "authorized_user"}"#;
        let got: Vec<(String, Secrecy)> =
            parse(SecretFileKind::Gcloud, Path::new(""), adc.as_bytes())
                .fields
                .into_iter()
                .map(|f| (f.slot, f.secrecy))
                .collect();
        assert!(got.contains(&("refresh_token".to_string(), Secrecy::Field)));
        assert!(!got.iter().any(|(slot, _)| slot == "client_secret"));
        // Built here, so that no credential-shaped URL sits in the source.
        let creds = ["https://bob:", "tok%2F1", "@github.com\n"].concat();
        assert_eq!(
            slots(SecretFileKind::GitCredentials, &creds),
            vec![s("https://github.com password", "tok%2F1", Secrecy::Field)]
        );
    }
}
