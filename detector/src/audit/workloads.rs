//! Workloads (Compose services, Kubernetes objects, the daemon's containers) → the report's
//! `workloads[]`: each one with its secret-bearing values classified, and for a literal the
//! key it is. A key found in a file a workload reads (`env_file:`, a `secrets:` file, a
//! bind-mounted file) belongs to that workload too.
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{Auditor, Finding, Key};
use crate::{
    detect::value::ValueClass,
    path_text,
    source::container::{Part, Place, Workload, WorkloadEntry},
};

/// A workload of the report: what it is, where it is defined, and how its secrets are given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// The host whose report listed it (set when reports are merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub workload: Workload,
    /// The Compose file or manifest that defines it, or `container:NAME` for a container.
    #[serde(serialize_with = "path_text::one")]
    pub file: PathBuf,
    pub fields: Vec<WorkloadFieldEntry>,
}

/// One secret-bearing value of a workload, classified (never the value itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadFieldEntry {
    /// `environment.OPENAI_API_KEY`, `containers[app].env.API_KEY`, `data.token`.
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub part: Part,
    pub class: ValueClass,
    /// The key a literal is, when the audit reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// Give each finding in a file that a workload reads (and that its own file did not place)
/// that workload, so a key in a Compose service's `env_file` is the service's.
pub fn link_files(findings: &mut [Finding], defined: &[(PathBuf, WorkloadEntry)]) {
    let mut readers: HashMap<&Path, Place> = HashMap::new();
    for (_, entry) in defined {
        for (file, part) in &entry.files {
            readers.entry(file.as_path()).or_insert_with(|| Place {
                workload: entry.workload.clone(),
                part: *part,
            });
        }
    }
    if readers.is_empty() {
        return;
    }
    for finding in findings.iter_mut() {
        if finding.location.workload.is_some() {
            continue;
        }
        let path = normal(finding.location.provenance.file());
        if let Some(place) = readers.get(path.as_path()) {
            finding.context.extend(place.workload.namespace.clone());
            finding.context.push(place.workload.name.clone());
            finding.location.workload = Some(place.clone());
        }
    }
}

/// `a/./b` → `a/b`: Compose's paths are joined as written.
fn normal(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

impl Auditor {
    /// Every workload defined where the scan looked (each file's once), its fields
    /// classified, a literal's key by fingerprint when the audit reported it.
    pub fn workloads(
        &self,
        defined: &[(PathBuf, WorkloadEntry)],
        keys: &[Key],
    ) -> Vec<WorkloadReport> {
        let reported: HashSet<&str> = keys.iter().map(|k| k.fingerprint.as_str()).collect();
        let mut unique: BTreeMap<(PathBuf, Workload), Vec<WorkloadFieldEntry>> = BTreeMap::new();
        for (file, entry) in defined {
            let fields = entry
                .fields
                .iter()
                .map(|f| WorkloadFieldEntry {
                    field: f.field.clone(),
                    name: f.name.clone(),
                    part: f.part,
                    class: f.class,
                    fingerprint: (f.class == ValueClass::Literal)
                        .then(|| self.fingerprint(f.value.trim()))
                        .filter(|fp| reported.contains(fp.as_str())),
                })
                .collect();
            unique
                .entry((normal(file), entry.workload.clone()))
                .or_insert(fields);
        }
        unique
            .into_iter()
            .map(|((file, workload), fields)| WorkloadReport {
                host: None,
                workload,
                file,
                fields,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_without_dot_components() {
        assert_eq!(
            normal(Path::new("/srv/./app/.env")),
            PathBuf::from("/srv/app/.env")
        );
    }
}
