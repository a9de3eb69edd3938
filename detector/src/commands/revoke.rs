//! `detector revoke FINGERPRINT TARGET…`: find the key again (reports hold no secret), ask,
//! send its provider's self-revocation call, print one JSON line.
use std::{
    io::{self, BufRead, IsTerminal, Write},
    process::ExitCode,
};

use super::{args, progress::Progress, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{
    audit::OrgKey,
    cli::RevokeArgs,
    detect::RuleSet,
    pipeline::{self, Pipeline},
    report::escape::visible,
    verify::{
        self,
        cache::Cache,
        revoke::{revoke, revoker, Outcome},
        State, Verification,
    },
};

pub fn run(args: &RevokeArgs) -> anyhow::Result<ExitCode> {
    let org_key = OrgKey::load(args.org_key_file.as_deref())?;
    let mut rules = RuleSet::builtin()?;
    if let Some(dir) = &args.rules {
        rules.extend(RuleSet::load_dir(dir)?);
    }
    let client = args::client_options(&args.connection);
    verify::client::Client::new(&client)?;
    let pipeline = Pipeline::new(
        rules,
        org_key,
        pipeline::Options {
            keep_candidates: true,
            ..pipeline::Options::default()
        },
    )?;
    let outcome = pipeline.run(&args.targets, &Progress::new());
    let key = outcome
        .report
        .keys
        .iter()
        .find(|k| k.fingerprint == args.fingerprint);
    let mut line = serde_json::json!({ "fingerprint": args.fingerprint });
    let Some(key) = key else {
        line["outcome"] = "not-found".into();
        line["detail"] = "no key with this fingerprint in the targets (same org key?)".into();
        return Ok(say(&line, EXIT_ERROR));
    };
    line["rule"] = key.rule.clone().into();
    line["provider"] = key.provider.clone().into();
    line["redacted"] = key.redacted.clone().into();
    let candidate = outcome
        .candidates
        .as_ref()
        .and_then(|c| c.get(&key.fingerprint));
    let plan = pipeline.verify_plan().expect("revoke keeps candidates");
    let found = candidate.and_then(|c| {
        revoker(plan.verifiers(), c.rules.iter().map(String::as_str)).map(|r| (c, r))
    });
    let Some((candidate, (verifier, call))) = found else {
        line["outcome"] = "unsupported".into();
        line["detail"] = format!(
            "{} documents no call by which a {} key revokes itself: revoke it in its console",
            key.provider, key.rule
        )
        .into();
        return Ok(say(&line, EXIT_ERROR));
    };
    line["verifier"] = verifier.id.clone().into();
    if !args.yes {
        if !io::stdin().is_terminal() {
            line["outcome"] = "not-confirmed".into();
            line["detail"] = "not a terminal: pass --yes to revoke without asking".into();
            return Ok(say(&line, EXIT_ERROR));
        }
        let host = call.request.url.trim_start_matches("https://");
        let host = host.split(['/', '?']).next().unwrap_or(host);
        eprint!(
            "Revoke the {} key {} ({}) at {}? It stops working everywhere. [y/N] ",
            visible(&key.provider),
            visible(&key.redacted),
            key.rule,
            visible(host)
        );
        io::stderr().flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            line["outcome"] = "not-confirmed".into();
            line["detail"] = "not confirmed".into();
            return Ok(say(&line, EXIT_ERROR));
        }
    }
    let revocation = revoke(verifier, call, candidate, &client)?;
    line["outcome"] = revocation.outcome.as_str().into();
    if let Some(status) = revocation.status {
        line["status"] = status.into();
    }
    line["detail"] = revocation.detail.clone().into();
    if revocation.outcome == Outcome::Revoked {
        // The next `--verify` need not ask.
        if let Some(path) = verify::cache::default_path() {
            let mut cache = Cache::open(path);
            cache.put(
                &key.fingerprint,
                &Verification {
                    state: State::Revoked,
                    checked_at: chrono::Utc::now(),
                    detail: "revoked by detector revoke".into(),
                    verifier: Some(verifier.id.clone()),
                    cached: false,
                },
            );
            if let Err(e) = cache.save() {
                tracing::warn!(error = %e, "cannot write the verification cache");
            }
        }
    }
    Ok(say(
        &line,
        match revocation.outcome {
            Outcome::Revoked => EXIT_CLEAN,
            Outcome::Refused | Outcome::Failed => EXIT_FINDINGS,
        },
    ))
}

/// The one JSON line, and the exit code.
fn say(line: &serde_json::Value, code: u8) -> ExitCode {
    println!("{line}");
    ExitCode::from(code)
}
