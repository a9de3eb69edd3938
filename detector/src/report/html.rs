//! One self-contained HTML file: inline CSS, inline SVG charts, inline script, nothing fetched
//! (a Content-Security-Policy forbids it). Summary charts by status, severity and environment;
//! one table per key with its timeline drawn on a time axis shared by every key; filters by
//! status, severity, environment and text, also settable from the URL fragment
//! (`report.html#status=live&severity=high&environment=production&q=github`).
//!
//! When its script has run, the page marks `<body data-rendered="ok">` and says how many keys
//! it shows; a script error marks `data-script-error` instead. Tests read both.
use std::{
    fmt::Write as _,
    io::{self, Write},
};

use chrono::{DateTime, Utc};

use super::{
    plural, time_text,
    view::{
        short_commit, KeyView, Outcome, Replacement, ReportView, ServersView, TargetView,
        ENVIRONMENTS, HELD_IN_STORE, SEVERITIES, STATUSES,
    },
    Report,
};
use crate::{
    audit::{Access, Environment, Status},
    detect::Severity,
};

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(report).as_bytes())
}

pub fn render(report: &Report) -> String {
    let view = ReportView::new(report);
    let mut html = String::with_capacity(64 * 1024 + view.keys.len() * 4096);
    page_header(&mut html, &view);
    html.push_str("<main>\n");
    summary_charts(&mut html, &view);
    filters(&mut html);
    keys_section(&mut html, &view);
    if !view.servers.is_empty() {
        servers_section(&mut html, &view.servers);
    }
    if !view.workloads.is_empty() {
        workloads_section(&mut html, view.workloads);
    }
    targets_section(&mut html, &view.targets);
    html.push_str("</main>\n<footer><p id=\"render-status\" role=\"status\"></p></footer>\n");
    let _ = write!(
        html,
        "<script>{FRAGMENT_SCRIPT}{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

/// The document head, then the page header: where and when, the counts, the verdict.
fn page_header(html: &mut String, view: &ReportView) {
    let s = view.summary;
    let where_ = if view.merged_hosts.is_empty() {
        view.host.to_string()
    } else {
        format!("{} hosts", view.merged_hosts.len())
    };
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="{tool} {version}">
<title>detector report — {where_} — {date}</title>
<script>window.addEventListener("error", function (e) {{ document.documentElement.setAttribute("data-script-error", String(e.message)); }});</script>
<style>{css}</style>
</head>
<body data-rendered="no">
<header>
<h1>detector report</h1>
<p class="meta">Generated {date} on {where_} by {tool} {version} · {keys} key{keys_s} · {servers} MCP server{servers_s} · {targets} target{targets_s}{failed}</p>
"#,
        tool = esc(view.tool_name),
        version = esc(view.tool_version),
        where_ = esc(&where_),
        date = esc(&time_text(&view.generated_at)),
        css = CSS,
        keys = s.keys,
        keys_s = plural(s.keys),
        servers = s.mcp_servers,
        servers_s = plural(s.mcp_servers),
        targets = s.targets,
        targets_s = plural(s.targets),
        failed = if s.targets_failed > 0 {
            format!(" ({} failed)", s.targets_failed)
        } else {
            String::new()
        },
    );
    if !view.merged_hosts.is_empty() {
        let _ = writeln!(
            html,
            r#"<p class="meta">Hosts: {}</p>"#,
            esc(&view.merged_hosts.join(", "))
        );
    }
    if s.failing > 0 {
        let _ = write!(
            html,
            r#"<p class="verdict fail">{} key{} at or above <b>{}</b>.</p>"#,
            s.failing,
            plural(s.failing),
            s.fail_on
        );
    } else {
        let _ = write!(
            html,
            r#"<p class="verdict pass">No key at or above <b>{}</b>.</p>"#,
            s.fail_on
        );
    }
    if s.suppressed > 0 {
        let _ = writeln!(
            html,
            r#"<p class="meta">{} key{} suppressed by the baseline.</p>"#,
            s.suppressed,
            plural(s.suppressed)
        );
    }
    html.push_str("</header>\n");
}

fn summary_charts(html: &mut String, view: &ReportView) {
    html.push_str("<section id=\"summary\" aria-label=\"Summary\">\n");
    let by_status: Vec<(String, usize, &str)> = (view.by_status.iter())
        .map(|(status, n)| (status.as_str().to_string(), *n, status_color(*status)))
        .collect();
    let by_severity: Vec<(String, usize, &str)> = (view.by_severity.iter())
        .map(|(severity, n)| (severity.to_string(), *n, severity_color(*severity)))
        .collect();
    let by_environment: Vec<(String, usize, &str)> = (view.by_environment.iter())
        .map(|(env, n)| (env.as_str().to_string(), *n, environment_color(*env)))
        .collect();
    html.push_str(&bar_chart("chart-status", "Keys by status", &by_status));
    html.push_str(&bar_chart(
        "chart-severity",
        "Keys by severity",
        &by_severity,
    ));
    html.push_str(&bar_chart(
        "chart-environment",
        "Keys by environment",
        &by_environment,
    ));
    html.push_str("</section>\n");
}

fn filters(html: &mut String) {
    html.push_str("<form id=\"filters\" aria-label=\"Filters\">\n");
    html.push_str(&select(
        "status",
        "Status",
        STATUSES.iter().map(|s| s.as_str()),
    ));
    html.push_str(&select(
        "severity",
        "Severity",
        SEVERITIES.iter().map(|s| s.as_str()),
    ));
    html.push_str(&select(
        "environment",
        "Environment",
        ENVIRONMENTS.iter().map(|e| e.as_str()),
    ));
    html.push_str(
        "<label>Text <input id=\"filter-text\" type=\"search\" placeholder=\"rule, provider, path, project, server…\"></label>\n\
         <output id=\"filter-count\" for=\"filter-status filter-severity filter-environment filter-text\"></output>\n</form>\n",
    );
}

fn keys_section(html: &mut String, view: &ReportView) {
    html.push_str("<section id=\"keys\" aria-label=\"Keys\">\n");
    if view.keys.is_empty() {
        html.push_str("<p class=\"empty\">No keys found.</p>\n");
    }
    let axis = TimeAxis::new(view);
    for key in &view.keys {
        key_article(html, key, &axis);
    }
    html.push_str("<p id=\"no-match\" class=\"empty\" hidden>No key matches the filters.</p>\n");
    html.push_str("</section>\n");
}

fn key_article(html: &mut String, key: &KeyView, axis: &TimeAxis) {
    let n = key.number;
    let _ = writeln!(
        html,
        r#"<article class="key" id="key-{n}" data-status="{status}" data-severity="{severity}" data-environments="{envs}" data-text="{text}">"#,
        status = key.status.as_str(),
        severity = key.severity.as_str(),
        envs = esc(&key.environment_names.join(" ")),
        text = esc(&search_text(key)),
    );
    let _ = writeln!(
        html,
        r#"<h2><span class="n">{n}.</span> <span class="badge" style="background:{sc}">{sev}</span> <span class="badge" style="background:{stc}">{status}</span>{held} {provider} <code>{shown}</code></h2>"#,
        sc = severity_color(key.severity),
        sev = key.severity,
        stc = status_color(key.status),
        status = key.status.as_str(),
        held = if key.held_in_store {
            format!(
                r#" <span class="badge held" style="background:#2e7d32">{HELD_IN_STORE}</span>"#
            )
        } else {
            String::new()
        },
        provider = esc(key.provider),
        shown = esc(key.shown),
    );
    if let Some(verification) = &key.verification {
        if let Some(alarm) = verification.alarm {
            let _ = writeln!(
                html,
                r#"<p class="alarm" role="alert"><strong>{}</strong></p>"#,
                esc(alarm)
            );
        }
        let _ = writeln!(
            html,
            r#"<p class="verification" data-verification="{}">{}</p>"#,
            verification.state,
            esc(&verification.sentence())
        );
    }
    facts_table(html, key);
    html.push_str(&axis.timeline(key));
    locations_table(html, key);
    if !key.readers.is_empty() {
        readers_table(html, key.readers, key.alerts);
    }
    html.push_str("<h3>Remediation</h3>\n<ol class=\"remediation\">\n");
    for step in key.remediation {
        let _ = writeln!(html, "<li>{}</li>", esc(step));
    }
    html.push_str("</ol>\n</article>\n");
}

/// What the text filter matches a key by, lower-cased.
fn search_text(key: &KeyView) -> String {
    let mut search: Vec<String> = [
        key.rule,
        key.provider,
        key.redacted,
        key.fingerprint,
        key.status.as_str(),
        key.severity.as_str(),
    ]
    .map(str::to_string)
    .to_vec();
    if let Some(verification) = &key.verification {
        search.push(verification.state.to_string());
    }
    if key.held_in_store {
        search.push(HELD_IN_STORE.to_string());
    }
    search.extend(key.projects.iter().cloned());
    search.extend(key.slots.iter().cloned());
    search.extend(key.violations.iter().map(|v| v.to_string()));
    search.extend(key.mcp_servers.iter().flat_map(|s| {
        [
            s.client.clone(),
            s.server.clone(),
            s.field.clone(),
            s.config.display().to_string(),
        ]
    }));
    search.extend(key.locations.iter().map(|l| l.path.display().to_string()));
    search.extend(
        (key.locations.iter())
            .filter_map(|l| l.image_name())
            .map(str::to_string),
    );
    search.extend(
        (key.locations.iter())
            .filter_map(|l| l.host)
            .map(str::to_string),
    );
    search.join(" ").to_lowercase()
}

/// The key's facts, one row each.
fn facts_table(html: &mut String, key: &KeyView) {
    html.push_str("<table class=\"facts\"><tbody>\n");
    let row = |html: &mut String, name: &str, value: String| {
        let _ = writeln!(
            html,
            "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>"
        );
    };
    row(
        html,
        "Fingerprint",
        format!("<code>{}</code>", esc(key.fingerprint)),
    );
    row(
        html,
        "Rule",
        format!("<code>{}</code> {}", esc(key.rule), esc(key.description)),
    );
    if !key.slots.is_empty() {
        row(html, "Assigned to", codes(key.slots));
    }
    row(html, "First seen", opt_time(key.first_seen));
    row(html, "Last seen", opt_time(key.last_seen));
    row(html, "Rotation", rotation(key));
    if let Some(age) = key.age {
        let overdue = if age.overdue {
            " <span class=\"alert\">overdue</span>"
        } else {
            ""
        };
        let days = age.days;
        row(
            html,
            "Age",
            format!("{days} day{}{overdue}", plural(days as usize)),
        );
    }
    scope_rows(html, key, row);
    html.push_str("</tbody></table>\n");
}

/// The rows of where the key belongs and what is wrong with it.
fn scope_rows(html: &mut String, key: &KeyView, row: impl Fn(&mut String, &str, String)) {
    let projects = if key.projects.is_empty() {
        "none known".to_string()
    } else {
        codes(key.projects)
    };
    row(html, "Projects", projects);
    let environments: Vec<String> = (key.environments.iter())
        .map(|e| {
            format!(
                "<span class=\"badge\" style=\"background:{}\">{}</span>",
                environment_color(*e),
                e.as_str()
            )
        })
        .collect();
    row(html, "Environments", environments.join(" "));
    if !key.mcp_servers.is_empty() {
        let servers: Vec<String> = (key.mcp_servers.iter())
            .map(|s| {
                format!(
                    "{} <code>{}</code> <code>{}</code> in <code>{}</code>",
                    esc(&s.client),
                    esc(&s.server),
                    esc(&s.field),
                    esc(&s.config.display().to_string())
                )
            })
            .collect();
        row(html, "MCP servers", servers.join("<br>"));
    }
    if !key.workloads.is_empty() {
        row(html, "Workloads", codes(&key.workloads));
    }
    if !key.violations.is_empty() {
        let violations: Vec<String> = (key.violations.iter())
            .map(|v| format!("<span class=\"violation\">{v}</span>"))
            .collect();
        row(html, "Violations", violations.join(" "));
    }
}

fn locations_table(html: &mut String, key: &KeyView) {
    let _ = writeln!(
        html,
        "<details class=\"locations\" open><summary>Locations ({})</summary>\n<table><thead><tr><th>Kind</th><th>Where</th><th>Line</th><th>Detail</th></tr></thead><tbody>",
        key.locations.len()
    );
    for location in &key.locations {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            location.kind_name(),
            esc(&location.path.display().to_string()),
            location.line.map(|l| l.to_string()).unwrap_or_default(),
            esc(&location.detail())
        );
    }
    html.push_str("</tbody></table></details>\n");
}

