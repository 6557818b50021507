//! Typed resources with dependencies: what a backend creates, reads, updates and deletes.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::render::NodeConfig;
use crate::render::elb::LoadBalancerSpec;
use crate::topology::{Role, Tier};

/// The kinds of resource, in creation rank order (see [`ResourceKind::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Network,
    Gateway,
    Subnet,
    Nat,
    RouteTable,
    SecurityGroup,
    KeyPair,
    /// A private S3 bucket of the cluster's artifacts.
    Bucket,
    /// An object in a bucket, uploaded from a local file.
    Object,
    /// An IAM role the cluster's instances assume.
    Role,
    /// A managed IAM policy attached to a role.
    Policy,
    /// An IAM instance profile carrying a role to instances.
    InstanceProfile,
    Node,
    LoadBalancer,
    DnsZone,
    DnsRecord,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 16] = [
        ResourceKind::Network,
        ResourceKind::Gateway,
        ResourceKind::Subnet,
        ResourceKind::Nat,
        ResourceKind::RouteTable,
        ResourceKind::SecurityGroup,
        ResourceKind::KeyPair,
        ResourceKind::Bucket,
        ResourceKind::Object,
        ResourceKind::Role,
        ResourceKind::Policy,
        ResourceKind::InstanceProfile,
        ResourceKind::Node,
        ResourceKind::LoadBalancer,
        ResourceKind::DnsZone,
        ResourceKind::DnsRecord,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Network => "network",
            ResourceKind::Gateway => "gateway",
            ResourceKind::Subnet => "subnet",
            ResourceKind::Nat => "nat",
            ResourceKind::RouteTable => "route-table",
            ResourceKind::SecurityGroup => "security-group",
            ResourceKind::KeyPair => "key-pair",
            ResourceKind::Bucket => "bucket",
            ResourceKind::Object => "object",
            ResourceKind::Role => "role",
            ResourceKind::Policy => "policy",
            ResourceKind::InstanceProfile => "instance-profile",
            ResourceKind::Node => "node",
            ResourceKind::LoadBalancer => "load-balancer",
            ResourceKind::DnsZone => "dns-zone",
            ResourceKind::DnsRecord => "dns-record",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A kind only depends on kinds of lower rank. Deletion goes by rank, highest first, which
    /// needs no dependency information: what a backend lists after a lost state file can still
    /// be torn down in a safe order.
    pub fn rank(self) -> u8 {
        match self {
            ResourceKind::Network | ResourceKind::KeyPair | ResourceKind::DnsZone | ResourceKind::Bucket | ResourceKind::Role => 0,
            // An object empties its bucket, a policy and a profile free their role, when deleted.
            ResourceKind::Gateway
            | ResourceKind::Subnet
            | ResourceKind::SecurityGroup
            | ResourceKind::Object
            | ResourceKind::Policy
            | ResourceKind::InstanceProfile => 1,
            ResourceKind::Nat => 2,
            ResourceKind::RouteTable => 3,
            ResourceKind::Node => 4,
            ResourceKind::LoadBalancer => 5,
            ResourceKind::DnsRecord => 6,
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `kind/name`, unique within a cluster, e.g. `node/master-1`, `subnet/front-a`. Backends
/// store it on what they create (Docker label / EC2 tag `paas:resource`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn new(kind: ResourceKind, name: &str) -> ResourceId {
        ResourceId(format!("{}/{name}", kind.as_str()))
    }

    /// Parses `kind/name`; `None` when the kind is unknown (a label written by something else).
    pub fn parse(s: &str) -> Option<ResourceId> {
        let (kind, name) = s.split_once('/')?;
        (ResourceKind::parse(kind).is_some() && !name.is_empty()).then(|| ResourceId(s.to_string()))
    }

    pub fn kind(&self) -> ResourceKind {
        ResourceKind::parse(self.0.split_once('/').expect("checked on construction").0).expect("checked on construction")
    }

    /// The part after the kind.
    pub fn name(&self) -> &str {
        self.0.split_once('/').expect("checked on construction").1
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One desired resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: ResourceId,
    pub depends_on: Vec<ResourceId>,
    pub spec: ResourceSpec,
}

/// What a resource is, per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResourceSpec {
    /// The VPC on AWS; the Docker network in the sim (`gateway` is the host's address on it).
    Network {
        cidr: Ipv4Net,
        gateway: Option<Ipv4Addr>,
    },
    /// The internet gateway.
    Gateway,
    Subnet {
        az: String,
        tier: Tier,
        cidr: Ipv4Net,
    },
    /// A NAT gateway (with its Elastic IP) in a front subnet.
    Nat {
        az: String,
        subnet: ResourceId,
    },
    /// Routes a tier's subnets to the internet through `via` (the gateway or a NAT).
    RouteTable {
        tier: Tier,
        via: ResourceId,
        subnets: Vec<ResourceId>,
    },
    SecurityGroup {
        name: String,
        description: String,
        rules: Vec<IngressRule>,
    },
    /// An SSH key pair; the backend generates the key locally on first create.
    KeyPair {
        name: String,
    },
    /// A private bucket: public access blocked, ACLs off, encrypted at rest by default.
    Bucket {
        name: String,
    },
    /// An object uploaded from `source` when missing. Its key and `sha256` say what it is; the
    /// local path is not part of the fingerprint.
    Object {
        bucket: ResourceId,
        key: String,
        /// Lowercase hex sha256 of the content.
        sha256: String,
        source: PathBuf,
    },
    /// An IAM role under `path`, assumable as `trust` allows.
    Role {
        name: String,
        path: String,
        /// The trust (assume-role) policy document, JSON.
        trust: String,
    },
    /// A managed IAM policy under `path`, attached to `role`.
    Policy {
        name: String,
        path: String,
        role: ResourceId,
        /// The policy document, JSON.
        document: String,
    },
    /// An instance profile under `path` holding `role`.
    InstanceProfile {
        name: String,
        path: String,
        role: ResourceId,
    },
    Node(NodeSpec),
    LoadBalancer(LoadBalancerResource),
    DnsZone {
        domain: String,
    },
    DnsRecord {
        name: String,
        target: ResourceId,
    },
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    pub az: String,
    pub tier: Tier,
    pub address: Ipv4Addr,
    pub host: NodeHost,
    pub config: NodeConfig,
}

/// What the machine is made of on each backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum NodeHost {
    Container {
        /// `None`: the image `paas sim images` builds for the role.
        image: Option<String>,
        memory_mib: u64,
        /// Ports published on 127.0.0.1: (host, container).
        publish: Vec<(u16, u16)>,
    },
    Instance {
        instance_type: String,
        /// A fixed AMI id, or `None` to look one up by `ami_name`/`ami_owner`.
        ami: Option<String>,
        ami_name: String,
        ami_owner: String,
        subnet: ResourceId,
        security_groups: Vec<ResourceId>,
        key_pair: ResourceId,
        public_ip: bool,
        /// The instance profile whose role reads the node binary.
        profile: ResourceId,
        /// The `paas-node` object the instance installs at boot; `None` in a graph built
        /// without a node binary (an offline look at the infrastructure).
        artifact: Option<InstanceArtifact>,
    },
}

