use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, GlobalArgs, OutputFormat};
use crate::context::BadInput;

/// Prints the completion script of a shell on stdout. A script has no JSON form, so
/// `--output json` is refused rather than ignored.
pub fn run(global: &GlobalArgs, args: CompletionsArgs) -> anyhow::Result<()> {
    if global.output == OutputFormat::Json {
        return Err(BadInput("`paas completions` prints a shell script, which has no JSON form; drop --output json".into()).into());
    }
    clap_complete::generate(args.shell, &mut Cli::command(), "paas", &mut std::io::stdout());
    Ok(())
}
