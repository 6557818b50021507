//! The desired resource graph of a cluster on a target, built from the spec and topology.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::render::elb::LoadBalancerSpec;
use crate::render::{self, ports};
use crate::resource::{
    IngressRule, InstanceArtifact, LoadBalancerResource, Member, NodeBinary, NodeHost, NodeSpec, Resource, ResourceId, ResourceKind,
    ResourceSpec, RuleSource, stable_hash,
};
use crate::spec::{ClusterSpec, NatMode};
use crate::topology::{Role, Tier, Topology};

/// Where a cluster is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Local Docker containers.
    Sim,
    /// Amazon Web Services.
    Aws,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Sim => "sim",
            Target::Aws => "aws",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Desired resources, each listed after its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub cluster: String,
    pub target: Target,
    resources: Vec<Resource>,
    #[serde(skip)]
    index: BTreeMap<ResourceId, usize>,
}

impl Graph {
    fn new(cluster: &str, target: Target) -> Graph {
        Graph {
            cluster: cluster.into(),
            target,
            resources: Vec::new(),
            index: BTreeMap::new(),
        }
    }

    fn add(&mut self, id: ResourceId, depends_on: Vec<ResourceId>, spec: ResourceSpec) -> ResourceId {
        debug_assert!(
            depends_on.iter().all(|d| self.index.contains_key(d)),
            "{id} depends on a resource not yet added"
        );
        debug_assert!(!self.index.contains_key(&id), "{id} added twice");
        self.index.insert(id.clone(), self.resources.len());
        self.resources.push(Resource {
            id: id.clone(),
            depends_on,
            spec,
        });
        id
    }

    /// A graph with no resources: what `destroy` converges to.
    pub fn empty(cluster: &str, target: Target) -> Graph {
        Graph::new(cluster, target)
    }

    /// Resources in an order where every resource follows its dependencies.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.index.get(id).map(|&i| &self.resources[i])
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Builds the graph of `spec` placed as `topology` on `target`. On AWS this is the
    /// infrastructure without the `paas-node` object (instances that would install nothing):
    /// what `paas aws` deploys comes from [`Graph::aws`].
    pub fn desired(spec: &ClusterSpec, topology: &Topology, target: Target) -> Graph {
        match target {
            Target::Sim => sim_graph(spec, topology),
            Target::Aws => aws_graph(spec, topology, None),
        }
    }

    /// The AWS graph whose instances install `binary`, uploaded to the cluster's artifact
    /// bucket under its sha256.
    pub fn aws(spec: &ClusterSpec, topology: &Topology, binary: &NodeBinary) -> Graph {
        aws_graph(spec, topology, Some(binary))
    }
}

/// The IAM path of a cluster's role, policy and instance profile: how `list` finds them.
pub fn iam_path(cluster: &str) -> String {
    format!("/paas/{cluster}/")
}

/// How the name of a cluster's artifact bucket starts; 12 hex characters follow.
pub fn artifact_bucket_prefix(cluster: &str) -> String {
    format!("paas-{cluster}-artifacts-")
}

/// The artifact bucket's name. Bucket names are global across accounts, so the name carries a
/// hash of the cluster, its domain and its region; it is at most 60 characters (a cluster name
/// has at most 32), lowercase, digits and hyphens.
pub fn artifact_bucket_name(cluster: &str, domain: &str, region: &str) -> String {
    let hash = stable_hash(&serde_json::json!([cluster, domain, region]));
    format!("{}{}", artifact_bucket_prefix(cluster), &hash[..12])
}

/// Where `paas-node` objects live in the artifact bucket: `paas-node/<sha256>`.
pub const NODE_OBJECT_PREFIX: &str = "paas-node/";

/// The id of the artifact bucket in the AWS graph.
pub fn artifact_bucket_id() -> ResourceId {
    ResourceId::new(ResourceKind::Bucket, "artifacts")
}

/// The id of the `paas-node` object in the AWS graph.
pub fn node_object_id() -> ResourceId {
    ResourceId::new(ResourceKind::Object, "paas-node")
}

