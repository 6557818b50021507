//! `paas-node`: the programs that run on a cluster node, one subcommand each.
//!
//! Every node runs some of these under `supervise`, beside ZooKeeper and nginx from Debian: in
//! the sim as a container's PID 1, on AWS as the instance's `paas-node.service`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "paas-node", version, about)]
struct Cli {
    #[command(subcommand)]
    program: Program,
}

#[derive(Subcommand)]
enum Program {
    // One variant per program, each taking the program's own `Args`.
    /// Keeps nginx routing every Marathon app `/foo` as `foo.<domain>`.
    LbSync(paas_node::lb_sync::Args),
    /// The sim's Mesos master: leader election in ZooKeeper, the v1 scheduler API, /master/state.
    MesosMaster(paas_node::mesos::master::Args),
    /// The sim's Mesos agent: registers with the leading master, runs tasks in sandboxes.
    MesosAgent(paas_node::mesos::agent::Args),
    /// The sim's Marathon: REST v2, scheduling on Mesos offers, health checks, state in ZooKeeper.
    Marathon(paas_node::marathon::Args),
    /// A node's init (sim container or AWS instance): writes its files, runs and restarts its programs, forwards signals.
    Supervise(paas_node::supervise::Args),
    /// Installs a node's staged configuration (`node.next.json`): writes its files, then moves it over `node.json`.
    Configure(paas_node::supervise::ConfigureArgs),
    /// Delays the packets of an NFQUEUE in userspace (this kernel has no `tc netem`), for chaos `delay` faults.
    Netdelay(paas_node::netdelay::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.program {
            Program::LbSync(args) => Ok(paas_node::lb_sync::run(args).await?),
            Program::MesosMaster(args) => paas_node::mesos::master::run(args).await,
            Program::Marathon(args) => paas_node::marathon::run(args).await,
            Program::MesosAgent(args) => paas_node::mesos::agent::run(args).await,
            Program::Supervise(args) => paas_node::supervise::run(args).await,
            Program::Configure(args) => paas_node::supervise::configure(args),
            Program::Netdelay(args) => Ok(paas_node::netdelay::run(args).await?),
        }
    })
}
