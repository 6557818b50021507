//! The docker containerizer (`--containerizers=docker,mesos`): a task whose ContainerInfo is
//! DOCKER runs as a container of the Docker engine at `--docker_socket`, as Mesos' docker
//! containerizer and docker executor run it (`src/slave/containerizer/docker.cpp`,
//! `src/docker/executor.cpp`):
//!
//! - the image is pulled when missing (or always, with `forcePullImage`); a failed pull fails
//!   the task with Mesos' message;
//! - the container is `mesos-<container id>`, labelled with the agent (`paas.agent`, its
//!   `--hostname`) and the task's ids, limited to the task's cpus (CPU shares) and mem;
//! - its output goes to the sandbox's `stdout` and `stderr` files;
//! - HOST tasks join `--docker_host_network`; BRIDGE tasks join `--docker_network`, and the
//!   agent relays each port mapping's host port on its `--ip` to the container
//!   ([`forward`]);
//! - a kill is `docker stop` with the task's kill grace period (SIGTERM, then SIGKILL);
//! - the exit code decides TASK_FINISHED or TASK_FAILED, a kill TASK_KILLED, each with
//!   "Container exited with status N";
//! - the agent touches only containers with its own `paas.agent` label, and a restarted agent
//!   takes its running containers back ([`recover`]) and removes the others
//!   (`--docker_kill_orphans`). Task containers never get the Docker socket.
//!
//! Unlike Mesos, a container is removed as soon as its task's end is reported (Mesos keeps it
//! for `--docker_remove_delay`); the output stays in the sandbox. The sandbox itself is not
//! mounted into the container, and a volume's host path (a relative one resolved in the
//! sandbox) is a path on the engine's machine: when the agent runs in a container (the sim),
//! that is not the agent's own filesystem — Mesos asks such an agent to have its work dir at
//! the same path on the host, which the sim does not do.

pub mod forward;
pub mod options;

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions, LogsOptionsBuilder, RemoveContainerOptions,
    StartContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use super::checkpoint::{self, TaskCheckpoint};
use super::health::{self, CheckTarget, HealthEvent};
use super::{Agent, TaskRecord};
use crate::mesos::v1::{self, ContainerInfo, TaskState, TaskStatus};
use forward::Forwarder;
use options::{AGENT_LABEL, Placement, TASK_ID_LABEL};

/// How long a pull may take before the task fails.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// The docker containerizer's configuration and engine connection.
pub struct DockerRuntime {
    pub docker: Docker,
    pub socket: PathBuf,
    /// `--docker_network`.
    pub network: String,
    /// `--docker_host_network`.
    pub host_network: String,
    /// `--docker_task_labels`.
    pub task_labels: Vec<(String, String)>,
    /// `--docker_stop_timeout`: the grace of a kill when the task has no kill policy.
    pub stop_timeout: Duration,
    /// `--docker_kill_orphans`.
    pub kill_orphans: bool,
}

impl DockerRuntime {
    /// Connects to the engine at `socket` (API version negotiated). Fails when it does not
    /// answer.
    pub async fn connect(
        socket: &Path,
        network: String,
        host_network: String,
        task_labels: Vec<(String, String)>,
        stop_timeout: Duration,
        kill_orphans: bool,
    ) -> anyhow::Result<DockerRuntime> {
        let path = socket.display().to_string();
        let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
            .with_context(|| {
                format!("connecting to the Docker engine at {path}: start it, point --docker_socket at its socket, or leave docker out of --containerizers")
            })?;
        let docker = docker
            .negotiate_version()
            .await
            .with_context(|| {
                format!("the Docker engine at {path} does not answer: start it, point --docker_socket at its socket, or leave docker out of --containerizers")
            })?;
        Ok(DockerRuntime {
            docker,
            socket: socket.to_owned(),
            network,
            host_network,
            task_labels,
            stop_timeout,
            kill_orphans,
        })
    }
}

/// Parses `--docker_task_labels` (`k=v,k=v`). Fails naming an entry without `=`.
pub fn parse_labels(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => anyhow::bail!("--docker_task_labels entry {entry:?} is not key=value"),
        })
        .collect()
}

