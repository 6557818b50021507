//! COMMAND health checks, run by the agent beside the task as Mesos' health checker does
//! (`src/checks/health_checker.cpp`): first after `delay_seconds`, then every
//! `interval_seconds`, each bounded by `timeout_seconds`; failures within
//! `grace_period_seconds` of the start count only after a first success; a change of health
//! is reported, and `consecutive_failures` failures in a row kill the task.
//!
//! The command runs inside the task container (`docker exec`) for a Docker task, and in the
//! sandbox with the task's environment for a command task.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::mesos::v1::{CommandInfo, HealthCheck, HealthCheckType};

/// What the checker tells the task's runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// The task's health changed (or was first known).
    Healthy(bool),
    /// The task failed `consecutive_failures` checks in a row: kill it.
    Kill,
}

/// Where a check command runs.
#[derive(Clone)]
pub enum CheckTarget {
    /// `docker exec` in this container.
    Container { docker: Docker, name: String },
    /// A process in the sandbox with the task's environment.
    Sandbox { dir: PathBuf, env: Vec<(String, String)> },
}

/// Starts checking; the returned receiver yields the events, and dropping it stops the
/// checker. `None` for checks this agent does not run (HTTP and TCP checks are Marathon's
/// side in the sim) or without a command.
pub fn spawn(check: &HealthCheck, target: CheckTarget) -> Option<mpsc::Receiver<HealthEvent>> {
    if check.kind != HealthCheckType::Command {
        return None;
    }
    let command = check.command.clone()?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(run(check.clone(), command, target, tx));
    Some(rx)
}

async fn run(check: HealthCheck, command: CommandInfo, target: CheckTarget, events: mpsc::Sender<HealthEvent>) {
    let started = Instant::now();
    let grace = secs(check.grace_period_seconds);
    let interval = secs(check.interval_seconds).max(Duration::from_millis(100));
    let timeout = secs(check.timeout_seconds).max(Duration::from_millis(100));
    tokio::time::sleep(secs(check.delay_seconds)).await;
    let mut reported: Option<bool> = None;
    let mut succeeded_once = false;
    let mut failures = 0u32;
    loop {
        let passed = matches!(tokio::time::timeout(timeout, run_once(&command, &target)).await, Ok(Ok(true)));
        let health = if passed {
            succeeded_once = true;
            failures = 0;
            Some(true)
        } else if !succeeded_once && started.elapsed() < grace {
            None
        } else {
            failures += 1;
            Some(false)
        };
        if let Some(health) = health
            && reported != Some(health)
        {
            reported = Some(health);
            if events.send(HealthEvent::Healthy(health)).await.is_err() {
                return;
            }
        }
        if check.consecutive_failures > 0 && failures >= check.consecutive_failures {
            let _ = events.send(HealthEvent::Kill).await;
            return;
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::from_secs(3600))
}

/// Runs the command once; whether it exited 0.
async fn run_once(command: &CommandInfo, target: &CheckTarget) -> Result<bool, String> {
    let argv: Vec<String> = if command.shell.unwrap_or(true) {
        vec!["/bin/sh".into(), "-c".into(), command.value.clone().unwrap_or_default()]
    } else {
        let mut argv: Vec<String> = command.value.iter().cloned().collect();
        argv.extend(command.arguments.iter().skip(usize::from(command.value.is_some())).cloned());
        argv
    };
    if argv.is_empty() {
        return Err("the health check has no command".into());
    }
    let variables: Vec<(String, String)> = command
        .environment
        .iter()
        .flat_map(|e| e.variables.iter())
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    match target {
        CheckTarget::Container { docker, name } => {
            let exec = docker
                .create_exec(
                    name,
                    CreateExecOptions {
                        cmd: Some(argv),
                        env: Some(variables.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            if let StartExecResults::Attached { mut output, .. } = docker.start_exec(&exec.id, None).await.map_err(|e| e.to_string())? {
                while output.next().await.is_some() {}
            }
            let inspected = docker.inspect_exec(&exec.id).await.map_err(|e| e.to_string())?;
            Ok(inspected.exit_code == Some(0))
        }
        CheckTarget::Sandbox { dir, env } => {
            let status = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(dir)
                .envs(env.iter().cloned())
                .envs(variables)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| e.to_string())?;
            Ok(status.success())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(command: &str, failures: u32) -> HealthCheck {
        HealthCheck {
            command: Some(CommandInfo {
                value: Some(command.into()),
                ..Default::default()
            }),
            delay_seconds: 0.0,
            interval_seconds: 0.1,
            timeout_seconds: 5.0,
            consecutive_failures: failures,
            grace_period_seconds: 0.0,
            ..HealthCheck::default()
        }
    }

    fn sandbox() -> CheckTarget {
        CheckTarget::Sandbox {
            dir: std::env::temp_dir(),
            env: vec![("MARKER".into(), "x".into())],
        }
    }

    #[tokio::test]
    async fn a_passing_check_reports_healthy_once() {
        let mut events = spawn(&check("test \"$MARKER\" = x", 3), sandbox()).unwrap();
        assert_eq!(events.recv().await, Some(HealthEvent::Healthy(true)));
    }

    #[tokio::test]
    async fn failures_in_a_row_report_unhealthy_then_kill() {
        let mut events = spawn(&check("exit 1", 2), sandbox()).unwrap();
        assert_eq!(events.recv().await, Some(HealthEvent::Healthy(false)));
        assert_eq!(events.recv().await, Some(HealthEvent::Kill));
        assert_eq!(events.recv().await, None, "the checker stops after asking for the kill");
    }

    #[test]
    fn http_checks_are_not_run_by_the_agent() {
        let mut http = check("true", 1);
        http.kind = HealthCheckType::Http;
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async { assert!(spawn(&http, sandbox()).is_none()) });
    }
}
