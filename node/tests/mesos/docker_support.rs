//! Agents with the docker containerizer, for the tests of Docker tasks: a Docker network of the
//! test's own for BRIDGE tasks, the test app image (`tests/fixtures/app-image`, built FROM the
//! sim's base image by `paas_docker::local_image::build_test_app`), and an agent on a loopback
//! address of its own (`127.x.y.z`), which is also its `--hostname` and so the `paas.agent`
//! label of its containers: tests running at once never touch each other's containers.
//! Everything the test created in Docker is removed on drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, NetworkCreateRequest};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions, RemoveContainerOptions};

use crate::support::mesos::{AgentNode, MesosCluster, ZK_SESSION_TIMEOUT};
use crate::support::process::NodeProcess;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Docker for one test: its network, the app image, and the agents it started.
pub struct DockerEnv {
    pub docker: Docker,
    pub network: String,
    pub image: String,
    /// The address (`--hostname`, `--ip`) of each agent started, to clean up after.
    agents: Vec<String>,
}

/// One docker agent's flags, kept to start it again after a restart.
#[derive(Clone)]
pub struct DockerAgent {
    /// Its address, `--ip` and `--hostname`.
    pub address: String,
    pub port: u16,
    pub resources: String,
    /// The index in `MesosCluster::agents`.
    pub index: usize,
}

impl DockerEnv {
    /// Connects to Docker, builds the test app image when missing, and creates the test's
    /// network. Panics naming what is missing (Docker, the base image).
    pub async fn new(test: &str) -> DockerEnv {
        let docker = paas_docker::connect_docker()
            .await
            .unwrap_or_else(|e| panic!("{e:#?}: the Docker task tests need a running Docker engine"));
        let image = paas_docker::local_image::build_test_app(&docker)
            .await
            .unwrap_or_else(|e| panic!("building the test app image: {e}"));
        let network = format!("paas-t{}-{}-{test}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(HashMap::from([("paas.test".to_owned(), "node".to_owned())])),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating the Docker network {network}: {e}"));
        DockerEnv {
            docker,
            network,
            image,
            agents: Vec::new(),
        }
    }

    /// Starts an agent with `--containerizers=docker,mesos` on an address of its own, with
    /// `ports` ports of its own (the app's HOST tasks bind them on every address).
    pub fn start_agent(&mut self, cluster: &mut MesosCluster, ports: u16) -> DockerAgent {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let address = format!("127.{}.{}.{}", 10 + n % 200, (pid >> 8) & 255, pid & 255);
        // Tests run in processes of their own, one docker agent each: a port block per process.
        let first = 20_000 + (pid % 400) as u16 * 25;
        let resources = format!("cpus:2;mem:1024;disk:1000;ports:[{first}-{}]", first + ports.clamp(1, 25) - 1);
        let port = crate::support::free_port();
        let work_dir = tempfile::tempdir().expect("agent work dir");
        let agent = DockerAgent {
            address,
            port,
            resources,
            index: cluster.agents.len(),
        };
        let process = self.spawn_agent(cluster, &agent, work_dir.path());
        self.agents.push(agent.address.clone());
        cluster.agents.push(AgentNode { port, process, work_dir });
        agent
    }

    /// Kills the agent process (SIGKILL, its containers keep running) and starts it again on
    /// the same work dir, address and port.
    pub fn restart_agent(&self, cluster: &mut MesosCluster, agent: &DockerAgent) {
        cluster.agents[agent.index].process.kill();
        let work_dir = cluster.agents[agent.index].work_dir.path().to_owned();
        cluster.agents[agent.index].process = self.spawn_agent(cluster, agent, &work_dir);
    }

    fn spawn_agent(&self, cluster: &MesosCluster, agent: &DockerAgent, work_dir: &std::path::Path) -> NodeProcess {
        NodeProcess::spawn(
            "mesos-agent",
            [
                format!("--master={}", cluster.zk.url("mesos")),
                format!("--port={}", agent.port),
                format!("--ip={}", agent.address),
                format!("--hostname={}", agent.address),
                format!("--resources={}", agent.resources),
                "--attributes=zone:a".into(),
                format!("--work_dir={}", work_dir.display()),
                format!("--zk_session_timeout={ZK_SESSION_TIMEOUT}"),
                "--executor_shutdown_grace_period=1secs".into(),
                "--containerizers=docker,mesos".into(),
                format!("--docker_network={}", self.network),
                "--docker_task_labels=paas.test=node".into(),
            ],
        )
    }

    /// The task containers of an agent (by its `paas.agent` label), running or not.
    pub async fn containers_of(&self, agent: &DockerAgent) -> Vec<ContainerInspectResponse> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("paas.agent={}", agent.address)])]);
        let listed = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("listing task containers");
        let mut found = Vec::new();
        for container in listed {
            if let Some(id) = container.id
                && let Ok(inspected) = self.docker.inspect_container(&id, None::<InspectContainerOptions>).await
            {
                found.push(inspected);
            }
        }
        found
    }

    /// The container running `task_id`, if any.
    pub async fn container_of_task(&self, agent: &DockerAgent, task_id: &str) -> Option<ContainerInspectResponse> {
        self.containers_of(agent).await.into_iter().find(|c| {
            c.config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get("mesos.task_id"))
                .is_some_and(|t| t == task_id)
        })
    }
}

impl Drop for DockerEnv {
    fn drop(&mut self) {
        let (docker, network, agents) = (self.docker.clone(), self.network.clone(), self.agents.clone());
        // Drop cannot await: clean up on a runtime of its own, on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                for agent in agents {
                    let filters = HashMap::from([("label".to_owned(), vec![format!("paas.agent={agent}")])]);
                    let listed = docker
                        .list_containers(Some(ListContainersOptions {
                            all: true,
                            filters: Some(filters),
                            ..Default::default()
                        }))
                        .await
                        .unwrap_or_default();
                    for id in listed.into_iter().filter_map(|c| c.id) {
                        let _ = docker
                            .remove_container(
                                &id,
                                Some(RemoveContainerOptions {
                                    force: true,
                                    ..Default::default()
                                }),
                            )
                            .await;
                    }
                }
                let _ = docker.remove_network(&network).await;
            });
        });
        let _ = cleanup.join();
    }
}
