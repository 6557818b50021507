//! `paas-node mesos-agent`: registers with the leading master found in ZooKeeper (and again with
//! each new leader), runs each task's command in its own sandbox and process group — or, with
//! `--containerizers=docker,mesos`, a task with a DOCKER ContainerInfo as a Docker container
//! ([`docker`]) — runs its COMMAND health check, and reports the tasks' states. It checkpoints
//! its id and tasks in the work dir, so a restarted agent takes its task containers back.

mod checkpoint;
mod docker;
mod fetcher;
mod files;
mod health;
mod http;
mod master_link;
mod task;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use tokio::sync::{mpsc, oneshot};

use crate::mesos::protocol::{AgentTask, StatusUpdate};
use crate::mesos::resources::{Resources, parse_attributes};
use crate::mesos::v1::{self, Id, TaskState, TaskStatus};

/// Completed tasks kept for `/state`.
const COMPLETED_TASKS_KEPT: usize = 200;

/// Flags of `mesos-agent`, named as Mesos names them.
#[derive(Clone, Debug, clap::Args)]
#[command(rename_all = "snake_case")]
pub struct Args {
    /// The masters: zk://h1:2181,h2:2181/mesos (follows the leader), or host:port of one master.
    #[arg(long)]
    pub master: String,
    /// Resources offered to frameworks.
    #[arg(long, default_value = "cpus:2;mem:4096;disk:10000;ports:[31000-32000]")]
    pub resources: String,
    /// Attributes frameworks may use for placement, e.g. zone:a;rack:3.
    #[arg(long, default_value = "")]
    pub attributes: String,
    /// Where task sandboxes are created.
    #[arg(long, default_value = "/tmp/mesos")]
    pub work_dir: PathBuf,
    /// Hostname to advertise (defaults to the IP).
    #[arg(long)]
    pub hostname: Option<String>,
    /// IPv4 address to listen on and to advertise.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: Ipv4Addr,
    /// Port to listen on.
    #[arg(long, default_value_t = 5051)]
    pub port: u16,
    /// ZooKeeper session timeout used to follow the leading master.
    #[arg(long, default_value = "10secs", value_parser = humantime::parse_duration)]
    pub zk_session_timeout: Duration,
    /// Time a killed task gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "3secs", value_parser = humantime::parse_duration)]
    pub executor_shutdown_grace_period: Duration,
    /// Comma-separated containerizers in the order tried: `mesos` runs commands in a sandbox,
    /// `docker` runs tasks whose ContainerInfo type is DOCKER as Docker containers (without it
    /// such a task fails).
    #[arg(long, default_value = "mesos", value_parser = checked(parse_containerizers))]
    pub containerizers: String,
    /// The Docker engine's socket (docker containerizer).
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub docker_socket: PathBuf,
    /// On start, remove task containers labelled with this agent that it does not recover.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub docker_kill_orphans: bool,
    /// Grace between SIGTERM and SIGKILL when a Docker task is killed and its TaskInfo has no
    /// kill policy (Marathon sets one from `taskKillGracePeriodSeconds`).
    #[arg(long, default_value = "0ns", value_parser = humantime::parse_duration)]
    pub docker_stop_timeout: Duration,
    /// paas extension: the Docker network BRIDGE task containers join; the agent relays each
    /// port mapping's host port on --ip to the container's address on it.
    #[arg(long, default_value = "bridge")]
    pub docker_network: String,
    /// paas extension: the Docker network mode of HOST task containers, e.g.
    /// `container:<name>` to share the network namespace of the container the agent runs in.
    #[arg(long, default_value = "host")]
    pub docker_host_network: String,
    /// paas extension: extra labels on every task container, as key=value,key=value.
    #[arg(long, default_value = "", value_parser = checked(docker::parse_labels))]
    pub docker_task_labels: String,
}

/// A clap value parser that checks a flag with `parse` (so bad input is refused at parse time,
/// exit 2) and keeps its text.
fn checked<T>(parse: fn(&str) -> anyhow::Result<T>) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static
where
    T: 'static,
{
    move |text: &str| parse(text).map(|_| text.to_owned()).map_err(|e| format!("{e:#}"))
}

