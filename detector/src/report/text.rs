//! The human report: one block per key, then the MCP servers and the targets. Coloured on a
//! terminal, plain anywhere else.
use std::{
    fmt::Display,
    io::{self, Write},
};

use owo_colors::{OwoColorize, Style};

use super::{
    plural,
    view::{
        short_commit, KeyView, LocationView, Replacement, ReportView, ServerView, TargetView,
        HELD_IN_STORE,
    },
    Report,
};
use crate::{
    audit::{Access, FieldEntry},
    detect::{value::ValueClass, Severity},
};

/// Whether to colour (decided by the caller: a terminal that supports colour, or not), and
/// how much of the coverage to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextOptions {
    pub color: bool,
    /// Every object not scanned listed (else counted by reason).
    pub coverage: bool,
}

/// True when standard output is a terminal that supports colour (honours `NO_COLOR` and
/// `FORCE_COLOR` through owo-colors' detection).
pub fn stdout_supports_color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
        && format!(
            "{}",
            "x".if_supports_color(owo_colors::Stream::Stdout, |t| t.bold())
        ) != "x"
}

struct Paint {
    on: bool,
}

impl Paint {
    fn with(&self, text: impl Display, style: Style) -> String {
        if self.on {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn dim(&self, text: impl Display) -> String {
        self.with(text, Style::new().dimmed())
    }

    fn bold(&self, text: impl Display) -> String {
        self.with(text, Style::new().bold())
    }

    fn severity(&self, severity: Severity) -> String {
        let label = format!("{:<8}", severity.to_string().to_uppercase());
        let style = match severity {
            Severity::Critical => Style::new().red().bold(),
            Severity::High => Style::new().red(),
            Severity::Medium => Style::new().yellow(),
            Severity::Low => Style::new().blue(),
        };
        self.with(label, style)
    }

    /// A key block's row name, dimmed and padded so the values line up.
    fn label(&self, name: &str) -> String {
        self.dim(format!("  {name:<12}"))
    }

    fn pass(&self, pass: bool) -> String {
        if pass {
            self.with("pass", Style::new().green())
        } else {
            self.with("FAIL", Style::new().red())
        }
    }
}

pub fn write(report: &Report, out: &mut dyn Write, options: TextOptions) -> io::Result<()> {
    let paint = Paint { on: options.color };
    let view = ReportView::new(report);
    write_summary(out, &paint, &view)?;
    for key in &view.keys {
        writeln!(out)?;
        write_key(out, &paint, key)?;
    }
    if !view.servers.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint.bold("MCP servers"))?;
        for server in &view.servers.rows {
            write_server(out, &paint, server)?;
        }
    }
    if !view.workloads.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint.bold("Workloads"))?;
        for workload in view.workloads {
            writeln!(
                out,
                "  {} {}",
                paint.bold(workload.workload.label()),
                paint.dim(workload.file.display())
            )?;
            for field in &workload.fields {
                writeln!(out, "      {}", describe_workload_field(&paint, field))?;
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", paint.bold("Targets"))?;
    for target in &view.targets {
        write_target(out, &paint, target, options.coverage)?;
    }
    Ok(())
}

fn write_summary(out: &mut dyn Write, paint: &Paint, view: &ReportView) -> io::Result<()> {
    let s = view.summary;
    // The summary's name order reversed: what the text report has always printed.
    let severities: Vec<&str> = view
        .severity_tally
        .iter()
        .rev()
        .map(String::as_str)
        .collect();
    let held = (s.held_in_store > 0).then(|| format!("{} {HELD_IN_STORE}", s.held_in_store));
    let parts: Vec<&str> = severities.into_iter().chain(held.as_deref()).collect();
    let breakdown = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    };
    writeln!(
        out,
        "{} {} key{}{} · {} MCP server{} in {} config{} · {} target{}",
        paint.bold("detector:"),
        s.keys,
        plural(s.keys),
        breakdown,
        s.mcp_servers,
        plural(s.mcp_servers),
        s.mcp_configs,
        plural(s.mcp_configs as usize),
        s.targets,
        plural(s.targets),
    )?;
    if s.failing > 0 {
        writeln!(
            out,
            "{} key{} at or above {}",
            s.failing,
            plural(s.failing),
            s.fail_on
        )?;
    }
    if !s.by_verification.is_empty() {
        let said: Vec<String> = ["active", "revoked", "unknown"]
            .iter()
            .filter_map(|state| {
                s.by_verification
                    .get(*state)
                    .map(|n| format!("{n} {state}"))
            })
            .collect();
        writeln!(out, "providers say: {}", said.join(", "))?;
    }
    if s.suppressed > 0 {
        writeln!(
            out,
            "{} key{} suppressed by the baseline",
            s.suppressed,
            plural(s.suppressed)
        )?;
    }
    if !view.merged_hosts.is_empty() {
        writeln!(out, "merged from {}", view.merged_hosts.join(", "))?;
    }
    Ok(())
}

