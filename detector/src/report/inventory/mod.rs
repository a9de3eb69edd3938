//! The inventory (`detector report --store`) in every format: JSON (`detector/inventory/v1`),
//! text, Markdown, SARIF, and one HTML page with trend charts. Like a report's writers, text
//! and Markdown show strings from scanned input with their control characters made visible;
//! HTML and SARIF escape in their own syntax. The inventory holds no secret.
use std::io::{self, Write};

use super::plural;
use crate::{
    cli::Format,
    detect::Severity,
    store::{
        inventory::{ChangedKey, Inventory, KeyRecord},
        ReadBy,
    },
};

pub mod html;
pub mod markdown;
pub mod sarif;
pub mod text;

pub fn render(inventory: &Inventory, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, inventory).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Text => text::write(inventory, out),
        Format::Markdown => markdown::write(inventory, out),
        Format::Sarif => sarif::write(inventory, out),
        Format::Html => html::write(inventory, out),
    }
}

/// The severities, worst first, as the inventory names them.
pub const SEVERITIES: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];

/// A stored severity (anything unknown reads as low).
pub fn severity(text: &str) -> Severity {
    SEVERITIES
        .into_iter()
        .find(|s| s.as_str() == text)
        .unwrap_or(Severity::Low)
}

/// How long a key has been open or took to fix, in words.
pub fn when(key: &KeyRecord) -> String {
    let days = |n: i64| format!("{n} day{}", if n == 1 { "" } else { "s" });
    let mut when = match (key.state, key.age_days, key.time_to_fix_days) {
        ("open", Some(age), _) => format!("open {}", days(age)),
        (state, _, Some(fix)) => format!("{state} after {}", days(fix)),
        (state, _, _) => state.to_string(),
    };
    if key.reopened > 0 {
        when.push_str(&format!(", reopened {}×", key.reopened));
    }
    when
}

/// Who read a key, in words: `cat (/usr/bin/cat, uid 1000) opened /h/.cursor/mcp.json on
/// box 3 times, last 2026-01-02, alert`. Raw text: each writer escapes it in its syntax.
pub fn reader(read: &ReadBy) -> String {
    let program = read.comm.as_deref().unwrap_or("a process");
    let mut who: Vec<String> = read.exe.iter().cloned().collect();
    if let Some(uid) = read.uid {
        who.push(format!("uid {uid}"));
    }
    if read.container.is_some() {
        who.push("in a container".to_string());
    }
    let mut out = program.to_string();
    if !who.is_empty() {
        out.push_str(&format!(" ({})", who.join(", ")));
    }
    out.push_str(&format!(
        " opened {} on {} {} time{}",
        read.path,
        read.host,
        read.reads,
        plural(read.reads as usize)
    ));
    if let Some(last) = read.last_read {
        out.push_str(&format!(", last {}", last.format("%Y-%m-%d")));
    }
    if let Some(verdict) = &read.verdict {
        out.push_str(&format!(", {verdict}"));
    }
    out
}

/// The four lists of "what changed", with their headings.
pub fn change_lists(inventory: &Inventory) -> [(&'static str, &'static str, &[ChangedKey]); 4] {
    let c = &inventory.changes;
    [
        ("new", "New", &c.new),
        ("fixed", "Fixed", &c.fixed),
        ("reappeared", "Reappeared", &c.reappeared),
        ("still-open", "Still open from before", &c.still_open),
    ]
}

/// The period the inventory covers, in words.
pub fn period(inventory: &Inventory) -> String {
    let mut out = format!(
        "{} key{} over {} run{} of {} host{}",
        inventory.keys.len(),
        plural(inventory.keys.len()),
        inventory.runs,
        plural(inventory.runs),
        inventory.hosts.len(),
        plural(inventory.hosts.len()),
    );
    if let Some(since) = inventory.since {
        out.push_str(&format!(" since {}", since.format("%Y-%m-%d %H:%M UTC")));
    }
    if !inventory.projects.is_empty() {
        out.push_str(&format!(", projects {}", inventory.projects.join(", ")));
    }
    out
}