/// The containerizers `--containerizers` names. Fails on an unknown one.
fn parse_containerizers(text: &str) -> anyhow::Result<Vec<String>> {
    let names: Vec<String> = text.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        anyhow::bail!("--containerizers is empty; use mesos, docker or docker,mesos");
    }
    if let Some(unknown) = names.iter().find(|n| *n != "mesos" && *n != "docker") {
        anyhow::bail!("--containerizers names {unknown:?}; the containerizers are mesos and docker (e.g. docker,mesos)");
    }
    Ok(names)
}

/// A task on this agent.
struct TaskRecord {
    framework_id: v1::FrameworkId,
    info: v1::TaskInfo,
    sandbox: PathBuf,
    /// The latest state, reported or not.
    latest: TaskStatus,
    /// The latest status the master has taken; what is told on re-registration.
    delivered: Option<TaskStatus>,
    /// Set while the command runs; taking it asks the runner to kill the process group.
    kill: Option<oneshot::Sender<()>>,
    pid: Option<u32>,
}

#[derive(Default)]
struct AgentState {
    agent_id: Option<v1::AgentId>,
    master: Option<v1::MasterInfo>,
    tasks: BTreeMap<String, TaskRecord>,
    completed: VecDeque<TaskRecord>,
    /// Whether the link to the leading master is up (`slave/registered`).
    registered: bool,
    /// Tasks that reached each terminal state, for `/metrics/snapshot`.
    terminal: BTreeMap<&'static str, u64>,
}

/// What the HTTP handlers, the master link and the task runners share.
pub struct Agent {
    args: Args,
    hostname: String,
    /// Seconds since the epoch when the agent started.
    start_time: f64,
    total: Resources,
    attributes: Vec<v1::Attribute>,
    state: Mutex<AgentState>,
    updates: mpsc::UnboundedSender<StatusUpdate>,
    http: reqwest::Client,
    /// The docker containerizer, when `--containerizers` names it.
    docker: Option<docker::DockerRuntime>,
}

impl Agent {
    fn lock(&self) -> std::sync::MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new state of a task and queues the update for the master. Terminal tasks move
    /// to the completed list.
    fn report(&self, task_id: &str, state: TaskState, message: Option<String>, reason: Option<&str>) {
        self.report_status(task_id, state, message, reason, None, "SOURCE_EXECUTOR");
    }

    /// [`Agent::report`] from another source (the agent itself fails a launch, as Mesos does).
    fn report_from(&self, task_id: &str, state: TaskState, message: Option<String>, reason: Option<&str>, source: &str) {
        self.report_status(task_id, state, message, reason, None, source);
    }

    /// The agent itself fails a launch, as Mesos' agent does: TASK_FAILED from SOURCE_AGENT
    /// with REASON_CONTAINER_LAUNCH_FAILED.
    fn report_launch_failed(&self, task_id: &str, message: String) {
        self.report_from(
            task_id,
            TaskState::Failed,
            Some(message),
            Some("REASON_CONTAINER_LAUNCH_FAILED"),
            "SOURCE_AGENT",
        );
    }

    /// Fetches the command's URIs into the sandbox unless the task is killed first, as both
    /// containerizers do before they start anything. A kill is reported as TASK_KILLED with
    /// `killed` (what had not started yet, in words) and gives `None`.
    async fn fetch_unless_killed(
        &self,
        task_id: &str,
        uris: &[v1::CommandUri],
        sandbox: &std::path::Path,
        kill: &mut oneshot::Receiver<()>,
        killed: &str,
    ) -> Option<Result<(), fetcher::FetchError>> {
        tokio::select! {
            // Cancel-safe: fetching is abandoned with the task; the sandbox stays for inspection.
            fetched = fetcher::fetch_all(&self.http, uris, sandbox) => Some(fetched),
            // Cancel-safe: a oneshot receiver polled by reference.
            _ = kill => {
                self.report(task_id, TaskState::Killed, Some(killed.into()), Some("REASON_TASK_KILLED_DURING_LAUNCH"));
                None
            }
        }
    }

    /// A health check's verdict: TASK_RUNNING with `healthy`, as Mesos' executors send it.
    fn report_health(&self, task_id: &str, healthy: bool) {
        let running = self.lock().tasks.get(task_id).is_some_and(|r| r.latest.state == TaskState::Running);
        if running {
            self.report_status(
                task_id,
                TaskState::Running,
                None,
                Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
                Some(healthy),
                "SOURCE_EXECUTOR",
            );
        }
    }