/// The processes that opened a file holding the key; open when one was not allowed.
fn readers_table(html: &mut String, readers: &[Access], alerts: usize) {
    let _ = writeln!(
        html,
        "<details class=\"access\"{}><summary>Read by ({} open{}, {alerts} not allowed)</summary>\n<table><thead><tr><th>Time</th><th>Process</th><th>PID</th><th>UID</th><th>File</th><th>Policy</th></tr></thead><tbody>",
        if alerts > 0 { " open" } else { "" },
        readers.len(),
        plural(readers.len())
    );
    for a in readers {
        let _ = writeln!(
            html,
            "<tr{}><td>{}</td><td><code>{}</code> ({})</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            if a.allowed { "" } else { " class=\"alert-row\"" },
            esc(&time_text(&a.time)),
            esc(&a.exe),
            esc(&a.comm),
            a.pid,
            a.uid,
            esc(&a.file.display().to_string()),
            if a.allowed { "allowed" } else { "alert" }
        );
    }
    html.push_str("</tbody></table></details>\n");
}

fn workloads_section(html: &mut String, workloads: &[crate::audit::WorkloadReport]) {
    html.push_str("<section id=\"workloads\"><h2>Workloads</h2>\n<table><thead><tr><th>Workload</th><th>Defined in</th><th>Secret-bearing values</th></tr></thead><tbody>\n");
    for workload in workloads {
        let fields: Vec<String> = (workload.fields.iter())
            .map(|f| {
                format!(
                    "<code>{}</code> {} <span class=\"class-{}\">{}</span>",
                    esc(&f.field),
                    f.part.as_str(),
                    f.class.as_str(),
                    f.class.as_str()
                )
            })
            .collect();
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&workload.workload.label()),
            esc(&workload.file.display().to_string()),
            fields.join("<br>")
        );
    }
    html.push_str("</tbody></table></section>\n");
}

