//! Where the command line's flags become the checked values the library takes, once: sizes
//! and targets are parsed by clap; here the files the flags name are read (a baseline, extra
//! rules, the org key) before a long scan starts, so a bad one fails at once.
use std::num::NonZeroUsize;

use anyhow::Context;

use crate::{
    audit::OrgKey,
    cli::{FailOn, ScanOptions, VerifyArgs, VerifyConnection},
    detect::{RuleSet, Severity},
    pipeline::{self, Pipeline},
    report::baseline::Baseline,
    source::{archive::ArchiveLimits, SourceOptions},
    verify,
};

/// The pipeline `scan` and `audit` run, from their shared options.
pub fn pipeline(args: &ScanOptions) -> anyhow::Result<Pipeline> {
    // A baseline that cannot be read is a usage error, found before a long scan.
    let baseline = args
        .baseline
        .as_deref()
        .map(Baseline::fingerprints)
        .transpose()?;
    if let Some(threads) = args.threads {
        scanning_threads(threads)?;
    }
    let org_key = OrgKey::load(args.org_key_file.as_deref())?;
    let mut rules = RuleSet::builtin()?;
    if let Some(dir) = &args.rules {
        rules.extend(RuleSet::load_dir(dir)?);
    }
    let options = pipeline::Options {
        sources: SourceOptions {
            max_file_size: args.max_file_size,
            max_blob_size: args.max_blob_size,
            respect_gitignore: args.respect_gitignore,
            excludes: args.exclude.clone(),
            archive: ArchiveLimits {
                max_bytes: args.max_archive_bytes,
                max_ratio: args.max_archive_ratio,
                max_members: args.max_archive_members,
                max_depth: args.max_archive_depth,
            },
            platform: args.platform.clone(),
        },
        show_secrets: args.show_secrets,
        max_age_days: args.max_age_days,
        fail_on: severity(args.fail_on),
        access_logs: args.access_log.clone(),
        baseline,
        verify: args
            .verify
            .verify
            .then(|| verify_options(&args.verify))
            .transpose()?,
        only_verified: args.verify.only_verified,
        keep_candidates: false,
    };
    Ok(Pipeline::new(rules, org_key, options)?)
}

/// How `--verify` asks, checked now: a `--verify-ca` that cannot be read fails before the
/// scan.
pub fn verify_options(args: &VerifyArgs) -> anyhow::Result<verify::Options> {
    let options = verify::Options {
        client: client_options(&args.connection),
        concurrency: args.verify_concurrency.max(1),
        per_host: args.verify_per_host.max(1),
        budget: args.verify_budget,
        ttl: args.verify_ttl,
        refresh: args.verify_refresh,
        network: args.verify_network,
        ..verify::Options::default()
    };
    verify::client::Client::new(&options.client)?;
    Ok(options)
}

/// How requests to providers connect (`--verify-resolve`, `--verify-ca`, `--verify-timeout`).
pub fn client_options(args: &VerifyConnection) -> verify::ClientOptions {
    verify::ClientOptions {
        resolve: args.verify_resolve.clone(),
        extra_ca: args.verify_ca.clone(),
        timeout: args.verify_timeout,
    }
}

/// Every parallel source runs on rayon's global pool, so this bounds the whole scan.
fn scanning_threads(threads: NonZeroUsize) -> anyhow::Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.get())
        .build_global()
        .context("cannot set up the scanning threads")
}

pub fn severity(fail_on: FailOn) -> Severity {
    match fail_on {
        FailOn::Low => Severity::Low,
        FailOn::Medium => Severity::Medium,
        FailOn::High => Severity::High,
        FailOn::Critical => Severity::Critical,
    }
}
