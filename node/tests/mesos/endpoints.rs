//! The master's and agent's operator endpoints as Mesos tools read them: the root aliases and
//! trailing slashes (the Apache Mesos CLI asks for `/slaves` and `/master/frameworks/`),
//! `/master/state-summary`, `/metrics/snapshot` with true values, no `pid` for HTTP
//! frameworks, the v1 operator API in JSON, and 307 to the leader from the others on a
//! three-master cluster, before and after a failover.

use std::time::Duration;

use paas_node::mesos::v1::TaskState;
use serde_json::{Value, json};

use crate::support::eventually;
use crate::support::framework::{TestFramework, framework_info};
use crate::support::mesos::MesosCluster;

const AGENT: &str = "cpus:2;mem:512;ports:[31000-31010]";

/// GET `url`: the status, the `Location` header and the body as JSON (`Null` when not JSON).
async fn get(cluster: &MesosCluster, url: &str) -> (u16, Option<String>, Value) {
    let response = cluster.http.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, location, body)
}

/// POSTs an operator call to `/api/v1` of `base`: the status and the body (JSON or text).
async fn operator(cluster: &MesosCluster, base: &str, content_type: Option<&str>, body: &str) -> (u16, Option<String>, String) {
    let mut request = cluster.http.post(format!("{base}/api/v1")).body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    let response = request.send().await.expect("POST /api/v1");
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

async fn call(cluster: &MesosCluster, base: &str, kind: &str) -> Value {
    let (status, _, body) = operator(cluster, base, Some("application/json"), &json!({"type": kind}).to_string()).await;
    assert_eq!(status, 200, "{kind}: {body}");
    let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{kind} answered non-JSON {body}: {e}"));
    assert_eq!(value["type"], kind, "{value}");
    value
}

/// A three-master cluster with two agents and a framework running one task.
async fn cluster_with_a_task() -> (MesosCluster, TestFramework, usize) {
    let cluster = MesosCluster::start(3, &[AGENT, AGENT]).await;
    let leader = cluster.leader_index().await.expect("a leader");
    let mut framework = TestFramework::subscribe(&cluster.masters[leader].url(), framework_info("endpoints")).await;
    let offer = framework.offers().await.remove(0);
    framework
        .launch(&offer, &[("web", "cpus:0.5;mem:64;ports:[31000-31000]", "exec sleep 120")])
        .await;
    framework.await_state("web", TaskState::Running).await;
    (cluster, framework, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_endpoints_answer_at_the_root_and_with_trailing_slashes() {
    let (cluster, _framework, leader) = cluster_with_a_task().await;
    let base = cluster.masters[leader].url();

    for path in ["/slaves", "/frameworks", "/tasks", "/state", "/state-summary", "/flags", "/health"] {
        for url in [
            format!("{base}{path}"),
            format!("{base}{path}/"),
            format!("{base}/master{path}"),
            format!("{base}/master{path}/"),
        ] {
            let (status, _, _) = get(&cluster, &url).await;
            assert_eq!(status, 200, "GET {url}");
        }
    }
    for path in ["/version", "/version/", "/metrics/snapshot", "/metrics/snapshot/"] {
        let (status, _, body) = get(&cluster, &format!("{base}{path}")).await;
        assert_eq!(status, 200, "GET {path}");
        assert!(body.is_object(), "{path}: {body}");
    }
    assert_eq!(get(&cluster, &format!("{base}/version")).await.2["version"], "1.11.0");
    assert_eq!(get(&cluster, &format!("{base}/flags")).await.2["flags"]["quorum"], "2");

    // What the Apache Mesos CLI reads: agents' ids, hostnames and pids; frameworks' ids and
    // `active`; tasks with their statuses.
    let slaves = get(&cluster, &format!("{base}/slaves")).await.2;
    let slaves = slaves["slaves"].as_array().expect("slaves[]");
    assert_eq!(slaves.len(), 2);
    for slave in slaves {
        assert!(slave["pid"].as_str().unwrap().starts_with("slave(1)@127.0.0.1:"), "{slave}");
        assert_eq!(slave["active"], true);
    }
    let frameworks = get(&cluster, &format!("{base}/master/frameworks/")).await.2;
    let framework = &frameworks["frameworks"][0];
    assert_eq!(framework["name"], "endpoints");
    assert_eq!(framework["active"], true);
    assert!(framework.get("pid").is_none(), "an HTTP framework has no pid: {framework}");
    let state = get(&cluster, &format!("{base}/state")).await.2;
    assert!(state["frameworks"][0].get("pid").is_none(), "{}", state["frameworks"][0]);
    let tasks = get(&cluster, &format!("{base}/tasks?order=asc&limit=-1")).await.2;
    assert_eq!(tasks["tasks"][0]["id"], "web");
    let framework_id = framework["id"].as_str().unwrap();
    for (query, count) in [
        ("limit=0", 0),
        ("offset=1", 0),
        ("task_id=web", 1),
        ("task_id=other", 0),
        (&format!("framework_id={framework_id}") as &str, 1),
        ("framework_id=other", 0),
    ] {
        let listed = get(&cluster, &format!("{base}/master/tasks?{query}")).await.2;
        assert_eq!(listed["tasks"].as_array().unwrap().len(), count, "/master/tasks?{query}");
    }
    assert_eq!(
        tasks["tasks"][0]["statuses"].as_array().unwrap().last().unwrap()["state"],
        "TASK_RUNNING"
    );

    // state-summary: task counts by state per agent and per framework, and who runs where.
    let summary = get(&cluster, &format!("{base}/master/state-summary")).await.2;
    assert_eq!(summary["hostname"], "127.0.0.1");
    let agent_id = tasks["tasks"][0]["slave_id"].as_str().unwrap().to_owned();
    let framework_id = framework["id"].as_str().unwrap().to_owned();
    for slave in summary["slaves"].as_array().unwrap() {
        let runs_it = slave["id"] == agent_id.as_str();
        assert_eq!(slave["TASK_RUNNING"], if runs_it { 1 } else { 0 }, "{slave}");
        assert_eq!(slave["TASK_FINISHED"], 0);
        let expected: Vec<&str> = if runs_it { vec![&framework_id] } else { vec![] };
        assert_eq!(slave["framework_ids"], json!(expected));
    }
    let summary_framework = &summary["frameworks"][0];
    assert_eq!(summary_framework["TASK_RUNNING"], 1);
    assert_eq!(summary_framework["slave_ids"], json!([agent_id]));
    assert!(summary_framework.get("pid").is_none());

    // Metrics: the leader's counts are the cluster's.
    let metrics = get(&cluster, &format!("{base}/metrics/snapshot")).await.2;
    assert_eq!(metrics["master/elected"], 1.0);
    assert_eq!(metrics["master/slaves_active"], 2.0);
    assert_eq!(metrics["master/slaves_connected"], 2.0);
    assert_eq!(metrics["master/frameworks_active"], 1.0);
    assert_eq!(metrics["master/tasks_running"], 1.0);
    assert_eq!(metrics["master/tasks_staging"], 0.0);
    assert_eq!(metrics["master/cpus_total"], 4.0);
    assert_eq!(metrics["master/cpus_used"], 0.5);
    assert_eq!(metrics["master/cpus_percent"], 0.125);
    assert_eq!(metrics["master/mem_total"], 1024.0);
    assert_eq!(metrics["master/mem_used"], 64.0);
    assert_eq!(metrics["master/slave_registrations"], 2.0);
    assert!(metrics["master/uptime_secs"].as_f64().unwrap() > 0.0);
    assert!(metrics["system/mem_total_bytes"].as_f64().unwrap() > 0.0);
    for (i, master) in cluster.masters.iter().enumerate().filter(|(i, _)| *i != leader) {
        let metrics = get(&cluster, &format!("{}/metrics/snapshot", master.url())).await.2;
        assert_eq!(metrics["master/elected"], 0.0, "master {i}");
        assert_eq!(metrics["master/slaves_active"], 0.0, "master {i}");
    }

    // The agents' metrics.
    for agent in &cluster.agents {
        let state = get(&cluster, &format!("{}/state", agent.url())).await.2;
        let runs_it = state["id"] == agent_id.as_str();
        for path in ["/metrics/snapshot", "/slave(1)/flags/", "/flags", "/state/", "/slave(1)/health"] {
            assert_eq!(get(&cluster, &format!("{}{path}", agent.url())).await.0, 200, "agent {path}");
        }
        let metrics = get(&cluster, &format!("{}/metrics/snapshot", agent.url())).await.2;
        assert_eq!(metrics["slave/registered"], 1.0);
        assert_eq!(metrics["slave/tasks_running"], if runs_it { 1.0 } else { 0.0 });
        assert_eq!(metrics["slave/frameworks_active"], if runs_it { 1.0 } else { 0.0 });
        assert_eq!(metrics["slave/cpus_total"], 2.0);
        assert_eq!(metrics["slave/cpus_used"], if runs_it { 0.5 } else { 0.0 });
        assert_eq!(metrics["slave/mem_total"], 512.0);
        assert!(metrics["slave/uptime_secs"].as_f64().unwrap() > 0.0);
    }
}

/// Checks that master `follower` redirects every leader-only endpoint to master `leader` and
/// answers the others itself.
async fn check_redirects(cluster: &MesosCluster, leader: usize, follower: usize) {
    let base = cluster.masters[follower].url();
    let leader_port = cluster.masters[leader].port;
    for path in [
        "/state",
        "/master/state",
        "/master/state.json",
        "/state-summary",
        "/master/state-summary/",
        "/slaves",
        "/master/slaves",
        "/frameworks",
        "/master/frameworks/",
        "/tasks?limit=10&order=asc",
        "/master/tasks",
        "/",
    ] {
        let (status, location, _) = get(cluster, &format!("{base}{path}")).await;
        assert_eq!(status, 307, "GET {path} on master {follower}");
        assert_eq!(
            location.as_deref(),
            Some(format!("//127.0.0.1:{leader_port}{path}").as_str()),
            "GET {path} on master {follower}"
        );
    }
    let (status, location, _) = operator(cluster, &base, Some("application/json"), r#"{"type":"GET_HEALTH"}"#).await;
    assert_eq!(status, 307);
    assert_eq!(location, Some(format!("//127.0.0.1:{leader_port}/api/v1")));
    // `/redirect` leads to the leader's base URL; a path under it is 404 (Mesos' loop guard).
    for path in ["/redirect", "/master/redirect"] {
        let (status, location, _) = get(cluster, &format!("{base}{path}")).await;
        assert_eq!((status, location), (307, Some(format!("//127.0.0.1:{leader_port}"))), "{path}");
    }
    assert_eq!(get(cluster, &format!("{base}/master/redirect/x")).await.0, 404);
    // What every master answers for itself.
    for path in [
        "/health",
        "/master/health",
        "/flags",
        "/master/flags",
        "/version",
        "/metrics/snapshot",
    ] {
        assert_eq!(
            get(cluster, &format!("{base}{path}")).await.0,
            200,
            "GET {path} on master {follower}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_non_leaders_redirect_leader_only_endpoints_to_the_leader() {
    let mut cluster = MesosCluster::start(3, &[AGENT]).await;
    let leader = cluster.leader_index().await.expect("a leader");

    for follower in (0..3).filter(|&i| i != leader) {
        check_redirects(&cluster, leader, follower).await;
    }
    // The leader's own `/redirect` points at itself.
    let leader_base = cluster.masters[leader].url();
    let (status, location, _) = get(&cluster, &format!("{leader_base}/redirect")).await;
    assert_eq!(
        (status, location),
        (307, Some(format!("//127.0.0.1:{}", cluster.masters[leader].port)))
    );

    // After a failover the survivors redirect to the new leader.
    cluster.masters[leader].process.kill();
    let cluster_ref = &cluster;
    let new_leader = eventually(Duration::from_secs(20), "a new leader", || async move {
        cluster_ref.leader_index().await.filter(|&i| i != leader)
    })
    .await;
    let follower = (0..3).find(|&i| i != leader && i != new_leader).unwrap();
    let new_port = cluster.masters[new_leader].port;
    let base = &cluster.masters[follower].url();
    eventually(Duration::from_secs(20), "the follower to learn the new leader", || async move {
        let (status, location, _) = get(cluster_ref, &format!("{base}/state")).await;
        (status == 307 && location == Some(format!("//127.0.0.1:{new_port}/state"))).then_some(())
    })
    .await;
    check_redirects(&cluster, new_leader, follower).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_operator_api_answers_in_json_with_master_proto_shapes() {
    let (cluster, _framework, leader) = cluster_with_a_task().await;
    let base = cluster.masters[leader].url();

    assert_eq!(call(&cluster, &base, "GET_HEALTH").await["get_health"], json!({"healthy": true}));
    // Mesos routes any `/api/v1/...` but the scheduler's to the operator API, as libprocess
    // hands a path to its longest routed prefix; pymesos' operator driver uses `/api/v1/operator`.
    for path in ["/api/v1/operator", "/master/api/v1/operator", "/master/api/v1"] {
        let response = cluster
            .http
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(r#"{"type":"GET_HEALTH"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "POST {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"type": "GET_HEALTH", "get_health": {"healthy": true}}), "POST {path}");
    }
    let flags = call(&cluster, &base, "GET_FLAGS").await;
    let flags = flags["get_flags"]["flags"].as_array().unwrap();
    assert!(flags.contains(&json!({"name": "quorum", "value": "2"})), "{flags:?}");
    let version = call(&cluster, &base, "GET_VERSION").await;
    assert_eq!(version["get_version"]["version_info"]["version"], "1.11.0");

    let master = call(&cluster, &base, "GET_MASTER").await;
    let info = &master["get_master"]["master_info"];
    assert_eq!(info["port"], cluster.masters[leader].port);
    assert_eq!(info["hostname"], "127.0.0.1");
    assert!(info["id"].is_string());
    assert!(master["get_master"]["elected_time"].as_f64().unwrap() >= master["get_master"]["start_time"].as_f64().unwrap());

    let agents = call(&cluster, &base, "GET_AGENTS").await;
    let agents = agents["get_agents"]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    for agent in agents {
        assert!(agent["agent_info"]["id"]["value"].is_string(), "{agent}");
        assert_eq!(agent["agent_info"]["hostname"], "127.0.0.1");
        assert_eq!(agent["active"], true);
        assert_eq!(agent["version"], "1.11.0");
        assert!(agent["registered_time"]["nanoseconds"].as_i64().unwrap() > 0);
        let cpus = agent["total_resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "cpus")
            .expect("cpus");
        assert_eq!(cpus["type"], "SCALAR");
        assert_eq!(cpus["scalar"]["value"], 2.0);
    }
    let allocated_cpus: f64 = agents
        .iter()
        .flat_map(|a| a["allocated_resources"].as_array().unwrap())
        .filter(|r| r["name"] == "cpus")
        .map(|r| r["scalar"]["value"].as_f64().unwrap())
        .sum();
    assert_eq!(allocated_cpus, 0.5);

    let frameworks = call(&cluster, &base, "GET_FRAMEWORKS").await;
    let framework = &frameworks["get_frameworks"]["frameworks"][0];
    assert_eq!(framework["framework_info"]["name"], "endpoints");
    assert!(framework["framework_info"]["id"]["value"].is_string());
    assert_eq!(framework["active"], true);
    assert_eq!(framework["connected"], true);
    assert_eq!(framework["recovered"], false);
    assert!(framework["registered_time"]["nanoseconds"].is_i64());

    let tasks = call(&cluster, &base, "GET_TASKS").await;
    let task = &tasks["get_tasks"]["tasks"][0];
    assert_eq!(task["task_id"], json!({"value": "web"}));
    assert_eq!(task["framework_id"], framework["framework_info"]["id"]);
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["status_update_state"], "TASK_RUNNING");
    assert!(task["agent_id"]["value"].is_string());
    assert_eq!(task["statuses"].as_array().unwrap().last().unwrap()["state"], "TASK_RUNNING");

    let state = call(&cluster, &base, "GET_STATE").await;
    let state = &state["get_state"];
    assert_eq!(state["get_tasks"]["tasks"][0]["task_id"]["value"], "web");
    assert_eq!(state["get_agents"]["agents"].as_array().unwrap().len(), 2);
    assert_eq!(state["get_frameworks"]["frameworks"][0]["framework_info"]["name"], "endpoints");
    assert!(state["get_executors"]["executors"].is_array());

    let metrics = operator(
        &cluster,
        &base,
        Some("application/json"),
        r#"{"type":"GET_METRICS","get_metrics":{}}"#,
    )
    .await;
    assert_eq!(metrics.0, 200, "{}", metrics.2);
    let metrics: Value = serde_json::from_str(&metrics.2).unwrap();
    let running = metrics["get_metrics"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "master/tasks_running")
        .cloned();
    assert_eq!(running, Some(json!({"name": "master/tasks_running", "value": 1.0})));

    // What Mesos answers to what it does not take.
    let json = Some("application/json");
    let (status, _, body) = operator(&cluster, &base, json, "{\"type\": ").await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Failed to parse body into JSON"), "{body}");
    let (status, _, body) = operator(&cluster, &base, json, r#"{"type":"GET_EVERYTHING"}"#).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Failed to convert JSON into Call protobuf"), "{body}");
    let (status, _, body) = operator(&cluster, &base, json, r#"{"type":"GET_METRICS"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Failed to validate master::Call: Expecting 'get_metrics' to be present")
    );
    let (status, _, body) = operator(&cluster, &base, None, r#"{"type":"GET_HEALTH"}"#).await;
    assert_eq!((status, body.as_str()), (400, "Expecting 'Content-Type' to be present"));
    let (status, _, body) = operator(&cluster, &base, Some("application/x-protobuf"), "").await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    assert_eq!(operator(&cluster, &base, json, r#"{"type":"UNKNOWN"}"#).await.0, 501);
    let (status, _, body) = operator(&cluster, &base, json, r#"{"type":"SUBSCRIBE"}"#).await;
    assert_eq!(status, 501);
    assert!(body.contains("SUBSCRIBE"), "{body}");
    let response = cluster.http.get(format!("{base}/api/v1")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}
