//! The JSON of `/master/state`, `/master/state-summary`, `/master/slaves`, `/master/tasks`,
//! `/master/frameworks`, `/master/flags` and `/metrics/snapshot`, in the shape Mesos gives them
//! (`docs/endpoints/master/state.md`, `src/master/readonly_handler.cpp`), for the fields the sim
//! fills. Every framework of the sim speaks the HTTP API, so none has a `pid` (Mesos omits it
//! for HTTP frameworks).

use serde_json::{Value, json};

use super::Master;
use super::cluster::{Agent, Cluster, Framework, Task};
use crate::mesos::resources::attributes_state_json;

fn pid(master: &Master) -> String {
    master.info.pid.clone().unwrap_or_default()
}

fn leader_pid(master: &Master) -> Option<String> {
    master.leader.borrow().as_ref().and_then(|l| l.pid.clone())
}

/// One agent as `slaves[]` shows it.
pub fn agent_json(cluster: &Cluster, agent: &Agent) -> Value {
    let used = cluster.used_on(&agent.id);
    let offered = cluster.offered_on(&agent.id);
    json!({
        "id": agent.id,
        "pid": format!("slave(1)@{}:{}", agent.address.ip, agent.address.port),
        "hostname": agent.hostname,
        "port": agent.address.port,
        "registered_time": agent.registered_time,
        "resources": agent.total.to_state_json(),
        "used_resources": used.to_state_json(),
        "offered_resources": offered.to_state_json(),
        "reserved_resources": {},
        "unreserved_resources": agent.total.to_state_json(),
        "attributes": attributes_state_json(&agent.attributes),
        "active": true,
        "version": super::MESOS_VERSION,
    })
}

/// One task as `tasks[]` shows it.
pub fn task_json(task: &Task, agent_ip: Option<&str>) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            let mut status = json!({
                "state": s.state.as_str(),
                "timestamp": s.timestamp.unwrap_or_default(),
            });
            if let Some(ip) = agent_ip {
                status["container_status"] = json!({
                    "network_infos": [{"ip_addresses": [{"ip_address": ip}]}]
                });
            }
            if let Some(healthy) = s.healthy {
                status["healthy"] = json!(healthy);
            }
            status
        })
        .collect();
    let labels: Vec<Value> = task
        .info
        .labels
        .iter()
        .flat_map(|l| l.labels.iter())
        .map(|l| json!({"key": l.key, "value": l.value}))
        .collect();
    let mut value = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "executor_id": "",
        "slave_id": task.agent_id,
        "state": task.state.as_str(),
        "resources": task.resources.to_state_json(),
        "statuses": statuses,
        "labels": labels,
    });
    if let Some(discovery) = &task.info.discovery {
        value["discovery"] = discovery.clone();
    }
    if let Some(container) = &task.info.container {
        value["container"] = container.clone();
    }
    value
}

fn tasks_json<'a>(cluster: &Cluster, tasks: impl Iterator<Item = &'a Task>) -> Vec<Value> {
    tasks
        .map(|t| {
            let ip = cluster.agents.get(&t.agent_id).map(|a| a.address.ip.as_str());
            task_json(t, ip)
        })
        .collect()
}

/// One framework as `frameworks[]` shows it.
pub fn framework_json(cluster: &Cluster, framework: &Framework) -> Value {
    let offers: Vec<Value> = cluster
        .offers
        .values()
        .filter(|o| o.framework_id == framework.id)
        .map(|o| {
            json!({
                "id": o.id, "framework_id": o.framework_id, "slave_id": o.agent_id,
                "resources": o.resources.to_state_json(),
            })
        })
        .collect();
    let used = cluster.used_by(&framework.id);
    let offered = cluster.offered_to(&framework.id);
    json!({
        "id": framework.id,
        "name": framework.info.name,
        "user": framework.info.user,
        "hostname": framework.info.hostname.clone().unwrap_or_default(),
        "webui_url": framework.info.webui_url.clone().unwrap_or_default(),
        "role": framework.info.allocation_role(),
        "roles": [framework.info.allocation_role()],
        "failover_timeout": framework.info.failover_timeout.unwrap_or(0.0),
        "checkpoint": framework.info.checkpoint.unwrap_or(false),
        "active": framework.connected() && !framework.suppressed,
        "connected": framework.connected(),
        "recovered": framework.recovered,
        "registered_time": framework.registered_time,
        "capabilities": framework.info.capabilities.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        "resources": used.plus(&offered).to_state_json(),
        "used_resources": used.to_state_json(),
        "offered_resources": offered.to_state_json(),
        "tasks": tasks_json(cluster, framework.tasks.values()),
        "unreachable_tasks": [],
        "completed_tasks": tasks_json(cluster, framework.completed_tasks.iter()),
        "offers": offers,
        "executors": [],
    })
}