/// Lets EC2 instances assume a role: the trust policy of the node role.
pub const EC2_TRUST: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The node role's only permission: reading the objects of the artifact bucket.
pub fn read_artifacts_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadNodeArtifacts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        }],
    })
    .to_string()
}

fn node_id(name: &str) -> ResourceId {
    ResourceId::new(ResourceKind::Node, name)
}

/// The sim's address of the host on the cluster network: the Docker network's gateway, through
/// which connections to ports published on 127.0.0.1 arrive.
pub fn sim_host_address(topology: &Topology) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(topology.vpc.network()) + 1)
}

fn sim_graph(spec: &ClusterSpec, topology: &Topology) -> Graph {
    let mut g = Graph::new(&topology.cluster, Target::Sim);
    let host = sim_host_address(topology);
    let network = g.add(
        ResourceId::new(ResourceKind::Network, &topology.cluster),
        vec![],
        ResourceSpec::Network {
            cidr: topology.vpc,
            gateway: Some(host),
        },
    );
    let admin_sources = vec![format!("{host}/32")];
    for node in &topology.nodes {
        let (memory_mib, image) = match node.role {
            Role::Master => (spec.sim.memory.master, &spec.sim.images.master),
            Role::Slave => (spec.sim.memory.slave, &spec.sim.images.slave),
            Role::Lb => (spec.sim.memory.lb, &spec.sim.images.lb),
            Role::AdminLb => (spec.sim.memory.adminlb, &spec.sim.images.adminlb),
        };
        let publish = if node.role == Role::AdminLb {
            // The admin names on one port; Marathon and Mesos also on plain ports of their own.
            vec![
                (spec.sim.admin_port, ports::HTTP),
                (spec.sim.marathon_port, ports::MARATHON),
                (spec.sim.mesos_port, ports::MESOS_MASTER),
            ]
        } else {
            vec![]
        };
        g.add(
            node_id(&node.name),
            vec![network.clone()],
            ResourceSpec::Node(NodeSpec {
                name: node.name.clone(),
                role: node.role,
                az: topology.az_of(node).name.clone(),
                tier: node.role.tier(),
                address: node.address,
                host: NodeHost::Container {
                    image: image.clone(),
                    memory_mib,
                    publish,
                },
                config: render::sim_node_config(spec, topology, node, &admin_sources),
            }),
        );
    }
    let members = lb_members(topology);
    let mut deps = vec![network];
    deps.extend(members.iter().map(|m| m.node.clone()));
    g.add(
        ResourceId::new(ResourceKind::LoadBalancer, "elb"),
        deps,
        ResourceSpec::LoadBalancer(LoadBalancerResource {
            spec: LoadBalancerSpec::external(&topology.cluster, 1),
            members,
            subnets: vec![],
            security_groups: vec![],
            publish: Some(spec.sim.http_port),
            image: spec.sim.images.elb.clone(),
            memory_mib: spec.sim.memory.elb,
        }),
    );
    g
}

fn lb_members(topology: &Topology) -> Vec<Member> {
    topology
        .nodes_of(Role::Lb)
        .map(|n| Member {
            node: node_id(&n.name),
            name: n.name.clone(),
            address: n.address,
        })
        .collect()
}

fn tcp(port: u16, source: RuleSource) -> IngressRule {
    IngressRule {
        protocol: "tcp".into(),
        from_port: port,
        to_port: port,
        source,
    }
}

/// The region of the zones (`eu-west-1a` → `eu-west-1`).
fn region_of(topology: &Topology) -> &str {
    topology
        .azs
        .first()
        .map_or("", |az| az.name.trim_end_matches(|c: char| c.is_ascii_lowercase()))
}

