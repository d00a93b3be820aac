//! The `lightchain` command line: one module per command under [`cmd`], each an `XArgs` struct
//! with a `run` method that returns data; [`shell::Shell`] decides whether that data is shown as
//! text or as JSON, and prints errors. Library crates never print; this crate is the only one
//! that talks to the terminal.

pub mod cmd;
pub mod dashboard;
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
    Init(cmd::init::InitArgs),
    Inspect(cmd::inspect::InspectArgs),
    Run(cmd::run::RunArgs),
    Prove(cmd::prove::ProveArgs),
    Verify(cmd::verify::VerifyArgs),
    Package(cmd::package::PackageArgs),
    Test(cmd::test::TestArgs),
    Profile(cmd::profile::ProfileArgs),
    Estimate(cmd::estimate::EstimateArgs),
    GasSnapshot(cmd::gas_snapshot::GasSnapshotArgs),
    Devnet(cmd::devnet::DevnetArgs),
    Deploy(cmd::client::DeployArgs),
    Task(cmd::client::TaskArgs),
    Status(cmd::client::StatusArgs),
    Keys(cmd::keys::KeysArgs),
    Dashboard(cmd::dashboard::DashboardArgs),
    Models(cmd::models::ModelsArgs),
    Node(cmd::node::NodeArgs),
    Testnet(cmd::node::TestnetArgs),
    Bench(cmd::bench::BenchArgs),
    #[command(hide = true)]
    BenchOne(cmd::bench::BenchOneArgs),
    /// Checks a package read from stdin (the devnet runs this in a child process).
    #[command(hide = true)]
    CheckPackage,
}

/// Exit status of a failed command (usage errors exit with 2, from clap).
pub const EXIT_FAILURE: u8 = 1;

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let shell = Shell::new(&cli.global);
    let result = match cli.command {
        Command::Init(a) => a.run(&shell),
        Command::Inspect(a) => a.run(&shell),
        Command::Package(a) => a.run(&shell),
        Command::Test(a) => a.run(&shell),
        Command::Profile(a) => a.run(&shell),
        Command::Estimate(a) => a.run(&shell),
        Command::GasSnapshot(a) => a.run(&shell),
        Command::Devnet(a) => a.run(&shell),
        Command::Deploy(a) => a.run(&shell),
        Command::Task(a) => a.run(&shell),
        Command::Status(a) => a.run(&shell),
        Command::Keys(a) => a.run(&shell),
        Command::Dashboard(a) => a.run(&shell),
        Command::Models(a) => a.run(&shell),
        Command::Node(a) => a.run(&shell),
        Command::Testnet(a) => a.run(&shell),
        Command::Run(a) => a.run(&shell),
        Command::Prove(a) => a.run(&shell),
        Command::Verify(a) => a.run(&shell),
        Command::Bench(a) => a.run(&shell),
        Command::BenchOne(a) => a.run(),
        Command::CheckPackage => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(anyhow::Error::from)
                .and_then(|_| {
                    lightchain_packager::load(&bytes)
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            shell.error(&e);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