/// `/master/state`. A master that does not lead shows who leads and nothing else.
pub fn state(master: &Master, cluster: Option<&Cluster>) -> Value {
    let mut state = json!({
        "version": super::MESOS_VERSION,
        "id": master.info.id,
        "pid": pid(master),
        "hostname": master.info.hostname,
        "start_time": master.start_time,
        "activated_slaves": 0,
        "deactivated_slaves": 0,
        "unreachable_slaves": 0,
        "slaves": [],
        "frameworks": [],
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
        "flags": flags(master),
    });
    if let Some(cluster_name) = &master.args.cluster {
        state["cluster"] = json!(cluster_name);
    }
    if let Some(leader) = master.leader.borrow().as_ref() {
        state["leader"] = json!(leader_pid(master).unwrap_or_default());
        state["leader_info"] = serde_json::to_value(leader).unwrap_or_default();
    }
    if let Some(cluster) = cluster {
        state["elected_time"] = json!(cluster.elected_time);
        state["activated_slaves"] = json!(cluster.agents.len());
        state["slaves"] = json!(slaves(cluster));
        state["frameworks"] = json!(frameworks(cluster));
        state["completed_frameworks"] = json!(completed_frameworks(cluster));
    }
    state
}

/// `/master/flags`' `flags` object: every flag by its name, each value a string.
pub fn flags(master: &Master) -> Value {
    let args = &master.args;
    json!({
        "zk": args.zk.to_string(),
        "quorum": args.quorum.to_string(),
        "port": args.port.to_string(),
        "ip": args.ip.to_string(),
        "hostname": master.info.hostname,
        "agent_ping_timeout": humantime::format_duration(args.agent_ping_timeout).to_string(),
        "max_agent_ping_timeouts": args.max_agent_ping_timeouts.to_string(),
        "zk_session_timeout": humantime::format_duration(args.zk_session_timeout).to_string(),
        "allocation_interval": humantime::format_duration(args.allocation_interval).to_string(),
    })
}

/// `slaves[]`.
pub fn slaves(cluster: &Cluster) -> Vec<Value> {
    cluster.agents.values().map(|a| agent_json(cluster, a)).collect()
}

/// `frameworks[]` (subscribed, disconnected within failover, and recovered).
pub fn frameworks(cluster: &Cluster) -> Vec<Value> {
    cluster.frameworks.values().map(|f| framework_json(cluster, f)).collect()
}

/// `completed_frameworks[]`.
pub fn completed_frameworks(cluster: &Cluster) -> Vec<Value> {
    cluster.completed_frameworks.iter().map(|f| framework_json(cluster, f)).collect()
}

/// Mesos' default for `/master/tasks?limit=`.
const TASK_LIMIT: usize = 100;

