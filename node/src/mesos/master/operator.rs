//! The v1 operator API (`POST /api/v1`) in JSON: the calls `include/mesos/v1/master/master.proto`
//! defines, answered with its `Response` shapes for the ones the sim can answer truthfully
//! (GET_HEALTH, GET_FLAGS, GET_VERSION, GET_METRICS, GET_MASTER, GET_STATE, GET_AGENTS,
//! GET_FRAMEWORKS, GET_EXECUTORS, GET_OPERATIONS, GET_TASKS). The request checks follow
//! `Master::Http::api` in `src/master/http.cpp`, in its order; a call the sim does not implement
//! (SUBSCRIBE, reservations, volumes, maintenance, quota, ...) is 501 Not Implemented, as Mesos
//! answers a call it does not handle.

use serde_json::{Value, json};

use super::Master;
use super::cluster::{Agent, Cluster, Framework, OfferRecord, Task};
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, Id};

/// Every `master::Call.Type` of Mesos 1.x.
const CALL_TYPES: [&str; 40] = [
    "UNKNOWN",
    "GET_HEALTH",
    "GET_FLAGS",
    "GET_VERSION",
    "GET_METRICS",
    "GET_LOGGING_LEVEL",
    "SET_LOGGING_LEVEL",
    "LIST_FILES",
    "READ_FILE",
    "GET_STATE",
    "GET_AGENTS",
    "GET_FRAMEWORKS",
    "GET_EXECUTORS",
    "GET_OPERATIONS",
    "GET_TASKS",
    "GET_ROLES",
    "GET_WEIGHTS",
    "UPDATE_WEIGHTS",
    "GET_MASTER",
    "SUBSCRIBE",
    "RESERVE_RESOURCES",
    "UNRESERVE_RESOURCES",
    "CREATE_VOLUMES",
    "DESTROY_VOLUMES",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "GET_MAINTENANCE_STATUS",
    "GET_MAINTENANCE_SCHEDULE",
    "UPDATE_MAINTENANCE_SCHEDULE",
    "START_MAINTENANCE",
    "STOP_MAINTENANCE",
    "DRAIN_AGENT",
    "DEACTIVATE_AGENT",
    "REACTIVATE_AGENT",
    "GET_QUOTA",
    "UPDATE_QUOTA",
    "SET_QUOTA",
    "REMOVE_QUOTA",
    "TEARDOWN",
    "MARK_AGENT_GONE",
];

/// The calls whose message must be present, with its field (from `validation::master::call`).
const REQUIRED_MESSAGE: [(&str, &str); 18] = [
    ("GET_METRICS", "get_metrics"),
    ("SET_LOGGING_LEVEL", "set_logging_level"),
    ("LIST_FILES", "list_files"),
    ("READ_FILE", "read_file"),
    ("UPDATE_WEIGHTS", "update_weights"),
    ("RESERVE_RESOURCES", "reserve_resources"),
    ("UNRESERVE_RESOURCES", "unreserve_resources"),
    ("CREATE_VOLUMES", "create_volumes"),
    ("DESTROY_VOLUMES", "destroy_volumes"),
    ("GROW_VOLUME", "grow_volume"),
    ("SHRINK_VOLUME", "shrink_volume"),
    ("UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule"),
    ("START_MAINTENANCE", "start_maintenance"),
    ("STOP_MAINTENANCE", "stop_maintenance"),
    ("DRAIN_AGENT", "drain_agent"),
    ("DEACTIVATE_AGENT", "deactivate_agent"),
    ("REACTIVATE_AGENT", "reactivate_agent"),
    ("TEARDOWN", "teardown"),
];

/// How the master answers a call: an HTTP status and, for 200, a JSON body; otherwise a text
/// message (empty for a bare status).
#[derive(Debug, PartialEq)]
pub enum Answer {
    Json(Value),
    Error { status: u16, message: String },
}

impl Answer {
    fn error(status: u16, message: impl Into<String>) -> Self {
        Answer::Error {
            status,
            message: message.into(),
        }
    }
}

/// Parses and checks a call's body the way Mesos does; `Ok` holds the call type.
pub fn parse(body: &[u8]) -> Result<(String, Value), Answer> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Answer::error(400, format!("Failed to parse body into JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(Answer::error(
            400,
            "Failed to convert JSON into Call protobuf: Expecting a JSON object",
        ));
    };
    let kind = match object.get("type") {
        None => {
            return Err(Answer::error(
                400,
                "Failed to validate master::Call: Expecting 'type' to be present",
            ));
        }
        Some(Value::String(kind)) if CALL_TYPES.contains(&kind.as_str()) => kind.clone(),
        Some(other) => {
            return Err(Answer::error(
                400,
                format!("Failed to convert JSON into Call protobuf: Failed to find enum for '{other}' in field 'type'"),
            ));
        }
    };
    if let Some((_, field)) = REQUIRED_MESSAGE.iter().find(|(k, _)| *k == kind)
        && !object.get(*field).is_some_and(Value::is_object)
    {
        return Err(Answer::error(
            400,
            format!("Failed to validate master::Call: Expecting '{field}' to be present"),
        ));
    }
    Ok((kind, value))
}

