//! What the leading Marathon knows: apps, tasks and their health, and how they render as
//! Marathon's JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::app::AppSpec;
use crate::mesos::v1::TaskState;

/// A point in time as Marathon prints it: `2015-04-06T23:45:12.345Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An app and what the scheduler remembers about it.
#[derive(Debug, Clone)]
pub struct App {
    pub definition: Map<String, Value>,
    pub spec: AppSpec,
    pub version: String,
    /// Consecutive task failures since the last task that became healthy or ran a while.
    pub failures: u32,
    /// No launch before this (backoff after failures).
    pub delayed_until: Option<Instant>,
    pub last_task_failure: Option<Value>,
    /// Set while the app's tasks do not yet match its definition after an API change.
    pub deployment: Option<String>,
    /// Tasks of older versions to replace (restart or definition change).
    pub replacing: bool,
}

impl App {
    /// The delay before the next launch after `failures` failures.
    pub fn backoff(&self) -> Duration {
        let secs = self.spec.backoff_secs * self.spec.backoff_factor.powi(self.failures.saturating_sub(1) as i32);
        Duration::from_secs_f64(secs.clamp(0.0, self.spec.max_launch_delay_secs.max(0.0)))
    }
}

/// The result of one health check of a task.
#[derive(Debug, Clone, Default)]
pub struct HealthResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    pub first_success: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    pub last_failure: Option<SystemTime>,
    pub last_failure_cause: Option<String>,
    /// Whether any check has answered yet.
    pub checked: bool,
}

/// A task Marathon launched.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub host: String,
    pub ports: Vec<u64>,
    pub version: String,
    pub state: TaskState,
    pub staged_at: SystemTime,
    pub started_at: Option<SystemTime>,
    /// When it became TASK_RUNNING here (health grace counts from it).
    pub running_since: Option<Instant>,
    pub health: Vec<HealthResult>,
    /// Asked to die: no longer counted towards the app's instances.
    pub killing: bool,
}

impl Task {
    pub fn is_active(&self) -> bool {
        !self.killing && !self.state.is_terminal()
    }

    /// Healthy when every health check's last result was a success (and there is at least one).
    pub fn healthy(&self) -> Option<bool> {
        if self.health.is_empty() {
            return None;
        }
        Some(self.health.iter().all(|h| h.checked && h.alive))
    }

    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self
            .health
            .iter()
            .filter(|h| h.checked)
            .map(|h| {
                json!({
                    "alive": h.alive,
                    "consecutiveFailures": h.consecutive_failures,
                    "firstSuccess": h.first_success.map(timestamp),
                    "lastSuccess": h.last_success.map(timestamp),
                    "lastFailure": h.last_failure.map(timestamp),
                    "lastFailureCause": h.last_failure_cause,
                    "taskId": self.id,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "appId": self.app_id,
            "host": self.host,
            "slaveId": self.agent_id,
            "agentId": self.agent_id,
            "ports": self.ports,
            "servicePorts": [],
            "ipAddresses": [{ "ipAddress": self.host, "protocol": "IPv4" }],
            "state": self.state.as_str(),
            "stagedAt": timestamp(self.staged_at),
            "startedAt": self.started_at.map(timestamp),
            "version": self.version,
            "healthCheckResults": results,
        })
    }
}

/// The leader's whole view.
#[derive(Debug, Default)]
pub struct World {
    pub apps: BTreeMap<String, App>,
    pub tasks: BTreeMap<String, Task>,
}

impl World {
    pub fn tasks_of<'a>(&'a self, app_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.values().filter(move |t| t.app_id == app_id)
    }

    /// `{"app"}` JSON with the counts, and tasks/deployments/lastTaskFailure if `embed` asks.
    pub fn app_json(&self, app: &App, embed_tasks: bool) -> Value {
        let mut out = app.definition.clone();
        let tasks: Vec<&Task> = self.tasks_of(&app.spec.id).filter(|t| !t.state.is_terminal()).collect();
        let running = tasks.iter().filter(|t| t.state == TaskState::Running).count();
        let healthy = tasks.iter().filter(|t| t.healthy() == Some(true)).count();
        let unhealthy = tasks.iter().filter(|t| t.healthy() == Some(false)).count();
        out.insert("id".into(), json!(app.spec.id));
        out.insert("instances".into(), json!(app.spec.instances));
        out.insert("version".into(), json!(app.version));
        out.insert("tasksRunning".into(), json!(running));
        out.insert("tasksStaged".into(), json!(tasks.len() - running));
        out.insert("tasksHealthy".into(), json!(healthy));
        out.insert("tasksUnhealthy".into(), json!(unhealthy));
        out.insert(
            "deployments".into(),
            json!(app.deployment.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>()),
        );
        if let Some(failure) = &app.last_task_failure {
            out.insert("lastTaskFailure".into(), failure.clone());
        }
        if embed_tasks {
            out.insert("tasks".into(), json!(tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>()));
        }
        Value::Object(out)
    }

    /// Whether an app's tasks match its definition: enough running (and healthy, if checked),
    /// none too many, none of an older version.
    pub fn converged(&self, app: &App) -> bool {
        let active: Vec<&Task> = self.tasks_of(&app.spec.id).filter(|t| t.is_active()).collect();
        let ready = active
            .iter()
            .filter(|t| {
                t.state == TaskState::Running
                    && t.healthy() != Some(false)
                    && (app.spec.health_checks.is_empty() || t.healthy() == Some(true))
            })
            .count();
        ready as u32 == app.spec.instances && active.len() as u32 == app.spec.instances && active.iter().all(|t| t.version == app.version)
    }

    /// `GET /v2/deployments`.
    pub fn deployments_json(&self) -> Value {
        json!(
            self.apps
                .values()
                .filter_map(|app| app.deployment.as_ref().map(|id| {
                    json!({
                        "id": id,
                        "version": app.version,
                        "affectedApps": [app.spec.id],
                        "steps": [[{ "action": "ScaleApplication", "app": app.spec.id }]],
                        "currentActions": [{ "action": if app.replacing { "RestartApplication" } else { "ScaleApplication" }, "app": app.spec.id }],
                        "currentStep": 1,
                        "totalSteps": 1,
                    })
                }))
                .collect::<Vec<_>>()
        )
    }
}
