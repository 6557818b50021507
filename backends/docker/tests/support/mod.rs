//! The harness: a small cluster of its own per test (unique name, network and 127.0.0.1
//! ports), removed when the test ends, pass or fail.

#![allow(dead_code)] // Each test module uses a different part of the harness.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use paas_core::engine::{ApplyOptions, Engine, StateStore};
use paas_core::spec::ValidationContext;
use paas_core::{ClusterSpec, Graph, Target, Topology};
use paas_docker::DockerBackend;
use paas_docker::images::{self, ImageInputs};

#[path = "../../../../node/tests/support/ports_and_waits.rs"]
mod ports_and_waits;

pub use ports_and_waits::free_port;

/// How often the waits below poll: each check asks Docker or the cluster.
const POLL: Duration = Duration::from_millis(200);

/// The node image for these tests: the base must have been built (it takes minutes, so a
/// test never builds it); the node layer on top is added here when missing.
pub async fn node_image(docker: &bollard::Docker) -> String {
    let inputs = ImageInputs::from_env().unwrap_or_else(|e| panic!("{e}: run `cargo build --workspace --bins --tests` first"));
    let tags = inputs.tags().expect("hashing the image inputs");
    assert!(
        images::is_present(docker, &tags.base)
            .await
            .expect("asking Docker for the base image"),
        "the base image {} is missing: build it with `paas sim images` (or `cargo run -p paas-docker --example sim_images`); it needs debootstrap",
        tags.base
    );
    images::ensure(docker, &inputs, &|_| {})
        .await
        .expect("adding paas-node to the base image")
        .node
}

/// A cluster owned by one test, destroyed on drop.
pub struct TestCluster {
    pub spec: ClusterSpec,
    pub topology: Topology,
    pub backend: DockerBackend,
    pub state: tempfile::TempDir,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TestCluster {
    /// A cluster from `extra` spec lines, named after the test and the process, on its own
    /// /20 and its own free 127.0.0.1 ports.
    pub async fn new(test: &str, extra: &str) -> TestCluster {
        let docker = paas_docker::connect_docker()
            .await
            .unwrap_or_else(|e| panic!("{e:#?}: these tests need a running Docker engine"));
        let image = node_image(&docker).await;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // A /20 per cluster (placement carves 16 subnets from it), distinct per process.
        // Up to 4 clusters per test process; nextest runs each test in a process of its own.
        assert!(n < 4, "at most 4 clusters per test");
        let id = (std::process::id() * 4 + n) % 2400;
        let name = format!("t{}-{test}", (std::process::id() * 4 + n) % 1_000_000);
        let toml = format!(
            "name = \"{name}\"\nvpc_cidr = \"10.{}.{}.0/20\"\n{extra}\n[sim]\nhttp_port = {}\nadmin_port = {}\nmarathon_port = {}\nmesos_port = {}\n",
            100 + id / 16,
            (id % 16) * 16,
            free_port(),
            free_port(),
            free_port(),
            free_port()
        );
        let spec = ClusterSpec::from_toml(&toml, Path::new("test.toml")).expect("test spec parses");
        spec.validate(ValidationContext { base_dir: Path::new(".") })
            .expect("test spec is valid");
        let topology = Topology::place(&spec, &Topology::sim_zones(spec.azs)).expect("test spec places");
        let cluster = TestCluster {
            spec,
            topology,
            backend: DockerBackend::new(docker, Some(image)),
            state: tempfile::tempdir().expect("creating a state directory"),
        };
        // A leftover of an earlier run with the same name would make the test lie.
        cluster.destroy().await;
        cluster
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn graph(&self) -> Graph {
        Graph::desired(&self.spec, &self.topology, Target::Sim)
    }

    pub fn engine(&self) -> Engine<'_> {
        Engine::new(
            &self.backend,
            StateStore::new(self.state.path(), self.name(), "sim"),
            ApplyOptions::default(),
        )
    }

    /// Applies the spec; panics with the engine's error.
    pub async fn apply(&self) -> paas_core::engine::Plan {
        let (plan, _) = self
            .engine()
            .apply(&self.graph(), "test apply", &|_| {})
            .await
            .unwrap_or_else(|e| panic!("applying {}: {e:#?}", self.name()));
        plan
    }

    /// Places `spec` again after a change.
    pub fn respec(&mut self, change: impl FnOnce(&mut ClusterSpec)) {
        change(&mut self.spec);
        self.topology = Topology::place(&self.spec, &Topology::sim_zones(self.spec.azs)).expect("changed spec places");
    }

    pub async fn destroy(&self) {
        self.engine()
            .destroy(self.name(), Target::Sim, "test destroy", &|_| {})
            .await
            .unwrap_or_else(|e| panic!("destroying {}: {e:#?}", self.name()));
    }

    /// A node's whole container output, for failure messages.
    pub async fn logs(&self, node: &str) -> String {
        match paas_docker::sim::Sim::connect(self.spec.clone(), self.state.path(), None).await {
            Ok(sim) => sim.logs(node, None).await.unwrap_or_else(|e| format!("(no logs: {e})")),
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// Names of the Docker containers and networks labelled with this cluster.
    pub async fn leftovers(&self) -> Vec<String> {
        leftovers(self.backend.docker(), self.name()).await
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Removal must happen even when the test panicked: by label, with the CLI-free API,
        // on a runtime of its own (the test's may be gone).
        let name = self.spec.name.clone();
        let docker = self.backend.docker().clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(remove_by_label(&docker, &name));
        })
        .join();
    }
}

/// Every container and network labelled `paas.cluster=<cluster>`, and every task container
/// labelled `paas.task.cluster=<cluster>`.
pub async fn leftovers(docker: &bollard::Docker, cluster: &str) -> Vec<String> {
    let filters = paas_docker::labels::cluster_filter(cluster);
    let task_filters: std::collections::HashMap<String, Vec<String>> = [(
        "label".to_string(),
        vec![format!("{}={cluster}", paas_core::render::sim::TASK_CLUSTER_LABEL)],
    )]
    .into();
    let mut found = Vec::new();
    for filters in [filters.clone(), task_filters] {
        found.extend(
            docker
                .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                    all: true,
                    filters: Some(filters),
                    ..Default::default()
                }))
                .await
                .expect("listing containers")
                .into_iter()
                .flat_map(|c| c.names.unwrap_or_default()),
        );
    }
    found.extend(
        docker
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(filters) }))
            .await
            .expect("listing networks")
            .into_iter()
            .filter_map(|n| n.name),
    );
    found
}

