//! Kubernetes manifests: YAML (one document or many, `---`-separated, as Helm and kustomize
//! write them; JSON too), and `List`/`…List` objects as `kubectl get -o yaml` writes them.
//!
//! - Containers (`containers`, `initContainers`, `ephemeralContainers` of any pod spec: a
//!   Pod's, a workload's `spec.template`, a CronJob's `jobTemplate`, a custom resource's):
//!   `env[].value` (a literal) against `env[].valueFrom.secretKeyRef`/`configMapKeyRef`
//!   (references), `envFrom[].secretRef`/`configMapRef`, `command` and `args`.
//! - `Secret`s: `data` values are base64 and are scanned decoded (the encoded form is never a
//!   key of its own); `stringData` as written; a `kubernetes.io/dockerconfigjson` Secret's
//!   registry `auth` (base64 of `user:password`) is decoded too.
//! - `ConfigMap`s: `data`, and `binaryData` decoded.
//!
//! Sources: <https://kubernetes.io/docs/tasks/inject-data-application/define-environment-variable-container/>,
//! <https://kubernetes.io/docs/concepts/configuration/secret/>,
//! <https://kubernetes.io/docs/concepts/configuration/configmap/>,
//! <https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/>.
use serde_norway::Value as Yaml;

use super::{scalar, Part, Place, Workload, WorkloadEntry, WorkloadField};
use crate::{
    detect::{filter::is_literal_secret, value::classify, value::ValueClass},
    mcp::{is_secret_name, parse as config},
    source::secret_file::{
        decode_base64, decode_user_password, FileField, Locator, Secrecy, SecretFile,
        SecretFileKind,
    },
};

/// How deep a custom resource's pod spec is looked for.
const MAX_SPEC_DEPTH: usize = 8;

/// Kinds whose objects live in no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Keys of a Secret that are not secret (they name or certify, they do not grant).
const PUBLIC_SECRET_KEYS: &[&str] = &[
    "username",
    "user",
    "namespace",
    "ca.crt",
    "tls.crt",
    "token-id",
    "host",
    "hostname",
    "port",
    "database",
    "email",
];

/// Keys of a Secret whose every literal value is a credential, whatever it looks like.
const CREDENTIAL_SECRET_KEYS: &[&str] = &[
    "password",
    "token",
    "tls.key",
    "ssh-privatekey",
    "token-secret",
    ".dockerconfigjson",
    ".dockercfg",
];

/// Does the text look like Kubernetes objects, before it is parsed?
pub fn may_be_manifest(text: &str) -> bool {
    text.contains("apiVersion") && text.contains("kind")
}

/// Read manifests: `None` when the text does not parse or holds no Kubernetes object.
pub fn parse(text: &str) -> Option<SecretFile> {
    if !may_be_manifest(text) {
        return None;
    }
    let documents = config::yaml_documents(text).ok()?;
    let mut objects = Vec::new();
    for document in &documents {
        collect_objects(document, None, &mut objects);
    }
    if objects.is_empty() {
        return None;
    }
    let mut file = SecretFile {
        kind: SecretFileKind::Kubernetes,
        fields: Vec::new(),
        workloads: Vec::new(),
    };
    let mut locator = Locator::new(text);
    for (kind, object) in objects {
        let metadata = object.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Yaml::as_str)
            .unwrap_or("?")
            .to_string();
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Yaml::as_str)
            .map(str::to_string)
            .or_else(|| (!CLUSTER_SCOPED.contains(&kind.as_str())).then(|| "default".into()));
        let workload = Workload {
            kind: kind.clone(),
            namespace,
            name,
        };
        let mut reader = Reader {
            locator: &mut locator,
            fields: &mut file.fields,
            entry: WorkloadEntry {
                workload,
                fields: Vec::new(),
                files: Vec::new(),
            },
        };
        match kind.as_str() {
            "Secret" => reader.secret(object),
            "ConfigMap" => reader.config_map(object),
            _ => reader.pod_specs(object, 0),
        }
        if !reader.entry.fields.is_empty() {
            file.workloads.push(reader.entry);
        }
    }
    Some(file)
}

