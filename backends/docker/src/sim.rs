//! The sim's operations, for the `paas sim` commands: bring a cluster up and wait for it to be
//! healthy, report its status, read a node's logs, tear it down.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use paas_core::engine::{ApplyOptions, ApplyReport, Engine, EngineError, Event, StateStore};
use paas_core::{ClusterSpec, Graph, Plan, Target, Topology};
use serde::Serialize;

use crate::backend::DockerBackend;
use crate::health::{self, Health};
use crate::images::{self, ImageError, ImageInputs, ImageProgress};
use crate::labels;
use crate::tasks::TaskContainer;

/// Why a sim operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("building the sim images")]
    Images(#[source] ImageError),
    #[error(transparent)]
    Connect(#[from] crate::backend::ConnectError),
    #[error("placing the cluster")]
    Placement(#[source] paas_core::topology::PlacementError),
    #[error("applying the plan for cluster {cluster}")]
    Apply {
        cluster: String,
        #[source]
        source: EngineError,
    },
    #[error("the cluster did not become healthy within {waited:?}; still waiting for: {}", waiting.join("; "))]
    Unhealthy { waited: Duration, waiting: Vec<String> },
    #[error("{op} the Docker task containers of cluster {cluster}")]
    Tasks {
        op: &'static str,
        cluster: String,
        #[source]
        source: paas_core::BackendError,
    },
    #[error("no node {node} in cluster {cluster}")]
    NoSuchNode { cluster: String, node: String },
    #[error("reading the logs of {node}")]
    Logs {
        node: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// The steps applied (empty when the cluster already matched the spec).
    pub plan: Plan,
    pub apply: ApplyReport,
    pub health: Health,
    /// Seconds from the start of `up` to a healthy cluster.
    pub seconds_to_healthy: f64,
    pub endpoints: Endpoints,
}

/// Where the cluster is reached from this machine.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoints {
    /// Apps through the elb: `http://<app>.<domain>:<port>/`.
    pub apps: String,
    /// Marathon's UI and API through the admin entry, by name (`*.localhost` resolves in
    /// browsers and curl).
    pub marathon: String,
    /// The leading Mesos master through the admin entry, by name.
    pub mesos: String,
    /// Marathon through the admin entry on a plain `127.0.0.1` port: for every HTTP client,
    /// including those whose resolver does not know `*.localhost` (Python, Java, Go).
    pub marathon_api: String,
    /// The leading Mesos master through the admin entry on a plain `127.0.0.1` port.
    pub mesos_api: String,
}

impl Endpoints {
    /// The endpoints of a sim cluster with this spec.
    pub fn of(spec: &ClusterSpec) -> Endpoints {
        Endpoints {
            apps: format!("http://www.{}:{}/", spec.domain, spec.sim.http_port),
            marathon: format!("http://marathon.admin.{}:{}/", spec.domain, spec.sim.admin_port),
            mesos: format!("http://mesos.admin.{}:{}/", spec.domain, spec.sim.admin_port),
            marathon_api: format!("http://127.0.0.1:{}/", spec.sim.marathon_port),
            mesos_api: format!("http://127.0.0.1:{}/", spec.sim.mesos_port),
        }
    }
}

/// A node as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    pub az: String,
    pub address: String,
    /// Docker's state: `running`, `exited`, `paused`...
    pub state: String,
}

/// The routes one lb serves, as lb-sync last wrote them.
#[derive(Debug, Clone, Serialize)]
pub struct LbRoutes {
    pub lb: String,
    /// `server_name`s with their number of backends, e.g. (`www.paas.localhost`, 3).
    pub routes: Vec<(String, usize)>,
}

/// The Docker task containers one slave's agent runs.
#[derive(Debug, Clone, Serialize)]
pub struct AgentTasks {
    pub node: String,
    pub tasks: Vec<TaskContainer>,
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub nodes: Vec<NodeStatus>,
    /// Docker task containers per slave (slaves with none are left out).
    pub task_containers: Vec<AgentTasks>,
    pub health: Health,
    pub lb_routes: Vec<LbRoutes>,
    pub endpoints: Endpoints,
}

/// One cluster of the sim, from its spec.
pub struct Sim {
    pub spec: ClusterSpec,
    pub topology: Topology,
    pub backend: DockerBackend,
    state_dir: std::path::PathBuf,
}

impl Sim {
    /// Connects to Docker. `image` is the default node image (see [`ensure_images`]); `None`
    /// is enough for status, logs and down.
    pub async fn connect(spec: ClusterSpec, state_dir: &Path, image: Option<String>) -> Result<Sim, SimError> {
        let topology = Topology::place(&spec, &Topology::sim_zones(spec.azs)).map_err(SimError::Placement)?;
        let backend = DockerBackend::connect(image).await?;
        Ok(Sim {
            spec,
            topology,
            backend,
            state_dir: state_dir.to_path_buf(),
        })
    }

    pub fn graph(&self) -> Graph {
        Graph::desired(&self.spec, &self.topology, Target::Sim)
    }

    pub fn engine(&self) -> Engine<'_> {
        Engine::new(
            &self.backend,
            StateStore::new(&self.state_dir, &self.spec.name, "sim"),
            ApplyOptions::default(),
        )
    }

    /// Applies the spec, then waits up to `timeout` for every health check to pass.
    pub async fn up(
        &self,
        timeout: Duration,
        on_event: &(dyn Fn(Event) + Sync),
        on_wait: &(dyn Fn(&Health) + Sync),
    ) -> Result<UpReport, SimError> {
        let started = Instant::now();
        let (plan, apply) = self
            .engine()
            .apply(&self.graph(), "paas sim up", on_event)
            .await
            .map_err(|source| SimError::Apply {
                cluster: self.spec.name.clone(),
                source,
            })?;
        let health = self.wait_healthy(timeout, on_wait).await?;
        Ok(UpReport {
            plan,
            apply,
            health,
            seconds_to_healthy: started.elapsed().as_secs_f64(),
            endpoints: Endpoints::of(&self.spec),
        })
    }

    /// Probes until healthy (every 250 ms), or fails naming what is still missing.
    pub async fn wait_healthy(&self, timeout: Duration, on_wait: &(dyn Fn(&Health) + Sync)) -> Result<Health, SimError> {
        let deadline = Instant::now() + timeout;
        loop {
            let health = health::probe(&self.topology, self.spec.sim.http_port).await;
            if health.is_healthy() {
                return Ok(health);
            }
            on_wait(&health);
            if Instant::now() >= deadline {
                return Err(SimError::Unhealthy {
                    waited: timeout,
                    waiting: health.waiting_for(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Nodes as Docker has them, with one round of health probes.
    pub async fn status(&self) -> Result<Status, SimError> {
        let observed = self.engine().observe(&self.spec.name).await.map_err(|source| SimError::Apply {
            cluster: self.spec.name.clone(),
            source,
        })?;
        let mut nodes: Vec<NodeStatus> = observed
            .iter()
            .filter(|o| {
                matches!(
                    o.kind(),
                    paas_core::resource::ResourceKind::Node | paas_core::resource::ResourceKind::LoadBalancer
                )
            })
            .map(|o| NodeStatus {
                name: o.id.name().to_string(),
                role: o.attrs.get("role").cloned().unwrap_or_default(),
                az: o.attrs.get("az").cloned().unwrap_or_default(),
                address: o.attrs.get("address").cloned().unwrap_or_default(),
                state: o.attrs.get("state").cloned().unwrap_or_default(),
            })
            .collect();
        nodes.sort_by(|a, b| (&a.az, &a.role, &a.name).cmp(&(&b.az, &b.role, &b.name)));
        let tasks = self
            .backend
            .task_containers(&self.spec.name, None)
            .await
            .map_err(|source| SimError::Tasks {
                op: "listing",
                cluster: self.spec.name.clone(),
                source,
            })?;
        Ok(Status {
            cluster: self.spec.name.clone(),
            nodes,
            task_containers: per_agent(tasks),
            lb_routes: self.lb_routes().await,
            health: health::probe(&self.topology, self.spec.sim.http_port).await,
            endpoints: Endpoints::of(&self.spec),
        })
    }

    /// The routes each lb's nginx serves, as lb-sync last wrote them (none for an lb whose
    /// file cannot be read).
    pub async fn lb_routes(&self) -> Vec<LbRoutes> {
        let lbs = self.topology.nodes_of(paas_core::Role::Lb).map(|lb| async move {
            let text = self
                .read_node_file(&lb.name, paas_core::render::paths::NGINX_ROUTES)
                .await
                .unwrap_or_default();
            LbRoutes {
                lb: lb.name.clone(),
                routes: parse_routes(&text),
            }
        });
        futures::future::join_all(lbs).await
    }

    /// Removes every container and network of the cluster (found by label), task containers
    /// and task networks included; safe to re-run.
    pub async fn down(&self, on_event: &(dyn Fn(Event) + Sync)) -> Result<(Plan, ApplyReport), SimError> {
        let apply_err = |source| SimError::Apply {
            cluster: self.spec.name.clone(),
            source,
        };
        let destroyed = self
            .engine()
            .destroy(&self.spec.name, Target::Sim, "paas sim down", on_event)
            .await
            .map_err(apply_err)?;
        // Deleting a slave removes its tasks; this sweep finds those of slaves the engine no
        // longer knew (a lost state file, a slave removed by hand).
        self.backend
            .remove_tasks(&self.spec.name, None)
            .await
            .map_err(|source| SimError::Tasks {
                op: "removing",
                cluster: self.spec.name.clone(),
                source,
            })?;
        Ok(destroyed)
    }

    /// A small file of a node (running or not), or `None`.
    async fn read_node_file(&self, node: &str, path: &str) -> Option<String> {
        let container = crate::container::container_name(&self.spec.name, node);
        self.backend.read_container_file(&container, path).await.ok().flatten()
    }

    /// A node's log: one program's file (`zookeeper`, `mesos` (master or agent), `marathon`,
    /// `nginx`, `lb-sync`, `haproxy`), or the whole container output with every program
    /// prefixed. Works on stopped nodes too.
    pub async fn logs(&self, node: &str, process: Option<&str>) -> Result<String, SimError> {
        let container = crate::container::container_name(&self.spec.name, node);
        let docker = self.backend.docker();
        let belongs = docker
            .inspect_container(&container, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .ok()
            .and_then(|c| c.config?.labels?.get(labels::CLUSTER).cloned())
            .is_some_and(|c| c == self.spec.name);
        if !belongs {
            return Err(SimError::NoSuchNode {
                cluster: self.spec.name.clone(),
                node: node.into(),
            });
        }
        let logs_err = |source| SimError::Logs { node: node.into(), source };
        match process {
            Some(process) => {
                let candidates: Vec<String> = match process {
                    "mesos" => vec!["mesos-master".into(), "mesos-agent".into()],
                    other => vec![other.to_string()],
                };
                let mut text = String::new();
                for name in candidates {
                    let path = format!("/var/log/paas/{name}.log");
                    if let Some(log) = self.backend.read_container_file(&container, &path).await.map_err(logs_err)? {
                        text.push_str(&log);
                    }
                }
                Ok(text)
            }
            None => {
                let mut stream = docker.logs(
                    &container,
                    Some(LogsOptions {
                        stdout: true,
                        stderr: true,
                        tail: "all".into(),
                        ..Default::default()
                    }),
                );
                let mut text = String::new();
                while let Some(chunk) = stream.next().await {
                    text.push_str(&chunk.map_err(logs_err)?.to_string());
                }
                Ok(text)
            }
        }
    }
}

/// Task containers grouped by the slave that runs them, in node order.
fn per_agent(tasks: Vec<TaskContainer>) -> Vec<AgentTasks> {
    let mut agents: Vec<AgentTasks> = Vec::new();
    for task in tasks {
        match agents.last_mut() {
            Some(agent) if agent.node == task.node => agent.tasks.push(task),
            _ => agents.push(AgentTasks {
                node: task.node.clone(),
                tasks: vec![task],
            }),
        }
    }
    agents
}

/// The routed names of an nginx routes file and how many backends each has: a `server`
/// block's `server_name`, counting the `server` lines of the `upstream` it proxies to.
fn parse_routes(text: &str) -> Vec<(String, usize)> {
    let mut backends: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut upstream: Option<String> = None;
    let mut routes = Vec::new();
    let mut names: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("upstream ").and_then(|l| l.strip_suffix(" {")) {
            upstream = Some(name.to_string());
        } else if line.starts_with("server ") && !line.ends_with('{') {
            if let Some(u) = &upstream {
                *backends.entry(u.clone()).or_default() += 1;
            }
        } else if line == "}" {
            upstream = None;
        } else if let Some(n) = line.strip_prefix("server_name ").and_then(|l| l.strip_suffix(';')) {
            names = Some(n.to_string());
        } else if let Some(target) = line.strip_prefix("proxy_pass http://").and_then(|l| l.strip_suffix(';')) {
            if let Some(n) = names.take() {
                routes.push((n, backends.get(target).copied().unwrap_or(0)));
            }
        } else if line.starts_with("return 503")
            && let Some(n) = names.take()
        {
            routes.push((n, 0));
        }
    }
    routes
}

/// Builds the sim images if they are missing and returns the node image's tag.
pub async fn ensure_images(progress: &(dyn Fn(ImageProgress) + Sync)) -> Result<String, SimError> {
    let docker = crate::backend::connect_docker().await?;
    let inputs = ImageInputs::from_env().map_err(SimError::Images)?;
    let tags = images::ensure(&docker, &inputs, progress).await.map_err(SimError::Images)?;
    Ok(tags.node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_with_their_backend_counts() {
        let text = "upstream www_paas_localhost {\n    server 10.20.128.30:31000 max_fails=1 fail_timeout=5s;\n    server 10.20.144.30:31002 max_fails=1 fail_timeout=5s;\n}\n\
                    server {\n    listen 80;\n    server_name www.paas.localhost;\n    location / {\n        proxy_pass http://www_paas_localhost;\n    }\n}\n\
                    server {\n    listen 80;\n    server_name api.paas.localhost;\n    location / {\n        return 503;\n    }\n}\n";
        assert_eq!(
            parse_routes(text),
            [("www.paas.localhost".to_string(), 2), ("api.paas.localhost".to_string(), 0)]
        );
    }
}
