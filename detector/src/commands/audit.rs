//! `detector audit`: this host in one report, through the same pipeline as `detector scan`.
use std::process::ExitCode;

use super::{
    scan,
    store::{self, Recording},
    EXIT_ERROR,
};
use crate::{
    cli::AuditArgs,
    pipeline::host::{self, HostOptions},
    report::escape::visible,
    store::StoreUrl,
};

pub fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    // Recorded in the host's inventory unless asked not to (or in the one `--store` names).
    let url = if args.no_store {
        None
    } else {
        let named = args.scan.store.clone().or_else(|| {
            std::env::var("DETECTOR_STORE")
                .ok()
                .filter(|s| !s.is_empty())
        });
        match named {
            Some(url) => Some(StoreUrl::parse(&url)?),
            None => StoreUrl::host_default(),
        }
    };
    let recording = Recording {
        url,
        scope: store::AUDIT.to_string(),
    };
    let host = match host::targets(&HostOptions {
        homes: args.homes.clone(),
        images: !args.no_images,
        containers: !args.no_containers,
        all_files: args.all_files,
    }) {
        Ok(host) => host,
        Err(err) => {
            eprintln!("detector: {}", visible(&err.to_string()));
            return Ok(EXIT_ERROR.into());
        }
    };
    let names: Vec<String> = host
        .homes
        .iter()
        .map(|h| visible(&h.dir.to_string_lossy()).into_owned())
        .collect();
    let plural = |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    eprintln!(
        "detector audit: {} home{} ({}), {} git repositor{}, {} image{}, {} container{}",
        host.homes.len(),
        plural(host.homes.len(), "", "s"),
        names.join(", "),
        host.repositories,
        plural(host.repositories, "y", "ies"),
        host.images,
        plural(host.images, "", "s"),
        host.containers,
        plural(host.containers, "", "s"),
    );
    if let Some(note) = &host.image_note {
        eprintln!("detector audit: {note}");
    }
    if !args.all_files {
        eprintln!(
            "detector audit: tool-managed trees (toolchains, package caches, node_modules) left out; --all-files reads them"
        );
    }
    let mut targets = host.targets;
    targets.extend(args.targets.iter().cloned());
    let mut options = args.scan.clone();
    options.exclude.extend(host.excludes);
    scan::run_targets(&targets, &options, &recording)
}