fn servers_section(html: &mut String, servers: &ServersView) {
    html.push_str("<section id=\"servers\"><h2>MCP servers</h2>\n<table><thead><tr><th>Client</th><th>Server</th><th>Scope</th><th>Config</th><th>Secret fields</th>");
    for check in &servers.check_names {
        let _ = write!(html, "<th>{}</th>", esc(check));
    }
    html.push_str("</tr></thead><tbody>\n");
    for server in &servers.rows {
        let host = server
            .host
            .map(|h| format!(" on {}", esc(h)))
            .unwrap_or_default();
        let fields: Vec<String> = (server.fields.iter())
            .map(|f| {
                format!(
                    "<code>{}</code> <span class=\"class-{}\">{}</span>",
                    esc(&f.field),
                    f.class.as_str(),
                    f.class.as_str()
                )
            })
            .collect();
        let _ = write!(
            html,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code>{host}</td><td>{}</td>",
            esc(server.client),
            esc(server.server),
            esc(&server.scope),
            esc(&server.config.display().to_string()),
            fields.join("<br>")
        );
        for column in &server.check_columns {
            match column {
                Some(c) => {
                    let result = if c.pass { "pass" } else { "fail" };
                    let reason = esc(&c.reason);
                    let _ = write!(
                        html,
                        "<td class=\"{result}\" title=\"{reason}\">{result}<br><small>{reason}</small></td>",
                    );
                }
                None => html.push_str("<td></td>"),
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></section>\n");
}

fn targets_section(html: &mut String, targets: &[TargetView]) {
    html.push_str("<section id=\"targets\"><h2>Targets</h2>\n<table><thead><tr><th>Target</th><th>Objects</th><th>Bytes</th><th>Duration</th><th>Result</th></tr></thead><tbody>\n");
    for t in targets {
        let result = match t.outcome {
            Outcome::Failed { reason } => {
                format!("<span class=\"alert\">failed</span>: {}", esc(reason))
            }
            Outcome::Clean => "ok".to_string(),
            Outcome::Errors(errors) => {
                let list: Vec<String> = (errors.iter())
                    .map(|e| {
                        format!(
                            "<code>{}</code>: {}",
                            esc(&e.path.display().to_string()),
                            esc(&e.reason)
                        )
                    })
                    .collect();
                format!(
                    "<details><summary>{} error{}</summary>{}</details>",
                    errors.len(),
                    plural(errors.len()),
                    list.join("<br>")
                )
            }
        };
        let host = t
            .host
            .map(|h| format!(" on {}", esc(h)))
            .unwrap_or_default();
        let _ = writeln!(
            html,
            "<tr><td><code>{}</code>{host}</td><td>{}</td><td>{}</td><td>{} ms</td><td>{result}</td></tr>",
            esc(t.target),
            t.objects_scanned,
            t.bytes_scanned,
            t.duration_ms
        );
    }
    html.push_str("</tbody></table></section>\n");
}

/// One time axis for every key's timeline, from the earliest sighting to the report's time,
/// so timelines can be compared at a glance.
struct TimeAxis {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
}

const TIMELINE_WIDTH: f64 = 720.0;
const TIMELINE_MARGIN: f64 = 70.0;

impl TimeAxis {
    fn new(view: &ReportView) -> TimeAxis {
        let now = view.generated_at;
        let times = view.keys.iter().flat_map(|k| {
            k.first_seen
                .into_iter()
                .chain(k.last_seen)
                .chain(k.successor.as_ref().and_then(|r| r.commit_time))
                .chain(k.locations.iter().filter_map(|l| l.time))
        });
        let start = times.clone().min().unwrap_or(now).min(now);
        let end = times.max().unwrap_or(now).max(now);
        TimeAxis { start, end, now }
    }

    fn x(&self, t: DateTime<Utc>) -> f64 {
        let span = (self.end - self.start).num_seconds().max(1) as f64;
        let offset = (t - self.start).num_seconds() as f64;
        TIMELINE_MARGIN + (TIMELINE_WIDTH - 2.0 * TIMELINE_MARGIN) * (offset / span).clamp(0.0, 1.0)
    }

    fn timeline(&self, key: &KeyView) -> String {
        let Some(first) = key.first_seen else {
            return "<p class=\"timeline none\">Timeline: no date is known for this key.</p>\n"
                .to_string();
        };
        let last = key.last_seen.unwrap_or(first);
        // A live key is exposed until now; a rotated or removed one until it was last seen.
        let until = if key.status == Status::Live {
            self.now
        } else {
            last
        };
        let color = status_color(key.status);
        let (x0, x1, xl, xn) = (self.x(first), self.x(until), self.x(last), self.x(self.now));
        let mut svg = format!(
            r#"<figure class="timeline"><svg role="img" viewBox="0 0 {w} 64" width="{w}" height="64" xmlns="http://www.w3.org/2000/svg"><title>Timeline: first seen {first}, last seen {last}, {status}</title>"#,
            w = TIMELINE_WIDTH,
            first = esc(&time_text(&first)),
            last = esc(&time_text(&last)),
            status = key.status.as_str(),
        );
        let _ = write!(
            svg,
            r##"<line x1="{m}" y1="30" x2="{e}" y2="30" stroke="#ccc" stroke-width="1"/><line x1="{xn:.1}" y1="14" x2="{xn:.1}" y2="46" stroke="#888" stroke-dasharray="3 2"/><text x="{xn:.1}" y="10" font-size="9" text-anchor="middle" fill="#666">report</text>"##,
            m = TIMELINE_MARGIN,
            e = TIMELINE_WIDTH - TIMELINE_MARGIN,
        );
        let _ = write!(
            svg,
            r#"<rect class="exposure" x="{x0:.1}" y="25" width="{w:.1}" height="10" rx="3" fill="{color}" opacity="0.75"/>"#,
            w = (x1 - x0).max(3.0),
        );
        for t in key.locations.iter().filter_map(|l| l.time) {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="30" r="3" fill="#fff" stroke="#333"/>"##,
                self.x(t)
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{x0:.1}" y="56" font-size="10" text-anchor="middle" fill="#333">first seen {}</text>"##,
            esc(&first.format("%Y-%m-%d").to_string())
        );
        if key.status == Status::Rotated {
            // When the slot changed, if the history says; else just after the last sighting.
            let (xr, label) = match key.successor.as_ref().and_then(|r| r.commit_time) {
                Some(t) => (self.x(t), format!("rotated {}", t.format("%Y-%m-%d"))),
                None => (xl, "rotated after".to_string()),
            };
            let _ = write!(
                svg,
                r##"<path class="rotated" d="M{xr:.1},18 l5,-8 h-10 z" fill="{color}"/><text x="{xr:.1}" y="8" font-size="10" text-anchor="middle" fill="#333">{label}</text>"##,
            );
        }
        if last != first || key.status != Status::Live {
            let _ = write!(
                svg,
                r##"<text x="{xl:.1}" y="{y}" font-size="10" text-anchor="middle" fill="#333">last seen {}</text>"##,
                esc(&last.format("%Y-%m-%d").to_string()),
                y = if (xl - x0).abs() < 90.0 { 20 } else { 56 },
            );
        }
        svg.push_str("</svg></figure>\n");
        svg
    }
}

fn rotation(key: &KeyView) -> String {
    match (key.status, &key.successor) {
        (Status::Live, _) => "not rotated: still in a current location".to_string(),
        (Status::Rotated, Some(next)) => {
            let by = match next.by {
                Replacement::Key(fp) => format!("another key (<code>{}</code>)", esc(fp)),
                Replacement::Reference(class) => format!("a reference ({})", class.as_str()),
                Replacement::OtherValue => "another value".to_string(),
            };
            let when = match (next.commit, next.commit_time) {
                (Some(commit), Some(t)) => format!(
                    " in commit <code>{}</code>, {}",
                    esc(short_commit(commit)),
                    esc(&time_text(&t))
                ),
                (Some(commit), None) => format!(" in commit <code>{}</code>", esc(commit)),
                _ => String::new(),
            };
            format!(
                "rotated: <code>{}</code> in <code>{}</code> holds {by}{when}",
                esc(next.slot),
                esc(&next.path.display().to_string())
            )
        }
        (Status::Rotated, None) => "rotated: its slot holds another value now".to_string(),
        (Status::Removed, _) => "removed: no current location, no successor".to_string(),
    }
}

/// A horizontal bar chart: one bar per category, with its count.
pub(crate) fn bar_chart(id: &str, title: &str, items: &[(String, usize, &str)]) -> String {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let row = 22.0;
    let height = 30.0 + row * items.len() as f64;
    let mut svg = format!(
        r#"<figure class="chart" id="{id}"><figcaption>{title}</figcaption><svg role="img" viewBox="0 0 300 {height}" width="300" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>"#,
        title = esc(title)
    );
    for (i, (label, count, color)) in items.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let width = 170.0 * (*count as f64) / max;
        let _ = write!(
            svg,
            r##"<text x="90" y="{ty:.1}" font-size="12" text-anchor="end" fill="#333">{label}</text><rect x="96" y="{y:.1}" width="{w:.1}" height="16" fill="{color}" data-count="{count}"/><text x="{tx:.1}" y="{ty:.1}" font-size="12" fill="#333">{count}</text>"##,
            ty = y + 12.5,
            w = width.max(if *count > 0 { 2.0 } else { 0.0 }),
            tx = 100.0 + width,
            label = esc(label),
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

fn select<'a>(name: &str, label: &str, options: impl Iterator<Item = &'a str>) -> String {
    let mut html = format!(
        "<label>{label} <select id=\"filter-{name}\" name=\"{name}\"><option value=\"\">all</option>"
    );
    for option in options {
        let _ = write!(html, "<option value=\"{option}\">{option}</option>");
    }
    html.push_str("</select></label>\n");
    html
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| esc(&time_text(&t)))
        .unwrap_or_else(|| "unknown".to_string())
}

fn codes(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("<code>{}</code>", esc(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_color(status: Status) -> &'static str {
    match status {
        Status::Live => "#c62828",
        Status::Rotated => "#b7791f",
        Status::Removed => "#607d8b",
    }
}

pub(crate) fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "#6a1b9a",
        Severity::High => "#c62828",
        Severity::Medium => "#e65100",
        Severity::Low => "#1565c0",
    }
}

fn environment_color(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "#c62828",
        Environment::Staging => "#e65100",
        Environment::Development => "#2e7d32",
        Environment::Test => "#1565c0",
        Environment::Unknown => "#757575",
    }
}

/// Escape text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const CSS: &str = r#"
:root { color-scheme: light; --line: #ddd; --muted: #666; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.meta { color: var(--muted); margin: 2px 0; }
.verdict { font-weight: 600; padding: 6px 10px; border-radius: 4px; display: inline-block; }
.verdict.fail { background: #fdecea; color: #8e1b1b; }
.verdict.pass { background: #e8f5e9; color: #1b5e20; }
#summary { display: flex; flex-wrap: wrap; gap: 16px; margin: 16px 0; }
figure { margin: 0; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.chart figcaption { font-weight: 600; margin-bottom: 4px; }
#filters { position: sticky; top: 0; z-index: 1; background: #f6f7f9; padding: 10px 0; display: flex; flex-wrap: wrap; gap: 12px; align-items: center; border-bottom: 1px solid var(--line); }
#filters input { width: 240px; }
#filter-count { color: var(--muted); }
article.key { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin: 14px 0; }
article.key[hidden], .empty[hidden] { display: none; }
.n { color: var(--muted); }
.badge { display: inline-block; color: #fff; border-radius: 3px; padding: 0 6px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .02em; }
.alarm { background: #b71c1c; color: #fff; padding: 4px 8px; border-radius: 3px; }
.verification { font-style: italic; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid #eee; }
table.facts th { width: 140px; color: var(--muted); font-weight: 500; }
code { font: 12px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f1f3f5; padding: 1px 4px; border-radius: 3px; word-break: break-all; }
.violation { display: inline-block; background: #fff4e5; color: #8a4b00; border: 1px solid #f3c98b; border-radius: 3px; padding: 0 5px; margin: 1px 2px 1px 0; font-size: 12px; }
.alert { color: #b71c1c; font-weight: 600; }
tr.alert-row td { background: #fdecea; }
.timeline { margin: 10px 0 4px; overflow-x: auto; }
.timeline.none { color: var(--muted); }
details summary { cursor: pointer; font-weight: 600; margin: 8px 0 4px; }
ol.remediation li { margin: 3px 0; }
td.pass { color: #1b5e20; }
td.fail { color: #b71c1c; }
td small { color: var(--muted); }
.class-literal { color: #b71c1c; font-weight: 600; }
section#servers, section#targets { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin: 14px 0; overflow-x: auto; }
footer { color: var(--muted); padding-bottom: 20px; }
"#;

/// Sets the filters named in the URL fragment (`#status=live&q=github`): `fields` maps a
/// name to its form control. Shared by the report's page and the inventory's.
pub(crate) const FRAGMENT_SCRIPT: &str = r#"
function detectorFromFragment(fields) {
  "use strict";
  var fragment = window.location.hash.replace(/^#/, "");
  if (!fragment) { return; }
  fragment.split("&").forEach(function (pair) {
    var parts = pair.split("=");
    var name = decodeURIComponent(parts[0] || "");
    if (Object.prototype.hasOwnProperty.call(fields, name)) {
      fields[name].value = decodeURIComponent((parts[1] || "").replace(/\+/g, " "));
    }
  });
}
"#;

const SCRIPT: &str = r#"
(function () {
  "use strict";
  var keys = Array.prototype.slice.call(document.querySelectorAll("article.key"));
  var status = document.getElementById("filter-status");
  var severity = document.getElementById("filter-severity");
  var environment = document.getElementById("filter-environment");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var none = document.getElementById("no-match");

  function fromFragment() {
    detectorFromFragment({ status: status, severity: severity, environment: environment, q: text });
  }

  function apply() {
    var wanted = text.value.trim().toLowerCase();
    var shown = 0;
    keys.forEach(function (key) {
      var envs = (key.getAttribute("data-environments") || "").split(" ");
      var match = (!status.value || key.getAttribute("data-status") === status.value) &&
        (!severity.value || key.getAttribute("data-severity") === severity.value) &&
        (!environment.value || envs.indexOf(environment.value) >= 0) &&
        (!wanted || (key.getAttribute("data-text") || "").indexOf(wanted) >= 0);
      key.hidden = !match;
      if (match) { shown += 1; }
    });
    count.textContent = shown + " of " + keys.length + " keys shown";
    none.hidden = shown > 0 || keys.length === 0;
    return shown;
  }

  document.getElementById("filters").addEventListener("submit", function (event) { event.preventDefault(); });
  [status, severity, environment].forEach(function (el) { el.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  window.addEventListener("hashchange", function () { fromFragment(); apply(); });
  fromFragment();
  var shown = apply();
  document.getElementById("render-status").textContent = "Rendered " + keys.length + " keys, " + shown + " shown.";
  document.body.setAttribute("data-rendered", "ok");
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
