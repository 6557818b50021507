use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

/// Prints the completion script of a shell on stdout.
pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    clap_complete::generate(args.shell, &mut Cli::command(), "paas", &mut std::io::stdout());
    Ok(())
}