/// The objects of a document: itself, or the items of a list (whose items may lack their
/// kind: a `SecretList`'s are Secrets).
fn collect_objects<'a>(
    document: &'a Yaml,
    implied: Option<&str>,
    out: &mut Vec<(String, &'a Yaml)>,
) {
    let kind = document
        .get("kind")
        .and_then(Yaml::as_str)
        .or(implied)
        .map(str::to_string);
    let Some(kind) = kind else { return };
    if document.get("apiVersion").is_none() && implied.is_none() {
        return;
    }
    if let Some(Yaml::Sequence(items)) = document.get("items") {
        if kind == "List" || kind.ends_with("List") {
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            for item in items {
                collect_objects(item, item_kind, out);
            }
            return;
        }
    }
    out.push((kind, document));
}

struct Reader<'a, 't> {
    locator: &'a mut Locator<'t>,
    fields: &'a mut Vec<FileField>,
    entry: WorkloadEntry,
}

impl Reader<'_, '_> {
    fn place(&self, part: Part) -> Place {
        Place {
            workload: self.entry.workload.clone(),
            part,
        }
    }

    fn push_field(
        &mut self,
        slot: String,
        value: &str,
        part: Part,
        secrecy: Secrecy,
        decoded: Option<String>,
    ) {
        let Some(range) = self.locator.find(value) else {
            return;
        };
        let place = Some(self.place(part));
        self.fields.push(FileField {
            slot,
            value: value.to_string(),
            range,
            secrecy,
            decoded,
            place,
        });
    }

    fn classified(
        &mut self,
        field: String,
        name: &str,
        part: Part,
        class: ValueClass,
        value: &str,
    ) {
        self.entry.fields.push(WorkloadField {
            field,
            name: Some(name.to_string()),
            part,
            class,
            value: value.to_string(),
        });
    }

    /// A Secret's `data` (base64) and `stringData`.
    fn secret(&mut self, object: &Yaml) {
        let docker = object
            .get("type")
            .and_then(Yaml::as_str)
            .is_some_and(|t| t.starts_with("kubernetes.io/docker"));
        for (section, encoded) in [("data", true), ("stringData", false)] {
            let Some(Yaml::Mapping(data)) = object.get(section) else {
                continue;
            };
            for (key, value) in data {
                let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else {
                    continue;
                };
                let secrecy = secret_key_secrecy(key);
                // Not base64 (or not text): scanned as written.
                let plain = if encoded { decode_base64(value) } else { None };
                let mut seen = plain.clone().unwrap_or_else(|| value.to_string());
                // A registry config's credentials are its passwords (one per line), not the
                // JSON around them.
                if docker {
                    if let Some(passwords) = registry_passwords(&seen) {
                        seen = passwords;
                    }
                }
                let decoded = (encoded || docker).then(|| seen.clone());
                self.push_field(
                    format!("{section}.{key}"),
                    value,
                    Part::SecretData,
                    secrecy,
                    decoded,
                );
                if secrecy != Secrecy::No {
                    let class = match classify(&seen) {
                        // A Secret holds its value: written here, it is a literal whatever
                        // its shape (a reference-looking value is still what is stored).
                        ValueClass::Empty => ValueClass::Empty,
                        _ => ValueClass::Literal,
                    };
                    self.classified(
                        format!("{section}.{key}"),
                        key,
                        Part::SecretData,
                        class,
                        seen.lines().next().unwrap_or_default(),
                    );
                }
            }
        }
    }

    /// A ConfigMap's `data` and `binaryData` (decoded): a value named like a secret, or that
    /// looks like a key, is reported.
    fn config_map(&mut self, object: &Yaml) {
        for (section, encoded) in [("data", false), ("binaryData", true)] {
            let Some(Yaml::Mapping(data)) = object.get(section) else {
                continue;
            };
            for (key, value) in data {
                let (Some(key), Some(value)) = (key.as_str(), value.as_str()) else {
                    continue;
                };
                let decoded = if encoded { decode_base64(value) } else { None };
                let plain = decoded.as_deref().unwrap_or(value);
                let secret_named = is_secret_name(key);
                let secrecy = if secret_named {
                    Secrecy::Named
                } else {
                    Secrecy::No
                };
                self.push_field(
                    format!("{section}.{key}"),
                    value,
                    Part::ConfigData,
                    secrecy,
                    decoded.clone(),
                );
                if secret_named || is_literal_secret(plain) && plain.len() < 512 {
                    let class = classify(plain);
                    self.classified(
                        format!("{section}.{key}"),
                        key,
                        Part::ConfigData,
                        class,
                        plain,
                    );
                }
            }
        }
    }