/// `name:latest` for an image named without a tag or digest (the engine would pull every tag).
fn with_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Runs a newly launched DOCKER task to its end: image, container, output, ports, health
/// checks, kill. Every outcome is reported as a status update.
pub async fn launch(
    agent: Arc<Agent>,
    framework_id: v1::FrameworkId,
    info: v1::TaskInfo,
    container: ContainerInfo,
    sandbox: PathBuf,
    mut kill: oneshot::Receiver<()>,
    killing_state: bool,
) {
    let task_id = info.task_id.value.clone();
    let Some(runtime) = agent.docker.as_ref() else {
        // The caller checks; kept total so a task is never left without an answer.
        return;
    };
    agent.report(&task_id, TaskState::Starting, None, None);
    let command = info.command.clone().unwrap_or_default();
    let killed = "Killed before the container started";
    let Some(fetched) = agent
        .fetch_unless_killed(&task_id, &command.uris, &sandbox, &mut kill, killed)
        .await
    else {
        return;
    };
    let launch_failed = |message: String| {
        agent.report_launch_failed(&task_id, format!("Failed to launch container: {message}"));
    };
    if let Err(e) = fetched {
        launch_failed(format!("Failed to fetch all URIs for container: {e}"));
        return;
    }
    let container_id = sandbox.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let agent_id = super::agent_id_or_default(&agent).value;
    let environment = super::task::environment(&agent, &framework_id, &info, None);
    let placement = Placement {
        agent: &agent.hostname,
        agent_id: &agent_id,
        framework_id: &framework_id.value,
        container_id: &container_id,
        sandbox: &sandbox,
        bridge_network: &runtime.network,
        host_network: &runtime.host_network,
        extra_labels: &runtime.task_labels,
        environment,
    };
    let plan = match options::plan(&info, &container, &placement) {
        Ok(plan) => plan,
        Err(e) => return launch_failed(e.to_string()),
    };
    for bind in plan.body.host_config.iter().flat_map(|h| h.binds.iter().flatten()) {
        // A relative volume's directory lives in the sandbox; Docker would create it as root.
        if let Some(host) = bind.split(':').next().filter(|h| h.starts_with(&*sandbox.to_string_lossy())) {
            let _ = std::fs::create_dir_all(host);
        }
    }
    let pulled = tokio::select! {
        // Cancel-safe: an abandoned pull goes on in the engine, harmlessly.
        pulled = ensure_image(runtime, &plan.image, plan.force_pull) => pulled,
        // Cancel-safe: a oneshot receiver polled by reference.
        _ = &mut kill => {
            agent.report(&task_id, TaskState::Killed, Some("Container destroyed while pulling image".into()), Some("REASON_TASK_KILLED_DURING_LAUNCH"));
            return;
        }
    };
    if let Err(message) = pulled {
        return launch_failed(message);
    }
    let saved = checkpoint::save_task(
        &agent.args.work_dir,
        &TaskCheckpoint {
            framework_id: framework_id.clone(),
            info: info.clone(),
            sandbox: sandbox.clone(),
            container_id: container_id.clone(),
            docker: true,
        },
    );
    if let Err(e) = saved {
        return launch_failed(format!("{e:#}"));
    }
    let created = runtime
        .docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(plan.name.clone()),
                ..Default::default()
            }),
            plan.body.clone(),
        )
        .await;
    let started = match created {
        Ok(_) => runtime.docker.start_container(&plan.name, None::<StartContainerOptions>).await,
        Err(e) => Err(e),
    };
    if let Err(e) = started {
        remove(runtime, &plan.name).await;
        return launch_failed(format!(
            "Failed to run 'docker -H unix://{} run {}': {}",
            runtime.socket.display(),
            plan.image,
            engine_message(&e)
        ));
    }
    let watched = Watched {
        task_id,
        name: plan.name,
        sandbox,
        network: plan.network,
        forwards: plan.forwards,
        grace: grace(runtime, &info),
        health_check: info.health_check_info().ok().flatten(),
        since: 0,
    };
    watch(agent.clone(), watched, kill, killing_state, false).await;
}

/// The engine's own words for an error (its response message, without the status code).
fn engine_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => format!("Error response from daemon: {message}"),
        other => other.to_string(),
    }
}

/// The grace between SIGTERM and SIGKILL: the task's kill policy, else `--docker_stop_timeout`.
fn grace(runtime: &DockerRuntime, info: &v1::TaskInfo) -> Duration {
    info.kill_policy
        .as_ref()
        .and_then(|p| p.grace_period)
        .map_or(runtime.stop_timeout, v1::DurationInfo::to_std)
}

