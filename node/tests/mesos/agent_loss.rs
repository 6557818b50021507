//! An agent process that dies: after the ping timeout its tasks are reported TASK_LOST (or
//! TASK_UNREACHABLE to partition-aware frameworks) and every framework gets FAILURE.

use std::time::{Duration, Instant};

use paas_node::mesos::v1::{Capability, TaskState};

use crate::support::eventually;
use crate::support::framework::{TestFramework, framework_info};
use crate::support::mesos::MesosCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_killed_agent_tasks_are_lost_and_failure_is_sent() {
    let mut cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.expect("a leader");
    let mut plain = TestFramework::subscribe(&master, framework_info("plain")).await;
    let mut aware_info = framework_info("partition-aware");
    aware_info.capabilities = vec![Capability {
        kind: "PARTITION_AWARE".into(),
    }];
    let mut aware = TestFramework::subscribe(&master, aware_info).await;

    // Each framework gets the agent in turn; each runs one task on it.
    let offer = plain.offers().await.remove(0);
    plain.launch(&offer, &[("p1", "cpus:0.5;mem:64", "sleep 60")]).await;
    plain.await_state("p1", TaskState::Running).await;
    let offer = aware.offers().await.remove(0);
    aware.launch(&offer, &[("a1", "cpus:0.5;mem:64", "sleep 60")]).await;
    aware.await_state("a1", TaskState::Running).await;
    let agent_id = offer.agent_id.clone();

    cluster.agents[0].process.kill();
    let killed_at = Instant::now();

    let lost = plain.await_state("p1", TaskState::Lost).await;
    assert_eq!(lost.reason.as_deref(), Some("REASON_AGENT_REMOVED"));
    assert_eq!(lost.source.as_deref(), Some("SOURCE_MASTER"));
    let failed_agent = plain
        .next(Duration::from_secs(5), "FAILURE", |e| e.failure.clone().and_then(|f| f.agent_id))
        .await;
    assert_eq!(failed_agent, agent_id);
    let unreachable = aware.await_state("a1", TaskState::Unreachable).await;
    assert_eq!(unreachable.reason.as_deref(), Some("REASON_AGENT_REMOVED"));
    let elapsed = killed_at.elapsed();
    eprintln!("agent removed {elapsed:?} after it was killed");
    // 1 s ping timeout x 3 misses, checked every 200 ms.
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(8),
        "removed after {elapsed:?}"
    );

    let state = cluster.leader_state().await.unwrap();
    assert_eq!(state["slaves"].as_array().unwrap().len(), 0);
    assert_eq!(state["activated_slaves"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_paused_agent_returns_with_a_new_id_and_its_lost_tasks_killed() {
    let cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.expect("a leader");
    let mut framework = TestFramework::subscribe(&master, framework_info("paused")).await;
    let offer = framework.offers().await.remove(0);
    framework
        .launch(&offer, &[("stale", "cpus:0.5;mem:64", "echo $$ > pid; exec sleep 60")])
        .await;
    framework.await_state("stale", TaskState::Running).await;
    let sandbox = cluster.agents[0].sandbox_stdouts("stale")[0].parent().unwrap().to_owned();
    // TASK_RUNNING is sent once the shell starts; its first line may not have run yet.
    let pid_file = sandbox.join("pid");
    let task_pid: i32 = eventually(Duration::from_secs(10), "the task to write its pid", || async {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;

    // The agent stops answering (a paused machine) long enough to be removed...
    let agent_pid = cluster.agents[0].process.pid().unwrap() as i32;
    // SAFETY: kill(2) on the agent process this test started.
    unsafe { libc::kill(agent_pid, libc::SIGSTOP) };
    let lost = framework.await_state("stale", TaskState::Lost).await;
    assert_eq!(lost.reason.as_deref(), Some("REASON_AGENT_REMOVED"));
    // SAFETY: as above.
    unsafe { libc::kill(agent_pid, libc::SIGCONT) };

    // ...then comes back: it registers afresh and kills the task the framework was told is lost.
    let cluster_ref = &cluster;
    let old_id = offer.agent_id.value.clone();
    let old_id = &old_id;
    eventually(Duration::from_secs(15), "the agent back under a new id", || async move {
        let state = cluster_ref.leader_state().await?;
        let slaves = state["slaves"].as_array()?;
        (slaves.len() == 1 && slaves[0]["id"] != old_id.as_str()).then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the lost task's process to be killed", || async move {
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(task_pid, 0) } == 0;
        let zombie = std::fs::read_to_string(format!("/proc/{task_pid}/stat")).map_or(true, |s| s.contains(") Z"));
        (!exists || zombie).then_some(())
    })
    .await;
    // Its resources are whole again and offered.
    let offer = framework.offers().await.remove(0);
    assert_ne!(&offer.agent_id.value, old_id);
    assert_eq!(
        paas_node::mesos::resources::Resources::from_v1(&offer.resources).scalar("cpus"),
        1.0
    );
}
