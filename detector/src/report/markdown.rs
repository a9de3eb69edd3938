//! Markdown for pull-request comments and audit binders: a summary table, then one section per
//! key (facts, violations, remediation; locations folded in `<details>`), the MCP servers with
//! their checks, and the targets.
use std::io::{self, Write};

use super::{location_detail, plural, time_text, Report};
use crate::audit::{Key, ServerEntry};

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    writeln!(out, "# detector report")?;
    writeln!(out)?;
    let hosts = if report.hosts.is_empty() {
        report.host.clone().unwrap_or_else(|| "unknown host".into())
    } else {
        format!("{} hosts ({})", report.hosts.len(), report.hosts.join(", "))
    };
    writeln!(
        out,
        "Generated {} on {} by {} {}.",
        time_text(&report.generated_at),
        cell(&hosts),
        report.tool.name,
        report.tool.version
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "**{} key{}**: {} · {} · {} MCP server{} · {} target{}{}",
        s.keys,
        plural(s.keys),
        counts(&s.by_status),
        counts(&s.by_severity),
        s.mcp_servers,
        plural(s.mcp_servers),
        s.targets,
        plural(s.targets),
        if s.targets_failed > 0 {
            format!(" ({} failed)", s.targets_failed)
        } else {
            String::new()
        }
    )?;
    writeln!(out)?;
    if s.failing > 0 {
        writeln!(
            out,
            "> **{} key{} at or above `{}`** — the check fails.",
            s.failing,
            plural(s.failing),
            s.fail_on
        )?;
    } else {
        writeln!(out, "> No key at or above `{}`.", s.fail_on)?;
    }
    if s.suppressed > 0 {
        writeln!(out, ">")?;
        writeln!(
            out,
            "> {} key{} suppressed by the baseline.",
            s.suppressed,
            plural(s.suppressed)
        )?;
    }
    writeln!(out)?;

    if !report.keys.is_empty() {
        writeln!(
            out,
            "| # | Severity | Key | Provider | Status | Environments | Projects | Violations | Locations |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        for (i, key) in report.keys.iter().enumerate() {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                i + 1,
                key.severity,
                code(key.secret.as_deref().unwrap_or(&key.redacted)),
                cell(&key.provider),
                key.status.as_str(),
                key.scope
                    .environments
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                key.scope.projects.len(),
                key.violations
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                key.locations.len(),
            )?;
        }
        writeln!(out)?;
        writeln!(out, "## Keys")?;
        for (i, key) in report.keys.iter().enumerate() {
            writeln!(out)?;
            write_key(out, i + 1, key)?;
        }
    }

    if !report.mcp_servers.is_empty() {
        writeln!(out)?;
        writeln!(out, "## MCP servers")?;
        writeln!(out)?;
        write_servers(out, &report.mcp_servers)?;
    }

    writeln!(out)?;
    writeln!(out, "## Targets")?;
    writeln!(out)?;
    writeln!(out, "| Target | Objects | Bytes | Duration | Result |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for t in &report.targets {
        let host = t
            .host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let result = if t.failed {
            format!(
                "**failed**: {}",
                t.errors.first().map(|e| e.reason.as_str()).unwrap_or("")
            )
        } else if t.errors.is_empty() {
            "ok".to_string()
        } else {
            format!("{} error{}", t.errors.len(), plural(t.errors.len()))
        };
        writeln!(
            out,
            "| {}{} | {} | {} | {} ms | {} |",
            code(&t.target),
            cell(&host),
            t.objects_scanned,
            t.bytes_scanned,
            t.duration_ms,
            cell(&result)
        )?;
    }
    let errors: Vec<_> = report
        .targets
        .iter()
        .flat_map(|t| t.errors.iter().map(move |e| (t, e)))
        .collect();
    if !errors.is_empty() {
        writeln!(out)?;
        writeln!(out, "<details><summary>Errors ({})</summary>", errors.len())?;
        writeln!(out)?;
        for (t, e) in errors {
            writeln!(
                out,
                "- {} {}: {}",
                code(&t.target),
                code(&e.path.display().to_string()),
                line(&e.reason)
            )?;
        }
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    Ok(())
}