/// `{"nanoseconds": ...}` of a time in seconds since the epoch.
fn time_info(seconds: f64) -> Value {
    json!({ "nanoseconds": (seconds * 1e9) as i64 })
}

/// Answers a parsed call on the leading master.
pub fn answer(master: &Master, cluster: &Cluster, kind: &str) -> Answer {
    let body = match kind {
        "UNKNOWN" => return Answer::error(501, ""),
        "GET_HEALTH" => json!({"type": kind, "get_health": {"healthy": true}}),
        "GET_FLAGS" => {
            let flags = super::state_json::flags(master);
            let flags: Vec<Value> = flags
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            json!({"type": kind, "get_flags": {"flags": flags}})
        }
        "GET_VERSION" => json!({"type": kind, "get_version": {"version_info": {"version": super::MESOS_VERSION}}}),
        "GET_METRICS" => {
            let metrics: Vec<Value> = super::state_json::metrics(master, Some(cluster))
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            json!({"type": kind, "get_metrics": {"metrics": metrics}})
        }
        "GET_MASTER" => json!({"type": kind, "get_master": {
            "master_info": master.info,
            "start_time": master.start_time,
            "elected_time": cluster.elected_time,
        }}),
        "GET_STATE" => json!({"type": kind, "get_state": {
            "get_tasks": get_tasks(cluster),
            "get_executors": get_executors(),
            "get_frameworks": get_frameworks(cluster),
            "get_agents": get_agents(cluster),
        }}),
        "GET_AGENTS" => json!({"type": kind, "get_agents": get_agents(cluster)}),
        "GET_FRAMEWORKS" => json!({"type": kind, "get_frameworks": get_frameworks(cluster)}),
        // Command tasks run under the agent's command executor, which Mesos does not list.
        "GET_EXECUTORS" => json!({"type": kind, "get_executors": get_executors()}),
        // The sim applies no offer operations with ids, so there are none to list.
        "GET_OPERATIONS" => json!({"type": kind, "get_operations": {"operations": []}}),
        "GET_TASKS" => json!({"type": kind, "get_tasks": get_tasks(cluster)}),
        other => return Answer::error(501, format!("{other} is not supported by this master")),
    };
    Answer::Json(body)
}

fn get_executors() -> Value {
    json!({"executors": []})
}

/// `GetAgents`: every registered agent, and the registry's agents that have not come back.
fn get_agents(cluster: &Cluster) -> Value {
    let agents: Vec<Value> = cluster.agents.values().map(|a| agent(cluster, a)).collect();
    let recovered: Vec<Value> = cluster
        .recovered_agents
        .keys()
        .map(|id| json!({"id": {"value": id}, "hostname": ""}))
        .collect();
    json!({"agents": agents, "recovered_agents": recovered})
}

fn agent_info(agent: &Agent) -> Value {
    json!({
        "hostname": agent.hostname,
        "port": agent.address.port,
        "resources": agent.total.to_v1(None),
        "attributes": agent.attributes,
        "id": {"value": agent.id},
    })
}

/// Resources of tasks, each tagged with the role of its framework.
fn allocated<'a>(cluster: &Cluster, tasks: impl Iterator<Item = &'a Task>) -> Vec<v1::Resource> {
    let mut by_role: std::collections::BTreeMap<String, Resources> = Default::default();
    for task in tasks.filter(|t| !t.state.is_terminal()) {
        let role = cluster
            .frameworks
            .get(&task.framework_id)
            .map_or_else(|| "*".to_owned(), |f| f.info.allocation_role());
        let entry = by_role.entry(role).or_default();
        *entry = entry.plus(&task.resources);
    }
    by_role.iter().flat_map(|(role, r)| r.to_v1(Some(role))).collect()
}

fn offers_resources<'a>(cluster: &Cluster, offers: impl Iterator<Item = &'a OfferRecord>) -> Vec<v1::Resource> {
    offers
        .flat_map(|o| {
            let role = cluster
                .frameworks
                .get(&o.framework_id)
                .map_or_else(|| "*".to_owned(), |f| f.info.allocation_role());
            o.resources.to_v1(Some(&role))
        })
        .collect()
}

fn agent(cluster: &Cluster, agent: &Agent) -> Value {
    let tasks = cluster
        .frameworks
        .values()
        .flat_map(|f| f.tasks.values())
        .filter(|t| t.agent_id == agent.id);
    let offers = cluster.offers.values().filter(|o| o.agent_id == agent.id);
    json!({
        "agent_info": agent_info(agent),
        "active": true,
        "deactivated": false,
        "version": super::MESOS_VERSION,
        "pid": format!("slave(1)@{}:{}", agent.address.ip, agent.address.port),
        "registered_time": time_info(agent.registered_time),
        "total_resources": agent.total.to_v1(None),
        "allocated_resources": allocated(cluster, tasks),
        "offered_resources": offers_resources(cluster, offers),
        "capabilities": [],
    })
}