async fn remove_by_label(docker: &bollard::Docker, cluster: &str) {
    let filters = paas_docker::labels::cluster_filter(cluster);
    // Task containers first: they hold their task networks (and a HOST one a slave's
    // namespace).
    let task_filters: std::collections::HashMap<String, Vec<String>> = [(
        "label".to_string(),
        vec![format!("{}={cluster}", paas_core::render::sim::TASK_CLUSTER_LABEL)],
    )]
    .into();
    for filters in [task_filters, filters.clone()] {
        let Ok(containers) = docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
        else {
            continue;
        };
        for c in containers.into_iter().filter_map(|c| c.id) {
            let _ = docker
                .remove_container(
                    &c,
                    Some(bollard::query_parameters::RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
        }
    }
    if let Ok(networks) = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(filters) }))
        .await
    {
        for n in networks.into_iter().filter_map(|n| n.id) {
            let _ = docker.remove_network(&n).await;
        }
    }
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `timeout`; `None` when
/// time runs out.
pub async fn within<T, F, Fut>(timeout: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    ports_and_waits::within_every(POLL, timeout, check).await
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `timeout`; panics with
/// `what` when time runs out.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    ports_and_waits::eventually_every(POLL, timeout, what, check).await
}

/// A plain HTTP/1.0 GET on 127.0.0.1 or a cluster address: status and body, or `None` when
/// nothing answers.
pub async fn http_get(address: &str, host: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = tokio::net::TcpStream::connect(address);
    let mut stream = tokio::time::timeout(Duration::from_secs(2), connect).await.ok()?.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// A ZooKeeper four-letter command to `address`.
pub async fn four_letter(address: &str, command: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    stream.write_all(command.as_bytes()).await.ok()?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(answer)
}
