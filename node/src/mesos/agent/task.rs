//! Running one task: a sandbox directory, its URIs fetched, its command in its own process group
//! with Mesos' environment, and its end reported as Mesos' command executor reports it.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Agent, TaskRecord, fetcher};
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

/// The environment Mesos gives a command task, then the task's own variables.
fn environment(agent: &Agent, framework_id: &v1::FrameworkId, info: &v1::TaskInfo, sandbox: &std::path::Path) -> Vec<(String, String)> {
    let ports: Vec<u64> = Resources::from_v1(&info.resources).range_set("ports").values().collect();
    let mut env = vec![
        ("HOST".to_owned(), agent.hostname.clone()),
        ("MESOS_TASK_ID".to_owned(), info.task_id.value.clone()),
        ("MESOS_SANDBOX".to_owned(), sandbox.display().to_string()),
        ("MESOS_DIRECTORY".to_owned(), sandbox.display().to_string()),
        ("MESOS_FRAMEWORK_ID".to_owned(), framework_id.value.clone()),
        ("MESOS_AGENT_ID".to_owned(), super::agent_id_or_default(agent).value),
        ("PORTS".to_owned(), ports.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
    ];
    if let Some(first) = ports.first() {
        env.push(("PORT".to_owned(), first.to_string()));
    }
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.to_string()));
    }
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
    agent.report(&task_id, TaskState::Starting, None, None);
    let command = info.command.clone().unwrap_or_default();

    let fetched = tokio::select! {
        // Cancel-safe: fetching is abandoned with the task; the sandbox stays for inspection.
        fetched = fetcher::fetch_all(&agent.http, &command.uris, &sandbox) => fetched,
        // Cancel-safe: a oneshot receiver polled by reference.
        _ = &mut kill => {
            agent.report(&task_id, TaskState::Killed, Some("Killed before the command started".into()), Some("REASON_TASK_KILLED_DURING_LAUNCH"));
            return;
        }
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
    let stdout = std::fs::File::create(sandbox.join("stdout"));
    let stderr = std::fs::File::create(sandbox.join("stderr"));
    let (Ok(stdout), Ok(stderr)) = (stdout, stderr) else {
        agent.report(
            &task_id,
            TaskState::Failed,
            Some("Failed to create stdout/stderr in the sandbox".into()),
            Some("REASON_CONTAINER_LAUNCH_FAILED"),
        );
        return;
    };
    process
        .current_dir(&sandbox)
        .envs(environment(&agent, &framework_id, &info, &sandbox))
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
    agent.report(&task_id, TaskState::Running, None, None);

    let grace = agent.args.executor_shutdown_grace_period;
    tokio::select! {
        // Cancel-safe: waiting on a child is cancel-safe; it is waited again below if killed.
        status = child.wait() => {
            // Whatever the command left running in its group goes with it.
            signal_group(pid, libc::SIGKILL);
            match status {
                Ok(status) if status.success() => {
                    agent.report(&task_id, TaskState::Finished, Some(describe_exit(status)), None);
                }
                Ok(status) => {
                    agent.report(&task_id, TaskState::Failed, Some(describe_exit(status)), Some("REASON_COMMAND_EXECUTOR_FAILED"));
                }
                Err(e) => {
                    agent.report(&task_id, TaskState::Failed, Some(format!("Failed to wait for the command: {e}")), Some("REASON_COMMAND_EXECUTOR_FAILED"));
                }
            }
        }
        // Cancel-safe: a oneshot receiver polled by reference.
        _ = &mut kill => {
            if killing_state {
                agent.report(&task_id, TaskState::Killing, None, None);
            }
            signal_group(pid, libc::SIGTERM);
            let ended = tokio::time::timeout(grace, child.wait()).await;
            signal_group(pid, libc::SIGKILL);
            if ended.is_err() {
                let _ = child.wait().await;
            }
            agent.report(&task_id, TaskState::Killed, Some("Command terminated on request".into()), None);
        }
    }
}
