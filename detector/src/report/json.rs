//! The JSON report of DESIGN.md (`"schema": "detector/report/v1"`), pretty-printed.
use std::io::{self, Write};

use super::Report;

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}
