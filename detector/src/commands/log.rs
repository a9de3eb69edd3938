//! `detector log verify FILE…`: the agent's hash chain, checked.
use std::{
    io::{self, Write},
    process::ExitCode,
};

use super::{EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS};
use crate::{agent::chain, cli::LogCommand, report::escape::visible};

pub fn run(command: &LogCommand) -> anyhow::Result<ExitCode> {
    match command {
        LogCommand::Verify { files } => verify(files),
    }
}

/// One line per problem, `FILE:LINE: seq N: what`, then notes and a summary line.
fn verify(files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let verification = match chain::verify(files) {
        Ok(verification) => verification,
        Err(err) => {
            eprintln!("detector: {}", visible(&err.to_string()));
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let mut out = String::new();
    for problem in &verification.problems {
        // A tampered log is attacker-made: what it held is shown, never obeyed.
        out.push_str(&visible(&verification.describe(problem)));
        out.push('\n');
    }
    if verification.reordered_files {
        let order: Vec<String> = verification
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        out.push_str(&format!(
            "note: files taken in seq order: {}\n",
            order.join(" ")
        ));
    }
    if let Some((seq, at)) = verification.first.filter(|(seq, _)| *seq > 1) {
        out.push_str(&format!(
            "note: the chain starts at seq {seq} ({}): the records before it are not in these files (rotated away?)\n",
            verification.place(at)
        ));
    }
    if let Some((seq, at, _)) = verification.last.filter(|(_, _, last)| !last) {
        out.push_str(&format!(
            "note: the log ends at seq {seq} ({}) without a final heartbeat: the agent is running, was killed, or records were cut from the end\n",
            verification.place(at)
        ));
    }
    let span = match (verification.first, verification.last) {
        (Some((first, _)), Some((last, _, _))) => format!(", seq {first}..{last}"),
        _ => String::new(),
    };
    let files_word = if verification.files.len() == 1 {
        "file"
    } else {
        "files"
    };
    let outcome = match verification.problems.len() {
        0 => "intact".to_string(),
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    out.push_str(&format!(
        "{} records in {} {files_word}{span}: {outcome}\n",
        verification.records,
        verification.files.len(),
    ));
    match io::stdout().lock().write_all(out.as_bytes()) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {}
        Err(err) => return Err(err.into()),
    }
    Ok(ExitCode::from(if verification.intact() {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    }))
}
