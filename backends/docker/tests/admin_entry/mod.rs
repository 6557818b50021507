//! The admin entry of a three-master sim cluster shows the Mesos leader's view on every load,
//! by name and on its plain 127.0.0.1 ports, and moves to the new leader when the leader's
//! machine dies.

use std::time::Duration;

use paas_core::backend::{Backend, NodeOp};
use serde_json::Value;

use crate::support::{TestCluster, eventually, http_get};

const THREE_MASTERS: &str = "[nodes]\nmasters = 3\nslaves = 1\nlbs = 1\nadminlb = 1\n";

/// `n` loads of `/master/state` at `address` with `Host: host`: the pid of the master that
/// answered each with 200 and one active agent, `None` for any other answer.
async fn views(address: &str, host: &str, n: usize) -> Vec<Option<String>> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let view = http_get(address, host, "/master/state")
            .await
            .filter(|(status, _)| *status == 200)
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .filter(|state| state["activated_slaves"] == 1)
            .and_then(|state| state["pid"].as_str().map(str::to_owned));
        seen.push(view);
    }
    seen
}

/// Waits until every one of 6 loads through both the admin name and the plain Mesos port
/// shows `leader`'s view with the agent registered.
async fn wait_only(cluster: &TestCluster, leader: &str, what: &str) {
    let by_name = format!("127.0.0.1:{}", cluster.spec.sim.admin_port);
    let host = format!("mesos.admin.{}", cluster.spec.domain);
    let plain = format!("127.0.0.1:{}", cluster.spec.sim.mesos_port);
    eventually(Duration::from_secs(120), what, || {
        let (by_name, host, plain) = (by_name.clone(), host.clone(), plain.clone());
        async move {
            let mut seen = views(&by_name, &host, 6).await;
            seen.extend(views(&plain, "127.0.0.1", 6).await);
            seen.iter().all(|p| p.as_deref() == Some(leader)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_entry_shows_the_mesos_leader_before_and_after_it_dies() {
    let cluster = TestCluster::new("admin", THREE_MASTERS).await;
    cluster.apply().await;
    let topology = cluster.topology.clone();
    let port = cluster.spec.sim.http_port;
    let health = eventually(
        Duration::from_secs(180),
        "ZooKeeper, a Mesos leader with its agent, Marathon",
        || {
            let topology = topology.clone();
            async move {
                let health = paas_docker::health::probe(&topology, port).await;
                (health.zookeeper_ok() && health.mesos_ok() && health.marathon_ok()).then_some(health)
            }
        },
    )
    .await;
    let leader = health.mesos_leader.clone().expect("a Mesos leader");
    wait_only(&cluster, &leader, "every load through the admin entry to show the leader").await;

    // The Mesos page itself (whose script reads the state above) loads through the plain port.
    let mesos = format!("127.0.0.1:{}", cluster.spec.sim.mesos_port);
    let (status, page) = http_get(&mesos, "127.0.0.1", "/").await.expect("the Mesos page");
    assert_eq!(status, 200, "{page}");
    // Marathon on its plain port answers for its leader.
    let marathon = format!("127.0.0.1:{}", cluster.spec.sim.marathon_port);
    let (status, body) = eventually(Duration::from_secs(60), "Marathon through its plain port", || {
        let marathon = marathon.clone();
        async move { http_get(&marathon, "127.0.0.1", "/v2/leader").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("\"leader\""), "{body}");

    // The leader's machine dies: ZooKeeper, Mesos and Marathon with it.
    let leader_address = leader.split_once('@').and_then(|(_, a)| a.split(':').next()).unwrap().to_owned();
    let leader_node = cluster
        .topology
        .nodes
        .iter()
        .find(|n| n.address.to_string() == leader_address)
        .expect("the leader is a master of the cluster")
        .name
        .clone();
    let observed = cluster.backend.list(cluster.name()).await.unwrap();
    let node = observed
        .into_iter()
        .find(|o| o.id.name() == leader_node)
        .expect("the leader's container");
    cluster.backend.node_op(cluster.name(), &node, NodeOp::Kill).await.unwrap();
    let new_leader = eventually(Duration::from_secs(120), "a new Mesos leader with the agent", || {
        let (topology, leader) = (topology.clone(), leader.clone());
        async move {
            let health = paas_docker::health::probe(&topology, port).await;
            health.mesos_leader.filter(|l| *l != leader && health.agents_registered == 1)
        }
    })
    .await;
    wait_only(&cluster, &new_leader, "every load through the admin entry to show the new leader").await;
    let (status, page) = http_get(&mesos, "127.0.0.1", "/").await.expect("the Mesos page");
    assert_eq!(status, 200, "{page}");
    eventually(
        Duration::from_secs(120),
        "Marathon through its plain port after the failover",
        || {
            let marathon = marathon.clone();
            async move { http_get(&marathon, "127.0.0.1", "/v2/leader").await.filter(|(s, _)| *s == 200) }
        },
    )
    .await;

    cluster.destroy().await;
}
