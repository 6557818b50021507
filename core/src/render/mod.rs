//! Rendered node configuration: one source for the sim's containers and the AWS user-data.
//!
//! Each node gets files to write and programs to run. A [`Program`] names the upstream program
//! and carries its flags exactly as the upstream program takes them (`--zk=...`); the sim runs
//! them as `paas-node <program> <flags>` (or the real binary in an upstream image), AWS runs
//! the real binaries with the same flags.

pub mod elb;
pub mod mesos;
pub mod nginx;
pub mod sim;
pub mod userdata;
pub mod zookeeper;

use serde::{Deserialize, Serialize};

use crate::spec::ClusterSpec;
use crate::topology::{Node, Role, Topology};

/// Well-known ports, the same in the sim and on AWS.
pub mod ports {
    pub const ZOOKEEPER: u16 = 2181;
    pub const ZOOKEEPER_PEER: u16 = 2888;
    pub const ZOOKEEPER_ELECTION: u16 = 3888;
    pub const MESOS_MASTER: u16 = 5050;
    pub const MESOS_AGENT: u16 = 5051;
    pub const MARATHON: u16 = 8080;
    pub const HTTP: u16 = 80;
}

/// Where the rendered files go on a node (Debian's layout, so real packages find them).
pub mod paths {
    pub const ZOO_CFG: &str = "/etc/zookeeper/conf/zoo.cfg";
    pub const ZOOKEEPER_DATA: &str = "/var/lib/zookeeper";
    pub const ZOOKEEPER_MYID: &str = "/var/lib/zookeeper/myid";
    pub const MESOS_WORK: &str = "/var/lib/mesos";
    pub const NGINX_CONF: &str = "/etc/nginx/nginx.conf";
    /// The routes file lb-sync owns; the lb's nginx.conf includes it.
    pub const NGINX_ROUTES: &str = "/etc/nginx/paas/routes.conf";
    /// The admin entry's upstreams file lb-sync (admin mode) owns; its nginx.conf includes it.
    pub const ADMIN_UPSTREAMS: &str = "/etc/nginx/paas/admin-upstreams.conf";
    pub const NGINX_BIN: &str = "/usr/sbin/nginx";
    pub const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";
}

/// A file a node needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    pub content: String,
}

/// A long-running program of a node, with its flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// `zookeeper`, `mesos-master`, `marathon`, `mesos-agent`, `nginx`, `lb-sync`.
    pub name: String,
    pub args: Vec<String>,
}

impl Program {
    fn new(name: &str, args: Vec<String>) -> Program {
        Program { name: name.into(), args }
    }
}

/// Everything a node runs and reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub files: Vec<ConfigFile>,
    pub programs: Vec<Program>,
}

/// Renders one node's configuration. `admin_sources` are the addresses the admin entry admits
/// (the admin CIDRs on AWS; in the sim, the host's stand-in address on the Docker network).
pub fn node_config(spec: &ClusterSpec, topology: &Topology, node: &Node, admin_sources: &[String]) -> NodeConfig {
    let file = |path: &str, content: String| ConfigFile {
        path: path.into(),
        content,
    };
    match node.role {
        Role::Master => NodeConfig {
            files: vec![
                file(paths::ZOO_CFG, zookeeper::zoo_cfg(topology)),
                file(paths::ZOOKEEPER_MYID, zookeeper::myid(node)),
            ],
            programs: vec![
                Program::new("zookeeper", vec![paths::ZOO_CFG.into()]),
                Program::new("mesos-master", mesos::master_flags(spec, topology, node)),
                Program::new("marathon", mesos::marathon_flags(topology, node)),
            ],
        },
        Role::Slave => NodeConfig {
            files: vec![],
            programs: vec![Program::new("mesos-agent", mesos::agent_flags(spec, topology, node))],
        },
        Role::Lb => NodeConfig {
            files: vec![file(paths::NGINX_CONF, nginx::lb_conf()), file(paths::NGINX_ROUTES, String::new())],
            programs: vec![
                Program::new("nginx", vec!["-g".into(), "daemon off;".into()]),
                Program::new("lb-sync", nginx::lb_sync_flags(topology)),
            ],
        },
        Role::AdminLb => NodeConfig {
            files: vec![
                file(paths::NGINX_CONF, nginx::adminlb_conf(topology, admin_sources, ports::HTTP)),
                file(paths::ADMIN_UPSTREAMS, nginx::adminlb_upstreams(topology)),
            ],
            programs: vec![
                Program::new("nginx", vec!["-g".into(), "daemon off;".into()]),
                Program::new("lb-sync", nginx::admin_sync_flags(topology)),
            ],
        },
    }
}

/// A node's configuration in the sim: [`node_config`], with a slave's agent placing Docker
/// tasks beside its own container (see [`sim`]), and the admin entry telling Marathon's screen
/// that apps are served at `[sim] http_port` on the host.
pub fn sim_node_config(spec: &ClusterSpec, topology: &Topology, node: &Node, admin_sources: &[String]) -> NodeConfig {
    let mut config = node_config(spec, topology, node, admin_sources);
    match node.role {
        Role::Slave => {
            for agent in config.programs.iter_mut().filter(|p| p.name == "mesos-agent") {
                agent.args.extend(sim::agent_docker_flags(&topology.cluster, node));
            }
        }
        Role::AdminLb => {
            for file in config.files.iter_mut().filter(|f| f.path == paths::NGINX_CONF) {
                file.content = nginx::adminlb_conf(topology, admin_sources, spec.sim.http_port);
            }
        }
        Role::Master | Role::Lb => {}
    }
    config
}

#[cfg(test)]
mod tests;