    /// Records a new state of a task and queues the update for the master; a terminal task
    /// moves to the completed list and its checkpoint is removed.
    fn report_status(
        &self,
        task_id: &str,
        state: TaskState,
        message: Option<String>,
        reason: Option<&str>,
        healthy: Option<bool>,
        source: &str,
    ) {
        let mut guard = self.lock();
        let agent_id = guard.agent_id.clone();
        let Some(record) = guard.tasks.get_mut(task_id) else {
            return;
        };
        let mut status = TaskStatus::new(record.info.task_id.clone(), state);
        status.message = message;
        status.reason = reason.map(str::to_owned);
        status.source = Some(source.to_owned());
        status.healthy = healthy;
        status.agent_id = agent_id.clone();
        status.executor_id = Some(record.info.task_id.clone());
        status.uuid = Some(base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes()));
        record.latest = status.clone();
        let update = StatusUpdate {
            agent_id: agent_id.unwrap_or_default(),
            framework_id: record.framework_id.clone(),
            status,
        };
        tracing::info!(task = task_id, state = state.as_str(), "task status");
        if state.is_terminal() {
            record.kill = None;
            record.pid = None;
            checkpoint::remove_task(&self.args.work_dir, task_id);
        }
        if state.is_terminal() {
            *guard.terminal.entry(state.as_str()).or_default() += 1;
        }
        // The link lives as long as the process.
        let _ = self.updates.send(update);
    }

    /// The master took this update: it is what to tell a new leader.
    fn delivered(&self, status: &TaskStatus) {
        let mut guard = self.lock();
        if let Some(record) = guard.tasks.get_mut(&status.task_id.value) {
            record.delivered = Some(status.clone());
        }
    }

    /// The framework acknowledged an update: when it was the last one of a finished task, the
    /// task is forgotten (kept only in the completed list).
    fn acknowledged(&self, task_id: &v1::TaskId, uuid: &str) {
        let mut guard = self.lock();
        let done = guard.tasks.get(&task_id.value).is_some_and(|record| {
            record
                .delivered
                .as_ref()
                .is_some_and(|d| d.state.is_terminal() && d.uuid.as_deref() == Some(uuid))
        });
        if done && let Some(record) = guard.tasks.remove(&task_id.value) {
            guard.completed.push_back(record);
            while guard.completed.len() > COMPLETED_TASKS_KEPT {
                guard.completed.pop_front();
            }
        }
    }

    /// The tasks to tell a master on (re-)registration, each with its latest delivered status.
    fn registration_tasks(&self) -> Vec<AgentTask> {
        let guard = self.lock();
        guard
            .tasks
            .values()
            .map(|record| {
                let status = record.delivered.clone().unwrap_or_else(|| {
                    let mut status = TaskStatus::new(record.info.task_id.clone(), TaskState::Staging);
                    status.agent_id = guard.agent_id.clone();
                    status
                });
                AgentTask {
                    framework_id: record.framework_id.clone(),
                    task: record.info.clone(),
                    status,
                }
            })
            .collect()
    }

    /// Resources of the tasks that have not ended.
    fn used(&self) -> Resources {
        self.lock()
            .tasks
            .values()
            .filter(|r| !r.latest.state.is_terminal())
            .map(|r| Resources::from_v1(&r.info.resources))
            .sum()
    }

    /// Asks the runner of a task to kill it; an unknown task is reported lost to the master.
    fn kill(&self, framework_id: &v1::FrameworkId, task_id: &v1::TaskId) {
        let sender = {
            let mut guard = self.lock();
            match guard.tasks.get_mut(&task_id.value) {
                Some(record) => record.kill.take(),
                None => {
                    drop(guard);
                    let mut status = TaskStatus::new(task_id.clone(), TaskState::Lost);
                    status.message = Some("Task is unknown to the agent".to_owned());
                    status.source = Some("SOURCE_AGENT".to_owned());
                    status.reason = Some("REASON_RECONCILIATION".to_owned());
                    let agent_id = self.lock().agent_id.clone().unwrap_or_default();
                    let _ = self.updates.send(StatusUpdate {
                        agent_id,
                        framework_id: framework_id.clone(),
                        status,
                    });
                    return;
                }
            }
        };
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }

    /// Kills every command task's process group at once (agent shutdown). Docker tasks keep
    /// running: a restarted agent recovers them.
    fn kill_all(&self) {
        let guard = self.lock();
        for record in guard.tasks.values() {
            if let Some(pid) = record.pid {
                task::signal_group(pid, libc::SIGKILL);
            }
        }
    }
}

