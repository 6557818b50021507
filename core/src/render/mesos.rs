//! Flags of the Mesos master, Mesos agent and Marathon, as the upstream programs name them.

use super::{paths, ports};
use crate::spec::ClusterSpec;
use crate::topology::{Node, Topology};

/// Flags of `mesos-master` on a master node.
pub fn master_flags(spec: &ClusterSpec, topology: &Topology, node: &Node) -> Vec<String> {
    vec![
        format!("--zk={}", topology.zk_url("mesos")),
        format!("--quorum={}", topology.quorum),
        format!("--cluster={}", topology.cluster),
        format!("--hostname={}", node.address),
        format!("--ip={}", node.address),
        format!("--port={}", ports::MESOS_MASTER),
        format!("--work_dir={}/master", paths::MESOS_WORK),
        format!("--agent_ping_timeout={}secs", spec.mesos.agent_ping_timeout_secs),
        format!("--max_agent_ping_timeouts={}", spec.mesos.max_agent_ping_timeouts),
    ]
}

/// Flags of `mesos-agent` on a slave: its resources, its `zone` attribute (so Marathon
/// constraints like `["zone", "GROUP_BY"]` spread tasks over AZs), and both containerizers in
/// Mesos' order, so an app with a DOCKER container runs on the node's Docker engine and any
/// other app as a command in a sandbox. Docker's defaults (the engine's socket, `bridge` and
/// `host` networks) hold on a machine; the sim adds [`super::sim::agent_docker_flags`].
pub fn agent_flags(spec: &ClusterSpec, topology: &Topology, node: &Node) -> Vec<String> {
    let agent = &spec.agent;
    let ports = spec.agent_ports();
    vec![
        format!("--master={}", topology.zk_url("mesos")),
        format!(
            "--resources=cpus:{};mem:{};disk:{};ports:[{}-{}]",
            agent.cpus, agent.mem, agent.disk, ports.begin, ports.end
        ),
        format!("--attributes=zone:{}", topology.az_of(node).name),
        format!("--hostname={}", node.address),
        format!("--ip={}", node.address),
        format!("--port={}", ports::MESOS_AGENT),
        format!("--work_dir={}/agent", paths::MESOS_WORK),
        "--containerizers=docker,mesos".into(),
    ]
}

/// Flags of `marathon` on a master node.
pub fn marathon_flags(topology: &Topology, node: &Node) -> Vec<String> {
    vec![
        format!("--master={}", topology.zk_url("mesos")),
        format!("--zk={}", topology.zk_url("marathon")),
        format!("--http_port={}", ports::MARATHON),
        format!("--hostname={}", node.address),
        "--framework_name=marathon".into(),
        "--task_launch_timeout=300000".into(),
    ]
}
