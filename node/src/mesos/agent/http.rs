//! The agent's HTTP endpoints: `/state` like the Mesos agent's, and the master's internal calls.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Agent, TaskRecord, task};
use crate::mesos::protocol::{ACKNOWLEDGE_PATH, AcknowledgeUpdate, KILL_PATH, KillTask, LAUNCH_PATH, LaunchTask};
use crate::mesos::resources::{Resources, attributes_state_json};

type Shared = State<Arc<Agent>>;

/// All routes of the agent: its process' endpoints under `/slave(1)` and at the root (the agent
/// is libprocess' delegate), each also with a trailing slash; `/metrics/snapshot` and
/// `/version` only at the root, as their own processes.
pub fn router(agent: Arc<Agent>) -> Router {
    let mut router = Router::new();
    for (path, handler) in [
        ("/state", get(state)),
        ("/state.json", get(state)),
        ("/health", get(health)),
        ("/flags", get(flags)),
    ] {
        for prefix in ["", "/slave(1)"] {
            router = router
                .route(&format!("{prefix}{path}"), handler.clone())
                .route(&format!("{prefix}{path}/"), handler.clone());
        }
    }
    router
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics/snapshot/", get(metrics_snapshot))
        .route("/version", get(version))
        .route("/version/", get(version))
        .route(LAUNCH_PATH, post(launch))
        .route(KILL_PATH, post(kill))
        .route(ACKNOWLEDGE_PATH, post(acknowledge))
        .merge(super::files::routes())
        .with_state(agent)
}

async fn health() -> StatusCode {
    StatusCode::OK
}

fn flags_json(agent: &Agent) -> Value {
    json!({
        "master": agent.args.master,
        "resources": agent.args.resources,
        "attributes": agent.args.attributes,
        "work_dir": agent.args.work_dir.display().to_string(),
        "port": agent.args.port.to_string(),
        "ip": agent.args.ip.to_string(),
        "hostname": agent.hostname,
        "zk_session_timeout": humantime::format_duration(agent.args.zk_session_timeout).to_string(),
        "executor_shutdown_grace_period": humantime::format_duration(agent.args.executor_shutdown_grace_period).to_string(),
        "containerizers": agent.args.containerizers,
        "docker_socket": agent.args.docker_socket.display().to_string(),
        "docker_kill_orphans": agent.args.docker_kill_orphans.to_string(),
        "docker_stop_timeout": humantime::format_duration(agent.args.docker_stop_timeout).to_string(),
        "docker_network": agent.args.docker_network,
        "docker_host_network": agent.args.docker_host_network,
        "docker_task_labels": agent.args.docker_task_labels,
    })
}

async fn flags(State(agent): Shared) -> Response {
    axum::Json(json!({ "flags": flags_json(&agent) })).into_response()
}

/// `/version`: what Mesos' version process answers (the sim has no build date or commit).
async fn version() -> Response {
    axum::Json(json!({ "version": crate::mesos::master::MESOS_VERSION })).into_response()
}

/// `/metrics/snapshot`: the `slave/*` keys of Mesos' monitoring docs that the sim keeps.
async fn metrics_snapshot(State(agent): Shared) -> Response {
    use crate::mesos::metrics;
    let used = agent.used();
    let mut m = metrics::Snapshot::new();
    {
        let guard = agent.lock();
        let mut set = |key: &str, value: f64| {
            m.insert(format!("slave/{key}"), value);
        };
        set("registered", if guard.registered { 1.0 } else { 0.0 });
        set("uptime_secs", metrics::uptime_secs(agent.start_time));
        let live: Vec<&TaskRecord> = guard.tasks.values().filter(|r| !r.latest.state.is_terminal()).collect();
        for (key, state) in [
            ("tasks_staging", "TASK_STAGING"),
            ("tasks_starting", "TASK_STARTING"),
            ("tasks_running", "TASK_RUNNING"),
            ("tasks_killing", "TASK_KILLING"),
        ] {
            set(key, live.iter().filter(|r| r.latest.state.as_str() == state).count() as f64);
        }
        for (key, state) in [
            ("tasks_finished", "TASK_FINISHED"),
            ("tasks_failed", "TASK_FAILED"),
            ("tasks_killed", "TASK_KILLED"),
            ("tasks_lost", "TASK_LOST"),
            ("tasks_gone", "TASK_GONE"),
        ] {
            set(key, guard.terminal.get(state).copied().unwrap_or(0) as f64);
        }
        let frameworks: std::collections::BTreeSet<&str> = live.iter().map(|r| r.framework_id.value.as_str()).collect();
        set("frameworks_active", frameworks.len() as f64);
        // Each command task runs under an executor of its own.
        set("executors_running", live.len() as f64);
        set("executors_registering", 0.0);
        set("executors_terminating", 0.0);
        set("executors_terminated", guard.terminal.values().sum::<u64>() as f64);
    }
    metrics::resources(&mut m, "slave", &agent.total, &used);
    metrics::system(&mut m);
    axum::Json(m).into_response()
}

