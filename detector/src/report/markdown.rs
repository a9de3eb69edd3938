//! Markdown for pull-request comments and audit binders: a summary table, then one section per
//! key (facts, violations, remediation; locations folded in `<details>`), the MCP servers with
//! their checks, and the targets.
use std::io::{self, Write};

use super::{
    plural, time_text,
    view::{
        short_commit, KeyView, Outcome, Replacement, ReportView, ServersView, TargetView,
        HELD_IN_STORE,
    },
    Report,
};
use crate::detect::value::ValueClass;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let view = ReportView::new(report);
    write_header(out, &view)?;
    if !view.keys.is_empty() {
        write_key_table(out, &view.keys)?;
        writeln!(out)?;
        writeln!(out, "## Keys")?;
        for key in &view.keys {
            writeln!(out)?;
            write_key(out, key)?;
        }
    }
    if !view.servers.is_empty() {
        writeln!(out)?;
        writeln!(out, "## MCP servers")?;
        writeln!(out)?;
        write_servers(out, &view.servers)?;
    }
    if !view.workloads.is_empty() {
        writeln!(out)?;
        writeln!(out, "## Workloads")?;
        writeln!(out)?;
        writeln!(out, "| Workload | Defined in | Secret-bearing values |")?;
        writeln!(out, "|---|---|---|")?;
        for workload in view.workloads {
            let fields: Vec<String> = workload
                .fields
                .iter()
                .map(|f| {
                    format!(
                        "{} ({}) {}",
                        code(&f.field),
                        f.part.as_str(),
                        f.class.as_str()
                    )
                })
                .collect();
            writeln!(
                out,
                "| {} | {} | {} |",
                code(&workload.workload.label()),
                code(&workload.file.display().to_string()),
                fields.join("<br>")
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "## Targets")?;
    writeln!(out)?;
    write_targets(out, &view.targets)?;
    write_errors(out, &view)
}

/// The title, where and when, the counts and the verdict.
fn write_header(out: &mut dyn Write, view: &ReportView) -> io::Result<()> {
    let s = view.summary;
    writeln!(out, "# detector report")?;
    writeln!(out)?;
    let hosts = if view.merged_hosts.is_empty() {
        view.host.to_string()
    } else {
        let hosts = view.merged_hosts;
        format!("{} hosts ({})", hosts.len(), hosts.join(", "))
    };
    writeln!(
        out,
        "Generated {} on {} by {} {}.",
        time_text(&view.generated_at),
        cell(&hosts),
        view.tool_name,
        view.tool_version
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "**{} key{}**: {} · {} · {} MCP server{} · {} target{}{}",
        s.keys,
        plural(s.keys),
        counts(&view.status_tally),
        counts(&view.severity_tally),
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
    writeln!(out)
}

/// One row per key, numbered as the sections below.
fn write_key_table(out: &mut dyn Write, keys: &[KeyView]) -> io::Result<()> {
    write_table_head(
        out,
        &[
            "#",
            "Severity",
            "Key",
            "Provider",
            "Status",
            "Environments",
            "Projects",
            "Violations",
            "Locations",
        ],
    )?;
    for key in keys {
        write_table_row(
            out,
            &[
                key.number.to_string(),
                key.severity.to_string(),
                code(key.shown),
                cell(key.provider),
                match (&key.verification, key.held_in_store) {
                    (_, true) => format!("{} ({HELD_IN_STORE})", key.status.as_str()),
                    (Some(v), false) => format!("{}, {}", key.status.as_str(), v.state),
                    (None, false) => key.status.as_str().to_string(),
                },
                key.environment_names.join(", "),
                key.projects.len().to_string(),
                key.violations.join(", "),
                key.locations.len().to_string(),
            ],
        )?;
    }
    Ok(())
}

fn write_key(out: &mut dyn Write, key: &KeyView) -> io::Result<()> {
    writeln!(
        out,
        "### {}. {} {} — {}, {}{}",
        key.number,
        line(key.provider),
        code(key.shown),
        key.severity,
        key.status.as_str(),
        if key.held_in_store {
            format!(", {HELD_IN_STORE}")
        } else {
            String::new()
        }
    )?;
    writeln!(out)?;
    if let Some(verification) = &key.verification {
        if let Some(alarm) = verification.alarm {
            writeln!(out, "> **{}**", line(alarm))?;
            writeln!(out)?;
        }
        writeln!(out, "- **Verified:** {}", line(&verification.sentence()))?;
    }
    write_key_facts(out, key)?;
    writeln!(out)?;
    write_locations(out, key)?;
    if !key.readers.is_empty() {
        writeln!(out)?;
        write_readers(out, key)?;
    }
    writeln!(out)?;
    writeln!(out, "**Remediation**")?;
    writeln!(out)?;
    for (i, step) in key.remediation.iter().enumerate() {
        writeln!(out, "{}. {}", i + 1, line(step))?;
    }
    Ok(())
}

/// The bulleted facts under a key's heading.
fn write_key_facts(out: &mut dyn Write, key: &KeyView) -> io::Result<()> {
    writeln!(out, "- **Fingerprint:** {}", code(key.fingerprint))?;
    writeln!(out, "- **Rule:** {}", code(key.rule))?;
    if !key.slots.is_empty() {
        writeln!(out, "- **Assigned to:** {}", codes(key.slots))?;
    }
    let mut seen = Vec::new();
    if let Some(t) = key.first_seen {
        seen.push(format!("first seen {}", time_text(&t)));
    }
    if let Some(t) = key.last_seen {
        seen.push(format!("last seen {}", time_text(&t)));
    }
    if let Some(age) = key.age {
        seen.push(format!(
            "{} day{} old{}",
            age.days,
            plural(age.days as usize),
            if age.overdue { ", **overdue**" } else { "" }
        ));
    }
    if !seen.is_empty() {
        writeln!(out, "- **Timeline:** {}", seen.join(" · "))?;
    }
    if let Some(next) = &key.successor {
        let by = match next.by {
            Replacement::Key(fp) => format!("another key {}", code(fp)),
            Replacement::Reference(class) => format!("a reference ({})", class.as_str()),
            Replacement::OtherValue => "another value".to_string(),
        };
        writeln!(
            out,
            "- **Rotated:** {} in {} holds {by}{}",
            code(next.slot),
            code(&next.path.display().to_string()),
            next.commit
                .map(|c| format!(" since commit {}", code(short_commit(c))))
                .unwrap_or_default()
        )?;
    }
    let projects = if key.projects.is_empty() {
        "none known".to_string()
    } else {
        codes(key.projects)
    };
    writeln!(out, "- **Projects:** {projects}")?;
    writeln!(
        out,
        "- **Environments:** {}",
        key.environment_names.join(", ")
    )?;
    for workload in &key.workloads {
        writeln!(out, "- **Workload:** {}", code(workload))?;
    }
    for server in key.mcp_servers {
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
        let names: Vec<String> = key.violations.iter().map(|v| code(v)).collect();
        writeln!(out, "- **Violations:** {}", names.join(", "))?;
    }
    Ok(())
}

/// The key's places, folded.
fn write_locations(out: &mut dyn Write, key: &KeyView) -> io::Result<()> {
    let rows = key.locations.iter().map(|location| {
        vec![
            location.kind_name().to_string(),
            code(&location.path.display().to_string()),
            location.line.map(|l| l.to_string()).unwrap_or_default(),
            cell(&location.detail()),
        ]
    });
    let summary = format!("Locations ({})", key.locations.len());
    write_folded_table(out, &summary, &["Kind", "Where", "Line", "Detail"], rows)
}

/// The processes that opened a file holding the key, folded.
fn write_readers(out: &mut dyn Write, key: &KeyView) -> io::Result<()> {
    let rows = key.readers.iter().map(|access| {
        vec![
            time_text(&access.time),
            format!("{} ({})", code(&access.exe), cell(&access.comm)),
            access.pid.to_string(),
            access.uid.to_string(),
            code(&access.file.display().to_string()),
            (if access.allowed {
                "allowed"
            } else {
                "**alert**"
            })
            .to_string(),
        ]
    });
    let summary = format!(
        "Read by ({} open{}, {} not allowed)",
        key.readers.len(),
        plural(key.readers.len()),
        key.alerts
    );
    let columns = ["Time", "Process", "PID", "UID", "File", "Policy"];
    write_folded_table(out, &summary, &columns, rows)
}

/// A table folded under `summary` (GitHub renders `<details>` closed).
fn write_folded_table(
    out: &mut dyn Write,
    summary: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> io::Result<()> {
    writeln!(out, "<details><summary>{summary}</summary>")?;
    writeln!(out)?;
    write_table_head(out, columns)?;
    for row in rows {
        write_table_row(out, &row)?;
    }
    writeln!(out)?;
    writeln!(out, "</details>")
}

/// The column names and the rule under them.
fn write_table_head<S: AsRef<str>>(out: &mut dyn Write, columns: &[S]) -> io::Result<()> {
    let names: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(columns.len()))
}

/// One row; the cells are already escaped.
fn write_table_row(out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
    writeln!(out, "| {} |", cells.join(" | "))
}

/// A table with a column per check, then the reasons of the checks that failed.
fn write_servers(out: &mut dyn Write, servers: &ServersView) -> io::Result<()> {
    let fixed = ["Client", "Server", "Scope", "Config", "Secret fields"];
    let checks = servers.check_names.iter().map(|check| cell(check));
    let columns: Vec<String> = fixed
        .map(str::to_string)
        .into_iter()
        .chain(checks)
        .collect();
    write_table_head(out, &columns)?;
    for server in &servers.rows {
        let host = server.host.map(|h| format!(" on {h}")).unwrap_or_default();
        let fields: Vec<String> = server
            .fields
            .iter()
            .map(|f| format!("{} {}", code(&f.field), class_name(f.class)))
            .collect();
        let config = code(&server.config.display().to_string());
        let mut cells = vec![
            cell(server.client),
            code(server.server),
            cell(&server.scope),
            format!("{config}{}", cell(&host)),
            fields.join(", "),
        ];
        cells.extend(server.check_columns.iter().map(|column| {
            match column {
                Some(c) if c.pass => "✅ pass",
                Some(_) => "❌ fail",
                None => "",
            }
            .to_string()
        }));
        write_table_row(out, &cells)?;
    }
    let mut failed = servers.failed_checks().peekable();
    if failed.peek().is_some() {
        writeln!(out)?;
        writeln!(out, "Failed checks:")?;
        writeln!(out)?;
        for (server, check) in failed {
            writeln!(
                out,
                "- {} {} ({}): {}",
                code(server.server),
                code(&check.check),
                code(&server.config.display().to_string()),
                line(&check.reason)
            )?;
        }
    }
    Ok(())
}

fn write_targets(out: &mut dyn Write, targets: &[TargetView]) -> io::Result<()> {
    write_table_head(out, &["Target", "Objects", "Bytes", "Duration", "Result"])?;
    for t in targets {
        let host = t.host.map(|h| format!(" on {h}")).unwrap_or_default();
        let result = match t.outcome {
            Outcome::Failed { reason } => format!("**failed**: {reason}"),
            Outcome::Clean => "ok".to_string(),
            Outcome::Errors(errors) => format!("{} error{}", errors.len(), plural(errors.len())),
        };
        write_table_row(
            out,
            &[
                format!("{}{}", code(t.target), cell(&host)),
                t.objects_scanned.to_string(),
                t.bytes_scanned.to_string(),
                format!("{} ms", t.duration_ms),
                cell(&result),
            ],
        )?;
    }
    Ok(())
}

/// Every target's errors, folded.
fn write_errors(out: &mut dyn Write, view: &ReportView) -> io::Result<()> {
    let errors: Vec<_> = view.target_errors().collect();
    if errors.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "<details><summary>Errors ({})</summary>", errors.len())?;
    writeln!(out)?;
    for error in errors {
        writeln!(
            out,
            "- {} {}: {}",
            code(error.target),
            code(&error.path.display().to_string()),
            line(error.reason)
        )?;
    }
    writeln!(out)?;
    writeln!(out, "</details>")
}

fn class_name(class: ValueClass) -> String {
    if class.is_secret() {
        format!("**{}**", class.as_str())
    } else {
        class.as_str().to_string()
    }
}

/// The tallies joined, or `none`.
fn counts(tally: &[String]) -> String {
    if tally.is_empty() {
        "none".to_string()
    } else {
        tally.join(", ")
    }
}

/// Text on one line, safe in a table cell and in running text.
fn line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn cell(text: &str) -> String {
    line(text)
}

/// Inline code that survives backticks and pipes in the text.
pub(crate) fn code(text: &str) -> String {
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
