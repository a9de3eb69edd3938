//! The image config: what the image runs with (`Env`, `Cmd`, `Entrypoint`, labels) and how
//! it was built (`history[].created_by`, where `docker build --build-arg` values end up as
//! `|1 GH_TOKEN=… /bin/sh -c …`). Each part is its own blob, one value per line.
use std::{collections::BTreeMap, path::PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::error::ConfigError;
use crate::source::{Blob, ConfigValue, Origin, Provenance};

#[derive(Debug, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub history: Vec<History>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

pub fn time(text: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        serde_json::from_slice(bytes).map_err(ConfigError)
    }

    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.as_ref().map_or(&[], |r| &r.diff_ids)
    }

    /// For each layer (0-based), the history entry that made it: the non-empty entries in
    /// order, as Docker and BuildKit write them.
    pub fn layer_history(&self) -> Vec<usize> {
        self.history
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.empty_layer)
            .map(|(i, _)| i)
            .collect()
    }

    /// `linux/amd64[/v8]`
    pub fn platform(&self) -> Option<String> {
        let os = self.os.as_deref()?;
        let arch = self.architecture.as_deref()?;
        Some(match self.variant.as_deref() {
            Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
            _ => format!("{os}/{arch}"),
        })
    }

    /// The blobs of the config's values. `layers[i]` is the digest of layer `i`, to tie a
    /// history entry to the layer it made.
    pub fn blobs(&self, image: &str, layers: &[String]) -> Vec<Blob> {
        let base = ConfigValue {
            image: Some(image.to_string()),
            mtime: time(self.created.as_deref()),
            ..ConfigValue::default()
        };
        let mut blobs = Vec::new();
        let mut push = |path: String, lines: Vec<String>, value: ConfigValue| {
            if !lines.is_empty() {
                blobs.push(Blob {
                    bytes: lines.join("\n").into_bytes(),
                    provenance: Provenance {
                        path: PathBuf::from(path),
                        origin: Origin::ImageConfig(value),
                        backup: None,
                    },
                    project: image.to_string(),
                    root: PathBuf::from("/"),
                    mcp: None,
                    fields: None,
                });
            }
        };
        if let Some(run) = &self.config {
            push(
                "config.Env".into(),
                run.env.clone().unwrap_or_default(),
                base.clone(),
            );
            for (name, args) in [("Entrypoint", &run.entrypoint), ("Cmd", &run.cmd)] {
                if let Some(args) = args.as_ref().filter(|a| !a.is_empty()) {
                    push(format!("config.{name}"), vec![args.join(" ")], base.clone());
                }
            }
            let labels = run
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            push("config.Labels".into(), labels, base.clone());
        }
        let made_by: BTreeMap<usize, usize> = self
            .layer_history()
            .into_iter()
            .enumerate()
            .map(|(layer, entry)| (entry, layer))
            .collect();
        for (i, entry) in self.history.iter().enumerate() {
            let Some(created_by) = entry.created_by.as_deref().filter(|c| !c.is_empty()) else {
                continue;
            };
            let layer = made_by.get(&i).copied().filter(|&l| l < layers.len());
            push(
                format!("history[{i}].created_by"),
                vec![created_by.to_string()],
                ConfigValue {
                    mtime: time(entry.created.as_deref()).or(base.mtime),
                    layer: layer.map(|l| layers[l].clone()),
                    layer_index: layer.map(|l| l + 1),
                    created_by: Some(created_by.to_string()),
                    ..base.clone()
                },
            );
        }
        blobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_entries_are_tied_to_the_layers_they_made() {
        let config = ImageConfig::parse(
            br#"{"created":"2024-05-01T10:00:00Z","config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh","-c","run"],"Labels":{"team":"x"}},
                "history":[{"comment":"base"},{"created_by":"ARG T","empty_layer":true},{"created_by":"|1 T=v /bin/sh -c make"}],
                "rootfs":{"diff_ids":["sha256:aa","sha256:bb"]}}"#,
        )
        .unwrap();
        assert_eq!(config.layer_history(), [0, 2]);
        let blobs = config.blobs("app:prod", config.diff_ids());
        let find = |p: &str| {
            blobs
                .iter()
                .find(|b| b.provenance.path == std::path::Path::new(p))
                .unwrap_or_else(|| panic!("no {p}"))
        };
        assert_eq!(find("config.Env").bytes, b"PATH=/bin\nA=1");
        assert_eq!(find("config.Cmd").bytes, b"sh -c run");
        assert_eq!(find("config.Labels").bytes, b"team=x");
        let value = |p: &str| match &find(p).provenance.origin {
            Origin::ImageConfig(value) => value.clone(),
            other => panic!("{p} is {other:?}"),
        };
        let made = value("history[2].created_by");
        assert_eq!(made.layer.as_deref(), Some("sha256:bb"));
        assert_eq!(made.layer_index, Some(2));
        let arg = value("history[1].created_by");
        assert_eq!(arg.layer, None);
        assert_eq!(find("history[1].created_by").project, "app:prod");
    }
}
