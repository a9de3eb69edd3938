//! The human report: one block per key, then the MCP servers and the targets. Coloured on a
//! terminal, plain anywhere else.
use std::{
    fmt::Display,
    io::{self, Write},
};

use owo_colors::{OwoColorize, Style};

use super::{plural, Report, TargetReport};
use crate::{
    audit::{FieldEntry, Key, Location, LocationV1, ServerEntry},
    detect::{value::ValueClass, Severity},
};

/// Whether to colour: decided by the caller (a terminal that supports colour, or not).
#[derive(Debug, Clone, Copy)]
pub struct TextOptions {
    pub color: bool,
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
    let s = &report.summary;
    let severities: Vec<String> = s
        .by_severity
        .iter()
        .rev()
        .filter(|(_, n)| **n > 0)
        .map(|(sev, n)| format!("{n} {sev}"))
        .collect();
    let breakdown = if severities.is_empty() {
        String::new()
    } else {
        format!(" ({})", severities.join(", "))
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
    if s.suppressed > 0 {
        writeln!(
            out,
            "{} key{} suppressed by the baseline",
            s.suppressed,
            plural(s.suppressed)
        )?;
    }
    if !report.hosts.is_empty() {
        writeln!(out, "merged from {}", report.hosts.join(", "))?;
    }

    for key in &report.keys {
        writeln!(out)?;
        write_key(out, &paint, key)?;
    }

    if !report.mcp_servers.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", paint.bold("MCP servers"))?;
        for server in &report.mcp_servers {
            write_server(out, &paint, server)?;
        }
    }

    writeln!(out)?;
    writeln!(out, "{}", paint.bold("Targets"))?;
    for target in &report.targets {
        write_target(out, &paint, target)?;
    }
    Ok(())
}

