//! The inventory as one self-contained page, like a report's (inline CSS, SVG and script,
//! nothing fetched: a Content-Security-Policy forbids it): open keys over time by severity,
//! time to fix, what changed in the period, and the keys, filterable by state and text (also
//! from the URL fragment: `inventory.html#state=open&q=github`).
//!
//! Every chart carries its numbers as data attributes. When its script has run, the page
//! marks `<body data-rendered="ok">` and says what it drew, read back from the charts; a
//! script error marks `data-script-error` instead.
use std::{
    fmt::Write as _,
    io::{self, Write},
};

use chrono::NaiveDate;

use super::{change_lists, period, reader, severity, when, SEVERITIES};
use crate::{
    report::html::{bar_chart, esc, severity_color, CSS, FRAGMENT_SCRIPT},
    store::inventory::{Inventory, KeyRecord, TrendPoint},
};

pub fn write(inventory: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(render(inventory).as_bytes())
}

pub fn render(inventory: &Inventory) -> String {
    let mut html = String::with_capacity(32 * 1024 + inventory.keys.len() * 600);
    header(&mut html, inventory);
    html.push_str("<main>\n<section id=\"summary\">\n");
    let ages = &inventory.summary.open_by_age;
    html.push_str(&bar_chart(
        "chart-open-age",
        "Open keys by age",
        &age_bars([ages.week, ages.month, ages.quarter, ages.older]),
    ));
    let fixes = &inventory.time_to_fix.buckets;
    html.push_str(&bar_chart(
        "chart-fix-time",
        "Fixed keys by time to fix",
        &age_bars([fixes.week, fixes.month, fixes.quarter, fixes.older]),
    ));
    html.push_str("</section>\n<section id=\"trends\" class=\"panel\">\n");
    trend_chart(&mut html, &inventory.trend);
    fix_month_chart(&mut html, inventory);
    html.push_str("</section>\n");
    changes_section(&mut html, inventory);
    agent_section(&mut html, inventory);
    keys_section(&mut html, &inventory.keys);
    html.push_str("</main>\n<footer><p id=\"render-status\" role=\"status\"></p></footer>\n");
    let _ = write!(
        html,
        "<script>{FRAGMENT_SCRIPT}{SCRIPT}</script>\n</body>\n</html>\n"
    );
    html
}

fn age_bars(counts: [usize; 4]) -> Vec<(String, usize, &'static str)> {
    let labels = ["0–7 days", "8–30 days", "31–90 days", "91+ days"];
    let colors = ["#2e7d32", "#e65100", "#c62828", "#6a1b9a"];
    labels
        .iter()
        .zip(counts)
        .zip(colors)
        .map(|((label, count), color)| (label.to_string(), count, color))
        .collect()
}