fn task_json(record: &TaskRecord, agent_id: &str) -> Value {
    let mut task = json!({
        "id": record.info.task_id.value,
        "name": record.info.name,
        "framework_id": record.framework_id.value,
        "executor_id": "",
        "slave_id": agent_id,
        "state": record.latest.state.as_str(),
        "resources": Resources::from_v1(&record.info.resources).to_state_json(),
        "statuses": [{"state": record.latest.state.as_str(), "timestamp": record.latest.timestamp}],
    });
    if let Some(container) = &record.info.container {
        task["container"] = container.clone();
    }
    task
}

async fn state(State(agent): Shared) -> Response {
    let used = agent.used();
    let guard = agent.lock();
    let agent_id = guard.agent_id.clone().unwrap_or_default().value;
    let mut frameworks: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for record in guard.tasks.values() {
        let executor = json!({
            "id": record.info.task_id.value,
            "name": format!("Command Executor (Task: {})", record.info.task_id.value),
            "source": record.info.task_id.value,
            "directory": record.sandbox.display().to_string(),
            // Mesos' container id: the sandbox's run (a Docker task's container is mesos-<id>).
            "container": record.sandbox.file_name().map(|n| n.to_string_lossy().into_owned()),
            "tasks": [task_json(record, &agent_id)],
            "completed_tasks": [],
        });
        frameworks.entry(record.framework_id.value.clone()).or_default().push(executor);
    }
    let completed: Vec<Value> = guard.completed.iter().map(|r| task_json(r, &agent_id)).collect();
    let body = json!({
        "version": crate::mesos::master::MESOS_VERSION,
        "id": agent_id,
        "pid": format!("slave(1)@{}:{}", agent.args.ip, agent.args.port),
        "hostname": agent.hostname,
        "resources": agent.total.to_state_json(),
        "used_resources": used.to_state_json(),
        "attributes": attributes_state_json(&agent.attributes),
        "master_hostname": guard.master.as_ref().and_then(|m| m.hostname.clone()),
        "flags": flags_json(&agent),
        "frameworks": frameworks
            .into_iter()
            .map(|(id, executors)| json!({"id": id, "executors": executors, "completed_executors": []}))
            .collect::<Vec<_>>(),
        "completed_frameworks": [],
        "completed_tasks": completed,
    });
    axum::Json(body).into_response()
}

async fn launch(State(agent): Shared, body: Bytes) -> Response {
    let request: LaunchTask = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed launch: {e}")).into_response(),
    };
    match task::launch(&agent, request.framework_id, request.task, request.task_killing_state) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e @ task::LaunchError::Duplicate(_)) => (StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}: {:?}", std::error::Error::source(&e)),
        )
            .into_response(),
    }
}

async fn kill(State(agent): Shared, body: Bytes) -> Response {
    let request: KillTask = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed kill: {e}")).into_response(),
    };
    agent.kill(&request.framework_id, &request.task_id);
    StatusCode::ACCEPTED.into_response()
}

async fn acknowledge(State(agent): Shared, body: Bytes) -> Response {
    let request: AcknowledgeUpdate = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed acknowledgement: {e}")).into_response(),
    };
    agent.acknowledged(&request.task_id, &request.uuid);
    StatusCode::ACCEPTED.into_response()
}