fn write_key(out: &mut dyn Write, paint: &Paint, key: &KeyView) -> io::Result<()> {
    writeln!(
        out,
        "{} {} · {} · {} · {}{}",
        paint.severity(key.severity),
        paint.bold(key.rule),
        key.provider,
        paint.bold(key.shown),
        key.status.as_str(),
        if key.held_in_store {
            format!(" · {HELD_IN_STORE}")
        } else {
            String::new()
        },
    )?;
    if let Some(verification) = &key.verification {
        if let Some(alarm) = verification.alarm {
            writeln!(
                out,
                "{}{}",
                paint.label("ALERT"),
                paint.with(alarm, Style::new().red().bold())
            )?;
        }
        writeln!(
            out,
            "{}{}",
            paint.label("verified"),
            verification.sentence()
        )?;
    }
    write_scope(out, paint, key)?;
    write_history(out, paint, key)?;
    if !key.violations.is_empty() {
        writeln!(
            out,
            "{}{}",
            paint.label("violations"),
            paint.with(key.violations.join(", "), Style::new().yellow())
        )?;
    }
    for (i, location) in key.locations.iter().enumerate() {
        let name = if i == 0 { "locations" } else { "" };
        writeln!(out, "{}{}", paint.label(name), describe_location(location))?;
    }
    write_readers(out, paint, key.readers)?;
    for (i, step) in key.remediation.iter().enumerate() {
        let name = if i == 0 { "fix" } else { "" };
        writeln!(out, "{}{}. {}", paint.label(name), i + 1, step)?;
    }
    Ok(())
}

/// The fingerprint, what the key is assigned to, and where it belongs.
fn write_scope(out: &mut dyn Write, paint: &Paint, key: &KeyView) -> io::Result<()> {
    writeln!(out, "{}{}", paint.label("fingerprint"), key.fingerprint)?;
    if !key.slots.is_empty() {
        writeln!(
            out,
            "{}{}",
            paint.label("assigned to"),
            key.slots.join(", ")
        )?;
    }
    writeln!(
        out,
        "{}{} · {}",
        paint.label("scope"),
        if key.projects.is_empty() {
            "no project".to_string()
        } else {
            key.projects.join(", ")
        },
        key.environment_names.join(", ")
    )?;
    for server in key.mcp_servers {
        writeln!(
            out,
            "{}{} `{}` {}",
            paint.label("mcp server"),
            server.client,
            server.server,
            server.field
        )?;
    }
    for workload in &key.workloads {
        writeln!(out, "{}{workload}", paint.label("workload"))?;
    }
    Ok(())
}