fn header(html: &mut String, inventory: &Inventory) {
    let s = &inventory.summary;
    let date = inventory.generated_at.format("%Y-%m-%d %H:%M UTC");
    let fix = match (s.mean_time_to_fix_days, s.median_time_to_fix_days) {
        (Some(mean), Some(median)) => {
            format!(" · time to fix: mean {mean:.1} days, median {median:.1} days")
        }
        _ => String::new(),
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
<title>detector inventory — {date}</title>
<script>window.addEventListener("error", function (e) {{ document.documentElement.setAttribute("data-script-error", String(e.message)); }});</script>
<style>{CSS}{EXTRA_CSS}</style>
</head>
<body data-rendered="no">
<header>
<h1>detector inventory</h1>
<p class="meta">{store} · {period} · generated {date} by {tool} {version}</p>
<p class="verdict {verdict}" id="totals" data-open="{open}" data-fixed="{fixed}">{open} open, {fixed} fixed{fix}</p>
</header>
"#,
        tool = env!("CARGO_PKG_NAME"),
        version = env!("CARGO_PKG_VERSION"),
        store = esc(&inventory.store),
        period = esc(&period(inventory)),
        verdict = if s.open > 0 { "fail" } else { "pass" },
        open = s.open,
        fixed = s.fixed,
    );
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 42.0;

/// Stacked columns of open keys by severity, one per day with runs, on a time axis.
fn trend_chart(html: &mut String, trend: &[TrendPoint]) {
    let title = "Open keys over time, by severity";
    let _ = write!(
        html,
        r#"<figure class="chart wide" id="chart-trend" data-days="{days}"><figcaption>{title}</figcaption>"#,
        days = trend.len()
    );
    let dates: Vec<Option<NaiveDate>> = trend
        .iter()
        .map(|p| NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").ok())
        .collect();
    let (Some(Some(first)), Some(Some(last))) = (dates.first(), dates.last()) else {
        html.push_str("<p class=\"empty\">No runs in the period.</p></figure>\n");
        return;
    };
    let span = (*last - *first).num_days().max(1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = trend.iter().map(|p| p.open).max().unwrap_or(0).max(1) as f64;
    let bar = (plot_w / (span + 1.0) * 0.8).clamp(2.0, 24.0);
    let x_of = |date: Option<NaiveDate>| match date {
        _ if trend.len() == 1 => LEFT + plot_w / 2.0,
        Some(d) => LEFT + bar / 2.0 + (d - *first).num_days() as f64 / span * (plot_w - bar),
        None => LEFT,
    };
    let _ = write!(
        html,
        r##"<svg role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title><line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/><text x="{lx}" y="{top_label}" font-size="11" text-anchor="end" fill="#555">{max}</text><text x="{lx}" y="{base}" font-size="11" text-anchor="end" fill="#555">0</text>"##,
        base = TOP + plot_h,
        right = WIDTH - RIGHT,
        lx = LEFT - 6.0,
        top_label = TOP + 10.0,
        max = max as usize,
    );
    let xs: Vec<f64> = dates.iter().map(|d| x_of(*d)).collect();
    let labelled = spaced_labels(&xs, 80.0);
    for (i, (point, x)) in trend.iter().zip(&xs).enumerate() {
        let x = *x;
        let _ = write!(
            html,
            r#"<g class="day" data-date="{date}" data-open="{open}" data-critical="{c}" data-high="{h}" data-medium="{m}" data-low="{l}"><title>{date}: {open} open</title>"#,
            date = esc(&point.date),
            open = point.open,
            c = point.critical,
            h = point.high,
            m = point.medium,
            l = point.low,
        );
        let mut y = TOP + plot_h;
        for s in SEVERITIES {
            let count = point.of(s.as_str());
            if count == 0 {
                continue;
            }
            let h = count as f64 / max * plot_h;
            y -= h;
            let _ = write!(
                html,
                r#"<rect x="{rx:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}" data-severity="{name}" data-count="{count}"/>"#,
                rx = x - bar / 2.0,
                color = severity_color(s),
                name = s.as_str(),
            );
        }
        if labelled.contains(&i) {
            // The first and last dates stay inside the chart.
            let anchor = match i {
                0 if trend.len() > 1 => "start",
                _ if i + 1 == trend.len() && i > 0 => "end",
                _ => "middle",
            };
            let lx = match anchor {
                "start" => x - bar / 2.0,
                "end" => x + bar / 2.0,
                _ => x,
            };
            let _ = write!(
                html,
                r##"<text x="{lx:.1}" y="{ty}" font-size="11" text-anchor="{anchor}" fill="#555">{date}</text>"##,
                ty = TOP + plot_h + 16.0,
                date = esc(&point.date),
            );
        }
        html.push_str("</g>");
    }
    // The legend.
    for (i, s) in SEVERITIES.into_iter().enumerate() {
        let x = LEFT + i as f64 * 90.0;
        let _ = write!(
            html,
            r##"<rect x="{x}" y="{y}" width="10" height="10" fill="{color}"/><text x="{tx}" y="{ty}" font-size="11" fill="#333">{name}</text>"##,
            y = HEIGHT - 14.0,
            color = severity_color(s),
            tx = x + 14.0,
            ty = HEIGHT - 5.0,
            name = s.as_str(),
        );
    }
    html.push_str("</svg></figure>\n");
}

/// Which of the points at `xs` (ascending) get a date under them: the last, and from the first
/// on every one at least `gap` from the one before it and from the last.
fn spaced_labels(xs: &[f64], gap: f64) -> Vec<usize> {
    let Some(&last) = xs.last() else {
        return Vec::new();
    };
    let mut out: Vec<usize> = Vec::new();
    let mut previous = f64::NEG_INFINITY;
    for (i, x) in xs.iter().enumerate().take(xs.len() - 1) {
        if x - previous >= gap && last - x >= gap {
            out.push(i);
            previous = *x;
        }
    }
    out.push(xs.len() - 1);
    out
}

/// Which of `n` points get a date under them: the first, the last and some between.
fn label_indexes(n: usize, most: usize) -> Vec<usize> {
    if n <= most {
        return (0..n).collect();
    }
    let step = (n - 1) as f64 / (most - 1) as f64;
    (0..most)
        .map(|i| (i as f64 * step).round() as usize)
        .collect()
}

/// Columns of the median days to fix, per month of the fix.
fn fix_month_chart(html: &mut String, inventory: &Inventory) {
    let months = &inventory.time_to_fix.by_month;
    let title = "Time to fix, by month fixed (median days)";
    let _ = write!(
        html,
        r#"<figure class="chart wide" id="chart-fix-months" data-months="{n}"><figcaption>{title}</figcaption>"#,
        n = months.len()
    );
    if months.is_empty() {
        html.push_str("<p class=\"empty\">No key was fixed in the period.</p></figure>\n");
        return;
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = months.iter().map(|m| m.median_days).fold(1.0_f64, f64::max);
    let slot = plot_w / months.len() as f64;
    let bar = (slot * 0.6).clamp(4.0, 48.0);
    let _ = write!(
        html,
        r##"<svg role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title><line x1="{LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/>"##,
        base = TOP + plot_h,
        right = WIDTH - RIGHT,
    );
    let labelled = label_indexes(months.len(), 12);
    for (i, month) in months.iter().enumerate() {
        let x = LEFT + slot * (i as f64 + 0.5);
        let h = month.median_days / max * plot_h;
        let _ = write!(
            html,
            r##"<g class="month" data-month="{m}" data-fixed="{fixed}" data-median="{median}" data-mean="{mean:.1}"><title>{m}: {fixed} fixed, median {median} days, mean {mean:.1} days</title><rect x="{rx:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="#1565c0"/><text x="{x:.1}" y="{vy:.1}" font-size="11" text-anchor="middle" fill="#333">{median}</text>"##,
            m = esc(&month.month),
            fixed = month.fixed,
            median = month.median_days,
            mean = month.mean_days,
            rx = x - bar / 2.0,
            y = TOP + plot_h - h,
            vy = TOP + plot_h - h - 3.0,
        );
        if labelled.contains(&i) {
            let _ = write!(
                html,
                r##"<text x="{x:.1}" y="{ty}" font-size="11" text-anchor="middle" fill="#555">{m}</text>"##,
                ty = TOP + plot_h + 16.0,
                m = esc(&month.month),
            );
        }
        html.push_str("</g>");
    }
    html.push_str("</svg></figure>\n");
}

fn changes_section(html: &mut String, inventory: &Inventory) {
    let _ = write!(
        html,
        "<section id=\"changes\" class=\"panel\">\n<h2>What changed since {}</h2>\n",
        inventory.changes.since.format("%Y-%m-%d %H:%M UTC")
    );
    for (id, heading, keys) in change_lists(inventory) {
        let _ = writeln!(
            html,
            "<h3 id=\"changes-{id}\" data-count=\"{n}\">{heading}: {n}</h3>",
            n = keys.len()
        );
        if keys.is_empty() {
            continue;
        }
        html.push_str("<table><thead><tr><th>Severity</th><th>Key</th><th>Provider</th><th>When</th></tr></thead><tbody>\n");
        for key in keys {
            let _ = writeln!(
                html,
                "<tr data-fingerprint=\"{fp}\"><td><span class=\"badge\" style=\"background:{color}\">{sev}</span></td><td><code>{key}</code></td><td>{provider}</td><td>{at}</td></tr>",
                fp = esc(&key.fingerprint),
                color = severity_color(severity(&key.severity)),
                sev = esc(&key.severity),
                key = esc(&key.redacted),
                provider = esc(&key.provider),
                at = key.at.format("%Y-%m-%d"),
            );
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str("</section>\n");
}

/// The agents' records in the store, and every break of their logs' hash chains.
fn agent_section(html: &mut String, inventory: &Inventory) {
    if inventory.agent_events == 0 && inventory.chain_breaks.is_empty() {
        return;
    }
    let _ = writeln!(
        html,
        "<section id=\"agent\" class=\"panel\">\n<h2>Agent logs</h2>\n<p data-events=\"{events}\" data-breaks=\"{breaks}\">{events} agent records · {breaks} chain breaks</p>",
        events = inventory.agent_events,
        breaks = inventory.chain_breaks.len()
    );
    if !inventory.chain_breaks.is_empty() {
        html.push_str("<table><thead><tr><th>Host</th><th>Break</th></tr></thead><tbody>\n");
        for found in &inventory.chain_breaks {
            let _ = writeln!(
                html,
                "<tr class=\"alert-row\"><td>{}</td><td><code>{}</code></td></tr>",
                esc(&found.host),
                esc(&found.what)
            );
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str("</section>\n");
}

fn keys_section(html: &mut String, keys: &[KeyRecord]) {
    html.push_str(
        r#"<section id="keys" class="panel">
<h2>Keys</h2>
<form id="filters" role="search">
<label>State <select id="filter-state" name="state"><option value="">all</option><option value="open">open</option><option value="fixed-still-in-history">fixed, still in history</option><option value="fixed">fixed</option><option value="revoked">revoked</option></select></label>
<label>Search <input id="filter-text" type="search" placeholder="provider, key, host, project, path"></label>
<span id="filter-count"></span>
</form>
<table id="key-table"><thead><tr><th>Severity</th><th>Key</th><th>Provider</th><th>State</th><th>First detected</th><th>Hosts</th><th>Projects</th><th>Where now</th><th>Read by</th></tr></thead><tbody>
"#,
    );
    for key in keys {
        let places: Vec<String> = key
            .now
            .iter()
            .map(|l| {
                let host = l
                    .host
                    .as_deref()
                    .map(|h| format!("{h}: "))
                    .unwrap_or_default();
                format!("{host}{}", l.path().display())
            })
            .collect();
        let search = [
            key.provider.as_str(),
            &key.redacted,
            &key.rule,
            &key.hosts.join(" "),
            &key.projects.join(" "),
            &places.join(" "),
        ]
        .join(" ")
        .to_lowercase();
        let shown: Vec<String> = places
            .iter()
            .take(5)
            .map(|p| format!("<code>{}</code>", esc(p)))
            .collect();
        let more = places.len().saturating_sub(5);
        let _ = writeln!(
            html,
            "<tr class=\"key\" data-fingerprint=\"{fp}\" data-state=\"{state}\" data-severity=\"{sev}\" data-text=\"{search}\"><td><span class=\"badge\" style=\"background:{color}\">{sev}</span></td><td><code>{redacted}</code></td><td>{provider}</td><td>{when}</td><td>{first}</td><td>{hosts}</td><td>{projects}</td><td>{shown}{more}</td><td class=\"read-by\" data-reads=\"{reads}\">{readers}</td></tr>",
            fp = esc(&key.fingerprint),
            state = key.state,
            sev = esc(&key.severity),
            search = esc(&search),
            color = severity_color(severity(&key.severity)),
            redacted = esc(&key.redacted),
            provider = esc(&key.provider),
            when = esc(&when(key)),
            first = key
                .first_detected
                .map_or("–".to_string(), |t| t.format("%Y-%m-%d").to_string()),
            hosts = esc(&key.hosts.join(", ")),
            projects = esc(&key.projects.join(", ")),
            shown = shown.join("<br>"),
            more = if more > 0 { format!("<br><small>and {more} more</small>") } else { String::new() },
            reads = key.read_by.iter().map(|r| r.reads).sum::<u64>(),
            readers = if key.read_by.is_empty() {
                "–".to_string()
            } else {
                key.read_by
                    .iter()
                    .map(|r| {
                        let class = if r.verdict.as_deref() == Some("alert") { " class=\"alert\"" } else { "" };
                        format!("<span{class}>{}</span>", esc(&reader(r)))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            },
        );
    }
    html.push_str("</tbody></table>\n<p id=\"no-match\" class=\"empty\" hidden>No key matches the filters.</p>\n</section>\n");
}

const EXTRA_CSS: &str = r#"
td.read-by .alert { color: #b3261e; font-weight: 600; }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin: 14px 0; overflow-x: auto; }
#trends { display: flex; flex-wrap: wrap; gap: 16px; }
.chart.wide svg { max-width: 100%; height: auto; }
tr.key[hidden] { display: none; }
"#;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.key"));
  var state = document.getElementById("filter-state");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var none = document.getElementById("no-match");

  function fromFragment() {
    detectorFromFragment({ state: state, q: text });
  }

  function apply() {
    var wanted = text.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var match = (!state.value || row.getAttribute("data-state") === state.value) &&
        (!wanted || (row.getAttribute("data-text") || "").indexOf(wanted) >= 0);
      row.hidden = !match;
      if (match) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " keys shown";
    none.hidden = shown > 0 || rows.length === 0;
    return shown;
  }

  // What the charts hold, read back from them: the last day of the trend, and the fixes.
  function charts() {
    var days = document.querySelectorAll("#chart-trend g.day");
    var last = days.length ? days[days.length - 1] : null;
    var months = document.querySelectorAll("#chart-fix-months g.month");
    var fixed = 0;
    Array.prototype.forEach.call(months, function (m) { fixed += Number(m.getAttribute("data-fixed")); });
    var open = last ? last.getAttribute("data-open") : "0";
    var stacked = 0;
    if (last) {
      Array.prototype.forEach.call(last.querySelectorAll("rect"), function (r) { stacked += Number(r.getAttribute("data-count")); });
    }
    return "trend of " + days.length + " days, " + open + " open on the last (" + stacked + " drawn); " +
      fixed + " fixes over " + months.length + " months";
  }

  document.getElementById("filters").addEventListener("submit", function (event) { event.preventDefault(); });
  state.addEventListener("change", apply);
  text.addEventListener("input", apply);
  window.addEventListener("hashchange", function () { fromFragment(); apply(); });
  fromFragment();
  var shown = apply();
  document.getElementById("render-status").textContent =
    "Rendered " + rows.length + " keys, " + shown + " shown; " + charts() + ".";
  document.body.setAttribute("data-rendered", "ok");
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_under_the_trend_never_overlap_and_the_last_is_always_there() {
        assert_eq!(spaced_labels(&[], 80.0), Vec::<usize>::new());
        assert_eq!(spaced_labels(&[50.0], 80.0), vec![0]);
        // Two close points, a far one, a point close to the last.
        assert_eq!(
            spaced_labels(&[50.0, 60.0, 300.0, 650.0, 700.0], 80.0),
            vec![0, 2, 4]
        );
        assert_eq!(label_indexes(3, 6), vec![0, 1, 2]);
        assert_eq!(label_indexes(11, 6), vec![0, 2, 4, 6, 8, 10]);
    }
}
