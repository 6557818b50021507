//! ZooKeeper ensemble configuration for the masters.

use std::fmt::Write;

use super::{paths, ports};
use crate::topology::{Node, Role, Topology};

/// `zoo.cfg` with every master as a server: the same file on every master.
pub fn zoo_cfg(topology: &Topology) -> String {
    let mut cfg = format!(
        "# ZooKeeper ensemble of cluster {}: {} servers, quorum {}\n\
         tickTime=2000\ninitLimit=10\nsyncLimit=5\n\
         dataDir={}\nclientPort={}\n\
         maxClientCnxns=0\n\
         4lw.commands.whitelist=ruok,mntr,srvr,stat\n\
         admin.enableServer=false\n",
        topology.cluster,
        topology.nodes_of(Role::Master).count(),
        topology.quorum,
        paths::ZOOKEEPER_DATA,
        ports::ZOOKEEPER,
    );
    for master in topology.nodes_of(Role::Master) {
        let id = master.zk_id.expect("masters have zk ids");
        writeln!(
            cfg,
            "server.{id}={}:{}:{}",
            master.address,
            ports::ZOOKEEPER_PEER,
            ports::ZOOKEEPER_ELECTION
        )
        .unwrap();
    }
    cfg
}

/// The `myid` file of a master.
pub fn myid(node: &Node) -> String {
    format!("{}\n", node.zk_id.expect("only masters run ZooKeeper"))
}
