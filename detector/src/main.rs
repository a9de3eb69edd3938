use std::process::ExitCode;

use clap::{error::ErrorKind, Parser};
use detector::cli::{Cli, Command};

fn main() -> ExitCode {
    detector::logging::init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A value the command line cannot take (a target, a size): one line, exit 2.
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::ValueValidation | ErrorKind::InvalidValue
            ) =>
        {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!(
                "detector: {}",
                first.strip_prefix("error: ").unwrap_or(first)
            );
            return detector::commands::EXIT_ERROR.into();
        }
        Err(err) => err.exit(),
    };
    let result = match cli.command {
        Command::Scan(args) => detector::commands::scan::run(&args),
        Command::Audit(args) => detector::commands::audit::run(&args),
        Command::Report {
            command: Some(command),
            ..
        } => detector::commands::report::run(&command),
        Command::Report {
            command: None,
            inventory,
        } => detector::commands::store::report(&inventory),
        Command::Store { command } => detector::commands::store::run(&command),
        Command::Agent(args) => detector::commands::agent::run(&args),
        Command::Rules { command } => detector::commands::rules::run(&command),
        Command::Log { command } => detector::commands::log::run(&command),
        Command::Fix(args) => detector::commands::fix::run(&args),
        Command::Hook { command } => detector::commands::hook::run(&command),
        Command::Revoke(args) => detector::commands::revoke::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // Errors name files, and file names come from scanned input.
            let message = format!("{err:#}");
            eprintln!("detector: {}", detector::report::escape::visible(&message));
            detector::commands::EXIT_ERROR.into()
        }
    }
}
