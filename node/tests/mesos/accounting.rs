//! Resource accounting under concurrent launches: several frameworks race to fill two agents;
//! nothing is ever offered twice, used plus offered never exceeds an agent's total, and the
//! cluster ends exactly full.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use paas_node::mesos::resources::Resources;
use paas_node::mesos::v1::TaskState;
use serde_json::Value;

use crate::support::framework::{TestFramework, framework_info, task_info};
use crate::support::mesos::MesosCluster;

const AGENT: &str = "cpus:2;mem:1024;ports:[31000-31004]";
/// Each task takes 0.5 cpus and one port: cpus allow 4 per agent, ports 5, so 8 in all.
const CAPACITY: usize = 8;

/// Launches as many tasks as each offer holds until told to stop; returns the statuses seen.
async fn fill(mut framework: TestFramework, name: &'static str, stop: Arc<AtomicBool>) -> Vec<paas_node::mesos::v1::TaskStatus> {
    let mut next_task = 0;
    let mut statuses = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let offers = tokio::time::timeout(Duration::from_millis(500), framework.offers()).await;
        statuses.extend(framework.acknowledge_new().await);
        let Ok(offers) = offers else { continue };
        // Hold the offers across a few allocation rounds (200 ms), as a slow scheduler would:
        // resources must not be offered again meanwhile.
        tokio::time::sleep(Duration::from_millis(450)).await;
        for offer in offers {
            let available = Resources::from_v1(&offer.resources);
            let fit = ((available.scalar("cpus") / 0.5) as usize).min(available.scalar("mem") as usize / 64);
            let ports: Vec<u64> = available.range_set("ports").values().collect();
            let tasks = ports
                .iter()
                .take(fit)
                .map(|port| {
                    next_task += 1;
                    let resources = format!("cpus:0.5;mem:64;ports:[{port}-{port}]");
                    task_info(&offer, &format!("{name}-{next_task}"), &resources, "sleep 60")
                })
                .collect();
            framework.accept(&offer, tasks).await;
        }
    }
    statuses.extend(framework.acknowledge_new().await);
    statuses
}

fn check_agents(state: &Value) {
    for slave in state["slaves"].as_array().unwrap() {
        let total = &slave["resources"];
        let used = &slave["used_resources"];
        let offered = &slave["offered_resources"];
        for name in ["cpus", "mem"] {
            let sum = used[name].as_f64().unwrap() + offered[name].as_f64().unwrap();
            assert!(
                used[name].as_f64().unwrap() <= total[name].as_f64().unwrap(),
                "agent {} uses more {name} than it has: {used}",
                slave["id"]
            );
            assert!(
                sum <= total[name].as_f64().unwrap() + 1e-9,
                "agent {} over-committed {name}: used {used} offered {offered} total {total}",
                slave["id"]
            );
        }
    }
}

async fn allocation_runs(cluster: &MesosCluster, master: &str) -> u64 {
    let metrics = cluster
        .get_json(&format!("{master}/metrics/snapshot"))
        .await
        .expect("the leader's metrics");
    metrics["allocator/mesos/allocation_runs"].as_f64().expect("allocation_runs") as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_concurrent_launches_never_overcommit() {
    let cluster = MesosCluster::start(1, &[AGENT, AGENT]).await;
    let master = cluster.leader_url().await.expect("a leader");
    let stop = Arc::new(AtomicBool::new(false));
    let mut runs = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let framework = TestFramework::subscribe(&master, framework_info(name)).await;
        runs.push(tokio::spawn(fill(framework, name, stop.clone())));
    }

    // Watch the master while the frameworks race, until the cluster is full.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut running;
    loop {
        let state = cluster.leader_state().await.expect("leader state");
        check_agents(&state);
        running = state["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["tasks"].as_array().unwrap().iter())
            .filter(|t| t["state"] == "TASK_RUNNING")
            .count();
        if running >= CAPACITY || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A late double offer would come from an allocation round after the cluster filled: watch
    // three of them (Mesos' `allocator/mesos/allocation_runs`) before stopping.
    let runs_now = allocation_runs(&cluster, &master).await;
    crate::support::eventually(Duration::from_secs(30), "three allocation rounds on a full cluster", || async {
        let state = cluster.leader_state().await?;
        check_agents(&state);
        (allocation_runs(&cluster, &master).await >= runs_now + 3).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for run in runs {
        statuses.extend(run.await.unwrap());
    }
    assert_eq!(running, CAPACITY, "the cluster fills up");
    let errors: Vec<_> = statuses.iter().filter(|s| s.state == TaskState::Error).collect();
    assert!(errors.is_empty(), "launches refused: {errors:?}");

    let state = cluster.leader_state().await.unwrap();
    check_agents(&state);
    let mut ports = BTreeSet::new();
    let mut tasks = 0;
    for framework in state["frameworks"].as_array().unwrap() {
        for task in framework["tasks"].as_array().unwrap() {
            tasks += 1;
            let port = task["resources"]["ports"].as_str().unwrap().to_owned();
            assert!(
                ports.insert((task["slave_id"].as_str().unwrap().to_owned(), port.clone())),
                "port {port} used twice on one agent"
            );
        }
    }
    assert_eq!(tasks, CAPACITY);
    for slave in state["slaves"].as_array().unwrap() {
        assert_eq!(slave["used_resources"]["cpus"].as_f64(), Some(2.0), "{slave}");
        assert_eq!(slave["used_resources"]["mem"].as_f64(), Some(256.0), "{slave}");
    }
}
