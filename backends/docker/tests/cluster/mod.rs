//! Clusters on real Docker through the engine: created, found again from labels alone,
//! serving through the elb on 127.0.0.1, changed in place, operated on, and removed.

use std::time::Duration;

use paas_core::backend::{Backend, NodeOp, Observed};
use paas_core::engine::Action;
use paas_core::resource::{ResourceKind, ResourceSpec};

use crate::support::{TestCluster, eventually, four_letter, http_get, node_image, within};

/// One master, one slave, two lbs, no adminlb: every kind of container, kept small.
const SMALL: &str = "azs = 2\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 2\nadminlb = 0\n";

#[tokio::test]
async fn a_cluster_comes_up_serves_through_the_elb_and_goes_away() {
    let cluster = TestCluster::new("up", &SMALL.replace("adminlb = 0", "adminlb = 1")).await;
    let plan = cluster.apply().await;
    assert_eq!(plan.count(Action::Create), cluster.graph().len(), "{}", plan.summary());

    // The world, re-read from labels alone, matches the spec: nothing left to do.
    let again = cluster.engine().plan(&cluster.graph()).await.expect("planning again");
    assert!(again.is_empty(), "a second plan should be empty: {}", again.summary());

    // Each node runs at its static address with the programs of its role.
    let observed = cluster.backend.list(cluster.name()).await.expect("listing");
    let master = observed.iter().find(|o| o.id.as_str() == "node/master-1").expect("master-1 listed");
    assert_eq!(master.attrs.get("state").map(String::as_str), Some("running"));
    let master_address = cluster.topology.node("master-1").unwrap().address;
    assert_eq!(master.attrs.get("address"), Some(&master_address.to_string()));
    let zk = format!("{master_address}:2181");
    let mode = eventually(Duration::from_secs(60), "ZooKeeper on master-1 to serve", || {
        let zk = zk.clone();
        async move { four_letter(&zk, "srvr").await.filter(|a| a.contains("Mode: ")) }
    })
    .await;
    assert!(mode.contains("Mode: standalone"), "{mode}");

    // The elb (HAProxy) on 127.0.0.1 forwards to healthy lbs (nginx), which answer /status.
    let elb = format!("127.0.0.1:{}", cluster.spec.sim.http_port);
    let (status, body) = eventually(Duration::from_secs(30), "the elb to answer /status", || {
        let elb = elb.clone();
        async move { http_get(&elb, "status", "/status").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    assert_eq!((status, body.trim()), (200, "OK"));

    // The node programs under the supervisors make a working Mesos cluster: ZooKeeper
    // serves, a Mesos master is elected and the agent registers with it.
    let port = cluster.spec.sim.http_port;
    let topology = cluster.topology.clone();
    eventually(Duration::from_secs(60), "ZooKeeper, a Mesos leader and the agent", || {
        let topology = topology.clone();
        async move {
            let health = paas_docker::health::probe(&topology, port).await;
            (health.zookeeper_ok() && health.mesos_ok() && health.lbs_ok()).then_some(health)
        }
    })
    .await;

    // The Mesos UI through the admin entry on 127.0.0.1, which admits this host.
    let admin = format!("127.0.0.1:{}", cluster.spec.sim.admin_port);
    let host = format!("mesos.admin.{}", cluster.spec.domain);
    let (_, state) = eventually(Duration::from_secs(30), "the Mesos UI through the adminlb", || {
        let (admin, host) = (admin.clone(), host.clone());
        async move { http_get(&admin, &host, "/master/state").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    assert!(state.contains("\"activated_slaves\""), "{state}");

    cluster.destroy().await;
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
    // Destroying again finds nothing and succeeds.
    cluster.destroy().await;
}

#[tokio::test]
async fn removing_an_lb_updates_the_elb_in_place() {
    let mut cluster = TestCluster::new("elb", SMALL).await;
    cluster.apply().await;
    let before = cluster.backend.list(cluster.name()).await.unwrap();
    let elb_before = before
        .iter()
        .find(|o| o.kind() == ResourceKind::LoadBalancer)
        .unwrap()
        .provider_id
        .clone();

    cluster.respec(|spec| spec.nodes.lbs = 1);
    let plan = cluster.apply().await;
    assert_eq!(plan.count(Action::Update), 1, "{}", plan.summary());
    assert_eq!(plan.count(Action::Delete), 1, "{}", plan.summary());

    let after = cluster.backend.list(cluster.name()).await.unwrap();
    let elb_after = after.iter().find(|o| o.kind() == ResourceKind::LoadBalancer).unwrap();
    assert_eq!(elb_after.provider_id, elb_before, "the elb was recreated instead of updated");
    // The new member list is recorded where list finds it: nothing more to do.
    let again = cluster.engine().plan(&cluster.graph()).await.unwrap();
    assert!(again.is_empty(), "{}", again.summary());
    // The elb holds exactly the new HAProxy file (a copy over the file the node wrote once
    // showed the image's original file under the new bytes).
    let (installed, rendered) = haproxy_files(&cluster, elb_after).await;
    assert_eq!(installed, rendered);
    // And HAProxy, reloaded, still serves through the remaining lb.
    let elb = format!("127.0.0.1:{}", cluster.spec.sim.http_port);
    let served = within(Duration::from_secs(30), || {
        let elb = elb.clone();
        async move { http_get(&elb, "status", "/status").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    if served.is_none() {
        panic!(
            "the elb does not answer /status through lb-1 after the reload\nelb:\n{}\nlb-1:\n{}",
            cluster.logs("elb").await,
            cluster.logs("lb-1").await
        );
    }

    // A paused elb cannot take a new configuration: the apply says so, and the update stays due.
    cluster.backend.node_op(cluster.name(), elb_after, NodeOp::Pause).await.unwrap();
    cluster.respec(|spec| spec.nodes.lbs = 2);
    let backend = &cluster.backend;
    let refused = cluster.engine().apply(&cluster.graph(), "test apply", &|_| {}).await;
    // The chain, as the CLI prints it.
    let error = format!(
        "{:#}",
        anyhow::Error::new(refused.expect_err("an update of a paused elb must fail"))
    );
    assert!(error.contains("the elb is paused") && error.contains("paas chaos heal"), "{error}");
    // A stopped one is updated all the same, and its supervisor installs the update when it
    // starts: two lbs in HAProxy's file, and nothing more to do.
    backend.node_op(cluster.name(), elb_after, NodeOp::Unpause).await.unwrap();
    backend.node_op(cluster.name(), elb_after, NodeOp::Stop).await.unwrap();
    cluster.apply().await;
    backend.node_op(cluster.name(), elb_after, NodeOp::Start).await.unwrap();
    let (installed, rendered) = eventually(Duration::from_secs(10), "the started elb to hold its new HAProxy file", || async {
        Some(haproxy_files(&cluster, elb_after).await).filter(|(installed, rendered)| installed == rendered)
    })
    .await;
    assert!(rendered.contains("server lb-2 "), "{installed}");
    let again = cluster.engine().plan(&cluster.graph()).await.unwrap();
    assert!(again.is_empty(), "{}", again.summary());
    cluster.destroy().await;
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
}

/// The HAProxy file the elb `elb` holds, and the one rendered for the cluster's spec.
async fn haproxy_files(cluster: &TestCluster, elb: &Observed) -> (String, String) {
    let (code, installed) = cluster
        .backend
        .exec_output(&elb.provider_id, "elb", &["cat", "/etc/haproxy/haproxy.cfg"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{installed}");
    let graph = cluster.graph();
    let ResourceSpec::LoadBalancer(lb) = &graph.get(&elb.id).unwrap().spec else {
        panic!("the elb is not a load balancer in the graph");
    };
    (installed, paas_docker::container::elb_config(lb).files[0].content.clone())
}

#[tokio::test]
async fn node_operations_kill_pause_and_start_a_node() {
    let cluster = TestCluster::new("ops", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1\nadminlb = 0\n").await;
    cluster.apply().await;
    let state = |id: &'static str| {
        let backend = &cluster.backend;
        let name = cluster.name().to_string();
        async move {
            let observed = backend.list(&name).await.unwrap();
            let node = observed.into_iter().find(|o| o.id.as_str() == id).unwrap();
            (node.attrs.get("state").cloned().unwrap_or_default(), node)
        }
    };
    let (running, lb) = state("node/lb-1").await;
    assert_eq!(running, "running");

    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Pause).await.unwrap();
    assert_eq!(state("node/lb-1").await.0, "paused");
    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Unpause).await.unwrap();
    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Kill).await.unwrap();
    // Docker answers a kill once the signal is sent; the container is gone a moment later.
    eventually(Duration::from_secs(10), "lb-1 to have exited after the kill", || {
        let state = state("node/lb-1");
        async move { Some(state.await.0).filter(|s| s == "exited") }
    })
    .await;
    // A killed node is still the same resource: planning does not recreate it.
    let plan = cluster.engine().plan(&cluster.graph()).await.unwrap();
    assert!(plan.is_empty(), "{}", plan.summary());
    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Start).await.unwrap();
    assert_eq!(state("node/lb-1").await.0, "running");
    // Starting a running node is already done.
    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Start).await.unwrap();
    // Stop is graceful: the supervisor passes SIGTERM on and exits 0. (Once it runs: PID 1
    // ignores SIGTERM until it installs its handler, so wait for nginx to serve first.)
    let lb_http = format!("{}:80", cluster.topology.node("lb-1").unwrap().address);
    eventually(Duration::from_secs(20), "lb-1's nginx to serve /status after the restart", || {
        let lb_http = lb_http.clone();
        async move { http_get(&lb_http, "status", "/status").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    cluster.backend.node_op(cluster.name(), &lb, NodeOp::Stop).await.unwrap();
    let inspect = cluster
        .backend
        .docker()
        .inspect_container(&lb.provider_id, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .unwrap();
    assert_eq!(inspect.state.and_then(|s| s.exit_code), Some(0));
    cluster.destroy().await;
}

#[tokio::test]
async fn a_taken_port_is_named_in_the_error_and_leaves_no_container() {
    let cluster = TestCluster::new("port", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1\nadminlb = 0\n").await;
    let _taken = std::net::TcpListener::bind(("127.0.0.1", cluster.spec.sim.http_port)).expect("taking the elb's port");
    let err = cluster
        .engine()
        .apply(&cluster.graph(), "test apply", &|_| {})
        .await
        .expect_err("the elb cannot publish a taken port");
    let chain = format!("{:#}", anyhow::Error::new(err));
    assert!(chain.contains(&format!("127.0.0.1:{}", cluster.spec.sim.http_port)), "{chain}");
    // Docker may still list the removed container for a moment, in state "removing".
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let observed = cluster.backend.list(cluster.name()).await.unwrap();
        let elb: Vec<_> = observed.iter().filter(|o| o.kind() == ResourceKind::LoadBalancer).collect();
        if elb.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && elb.iter().all(|o| o.attrs.get("state").map(String::as_str) == Some("removing")),
            "a half-made elb was left: {observed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    cluster.destroy().await;
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
}

#[tokio::test]
async fn status_lists_every_node_and_logs_are_read_per_program() {
    let cluster = TestCluster::new("logs", SMALL).await;
    cluster.apply().await;
    let sim = paas_docker::sim::Sim::connect(cluster.spec.clone(), cluster.state.path(), None)
        .await
        .unwrap();
    let status = sim.status().await.unwrap();
    let names: Vec<&str> = status.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(status.nodes.iter().all(|n| n.state == "running"), "{:?}", status.nodes);
    // No apps yet: each lb is listed, routing nothing.
    let lbs: Vec<(&str, usize)> = status.lb_routes.iter().map(|r| (r.lb.as_str(), r.routes.len())).collect();
    assert_eq!(lbs, [("lb-1", 0), ("lb-2", 0)]);

    // The supervisors write the logs as the programs start: poll, bounded.
    let sim = &sim;
    for (node, process, expected) in [
        ("master-1", Some("zookeeper"), "QuorumPeerMain"),
        ("slave-1", Some("mesos"), "paas-node mesos-agent"),
        ("lb-1", None, "[lb-sync]"),
        ("lb-1", None, "[nginx]"),
    ] {
        eventually(
            Duration::from_secs(20),
            &format!("{expected} in the log of {node} ({process:?})"),
            || async move { sim.logs(node, process).await.ok().filter(|log| log.contains(expected)) },
        )
        .await;
    }
    assert!(matches!(
        sim.logs("slave-9", None).await,
        Err(paas_docker::sim::SimError::NoSuchNode { .. })
    ));
    cluster.destroy().await;
}

#[tokio::test]
async fn scaling_adds_and_removes_only_the_changed_nodes_and_down_leaves_other_clusters_alone() {
    let mut cluster = TestCluster::new("scale", SMALL).await;
    let other = TestCluster::new("other", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1\nadminlb = 0\n").await;
    cluster.apply().await;
    other.apply().await;
    let ids = |observed: &[paas_core::Observed]| -> std::collections::BTreeMap<String, String> {
        observed.iter().map(|o| (o.id.to_string(), o.provider_id.clone())).collect()
    };
    let before = ids(&cluster.backend.list(cluster.name()).await.unwrap());

    // 1 → 3 agents: two containers more, every other one untouched, all registered.
    cluster.respec(|spec| spec.nodes.slaves = 3);
    let plan = cluster.apply().await;
    assert_eq!((plan.count(Action::Create), plan.steps.len()), (2, 2), "{}", plan.summary());
    let grown = ids(&cluster.backend.list(cluster.name()).await.unwrap());
    for (id, container) in &before {
        assert_eq!(grown.get(id), Some(container), "{id} was disturbed");
    }
    let port = cluster.spec.sim.http_port;
    let topology = cluster.topology.clone();
    eventually(Duration::from_secs(60), "3 agents registered", || {
        let topology = topology.clone();
        async move { Some(paas_docker::health::probe(&topology, port).await).filter(|h| h.agents_registered == 3) }
    })
    .await;

    // 3 → 1: the two added agents go, nothing else.
    cluster.respec(|spec| spec.nodes.slaves = 1);
    let plan = cluster.apply().await;
    assert_eq!((plan.count(Action::Delete), plan.steps.len()), (2, 2), "{}", plan.summary());
    assert_eq!(ids(&cluster.backend.list(cluster.name()).await.unwrap()), before);

    // Tearing one cluster down leaves the other one whole.
    let other_before = ids(&other.backend.list(other.name()).await.unwrap());
    cluster.destroy().await;
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
    assert_eq!(ids(&other.backend.list(other.name()).await.unwrap()), other_before);
    other.destroy().await;
}

#[tokio::test]
async fn a_container_left_unstarted_by_an_interrupted_apply_is_replaced_and_removed() {
    let cluster = TestCluster::new("resume", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1\nadminlb = 0\n").await;
    cluster.apply().await;
    // What an apply killed between creating and starting slave-1 leaves behind.
    let docker = cluster.backend.docker();
    let name = paas_docker::container::container_name(cluster.name(), "slave-1");
    docker
        .remove_container(
            &name,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let graph = cluster.graph();
    let resource = graph.resources().iter().find(|r| r.id.as_str() == "node/slave-1").unwrap();
    let paas_core::resource::ResourceSpec::Node(node) = &resource.spec else {
        unreachable!()
    };
    let image = node_image(docker).await;
    let plan = paas_docker::container::for_node(cluster.name(), resource, node, &image);
    docker
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptions {
                name: Some(plan.name.clone()),
                ..Default::default()
            }),
            plan.body,
        )
        .await
        .unwrap();

    let plan = cluster.engine().plan(&graph).await.unwrap();
    assert_eq!((plan.count(Action::Replace), plan.steps.len()), (1, 1), "{}", plan.summary());
    cluster.apply().await;
    let observed = cluster.backend.list(cluster.name()).await.unwrap();
    let slave = observed.iter().find(|o| o.id.as_str() == "node/slave-1").unwrap();
    assert_eq!(slave.attrs.get("state").map(String::as_str), Some("running"));
    assert!(cluster.engine().plan(&graph).await.unwrap().is_empty());
    cluster.destroy().await;
    assert_eq!(cluster.leftovers().await, Vec::<String>::new());
}

/// `[sim.images]` names an image per role; its one contract is the node contract: the
/// container is started with `--config /etc/paas/node.json` as its command, so its entrypoint
/// must take the node's configuration file as `paas-node supervise` does. An image built here
/// on top of the sim's (another entrypoint that records its arguments, then hands over to
/// the supervisor) runs the lbs of a cluster that then serves.
#[tokio::test]
async fn an_image_named_in_sim_images_runs_the_role_with_the_node_configuration() {
    use bollard::query_parameters::{CommitContainerOptions, CreateContainerOptions, RemoveContainerOptions, RemoveImageOptions};

    let docker = paas_docker::connect_docker().await.expect("a running Docker engine");
    let base = node_image(&docker).await;
    let custom = format!("paas-test-custom-lb:{}", std::process::id());
    let entry = "#!/bin/sh\necho \"$@\" > /custom-entrypoint-args\nexec /usr/local/bin/paas-node supervise \"$@\"\n";
    let build = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(format!("paas-test-custom-build-{}", std::process::id())),
                ..Default::default()
            }),
            bollard::models::ContainerCreateBody {
                image: Some(base.clone()),
                cmd: Some(vec!["/bin/true".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("creating the build container");
    docker
        .upload_to_container(
            &build.id,
            Some(bollard::query_parameters::UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            }),
            bollard::body_full(paas_docker::images::tar_one_file("usr/local/bin/custom-entrypoint", entry.as_bytes(), 0o755).into()),
        )
        .await
        .expect("adding the entrypoint");
    let (repo, tag) = custom.split_once(':').unwrap();
    docker
        .commit_container(
            CommitContainerOptions {
                container: Some(build.id.clone()),
                repo: Some(repo.into()),
                tag: Some(tag.into()),
                ..Default::default()
            },
            bollard::models::ContainerConfig {
                entrypoint: Some(vec!["/usr/local/bin/custom-entrypoint".into()]),
                cmd: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .expect("committing the custom image");
    let _ = docker
        .remove_container(
            &build.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;

    let spec = format!("{SMALL}[sim.images]\nlb = \"{custom}\"\n");
    let cluster = TestCluster::new("images", &spec).await;
    cluster.apply().await;

    for lb in ["lb-1", "lb-2"] {
        let container = paas_docker::container::container_name(cluster.name(), lb);
        let inspected = docker
            .inspect_container(&container, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .expect("inspecting the lb");
        assert_eq!(
            inspected.config.and_then(|c| c.image).as_deref(),
            Some(custom.as_str()),
            "{lb} runs the named image"
        );
        let args = cluster
            .backend
            .read_container_file(&container, "/custom-entrypoint-args")
            .await
            .expect("reading the entrypoint's record");
        assert_eq!(
            args.as_deref().map(str::trim),
            Some("--config /etc/paas/node.json"),
            "{lb}'s entrypoint is given the node configuration"
        );
    }
    // Other roles keep the sim's image.
    let master = paas_docker::container::container_name(cluster.name(), "master-1");
    let inspected = docker
        .inspect_container(&master, None::<bollard::query_parameters::InspectContainerOptions>)
        .await
        .expect("inspecting master-1");
    assert_eq!(inspected.config.and_then(|c| c.image), Some(base));

    // The supervisor it handed over to runs the lb: nginx answers the elb's health check.
    let elb = format!("127.0.0.1:{}", cluster.spec.sim.http_port);
    let (status, body) = eventually(Duration::from_secs(60), "the lbs of the named image to answer /status", || {
        let elb = elb.clone();
        async move { http_get(&elb, "status", "/status").await.filter(|(s, _)| *s == 200) }
    })
    .await;
    assert_eq!((status, body.trim()), (200, "OK"));

    cluster.destroy().await;
    let _ = docker
        .remove_image(
            &custom,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await;
}
