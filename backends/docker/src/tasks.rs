//! A slave's Docker tasks in the sim. The slave's agent creates them on the host's engine as
//! siblings of the slave container (labelled with [`TASK_CLUSTER_LABEL`] and
//! [`TASK_NODE_LABEL`]); the backend owns what surrounds them: the slave's task network, and
//! carrying the slave's life to its tasks — a machine that dies, stops or freezes takes its
//! processes with it, and a deleted machine leaves none behind.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{ContainerSummaryStateEnum, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    InspectNetworkOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions, StopContainerOptions,
};
use ipnet::Ipv4Net;
use paas_core::NodeOp;
use paas_core::backend::BackendError;
use paas_core::render::sim::{TASK_CLUSTER_LABEL, TASK_NODE_LABEL, task_network_name};
use serde::Serialize;

use crate::backend::{DockerBackend, colliding_host_routes, map_err};
use crate::labels;

/// The address space task networks are carved from: the shared address space of RFC 6598,
/// which neither Docker's default pools nor the clusters' `vpc_cidr`s (10.x) use.
const TASK_SPACE: &str = "100.64.0.0/10";

/// How many /24s of [`TASK_SPACE`] one task network tries before giving up.
const SUBNET_ATTEMPTS: u32 = 64;

/// Seconds a stopped slave's tasks get between SIGTERM and SIGKILL, as the slave itself.
const STOP_GRACE_SECS: i32 = 10;

/// A task container as `paas sim status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskContainer {
    /// The slave whose agent runs it (`slave-2`).
    pub node: String,
    /// The container's name (`mesos-<container id>`).
    pub container: String,
    /// The Mesos task id, from the agent's label.
    pub task_id: String,
    pub image: String,
    /// Docker's state: `running`, `exited`, `paused`...
    pub state: String,
}

/// The label filter for a cluster's tasks, or one slave's.
fn task_filter(cluster: &str, node: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut wanted = vec![format!("{TASK_CLUSTER_LABEL}={cluster}")];
    wanted.extend(node.map(|n| format!("{TASK_NODE_LABEL}={n}")));
    [("label".to_string(), wanted)].into()
}

/// The `attempt`th candidate /24 for a slave's task network: a stable place in
/// [`TASK_SPACE`] for each cluster and node, then the next ones.
fn task_subnet(cluster: &str, node: &str, attempt: u32) -> Ipv4Net {
    let space: Ipv4Net = TASK_SPACE.parse().expect("a valid constant");
    let blocks = 1u32 << (24 - space.prefix_len());
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = format!("{cluster}/{node}")
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let block = (hash.wrapping_add(attempt)) % blocks;
    Ipv4Net::new(Ipv4Addr::from(u32::from(space.network()) + (block << 8)), 24).expect("a /24")
}

