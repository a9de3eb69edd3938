//! `detector fix [TARGET…] [--apply]`: plan every config's fix, print it (a redacted diff),
//! and with `--apply` write it: the store first (synced), then the wrappers, then each config
//! (atomically, refused when it changed since it was read), then modes and `.gitignore`.
//!
//! Exit codes: 0 nothing left to fix (everything fixed, or a dry run found nothing); 1 a dry
//! run found literals to fix, or some stay (they could not be moved; each is listed with the
//! reason); 2 a config changed since it was read or could not be written (listed), or a usage
//! or store error.
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;

use super::{progress::Progress, EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{
    audit::{
        fingerprint::redact,
        ignored::{work_tree_of, GitExposure, IgnoreCache},
        OrgKey,
    },
    cli::FixArgs,
    detect::RuleSet,
    fix::{
        destination::{sh_quote as quote, Destination, Entry},
        plan,
        write::{self, WriteError},
        Context, FilePlan, Names,
    },
    pipeline::{self, Pipeline},
    platform,
    report::escape::visible,
    source::{LocationKind, Target},
};

pub fn run(args: &FixArgs) -> anyhow::Result<ExitCode> {
    match fix(args) {
        Ok(code) => Ok(code.into()),
        Err(e) => {
            eprintln!("detector fix: {}", visible(&format!("{e:#}")));
            Ok(EXIT_ERROR.into())
        }
    }
}

fn env_home() -> anyhow::Result<PathBuf> {
    platform::home_var()
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .context("$HOME is not set: name the configs (`mcp:HOME` or `file:CONFIG`)")
}

/// `$XDG_DATA_HOME` when it is the running user's own home being fixed, else `HOME/.local/share`
/// (macOS `HOME/Library/Application Support`, Windows `HOME/AppData/Local`).
fn data_dir(home: &Path) -> PathBuf {
    match (std::env::var_os("XDG_DATA_HOME"), env_home()) {
        (Some(dir), Ok(own)) if !dir.is_empty() && own == home => PathBuf::from(dir),
        _ => home.join(platform::DATA_UNDER_HOME),
    }
}

fn fix(args: &FixArgs) -> anyhow::Result<u8> {
    let home = match args.targets.iter().find_map(|t| match t {
        Target::Mcp(Some(home)) => Some(home.clone()),
        _ => None,
    }) {
        Some(home) => home,
        None => env_home()?,
    };
    let mut targets = args.targets.clone();
    if targets.is_empty() {
        // The home's configs, and the project configs of the directory it is run in (a
        // project's `.mcp.json`, `.cursor/mcp.json`, …), which no home lists.
        targets.push(Target::Mcp(Some(home.clone())));
        if let Ok(cwd) = std::env::current_dir() {
            targets.extend(
                crate::mcp::project_configs(&cwd)
                    .into_iter()
                    .map(|c| Target::File(c.path)),
            );
        }
    }
    for target in &mut targets {
        match target {
            Target::Mcp(None) => *target = Target::Mcp(Some(home.clone())),
            Target::Mcp(Some(_)) | Target::File(_) => {}
            other => anyhow::bail!(
                "`fix` takes `mcp:[HOME]` and `file:CONFIG` targets, not `{}:`",
                other.kind()
            ),
        }
    }
    let store = Destination::parse(&args.to, Some(&home))?.in_home(&home);
    store.check()?;
    let wrapper_dir = args
        .wrapper_dir
        .clone()
        .unwrap_or_else(|| data_dir(&home).join("detector/wrappers"));

    let org_key = OrgKey::load(args.org_key_file.as_deref())?;
    let pipeline = Pipeline::new(RuleSet::builtin()?, org_key, pipeline::Options::default())?;
    let outcome = pipeline.run(&targets, &Progress::new());
    for target in &outcome.report.targets {
        for error in &target.errors {
            eprintln!(
                "detector fix: {}: {}",
                visible(&error.path.to_string_lossy()),
                visible(&error.reason)
            );
        }
    }
    let mut configs: Vec<_> = outcome
        .configs
        .iter()
        .filter(|c| {
            c.servers
                .iter()
                .any(|s| s.literal_fields().next().is_some())
                || c.fields.iter().any(|f| f.class.is_secret())
        })
        .collect();
    configs.sort_by(|a, b| a.path.cmp(&b.path));
    configs.dedup_by(|a, b| a.path == b.path);

    let mut names = Names::new(&store);
    let context = Context {
        wrapper_dir: &wrapper_dir,
        store: &store,
        prompt: args.prompt,
    };
    let plans: Vec<FilePlan> = configs
        .iter()
        .map(|c| plan::plan(c, &mut names, &context))
        .collect();

    let facts = Facts::gather(&pipeline, &outcome.report, &plans);
    let mut out = String::new();
    if !args.apply {
        out.push_str("detector fix: dry run, nothing is changed (--apply writes what follows)\n");
    }
    for plan in &plans {
        describe(&mut out, plan, &store, args.apply);
    }
    let mut code = if plans
        .iter()
        .any(|p| !p.moves.is_empty() || !p.left.is_empty() || p.refused.is_some())
    {
        if args.apply {
            EXIT_CLEAN
        } else {
            EXIT_FINDINGS
        }
    } else {
        EXIT_CLEAN
    };
    if args.apply {
        code = apply(&mut out, &plans, &store, &facts, &home)?;
    } else {
        facts.describe(&mut out, false);
    }
    advice(&mut out, &plans, &store);
    print!("{out}");
    Ok(code)
}

/// What the plan says for one file: its diff (keys redacted), the moves, the wrappers, what
/// stays and why.
fn describe(out: &mut String, plan: &FilePlan, store: &Destination, apply: bool) {
    let path = visible(&plan.path.to_string_lossy()).into_owned();
    if let Some(reason) = &plan.refused {
        let _ = writeln!(out, "\n{path}: not fixed: {}", visible(reason));
        return;
    }
    if let Some(edited) = &plan.edited {
        if !apply {
            let old = redacted(&String::from_utf8_lossy(&plan.original), &plan.secrets);
            let new = redacted(edited, &plan.secrets);
            let diff = similar::TextDiff::from_lines(&old, &new);
            let text = diff
                .unified_diff()
                .context_radius(2)
                .header(&path, &format!("{path} (fixed)"))
                .to_string();
            // The config's own text, escaped line by line for the terminal.
            out.push('\n');
            for line in text.lines() {
                let _ = writeln!(out, "{}", visible(line));
            }
        }
    }
    for m in &plan.moves {
        let _ = writeln!(
            out,
            "{path}: {} ({}) of {} → {} as {}, referred to by {}",
            visible(&m.field),
            redact(&m.secret),
            m.server.as_deref().map_or_else(
                || "the file".to_string(),
                |s| format!("server {}", visible(s))
            ),
            visible(&store.describe()),
            m.name,
            visible(&m.how),
        );
    }
    for wrapper in &plan.wrappers {
        let _ = writeln!(
            out,
            "{path}: server {} starts through the wrapper {}",
            visible(&wrapper.server),
            visible(&wrapper.path.to_string_lossy()),
        );
        if !apply {
            for line in wrapper.text.lines() {
                let _ = writeln!(out, "    {}", visible(line));
            }
        }
    }
    for left in &plan.left {
        let _ = writeln!(
            out,
            "{path}: {} stays a literal: {}",
            visible(&left.field),
            visible(&left.reason)
        );
    }
}

/// `text` with every key replaced by its redacted preview.
fn redacted(text: &str, secrets: &[zeroize::Zeroizing<String>]) -> String {
    let mut text = text.to_string();
    let mut secrets: Vec<&str> = secrets.iter().map(|s| s.as_str()).collect();
    // Longest first: a key that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        text = text.replace(secret, &format!("<redacted {}>", redact(secret)));
    }
    text
}

