//! `paas-node mesos-master`: contends for leadership in ZooKeeper as Mesos masters do; the leader
//! serves the v1 scheduler API and the agents, the others redirect to it.

pub mod cluster;
mod election;
mod http;
mod operator;
mod registry;
mod state_json;
mod ui;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use self::cluster::{Cluster, Effect};
use crate::mesos::protocol::{ACKNOWLEDGE_PATH, KILL_PATH, LAUNCH_PATH, LaunchTask};
use crate::mesos::v1;
use crate::zk::ZkUrl;

/// The Mesos version the master reports; Marathon checks that it is recent enough.
pub const MESOS_VERSION: &str = "1.11.0";

/// Effects queued for the dispatcher at most; a change to the cluster waits while it is this
/// far behind (agents or ZooKeeper slow to answer) rather than queueing without bound.
const EFFECTS_QUEUED: usize = 1024;
/// Calls to agents in flight at most; the dispatcher waits for one to finish beyond that.
const AGENT_CALLS_IN_FLIGHT: usize = 128;

/// Flags of `mesos-master`, named as Mesos names them.
#[derive(Clone, Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// ZooKeeper URL of the cluster, e.g. zk://h1:2181,h2:2181,h3:2181/mesos.
    #[arg(long)]
    pub zk: ZkUrl,
    /// Number of masters that form a quorum (recorded; the sim keeps its registry in ZooKeeper).
    #[arg(long, default_value_t = 1)]
    pub quorum: u32,
    /// Port to listen on.
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// IPv4 address to listen on and to advertise.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: Ipv4Addr,
    /// Hostname to advertise (defaults to the IP).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Human-readable cluster name, shown in state.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Time after which an agent that has not pinged counts as one missed ping.
    #[arg(long, default_value = "15secs", value_parser = humantime::parse_duration)]
    pub agent_ping_timeout: Duration,
    /// Missed pings after which an agent is removed.
    #[arg(long, default_value_t = 5)]
    pub max_agent_ping_timeouts: u32,
    /// How long a new leader waits for the agents of the registry to re-register.
    #[arg(long, default_value = "10mins", value_parser = humantime::parse_duration)]
    pub agent_reregister_timeout: Duration,
    /// ZooKeeper session timeout; losing the session makes the master step down.
    #[arg(long, default_value = "10secs", value_parser = humantime::parse_duration)]
    pub zk_session_timeout: Duration,
    /// How often resources are offered.
    #[arg(long, default_value = "1secs", value_parser = humantime::parse_duration)]
    pub allocation_interval: Duration,
    /// Interval of HEARTBEAT events to schedulers (Mesos uses 15 seconds).
    #[arg(long, default_value = "15secs", value_parser = humantime::parse_duration)]
    pub scheduler_heartbeat_interval: Duration,
    /// Accepted for compatibility; the sim keeps no replicated log.
    #[arg(long)]
    pub work_dir: Option<String>,
}

/// What the HTTP handlers, the election and the timers share.
pub struct Master {
    pub(crate) info: v1::MasterInfo,
    pub(crate) args: Args,
    pub(crate) start_time: f64,
    /// `Some` while this master leads.
    cluster: Mutex<Option<Cluster>>,
    /// The leader as seen in ZooKeeper (possibly this master).
    pub(crate) leader: watch::Receiver<Option<v1::MasterInfo>>,
    /// To the dispatcher; behind an async lock so that effects leave in the order the model
    /// queued them even when a sender has to wait for room.
    effects: tokio::sync::Mutex<mpsc::Sender<Effect>>,
}

impl Master {
    /// Runs `f` on the cluster state if this master leads, then hands the effects it queued to
    /// the dispatcher, waiting while the dispatcher's bounded queue is full.
    pub(crate) async fn with_cluster<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> Option<R> {
        let effects = self.effects.lock().await;
        let (result, queued) = {
            let mut guard = self.cluster.lock().unwrap_or_else(|e| e.into_inner());
            let cluster = guard.as_mut()?;
            let result = f(cluster);
            (result, cluster.take_effects())
        };
        for effect in queued {
            // The dispatcher lives as long as the process.
            let _ = effects.send(effect).await;
        }
        Some(result)
    }

    /// Reads the cluster state if this master leads; reads queue no effects.
    pub(crate) fn read_cluster<R>(&self, f: impl FnOnce(&Cluster) -> R) -> Option<R> {
        let guard = self.cluster.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(f)
    }

    /// Whether this master leads.
    pub(crate) fn leading(&self) -> bool {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn become_leader(&self, registry_agents: Vec<String>) {
        let config = cluster::ClusterConfig {
            master_info: self.info.clone(),
            agent_ping_timeout: self.args.agent_ping_timeout,
            max_agent_ping_timeouts: self.args.max_agent_ping_timeouts,
            agent_reregister_timeout: self.args.agent_reregister_timeout,
            heartbeat_interval: self.args.scheduler_heartbeat_interval,
            allocation_interval: self.args.allocation_interval,
        };
        tracing::info!(master = %self.info.id, recovered_agents = registry_agents.len(), "elected leading master");
        *self.cluster.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cluster::new(config, registry_agents));
    }
}

