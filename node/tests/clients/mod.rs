//! Conformance proven by widely used third-party clients, unchanged: marathon-python, a pymesos
//! v1 framework and the Apache Mesos CLI (avmesos-cli), pinned in the venv that
//! `scripts/install-deps` makes, each driven by a script in this folder against a real loopback
//! cluster (ZooKeeper, Mesos master and agents, Marathon as processes). A script exits non-zero
//! at the first answer that differs from Marathon 1.x or Mesos 1.x; the test fails with its
//! output.

use std::time::Duration;

use serde_json::{Value, json};

use crate::marathon::Platform;
use crate::support::clients::{python, run_script};
use crate::support::eventually;
use crate::support::mesos::MesosCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_python_drives_an_app_through_its_whole_life() {
    // Checked before the cluster starts, so that a missing venv fails at once with the fix.
    python();
    let platform = Platform::start(1, 2).await;
    let leader = platform.leader().await;
    run_script("marathon_python.py", vec![platform.marathons[leader].url()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymesos_framework_launches_and_kills_a_task() {
    python();
    let mesos = MesosCluster::start(1, &["cpus:2;mem:1024;disk:1000;ports:[31000-31099]"]).await;
    let master = mesos.leader_url().await.expect("a leading master");
    run_script("pymesos_framework.py", vec![mesos.zk.url("mesos"), master.clone()]).await;
    // Task ids are unique within a framework only: a second framework (a new id) may launch a
    // task with the id the first one used, on the same agent.
    run_script("pymesos_framework.py", vec![mesos.zk.url("mesos"), master]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_cli_lists_the_agents_frameworks_and_tasks() {
    python();
    let platform = Platform::start(1, 2).await;
    let leader = platform.leader().await;
    let marathon = platform.marathons[leader].url();
    let http = &platform.http;
    let created = http
        .post(format!("{marathon}/v2/apps"))
        .body(r#"{"id":"/cli-sleeper","cmd":"sleep 100000","cpus":0.1,"mem":16,"instances":2}"#)
        .send()
        .await
        .expect("POST /v2/apps");
    assert_eq!(created.status(), 201, "creating /cli-sleeper: {:?}", created.text().await);
    let tasks = platform.await_running(leader, "/cli-sleeper", 2, false).await;
    let task_ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().expect("task id")).collect();

    // What the CLI must show, from sources other than the endpoints it reads: the agents from
    // the master's full state, Marathon's framework id from Marathon itself.
    let state = platform.mesos.leader_state().await.expect("the leader's /master/state");
    let agents: Vec<&str> = state["slaves"]
        .as_array()
        .expect("slaves")
        .iter()
        .map(|s| s["id"].as_str().expect("agent id"))
        .collect();
    assert_eq!(agents.len(), 2, "two agents registered: {state}");
    let framework_id = eventually(Duration::from_secs(30), "Marathon's frameworkId in /v2/info", || async {
        let info: Value = crate::support::try_get_json(http, &format!("{marathon}/v2/info")).await?;
        info["frameworkId"].as_str().map(str::to_owned)
    })
    .await;
    let zk_addresses: Vec<String> = platform.mesos.zk.servers.iter().map(|s| s.address()).collect();
    let master = platform.mesos.leader_url().await.expect("a leading master");
    let expected = json!({
        "zk_addresses": zk_addresses,
        "zk_path": "/mesos",
        "master": master.trim_start_matches("http://"),
        "agents": agents,
        "frameworks": [{"id": framework_id, "name": "marathon"}],
        "tasks": task_ids,
    });
    run_script("mesos_cli.py", vec![expected.to_string()]).await;
}
