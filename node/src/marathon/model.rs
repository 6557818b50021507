//! What the leading Marathon knows: apps, tasks and their health, and how they render as
//! Marathon's JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::app::AppSpec;
use super::wire::{self, AppDefinition, AppInfo, DeploymentRef, TaskFailure, TaskWire, VersionInfo};
use crate::mesos::v1::TaskState;

/// A point in time as Marathon prints it: `2015-04-06T23:45:12.345Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An app and what the scheduler remembers about it.
#[derive(Debug, Clone)]
pub struct App {
    /// The normalized definition, as GET returns it.
    pub definition: AppDefinition,
    pub spec: AppSpec,
    /// The newest version: the later of the last scaling and the last config change.
    pub version: String,
    pub version_info: VersionInfo,
    /// Consecutive task failures since the last task that became healthy or ran a while.
    pub failures: u32,
    /// No launch before this (backoff after failures).
    pub delayed_until: Option<Instant>,
    pub last_task_failure: Option<TaskFailure>,
    /// Set while the app's tasks do not yet match its definition after an API change.
    pub deployment: Option<String>,
    /// Tasks of older versions to replace (restart or definition change).
    pub replacing: bool,
    /// The app before its running deployment began (`None` when that deployment created it):
    /// canceling the deployment returns to it.
    pub before_deployment: Option<Box<App>>,
    /// Offers weighed for this app while it wanted tasks, and how many of them it did not use
    /// (the queue's `processedOffersSummary`).
    pub offers_processed: u64,
    pub offers_unused: u64,
}

impl App {
    /// The delay before the next launch after `failures` failures.
    pub fn backoff(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(10_000) as i32;
        let secs = self.spec.backoff_secs * self.spec.backoff_factor.powi(exponent);
        let capped = if secs.is_finite() { secs } else { self.spec.max_launch_delay_secs };
        Duration::try_from_secs_f64(capped.clamp(0.0, self.spec.max_launch_delay_secs.max(0.0))).unwrap_or(Duration::ZERO)
    }

    /// The version tasks are launched with: a scaling alone does not replace tasks.
    pub fn config_version(&self) -> &str {
        &self.version_info.last_config_change_at
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
    /// When it was last asked to die (`None`: it was not): no longer counted towards the
    /// app's instances, and asked again until Mesos reports it gone.
    pub killing: Option<Instant>,
}

impl Task {
    pub fn is_active(&self) -> bool {
        self.killing.is_none() && !self.state.is_terminal()
    }

    /// Healthy when every health check's last result was a success (and there is at least one).
    pub fn healthy(&self) -> Option<bool> {
        if self.health.is_empty() {
            return None;
        }
        Some(self.health.iter().all(|h| h.checked && h.alive))
    }

    /// The task as Marathon's JSON, with its app's service ports.
    pub fn to_wire(&self, service_ports: &[u64]) -> TaskWire {
        TaskWire {
            id: self.id.clone(),
            app_id: self.app_id.clone(),
            host: self.host.clone(),
            ports: self.ports.clone(),
            service_ports: service_ports.to_vec(),
            slave_id: self.agent_id.clone(),
            state: self.state.as_str().to_owned(),
            staged_at: timestamp(self.staged_at),
            started_at: self.started_at.map(timestamp),
            version: self.version.clone(),
            ip_addresses: vec![wire::IpAddress {
                ip_address: self.host.clone(),
                protocol: "IPv4".into(),
            }],
            health_check_results: self
                .health
                .iter()
                .filter(|h| h.checked)
                .map(|h| wire::HealthCheckResult {
                    alive: h.alive,
                    consecutive_failures: h.consecutive_failures,
                    first_success: h.first_success.map(timestamp),
                    last_failure: h.last_failure.map(timestamp),
                    last_success: h.last_success.map(timestamp),
                    last_failure_cause: h.last_failure_cause.clone(),
                    instance_id: self.id.clone(),
                })
                .collect(),
            role: "*".into(),
        }
    }
}

/// A deleted app whose tasks are still being killed: Marathon's `StopApplication`
/// deployment, which ends (with `app_terminated_event`) once Mesos reports them gone.
#[derive(Debug, Clone)]
pub struct Stopping {
    /// The app as it was, for a rollback.
    pub app: App,
    pub version: String,
    /// Its tasks when it was deleted.
    pub tasks: Vec<String>,
}

/// The leader's whole view.
#[derive(Debug, Default)]
pub struct World {
    pub apps: BTreeMap<String, App>,
    pub tasks: BTreeMap<String, Task>,
    /// Deleted apps' deployments, by deployment id.
    pub stopping: BTreeMap<String, Stopping>,
    /// Groups that were posted (with their dependencies), by id.
    pub groups: BTreeMap<String, super::store::GroupRecord>,
}

impl World {
    pub fn tasks_of<'a>(&'a self, app_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.values().filter(move |t| t.app_id == app_id)
    }