    /// Every pod spec under `value`: a mapping with `containers` is one.
    fn pod_specs(&mut self, value: &Yaml, depth: usize) {
        if depth > MAX_SPEC_DEPTH {
            return;
        }
        let Yaml::Mapping(map) = value else { return };
        if let Some(Yaml::Sequence(_)) = map.get("containers") {
            for list in ["initContainers", "containers", "ephemeralContainers"] {
                if let Some(Yaml::Sequence(containers)) = map.get(list) {
                    for container in containers {
                        self.container(list, container);
                    }
                }
            }
            return;
        }
        for (key, child) in map {
            // Metadata and status hold no pod spec.
            if matches!(key.as_str(), Some("metadata" | "status")) {
                continue;
            }
            self.pod_specs(child, depth + 1);
        }
    }

    fn container(&mut self, list: &str, container: &Yaml) {
        let name = container
            .get("name")
            .and_then(Yaml::as_str)
            .unwrap_or("?")
            .to_string();
        let prefix = format!("{list}[{name}]");
        if let Some(Yaml::Sequence(env)) = container.get("env") {
            for var in env {
                let Some(var_name) = var.get("name").and_then(Yaml::as_str) else {
                    continue;
                };
                let field = format!("{prefix}.env.{var_name}");
                if let Some(value_from) = var.get("valueFrom") {
                    let reference = [
                        ("secretKeyRef", ValueClass::SecretRef),
                        ("configMapKeyRef", ValueClass::ConfigRef),
                    ]
                    .into_iter()
                    .find_map(|(how, class)| value_from.get(how).map(|r| (r, class)));
                    if let Some((reference, class)) = reference {
                        let object = reference.get("name").and_then(Yaml::as_str).unwrap_or("?");
                        let key = reference.get("key").and_then(Yaml::as_str).unwrap_or("?");
                        self.classified(
                            field,
                            var_name,
                            Part::Env,
                            class,
                            &format!("{object}/{key}"),
                        );
                    }
                    continue;
                }
                let Some(value) = var.get("value").and_then(scalar) else {
                    continue;
                };
                let secret_named = is_secret_name(var_name);
                let secrecy = if secret_named {
                    Secrecy::Named
                } else {
                    Secrecy::No
                };
                self.push_field(field.clone(), &value, Part::Env, secrecy, None);
                let class = classify(&value);
                if secret_named || (class == ValueClass::Literal && is_literal_secret(&value)) {
                    self.classified(field, var_name, Part::Env, class, &value);
                }
            }
        }
        if let Some(Yaml::Sequence(sources)) = container.get("envFrom") {
            for (i, source) in sources.iter().enumerate() {
                for (how, class) in [
                    ("secretRef", ValueClass::SecretRef),
                    ("configMapRef", ValueClass::ConfigRef),
                ] {
                    if let Some(object) = source
                        .get(how)
                        .and_then(|r| r.get("name"))
                        .and_then(Yaml::as_str)
                    {
                        self.classified(
                            format!("{prefix}.envFrom[{i}].{how}"),
                            object,
                            Part::Env,
                            class,
                            object,
                        );
                    }
                }
            }
        }
        for what in ["command", "args"] {
            if let Some(Yaml::Sequence(words)) = container.get(what) {
                for (i, word) in words.iter().enumerate() {
                    if let Some(word) = scalar(word) {
                        self.push_field(
                            format!("{prefix}.{what}[{i}]"),
                            &word,
                            Part::Command,
                            Secrecy::No,
                            None,
                        );
                    }
                }
            }
        }
    }
}

/// How sure a Secret's key is to hold a credential.
fn secret_key_secrecy(key: &str) -> Secrecy {
    if PUBLIC_SECRET_KEYS.contains(&key) {
        Secrecy::No
    } else if CREDENTIAL_SECRET_KEYS.contains(&key) || is_secret_name(key) {
        Secrecy::Field
    } else {
        Secrecy::Named
    }
}