impl DockerBackend {
    /// Creates `node`'s task network unless it exists: an internal bridge (no route out of
    /// it), whose only other member is the slave, so a BRIDGE task is reached only through
    /// the slave's forwarded ports. Reuses one this cluster made before.
    pub async fn ensure_task_network(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        let name = task_network_name(cluster, node);
        let id = format!("node/{node}");
        if let Ok(existing) = self.docker().inspect_network(&name, None::<InspectNetworkOptions>).await {
            let owner = existing.labels.unwrap_or_default().get(TASK_CLUSTER_LABEL).cloned();
            return match owner {
                Some(owner) if owner == cluster => Ok(()),
                _ => Err(BackendError::failed(
                    "create",
                    &id,
                    format!(
                        "a Docker network named {name} already exists and is not this cluster's task network (remove it, or rename the cluster)"
                    ),
                )),
            };
        }
        let labels: HashMap<String, String> = [(labels::CLUSTER, cluster), (TASK_CLUSTER_LABEL, cluster), (TASK_NODE_LABEL, node)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut last = String::new();
        for attempt in 0..SUBNET_ATTEMPTS {
            let subnet = task_subnet(cluster, node, attempt);
            // A /24 the host routes elsewhere (a VPN in the shared space) would hide it.
            let routes = colliding_host_routes(subnet);
            if !routes.is_empty() {
                last = format!("{subnet} overlaps the host's routes ({})", routes.join(", "));
                continue;
            }
            let created = self
                .docker()
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".into()),
                    internal: Some(true),
                    ipam: Some(Ipam {
                        driver: Some("default".into()),
                        config: Some(vec![IpamConfig {
                            subnet: Some(subnet.to_string()),
                            ..Default::default()
                        }]),
                        options: None,
                    }),
                    labels: Some(labels.clone()),
                    ..Default::default()
                })
                .await;
            match created {
                Ok(_) => return Ok(()),
                // Another network (another cluster's slave) has this /24: the next one.
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) if message.contains("overlap") => {
                    last = message;
                }
                Err(e) => return Err(map_err("create task network", &id, e)),
            }
        }
        Err(BackendError::failed(
            "create",
            &id,
            format!("no free /24 for its task network in {SUBNET_ATTEMPTS} tries within {TASK_SPACE}: {last}"),
        ))
    }

    /// The task containers of a cluster, or of one of its slaves, running or not.
    pub async fn task_containers(&self, cluster: &str, node: Option<&str>) -> Result<Vec<TaskContainer>, BackendError> {
        let found = self
            .docker()
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(task_filter(cluster, node)),
                ..Default::default()
            }))
            .await
            .map_err(|e| map_err("list task containers", cluster, e))?;
        let mut tasks: Vec<TaskContainer> = found
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                TaskContainer {
                    node: labels.get(TASK_NODE_LABEL).cloned().unwrap_or_default(),
                    container: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    task_id: labels.get("mesos.task_id").cloned().unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                }
            })
            .collect();
        tasks.sort_by(|a, b| (&a.node, &a.task_id, &a.container).cmp(&(&b.node, &b.task_id, &b.container)));
        Ok(tasks)
    }

    /// Removes the task containers of a cluster or of one slave, then their task networks;
    /// safe to re-run.
    pub async fn remove_tasks(&self, cluster: &str, node: Option<&str>) -> Result<(), BackendError> {
        self.remove_task_containers(cluster, node).await?;
        let what = node.map_or_else(|| cluster.to_string(), |n| format!("node/{n}"));
        let networks = self
            .docker()
            .list_networks(Some(ListNetworksOptions {
                filters: Some(task_filter(cluster, node)),
            }))
            .await
            .map_err(|e| map_err("list task networks", &what, e))?;
        for network in networks {
            let Some(id) = network.id else { continue };
            match self.remove_network(&id).await {
                Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => return Err(map_err("remove task network", &what, e)),
            }
        }
        Ok(())
    }

    /// Removes the task containers of a cluster or of one slave, whatever their state.
    pub(crate) async fn remove_task_containers(&self, cluster: &str, node: Option<&str>) -> Result<(), BackendError> {
        let removals = self.task_containers(cluster, node).await?.into_iter().map(|task| async move {
            let removed = self
                .docker()
                .remove_container(
                    &task.container,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
            match removed {
                Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                // Already being removed (by its agent's orphan sweep, say).
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
                Err(e) => Err(map_err("remove task container", &task.container, e)),
            }
        });
        futures::future::try_join_all(removals).await.map(|_| ())
    }

    /// Carries a node operation on a slave to its task containers, as a machine's fate
    /// reaches its processes: kill and stop end them (SIGKILL; SIGTERM, then SIGKILL after the
    /// slave's own grace) and nothing brings them back (the agent recovers what is left and
    /// Marathon relaunches elsewhere); pause and unpause freeze and thaw them with the slave;
    /// start leaves them be.
    pub(crate) async fn carry_to_tasks(&self, cluster: &str, node: &str, op: NodeOp) -> Result<(), BackendError> {
        let tasks = self.task_containers(cluster, Some(node)).await?;
        let wanted = |t: &TaskContainer| match op {
            NodeOp::Kill | NodeOp::Stop | NodeOp::Pause => t.state == ContainerSummaryStateEnum::RUNNING.to_string(),
            NodeOp::Unpause => t.state == ContainerSummaryStateEnum::PAUSED.to_string(),
            NodeOp::Start => false,
        };
        let ops = tasks.iter().filter(|t| wanted(t)).map(|task| async move {
            let docker = self.docker();
            let name = task.container.as_str();
            let result = match op {
                NodeOp::Kill => {
                    docker
                        .kill_container(name, Some(KillContainerOptions { signal: "SIGKILL".into() }))
                        .await
                }
                NodeOp::Stop => {
                    docker
                        .stop_container(
                            name,
                            Some(StopContainerOptions {
                                t: Some(STOP_GRACE_SECS),
                                signal: None,
                            }),
                        )
                        .await
                }
                NodeOp::Pause => docker.pause_container(name).await,
                NodeOp::Unpause => docker.unpause_container(name).await,
                NodeOp::Start => Ok(()),
            };
            match result {
                Ok(()) => Ok(()),
                // Gone or already in that state meanwhile (its agent may have acted first).
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304 | 404 | 409,
                    ..
                }) => Ok(()),
                Err(e) => Err(map_err("task container operation", name, e)),
            }
        });
        futures::future::try_join_all(ops).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_subnets_are_24s_of_the_shared_space_and_differ_by_node_and_attempt() {
        let space: Ipv4Net = TASK_SPACE.parse().unwrap();
        let a = task_subnet("paas", "slave-1", 0);
        let b = task_subnet("paas", "slave-2", 0);
        let a1 = task_subnet("paas", "slave-1", 1);
        for net in [a, b, a1] {
            assert_eq!(net.prefix_len(), 24);
            assert!(space.contains(&net), "{net} outside {space}");
        }
        assert_ne!(a, b);
        assert_ne!(a, a1);
        assert_eq!(a, task_subnet("paas", "slave-1", 0), "stable for a node");
    }

    #[test]
    fn the_task_filter_names_the_cluster_and_optionally_the_node() {
        assert_eq!(task_filter("c1", None)["label"], ["paas.task.cluster=c1"]);
        assert_eq!(
            task_filter("c1", Some("slave-3"))["label"],
            ["paas.task.cluster=c1", "paas.task.node=slave-3"]
        );
    }
}