/// `GetFrameworks`: the frameworks the master knows, and the torn-down ones it keeps.
fn get_frameworks(cluster: &Cluster) -> Value {
    let frameworks: Vec<Value> = cluster.frameworks.values().map(|f| framework(cluster, f)).collect();
    let completed: Vec<Value> = cluster.completed_frameworks.iter().map(|f| framework(cluster, f)).collect();
    json!({"frameworks": frameworks, "completed_frameworks": completed})
}

fn offer(cluster: &Cluster, offer: &OfferRecord, role: &str) -> v1::Offer {
    let agent = cluster.agents.get(&offer.agent_id);
    v1::Offer {
        id: Id::new(&offer.id),
        framework_id: Id::new(&offer.framework_id),
        agent_id: Id::new(&offer.agent_id),
        hostname: agent.map(|a| a.hostname.clone()).unwrap_or_default(),
        resources: offer.resources.to_v1(Some(role)),
        attributes: agent.map(|a| a.attributes.clone()).unwrap_or_default(),
        ..v1::Offer::default()
    }
}

fn framework(cluster: &Cluster, framework: &Framework) -> Value {
    let role = framework.info.allocation_role();
    let mut info = framework.info.clone();
    info.id = Some(Id::new(&framework.id));
    let offers: Vec<&OfferRecord> = cluster.offers.values().filter(|o| o.framework_id == framework.id).collect();
    json!({
        "framework_info": info,
        "active": framework.connected() && !framework.suppressed,
        "connected": framework.connected(),
        "recovered": framework.recovered,
        "registered_time": time_info(framework.registered_time),
        "offers": offers.iter().map(|o| offer(cluster, o, &role)).collect::<Vec<_>>(),
        "inverse_offers": [],
        "allocated_resources": allocated(cluster, framework.tasks.values()),
        "offered_resources": offers_resources(cluster, offers.into_iter()),
    })
}

/// `GetTasks`: the tasks of every framework, running and completed.
fn get_tasks(cluster: &Cluster) -> Value {
    let frameworks = || cluster.frameworks.values().chain(cluster.completed_frameworks.iter());
    let tasks: Vec<Value> = frameworks().flat_map(|f| f.tasks.values()).map(|t| task(cluster, t)).collect();
    let completed: Vec<Value> = frameworks()
        .flat_map(|f| f.completed_tasks.iter())
        .map(|t| task(cluster, t))
        .collect();
    json!({
        "pending_tasks": [],
        "tasks": tasks,
        "unreachable_tasks": [],
        "completed_tasks": completed,
        "orphan_tasks": [],
    })
}

/// One `Task` message.
fn task(cluster: &Cluster, task: &Task) -> Value {
    let role = cluster
        .frameworks
        .get(&task.framework_id)
        .map_or_else(|| "*".to_owned(), |f| f.info.allocation_role());
    let mut value = json!({
        "name": task.info.name,
        "task_id": task.info.task_id,
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": task.state.as_str(),
        "resources": task.resources.to_v1(Some(&role)),
        "statuses": task.statuses,
    });
    if let Some(latest) = task.statuses.last() {
        value["status_update_state"] = json!(latest.state.as_str());
        if let Some(uuid) = &latest.uuid {
            value["status_update_uuid"] = json!(uuid);
        }
    }
    for (key, field) in [
        ("labels", task.info.labels.as_ref().map(|l| json!(l))),
        ("discovery", task.info.discovery.clone()),
        ("container", task.info.container.clone()),
        ("health_check", task.info.health_check.clone()),
    ] {
        if let Some(field) = field {
            value[key] = field;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(result: Result<(String, Value), Answer>) -> (u16, String) {
        match result {
            Ok((kind, _)) => (200, kind),
            Err(Answer::Error { status, message }) => (status, message),
            Err(Answer::Json(_)) => unreachable!(),
        }
    }

    #[test]
    fn calls_are_checked_as_mesos_checks_them() {
        assert_eq!(status_of(parse(br#"{"type":"GET_HEALTH"}"#)), (200, "GET_HEALTH".into()));
        let (status, message) = status_of(parse(b"{not json"));
        assert_eq!(status, 400);
        assert!(message.starts_with("Failed to parse body into JSON: "), "{message}");
        let (status, message) = status_of(parse(br#"{"type":"GET_EVERYTHING"}"#));
        assert_eq!(status, 400);
        assert!(message.starts_with("Failed to convert JSON into Call protobuf: "), "{message}");
        assert!(message.contains("GET_EVERYTHING"), "{message}");
        assert_eq!(
            status_of(parse(b"{}")),
            (400, "Failed to validate master::Call: Expecting 'type' to be present".into())
        );
        assert_eq!(
            status_of(parse(br#"{"type":"GET_METRICS"}"#)),
            (400, "Failed to validate master::Call: Expecting 'get_metrics' to be present".into())
        );
        assert_eq!(
            status_of(parse(br#"{"type":"GET_METRICS","get_metrics":{}}"#)),
            (200, "GET_METRICS".into())
        );
        assert_eq!(status_of(parse(b"[]")).0, 400);
    }
}
