//! Where the agent's records go.
use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    path::PathBuf,
};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::event::{rfc3339, Record};

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    seq: u64,
    #[serde(flatten)]
    record: &'a Record,
}

/// Where records go: standard output or a file (appended).
pub struct Sink {
    out: BufWriter<Box<dyn Write + Send>>,
    seq: u64,
}

impl Sink {
    pub fn open(target: &str) -> Result<Sink> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(io::stdout())
        } else {
            let path = PathBuf::from(target);
            Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("cannot open events file {}", path.display()))?,
            )
        };
        Ok(Sink {
            out: BufWriter::with_capacity(1 << 16, out),
            seq: 0,
        })
    }

    pub fn write(&mut self, time: DateTime<Utc>, record: &Record) -> Result<()> {
        self.seq += 1;
        let line = Line {
            time: rfc3339(time),
            seq: self.seq,
            record,
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().context("cannot write events")
    }
}
