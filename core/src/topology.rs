//! Topology and placement: which nodes exist, in which AZ, at which address.
//!
//! Placement is a pure function of the spec and the zone names, and it is *stable*: a node's
//! AZ and address depend only on its role and ordinal, never on how many nodes there are, so
//! scaling adds or removes nodes without moving the others.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::spec::ClusterSpec;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// ZooKeeper + Mesos master + Marathon.
    Master,
    /// Mesos agent running app tasks.
    Slave,
    /// nginx + lb-sync, behind the external load balancer.
    Lb,
    /// nginx serving the Marathon and Mesos UIs to the admin CIDRs.
    AdminLb,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Master, Role::Slave, Role::Lb, Role::AdminLb];

    /// The role's name in node names, labels and tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
            Role::Lb => "lb",
            Role::AdminLb => "adminlb",
        }
    }

    /// Parses a role as written on the command line (`slaves` and `slave` both work).
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim_end_matches('s') {
            "master" => Some(Role::Master),
            "slave" | "agent" => Some(Role::Slave),
            "lb" => Some(Role::Lb),
            "adminlb" => Some(Role::AdminLb),
            _ => None,
        }
    }

    /// Which subnet tier the role lives in: only the admin entry faces the internet directly.
    pub fn tier(self) -> Tier {
        match self {
            Role::AdminLb => Tier::Front,
            _ => Tier::Back,
        }
    }

    /// First host offset of the role inside its subnet, and how many of the role fit per AZ
    /// before the next role's block. Slaves take the rest of the subnet.
    fn address_block(self) -> (u32, Option<u32>) {
        match self {
            Role::Master => (10, Some(10)),
            Role::Lb => (20, Some(10)),
            Role::Slave => (30, None),
            Role::AdminLb => (10, Some(10)),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Public (front: load balancers, NAT) or private (back: everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Front,
    Back,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Front => "front",
            Tier::Back => "back",
        }
    }
}

/// One availability zone and its two subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Az {
    /// 0-based position; node placement is round-robin over it.
    pub index: usize,
    /// The zone's real name (`eu-central-1a`) or the sim's (`sim-a`).
    pub name: String,
    /// A short stable suffix for resource names: `a`, `b`, ...
    pub letter: char,
    pub front: Ipv4Net,
    pub back: Ipv4Net,
}

/// One machine of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `master-1`, `slave-7`, `adminlb-1`.
    pub name: String,
    pub role: Role,
    /// 1-based number within the role.
    pub ordinal: u32,
    /// Index into [`Topology::azs`].
    pub az: usize,
    pub address: Ipv4Addr,
    /// ZooKeeper server id (`myid`), masters only.
    pub zk_id: Option<u32>,
}

/// The placed cluster: zones, nodes and the values every node's configuration derives from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub cluster: String,
    pub domain: String,
    pub vpc: Ipv4Net,
    pub azs: Vec<Az>,
    pub nodes: Vec<Node>,
    /// Masters needed for a ZooKeeper and Mesos quorum: masters / 2 + 1.
    pub quorum: u32,
    /// Things that work but deserve the user's attention (e.g. one AZ holds a quorum of masters).
    pub warnings: Vec<String>,
}

/// Why a topology cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("the spec asks for {wanted} AZs but only {} are available: {}", available.len(), available.join(", "))]
    NotEnoughZones { wanted: u32, available: Vec<String> },
    #[error("{role} {ordinal} does not fit in subnet {subnet} of AZ {az}")]
    SubnetFull {
        role: Role,
        ordinal: u32,
        subnet: Ipv4Net,
        az: String,
    },
}

/// Subnets are carved as 16 equal blocks of the VPC: front subnets take blocks 0..8, back
/// subnets blocks 8..16, so adding an AZ never renumbers an existing one.
const SUBNET_BITS: u8 = 4;