/// The private bucket, the node binary in it, and the role (with its one policy and its
/// instance profile) through which instances read it. Returns the profile and the object.
fn aws_artifacts(g: &mut Graph, topology: &Topology, binary: Option<&NodeBinary>) -> (ResourceId, Option<InstanceArtifact>) {
    let cluster = topology.cluster.clone();
    let bucket_name = artifact_bucket_name(&cluster, &topology.domain, region_of(topology));
    let bucket = g.add(artifact_bucket_id(), vec![], ResourceSpec::Bucket { name: bucket_name.clone() });
    let artifact = binary.map(|binary| {
        let object = g.add(
            node_object_id(),
            vec![bucket.clone()],
            ResourceSpec::Object {
                bucket: bucket.clone(),
                key: format!("{NODE_OBJECT_PREFIX}{}", binary.sha256),
                sha256: binary.sha256.clone(),
                source: binary.path.clone(),
            },
        );
        InstanceArtifact {
            object,
            sha256: binary.sha256.clone(),
        }
    });
    let path = iam_path(&cluster);
    let role = g.add(
        ResourceId::new(ResourceKind::Role, "node"),
        vec![],
        ResourceSpec::Role {
            name: format!("paas-{cluster}-node"),
            path: path.clone(),
            trust: EC2_TRUST.into(),
        },
    );
    g.add(
        ResourceId::new(ResourceKind::Policy, "read-artifacts"),
        vec![role.clone(), bucket],
        ResourceSpec::Policy {
            name: format!("paas-{cluster}-read-artifacts"),
            path: path.clone(),
            role: role.clone(),
            document: read_artifacts_policy(&bucket_name),
        },
    );
    let profile = g.add(
        ResourceId::new(ResourceKind::InstanceProfile, "node"),
        vec![role.clone()],
        ResourceSpec::InstanceProfile {
            name: format!("paas-{cluster}-node"),
            path,
            role,
        },
    );
    (profile, artifact)
}