/// The `paas-node` an instance installs: part of its fingerprint, so a new binary is a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceArtifact {
    pub object: ResourceId,
    pub sha256: String,
}

/// A local `paas-node` build to deliver to AWS instances, with the sha256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeBinary {
    pub path: PathBuf,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// The external load balancer and the nodes behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerResource {
    pub spec: LoadBalancerSpec,
    pub members: Vec<Member>,
    /// AWS: the front subnets it spans, and its security groups.
    pub subnets: Vec<ResourceId>,
    pub security_groups: Vec<ResourceId>,
    /// Sim: published on 127.0.0.1 at this port, from a container of this image and memory.
    pub publish: Option<u16>,
    pub image: Option<String>,
    pub memory_mib: u64,
}

/// A node behind a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: ResourceId,
    pub name: String,
    pub address: Ipv4Addr,
}

/// One allowed inbound flow of a security group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IngressRule {
    /// `tcp`, or `all`.
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub source: RuleSource,
}

/// Where an allowed flow may come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleSource {
    Cidr(String),
    /// Members of another security group of the cluster.
    Group(ResourceId),
    /// Members of this same group.
    SameGroup,
}

/// Two stable hashes of a resource: a change of `replace` needs the resource recreated, a
/// change of `update` only needs it updated in place. Backends store both (label/tag), so a
/// plan can be made from what they list alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub replace: String,
    pub update: String,
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        self.id.kind()
    }

    /// Whether this resource refers to `dep` only through what it can change in place (a load
    /// balancer's members, a DNS record's target), so a replaced `dep` needs an update here,
    /// not a replacement.
    pub fn refers_in_place(&self, dep: &ResourceId) -> bool {
        match &self.spec {
            ResourceSpec::LoadBalancer(lb) => lb.members.iter().any(|m| &m.node == dep),
            ResourceSpec::DnsRecord { target, .. } => target == dep,
            _ => false,
        }
    }

    /// The resource's [`Fingerprint`]. Stable across runs and versions: FNV-1a over the JSON of
    /// the fields, so a label written today compares equal tomorrow.
    pub fn fingerprint(&self) -> Fingerprint {
        let (replace, update) = self.split_mutable();
        Fingerprint {
            replace: stable_hash(&replace),
            update: stable_hash(&update),
        }
    }

    /// Splits the spec into what can change in place (second) and what cannot (first).
    fn split_mutable(&self) -> (serde_json::Value, serde_json::Value) {
        use serde_json::{Value, json};
        match &self.spec {
            ResourceSpec::LoadBalancer(lb) => {
                let mut fixed = lb.clone();
                fixed.members.clear();
                (json!(fixed), json!(lb.members))
            }
            ResourceSpec::SecurityGroup { name, description, rules } => (json!([name, description]), json!(rules)),
            ResourceSpec::RouteTable { tier, via, subnets } => (json!([tier, via]), json!(subnets)),
            ResourceSpec::DnsRecord { name, target } => (json!(name), json!(target)),
            // Where the content was read from is not what the object is.
            ResourceSpec::Object { bucket, key, sha256, .. } => (json!([bucket, key, sha256]), Value::Null),
            spec => (json!(spec), Value::Null),
        }
    }
}

pub(crate) fn stable_hash(value: &serde_json::Value) -> String {
    // serde_json's maps are ordered (BTreeMap), so the text is canonical.
    let text = value.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
