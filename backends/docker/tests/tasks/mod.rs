//! A slave's Docker tasks, as the backend surrounds them: the slave gets the engine's socket
//! and an internal task network; task containers (made here as the slave's agent makes them:
//! siblings on the host's engine, labelled after cluster and node) freeze, die, stop and go
//! away with their slave, and are listed per slave.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, InspectNetworkOptions};
use paas_core::backend::{Backend, NodeOp};
use paas_core::render::sim::{DOCKER_SOCKET, TASK_CLUSTER_LABEL, TASK_NODE_LABEL, task_network_name};

use crate::support::{TestCluster, eventually, node_image};

/// Starts a task container for `slave` as its agent would: on the slave's task network
/// (BRIDGE) or in the slave's namespace (HOST), serving HTTP on `port`.
async fn start_task(cluster: &TestCluster, slave: &str, task: &str, network_mode: String, port: u16) -> String {
    let docker = cluster.backend.docker();
    let name = format!("mesos-{}-{task}", cluster.name());
    let labels: HashMap<String, String> = [
        (TASK_CLUSTER_LABEL, cluster.name().to_string()),
        (TASK_NODE_LABEL, slave.to_string()),
        ("mesos.task_id", task.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(node_image(docker).await),
                entrypoint: Some(vec!["python3".into(), "-m".into(), "http.server".into(), port.to_string()]),
                cmd: Some(vec![]),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    network_mode: Some(network_mode),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("creating task container {name}: {e}"));
    docker
        .start_container(&name, None::<bollard::query_parameters::StartContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("starting task container {name}: {e}"));
    name
}

async fn state_of(cluster: &TestCluster, container: &str) -> String {
    cluster
        .backend
        .docker()
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .ok()
        .and_then(|c| c.state?.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "gone".into())
}

/// Runs `script` with `sh -c` in `container`: its exit code and output.
async fn sh(cluster: &TestCluster, container: &str, script: &str) -> (i64, String) {
    cluster
        .backend
        .exec_output(container, container, &["sh", "-c", script])
        .await
        .unwrap_or_else(|e| panic!("exec in {container}: {e}"))
}

#[tokio::test]
async fn a_slaves_task_containers_are_reached_through_it_and_share_its_fate() {
    let cluster = TestCluster::new("tasks", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1\nadminlb = 0\n").await;
    cluster.apply().await;
    let docker = cluster.backend.docker();
    let slave_container = format!("{}-slave-1", cluster.name());
    let network = task_network_name(cluster.name(), "slave-1");

    // The slave has the engine's socket and sits on its own internal task network.
    let slave = docker
        .inspect_container(&slave_container, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let binds = slave.host_config.and_then(|h| h.binds).unwrap_or_default();
    assert!(binds.contains(&format!("{DOCKER_SOCKET}:{DOCKER_SOCKET}")), "{binds:?}");
    let joined = slave.network_settings.and_then(|n| n.networks).unwrap_or_default();
    assert!(joined.contains_key(&network), "slave-1 is not on {network}: {:?}", joined.keys());
    let inspected = docker.inspect_network(&network, None::<InspectNetworkOptions>).await.unwrap();
    assert_eq!(inspected.internal, Some(true));
    // A second network takes nothing from the first: the agent still registers.
    let port = cluster.spec.sim.http_port;
    let topology = cluster.topology.clone();
    eventually(Duration::from_secs(60), "slave-1's agent registered", || {
        let topology = topology.clone();
        async move { Some(paas_docker::health::probe(&topology, port).await).filter(|h| h.agents_registered == 1) }
    })
    .await;

    // A BRIDGE task: the slave reaches it on the task network; it reaches nothing else.
    let bridge = start_task(&cluster, "slave-1", "bridge.1", network.clone(), 8000).await;
    let task_ip = docker
        .inspect_container(&bridge, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get(&network).and_then(|e| e.ip_address.clone()))
        .expect("the task's address on the task network");
    let (code, out) = sh(
        &cluster,
        &slave_container,
        &format!("for i in $(seq 50); do curl -sf http://{task_ip}:8000/ >/dev/null && exit 0; sleep 0.2; done; exit 1"),
    )
    .await;
    assert_eq!(code, 0, "slave-1 cannot reach its BRIDGE task at {task_ip}: {out}");
    let master = cluster.topology.node("master-1").unwrap().address;
    let (code, out) = sh(
        &cluster,
        &bridge,
        &format!("python3 -c 'import socket; socket.create_connection((\"{master}\", 2181), timeout=3)'"),
    )
    .await;
    assert_ne!(code, 0, "a BRIDGE task reached master-1 on the cluster network: {out}");
    // A HOST task: in the slave's namespace, at the slave's address.
    let host = start_task(&cluster, "slave-1", "host.1", format!("container:{slave_container}"), 31000).await;
    let slave_address = cluster.topology.node("slave-1").unwrap().address;
    eventually(Duration::from_secs(10), "the HOST task at slave-1's address", || {
        let address = format!("{slave_address}:31000");
        async move { crate::support::http_get(&address, "task", "/").await.filter(|(s, _)| *s == 200) }
    })
    .await;

    // Status lists both under slave-1.
    let sim = paas_docker::sim::Sim::connect(cluster.spec.clone(), cluster.state.path(), None)
        .await
        .unwrap();
    let status = sim.status().await.unwrap();
    assert_eq!(status.task_containers.len(), 1, "{:?}", status.task_containers);
    let agent = &status.task_containers[0];
    assert_eq!(agent.node, "slave-1");
    let listed: Vec<(&str, &str)> = agent.tasks.iter().map(|t| (t.task_id.as_str(), t.state.as_str())).collect();
    assert_eq!(listed, [("bridge.1", "running"), ("host.1", "running")]);

    // Pause freezes the tasks with the slave, unpause thaws them.
    let observed = cluster.backend.list(cluster.name()).await.unwrap();
    let slave_node = observed.iter().find(|o| o.id.as_str() == "node/slave-1").unwrap().clone();
    cluster.backend.node_op(cluster.name(), &slave_node, NodeOp::Pause).await.unwrap();
    for task in [&bridge, &host] {
        assert_eq!(state_of(&cluster, task).await, "paused", "{task}");
    }
    cluster.backend.node_op(cluster.name(), &slave_node, NodeOp::Unpause).await.unwrap();
    for task in [&bridge, &host] {
        assert_eq!(state_of(&cluster, task).await, "running", "{task}");
    }

    // Kill takes them down with the slave; start brings back the slave alone.
    cluster.backend.node_op(cluster.name(), &slave_node, NodeOp::Kill).await.unwrap();
    let cluster = &cluster;
    for task in [&bridge, &host] {
        eventually(
            Duration::from_secs(10),
            &format!("{task} to have exited with slave-1"),
            || async move { Some(state_of(cluster, task).await).filter(|s| s == "exited") },
        )
        .await;
    }
    cluster.backend.node_op(cluster.name(), &slave_node, NodeOp::Start).await.unwrap();
    assert_eq!(state_of(cluster, &slave_container).await, "running");
    for task in [&bridge, &host] {
        assert_eq!(state_of(cluster, task).await, "exited", "{task} came back with slave-1");
    }

    // Stop (a graceful shutdown of the machine) stops a running task with the slave.
    let later = start_task(cluster, "slave-1", "later.1", network.clone(), 8000).await;
    cluster.backend.node_op(cluster.name(), &slave_node, NodeOp::Stop).await.unwrap();
    assert_eq!(state_of(cluster, &later).await, "exited");
    assert_eq!(state_of(cluster, &slave_container).await, "exited");

    // A task left by a slave the cluster no longer has is swept by `down` too.
    let stray_network = task_network_name(cluster.name(), "slave-9");
    cluster.backend.ensure_task_network(cluster.name(), "slave-9").await.unwrap();
    let stray = start_task(cluster, "slave-9", "stray.1", stray_network, 8000).await;
    sim.down(&|_| {}).await.unwrap();
    assert_eq!(state_of(cluster, &stray).await, "gone");
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
}
