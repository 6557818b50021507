//! What a node container is made of: name, image, address, limits, published ports, and the
//! node configuration its supervisor reads.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use ipnet::Ipv4Net;
use paas_core::Role;
use paas_core::render::elb::haproxy_cfg;
use paas_core::render::sim::{DOCKER_SOCKET, task_network_name};
use paas_core::render::{ConfigFile, NodeConfig, Program, paths};
use paas_core::resource::{LoadBalancerResource, NodeHost, NodeSpec, Resource};

use crate::labels;

/// Where the backend puts the node's configuration (JSON [`NodeConfig`]) before the container
/// starts; `paas-node supervise` reads it.
pub const NODE_CONFIG_PATH: &str = "/etc/paas/node.json";

/// Where an in-place update stages a node's new configuration. `paas-node configure` (or the
/// supervisor, at its next start) installs it from inside the container: Docker's copy into a
/// container must not replace a file the node itself has replaced, as on fuse-overlayfs that
/// shows the image's original file under the new bytes.
pub const NODE_CONFIG_STAGED_PATH: &str = "/etc/paas/node.next.json";

/// Where a load balancer container keeps the fingerprint of its last in-place update (labels
/// cannot change after creation); one of the files of the staged configuration, so it changes
/// only once the update is installed.
pub const UPDATE_FINGERPRINT_PATH: &str = "/etc/paas/update-fingerprint";

/// The Docker network of a cluster.
pub fn network_name(cluster: &str) -> String {
    cluster.to_string()
}

/// The container name of a node (`paas-master-1`) or of the elb (`paas-elb`), as the node
/// configuration names it (see [`paas_core::render::sim`]).
pub fn container_name(cluster: &str, name: &str) -> String {
    paas_core::render::sim::container_name(cluster, name)
}

/// The elb's address: the last usable address of the cluster network, outside every AZ's
/// subnets as long as fewer than 8 AZs are used.
pub fn elb_address(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.broadcast()) - 1)
}

/// A container to create, and the configuration to put in it before it starts.
pub struct ContainerPlan {
    pub name: String,
    pub body: ContainerCreateBody,
    pub config: NodeConfig,
    /// Networks it joins besides the cluster network, before it starts (a slave's task
    /// network).
    pub extra_networks: Vec<String>,
}

/// The container of a node.
pub fn for_node(cluster: &str, resource: &Resource, node: &NodeSpec, default_image: &str) -> ContainerPlan {
    let NodeHost::Container {
        image,
        memory_mib,
        publish,
    } = &node.host
    else {
        unreachable!("the backend checks the host kind before")
    };
    let labels = labels::for_resource(
        cluster,
        resource,
        &[
            (labels::ROLE, node.role.as_str().to_string()),
            (labels::AZ, node.az.clone()),
            (labels::ADDRESS, node.address.to_string()),
        ],
    );
    let mut body = body(
        cluster,
        &node.name,
        image.as_deref().unwrap_or(default_image),
        node.address,
        *memory_mib,
        publish,
        labels,
    );
    let mut extra_networks = vec![];
    if node.role == Role::Slave {
        // The agent runs Docker tasks as siblings on the host's engine, as Mesos-in-Docker
        // setups do; only the slave gets the socket, never a task.
        let host_config = body.host_config.get_or_insert_with(Default::default);
        host_config.binds = Some(vec![format!("{DOCKER_SOCKET}:{DOCKER_SOCKET}")]);
        extra_networks.push(task_network_name(cluster, &node.name));
    }
    ContainerPlan {
        name: container_name(cluster, &node.name),
        body,
        config: node.config.clone(),
        extra_networks,
    }
}

/// The elb container: HAProxy over the lbs, published on 127.0.0.1.
pub fn for_elb(cluster: &str, resource: &Resource, lb: &LoadBalancerResource, cidr: Ipv4Net, default_image: &str) -> ContainerPlan {
    let address = elb_address(cidr);
    let labels = labels::for_resource(
        cluster,
        resource,
        &[(labels::ROLE, "elb".to_string()), (labels::ADDRESS, address.to_string())],
    );
    let publish: Vec<(u16, u16)> = lb.publish.map(|p| (p, lb.spec.listen_port)).into_iter().collect();
    ContainerPlan {
        name: container_name(cluster, resource.id.name()),
        body: body(
            cluster,
            resource.id.name(),
            lb.image.as_deref().unwrap_or(default_image),
            address,
            lb.memory_mib,
            &publish,
            labels,
        ),
        config: elb_config(lb),
        extra_networks: vec![],
    }
}

/// The elb's node configuration: its HAProxy file and HAProxy in master-worker mode, which
/// reloads on SIGUSR2 without dropping connections.
pub fn elb_config(lb: &LoadBalancerResource) -> NodeConfig {
    let members: Vec<(String, Ipv4Addr)> = lb.members.iter().map(|m| (m.name.clone(), m.address)).collect();
    NodeConfig {
        files: vec![ConfigFile {
            path: paths::HAPROXY_CFG.into(),
            content: haproxy_cfg(&lb.spec, &members),
        }],
        programs: vec![Program {
            name: "haproxy".into(),
            args: vec!["-W".into(), "-db".into(), "-f".into(), paths::HAPROXY_CFG.into()],
        }],
    }
}

fn body(
    cluster: &str,
    hostname: &str,
    image: &str,
    address: Ipv4Addr,
    memory_mib: u64,
    publish: &[(u16, u16)],
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let memory = (memory_mib * 1024 * 1024) as i64;
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = publish
        .iter()
        .map(|(host, container)| {
            (
                format!("{container}/tcp"),
                Some(vec![PortBinding {
                    // Never on every interface: the cluster is for this machine only.
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host.to_string()),
                }]),
            )
        })
        .collect();
    let exposed: HashMap<String, HashMap<(), ()>> = publish.iter().map(|(_, c)| (format!("{c}/tcp"), HashMap::new())).collect();
    let network = network_name(cluster);
    ContainerCreateBody {
        hostname: Some(hostname.into()),
        image: Some(image.into()),
        cmd: Some(vec!["--config".into(), NODE_CONFIG_PATH.into()]),
        // Logs are read as files and through `docker logs`, not on a terminal: no colour codes.
        env: Some(vec!["NO_COLOR=1".into()]),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        host_config: Some(HostConfig {
            memory: Some(memory),
            // No swap beyond the limit: a node out of memory fails as a machine would.
            memory_swap: Some(memory),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            // Chaos decides when a node comes back, not Docker.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            // iptables inside the node, for network faults.
            cap_add: Some(vec!["NET_ADMIN".into()]),
            network_mode: Some(network.clone()),
            ..Default::default()
        }),
        networking_config: Some(on_network_at(network, address)),
        ..Default::default()
    }
}

/// A container's one network, `network`, at the fixed `address` (as a machine of the cluster
/// has one address, not one Docker picks).
pub fn on_network_at(network: String, address: Ipv4Addr) -> NetworkingConfig {
    let settings = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(address.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    NetworkingConfig {
        endpoints_config: Some([(network, settings)].into()),
    }
}
