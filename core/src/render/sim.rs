//! The sim's Docker objects as node configuration names them: a slave's agent runs its Docker
//! tasks as siblings of the slave container on the host's engine, so its flags name that
//! container, the slave's task network and the labels that tie each task container to its
//! cluster and node. The Docker backend creates these objects under the same names.

use crate::topology::Node;

/// Where the sim mounts the engine's socket in a slave (Mesos' default `--docker_socket`).
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Label of a task container (and of a task network): the cluster it belongs to.
pub const TASK_CLUSTER_LABEL: &str = "paas.task.cluster";
/// Label of a task container (and of a task network): the slave whose agent created it.
pub const TASK_NODE_LABEL: &str = "paas.task.node";

/// The container of a node (`paas-slave-1`) or of the elb (`paas-elb`).
pub fn container_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}")
}

/// The Docker network a slave's BRIDGE tasks join (`paas-slave-1-tasks`): internal, reached
/// only through the slave, which is its one other member.
pub fn task_network_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}-tasks")
}

/// The agent flags that place a sim slave's Docker tasks: the engine's socket, the slave's
/// task network for BRIDGE tasks, the slave container's namespace for HOST tasks, and labels
/// naming the cluster and the node on every task container.
pub fn agent_docker_flags(cluster: &str, node: &Node) -> Vec<String> {
    vec![
        format!("--docker_socket={DOCKER_SOCKET}"),
        format!("--docker_network={}", task_network_name(cluster, &node.name)),
        format!("--docker_host_network=container:{}", container_name(cluster, &node.name)),
        format!(
            "--docker_task_labels={TASK_CLUSTER_LABEL}={cluster},{TASK_NODE_LABEL}={}",
            node.name
        ),
    ]
}