/// Write the plans: the store first, then wrappers, then configs.
fn apply(
    out: &mut String,
    plans: &[FilePlan],
    store: &Destination,
    facts: &Facts,
    home: &Path,
) -> anyhow::Result<u8> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for plan in plans.iter().filter(|p| p.refused.is_none()) {
        for m in &plan.moves {
            entries.entry(m.name.clone()).or_insert_with(|| Entry {
                name: m.name.clone(),
                secret: m.secret.clone(),
                note: format!(
                    "{} of {}",
                    m.server
                        .as_deref()
                        .map_or_else(|| "a field".to_string(), |s| format!("server {s}")),
                    plan.path.display()
                ),
            });
        }
    }
    let entries: Vec<Entry> = entries.into_values().collect();
    if !entries.is_empty() {
        store.put(&entries).with_context(|| {
            format!(
                "cannot store the keys in {}; nothing was changed",
                store.describe()
            )
        })?;
        if let Destination::EnvFile(path) = store {
            hand_over(path, home);
        }
        let _ = writeln!(
            out,
            "stored {} key(s) in {}",
            entries.len(),
            visible(&store.describe())
        );
    }
    let mut code = EXIT_CLEAN;
    let mut refused = Vec::new();
    for plan in plans {
        let path = visible(&plan.path.to_string_lossy()).into_owned();
        if plan.refused.is_some() || !plan.left.is_empty() {
            code = code.max(EXIT_FINDINGS);
        }
        let Some(edited) = &plan.edited else { continue };
        let mut wrappers_ok = true;
        for wrapper in &plan.wrappers {
            match write::create(&wrapper.path, wrapper.text.as_bytes(), 0o700) {
                Ok(()) => hand_over(&wrapper.path, home),
                Err(e) => {
                    let _ = writeln!(out, "{path}: not fixed: {}", visible(&e.to_string()));
                    wrappers_ok = false;
                }
            }
        }
        if !wrappers_ok {
            code = EXIT_ERROR;
            continue;
        }
        match write::replace(&plan.path, &plan.original, edited.as_bytes()) {
            Ok(()) => {
                let _ = writeln!(out, "{path}: fixed ({} key(s) moved)", plan.moves.len());
            }
            Err(e) => {
                if matches!(e, WriteError::Changed(_)) {
                    refused.push(path.clone());
                }
                let stored: Vec<&str> = plan.moves.iter().map(|m| m.name.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{}; its keys stay stored in {} as {}",
                    visible(&e.to_string()),
                    visible(&store.describe()),
                    stored.join(", ")
                );
                code = EXIT_ERROR;
            }
        }
    }
    facts.describe(out, true);
    if !refused.is_empty() {
        let _ = writeln!(out, "refused (changed since read): {}", refused.join(", "));
    }
    Ok(code)
}

