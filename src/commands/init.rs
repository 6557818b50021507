use anyhow::Context as _;
use paas_core::spec::DEFAULT_SPEC_TOML;

use crate::cli::{GlobalArgs, InitArgs, OutputFormat};
use crate::context::BadInput;

/// Writes the commented default spec; refuses to overwrite unless `--force`.
pub fn run(global: &GlobalArgs, args: InitArgs) -> anyhow::Result<()> {
    if args.path.exists() && !args.force {
        return Err(BadInput(format!(
            "{} already exists; edit it, or pass --force to overwrite it",
            args.path.display()
        ))
        .into());
    }
    std::fs::write(&args.path, DEFAULT_SPEC_TOML).with_context(|| format!("writing {}", args.path.display()))?;
    match global.output {
        OutputFormat::Json => println!("{}", serde_json::json!({ "written": args.path })),
        OutputFormat::Text => eprintln!("Wrote {}. Check it with `paas validate`, then `paas sim up`.", args.path.display()),
    }
    Ok(())
}