/// Runs the agent until it is interrupted; on SIGTERM or Ctrl-C it kills its tasks' process
/// groups first. Fails when the flags are invalid or the port cannot be bound.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let total = Resources::parse(&args.resources).context("parsing --resources")?;
    let containerizers = parse_containerizers(&args.containerizers)?;
    let task_labels = docker::parse_labels(&args.docker_task_labels)?;
    let attributes = parse_attributes(&args.attributes).context("parsing --attributes")?;
    let address = SocketAddr::from((args.ip, args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the agent's HTTP port {address}"))?;
    std::fs::create_dir_all(&args.work_dir).with_context(|| format!("creating the work directory {}", args.work_dir.display()))?;
    let hostname = args.hostname.clone().unwrap_or_else(|| args.ip.to_string());
    let (updates_tx, updates_rx) = mpsc::unbounded_channel();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let docker = if containerizers.iter().any(|c| c == "docker") {
        Some(
            docker::DockerRuntime::connect(
                &args.docker_socket,
                args.docker_network.clone(),
                args.docker_host_network.clone(),
                task_labels,
                args.docker_stop_timeout,
                args.docker_kill_orphans,
            )
            .await?,
        )
    } else {
        None
    };
    let agent = Arc::new(Agent {
        args: args.clone(),
        hostname,
        start_time: v1::now_seconds(),
        total,
        attributes,
        state: Mutex::new(AgentState::default()),
        updates: updates_tx,
        http,
        docker,
    });
    recover(&agent).await?;
    tracing::info!(%address, master = %args.master, resources = %agent.total, "starting Mesos agent");
    let masters = master_link::masters(&args)?;
    tokio::spawn(master_link::follow(agent.clone(), masters, updates_rx));
    let server = axum::serve(listener, http::router(agent.clone()));
    let outcome = tokio::select! {
        // Cancel-safe: the server is only polled here; dropping it closes the listener.
        served = server.into_future() => served.context("serving HTTP"),
        // Cancel-safe: a signal listener.
        _ = shutdown_signal() => Ok(()),
    };
    tracing::info!("agent shutting down; killing its tasks");
    agent.kill_all();
    outcome
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

/// Takes back what a previous run of this agent left: its id (so it re-registers as itself),
/// its Docker task containers (see [`docker::recover`]); a checkpointed task that could not be
/// recovered is reported failed, as Mesos reports an executor that ended with the agent.
async fn recover(agent: &Arc<Agent>) -> anyhow::Result<()> {
    let work_dir = &agent.args.work_dir;
    let previous = checkpoint::agent_id(work_dir);
    if let Some(id) = &previous {
        tracing::info!(agent = %id, "recovering the agent id of the previous run");
    }
    agent.lock().agent_id = previous;
    let checkpoints = checkpoint::tasks(work_dir);
    let recovered = docker::recover(agent, &checkpoints).await?;
    for lost in checkpoints.iter().filter(|c| !recovered.contains(&c.info.task_id.value)) {
        {
            let mut guard = agent.lock();
            let mut status = TaskStatus::new(lost.info.task_id.clone(), TaskState::Running);
            status.agent_id = guard.agent_id.clone();
            guard.tasks.insert(
                lost.info.task_id.value.clone(),
                TaskRecord {
                    framework_id: lost.framework_id.clone(),
                    info: lost.info.clone(),
                    sandbox: lost.sandbox.clone(),
                    latest: status.clone(),
                    delivered: Some(status),
                    kill: None,
                    pid: None,
                },
            );
        }
        let what = if lost.docker { "container" } else { "executor" };
        agent.report_from(
            &lost.info.task_id.value,
            TaskState::Failed,
            Some(format!("Abnormal executor termination: unknown {what}")),
            Some("REASON_EXECUTOR_TERMINATED"),
            "SOURCE_AGENT",
        );
    }
    Ok(())
}

/// The id this agent's tasks' statuses carry.
fn agent_id_or_default(agent: &Agent) -> v1::AgentId {
    agent.lock().agent_id.clone().unwrap_or_else(|| Id::new(""))
}
