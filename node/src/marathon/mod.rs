//! `paas-node marathon`: the sim's Marathon. A v1 framework of the Mesos master (through the
//! public scheduler API only), with leader election and all state in ZooKeeper and Marathon's
//! REST API v2.
//!
//! - [`app`]: definitions and validation (422 details as Marathon gives them);
//! - [`container`]: Docker apps, and the ContainerInfo of their tasks;
//! - [`placement`]: where tasks go, a pure function with constraints;
//! - [`model`]: apps, tasks, health;
//! - [`wire`]: Marathon's JSON (typed) and the normalization of posted definitions;
//! - [`store`]: apps, tasks and the framework id in ZooKeeper;
//! - [`scheduler`]: the framework loop;
//! - [`http`]: REST v2 and the event stream.

pub mod app;
pub mod container;
pub mod events;
pub mod http;
pub mod model;
pub mod placement;
pub mod scheduler;
pub mod store;
pub mod ui;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
// Locks that cannot poison: a panic elsewhere must never turn every later request into one.
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;
use zookeeper_client::Client;

use crate::mesos::v1::TaskState;
use crate::zk::{ZkUrl, election_leader, join_election};
use model::{App, HealthResult, Task, World, timestamp};
use store::Store;

/// Flags, named as Marathon names them.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Mesos masters: `zk://h1:2181,h2:2181/mesos`.
    #[arg(long)]
    pub master: String,
    /// Where Marathon keeps its state and elects its leader: `zk://h1:2181,h2:2181/marathon`.
    #[arg(long)]
    pub zk: String,
    #[arg(long = "http_port", default_value_t = 8080)]
    pub http_port: u16,
    /// The address other Marathons and clients reach this one at.
    #[arg(long, default_value = "127.0.0.1")]
    pub hostname: String,
    /// Milliseconds a task may stay staging before it is killed and launched again.
    #[arg(long = "task_launch_timeout", default_value_t = 300_000)]
    pub task_launch_timeout: u64,
    #[arg(long = "framework_name", default_value = "marathon")]
    pub framework_name: String,
    /// ZooKeeper session timeout, milliseconds: how fast a dead leader is replaced.
    #[arg(long = "zk_session_timeout", default_value_t = 10_000)]
    pub zk_session_timeout: u64,
}

/// Settings every part reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub master: ZkUrl,
    pub zk: ZkUrl,
    pub http_port: u16,
    pub hostname: String,
    pub task_launch_timeout: Duration,
    pub framework_name: String,
    pub zk_session: Duration,
}

/// State shared by the HTTP API and the scheduler.
pub struct Shared {
    pub config: Config,
    pub zk: Client,
    pub store: Store,
    pub world: Mutex<World>,
    pub events: events::EventBus,
    /// Wakes the scheduler after an API change.
    pub wake: Notify,
    /// Tasks the API asked to kill: (task id, agent id).
    pub kills: Mutex<Vec<(String, String)>>,
    pub framework_id: Mutex<Option<String>>,
    /// `host:port` of the leading Marathon.
    pub leader: Mutex<Option<String>>,
    pub is_leader: AtomicBool,
    pub http: reqwest::Client,
    /// Serializes API changes (check, store, apply), so two posts of one id or two apps taking
    /// the same free service port cannot interleave. Held across ZooKeeper writes, so async.
    pub changes: tokio::sync::Mutex<()>,
    /// The leading Mesos master's URL, once subscribed.
    pub mesos_leader: Mutex<Option<String>>,
    /// When this process started (for `/metrics`).
    pub started: std::time::Instant,
}

