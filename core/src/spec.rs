//! The cluster spec (`paas.toml`): what the user asks for, before any backend is involved.
//!
//! Parsing keeps the file's words ([`ClusterSpec`]); [`ClusterSpec::validate`] checks them and
//! reports every problem at once as [`SpecError`]s that name the key, the value and the fix.

mod edit;
mod validate;

use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use validate::{MAX_AZS, SpecError, SpecErrors, ValidationContext};

/// The name of the spec file `paas` looks for in the working directory.
pub const DEFAULT_SPEC_FILE: &str = "paas.toml";

/// A whole cluster as the user describes it. Every field has a default, so an empty file (or no
/// file at all) is the seed's cluster: 3 masters, 5 slaves, 2 lbs and an adminlb over 3 AZs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name: prefixes every resource and labels/tags everything a backend creates.
    pub name: String,
    /// Apps are served as `<app>.<domain>`; admin UIs as `marathon.admin.<domain>`.
    pub domain: String,
    /// Availability zones to spread nodes over.
    pub azs: u32,
    /// The address space of the cluster network (the VPC on AWS, the Docker network in the sim).
    pub vpc_cidr: String,
    /// Who may reach the admin entry (Marathon and Mesos UIs) and SSH.
    pub admin_cidrs: Vec<String>,
    /// Allows an admin CIDR of `0.0.0.0/0`; anyone on the internet could then run jobs.
    pub allow_public_admin: bool,
    pub nodes: NodeCounts,
    pub agent: AgentResources,
    pub mesos: MesosSettings,
    /// Marathon app definitions (JSON files, relative to the spec file) deployed once the cluster
    /// is up. Absent: the built-in `www` hello app. Empty: no apps.
    pub apps: Option<Vec<PathBuf>>,
    pub sim: SimSpec,
    pub aws: AwsSpec,
}

/// How many nodes of each role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeCounts {
    /// ZooKeeper + Mesos master + Marathon machines; odd, so that a quorum survives a loss.
    pub masters: u32,
    /// Mesos agents that run the app tasks.
    pub slaves: u32,
    /// nginx + lb-sync machines behind the external load balancer.
    pub lbs: u32,
    /// The admin entry point (0 or 1).
    pub adminlb: u32,
}

/// What each Mesos agent offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentResources {
    pub cpus: f64,
    /// MiB.
    pub mem: u64,
    /// MiB.
    pub disk: u64,
    /// Host ports handed to tasks, `"31000-32000"`.
    pub ports: String,
}

/// How the Mesos masters judge agents (Mesos' own flags and defaults). An agent that stops
/// answering has its tasks declared lost after `agent_ping_timeout_secs` ×
/// `max_agent_ping_timeouts`: this bounds how fast apps recover from a lost slave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosSettings {
    pub agent_ping_timeout_secs: u32,
    pub max_agent_ping_timeouts: u32,
}

impl Default for MesosSettings {
    fn default() -> Self {
        MesosSettings {
            agent_ping_timeout_secs: 15,
            max_agent_ping_timeouts: 5,
        }
    }
}

/// Settings only the local Docker simulation reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSpec {
    /// Port on 127.0.0.1 where the external load balancer (HAProxy) listens.
    pub http_port: u16,
    /// Port on 127.0.0.1 where the admin entry (nginx) listens.
    pub admin_port: u16,
    /// Port on 127.0.0.1 where the admin entry serves Marathon (the leader's) without a host
    /// name, for clients that cannot resolve `marathon.admin.<domain>`.
    pub marathon_port: u16,
    /// Port on 127.0.0.1 where the admin entry serves the leading Mesos master without a host
    /// name, for clients that cannot resolve `mesos.admin.<domain>`.
    pub mesos_port: u16,
    /// Memory limit per container, MiB, by role.
    pub memory: RoleMemory,
    /// Image per role; empty means the locally built `paas-sim` images.
    pub images: RoleImages,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleMemory {
    pub master: u64,
    pub slave: u64,
    pub lb: u64,
    pub adminlb: u64,
    pub elb: u64,
}

/// Container images by role. `None` selects the image `paas sim images` builds. A named image
/// must follow the node contract: the container's command is `--config /etc/paas/node.json`,
/// so its entrypoint takes the node's configuration file, as `paas-node supervise` does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleImages {
    pub master: Option<String>,
    pub slave: Option<String>,
    pub lb: Option<String>,
    pub adminlb: Option<String>,
    pub elb: Option<String>,
}

/// Settings only the AWS backend reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSpec {
    /// Region; `None` takes the one of the standard AWS chain (env, profile).
    pub region: Option<String>,
    pub nat: NatMode,
    pub instance_types: RoleInstanceTypes,
    /// A fixed AMI id; when absent the newest image matching `ami_name` owned by `ami_owner`.
    pub ami: Option<String>,
    pub ami_name: String,
    pub ami_owner: String,
}

