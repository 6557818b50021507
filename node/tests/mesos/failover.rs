//! Three masters on a real ZooKeeper ensemble: one leads, the others redirect; when the leader
//! dies another takes over within the session timeout, agents re-register with it, and a
//! framework reconnects and reconciles without its running task being restarted.

use std::time::{Duration, Instant};

use paas_node::mesos::v1::TaskState;

use crate::support::eventually;
use crate::support::framework::{TestFramework, framework_info};
use crate::support::mesos::MesosCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_leader_failover_keeps_agents_and_running_tasks() {
    let mut cluster = MesosCluster::start(3, &["cpus:1;mem:256", "cpus:1;mem:256"]).await;
    let leader = cluster.leader_index().await.expect("a leader");

    // Exactly one leader, which names itself; the others answer state and API calls with 307.
    let state = cluster.leader_state().await.unwrap();
    assert_eq!(state["leader_info"]["port"], cluster.masters[leader].port);
    for (i, master) in cluster.masters.iter().enumerate() {
        if i == leader {
            continue;
        }
        let response = cluster.http.get(format!("{}/master/state", master.url())).send().await.unwrap();
        assert_eq!(response.status(), 307, "master {i}");
        let response = cluster
            .http
            .post(format!("{}/api/v1/scheduler", master.url()))
            .header("Content-Type", "application/json")
            .body(r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307);
        assert_eq!(
            response.headers()["location"],
            format!("//127.0.0.1:{}/api/v1/scheduler", cluster.masters[leader].port).as_str()
        );
        let redirect = cluster.http.get(format!("{}/master/redirect", master.url())).send().await.unwrap();
        assert_eq!(redirect.status(), 307);
    }

    // A framework subscribed through a non-leader (following the redirect) runs a task.
    let other = (leader + 1) % 3;
    let mut framework = TestFramework::subscribe(&cluster.masters[other].url(), framework_info("failover")).await;
    let offer = framework.offers().await.remove(0);
    framework
        .launch(&offer, &[("long", "cpus:0.5;mem:64", "echo started; exec sleep 120")])
        .await;
    framework.await_state("long", TaskState::Running).await;
    let agent_index = cluster
        .agents
        .iter()
        .position(|a| !a.sandbox_stdouts("long").is_empty())
        .expect("the task's sandbox");

    // A short task is running when the leader dies like a lost machine: it ends while no
    // master leads, and its end must still reach the framework.
    let offer = framework.offers().await.remove(0);
    framework.launch(&offer, &[("short", "cpus:0.1;mem:32", "sleep 2")]).await;
    framework.await_state("short", TaskState::Running).await;
    cluster.masters[leader].process.kill();
    let killed_at = Instant::now();
    let cluster_ref = &cluster;
    let new_leader = eventually(Duration::from_secs(20), "a new leader", || async move {
        cluster_ref.leader_index().await.filter(|&i| i != leader)
    })
    .await;
    let elected_after = killed_at.elapsed();
    // ZooKeeper session timeout (3 s) plus a few seconds.
    assert!(
        elected_after < Duration::from_secs(10),
        "new leader after {elapsed:?}",
        elapsed = elected_after
    );
    eprintln!("new leader elected {elected_after:?} after the old one was killed");

    // Agents re-register with the new leader, the task with them.
    let state = eventually(Duration::from_secs(15), "agents re-registered", || async move {
        let state = cluster_ref.leader_state().await?;
        (state["slaves"].as_array()?.len() == 2).then_some(state)
    })
    .await;
    let agent_ids: Vec<&str> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        agent_ids.contains(&offer.agent_id.value.as_str()),
        "same agent ids after failover: {agent_ids:?}"
    );

    // The framework reconnects with its id and reconciles; the task is still the same process.
    let mut info = framework.info.clone();
    info.id = Some(framework.id.clone());
    let new_master = cluster.masters[new_leader].url();
    let mut framework = TestFramework::subscribe(&new_master, info).await;
    assert_eq!(framework.subscribed.framework_id, offer.framework_id);
    framework.reconcile(&[("long", Some(&offer.agent_id.value))]).await;
    let status = framework
        .next(Duration::from_secs(10), "reconciliation of the running task", |e| {
            e.update.clone().map(|u| u.status).filter(|s| s.task_id.value == "long")
        })
        .await;
    assert_eq!(status.state, TaskState::Running);
    let stdouts = cluster.agents[agent_index].sandbox_stdouts("long");
    assert_eq!(stdouts.len(), 1, "one sandbox: the task was not launched again");
    assert_eq!(std::fs::read_to_string(&stdouts[0]).unwrap(), "started\n");
    let state = cluster.leader_state().await.unwrap();
    let tasks = state["frameworks"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["state"], "TASK_RUNNING");
    assert_eq!(state["frameworks"][0]["connected"], true);

    // The end of the short task is delivered once the framework is back, and once
    // acknowledged the agent forgets it.
    let finished = framework.await_state("short", TaskState::Finished).await;
    assert_eq!(finished.message.as_deref(), Some("Command exited with status 0"));
    let agent_url = cluster
        .agents
        .iter()
        .find(|a| !a.sandbox_stdouts("short").is_empty())
        .unwrap()
        .url();
    let agent_url = &agent_url;
    eventually(Duration::from_secs(5), "the agent to forget the acknowledged task", || async move {
        let state = cluster_ref.get_json(&format!("{agent_url}/state")).await?;
        let completed = state["completed_tasks"].as_array()?;
        completed.iter().any(|t| t["id"] == "short").then_some(())
    })
    .await;

    // The task keeps being managed: a kill through the new leader works.
    framework.kill("long").await;
    framework.await_state("long", TaskState::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_masters_step_down_when_zookeeper_is_lost() {
    let mut cluster = MesosCluster::start(2, &[]).await;
    assert!(cluster.leader_index().await.is_some());
    let lost_at = Instant::now();
    for id in 1..=3 {
        cluster.zk.kill(id);
    }
    // Without ZooKeeper no master may go on leading: each ends once its session is lost
    // (3 s session timeout), as Mesos masters do.
    let deadline = lost_at + Duration::from_secs(15);
    while cluster.masters.iter_mut().any(|m| !m.process.has_exited()) {
        assert!(Instant::now() < deadline, "a master still runs 15 s after ZooKeeper was lost");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = lost_at.elapsed();
    eprintln!("masters stepped down {elapsed:?} after ZooKeeper was lost");
    assert!(
        elapsed >= Duration::from_secs(2),
        "stepped down after {elapsed:?}, before the session could expire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_losing_one_zookeeper_server_changes_nothing() {
    let mut cluster = MesosCluster::start(3, &["cpus:1;mem:256"]).await;
    let leader = cluster.leader_index().await.expect("a leader");
    let before = cluster.leader_state().await.unwrap();
    // A master machine dies and takes its ZooKeeper server with it: the quorum holds, and the
    // masters and agents connected to that server move to the others without losing sessions:
    // every session id is seen again on a server that remains (a session that expired would
    // come back under a new id, and its master would have stepped down).
    let sessions = tokio::task::block_in_place(|| cluster.zk.connected_sessions());
    assert!(!sessions.is_empty(), "the masters and the agent hold ZooKeeper sessions");
    for id in 1..=2 {
        cluster.zk.kill(id);
        crate::support::eventually(Duration::from_secs(30), "every session reconnected to a remaining server", || {
            let connected = tokio::task::block_in_place(|| cluster.zk.connected_sessions());
            let moved = connected.is_superset(&sessions);
            async move { moved.then_some(()) }
        })
        .await;
        assert!(cluster.masters.iter_mut().all(|m| !m.process.has_exited()), "a master stepped down");
        cluster.zk.restart(id);
        tokio::task::block_in_place(|| cluster.zk.wait_for_quorum(Duration::from_secs(60)));
    }
    assert_eq!(cluster.leader_index().await, Some(leader));
    let after = cluster.leader_state().await.unwrap();
    assert_eq!(after["elected_time"], before["elected_time"], "no new election");
    assert_eq!(after["slaves"][0]["id"], before["slaves"][0]["id"]);
}
