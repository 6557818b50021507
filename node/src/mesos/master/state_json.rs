//! The JSON of `/master/state`, `/master/slaves`, `/master/tasks` and `/master/frameworks`, in
//! the shape Mesos gives them (`docs/endpoints/master/state.md`), for the fields the sim fills.

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
        "pid": "",
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

fn flags(master: &Master) -> Value {
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

/// `/master/tasks`: every known task, running and completed.
pub fn tasks(cluster: &Cluster) -> Vec<Value> {
    let running = cluster.frameworks.values().flat_map(|f| f.tasks.values());
    let completed = cluster.frameworks.values().flat_map(|f| f.completed_tasks.iter());
    tasks_json(cluster, running.chain(completed))
}