/// Pulls the image when it is missing or `force` asks; the error is Mesos' message for a failed
/// `docker pull`.
async fn ensure_image(runtime: &DockerRuntime, image: &str, force: bool) -> Result<(), String> {
    let image = with_tag(image);
    if !force && runtime.docker.inspect_image(&image).await.is_ok() {
        return Ok(());
    }
    let command = format!("docker -H unix://{} pull {image}", runtime.socket.display());
    let pull = async {
        let mut stream = runtime.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(image.clone()),
                ..Default::default()
            }),
            None,
            None,
        );
        while let Some(step) = stream.next().await {
            let info = step.map_err(|e| engine_message(&e))?;
            if let Some(error) = info.error_detail.and_then(|d| d.message) {
                return Err(error);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(stderr)) => Err(format!("Failed to run '{command}': exited with status 1; stderr='{stderr}'")),
        Err(_) => Err(format!("Failed to run '{command}': timed out after {PULL_TIMEOUT:?}")),
    }
}

/// A started task container the agent watches.
struct Watched {
    task_id: String,
    name: String,
    sandbox: PathBuf,
    network: Option<String>,
    forwards: Vec<options::Forward>,
    grace: Duration,
    health_check: Option<v1::HealthCheck>,
    /// Output before this time (seconds since the epoch) is already in the sandbox.
    since: i32,
}

/// Serves a running container until it ends: relays its ports, copies its output, runs its
/// health check, stops it on a kill, and reports its end.
async fn watch(agent: Arc<Agent>, watched: Watched, mut kill: oneshot::Receiver<()>, killing_state: bool, recovered: bool) {
    let Some(runtime) = agent.docker.as_ref() else { return };
    let docker = runtime.docker.clone();
    let task_id = watched.task_id.clone();
    let _forwarders = match start_forwarders(&agent, &docker, &watched).await {
        Ok(forwarders) => forwarders,
        Err(message) => {
            let _ = docker
                .kill_container(&watched.name, None::<bollard::query_parameters::KillContainerOptions>)
                .await;
            remove(runtime, &watched.name).await;
            agent.report_launch_failed(&task_id, format!("Failed to launch container: {message}"));
            return;
        }
    };
    let logs = tokio::spawn(copy_output(
        docker.clone(),
        watched.name.clone(),
        watched.sandbox.clone(),
        watched.since,
    ));
    if !recovered {
        agent.report(&task_id, TaskState::Running, None, None);
    }
    let mut health = watched.health_check.as_ref().and_then(|check| {
        health::spawn(
            check,
            CheckTarget::Container {
                docker: docker.clone(),
                name: watched.name.clone(),
            },
        )
    });
    let mut wait = docker.wait_container(
        &watched.name,
        Some(WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    let (mut killed, mut killed_by_health_check, mut kill_open) = (false, false, true);
    let stop = |docker: Docker, name: String, grace: Duration| {
        tokio::spawn(async move {
            let seconds = i32::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i32::MAX);
            let options = StopContainerOptions {
                t: Some(seconds),
                signal: None,
            };
            if let Err(e) = docker.stop_container(&name, Some(options)).await {
                tracing::warn!(container = %name, error = %e, "stopping a task container");
            }
        })
    };
    let exit_code = loop {
        tokio::select! {
            // Cancel-safe: the wait stream is polled by reference and kept across iterations.
            waited = wait.next() => break match waited {
                Some(Ok(response)) => Some(response.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
                Some(Err(e)) => {
                    tracing::warn!(container = %watched.name, error = %e, "waiting for a task container");
                    inspect_exit_code(&docker, &watched.name).await
                }
                None => inspect_exit_code(&docker, &watched.name).await,
            },
            // Cancel-safe: a oneshot receiver polled by reference; it fires once.
            asked = &mut kill, if kill_open && !killed => {
                if asked.is_err() {
                    // The record was dropped (agent shutting down): leave the container running.
                    kill_open = false;
                    continue;
                }
                killed = true;
                if killing_state {
                    agent.report(&task_id, TaskState::Killing, None, None);
                }
                stop(docker.clone(), watched.name.clone(), watched.grace);
            }
            // Cancel-safe: an mpsc receiver loses nothing when a recv is dropped.
            event = async { health.as_mut()?.recv().await }, if health.is_some() => match event {
                Some(HealthEvent::Healthy(healthy)) => {
                    agent.report_health(&task_id, healthy);
                }
                Some(HealthEvent::Kill) if !killed => {
                    killed = true;
                    killed_by_health_check = true;
                    if killing_state {
                        agent.report(&task_id, TaskState::Killing, None, None);
                    }
                    stop(docker.clone(), watched.name.clone(), watched.grace);
                }
                Some(HealthEvent::Kill) => {}
                None => health = None,
            },
        }
    };
    drop(health);
    // The output ends with the container; give the copy a moment to write its last lines.
    let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
    let code = exit_code.unwrap_or(-1);
    let message = match exit_code {
        Some(code) => format!("Container exited with status {code}"),
        None => "Failed to get exit status of container".to_owned(),
    };
    let state = if killed {
        TaskState::Killed
    } else if code == 0 {
        TaskState::Finished
    } else {
        TaskState::Failed
    };
    remove(runtime, &watched.name).await;
    agent.report_status(
        &task_id,
        state,
        Some(message),
        None,
        killed_by_health_check.then_some(false),
        "SOURCE_EXECUTOR",
    );
}

async fn inspect_exit_code(docker: &Docker, name: &str) -> Option<i64> {
    let inspected = docker.inspect_container(name, None::<InspectContainerOptions>).await.ok()?;
    inspected.state?.exit_code
}

/// Relays the task's host ports to the container's address on its network.
async fn start_forwarders(agent: &Agent, docker: &Docker, watched: &Watched) -> Result<Vec<Forwarder>, String> {
    let Some(network) = &watched.network else {
        return Ok(Vec::new());
    };
    if watched.forwards.is_empty() {
        return Ok(Vec::new());
    }
    let inspected = docker
        .inspect_container(&watched.name, None::<InspectContainerOptions>)
        .await
        .map_err(|e| format!("inspecting {}: {}", watched.name, engine_message(&e)))?;
    let ip: Ipv4Addr = inspected
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|networks| networks.get(network).cloned())
        .and_then(|endpoint| endpoint.ip_address)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| format!("container {} has no IPv4 address on the Docker network {network:?}", watched.name))?;
    watched
        .forwards
        .iter()
        .map(|f| {
            Forwarder::start(agent.args.ip, f.host_port, SocketAddr::from((ip, f.container_port))).map_err(|e| {
                format!(
                    "binding the host port {}:{} for container port {}: {e}",
                    agent.args.ip, f.host_port, f.container_port
                )
            })
        })
        .collect()
}