/// How many slaves one AZ's back subnet holds for a VPC CIDR, or `None` if the VPC is too
/// small to carve subnets from.
pub fn slaves_per_az_capacity(vpc: Ipv4Net) -> Option<u32> {
    let prefix = vpc.prefix_len().checked_add(SUBNET_BITS).filter(|p| *p <= 28)?;
    let hosts = 1u32 << (32 - prefix);
    // Leave the block before slaves and the broadcast address.
    Some(hosts.saturating_sub(Role::Slave.address_block().0 + 1))
}

impl Topology {
    /// Places the spec's nodes over the first `spec.azs` of `zones`.
    ///
    /// Fails when there are fewer zones than asked for, or a node does not fit its subnet.
    /// The spec must have passed validation.
    pub fn place(spec: &ClusterSpec, zones: &[String]) -> Result<Topology, PlacementError> {
        let wanted = spec.azs as usize;
        if zones.len() < wanted {
            return Err(PlacementError::NotEnoughZones {
                wanted: spec.azs,
                available: zones.to_vec(),
            });
        }
        let vpc = spec.vpc();
        let subnet_prefix = vpc.prefix_len() + SUBNET_BITS;
        let subnets: Vec<Ipv4Net> = vpc.subnets(subnet_prefix).expect("validated prefix").collect();
        let azs: Vec<Az> = zones[..wanted]
            .iter()
            .enumerate()
            .map(|(index, name)| Az {
                index,
                name: name.clone(),
                letter: (b'a' + index as u8) as char,
                front: subnets[index],
                back: subnets[8 + index],
            })
            .collect();

        let mut nodes = Vec::new();
        let counts = [
            (Role::Master, spec.nodes.masters),
            (Role::Slave, spec.nodes.slaves),
            (Role::Lb, spec.nodes.lbs),
            (Role::AdminLb, spec.nodes.adminlb),
        ];
        for (role, count) in counts {
            for ordinal in 1..=count {
                nodes.push(place_node(role, ordinal, &azs)?);
            }
        }

        let quorum = spec.nodes.masters / 2 + 1;
        let mut warnings = Vec::new();
        for az in &azs {
            let masters = nodes.iter().filter(|n| n.role == Role::Master && n.az == az.index).count() as u32;
            if spec.nodes.masters > 1 && masters >= quorum {
                warnings.push(format!(
                    "AZ {} holds {masters} of {} masters, a quorum: losing that AZ stops ZooKeeper, Mesos and Marathon; use at least 3 azs",
                    az.name, spec.nodes.masters
                ));
            }
        }

        Ok(Topology {
            cluster: spec.name.clone(),
            domain: spec.domain.clone(),
            vpc,
            azs,
            nodes,
            quorum,
            warnings,
        })
    }

