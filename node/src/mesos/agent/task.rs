//! Running one task: a sandbox directory, its URIs fetched, its command in its own process group
//! with Mesos' environment, its COMMAND health check, and its end reported as Mesos' command
//! executor reports it. A task with a DOCKER ContainerInfo goes to the docker containerizer.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::checkpoint::{self, TaskCheckpoint};
use super::health::{self, CheckTarget, HealthEvent};
use super::{Agent, TaskRecord};
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, TaskState, TaskStatus};

/// Why a task could not be accepted by the agent.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("task {0} is already running on this agent")]
    Duplicate(String),
    #[error("creating the sandbox {path}")]
    Sandbox {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Sends `signal` to every process of the group led by `pid`.
pub fn signal_group(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Accepts a task: creates its sandbox, records it, and starts running it in the background.
/// Fails when a task with this id is already there or the sandbox cannot be created.
pub fn launch(agent: &Arc<Agent>, framework_id: v1::FrameworkId, info: v1::TaskInfo, killing_state: bool) -> Result<(), LaunchError> {
    let (kill_tx, kill_rx) = oneshot::channel();
    let sandbox = {
        let mut guard = agent.lock();
        let task_id = info.task_id.value.clone();
        if guard.tasks.contains_key(&task_id) {
            return Err(LaunchError::Duplicate(task_id));
        }
        let agent_id = guard.agent_id.clone().unwrap_or_default();
        let sandbox = agent
            .args
            .work_dir
            .join("slaves")
            .join(&agent_id.value)
            .join("frameworks")
            .join(&framework_id.value)
            .join("executors")
            .join(&task_id)
            .join("runs")
            .join(uuid::Uuid::new_v4().to_string());
        std::fs::create_dir_all(&sandbox).map_err(|source| LaunchError::Sandbox {
            path: sandbox.clone(),
            source,
        })?;
        // Empty output files from the start, so /files/read answers before the first line.
        let _ = std::fs::File::create(sandbox.join("stdout"));
        let _ = std::fs::File::create(sandbox.join("stderr"));
        let mut latest = TaskStatus::new(info.task_id.clone(), TaskState::Staging);
        latest.agent_id = Some(agent_id);
        guard.tasks.insert(
            task_id,
            TaskRecord {
                framework_id: framework_id.clone(),
                info: info.clone(),
                sandbox: sandbox.clone(),
                latest,
                delivered: None,
                kill: Some(kill_tx),
                pid: None,
            },
        );
        sandbox
    };
    tokio::spawn(run(agent.clone(), framework_id, info, sandbox, kill_rx, killing_state));
    Ok(())
}

/// The environment Mesos gives a task: `HOST`, `MESOS_*`, `PORTS`, `PORT`, `PORT0..n` and
/// `PORT_<n>` for each of the task's ports. With a sandbox (a command task), also the sandbox
/// variables and then the task's own variables; a Docker task gets its own variables from the
/// container plan.
pub(super) fn environment(
    agent: &Agent,
    framework_id: &v1::FrameworkId,
    info: &v1::TaskInfo,
    sandbox: Option<&std::path::Path>,
) -> Vec<(String, String)> {
    let ports: Vec<u64> = Resources::from_v1(&info.resources).range_set("ports").values().collect();
    let mut env = vec![
        ("HOST".to_owned(), agent.hostname.clone()),
        ("MESOS_TASK_ID".to_owned(), info.task_id.value.clone()),
        ("MESOS_FRAMEWORK_ID".to_owned(), framework_id.value.clone()),
        ("MESOS_AGENT_ID".to_owned(), super::agent_id_or_default(agent).value),
        ("PORTS".to_owned(), ports.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
    ];
    if let Some(first) = ports.first() {
        env.push(("PORT".to_owned(), first.to_string()));
    }
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.to_string()));
        env.push((format!("PORT_{port}"), port.to_string()));
    }
    let Some(sandbox) = sandbox else {
        return env;
    };
    env.push(("MESOS_SANDBOX".to_owned(), sandbox.display().to_string()));
    env.push(("MESOS_DIRECTORY".to_owned(), sandbox.display().to_string()));
    let variables = info
        .command
        .iter()
        .flat_map(|c| c.environment.iter())
        .flat_map(|e| e.variables.iter());
    for variable in variables {
        env.push((variable.name.clone(), variable.value.clone().unwrap_or_default()));
    }
    env
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => format!("Command terminated with signal {}", signal_name(signal)),
        _ => "Command ended".to_owned(),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGTERM => "Terminated".to_owned(),
        libc::SIGKILL => "Killed".to_owned(),
        libc::SIGINT => "Interrupt".to_owned(),
        libc::SIGSEGV => "Segmentation fault".to_owned(),
        other => format!("{other}"),
    }
}