/// Copies the container's stdout and stderr (from `since`) into the sandbox's files.
async fn copy_output(docker: Docker, name: String, sandbox: PathBuf, since: i32) {
    let open = |file: &str| {
        let path = sandbox.join(file);
        async move { tokio::fs::OpenOptions::new().create(true).append(true).open(path).await }
    };
    let (Ok(mut stdout), Ok(mut stderr)) = (open("stdout").await, open("stderr").await) else {
        tracing::warn!(container = %name, "opening the sandbox's stdout/stderr");
        return;
    };
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .since(since)
        .build();
    let mut output = docker.logs(&name, Some(options));
    while let Some(Ok(chunk)) = output.next().await {
        let written = match chunk {
            LogOutput::StdErr { message } => stderr.write_all(&message).await,
            LogOutput::StdOut { message } | LogOutput::Console { message } => stdout.write_all(&message).await,
            LogOutput::StdIn { .. } => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
}

async fn remove(runtime: &DockerRuntime, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    if let Err(e) = runtime.docker.remove_container(name, Some(options)).await
        && !matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
    {
        tracing::warn!(container = %name, error = %e, "removing a task container");
    }
}

/// Seconds since the epoch, as Docker's `since` takes them.
fn now_epoch_seconds() -> i32 {
    i32::try_from(v1::now_seconds() as i64).unwrap_or(i32::MAX)
}

/// A restarted agent takes back the Docker tasks it checkpointed whose containers still exist
/// (running or not), and removes every other container labelled with its name (and its
/// `--docker_task_labels`) when `--docker_kill_orphans` says so. Returns the ids of the tasks it took back.
pub async fn recover(agent: &Arc<Agent>, checkpoints: &[TaskCheckpoint]) -> anyhow::Result<BTreeSet<String>> {
    let Some(runtime) = agent.docker.as_ref() else {
        return Ok(BTreeSet::new());
    };
    // Its own name, and every extra label it puts on its containers (in the sim, the cluster
    // and node): never another cluster's containers, even under the same hostname.
    let mut labels = vec![format!("{AGENT_LABEL}={}", agent.hostname)];
    labels.extend(runtime.task_labels.iter().map(|(key, value)| format!("{key}={value}")));
    let filters: HashMap<String, Vec<String>> = [("label".to_owned(), labels)].into();
    let containers = runtime
        .docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("listing this agent's task containers")?;
    let mut recovered = BTreeSet::new();
    for container in containers {
        let name = container
            .names
            .iter()
            .flatten()
            .next()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        let task_id = container.labels.as_ref().and_then(|l| l.get(TASK_ID_LABEL)).cloned();
        let checkpoint = checkpoints
            .iter()
            .find(|c| c.docker && Some(&c.info.task_id.value) == task_id.as_ref() && options::container_name(&c.container_id) == name);
        match checkpoint {
            Some(checkpoint) => {
                tracing::info!(task = %checkpoint.info.task_id, container = %name, "recovering a task container");
                adopt(agent, runtime, checkpoint, name);
                recovered.insert(checkpoint.info.task_id.value.clone());
            }
            None if runtime.kill_orphans => {
                tracing::info!(container = %name, task = ?task_id, "removing an orphan task container (--docker_kill_orphans)");
                // In the background: re-registering must not wait for a slow removal, or the
                // master may give the agent up in the meantime.
                let agent = agent.clone();
                tokio::spawn(async move {
                    if let Some(runtime) = agent.docker.as_ref() {
                        remove(runtime, &name).await;
                    }
                });
            }
            None => tracing::info!(container = %name, "leaving an orphan task container (--docker_kill_orphans=false)"),
        }
    }
    Ok(recovered)
}

/// Records a recovered task as running (what the master is told on re-registration) and
/// watches its container again.
fn adopt(agent: &Arc<Agent>, runtime: &DockerRuntime, checkpoint: &TaskCheckpoint, name: String) {
    let (kill_tx, kill_rx) = oneshot::channel();
    {
        let mut guard = agent.lock();
        let mut status = TaskStatus::new(checkpoint.info.task_id.clone(), TaskState::Running);
        status.agent_id = guard.agent_id.clone();
        status.source = Some("SOURCE_EXECUTOR".into());
        guard.tasks.insert(
            checkpoint.info.task_id.value.clone(),
            TaskRecord {
                framework_id: checkpoint.framework_id.clone(),
                info: checkpoint.info.clone(),
                sandbox: checkpoint.sandbox.clone(),
                latest: status.clone(),
                delivered: Some(status),
                kill: Some(kill_tx),
                pid: None,
            },
        );
    }
    let container = checkpoint.info.container_info().ok().flatten().unwrap_or_default();
    let forwards = container
        .docker
        .as_ref()
        .filter(|d| d.network != v1::DockerNetwork::Host)
        .map(|d| {
            d.port_mappings
                .iter()
                .filter_map(|m| {
                    Some(options::Forward {
                        host_port: u16::try_from(m.host_port).ok()?,
                        container_port: u16::try_from(m.container_port).ok()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let network = container
        .docker
        .as_ref()
        .filter(|d| d.network != v1::DockerNetwork::Host)
        .map(|d| match d.network {
            v1::DockerNetwork::User => container
                .network_infos
                .iter()
                .find_map(|n| n.name.clone())
                .unwrap_or_else(|| runtime.network.clone()),
            _ => runtime.network.clone(),
        });
    let watched = Watched {
        task_id: checkpoint.info.task_id.value.clone(),
        name,
        sandbox: checkpoint.sandbox.clone(),
        network,
        forwards,
        grace: grace(runtime, &checkpoint.info),
        health_check: checkpoint.info.health_check_info().ok().flatten(),
        since: now_epoch_seconds(),
    };
    tokio::spawn(watch(agent.clone(), watched, kill_rx, false, true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_labels_are_key_value_pairs() {
        assert_eq!(
            parse_labels("paas.task.cluster=c1, paas.task.node=slave-2").unwrap(),
            [
                ("paas.task.cluster".to_owned(), "c1".to_owned()),
                ("paas.task.node".to_owned(), "slave-2".to_owned())
            ]
        );
        assert!(parse_labels("").unwrap().is_empty());
        assert!(parse_labels("novalue").is_err());
    }

    #[test]
    fn an_untagged_image_is_pulled_as_latest() {
        assert_eq!(with_tag("app"), "app:latest");
        assert_eq!(with_tag("registry:5000/team/app"), "registry:5000/team/app:latest");
        assert_eq!(with_tag("app:1"), "app:1");
        assert_eq!(with_tag("app@sha256:abc"), "app@sha256:abc");
    }
}
