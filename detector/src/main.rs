use std::process::ExitCode;

use clap::Parser;
use detector::cli::{Cli, Command};

fn main() -> ExitCode {
    detector::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => detector::commands::scan::run(&args),
        Command::Audit(args) => detector::commands::audit::run(&args),
        Command::Report { command } => detector::commands::report::run(&command),
        Command::Agent(args) => detector::commands::agent::run(&args),
        Command::Rules { command } => detector::commands::rules::run(&command),
        Command::Log { command } => detector::commands::log::run(&command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("detector: {err:#}");
            detector::commands::EXIT_ERROR.into()
        }
    }
}