/// Advice once for the run: how clients that read their environment get the keys, and how to
/// use a secret manager instead of the local store.
fn advice(out: &mut String, plans: &[FilePlan], store: &Destination) {
    let fixed: Vec<&FilePlan> = plans
        .iter()
        .filter(|p| p.refused.is_none() && p.edited.is_some())
        .collect();
    if fixed.is_empty() {
        return;
    }
    let mut clients: Vec<&str> = fixed.iter().map(|p| p.client.name).collect();
    clients.sort_unstable();
    clients.dedup();
    let _ = writeln!(
        out,
        "restart to read the new configs: {}",
        clients.join(", ")
    );
    let mut referenced: Vec<&str> = fixed
        .iter()
        .flat_map(|p| p.moves.iter())
        .filter(|m| m.from_environment)
        .map(|m| m.name.as_str())
        .collect();
    referenced.sort_unstable();
    referenced.dedup();
    if !referenced.is_empty() {
        let _ = writeln!(
            out,
            "the clients read {} from their environment: start them from a shell whose profile loads the store:\n    {}",
            referenced.join(", "),
            store
                .shell_load(&referenced)
                .lines()
                .map(|l| visible(l).into_owned())
                .collect::<Vec<_>>()
                .join("\n    ")
        );
    }
    for plan in &fixed {
        for m in plan.moves.iter().filter(|m| !m.from_environment) {
            if let Some(source) = m.source {
                let how = if m.how.contains("input:") {
                    "prompts for it once and keeps it in its own secret storage: paste it from the store"
                } else {
                    "resolves it itself, not from its environment: give it the key under that name"
                };
                let _ = writeln!(
                    out,
                    "{} {how} ({}; {source})",
                    plan.client.name,
                    visible(&m.how),
                );
            }
        }
    }
    if fixed.iter().any(|p| !p.wrappers.is_empty()) {
        let _ = writeln!(
            out,
            "to load a key from a secret manager instead, change its line in the wrapper, e.g.\n    NAME=$(aws secretsmanager get-secret-value --secret-id NAME --query SecretString --output text)\n    NAME=$(vault kv get -field=value secret/NAME)\n    NAME=$(gcloud secrets versions access latest --secret=NAME)\nand export it; `fix` itself moves keys only into the local stores"
        );
    }
}

/// What else the run learned about the moved keys: which config files others can read,
/// which sit in a git work tree unignored, which keys serve both development and production,
/// and which are in git history (a store does not take a key out of history).
struct Facts {
    readable: Vec<(PathBuf, u32)>,
    unignored: Vec<GitExposure>,
    dev_prod: Vec<String>,
    in_history: Vec<(String, String, Option<String>)>,
}