fn aws_graph(spec: &ClusterSpec, topology: &Topology, binary: Option<&NodeBinary>) -> Graph {
    let cluster = &topology.cluster;
    let mut g = Graph::new(cluster, Target::Aws);
    let vpc = g.add(
        ResourceId::new(ResourceKind::Network, "vpc"),
        vec![],
        ResourceSpec::Network {
            cidr: topology.vpc,
            gateway: None,
        },
    );
    let igw = g.add(
        ResourceId::new(ResourceKind::Gateway, "igw"),
        vec![vpc.clone()],
        ResourceSpec::Gateway,
    );

    let mut front = Vec::new();
    let mut back = Vec::new();
    for az in &topology.azs {
        for (tier, cidr, list) in [(Tier::Front, az.front, &mut front), (Tier::Back, az.back, &mut back)] {
            let id = g.add(
                ResourceId::new(ResourceKind::Subnet, &format!("{}-{}", tier.as_str(), az.letter)),
                vec![vpc.clone()],
                ResourceSpec::Subnet {
                    az: az.name.clone(),
                    tier,
                    cidr,
                },
            );
            list.push(id);
        }
    }

    // A NAT per AZ keeps each AZ's private subnet online when another AZ fails.
    let nat_azs = match spec.aws.nat {
        NatMode::PerAz => topology.azs.len(),
        NatMode::Single => 1,
    };
    let nats: Vec<ResourceId> = topology.azs[..nat_azs]
        .iter()
        .map(|az| {
            g.add(
                ResourceId::new(ResourceKind::Nat, &az.letter.to_string()),
                vec![front[az.index].clone(), igw.clone()],
                ResourceSpec::Nat {
                    az: az.name.clone(),
                    subnet: front[az.index].clone(),
                },
            )
        })
        .collect();

    let mut deps = vec![igw.clone()];
    deps.extend(front.iter().cloned());
    g.add(
        ResourceId::new(ResourceKind::RouteTable, "front"),
        deps,
        ResourceSpec::RouteTable {
            tier: Tier::Front,
            via: igw.clone(),
            subnets: front.clone(),
        },
    );
    for az in &topology.azs {
        let nat = nats[az.index.min(nats.len() - 1)].clone();
        g.add(
            ResourceId::new(ResourceKind::RouteTable, &format!("back-{}", az.letter)),
            vec![nat.clone(), back[az.index].clone()],
            ResourceSpec::RouteTable {
                tier: Tier::Back,
                via: nat,
                subnets: vec![back[az.index].clone()],
            },
        );
    }

    let sg = |name: &str| ResourceId::new(ResourceKind::SecurityGroup, name);
    let internal = g.add(
        sg("internal"),
        vec![vpc.clone()],
        ResourceSpec::SecurityGroup {
            name: format!("{cluster}-internal"),
            description: "all traffic between cluster members".into(),
            rules: vec![IngressRule {
                protocol: "all".into(),
                from_port: 0,
                to_port: 65535,
                source: RuleSource::SameGroup,
            }],
        },
    );
    let elb_sg = g.add(
        sg("elb"),
        vec![vpc.clone()],
        ResourceSpec::SecurityGroup {
            name: format!("{cluster}-elb"),
            description: "http from anywhere to the external load balancer".into(),
            rules: vec![tcp(ports::HTTP, RuleSource::Cidr("0.0.0.0/0".into()))],
        },
    );
    let lb_sg = g.add(
        sg("lb"),
        vec![vpc.clone(), elb_sg.clone()],
        ResourceSpec::SecurityGroup {
            name: format!("{cluster}-lb"),
            description: "http from the external load balancer to the lbs".into(),
            rules: vec![tcp(ports::HTTP, RuleSource::Group(elb_sg.clone()))],
        },
    );
    let admin_rules = spec
        .admin_cidrs
        .iter()
        .flat_map(|c| [tcp(ports::HTTP, RuleSource::Cidr(c.clone())), tcp(22, RuleSource::Cidr(c.clone()))])
        .collect();
    let admin_sg = g.add(
        sg("admin"),
        vec![vpc.clone()],
        ResourceSpec::SecurityGroup {
            name: format!("{cluster}-admin"),
            description: "admin http and ssh from the admin CIDRs only".into(),
            rules: admin_rules,
        },
    );
    let key = g.add(
        ResourceId::new(ResourceKind::KeyPair, cluster),
        vec![],
        ResourceSpec::KeyPair { name: cluster.clone() },
    );
    let (profile, artifact) = aws_artifacts(&mut g, topology, binary);
    let policy = ResourceId::new(ResourceKind::Policy, "read-artifacts");

    for node in &topology.nodes {
        let az = topology.az_of(node);
        let subnet = match node.role.tier() {
            Tier::Front => front[az.index].clone(),
            Tier::Back => back[az.index].clone(),
        };
        let mut groups = vec![internal.clone()];
        match node.role {
            Role::Lb => groups.push(lb_sg.clone()),
            Role::AdminLb => groups.push(admin_sg.clone()),
            _ => {}
        }
        let instance_type = match node.role {
            Role::Master => &spec.aws.instance_types.master,
            Role::Slave => &spec.aws.instance_types.slave,
            Role::Lb => &spec.aws.instance_types.lb,
            Role::AdminLb => &spec.aws.instance_types.adminlb,
        };
        // The policy too: an instance reads the object as soon as it boots.
        let mut deps = vec![subnet.clone(), key.clone(), profile.clone(), policy.clone()];
        deps.extend(artifact.iter().map(|a| a.object.clone()));
        deps.extend(groups.iter().cloned());
        g.add(
            node_id(&node.name),
            deps,
            ResourceSpec::Node(NodeSpec {
                name: node.name.clone(),
                role: node.role,
                az: az.name.clone(),
                tier: node.role.tier(),
                address: node.address,
                host: NodeHost::Instance {
                    instance_type: instance_type.clone(),
                    ami: spec.aws.ami.clone(),
                    ami_name: spec.aws.ami_name.clone(),
                    ami_owner: spec.aws.ami_owner.clone(),
                    subnet,
                    security_groups: groups,
                    key_pair: key.clone(),
                    public_ip: node.role == Role::AdminLb,
                    profile: profile.clone(),
                    artifact: artifact.clone(),
                },
                config: render::node_config(spec, topology, node, &spec.admin_cidrs),
            }),
        );
    }

    let members = lb_members(topology);
    let mut deps: Vec<ResourceId> = front.clone();
    deps.push(elb_sg.clone());
    deps.extend(members.iter().map(|m| m.node.clone()));
    let elb = g.add(
        ResourceId::new(ResourceKind::LoadBalancer, "elb"),
        deps,
        ResourceSpec::LoadBalancer(LoadBalancerResource {
            spec: LoadBalancerSpec::external(cluster, 5),
            members,
            subnets: front.clone(),
            security_groups: vec![elb_sg],
            publish: None,
            image: None,
            memory_mib: 0,
        }),
    );

    let zone = g.add(
        ResourceId::new(ResourceKind::DnsZone, &topology.domain),
        vec![],
        ResourceSpec::DnsZone {
            domain: topology.domain.clone(),
        },
    );
    g.add(
        ResourceId::new(ResourceKind::DnsRecord, "wildcard"),
        vec![zone.clone(), elb.clone()],
        ResourceSpec::DnsRecord {
            name: format!("*.{}", topology.domain),
            target: elb,
        },
    );
    if let Some(adminlb) = topology.nodes_of(Role::AdminLb).next() {
        let target = node_id(&adminlb.name);
        for ui in ["marathon", "mesos"] {
            g.add(
                ResourceId::new(ResourceKind::DnsRecord, &format!("{ui}-admin")),
                vec![zone.clone(), target.clone()],
                ResourceSpec::DnsRecord {
                    name: format!("{ui}.admin.{}", topology.domain),
                    target: target.clone(),
                },
            );
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(spec: &ClusterSpec) -> Topology {
        Topology::place(spec, &Topology::sim_zones(spec.azs)).unwrap()
    }

    #[test]
    fn every_dependency_is_listed_before_its_dependent() {
        let spec = ClusterSpec::default();
        let aws = Graph::aws(&spec, &topology(&spec), &binary('a'));
        for (target, g) in [Target::Sim, Target::Aws]
            .map(|t| (t, Graph::desired(&spec, &topology(&spec), t)))
            .into_iter()
            .chain([(Target::Aws, aws)])
        {
            let mut seen = std::collections::BTreeSet::new();
            for r in g.resources() {
                for d in &r.depends_on {
                    assert!(seen.contains(d), "{target}: {} depends on {d}, listed later", r.id);
                    assert!(
                        d.kind().rank() < r.kind().rank() || d.kind() == r.kind(),
                        "{target}: {} depends on higher-rank {d}",
                        r.id
                    );
                }
                seen.insert(r.id.clone());
            }
        }
    }

    #[test]
    fn aws_graph_has_subnets_nats_and_dns_per_spec() {
        let mut spec = ClusterSpec::default();
        let g = Graph::desired(&spec, &topology(&spec), Target::Aws);
        let count = |kind| g.resources().iter().filter(|r| r.kind() == kind).count();
        assert_eq!(count(ResourceKind::Subnet), 6);
        assert_eq!(count(ResourceKind::Nat), 3);
        assert_eq!(count(ResourceKind::Node), 11);
        assert_eq!(count(ResourceKind::DnsRecord), 3);
        spec.aws.nat = NatMode::Single;
        let g = Graph::desired(&spec, &topology(&spec), Target::Aws);
        assert_eq!(g.resources().iter().filter(|r| r.kind() == ResourceKind::Nat).count(), 1);
    }

    #[test]
    fn admin_and_ssh_are_open_only_to_admin_cidrs() {
        let spec = ClusterSpec {
            admin_cidrs: vec!["203.0.113.0/24".into()],
            ..ClusterSpec::default()
        };
        let g = Graph::desired(&spec, &topology(&spec), Target::Aws);
        for r in g.resources() {
            if let ResourceSpec::SecurityGroup { rules, .. } = &r.spec {
                for rule in rules {
                    if rule.from_port == 22 || r.id.name() == "admin" {
                        assert_eq!(rule.source, RuleSource::Cidr("203.0.113.0/24".into()), "{}", r.id);
                    }
                }
            }
        }
    }

    fn binary(sha: char) -> NodeBinary {
        NodeBinary {
            path: "/tmp/paas-node".into(),
            sha256: std::iter::repeat_n(sha, 64).collect(),
        }
    }

    #[test]
    fn aws_graph_delivers_the_node_binary_from_a_private_bucket_through_an_instance_profile() {
        let spec = ClusterSpec::default();
        let g = Graph::aws(&spec, &topology(&spec), &binary('a'));
        let of = |kind| g.resources().iter().filter(|r| r.kind() == kind).collect::<Vec<_>>();
        for kind in [
            ResourceKind::Bucket,
            ResourceKind::Object,
            ResourceKind::Role,
            ResourceKind::Policy,
            ResourceKind::InstanceProfile,
        ] {
            assert_eq!(of(kind).len(), 1, "{kind}");
        }
        let ResourceSpec::Object { key, bucket, .. } = &of(ResourceKind::Object)[0].spec else {
            unreachable!()
        };
        assert_eq!(key, &format!("paas-node/{}", "a".repeat(64)));
        let ResourceSpec::Bucket { name } = &g.get(bucket).unwrap().spec else {
            unreachable!()
        };
        assert!(
            name.len() <= 63 && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        let ResourceSpec::Policy { document, .. } = &of(ResourceKind::Policy)[0].spec else {
            unreachable!()
        };
        let doc: serde_json::Value = serde_json::from_str(document).unwrap();
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(statements[0]["Action"], "s3:GetObject");
        assert_eq!(statements[0]["Resource"], format!("arn:aws:s3:::{name}/*"));
        for node in of(ResourceKind::Node) {
            let ResourceSpec::Node(NodeSpec {
                host: NodeHost::Instance { profile, artifact, .. },
                ..
            }) = &node.spec
            else {
                unreachable!()
            };
            assert_eq!(profile.kind(), ResourceKind::InstanceProfile);
            assert_eq!(artifact.as_ref().unwrap().object, node_object_id());
            for dep in [profile, &node_object_id(), &ResourceId::new(ResourceKind::Policy, "read-artifacts")] {
                assert!(node.depends_on.contains(dep), "{} needs {dep}", node.id);
            }
        }
    }

    #[test]
    fn a_new_node_binary_replaces_the_object_and_every_instance_and_nothing_else() {
        let spec = ClusterSpec::default();
        let (a, b) = (
            Graph::aws(&spec, &topology(&spec), &binary('a')),
            Graph::aws(&spec, &topology(&spec), &binary('b')),
        );
        let changed: Vec<_> = a
            .resources()
            .iter()
            .filter(|r| r.fingerprint().replace != b.get(&r.id).unwrap().fingerprint().replace)
            .map(|r| r.kind())
            .collect();
        assert_eq!(changed.iter().filter(|k| **k == ResourceKind::Node).count(), 11);
        assert_eq!(changed.iter().filter(|k| **k == ResourceKind::Object).count(), 1);
        assert_eq!(changed.len(), 12);
        // Where the binary was read from is not what it is.
        let mut moved = binary('a');
        moved.path = "/elsewhere/paas-node".into();
        let c = Graph::aws(&spec, &topology(&spec), &moved);
        assert!(a.resources().iter().all(|r| r.fingerprint() == c.get(&r.id).unwrap().fingerprint()));
    }

    #[test]
    fn changing_lb_members_is_an_update_not_a_replace() {
        let mut spec = ClusterSpec::default();
        let before = Graph::desired(&spec, &topology(&spec), Target::Sim);
        spec.nodes.lbs = 3;
        let after = Graph::desired(&spec, &topology(&spec), Target::Sim);
        let id = ResourceId::new(ResourceKind::LoadBalancer, "elb");
        let (a, b) = (before.get(&id).unwrap().fingerprint(), after.get(&id).unwrap().fingerprint());
        assert_eq!(a.replace, b.replace);
        assert_ne!(a.update, b.update);
    }
}