/// How the private subnets reach the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// A NAT gateway in every AZ: losing an AZ does not cut the others off.
    PerAz,
    /// One NAT gateway for all AZs: cheaper, but its AZ is a single point of failure.
    Single,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleInstanceTypes {
    pub master: String,
    pub slave: String,
    pub lb: String,
    pub adminlb: String,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            name: "paas".into(),
            domain: "paas.localhost".into(),
            azs: 3,
            vpc_cidr: "10.20.0.0/16".into(),
            admin_cidrs: vec!["127.0.0.1/32".into()],
            allow_public_admin: false,
            nodes: NodeCounts::default(),
            agent: AgentResources::default(),
            mesos: MesosSettings::default(),
            apps: None,
            sim: SimSpec::default(),
            aws: AwsSpec::default(),
        }
    }
}

impl Default for NodeCounts {
    fn default() -> Self {
        NodeCounts {
            masters: 3,
            slaves: 5,
            lbs: 2,
            adminlb: 1,
        }
    }
}

impl Default for AgentResources {
    fn default() -> Self {
        AgentResources {
            cpus: 2.0,
            mem: 2048,
            disk: 10_000,
            ports: "31000-32000".into(),
        }
    }
}

impl Default for SimSpec {
    fn default() -> Self {
        SimSpec {
            http_port: 8080,
            admin_port: 8081,
            marathon_port: 8082,
            mesos_port: 5050,
            memory: RoleMemory::default(),
            images: RoleImages::default(),
        }
    }
}

impl Default for RoleMemory {
    fn default() -> Self {
        RoleMemory {
            master: 768,
            slave: 512,
            lb: 128,
            adminlb: 64,
            elb: 64,
        }
    }
}

impl Default for AwsSpec {
    fn default() -> Self {
        AwsSpec {
            region: None,
            nat: NatMode::PerAz,
            instance_types: RoleInstanceTypes::default(),
            ami: None,
            ami_name: "debian-12-amd64-*".into(),
            // Debian's own account for its official cloud images.
            ami_owner: "136693071363".into(),
        }
    }
}

impl Default for RoleInstanceTypes {
    fn default() -> Self {
        RoleInstanceTypes {
            master: "t3.medium".into(),
            slave: "t3.large".into(),
            lb: "t3.small".into(),
            adminlb: "t3.micro".into(),
        }
    }
}

/// An inclusive range of host ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub begin: u16,
    pub end: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.begin, self.end)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (begin, end) = s.split_once('-').ok_or("expected BEGIN-END, e.g. 31000-32000")?;
        let begin: u16 = begin.trim().parse().map_err(|_| format!("`{begin}` is not a port"))?;
        let end: u16 = end.trim().parse().map_err(|_| format!("`{end}` is not a port"))?;
        if begin == 0 || begin > end {
            return Err("expected 0 < BEGIN <= END".into());
        }
        Ok(PortRange { begin, end })
    }
}

impl ClusterSpec {
    /// Parses a spec from TOML text. `origin` names the file in error messages.
    ///
    /// Fails with [`SpecError::Syntax`] (line, column and the dotted key, e.g. `nodes.slaves`)
    /// on bad TOML, unknown keys or wrong types.
    pub fn from_toml(text: &str, origin: &Path) -> Result<ClusterSpec, SpecError> {
        let document = toml::Deserializer::parse(text).map_err(|e| SpecError::syntax(origin, text, None, &e))?;
        // The path tracker names the key being read when serde fails: toml's own message
        // gives only the place, and users look for the key (as cargo and terraform show it).
        serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            let key = (key != "." && !key.is_empty()).then_some(key);
            SpecError::syntax(origin, text, key, e.inner())
        })
    }

    /// Reads and parses a spec file. Fails when it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<ClusterSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        ClusterSpec::from_toml(&text, path)
    }

    /// The VPC CIDR; only valid after [`ClusterSpec::validate`] passed.
    pub fn vpc(&self) -> Ipv4Net {
        self.vpc_cidr.parse().expect("vpc_cidr checked by validate()")
    }

    /// The agents' port range; only valid after [`ClusterSpec::validate`] passed.
    pub fn agent_ports(&self) -> PortRange {
        self.agent.ports.parse().expect("agent.ports checked by validate()")
    }

    /// The admin CIDRs; only valid after [`ClusterSpec::validate`] passed.
    pub fn admin_nets(&self) -> Vec<ipnet::IpNet> {
        self.admin_cidrs
            .iter()
            .map(|c| c.parse().expect("admin_cidrs checked by validate()"))
            .collect()
    }
}

/// The commented default spec `paas init` writes. Parsing it yields [`ClusterSpec::default`]
/// (a unit test holds the two together).
pub const DEFAULT_SPEC_TOML: &str = include_str!("spec/default.toml");

#[cfg(test)]
mod tests;