    /// Nodes of one role, in ordinal order.
    pub fn nodes_of(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The AZ a node lives in.
    pub fn az_of(&self, node: &Node) -> &Az {
        &self.azs[node.az]
    }

    /// `host1:2181,host2:2181,...` over the masters.
    pub fn zk_hosts(&self) -> String {
        self.nodes_of(Role::Master)
            .map(|n| format!("{}:{}", n.address, crate::render::ports::ZOOKEEPER))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `zk://hosts/path`, the form Mesos and Marathon take.
    pub fn zk_url(&self, path: &str) -> String {
        format!("zk://{}/{path}", self.zk_hosts())
    }

    /// Sim zone names: `sim-a`, `sim-b`, ...
    pub fn sim_zones(count: u32) -> Vec<String> {
        (0..count.min(crate::spec::MAX_AZS))
            .map(|i| format!("sim-{}", (b'a' + i as u8) as char))
            .collect()
    }
}

fn place_node(role: Role, ordinal: u32, azs: &[Az]) -> Result<Node, PlacementError> {
    let index = (ordinal - 1) as usize;
    let az = &azs[index % azs.len()];
    let within = (index / azs.len()) as u32;
    let (first, room) = role.address_block();
    let subnet = match role.tier() {
        Tier::Front => az.front,
        Tier::Back => az.back,
    };
    let offset = first + within;
    let fits = room.is_none_or(|room| within < room) && offset < (1u32 << (32 - subnet.prefix_len())) - 1;
    if !fits {
        return Err(PlacementError::SubnetFull {
            role,
            ordinal,
            subnet,
            az: az.name.clone(),
        });
    }
    let address = Ipv4Addr::from(u32::from(subnet.network()) + offset);
    Ok(Node {
        name: format!("{role}-{ordinal}"),
        role,
        ordinal,
        az: az.index,
        address,
        zk_id: (role == Role::Master).then_some(ordinal),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn spec(masters: u32, slaves: u32, lbs: u32, azs: u32) -> ClusterSpec {
        let mut spec = ClusterSpec::default();
        spec.nodes.masters = masters;
        spec.nodes.slaves = slaves;
        spec.nodes.lbs = lbs;
        spec.azs = azs;
        spec
    }

    #[test]
    fn default_cluster_spreads_masters_over_three_azs() {
        let spec = ClusterSpec::default();
        let t = Topology::place(&spec, &Topology::sim_zones(3)).unwrap();
        let azs: BTreeSet<_> = t.nodes_of(Role::Master).map(|n| n.az).collect();
        assert_eq!(azs.len(), 3);
        assert_eq!(t.quorum, 2);
        assert!(t.warnings.is_empty());
        assert_eq!(
            t.zk_url("mesos"),
            "zk://10.20.128.10:2181,10.20.144.10:2181,10.20.160.10:2181/mesos"
        );
        assert_eq!(t.node("adminlb-1").unwrap().address.to_string(), "10.20.0.10");
    }

    #[test]
    fn one_az_holding_a_quorum_of_masters_is_warned_about() {
        let t = Topology::place(&spec(3, 5, 2, 2), &Topology::sim_zones(2)).unwrap();
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert!(t.warnings[0].contains("sim-a"));
    }

    #[test]
    fn too_few_zones_names_the_ones_there_are() {
        let err = Topology::place(&spec(3, 5, 2, 3), &["eu-central-1a".into(), "eu-central-1b".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the spec asks for 3 AZs but only 2 are available: eu-central-1a, eu-central-1b"
        );
    }

    proptest! {
        #[test]
        fn placement_is_balanced_unique_and_stable(masters in (0u32..5).prop_map(|m| 2 * m + 1), slaves in 1u32..200, lbs in 1u32..10, azs in 1u32..=6) {
            let t = Topology::place(&spec(masters, slaves, lbs, azs), &Topology::sim_zones(azs)).unwrap();
            for role in Role::ALL {
                let mut per_az = vec![0usize; azs as usize];
                for n in t.nodes_of(role) {
                    per_az[n.az] += 1;
                    let az = &t.azs[n.az];
                    let subnet = if role.tier() == Tier::Front { az.front } else { az.back };
                    prop_assert!(subnet.contains(&n.address), "{} at {} outside {}", n.name, n.address, subnet);
                }
                let (lo, hi) = (per_az.iter().min().unwrap(), per_az.iter().max().unwrap());
                prop_assert!(hi - lo <= 1, "{role}: per-AZ counts {per_az:?}");
            }
            let addresses: BTreeSet<_> = t.nodes.iter().map(|n| n.address).collect();
            prop_assert_eq!(addresses.len(), t.nodes.len(), "addresses are unique");
            prop_assert_eq!(t.quorum, masters / 2 + 1);
            // Stability: one more slave leaves every existing node where it was.
            let bigger = Topology::place(&spec(masters, slaves + 1, lbs, azs), &Topology::sim_zones(azs)).unwrap();
            for n in &t.nodes {
                prop_assert_eq!(Some(n), bigger.node(&n.name));
            }
        }
    }
}
