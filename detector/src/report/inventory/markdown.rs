//! The inventory for audit binders and pull-request comments: totals, open keys over time,
//! time to fix, what changed, and a table of keys.
use std::io::{self, Write};

use super::{change_lists, period, reader, when};
use crate::{
    report::{
        escape::visible,
        markdown::{cell, code},
    },
    store::inventory::Inventory,
};

/// Text from scanned input, control characters made visible, safe in a table cell.
fn safe(text: &str) -> String {
    cell(&visible(text))
}

pub fn write(inventory: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    let s = &inventory.summary;
    writeln!(out, "# detector inventory\n")?;
    writeln!(
        out,
        "{} · {} · generated {}\n",
        code(&visible(&inventory.store)),
        safe(&period(inventory)),
        inventory.generated_at.format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(
        out,
        "| Open | Fixed | Mean time to fix | Median time to fix |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|")?;
    let days = |d: Option<f64>| d.map_or("–".to_string(), |d| format!("{d:.1} days"));
    writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        s.open,
        s.fixed,
        days(s.mean_time_to_fix_days),
        days(s.median_time_to_fix_days)
    )?;

    writeln!(
        out,
        "## What changed since {}\n",
        inventory.changes.since.format("%Y-%m-%d")
    )?;
    for (_, heading, keys) in change_lists(inventory) {
        writeln!(out, "- **{heading}**: {}", keys.len())?;
        for key in keys.iter().take(50) {
            writeln!(
                out,
                "  - {} {} {} ({})",
                code(&visible(&key.redacted)),
                safe(&key.provider),
                key.severity,
                key.at.format("%Y-%m-%d")
            )?;
        }
    }
    writeln!(out)?;

    writeln!(out, "## Open keys over time\n")?;
    if inventory.trend.is_empty() {
        writeln!(out, "No runs in the period.\n")?;
    } else {
        writeln!(out, "| Day | Open | Critical | High | Medium | Low |")?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for p in &inventory.trend {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                p.date, p.open, p.critical, p.high, p.medium, p.low
            )?;
        }
        writeln!(out)?;
    }

    writeln!(out, "## Time to fix\n")?;
    let b = &inventory.time_to_fix.buckets;
    writeln!(out, "| 0–7 days | 8–30 days | 31–90 days | 91+ days |")?;
    writeln!(out, "|---:|---:|---:|---:|")?;
    writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        b.week, b.month, b.quarter, b.older
    )?;
    if !inventory.time_to_fix.by_month.is_empty() {
        writeln!(out, "| Month fixed | Keys | Mean days | Median days |")?;
        writeln!(out, "|---|---:|---:|---:|")?;
        for m in &inventory.time_to_fix.by_month {
            writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} |",
                m.month, m.fixed, m.mean_days, m.median_days
            )?;
        }
        writeln!(out)?;
    }

    if inventory.agent_events > 0 || !inventory.chain_breaks.is_empty() {
        writeln!(
            out,
            "## Agent logs\n\n{} agent records · {} chain breaks\n",
            inventory.agent_events,
            inventory.chain_breaks.len()
        )?;
        for found in &inventory.chain_breaks {
            writeln!(out, "- {}: {}", safe(&found.host), safe(&found.what))?;
        }
        if !inventory.chain_breaks.is_empty() {
            writeln!(out)?;
        }
    }

    writeln!(out, "## Keys\n")?;
    writeln!(
        out,
        "| Severity | Key | Provider | State | First detected | Hosts | Projects | Where now | Read by |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for key in &inventory.keys {
        let places: Vec<String> = key
            .now
            .iter()
            .take(3)
            .map(|l| code(&visible(&l.path().to_string_lossy())))
            .collect();
        let more = key.now.len().saturating_sub(3);
        let readers: Vec<String> = key.read_by.iter().map(|r| safe(&reader(r))).collect();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {}{} | {} |",
            key.severity,
            code(&visible(&key.redacted)),
            safe(&key.provider),
            safe(&when(key)),
            key.first_detected
                .map_or("–".to_string(), |t| t.format("%Y-%m-%d").to_string()),
            safe(&key.hosts.join(", ")),
            safe(&key.projects.join(", ")),
            places.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            if readers.is_empty() {
                "–".to_string()
            } else {
                readers.join("<br>")
            }
        )?;
    }
    Ok(())
}
