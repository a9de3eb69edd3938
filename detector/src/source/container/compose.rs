//! Compose files (`compose.yaml`, `docker-compose*.yml`; every version of the Compose
//! Specification, whose top-level `version:` is informative only): each service's
//! `environment:` (a map, or a list of `NAME=value`), `env_file:`, `secrets:`, `build.args`,
//! `command:` and `labels:`. YAML anchors and `<<` merge keys are resolved first, so values
//! shared through `x-` blocks are read where they are used (and scanned where they are
//! written, as every byte of the file is).
//!
//! Source: the Compose Specification, <https://docs.docker.com/reference/compose-file/services/>
//! (environment, env_file, secrets, build), <https://docs.docker.com/reference/compose-file/secrets/>,
//! <https://docs.docker.com/reference/compose-file/extension/> and
//! <https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/>.
use std::path::{Path, PathBuf};

use serde_norway::Value as Yaml;

use super::{scalar, Part, Place, Workload, WorkloadEntry, WorkloadField};
use crate::{
    detect::{filter::is_literal_secret, value::classify, value::ValueClass},
    mcp::{is_secret_name, parse as config},
    source::secret_file::{FileField, Locator, Secrecy, SecretFile, SecretFileKind},
};

/// Is `path` named like a Compose file? (`compose.yaml`, `compose.override.yml`,
/// `docker-compose.yml`, `docker-compose.prod.yaml`, …)
pub fn is_compose_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    (lower.ends_with(".yml") || lower.ends_with(".yaml"))
        && (lower.starts_with("compose.") || lower.starts_with("docker-compose"))
}

/// Does a parsed YAML document look like a Compose file? A top-level `services:` mapping
/// whose entries say what to run or how.
pub fn looks_like_compose(document: &Yaml) -> bool {
    let Some(Yaml::Mapping(services)) = document.get("services") else {
        return false;
    };
    services.values().any(|service| {
        ["image", "build", "environment", "env_file", "command"]
            .iter()
            .any(|key| service.get(key).is_some())
    })
}

/// Read a Compose file: `None` when it does not parse or is not one. `path` is where it is
/// (its directory resolves `env_file:` and `secrets: file:`, and names the project when the
/// file does not).
pub fn parse(path: &Path, text: &str) -> Option<SecretFile> {
    let mut document = config::yaml_value(text).ok()?;
    // Anchors were expanded by the parser; `<<: *base` merges are applied here.
    document.apply_merge().ok()?;
    let services = if looks_like_compose(&document) {
        match document.get("services") {
            Some(Yaml::Mapping(services)) => services.clone(),
            _ => return None,
        }
    } else if is_compose_name(path) {
        legacy_services(&document)?
    } else {
        return None;
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let project = document
        .get("name")
        .and_then(Yaml::as_str)
        .map(str::to_string)
        .or_else(|| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty())
                .map(str::to_ascii_lowercase)
        });
    let top_secrets = document.get("secrets");
    let mut file = SecretFile {
        kind: SecretFileKind::Compose,
        fields: Vec::new(),
        workloads: Vec::new(),
    };
    let mut locator = Locator::new(text);
    for (name, service) in &services {
        let Some(name) = name.as_str() else { continue };
        let workload = Workload {
            kind: Workload::COMPOSE_SERVICE.to_string(),
            namespace: project.clone(),
            name: name.to_string(),
        };
        let mut reader = Reader {
            locator: &mut locator,
            workload: &workload,
            prefix: format!("services.{name}"),
            fields: &mut file.fields,
            entry: WorkloadEntry {
                workload: workload.clone(),
                fields: Vec::new(),
                files: Vec::new(),
            },
        };
        if let Some(environment) = service.get("environment") {
            reader.assignments(environment, "environment", Part::Env);
        }
        if let Some(build) = service.get("build") {
            if let Some(args) = build.get("args") {
                reader.assignments(args, "build.args", Part::BuildArg);
            }
        }
        for env_file in env_files(service.get("env_file")) {
            reader.entry.files.push((joined(dir, &env_file), Part::Env));
        }
        if let Some(Yaml::Sequence(secrets)) = service.get("secrets") {
            for secret in secrets {
                let source = secret
                    .as_str()
                    .or_else(|| secret.get("source").and_then(Yaml::as_str));
                let Some(source) = source else { continue };
                reader.entry.fields.push(WorkloadField {
                    field: format!("secrets.{source}"),
                    name: Some(source.to_string()),
                    part: Part::Mount,
                    class: ValueClass::SecretRef,
                    value: source.to_string(),
                });
                let defined = top_secrets.and_then(|s| s.get(source));
                if let Some(file) = defined.and_then(|d| d.get("file")).and_then(Yaml::as_str) {
                    reader
                        .entry
                        .files
                        .push((joined(dir, Path::new(file)), Part::Mount));
                }
                if let Some(variable) = defined
                    .and_then(|d| d.get("environment"))
                    .and_then(Yaml::as_str)
                {
                    reader.entry.fields.push(WorkloadField {
                        field: format!("secrets.{source}.environment"),
                        name: Some(variable.to_string()),
                        part: Part::Mount,
                        class: ValueClass::EnvRef,
                        value: format!("${{{variable}}}"),
                    });
                }
            }
        }
        if let Some(command) = service.get("command") {
            reader.words(command, "command", Part::Command);
        }
        if let Some(entrypoint) = service.get("entrypoint") {
            reader.words(entrypoint, "entrypoint", Part::Command);
        }
        if let Some(labels) = service.get("labels") {
            reader.assignments(labels, "labels", Part::Label);
        }
        let entry = reader.entry;
        file.workloads.push(entry);
    }
    Some(file)
}