    /// A task as Marathon's JSON.
    pub fn task_json(&self, task: &Task) -> TaskWire {
        let service_ports: Vec<u64> = self.apps.get(&task.app_id).map(|a| a.definition.ports.clone()).unwrap_or_default();
        task.to_wire(&service_ports)
    }

    /// Service ports of every app but `except`.
    pub fn service_ports_taken(&self, except: &str) -> std::collections::BTreeSet<u64> {
        self.apps
            .values()
            .filter(|a| a.spec.id != except)
            .flat_map(|a| a.definition.service_ports())
            .collect()
    }

    /// The app as the API returns it, with the counts, and its tasks if `embed_tasks`.
    pub fn app_json(&self, app: &App, embed_tasks: bool) -> Value {
        let tasks: Vec<&Task> = self.tasks_of(&app.spec.id).filter(|t| !t.state.is_terminal()).collect();
        let running = tasks.iter().filter(|t| t.state == TaskState::Running).count();
        let info = AppInfo {
            definition: &app.definition,
            version: app.version.clone(),
            version_info: app.version_info.clone(),
            tasks_staged: tasks.len() - running,
            tasks_running: running,
            tasks_healthy: tasks.iter().filter(|t| t.healthy() == Some(true)).count(),
            tasks_unhealthy: tasks.iter().filter(|t| t.healthy() == Some(false)).count(),
            deployments: app.deployment.iter().map(|id| DeploymentRef { id: id.clone() }).collect(),
            tasks: embed_tasks.then(|| tasks.iter().map(|t| t.to_wire(&app.definition.ports)).collect()),
            last_task_failure: app.last_task_failure.clone(),
        };
        serde_json::to_value(info).unwrap_or(Value::Null)
    }

    /// Whether an app's tasks match its definition: enough running (and healthy, if checked),
    /// none too many, none of an older version, and none still dying (Marathon's deployment
    /// steps wait until the tasks they kill are reported terminal).
    pub fn converged(&self, app: &App) -> bool {
        if self.tasks_of(&app.spec.id).any(|t| t.killing.is_some()) {
            return false;
        }
        let active: Vec<&Task> = self.tasks_of(&app.spec.id).filter(|t| t.is_active()).collect();
        let ready = active
            .iter()
            .filter(|t| {
                t.state == TaskState::Running
                    && t.healthy() != Some(false)
                    && (app.spec.health_checks.is_empty() || t.healthy() == Some(true))
            })
            .count();
        ready as u32 == app.spec.instances
            && active.len() as u32 == app.spec.instances
            && active.iter().all(|t| t.version == app.config_version())
    }

    /// `GET /v2/deployments`.
    pub fn deployments_json(&self) -> Value {
        let running = self.apps.values().filter_map(|app| {
            let action = if app.replacing { "RestartApplication" } else { "ScaleApplication" };
            app.deployment
                .as_deref()
                .map(|id| (id, app.version.as_str(), action, app.spec.id.as_str()))
        });
        let stopping = self
            .stopping
            .iter()
            .map(|(id, s)| (id.as_str(), s.version.as_str(), "StopApplication", s.app.spec.id.as_str()));
        json!(
            running
                .chain(stopping)
                .map(|(id, version, action, app)| json!({
                    "id": id,
                    "version": version,
                    "affectedApps": [app],
                    "affectedPods": [],
                    "steps": [{ "actions": [{ "action": action, "app": app }] }],
                    "currentActions": [{ "action": action, "app": app, "readinessCheckResults": [] }],
                    "currentStep": 1,
                    "totalSteps": 1,
                }))
                .collect::<Vec<_>>()
        )
    }
}

/// A deployment plan as Marathon's events carry it (`DeploymentPlan` in deploymentPlan.raml):
/// exactly `id`, `steps` and `version`; `affectedApps` belongs to `GET /v2/deployments` only.
/// `step` is the one step's action and app; `None` is a plan with nothing to do.
pub fn event_plan(id: &str, version: &str, step: Option<(&str, &str)>) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = step
        .map(|(action, app)| serde_json::json!({ "actions": [{ "action": action, "app": app }] }))
        .into_iter()
        .collect();
    serde_json::json!({ "id": id, "steps": steps, "version": version })
}
