//! `paas-node supervise`: a node's init.
//!
//! A sim node's container starts this as PID 1, as a machine starts init, and an AWS instance as
//! its `paas-node.service` under systemd (a subreaper there, so orphans still come to it): it
//! writes the node's configuration files, runs each of the node's programs, restarts a program that
//! exits (with backoff), reaps every orphan that ends up with it, passes SIGTERM/SIGINT on to the
//! programs and exits once they are gone. Each program's output goes to its own log file
//! (`<log-dir>/<program>.log`, for `paas sim logs --process`) and to stdout prefixed with the
//! program's name (for `docker logs`).
//!
//! A new configuration is staged beside the old one (`node.next.json`) and installed by
//! `paas-node configure` on a running node, or by the supervisor when it starts.

mod command;
mod config;
mod output;
mod process;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

pub use command::command_for;
pub use config::{NodeConfig, NodeFile, NodeProgram};
use process::Supervised;

/// Flags of `paas-node supervise`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The node's configuration: JSON with `files` ({path, content}) and `programs` ({name, args}).
    #[arg(long, default_value = "/etc/paas/node.json")]
    pub config: PathBuf,
    /// Where each program's log file goes.
    #[arg(long, default_value = "/var/log/paas")]
    pub log_dir: PathBuf,
    /// How long programs get to exit after SIGTERM before they are killed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Delay before the first restart of a program that exited; doubles on each quick exit.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub min_backoff: Duration,
    /// The longest delay between restarts.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub max_backoff: Duration,
}

/// Flags of `paas-node configure`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigureArgs {
    /// The node's configuration; the new one is staged beside it as `<name>.next.json`.
    #[arg(long, default_value = "/etc/paas/node.json")]
    pub config: PathBuf,
}

/// Installs the staged configuration on a running node: its files, then the configuration the
/// supervisor reads at its next start. Programs are neither restarted nor signalled: reloading
/// is the caller's business. Fails when nothing is staged.
pub fn configure(args: ConfigureArgs) -> anyhow::Result<()> {
    if !config::install_staged(&args.config)? {
        anyhow::bail!(
            "no configuration is staged at {}: write the new configuration there first",
            config::staged_path(&args.config).display()
        );
    }
    println!("installed {}", args.config.display());
    Ok(())
}

/// Runs the node until SIGTERM or SIGINT, then stops its programs and returns.
///
/// Fails when the configuration cannot be read or a file cannot be written; a program that
/// cannot be started is retried like one that crashed.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Outside a container (tests, a shell), orphans of the programs come to us as they would
    // to PID 1, so they are reaped the same way.
    process::become_subreaper();
    // Before any child exists, so that no exit goes unnoticed.
    let mut child_exited = signal(SignalKind::child()).context("installing the SIGCHLD handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    // A configuration staged while the node was stopped takes effect now.
    if config::install_staged(&args.config)? {
        println!(
            "[supervise] installed the staged configuration {}",
            config::staged_path(&args.config).display()
        );
    }
    let config = config::read(&args.config)?;
    config::write_files(&config)?;
    std::fs::create_dir_all(&args.log_dir).with_context(|| format!("creating the log directory {}", args.log_dir.display()))?;

    let mut programs: Vec<Supervised> = config
        .programs
        .iter()
        .map(|p| Supervised::new(&p.name, command_for(p), &args))
        .collect();
    for program in &mut programs {
        program.start();
    }

    loop {
        let next_restart = programs.iter().filter_map(Supervised::restart_at).min();
        tokio::select! {
            // Cancel-safe: a missed SIGCHLD is not lost, reap_all collects every exited child.
            _ = child_exited.recv() => process::reap_all(&mut programs),
            // Cancel-safe: signal streams keep deliveries until received.
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            // Cancel-safe: a sleep holds no state; the deadline is recomputed each turn.
            _ = sleep_until(next_restart) => {
                let now = tokio::time::Instant::now();
                for program in programs.iter_mut().filter(|p| p.restart_at().is_some_and(|at| at <= now)) {
                    program.start();
                }
            }
        }
    }

    println!("[supervise] stopping {} programs", programs.len());
    process::stop_all(&mut programs, &mut child_exited, args.grace).await;
    Ok(())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