fn write_key(out: &mut dyn Write, n: usize, key: &Key) -> io::Result<()> {
    writeln!(
        out,
        "### {n}. {} {} — {}, {}",
        line(&key.provider),
        code(key.secret.as_deref().unwrap_or(&key.redacted)),
        key.severity,
        key.status.as_str()
    )?;
    writeln!(out)?;
    writeln!(out, "- **Fingerprint:** {}", code(&key.fingerprint))?;
    writeln!(out, "- **Rule:** {}", code(&key.rule))?;
    if !key.slots.is_empty() {
        writeln!(out, "- **Assigned to:** {}", codes(&key.slots))?;
    }
    let mut seen = Vec::new();
    if let Some(t) = key.first_seen {
        seen.push(format!("first seen {}", time_text(&t)));
    }
    if let Some(t) = key.last_seen {
        seen.push(format!("last seen {}", time_text(&t)));
    }
    if let Some(days) = key.age_days {
        seen.push(format!(
            "{days} day{} old{}",
            plural(days as usize),
            if key.overdue { ", **overdue**" } else { "" }
        ));
    }
    if !seen.is_empty() {
        writeln!(out, "- **Timeline:** {}", seen.join(" · "))?;
    }
    if let Some(next) = &key.rotated_to {
        let by = match (&next.fingerprint, next.reference) {
            (Some(fp), _) => format!("another key {}", code(fp)),
            (None, Some(class)) => format!("a reference ({})", class.as_str()),
            (None, None) => "another value".to_string(),
        };
        writeln!(
            out,
            "- **Rotated:** {} in {} holds {by}{}",
            code(&next.slot),
            code(&next.path.display().to_string()),
            next.commit
                .as_deref()
                .map(|c| format!(" since commit {}", code(c.get(..12).unwrap_or(c))))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "- **Projects:** {}",
        if key.scope.projects.is_empty() {
            "none known".to_string()
        } else {
            codes(&key.scope.projects)
        }
    )?;
    writeln!(
        out,
        "- **Environments:** {}",
        key.scope
            .environments
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for server in &key.scope.mcp_servers {
        writeln!(
            out,
            "- **MCP server:** {} {} {} in {}",
            line(&server.client),
            code(&server.server),
            code(&server.field),
            code(&server.config.display().to_string())
        )?;
    }
    if !key.violations.is_empty() {
        let names: Vec<String> = key.violations.iter().map(|v| code(v.as_str())).collect();
        writeln!(out, "- **Violations:** {}", names.join(", "))?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "<details><summary>Locations ({})</summary>",
        key.locations.len()
    )?;
    writeln!(out)?;
    writeln!(out, "| Kind | Where | Line | Detail |")?;
    writeln!(out, "|---|---|---|---|")?;
    for location in &key.locations {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            location.kind().as_str(),
            code(&location.path().display().to_string()),
            location.line.map(|l| l.to_string()).unwrap_or_default(),
            cell(&location_detail(location))
        )?;
    }
    writeln!(out)?;
    writeln!(out, "</details>")?;
    if !key.accessed_by.is_empty() {
        writeln!(out)?;
        writeln!(
            out,
            "<details><summary>Read by ({} open{}, {} not allowed)</summary>",
            key.accessed_by.len(),
            plural(key.accessed_by.len()),
            key.accessed_by.iter().filter(|a| !a.allowed).count()
        )?;
        writeln!(out)?;
        writeln!(out, "| Time | Process | PID | UID | File | Policy |")?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for access in &key.accessed_by {
            writeln!(
                out,
                "| {} | {} ({}) | {} | {} | {} | {} |",
                time_text(&access.time),
                code(&access.exe),
                cell(&access.comm),
                access.pid,
                access.uid,
                code(&access.file.display().to_string()),
                if access.allowed {
                    "allowed"
                } else {
                    "**alert**"
                }
            )?;
        }
        writeln!(out)?;
        writeln!(out, "</details>")?;
    }
    writeln!(out)?;
    writeln!(out, "**Remediation**")?;
    writeln!(out)?;
    for (i, step) in key.remediation.iter().enumerate() {
        writeln!(out, "{}. {}", i + 1, line(step))?;
    }
    Ok(())
}

fn write_servers(out: &mut dyn Write, servers: &[ServerEntry]) -> io::Result<()> {
    let mut checks: Vec<&str> = Vec::new();
    for server in servers {
        for check in &server.checks {
            if !checks.contains(&check.check.as_str()) {
                checks.push(&check.check);
            }
        }
    }
    write!(out, "| Client | Server | Scope | Config | Secret fields |")?;
    for check in &checks {
        write!(out, " {} |", cell(check))?;
    }
    writeln!(out)?;
    write!(out, "|---|---|---|---|---|")?;
    for _ in &checks {
        write!(out, "---|")?;
    }
    writeln!(out)?;
    for server in servers {
        let scope = match (&server.project, &server.user) {
            (Some(project), _) => project.clone(),
            (None, Some(user)) => format!("user:{user}"),
            (None, None) => String::new(),
        };
        let host = server
            .host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let fields: Vec<String> = server
            .fields
            .iter()
            .map(|f| format!("{} {}", code(&f.field), class_name(f.class)))
            .collect();
        write!(
            out,
            "| {} | {} | {} | {}{} | {} |",
            cell(&server.client),
            code(&server.server),
            cell(&scope),
            code(&server.config.display().to_string()),
            cell(&host),
            fields.join(", ")
        )?;
        for name in &checks {
            let mark = match server.checks.iter().find(|c| c.check == *name) {
                Some(c) if c.pass => "✅ pass",
                Some(_) => "❌ fail",
                None => "",
            };
            write!(out, " {mark} |")?;
        }
        writeln!(out)?;
    }
    let failed: Vec<(&ServerEntry, &crate::audit::CheckEntry)> = servers
        .iter()
        .flat_map(|s| s.checks.iter().filter(|c| !c.pass).map(move |c| (s, c)))
        .collect();
    if !failed.is_empty() {
        writeln!(out)?;
        writeln!(out, "Failed checks:")?;
        writeln!(out)?;
        for (server, check) in failed {
            writeln!(
                out,
                "- {} {} ({}): {}",
                code(&server.server),
                code(&check.check),
                code(&server.config.display().to_string()),
                line(&check.reason)
            )?;
        }
    }
    Ok(())
}

fn class_name(class: crate::detect::value::ValueClass) -> String {
    if class.is_secret() {
        format!("**{}**", class.as_str())
    } else {
        class.as_str().to_string()
    }
}

fn counts(map: &std::collections::BTreeMap<String, usize>) -> String {
    let parts: Vec<String> = map
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// Text on one line, safe in a table cell and in running text.
fn line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cell(text: &str) -> String {
    line(text)
}

/// Inline code that survives backticks and pipes in the text.
fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // Pipes end a table cell even inside code: GitHub takes `\|` there.
    let text = text.replace('|', "\\|");
    if longest > 0 || text.starts_with(' ') || text.ends_with(' ') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

fn codes(items: &[String]) -> String {
    items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_and_cells_are_safe() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(line("x\ny|z<b>"), "x y\\|z&lt;b&gt;");
    }
}