/// When the key was first seen, how old it is, and what replaced it.
fn write_history(out: &mut dyn Write, paint: &Paint, key: &KeyView) -> io::Result<()> {
    if let Some(first) = key.first_seen {
        let age = key
            .age
            .map(|age| {
                format!(
                    " ({} day{} old{})",
                    age.days,
                    plural(age.days as usize),
                    if age.overdue { ", overdue" } else { "" }
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{}{}{}",
            paint.label("first seen"),
            first.format("%Y-%m-%d %H:%M UTC"),
            age
        )?;
    }
    if let Some(next) = &key.successor {
        let what = match next.by {
            Replacement::Key(fingerprint) => format!("key {fingerprint}"),
            Replacement::Reference(class) => format!("a reference ({})", class_name(class)),
            Replacement::OtherValue => "another value".to_string(),
        };
        let commit = next
            .commit
            .map(|c| format!(" in commit {}", short_commit(c)))
            .unwrap_or_default();
        writeln!(
            out,
            "{}{what} at {} {}{commit}",
            paint.label("rotated to"),
            next.path.display(),
            next.slot
        )?;
    }
    Ok(())
}

fn write_readers(out: &mut dyn Write, paint: &Paint, readers: &[Access]) -> io::Result<()> {
    for (i, access) in readers.iter().enumerate() {
        let name = if i == 0 { "read by" } else { "" };
        let verdict = if access.allowed {
            "allowed".to_string()
        } else {
            paint.with("ALERT", Style::new().red().bold())
        };
        writeln!(
            out,
            "{}{} {} (pid {}, uid {}) opened {} {verdict}",
            paint.label(name),
            access.time.format("%Y-%m-%d %H:%M:%S UTC"),
            access.exe,
            access.pid,
            access.uid,
            access.file.display()
        )?;
    }
    Ok(())
}

/// One line: `[host:]path[:line:column]  kind`, then what the place says, words first and
/// the image layer's facts after commas.
fn describe_location(location: &LocationView) -> String {
    let mut text = match location.host {
        Some(host) => format!("{host}:{}", location.path.display()),
        None => location.path.display().to_string(),
    };
    if let (Some(line), Some(column)) = (location.line, location.column) {
        text.push_str(&format!(":{line}:{column}"));
    }
    text.push_str(&format!("  {}", location.kind_name()));
    if let Some(server) = location.mcp_server {
        text.push_str(&format!(
            " {} `{}`",
            location.mcp_client.unwrap_or("?"),
            server
        ));
    }
    let git = location.git;
    let in_head = git
        .filter(|git| git.in_head == Some(true))
        .map(|_| "in HEAD".to_string());
    let reach = git.and_then(|git| {
        if !git.refs.is_empty() {
            Some(format!("on {}", git.refs.join(", ")))
        } else {
            (git.reachable == Some(false)).then(|| "unreachable".to_string())
        }
    });
    let words = [
        location.mcp_field.map(str::to_string),
        location.mode_phrase(),
        location.commit_phrase(),
        in_head,
        location.removed_phrase(),
        reach,
        location.member_phrase(),
        location.image_phrase(),
        location.workload_phrase(),
    ];
    for word in words.into_iter().flatten() {
        text.push(' ');
        text.push_str(&word);
    }
    for phrase in location
        .image
        .iter()
        .flat_map(|image| image.layer_phrases())
    {
        text.push_str(", ");
        text.push_str(&phrase);
    }
    if let Some(backup) = location.backup {
        let kind = backup.kind.as_str();
        match &backup.original {
            Some(original) => text.push_str(&format!(" backup ({kind}) of {}", original.display())),
            None => text.push_str(&format!(" backup ({kind})")),
        }
    }
    text
}

fn class_name(class: ValueClass) -> &'static str {
    match class {
        ValueClass::EnvRef => "environment variable",
        ValueClass::SecretManager => "secret manager",
        ValueClass::InputPrompt => "input prompt",
        ValueClass::SecretRef => "secret reference",
        ValueClass::ConfigRef => "ConfigMap reference",
        ValueClass::Literal => "literal",
        ValueClass::Placeholder => "placeholder",
        ValueClass::Empty => "empty",
    }
}

fn write_server(out: &mut dyn Write, paint: &Paint, server: &ServerView) -> io::Result<()> {
    let project = server
        .project
        .map(|p| format!(" [{p}]"))
        .unwrap_or_default();
    writeln!(
        out,
        "  {} `{}`{} {} {}",
        server.client,
        paint.bold(server.server),
        project,
        server.transport,
        paint.dim(server.config.display())
    )?;
    for field in server.fields {
        writeln!(out, "      {}", describe_field(paint, field))?;
    }
    for check in server.checks {
        writeln!(
            out,
            "      {} {}: {}",
            paint.pass(check.pass),
            check.check,
            check.reason
        )?;
    }
    Ok(())
}

fn describe_workload_field(paint: &Paint, field: &crate::audit::WorkloadFieldEntry) -> String {
    describe_field(
        paint,
        &FieldEntry {
            field: format!("{} ({})", field.field, field.part.as_str()),
            name: field.name.clone(),
            class: field.class,
            fingerprint: field.fingerprint.clone(),
        },
    )
}

fn describe_field(paint: &Paint, field: &FieldEntry) -> String {
    let class = match field.class {
        ValueClass::Literal => paint.with("literal", Style::new().red()),
        ValueClass::EnvRef => paint.with("env-ref", Style::new().green()),
        ValueClass::SecretManager => paint.with("secret-manager", Style::new().green()),
        ValueClass::InputPrompt => paint.with("input-prompt", Style::new().green()),
        ValueClass::SecretRef => paint.with("secret-ref", Style::new().green()),
        ValueClass::ConfigRef => paint.with("config-ref", Style::new().yellow()),
        ValueClass::Placeholder => "placeholder".to_string(),
        ValueClass::Empty => "empty".to_string(),
    };
    match &field.fingerprint {
        Some(fp) => format!("{} {class} → {}", field.field, paint.dim(fp)),
        None => format!("{} {class}", field.field),
    }
}

fn write_target(
    out: &mut dyn Write,
    paint: &Paint,
    target: &TargetView,
    coverage: bool,
) -> io::Result<()> {
    let status = if target.failed {
        paint.with("FAILED", Style::new().red().bold())
    } else {
        format!(
            "{} object{}, {}, {} ms",
            target.objects_scanned,
            plural(target.objects_scanned as usize),
            indicatif::HumanBytes(target.bytes_scanned),
            target.duration_ms
        )
    };
    let skipped = if target.skipped.is_empty() {
        String::new()
    } else {
        format!(", skipped {}", target.skipped.join(", "))
    };
    writeln!(out, "  {} {status}{skipped}", paint.bold(target.target))?;
    for config in target.unparsed_configs {
        writeln!(
            out,
            "      {} {} ({}): {}",
            paint.with("unparsed", Style::new().yellow()),
            config.path.display(),
            config.client,
            config.reason
        )?;
    }
    for error in target.errors {
        writeln!(
            out,
            "      {} {}: {}",
            paint.with("error", Style::new().red()),
            error.path.display(),
            error.reason
        )?;
    }
    if coverage {
        for skip in target.not_scanned {
            let object = skip
                .object
                .as_deref()
                .map(|id| format!(" (object {id})"))
                .unwrap_or_default();
            let detail = skip
                .detail
                .as_deref()
                .map(|detail| format!(": {detail}"))
                .unwrap_or_default();
            writeln!(
                out,
                "      {} {}{object} {}{detail}",
                paint.dim("not scanned"),
                skip.path.display(),
                skip.reason
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{
        audit::{AuditOptions, Auditor, Finding, Location, OrgKey},
        detect::RuleMeta,
        source::{DiskFile, Origin, Provenance},
    };

    /// A fake secret made at run time, never a key-shaped literal.
    fn secret(unit: &str) -> String {
        ["tok", "-", &unit.repeat(8)].concat()
    }

    fn finding(secret: &str, path: &str, line: usize) -> Finding {
        Finding {
            secret: secret.to_string(),
            rule: std::sync::Arc::new(RuleMeta {
                id: "example-token".to_string(),
                provider: "Example".to_string(),
                description: String::new(),
                severity: Severity::High,
                rank: 0,
                environment_hints: Vec::new(),
            }),
            location: Location {
                line: Some(line),
                column: Some(1),
                ..Location::at(Provenance {
                    path: PathBuf::from(path),
                    origin: Origin::File(DiskFile::default()),
                    backup: None,
                })
            },
            project: "/srv/app".to_string(),
            mcp_servers: Vec::new(),
            context: Vec::new(),
            credential: None,
        }
    }

    /// Two keys, each in two files, written as text with or without colour.
    fn render(color: bool) -> (String, [String; 2]) {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let auditor = Auditor::new(
            OrgKey::from_bytes(b"text-test-org", "test"),
            AuditOptions {
                show_secrets: false,
                max_age_days: 90,
                now,
            },
        );
        let (a, b) = (secret("Ab3"), secret("Xy7"));
        let keys = auditor.keys(vec![
            finding(&a, "/srv/app/one.env", 1),
            finding(&b, "/srv/app/two.env", 1),
            finding(&a, "/srv/app/three.env", 4),
            finding(&b, "/srv/app/four.env", 2),
        ]);
        let report = Report::new(keys, Vec::new(), Vec::new(), Severity::High, 90, now);
        let mut out = Vec::new();
        write(
            &report,
            &mut out,
            TextOptions {
                color,
                coverage: false,
            },
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let fingerprints = [a, b].map(|s| auditor.fingerprint(&s));
        (text, fingerprints)
    }

    /// The lines of the block under the key heading whose fingerprint is `fingerprint`.
    fn block<'t>(text: &'t str, fingerprint: &str) -> Vec<&'t str> {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains(fingerprint))
            .unwrap_or_else(|| panic!("no key {fingerprint} in:\n{text}"));
        // The heading is the line above the fingerprint; the block ends at a blank line.
        let start = at - 1;
        let len = lines[start..]
            .iter()
            .position(|l| l.is_empty())
            .unwrap_or(lines.len() - start);
        lines[start..start + len].to_vec()
    }

    #[test]
    fn colour_on_paints_and_keys_group_their_locations() {
        let (coloured, fingerprints) = render(true);
        assert!(coloured.contains("\x1b["), "no escape codes:\n{coloured}");
        // The heading's severity is painted red.
        let heading = block(&coloured, &fingerprints[0])[0];
        assert!(heading.contains("\x1b[31m"), "{heading:?}");

        let (plain, _) = render(false);
        assert!(!plain.contains('\x1b'), "escape codes with colour off");
        let files = [["one.env", "three.env"], ["two.env", "four.env"]];
        for (fingerprint, own) in fingerprints.iter().zip(files) {
            let lines = block(&plain, fingerprint);
            assert!(lines[0].starts_with("HIGH"), "heading first: {lines:#?}");
            let located: Vec<&str> = lines
                .iter()
                .filter(|l| l.contains("/srv/app/") && l.contains("  file"))
                .copied()
                .collect();
            assert_eq!(
                located.len(),
                2,
                "each location once, under its key: {lines:#?}"
            );
            for name in own {
                assert!(
                    located.iter().any(|l| l.contains(name)),
                    "{name} not under its key: {lines:#?}"
                );
            }
        }
        // Every location is under exactly one key.
        let total = plain.lines().filter(|l| l.contains("  file")).count();
        assert_eq!(total, 4, "{plain}");
    }
}
