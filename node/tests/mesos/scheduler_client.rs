//! The crate's scheduler client and leader detector against real masters: the detector finds
//! the leader in ZooKeeper, the client subscribes through a non-leader (following its 307),
//! launches a task and sees it finish.

use std::time::Duration;

use futures::StreamExt as _;
use paas_node::mesos::detector;
use paas_node::mesos::scheduler::{Scheduler, master_url};
use paas_node::mesos::v1::{EventType, TaskState};
use paas_node::zk::ZkUrl;

use crate::support::framework::{framework_info, task_info};
use crate::support::mesos::MesosCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_scheduler_client_follows_redirect_and_runs_a_task() {
    let cluster = MesosCluster::start(2, &["cpus:1;mem:256"]).await;
    let leader = cluster.leader_index().await.expect("a leader");

    let mut leaders = detector::detect(ZkUrl::parse(&cluster.zk.url("mesos")).unwrap(), Duration::from_secs(3));
    let found = tokio::time::timeout(Duration::from_secs(10), leaders.wait_for(Option::is_some))
        .await
        .expect("the detector finds a leader")
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(master_url(&found), cluster.masters[leader].url());

    let follower = cluster.masters[1 - leader].url();
    let (scheduler, mut events) = Scheduler::subscribe(&follower, framework_info("client")).await.unwrap();
    assert_eq!(scheduler.master, cluster.masters[leader].url());
    let offer = loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.kind == EventType::Offers {
            break event.offers.unwrap().offers.remove(0);
        }
    };
    let task = task_info(&offer, "once", "cpus:0.5;mem:32", "exit 0");
    let launched_at = std::time::Instant::now();
    scheduler.launch(vec![offer.id.clone()], vec![task], 0.0).await.unwrap();
    let mut states = Vec::new();
    while !states.contains(&TaskState::Finished) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(update) = event.update {
            scheduler.acknowledge(&update.status).await.unwrap();
            if update.status.state == TaskState::Running {
                eprintln!("ACCEPT to TASK_RUNNING in {:?}", launched_at.elapsed());
            }
            states.push(update.status.state);
        }
    }
    assert_eq!(states, [TaskState::Starting, TaskState::Running, TaskState::Finished]);

    // A refused call surfaces the master's message.
    let mut bad = scheduler.call_of(paas_node::mesos::v1::CallType::Accept);
    bad.accept = None;
    let error = scheduler.call(&bad).await.unwrap_err().to_string();
    assert!(
        error.contains("400") && error.contains("Expecting 'accept' to be present"),
        "{error}"
    );
    scheduler.teardown().await.unwrap();
}