/// Runs the master until it loses its ZooKeeper session (an error: a supervisor restarts it, as
/// Mesos masters exit when they lose leadership) or the process is interrupted. Fails when the
/// port cannot be bound or ZooKeeper cannot be reached.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let address = SocketAddr::from((args.ip, args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the master's HTTP port {address}"))?;
    let hostname = args.hostname.clone().unwrap_or_else(|| args.ip.to_string());
    let id = uuid::Uuid::new_v4().to_string();
    let info = v1::MasterInfo {
        id: id.clone(),
        ip: v1::MasterInfo::encode_ip(args.ip),
        port: u32::from(args.port),
        pid: Some(format!("master@{}:{}", args.ip, args.port)),
        hostname: Some(hostname.clone()),
        version: Some(MESOS_VERSION.to_owned()),
        address: Some(v1::Address {
            hostname: Some(hostname),
            ip: Some(args.ip.to_string()),
            port: u32::from(args.port),
        }),
    };
    tracing::info!(master = %id, %address, zk = %args.zk, quorum = args.quorum, "starting Mesos master");

    let (leader_tx, leader_rx) = watch::channel(None);
    let (effects_tx, effects_rx) = mpsc::channel(EFFECTS_QUEUED);
    let master = Arc::new(Master {
        info,
        args: args.clone(),
        start_time: v1::now_seconds(),
        cluster: Mutex::new(None),
        leader: leader_rx,
        effects: tokio::sync::Mutex::new(effects_tx),
    });

    let server = axum::serve(listener, http::router(master.clone()));
    let zk = crate::zk::connect(&args.zk, args.zk_session_timeout).await?;
    let registry = registry::Registry::new(zk.clone(), &args.zk.path);
    tokio::spawn(dispatch_effects(master.clone(), registry.clone(), effects_rx));
    tokio::spawn(tick(master.clone()));

    tokio::select! {
        // Cancel-safe: the server is only polled here; dropping it closes the listener.
        served = server.into_future() => served.context("serving HTTP"),
        // Cancel-safe: the election owns its ZooKeeper session; it ends with the process.
        lost = election::contend(master.clone(), zk, registry, leader_tx) => {
            Err(lost).context("lost leadership contention; stepping down")
        }
        // Cancel-safe: a signal listener.
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        // Cancel-safe: ctrl_c() only listens; a signal arriving later is caught by the next call.
        _ = tokio::signal::ctrl_c() => {}
        // Cancel-safe: Signal::recv is documented cancel-safe.
        _ = terminate.recv() => {}
    }
}

/// Advances the cluster's clock: ping and failover timeouts, heartbeats, allocation.
async fn tick(master: Arc<Master>) {
    let period = master
        .args
        .allocation_interval
        .min(Duration::from_millis(200))
        .max(Duration::from_millis(20));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        master.with_cluster(|cluster| cluster.tick(Instant::now())).await;
    }
}

/// Performs the effects the cluster model queues: calls to agents and registry writes.
async fn dispatch_effects(master: Arc<Master>, registry: registry::Registry, mut effects: mpsc::Receiver<Effect>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client");
    let in_flight = Arc::new(tokio::sync::Semaphore::new(AGENT_CALLS_IN_FLIGHT));
    while let Some(effect) = effects.recv().await {
        // Never closed, so acquiring fails never.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        match effect {
            Effect::Launch {
                agent,
                agent_id,
                framework_id,
                task,
                task_killing_state,
            } => {
                let client = client.clone();
                let master = master.clone();
                tokio::spawn(async move {
                    let url = format!("{}{LAUNCH_PATH}", agent.base_url());
                    let task_id = task.task_id.clone();
                    let request = LaunchTask {
                        framework_id: framework_id.clone(),
                        task: *task,
                        task_killing_state,
                    };
                    let sent = client.post(&url).json(&request).send().await;
                    let failure = match sent {
                        Ok(response) if response.status().is_success() => None,
                        Ok(response) => Some(format!("agent answered {}", response.status())),
                        Err(e) => Some(format!("agent unreachable: {e}")),
                    };
                    // Released before reporting: the report may wait for the dispatcher, which
                    // may be waiting for this permit.
                    drop(permit);
                    if let Some(message) = failure {
                        tracing::warn!(task = %task_id, agent = %agent_id, %message, "launch failed");
                        master
                            .with_cluster(|c| c.launch_failed(&framework_id.value, &agent_id, &task_id, &message))
                            .await;
                    }
                });
            }
            Effect::Acknowledge { agent, ack } => {
                let client = client.clone();
                tokio::spawn(async move {
                    let url = format!("{}{ACKNOWLEDGE_PATH}", agent.base_url());
                    if let Err(e) = client.post(&url).json(&ack).send().await {
                        tracing::warn!(task = %ack.task_id, error = %e, "forwarding an acknowledgement to the agent");
                    }
                    drop(permit);
                });
            }
            Effect::Kill { agent, kill } => {
                let client = client.clone();
                tokio::spawn(async move {
                    let url = format!("{}{KILL_PATH}", agent.base_url());
                    if let Err(e) = client.post(&url).json(&kill).send().await {
                        tracing::warn!(task = %kill.task_id, error = %e, "asking the agent to kill a task");
                    }
                    drop(permit);
                });
            }
            Effect::RegistryAdd { agent_id, data } => {
                drop(permit);
                if let Err(e) = registry.add(&agent_id, &data).await {
                    tracing::warn!(agent = %agent_id, error = %e, source = ?std::error::Error::source(&e), "recording the agent in the registry");
                }
            }
            Effect::RegistryRemove { agent_id } => {
                drop(permit);
                if let Err(e) = registry.remove(&agent_id).await {
                    tracing::warn!(agent = %agent_id, error = %e, source = ?std::error::Error::source(&e), "removing the agent from the registry");
                }
            }
        }
    }
}