/// `dir/path` as Compose resolves it, without `.` components (so that it names the file as a
/// walk of `dir` does).
fn joined(dir: &Path, path: &Path) -> PathBuf {
    dir.join(path)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The services of a file of Compose's first format (no `services:`: every top-level entry
/// that says what to run is a service), read only from a file named like a Compose file.
fn legacy_services(document: &Yaml) -> Option<serde_norway::Mapping> {
    let Yaml::Mapping(top) = document else {
        return None;
    };
    let services: serde_norway::Mapping = top
        .iter()
        .filter(|(_, service)| service.get("image").is_some() || service.get("build").is_some())
        .map(|(name, service)| (name.clone(), service.clone()))
        .collect();
    (!services.is_empty()).then_some(services)
}

/// `env_file:` as a string, a list of strings, or a list of `{path, required}`.
fn env_files(value: Option<&Yaml>) -> Vec<PathBuf> {
    match value {
        Some(Yaml::String(path)) => vec![PathBuf::from(path)],
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|item| {
                item.as_str()
                    .or_else(|| item.get("path").and_then(Yaml::as_str))
            })
            .map(PathBuf::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// The values of one service, read into the file's fields and the workload's entry.
struct Reader<'a, 't> {
    locator: &'a mut Locator<'t>,
    workload: &'a Workload,
    prefix: String,
    fields: &'a mut Vec<FileField>,
    entry: WorkloadEntry,
}

impl Reader<'_, '_> {
    /// `NAME: value` entries, or a list of `NAME=value` (a bare `NAME`, like a null value,
    /// passes the variable through from the environment Compose runs in).
    fn assignments(&mut self, value: &Yaml, what: &str, part: Part) {
        let mut pairs: Vec<(String, Option<String>)> = Vec::new();
        match value {
            Yaml::Mapping(map) => {
                for (name, value) in map {
                    let Some(name) = scalar(name) else { continue };
                    pairs.push((name, scalar(value)));
                }
            }
            Yaml::Sequence(items) => {
                for item in items {
                    let Some(item) = scalar(item) else { continue };
                    match item.split_once('=') {
                        Some((name, value)) => pairs.push((name.to_string(), Some(value.into()))),
                        None => pairs.push((item, None)),
                    }
                }
            }
            _ => {}
        }
        for (name, value) in pairs {
            let field = format!("{what}.{name}");
            let class = match &value {
                None => ValueClass::EnvRef,
                Some(v) => classify(v),
            };
            let value = value.unwrap_or_else(|| format!("${{{name}}}"));
            self.field(&field, &name, &value, part);
            let secret_named = is_secret_name(&name);
            let keeps = match class {
                ValueClass::Literal => secret_named || is_literal_secret(&value),
                ValueClass::Empty | ValueClass::Placeholder | ValueClass::ConfigRef => secret_named,
                _ => secret_named || class != ValueClass::EnvRef,
            };
            if keeps {
                self.entry.fields.push(WorkloadField {
                    field,
                    name: Some(name),
                    part,
                    class,
                    value,
                });
            }
        }
    }

    /// A command line as a string or a list of words.
    fn words(&mut self, value: &Yaml, what: &str, part: Part) {
        match value {
            Yaml::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(word) = scalar(item) {
                        self.field(&format!("{what}[{i}]"), what, &word, part);
                    }
                }
            }
            other => {
                if let Some(line) = scalar(other) {
                    self.field(what, what, &line, part);
                }
            }
        }
    }

    /// A value of the file, where it is written, so that a key found there is named by it.
    fn field(&mut self, field: &str, name: &str, value: &str, part: Part) {
        let Some(range) = self.locator.find(value) else {
            return;
        };
        let secrecy = match part {
            Part::Env | Part::BuildArg if is_secret_name(name) => Secrecy::Named,
            _ => Secrecy::No,
        };
        self.fields.push(FileField {
            slot: format!("{}.{field}", self.prefix),
            value: value.to_string(),
            range,
            secrecy,
            decoded: None,
            place: Some(Place {
                workload: self.workload.clone(),
                part,
            }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_compose_files() {
        for name in [
            "compose.yaml",
            "compose.yml",
            "compose.override.yaml",
            "docker-compose.yml",
            "docker-compose.prod.yaml",
        ] {
            assert!(is_compose_name(Path::new(name)), "{name}");
        }
        for name in [
            "composer.json",
            "compose.json",
            "my-compose.yml",
            "values.yaml",
        ] {
            assert!(!is_compose_name(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn environments_as_maps_lists_anchors_and_references() {
        let key = ["sk-proj-", &"Ab1".repeat(16)].concat();
        let text = format!(
            r#"
x-common: &common
  environment:
    SHARED_TOKEN: "{key}"
services:
  api:
    <<: *common
    image: shop/api:1
    env_file: [.env.api, {{path: ./more.env, required: false}}]
    build:
      context: .
      args:
        - NPM_TOKEN=${{NPM_TOKEN}}
    secrets: [db_password]
  worker:
    image: shop/worker
    environment:
      - OPENAI_API_KEY={key}
      - GITHUB_TOKEN
      - DEBUG=1
      - ANTHROPIC_API_KEY=${{ANTHROPIC_API_KEY:?set it}}
secrets:
  db_password:
    file: ./db_password.txt
"#
        );
        let file = parse(Path::new("/srv/shop/compose.yaml"), &text).unwrap();
        let api = &file.workloads[0];
        assert_eq!(api.workload.label(), "compose-service shop/api");
        let class = |entry: &WorkloadEntry, field: &str| {
            entry
                .fields
                .iter()
                .find(|f| f.field == field)
                .unwrap_or_else(|| panic!("no {field} in {:?}", entry.fields))
                .class
        };
        assert_eq!(class(api, "environment.SHARED_TOKEN"), ValueClass::Literal);
        assert_eq!(class(api, "build.args.NPM_TOKEN"), ValueClass::EnvRef);
        assert_eq!(class(api, "secrets.db_password"), ValueClass::SecretRef);
        assert_eq!(
            api.files,
            [
                (PathBuf::from("/srv/shop/.env.api"), Part::Env),
                (PathBuf::from("/srv/shop/more.env"), Part::Env),
                (PathBuf::from("/srv/shop/db_password.txt"), Part::Mount),
            ]
        );
        let worker = &file.workloads[1];
        assert_eq!(
            class(worker, "environment.OPENAI_API_KEY"),
            ValueClass::Literal
        );
        assert_eq!(
            class(worker, "environment.GITHUB_TOKEN"),
            ValueClass::EnvRef
        );
        assert_eq!(
            class(worker, "environment.ANTHROPIC_API_KEY"),
            ValueClass::EnvRef
        );
        assert!(!worker.fields.iter().any(|f| f.field == "environment.DEBUG"));
        // The literal's field sits where it is written, and names its service.
        let field = file
            .fields
            .iter()
            .find(|f| f.slot == "services.worker.environment.OPENAI_API_KEY")
            .unwrap();
        assert_eq!(&text[field.range.clone()], key);
        assert_eq!(field.place.as_ref().unwrap().part, Part::Env);
    }

    #[test]
    fn the_first_format_has_no_services_key() {
        let key = ["glpat-", &"x7Y".repeat(7)].concat();
        let text = format!("web:\n  image: shop/web\n  environment:\n    - GITLAB_TOKEN={key}\n");
        let file = parse(Path::new("/srv/shop/docker-compose.yml"), &text).unwrap();
        assert_eq!(
            file.workloads[0].workload.label(),
            "compose-service shop/web"
        );
        assert!(parse(Path::new("/srv/shop/values.yml"), &text).is_none());
    }

    #[test]
    fn what_is_not_compose_is_none() {
        assert!(parse(Path::new("compose.yaml"), "services: [1, 2]").is_none());
        assert!(parse(Path::new("compose.yaml"), "a: b").is_none());
        assert!(parse(Path::new("compose.yaml"), "{{{").is_none());
    }
}