/// The passwords of a Docker config's registries (`auths.*.password`, and the password half
/// of each base64 `auth`), one per line.
fn registry_passwords(json: &str) -> Option<String> {
    let config: serde_json::Value = serde_json::from_str(json).ok()?;
    let auths = config.get("auths").or(Some(&config))?.as_object()?;
    let mut out = Vec::new();
    for auth in auths.values() {
        if let Some(password) = auth.get("password").and_then(|p| p.as_str()) {
            out.push(password.to_string());
        }
        if let Some(password) = auth
            .get("auth")
            .and_then(|a| a.as_str())
            .and_then(decode_user_password)
        {
            out.push(password);
        }
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn workloads_secrets_and_config_maps() {
        let key = ["sk-proj-", &"Zq7".repeat(16)].concat();
        let token = ["ghp_", &"k9".repeat(18)].concat();
        let text = format!(
            r#"---
# Source: shop/templates/api.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: prod}}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - name: OPENAI_API_KEY
              value: "{key}"
            - name: GITHUB_TOKEN
              valueFrom: {{secretKeyRef: {{name: gh, key: token}}}}
            - name: REGION
              valueFrom: {{configMapKeyRef: {{name: cfg, key: region}}}}
          envFrom: [{{secretRef: {{name: api-keys}}}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: gh}}
data:
  token: {}
  username: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: prod}}
data:
  region: eu-west-1
  SLACK_TOKEN: "{token}"
"#,
            b64(&token),
            b64("robot")
        );
        let file = parse(&text).unwrap();
        let labels: Vec<String> = file.workloads.iter().map(|w| w.workload.label()).collect();
        assert_eq!(
            labels,
            [
                "Deployment prod/api",
                "Secret default/gh",
                "ConfigMap prod/cfg"
            ]
        );
        let classes: Vec<(&str, ValueClass)> = file.workloads[0]
            .fields
            .iter()
            .map(|f| (f.field.as_str(), f.class))
            .collect();
        assert_eq!(
            classes,
            [
                ("containers[app].env.OPENAI_API_KEY", ValueClass::Literal),
                ("containers[app].env.GITHUB_TOKEN", ValueClass::SecretRef),
                ("containers[app].env.REGION", ValueClass::ConfigRef),
                (
                    "containers[app].envFrom[0].secretRef",
                    ValueClass::SecretRef
                ),
            ]
        );
        let field = |slot: &str| {
            file.fields
                .iter()
                .find(|f| f.slot == slot)
                .unwrap_or_else(|| panic!("no {slot}"))
        };
        assert_eq!(
            &text[field("containers[app].env.OPENAI_API_KEY").range.clone()],
            key
        );
        let data = field("data.token");
        assert_eq!(data.decoded.as_deref(), Some(token.as_str()));
        assert_eq!(data.secrecy, Secrecy::Field);
        assert_eq!(field("data.username").secrecy, Secrecy::No);
        assert_eq!(
            field("data.SLACK_TOKEN").place.as_ref().unwrap().part,
            Part::ConfigData
        );
    }

    #[test]
    fn lists_docker_configs_and_garbage() {
        let password = ["dckr_pat_", &"x1Y".repeat(9)].concat();
        let config = format!(
            r#"{{"auths":{{"registry.example.com":{{"auth":"{}"}}}}}}"#,
            b64(&format!("ci:{password}"))
        );
        let text = format!(
            "apiVersion: v1\nkind: SecretList\nitems:\n- metadata: {{name: pull}}\n  type: kubernetes.io/dockerconfigjson\n  data:\n    .dockerconfigjson: {}\n",
            b64(&config)
        );
        let file = parse(&text).unwrap();
        let field = &file.fields[0];
        assert_eq!(field.decoded.as_deref(), Some(password.as_str()));
        assert_eq!(file.workloads[0].workload.label(), "Secret default/pull");
        assert!(parse("kind: x\napiVersion: [").is_none());
        assert!(parse("just: text").is_none());
        // Not base64: read as written, no panic.
        let odd = "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata:\n  token: '%%%'\n";
        assert!(parse(odd).is_some());
    }
}
