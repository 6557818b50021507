//! `paas`: build a Mesos + Marathon PaaS from one cluster model, rehearse failures on it in
//! local Docker containers, and deploy it to AWS.

mod cli;
mod commands;
mod context;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit code of a run that failed because of its input (spec, flags): nothing was changed.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if context::is_bad_input(&err) {
                ExitCode::from(EXIT_BAD_INPUT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(args) => commands::init::run(&cli.global, args),
        Command::Validate => commands::validate::run(&cli.global),
        Command::Plan(args) => commands::plan::run(&cli.global, args).await,
        Command::Completions(args) => commands::completions::run(&cli.global, args),
        Command::Sim(args) => commands::sim::run(&cli.global, args).await,
        Command::App(args) => commands::app::run(&cli.global, args).await,
        Command::Aws(args) => commands::aws::run(&cli.global, args).await,
        Command::Chaos(args) => commands::chaos::run(&cli.global, args).await,
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PAAS_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