/// `/master/tasks` with Mesos' query (`src/master/readonly_handler.cpp`): the tasks of every
/// framework, torn-down ones included, optionally of one `framework_id` or one `task_id`,
/// ordered by their first status' time (`order=asc`, else descending), `limit` (default 100)
/// from `offset`. Like Mesos, numbers are C `int`s taken as unsigned (`limit=-1` is all) and an
/// unparseable one is the default.
pub fn tasks(cluster: &Cluster, query: &std::collections::HashMap<String, String>) -> Vec<Value> {
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .and_then(|v| v.trim().parse::<i32>().ok())
            .map_or(default, |v| v as usize)
    };
    let (limit, offset) = (number("limit", TASK_LIMIT), number("offset", 0));
    let ascending = query.get("order").is_some_and(|o| o == "asc");
    let framework_id = query.get("framework_id");
    let task_id = query.get("task_id");
    let mut tasks: Vec<&Task> = cluster
        .frameworks
        .values()
        .chain(cluster.completed_frameworks.iter())
        .filter(|f| framework_id.is_none_or(|id| *id == f.id))
        .flat_map(|f| f.tasks.values().chain(f.completed_tasks.iter()))
        .filter(|t| task_id.is_none_or(|id| *id == t.info.task_id.value))
        .collect();
    let first_time = |t: &Task| t.statuses.first().and_then(|s| s.timestamp).unwrap_or_default();
    tasks.sort_by(|a, b| first_time(a).total_cmp(&first_time(b)));
    if !ascending {
        tasks.reverse();
    }
    let page = tasks.into_iter().skip(offset).take(limit);
    tasks_json(cluster, page)
}

/// Counts of a set of tasks by state, as `/master/state-summary` shows them per agent and per
/// framework.
fn task_state_counts<'a>(tasks: impl Iterator<Item = &'a Task>) -> serde_json::Map<String, Value> {
    const STATES: [&str; 10] = [
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLING",
        "TASK_FINISHED",
        "TASK_KILLED",
        "TASK_FAILED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_UNREACHABLE",
    ];
    let mut counts: std::collections::BTreeMap<&str, u64> = STATES.iter().map(|s| (*s, 0)).collect();
    for task in tasks {
        if let Some(count) = counts.get_mut(task.state.as_str()) {
            *count += 1;
        }
    }
    counts.into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect()
}

/// `/master/state-summary`: agents and frameworks with their task counts by state and which
/// frameworks run on which agents. Completed tasks count too, as Mesos counts the ones it keeps.
pub fn state_summary(master: &Master, cluster: &Cluster) -> Value {
    let all_tasks = || {
        cluster
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values().chain(f.completed_tasks.iter()))
    };
    let slaves: Vec<Value> = cluster
        .agents
        .values()
        .map(|agent| {
            let mut value = agent_json(cluster, agent);
            let object = value.as_object_mut().expect("an object");
            object.extend(task_state_counts(all_tasks().filter(|t| t.agent_id == agent.id)));
            let framework_ids: std::collections::BTreeSet<&str> = all_tasks()
                .filter(|t| t.agent_id == agent.id)
                .map(|t| t.framework_id.as_str())
                .collect();
            object.insert("framework_ids".into(), json!(framework_ids));
            value
        })
        .collect();
    let frameworks: Vec<Value> = cluster
        .frameworks
        .values()
        .map(|framework| {
            let used = cluster.used_by(&framework.id);
            let offered = cluster.offered_to(&framework.id);
            let tasks = || framework.tasks.values().chain(framework.completed_tasks.iter());
            let mut object = serde_json::Map::new();
            object.insert("id".into(), json!(framework.id));
            object.insert("name".into(), json!(framework.info.name));
            object.insert("used_resources".into(), used.to_state_json());
            object.insert("offered_resources".into(), offered.to_state_json());
            object.insert(
                "capabilities".into(),
                json!(framework.info.capabilities.iter().map(|c| c.kind.clone()).collect::<Vec<_>>()),
            );
            object.insert("hostname".into(), json!(framework.info.hostname.clone().unwrap_or_default()));
            object.insert("webui_url".into(), json!(framework.info.webui_url.clone().unwrap_or_default()));
            object.insert("active".into(), json!(framework.connected() && !framework.suppressed));
            object.insert("connected".into(), json!(framework.connected()));
            object.insert("recovered".into(), json!(framework.recovered));
            object.extend(task_state_counts(tasks()));
            let slave_ids: std::collections::BTreeSet<&str> = tasks().map(|t| t.agent_id.as_str()).collect();
            object.insert("slave_ids".into(), json!(slave_ids));
            Value::Object(object)
        })
        .collect();
    let mut summary = json!({
        "hostname": master.info.hostname,
        "slaves": slaves,
        "frameworks": frameworks,
    });
    if let Some(cluster_name) = &master.args.cluster {
        summary["cluster"] = json!(cluster_name);
    }
    summary
}

