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

/// All routes of the agent.
pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/slave(1)/state", get(state))
        .route("/slave(1)/state.json", get(state))
        .route("/health", get(health))
        .route("/slave(1)/health", get(health))
        .route(LAUNCH_PATH, post(launch))
        .route(KILL_PATH, post(kill))
        .route(ACKNOWLEDGE_PATH, post(acknowledge))
        .with_state(agent)
}

async fn health() -> StatusCode {
    StatusCode::OK
}

fn task_json(record: &TaskRecord, agent_id: &str) -> Value {
    json!({
        "id": record.info.task_id.value,
        "name": record.info.name,
        "framework_id": record.framework_id.value,
        "executor_id": "",
        "slave_id": agent_id,
        "state": record.latest.state.as_str(),
        "resources": Resources::from_v1(&record.info.resources).to_state_json(),
        "statuses": [{"state": record.latest.state.as_str(), "timestamp": record.latest.timestamp}],
    })
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
        "flags": {
            "master": agent.args.master,
            "resources": agent.args.resources,
            "attributes": agent.args.attributes,
            "work_dir": agent.args.work_dir.display().to_string(),
            "port": agent.args.port.to_string(),
        },
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
