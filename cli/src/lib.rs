//! The `lightchain` command line: one module per command under [`cmd`], each an `XArgs` struct
//! with a `run` method that returns data; [`shell::Shell`] decides whether that data is shown as
//! text or as JSON, and prints errors. Library crates never print; this crate is the only one
//! that talks to the terminal.

pub mod cmd;
pub mod shell;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::shell::{GlobalArgs, Shell};

const ABOUT: &str = "lightchain: package, prove and run AI models on the AI Virtual Machine (AIVM)";

#[derive(Debug, Parser)]
#[command(name = "lightchain", version, about = ABOUT, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Inspect(cmd::inspect::InspectArgs),
    Run(cmd::run::RunArgs),
}

/// Exit status of a failed command (usage errors exit with 2, from clap).
pub const EXIT_FAILURE: u8 = 1;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let shell = Shell::new(&cli.global);
    let result = match cli.command {
        Command::Inspect(a) => a.run(&shell),
        Command::Run(a) => a.run(&shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            shell.error(&e);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