/// `/metrics/snapshot` of the master. A master that does not lead reports `master/elected` 0
/// and an empty cluster: like a Mesos master before election, it has no agents or frameworks.
pub fn metrics(master: &Master, cluster: Option<&Cluster>) -> crate::mesos::metrics::Snapshot {
    use crate::mesos::metrics;
    use crate::mesos::resources::Resources;
    let mut m = metrics::Snapshot::new();
    let mut set = |key: &str, value: f64| {
        m.insert(format!("master/{key}"), value);
    };
    set("elected", if cluster.is_some() { 1.0 } else { 0.0 });
    set("uptime_secs", metrics::uptime_secs(master.start_time));
    let (mut total, mut used) = (Resources::default(), Resources::default());
    if let Some(cluster) = cluster {
        let agents = cluster.agents.len() as f64;
        // Registered agents are connected and active; a silent one is removed, never kept
        // disconnected or unreachable.
        set("slaves_active", agents);
        set("slaves_connected", agents);
        set("slaves_disconnected", 0.0);
        set("slaves_inactive", 0.0);
        set("slaves_unreachable", 0.0);
        let frameworks = || cluster.frameworks.values();
        let active = frameworks().filter(|f| f.connected() && !f.suppressed).count() as f64;
        let connected = frameworks().filter(|f| f.connected()).count() as f64;
        let all = cluster.frameworks.len() as f64;
        set("frameworks_active", active);
        set("frameworks_inactive", all - active);
        set("frameworks_connected", connected);
        set("frameworks_disconnected", all - connected);
        set("outstanding_offers", cluster.offers.len() as f64);
        let live = |state: &str| {
            frameworks()
                .flat_map(|f| f.tasks.values())
                .filter(|t| t.state.as_str() == state)
                .count() as f64
        };
        for (key, state) in [
            ("tasks_staging", "TASK_STAGING"),
            ("tasks_starting", "TASK_STARTING"),
            ("tasks_running", "TASK_RUNNING"),
            ("tasks_killing", "TASK_KILLING"),
            ("tasks_unreachable", "TASK_UNREACHABLE"),
        ] {
            set(key, live(state));
        }
        let counters = &cluster.counters;
        for (key, state) in [
            ("tasks_finished", "TASK_FINISHED"),
            ("tasks_failed", "TASK_FAILED"),
            ("tasks_killed", "TASK_KILLED"),
            ("tasks_lost", "TASK_LOST"),
            ("tasks_error", "TASK_ERROR"),
            ("tasks_dropped", "TASK_DROPPED"),
            ("tasks_gone", "TASK_GONE"),
            ("tasks_gone_by_operator", "TASK_GONE_BY_OPERATOR"),
        ] {
            set(key, counters.terminal_tasks.get(state).copied().unwrap_or(0) as f64);
        }
        set("slave_registrations", counters.agent_registrations as f64);
        set("slave_reregistrations", counters.agent_reregistrations as f64);
        set("slave_removals", counters.agent_removals as f64);
        m.insert("allocator/mesos/allocation_runs".to_owned(), counters.allocation_runs as f64);
        total = cluster.agents.values().map(|a| a.total.clone()).sum();
        used = cluster.agents.keys().map(|id| cluster.used_on(id)).sum();
    } else {
        for key in [
            "slaves_active",
            "slaves_connected",
            "slaves_disconnected",
            "slaves_inactive",
            "slaves_unreachable",
            "frameworks_active",
            "frameworks_inactive",
            "frameworks_connected",
            "frameworks_disconnected",
            "outstanding_offers",
        ] {
            set(key, 0.0);
        }
    }
    metrics::resources(&mut m, "master", &total, &used);
    metrics::system(&mut m);
    m
}