fn write_key(out: &mut dyn Write, paint: &Paint, key: &Key) -> io::Result<()> {
    writeln!(
        out,
        "{} {} · {} · {} · {}",
        paint.severity(key.severity),
        paint.bold(&key.rule),
        key.provider,
        paint.bold(key.secret.as_deref().unwrap_or(&key.redacted)),
        key.status.as_str(),
    )?;
    let label = |name: &str| paint.dim(format!("  {name:<12}"));
    writeln!(out, "{}{}", label("fingerprint"), key.fingerprint)?;
    if !key.slots.is_empty() {
        writeln!(out, "{}{}", label("assigned to"), key.slots.join(", "))?;
    }
    let envs: Vec<&str> = key.scope.environments.iter().map(|e| e.as_str()).collect();
    writeln!(
        out,
        "{}{} · {}",
        label("scope"),
        if key.scope.projects.is_empty() {
            "no project".to_string()
        } else {
            key.scope.projects.join(", ")
        },
        envs.join(", ")
    )?;
    for server in &key.scope.mcp_servers {
        writeln!(
            out,
            "{}{} `{}` {}",
            label("mcp server"),
            server.client,
            server.server,
            server.field
        )?;
    }
    if let Some(first) = key.first_seen {
        let age = key
            .age_days
            .map(|d| {
                format!(
                    " ({d} day{} old{})",
                    plural(d as usize),
                    if key.overdue { ", overdue" } else { "" }
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{}{}{}",
            label("first seen"),
            first.format("%Y-%m-%d %H:%M UTC"),
            age
        )?;
    }
    if let Some(next) = &key.rotated_to {
        let what = match (&next.fingerprint, next.reference) {
            (Some(fingerprint), _) => format!("key {fingerprint}"),
            (None, Some(class)) => format!("a reference ({})", class_name(class)),
            (None, None) => "another value".to_string(),
        };
        let commit = next
            .commit
            .as_deref()
            .map(|c| format!(" in commit {}", short(c)))
            .unwrap_or_default();
        writeln!(
            out,
            "{}{what} at {} {}{commit}",
            label("rotated to"),
            next.path.display(),
            next.slot
        )?;
    }
    if !key.violations.is_empty() {
        let names: Vec<&str> = key.violations.iter().map(|v| v.as_str()).collect();
        writeln!(
            out,
            "{}{}",
            label("violations"),
            paint.with(names.join(", "), Style::new().yellow())
        )?;
    }
    for (i, location) in key.locations.iter().enumerate() {
        let name = if i == 0 { "locations" } else { "" };
        writeln!(out, "{}{}", label(name), describe_location(location))?;
    }
    for (i, access) in key.accessed_by.iter().enumerate() {
        let name = if i == 0 { "read by" } else { "" };
        let verdict = if access.allowed {
            "allowed".to_string()
        } else {
            paint.with("ALERT", Style::new().red().bold())
        };
        writeln!(
            out,
            "{}{} {} (pid {}, uid {}) opened {} {verdict}",
            label(name),
            access.time.format("%Y-%m-%d %H:%M:%S UTC"),
            access.exe,
            access.pid,
            access.uid,
            access.file.display()
        )?;
    }
    for (i, step) in key.remediation.iter().enumerate() {
        let name = if i == 0 { "fix" } else { "" };
        writeln!(out, "{}{}. {}", label(name), i + 1, step)?;
    }
    Ok(())
}

fn describe_location(location: &Location) -> String {
    let location = &LocationV1::from(location.clone());
    let mut text = match &location.host {
        Some(host) => format!("{host}:{}", location.path.display()),
        None => location.path.display().to_string(),
    };
    if let (Some(line), Some(column)) = (location.line, location.column) {
        text.push_str(&format!(":{line}:{column}"));
    }
    text.push_str(&format!("  {}", location.kind.as_str()));
    if let Some(server) = &location.mcp_server {
        text.push_str(&format!(
            " {} `{}`",
            location.mcp_client.as_deref().unwrap_or("?"),
            server
        ));
    }
    if let Some(field) = &location.mcp_field {
        text.push_str(&format!(" {field}"));
    }
    if let Some(mode) = location.mode {
        text.push_str(&format!(" mode {mode:04o}"));
    }
    if let Some(commit) = &location.commit {
        text.push_str(&format!(" commit {}", short(commit)));
    }
    if location.in_head == Some(true) {
        text.push_str(" in HEAD");
    }
    if let Some(commit) = &location.removed_in {
        text.push_str(&format!(" removed in {}", short(commit)));
    }
    if !location.refs.is_empty() {
        text.push_str(&format!(" on {}", location.refs.join(", ")));
    } else if location.reachable == Some(false) {
        text.push_str(" unreachable");
    }
    if let Some(member) = &location.member {
        text.push_str(&format!(" member {member}"));
    }
    if let Some(image) = &location.image {
        text.push_str(&format!(" image {image}"));
    }
    if let Some(layer) = &location.layer {
        let index = location
            .layer_index
            .map(|i| format!(" {i}"))
            .unwrap_or_default();
        text.push_str(&format!(", layer{index} ({})", super::short_digest(layer)));
    }
    if let Some(created_by) = &location.created_by {
        text.push_str(&format!(", `{}`", super::instruction(created_by)));
    }
    if let Some(layer) = &location.deleted_in_layer {
        text.push_str(&format!(
            ", deleted in layer {} (still extractable)",
            super::short_digest(layer)
        ));
    }
    if let Some(layer) = &location.replaced_in_layer {
        text.push_str(&format!(
            ", replaced in layer {} (still extractable)",
            super::short_digest(layer)
        ));
    }
    if let Some(backup) = &location.backup {
        let kind = backup.kind.as_str();
        match &backup.original {
            Some(original) => text.push_str(&format!(" backup ({kind}) of {}", original.display())),
            None => text.push_str(&format!(" backup ({kind})")),
        }
    }
    text
}

/// A commit id as git shows it in one-line logs.
fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn class_name(class: ValueClass) -> &'static str {
    match class {
        ValueClass::EnvRef => "environment variable",
        ValueClass::SecretManager => "secret manager",
        ValueClass::InputPrompt => "input prompt",
        ValueClass::Literal => "literal",
        ValueClass::Placeholder => "placeholder",
        ValueClass::Empty => "empty",
    }
}

fn write_server(out: &mut dyn Write, paint: &Paint, server: &ServerEntry) -> io::Result<()> {
    let project = server
        .project
        .as_deref()
        .map(|p| format!(" [{p}]"))
        .unwrap_or_default();
    writeln!(
        out,
        "  {} `{}`{} {} {}",
        server.client,
        paint.bold(&server.server),
        project,
        server.transport,
        paint.dim(server.config.display())
    )?;
    for field in &server.fields {
        writeln!(out, "      {}", describe_field(paint, field))?;
    }
    for check in &server.checks {
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

fn describe_field(paint: &Paint, field: &FieldEntry) -> String {
    let class = match field.class {
        ValueClass::Literal => paint.with("literal", Style::new().red()),
        ValueClass::EnvRef => paint.with("env-ref", Style::new().green()),
        ValueClass::SecretManager => paint.with("secret-manager", Style::new().green()),
        ValueClass::InputPrompt => paint.with("input-prompt", Style::new().green()),
        ValueClass::Placeholder => "placeholder".to_string(),
        ValueClass::Empty => "empty".to_string(),
    };
    match &field.fingerprint {
        Some(fp) => format!("{} {class} → {}", field.field, paint.dim(fp)),
        None => format!("{} {class}", field.field),
    }
}

fn write_target(out: &mut dyn Write, paint: &Paint, target: &TargetReport) -> io::Result<()> {
    let skipped: Vec<String> = target
        .skipped
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
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
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!(", skipped {}", skipped.join(", "))
    };
    writeln!(out, "  {} {status}{skipped}", paint.bold(&target.target))?;
    for config in &target.unparsed_configs {
        writeln!(
            out,
            "      {} {} ({}): {}",
            paint.with("unparsed", Style::new().yellow()),
            config.path.display(),
            config.client,
            config.reason
        )?;
    }
    for error in &target.errors {
        writeln!(
            out,
            "      {} {}: {}",
            paint.with("error", Style::new().red()),
            error.path.display(),
            error.reason
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{
        audit::{AuditOptions, Auditor, Finding, OrgKey},
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
        write(&report, &mut out, TextOptions { color }).unwrap();
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
