//! Command-line arguments. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, rehearse failures on, and deploy a Mesos + Marathon PaaS.
///
/// One cluster model (`paas.toml`, or the built-in default: 3 masters, 5 slaves, 2 lbs and an
/// admin entry over 3 AZs) drives two backends: local Docker containers (`paas sim`) and AWS
/// (`paas aws`). Every Marathon app `/foo` is served as `foo.<domain>`.
///
/// Exit codes: 0 success, 1 failure, 2 bad input (nothing was changed).
#[derive(Debug, Parser)]
#[command(name = "paas", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The cluster spec. Default: ./paas.toml if present, else the built-in default cluster.
    #[arg(long, global = true, env = "PAAS_SPEC", value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Output format: human-readable text, or JSON for scripts (on stdout).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Where state files and locks live (one folder per cluster).
    #[arg(long, global = true, env = "PAAS_STATE_DIR", default_value = ".paas", value_name = "DIR")]
    pub state_dir: PathBuf,

    /// More log output (-v info, -vv debug, -vvv trace). PAAS_LOG overrides (e.g. PAAS_LOG=paas_core=debug).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented default spec to paas.toml (edit it, then `paas validate`).
    Init(InitArgs),
    /// Check the spec and say what it describes. Exit 2 with every problem named otherwise.
    Validate,
    /// Show what would change to make a target match the spec, without changing anything.
    Plan(PlanArgs),
    /// Print shell completions: `paas completions bash > /etc/bash_completion.d/paas`.
    Completions(CompletionsArgs),
    /// The cluster in local Docker containers: up, status, scale, down, logs, images.
    Sim(crate::commands::sim::SimArgs),
    /// The cluster on AWS across availability zones: plan, up, status, scale, down, refresh.
    Aws(crate::commands::aws::AwsArgs),
    /// Marathon apps: deploy, scale, list, rm (any Marathon).
    App(crate::commands::app::AppArgs),
    /// Rehearse failures on the sim cluster and measure availability and recovery.
    Chaos(crate::commands::chaos::ChaosArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the spec.
    #[arg(default_value = "paas.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Which backend to plan for.
    #[arg(long, short = 't', value_enum, default_value_t = TargetArg::Sim)]
    pub target: TargetArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// Local Docker containers.
    Sim,
    /// Amazon Web Services.
    Aws,
}

impl From<TargetArg> for paas_core::Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Sim => paas_core::Target::Sim,
            TargetArg::Aws => paas_core::Target::Aws,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}