/// Runs Marathon until it loses its ZooKeeper session or is asked to abdicate. Fails when the
/// flags are wrong or ZooKeeper or the HTTP port cannot be had.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config {
        master: ZkUrl::parse(&args.master).with_context(|| format!("--master {}", args.master))?,
        zk: ZkUrl::parse(&args.zk).with_context(|| format!("--zk {}", args.zk))?,
        http_port: args.http_port,
        hostname: args.hostname.clone(),
        task_launch_timeout: Duration::from_millis(args.task_launch_timeout),
        framework_name: args.framework_name.clone(),
        zk_session: Duration::from_millis(args.zk_session_timeout),
    };
    let zk = crate::zk::connect(&config.zk, config.zk_session).await?;
    let store = Store::new(&config.zk.path);
    store.init(&zk).await?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.http_port))
        .await
        .with_context(|| format!("binding port {}", config.http_port))?;
    let me = format!("{}:{}", config.hostname, config.http_port);
    let shared = Arc::new(Shared {
        config,
        zk: zk.clone(),
        store,
        world: Mutex::new(World::default()),
        events: events::EventBus::new(1024),
        wake: Notify::new(),
        kills: Mutex::new(Vec::new()),
        framework_id: Mutex::new(None),
        leader: Mutex::new(None),
        is_leader: AtomicBool::new(false),
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("building the HTTP client")?,
        changes: tokio::sync::Mutex::new(()),
        mesos_leader: Mutex::new(None),
        started: std::time::Instant::now(),
    });
    let server = axum::serve(listener, http::router(shared.clone()));
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    tracing::info!(%me, "Marathon listening");

    let dir = shared.store.leader_dir();
    let mine = join_election(&zk, &dir, "member_", me.as_bytes()).await?;
    let mut session = zk.state_watcher();
    loop {
        let (leader, watcher) = election_leader(&zk, &dir, "member_").await?;
        let leader_address = leader.as_ref().map(|m| String::from_utf8_lossy(&m.data).into_owned());
        *shared.leader.lock() = leader_address.clone();
        if leader.as_ref().is_some_and(|m| m.name == mine) && !shared.is_leader.load(Ordering::SeqCst) {
            tracing::info!("elected leader");
            take_over(&shared).await?;
            shared.is_leader.store(true, Ordering::SeqCst);
            tokio::spawn(scheduler::run(shared.clone()));
        }
        tokio::select! {
            // Cancel-safe: the watcher fires once; dropping it only loses a notification we
            // no longer need because the loop exits or re-reads the election.
            _ = watcher.changed() => {}
            // Cancel-safe: the state watcher only reports state changes.
            state = session.changed() => {
                if state.is_terminated() {
                    // Without a session this Marathon may no longer be leader: stop, as
                    // Marathon does, and let the supervisor start a fresh one.
                    anyhow::bail!("lost the ZooKeeper session ({state:?}); stepping down");
                }
            }
        }
    }
}

/// Loads apps, tasks and the framework id from ZooKeeper before leading. A stored app this
/// version cannot run is reported (log and event) and skipped: it must never stop a leader.
async fn take_over(shared: &Shared) -> anyhow::Result<()> {
    let apps = shared.store.load_apps(&shared.zk).await?;
    let tasks = shared.store.load_tasks(&shared.zk).await?;
    let groups = shared.store.load_groups(&shared.zk).await?;
    *shared.framework_id.lock() = shared.store.load_framework_id(&shared.zk).await?;
    let mut world = shared.world.lock();
    world.groups = groups.into_iter().map(|g| (g.id.clone(), g)).collect();
    for record in apps {
        let id = record.definition.get("id").and_then(Value::as_str).unwrap_or("?").to_owned();
        let taken = world.service_ports_taken(&app::normalize_id(&id));
        match wire::normalize(&record.definition, None, &taken) {
            Ok((definition, spec)) => {
                let version_info = record.version_info.clone().unwrap_or_else(|| wire::VersionInfo {
                    last_scaling_at: record.version.clone(),
                    last_config_change_at: record.version.clone(),
                });
                world.apps.insert(
                    spec.id.clone(),
                    App {
                        definition,
                        spec,
                        version: record.version,
                        version_info,
                        failures: 0,
                        delayed_until: None,
                        last_task_failure: None,
                        deployment: None,
                        replacing: false,
                        before_deployment: None,
                        offers_processed: 0,
                        offers_unused: 0,
                    },
                );
            }
            Err(e) => {
                tracing::error!(app = %id, problem = %e.body(), "skipping a stored app this version cannot run");
                let _ = shared.events.send(json!({
                    "eventType": "app_definition_skipped_event",
                    "appId": id,
                    "problem": e.body(),
                    "timestamp": timestamp(SystemTime::now()),
                }));
            }
        }
    }
    for record in tasks {
        let checks = world.apps.get(&record.app_id).map_or(0, |a| a.spec.health_checks.len());
        let state = match record.state.as_deref() {
            Some("TASK_RUNNING") => TaskState::Running,
            Some("TASK_STARTING") => TaskState::Starting,
            _ => TaskState::Staging,
        };
        let parse = |t: &str| humantime::parse_rfc3339(t).ok();
        world.tasks.insert(
            record.id.clone(),
            Task {
                id: record.id,
                app_id: record.app_id,
                agent_id: record.agent_id,
                host: record.host,
                ports: record.ports,
                version: record.version,
                state,
                staged_at: parse(&record.staged_at).unwrap_or_else(SystemTime::now),
                started_at: record.started_at.as_deref().and_then(parse),
                running_since: (state == TaskState::Running).then(std::time::Instant::now),
                // Health is unknown until checked again; results carry over as healthy so
                // routes do not flap during a leader change.
                health: vec![
                    HealthResult {
                        alive: true,
                        checked: true,
                        ..HealthResult::default()
                    };
                    checks
                ],
                killing: None,
            },
        );
    }
    Ok(())
}