impl Facts {
    fn gather(pipeline: &Pipeline, report: &crate::report::Report, plans: &[FilePlan]) -> Facts {
        let mut facts = Facts {
            readable: Vec::new(),
            unignored: Vec::new(),
            dev_prod: Vec::new(),
            in_history: Vec::new(),
        };
        let mut repositories = BTreeSet::new();
        let mut ignores = IgnoreCache::default();
        for plan in plans {
            // (Only where files have modes.)
            if let Some(mode) = std::fs::metadata(&plan.path)
                .ok()
                .as_ref()
                .and_then(platform::mode)
            {
                let mode = mode & 0o777;
                if mode & 0o077 != 0 {
                    facts.readable.push((plan.path.clone(), mode));
                }
            }
            if let Some(exposure) = ignores.exposure(&plan.path) {
                repositories.insert(exposure.root.clone());
                facts.unignored.push(exposure);
            } else if let Some(repo) = work_tree_of(&plan.path) {
                repositories.insert(repo);
            }
        }
        let moved: BTreeMap<String, (&str, &str)> = plans
            .iter()
            .flat_map(|p| p.moves.iter())
            .map(|m| {
                (
                    pipeline.org_key().fingerprint(&m.secret),
                    (m.name.as_str(), m.secret.as_str()),
                )
            })
            .collect();
        for key in &report.keys {
            if let Some((name, _)) = moved.get(&key.fingerprint) {
                if key
                    .violations
                    .iter()
                    .any(|v| v.as_str() == "dev-prod-reuse")
                {
                    facts.dev_prod.push(format!("{name} ({})", key.redacted));
                }
            }
        }
        if !repositories.is_empty() {
            let targets: Vec<Target> = repositories.into_iter().map(Target::Git).collect();
            let history = pipeline.run(&targets, &Progress::new());
            for key in &history.report.keys {
                let Some((name, _)) = moved.get(&key.fingerprint) else {
                    continue;
                };
                if key
                    .locations
                    .iter()
                    .any(|l| l.provenance.origin.kind() == LocationKind::Git)
                {
                    facts.in_history.push((
                        format!("{name} ({})", key.redacted),
                        key.provider.clone(),
                        key.rotate_at.clone(),
                    ));
                }
            }
        }
        facts
    }

    fn describe(&self, out: &mut String, apply: bool) {
        for (path, mode) in &self.readable {
            let shown = visible(&path.to_string_lossy()).into_owned();
            if apply {
                let result = platform::set_mode(path, 0o600);
                match result {
                    Ok(()) => {
                        let _ = writeln!(out, "{shown}: mode {mode:o} → 600");
                    }
                    Err(e) => {
                        let _ = writeln!(out, "{shown}: cannot chmod 600: {e}");
                    }
                }
            } else {
                let _ = writeln!(
                    out,
                    "{shown}: others can read it (mode {mode:o}): would chmod 600"
                );
            }
        }
        for exposure in &self.unignored {
            let gitignore = exposure.root.join(".gitignore");
            let shown = visible(&gitignore.to_string_lossy()).into_owned();
            let line = &exposure.pattern;
            if exposure.ignored {
                // Already ignored: only the index still holds it.
            } else if apply {
                match add_line(&gitignore, line) {
                    Ok(()) => {
                        let _ = writeln!(out, "{shown}: added {}", visible(line));
                    }
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "{shown}: cannot add {}: {}",
                            visible(line),
                            visible(&e.to_string())
                        );
                    }
                }
            } else {
                let _ = writeln!(out, "{shown}: would add {}", visible(line));
            }
            if exposure.tracked {
                let rel = exposure.relative.to_string_lossy();
                let _ = writeln!(
                    out,
                    "{}: is committed; stop tracking it with: git -C {} rm --cached -- {}",
                    visible(&rel),
                    visible(&quote(&exposure.root.to_string_lossy())),
                    visible(&quote(&rel)),
                );
            }
        }
        for key in &self.dev_prod {
            let _ = writeln!(
                out,
                "needs a second key: {key} serves both development and production servers; make a separate key for one of them at the provider (no tool can mint it)"
            );
        }
        for (key, provider, rotate_at) in &self.in_history {
            let _ = writeln!(
                out,
                "in git history: {key}: `fix` never rewrites history; every clone still holds it. Revoke it at {provider}{}, make a new key, and store the new one (detector fix moves it again)",
                rotate_at
                    .as_deref()
                    .map(|u| format!(" ({u})"))
                    .unwrap_or_default(),
            );
        }
    }
}

/// Root fixing another user's home: what `fix` made there (the store, a wrapper, and the
/// directories it made for them) belongs to that user, who must be able to read it.
fn hand_over(path: &Path, home: &Path) {
    if !platform::is_root() {
        return;
    }
    let Some(owner) = std::fs::metadata(home)
        .ok()
        .as_ref()
        .and_then(platform::owner)
    else {
        return;
    };
    if owner.0 == 0 {
        return;
    }
    for made in path
        .ancestors()
        .take_while(|p| p.starts_with(home) && *p != home)
    {
        let uid = std::fs::metadata(made)
            .ok()
            .as_ref()
            .and_then(platform::owner);
        if uid.is_some_and(|(uid, _)| uid == 0) {
            platform::set_owner(made, owner);
        }
    }
}

/// Append `line` to a `.gitignore` (made when missing), atomically.
fn add_line(path: &Path, line: &str) -> Result<(), WriteError> {
    match std::fs::read(path) {
        Ok(old) => {
            let mut new = old.clone();
            if !new.is_empty() && !new.ends_with(b"\n") {
                new.push(b'\n');
            }
            new.extend_from_slice(line.as_bytes());
            new.push(b'\n');
            write::replace(path, &old, &new)
        }
        Err(_) => write::create(path, format!("{line}\n").as_bytes(), 0o644),
    }
}