async fn run(
    agent: Arc<Agent>,
    framework_id: v1::FrameworkId,
    info: v1::TaskInfo,
    sandbox: PathBuf,
    mut kill: oneshot::Receiver<()>,
    killing_state: bool,
) {
    let task_id = info.task_id.value.clone();
    match info.container_info() {
        Ok(Some(container)) if container.kind == v1::ContainerType::Docker => {
            if agent.docker.is_some() {
                super::docker::launch(agent, framework_id, info, container, sandbox, kill, killing_state).await;
            } else {
                // As Mesos' agent when no containerizer takes the launch.
                let message = format!(
                    "None of the enabled containerizers ({}) could create a container for the provided TaskInfo/ExecutorInfo message",
                    agent.args.containerizers
                );
                agent.report_launch_failed(&task_id, message);
            }
            return;
        }
        Ok(_) => {}
        Err(e) => {
            let message = format!("Failed to launch container: the task's ContainerInfo is invalid: {e}");
            agent.report_launch_failed(&task_id, message);
            return;
        }
    }
    agent.report(&task_id, TaskState::Starting, None, None);
    let command = info.command.clone().unwrap_or_default();

    let killed = "Killed before the command started";
    let Some(fetched) = agent
        .fetch_unless_killed(&task_id, &command.uris, &sandbox, &mut kill, killed)
        .await
    else {
        return;
    };
    if let Err(e) = fetched {
        let message = format!("Failed to fetch all URIs for container: {e}");
        agent.report(&task_id, TaskState::Failed, Some(message), Some("REASON_CONTAINER_LAUNCH_FAILED"));
        return;
    }

    let shell = command.shell.unwrap_or(true);
    let value = command.value.clone().unwrap_or_default();
    let mut process = if shell {
        let mut process = tokio::process::Command::new("/bin/sh");
        process.arg("-c").arg(&value);
        process
    } else {
        let mut process = tokio::process::Command::new(&value);
        // As in Mesos, `arguments` is the whole argv, its first item being argv[0].
        process.args(command.arguments.iter().skip(1));
        process
    };
    let append = |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(sandbox.join(name));
    let (stdout, stderr) = (append("stdout"), append("stderr"));
    let (Ok(stdout), Ok(stderr)) = (stdout, stderr) else {
        agent.report(
            &task_id,
            TaskState::Failed,
            Some("Failed to create stdout/stderr in the sandbox".into()),
            Some("REASON_CONTAINER_LAUNCH_FAILED"),
        );
        return;
    };
    let env = environment(&agent, &framework_id, &info, Some(&sandbox));
    process
        .current_dir(&sandbox)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    // SAFETY: prctl is async-signal-safe and only sets a flag of the child process. The task
    // dies with the agent process, so a killed agent leaves no stray task behind (the sim has no
    // agent recovery).
    unsafe {
        process.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(e) => {
            let message = format!("Failed to launch the command: {e}");
            agent.report(&task_id, TaskState::Failed, Some(message), Some("REASON_CONTAINER_LAUNCH_FAILED"));
            return;
        }
    };
    let pid = child.id().unwrap_or_default();
    if let Some(record) = agent.lock().tasks.get_mut(&task_id) {
        record.pid = Some(pid);
    }
    let checkpointed = checkpoint::save_task(
        &agent.args.work_dir,
        &TaskCheckpoint {
            framework_id: framework_id.clone(),
            info: info.clone(),
            sandbox: sandbox.clone(),
            container_id: sandbox.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            docker: false,
        },
    );
    if let Err(e) = checkpointed {
        tracing::warn!(task = %task_id, error = %format!("{e:#}"), "checkpointing a task; a restarted agent will not report it");
    }
    agent.report(&task_id, TaskState::Running, None, None);
    let mut health = info
        .health_check_info()
        .ok()
        .flatten()
        .and_then(|check| health::spawn(&check, CheckTarget::Sandbox { dir: sandbox.clone(), env }));

    // The task's kill policy (Marathon's taskKillGracePeriodSeconds), else the agent's default.
    let grace: Duration = info
        .kill_policy
        .as_ref()
        .and_then(|p| p.grace_period)
        .map_or(agent.args.executor_shutdown_grace_period, v1::DurationInfo::to_std);
    // A failing health check kills the task as a kill request does.
    let mut killed_by_health_check = false;
    let health_kill = async {
        while let Some(event) = match health.as_mut() {
            Some(events) => events.recv().await,
            None => std::future::pending().await,
        } {
            match event {
                HealthEvent::Healthy(healthy) => agent.report_health(&task_id, healthy),
                HealthEvent::Kill => return,
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        // Cancel-safe: the health checker's events are only consumed here.
        () = health_kill => {
            killed_by_health_check = true;
        }
        // Cancel-safe: a oneshot receiver polled by reference.
        _ = &mut kill => {}
        // Cancel-safe: waiting on a child is cancel-safe; it is waited again below if killed.
        status = child.wait() => {
            // Whatever the command left running in its group goes with it.
            signal_group(pid, libc::SIGKILL);
            let (state, reason) = match &status {
                Ok(status) if status.success() => (TaskState::Finished, None),
                _ => (TaskState::Failed, Some("REASON_COMMAND_EXECUTOR_FAILED")),
            };
            let message = match status {
                Ok(status) => describe_exit(status),
                Err(e) => format!("Failed to wait for the command: {e}"),
            };
            agent.report(&task_id, state, Some(message), reason);
            return;
        }
    }
    if killing_state {
        agent.report(&task_id, TaskState::Killing, None, None);
    }
    signal_group(pid, libc::SIGTERM);
    let ended = tokio::time::timeout(grace, child.wait()).await;
    signal_group(pid, libc::SIGKILL);
    if ended.is_err() {
        let _ = child.wait().await;
    }
    let healthy = killed_by_health_check.then_some(false);
    agent.report_status(
        &task_id,
        TaskState::Killed,
        Some("Command terminated on request".into()),
        None,
        healthy,
        "SOURCE_EXECUTOR",
    );
}
