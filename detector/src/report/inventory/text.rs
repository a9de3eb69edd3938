//! The inventory on a terminal: one line of totals, "what changed", then one line per key.
use std::io::{self, Write};

use super::{change_lists, period, reader, when};
use crate::{report::escape::visible, store::inventory::Inventory};

pub fn write(inventory: &Inventory, out: &mut dyn Write) -> io::Result<()> {
    let s = &inventory.summary;
    write!(
        out,
        "{}: {} · {} open, {} fixed",
        visible(&inventory.store),
        visible(&period(inventory)),
        s.open,
        s.fixed
    )?;
    if let (Some(mean), Some(median)) = (s.mean_time_to_fix_days, s.median_time_to_fix_days) {
        write!(
            out,
            " · time to fix: mean {mean:.1} days, median {median:.1} days"
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "what changed since {}: {} new, {} fixed, {} reappeared, {} still open",
        inventory.changes.since.format("%Y-%m-%d %H:%M UTC"),
        inventory.changes.new.len(),
        inventory.changes.fixed.len(),
        inventory.changes.reappeared.len(),
        inventory.changes.still_open.len()
    )?;
    for (_, heading, keys) in change_lists(inventory) {
        for key in keys.iter().take(20) {
            writeln!(
                out,
                "  {:<22} {} {} {} ({})",
                heading.to_lowercase(),
                visible(&key.redacted),
                visible(&key.provider),
                key.severity,
                key.at.format("%Y-%m-%d")
            )?;
        }
        if keys.len() > 20 {
            writeln!(
                out,
                "  {:<22} … and {} more",
                heading.to_lowercase(),
                keys.len() - 20
            )?;
        }
    }
    writeln!(out, "keys:")?;
    for key in &inventory.keys {
        writeln!(
            out,
            "  {:<8} {} {} · {} · {}",
            key.severity,
            visible(&key.redacted),
            visible(&key.provider),
            when(key),
            visible(&key.hosts.join(", "))
        )?;
        for read in &key.read_by {
            writeln!(out, "           read by {}", visible(&reader(read)))?;
        }
    }
    if inventory.agent_events > 0 || !inventory.chain_breaks.is_empty() {
        writeln!(
            out,
            "{} agent records · {} chain breaks",
            inventory.agent_events,
            inventory.chain_breaks.len()
        )?;
    }
    for found in &inventory.chain_breaks {
        writeln!(
            out,
            "  chain break on {}: {}",
            visible(&found.host),
            visible(&found.what)
        )?;
    }
    Ok(())
}
