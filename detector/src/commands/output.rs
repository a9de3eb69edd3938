//! Where a report goes and in which format, for every command that writes one.
use std::{
    fs::File,
    io::{self, BufWriter, IsTerminal, Write},
};

use anyhow::Context;

use crate::{
    cli::{Format, OutputArgs},
    report::{self, Report},
};

/// Write `report` as `--format` says (default: text on a terminal, JSON anywhere else) to
/// `--output` or standard output. Colour only on a terminal that supports it.
pub fn write_report(report: &Report, out: &OutputArgs) -> anyhow::Result<()> {
    let to_terminal = out.output.is_none() && io::stdout().is_terminal();
    let format = out.format.unwrap_or(if to_terminal {
        Format::Text
    } else {
        Format::Json
    });
    let format = |color: bool| match format {
        Format::Text => report::Format::Text(report::text::TextOptions {
            color,
            coverage: out.coverage,
        }),
        Format::Json => report::Format::Json,
        Format::Sarif => report::Format::Sarif,
        Format::Markdown => report::Format::Markdown,
        Format::Html => report::Format::Html,
    };
    match &out.output {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("cannot create report file {}", path.display()))?;
            let mut writer = BufWriter::new(file);
            report::render(report, format(false), &mut writer)
                .and_then(|()| writer.flush())
                .with_context(|| format!("cannot write report file {}", path.display()))?;
        }
        None => {
            let color = report::text::stdout_supports_color();
            let stdout = io::stdout();
            let mut writer = BufWriter::new(stdout.lock());
            match report::render(report, format(color), &mut writer).and_then(|()| writer.flush()) {
                Ok(()) => {}
                // `detector scan … | head`: the reader left, nothing is wrong.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e).context("cannot write the report to standard output"),
            }
        }
    }
    Ok(())
}
