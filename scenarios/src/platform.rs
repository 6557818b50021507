//! The boundary between chaos and a running cluster: what a fault can do to a node, and what
//! can be observed of the platform while it runs. The sim implements it on Docker
//! (`paas_docker::chaos::SimPlatform`); [`crate::memory::MemoryPlatform`] is a model for property tests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use paas_core::{NodeOp, Role};
use serde::{Deserialize, Serialize};

/// A node of the cluster as chaos sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `slave-3`, `lb-1`, `elb`.
    pub name: String,
    /// `None` for nodes outside the four roles (the external load balancer).
    pub role: Option<Role>,
    pub az: String,
    pub address: String,
    pub state: NodeState,
}

/// Whether a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    Paused,
    Stopped,
}

/// A network fault installed on one node. Each applies to traffic between the node and the
/// cluster network; traffic to and from the host (the probe's path into the elb) is untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NetRule {
    /// Drop every packet to and from these addresses, both ways.
    Isolate { peers: Vec<String> },
    /// Drop this share (0–100) of incoming packets at random.
    Loss { percent: f64 },
    /// Hold outgoing packets for `ms` ± uniform `jitter_ms`.
    Delay { ms: u32, jitter_ms: u32 },
}

/// A leader chaos can aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Mesos,
    Marathon,
    Zookeeper,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Mesos => "mesos",
            Component::Marathon => "marathon",
            Component::Zookeeper => "zookeeper",
        }
    }
}

/// One Marathon app as observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppView {
    /// `/www`.
    pub id: String,
    /// `www.paas.localhost`: the `Host` the lbs route on.
    pub vhost: String,
    pub instances: u32,
    pub running: u32,
    pub healthy: u32,
    /// Whether the app has health checks (then `healthy`, not `running`, counts).
    pub health_checked: bool,
    /// Task id → the agent address it runs on.
    pub tasks: BTreeMap<String, String>,
    /// Resources of one instance.
    pub cpus: f64,
    pub mem: f64,
}

impl AppView {
    /// Instances that count as serving: healthy ones when health-checked, else running ones.
    pub fn serving(&self) -> u32 {
        if self.health_checked { self.healthy } else { self.running }
    }
}

/// One observation of the platform. Parts that did not answer are empty or `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// `None` when Marathon did not answer (then the apps are unknown, not absent).
    pub apps: Option<Vec<AppView>>,
    /// For each running lb: vhost → number of backends in its nginx config.
    pub lb_routes: BTreeMap<String, BTreeMap<String, usize>>,
    /// Leader node names.
    pub mesos_leader: Option<String>,
    pub marathon_leader: Option<String>,
    pub zookeeper_leader: Option<String>,
    pub agents_registered: u32,
}

impl ClusterView {
    pub fn leader(&self, component: Component) -> Option<&str> {
        match component {
            Component::Mesos => self.mesos_leader.as_deref(),
            Component::Marathon => self.marathon_leader.as_deref(),
            Component::Zookeeper => self.zookeeper_leader.as_deref(),
        }
    }

    /// What still keeps the platform from its steady state: a leader of ZooKeeper, Mesos and
    /// Marathon that is not one of the `down` nodes; every app serving its instance count
    /// with no task on `lost` addresses, and present with that many backends in the config
    /// of every lb in `lbs`. Empty when recovered.
    pub fn unrecovered(&self, lbs: &[String], lost: &[String], down: &[String]) -> Vec<String> {
        let mut missing = Vec::new();
        for component in [Component::Zookeeper, Component::Mesos, Component::Marathon] {
            match self.leader(component) {
                None => missing.push(format!("no {} leader", component.as_str())),
                Some(leader) if down.iter().any(|d| d == leader) => {
                    missing.push(format!("the {} leader is still the lost {leader}", component.as_str()))
                }
                Some(_) => {}
            }
        }
        let Some(apps) = &self.apps else {
            missing.push("Marathon does not answer".into());
            return missing;
        };
        if lbs.is_empty() {
            missing.push("no lb is left to route the apps".into());
        }
        for app in apps {
            if app.serving() < app.instances {
                missing.push(format!("{} {} of {} serving", app.id, app.serving(), app.instances));
            }
            let stale = app.tasks.values().filter(|host| lost.contains(host)).count();
            if stale > 0 {
                missing.push(format!("{} has {stale} tasks on faulted nodes", app.id));
            }
            for lb in lbs {
                let routed = self.lb_routes.get(lb).and_then(|r| r.get(&app.vhost)).copied().unwrap_or(0);
                if routed < app.instances as usize {
                    missing.push(format!("{lb} routes {} to {routed} of {}", app.vhost, app.instances));
                }
            }
        }
        missing
    }

    /// Every task id of every app.
    pub fn task_ids(&self) -> Vec<String> {
        self.apps.iter().flatten().flat_map(|a| a.tasks.keys().cloned()).collect()
    }
}

/// Why a platform operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{op} on {node}: {message}")]
    Node { op: String, node: String, message: String },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

/// A running cluster chaos can act on and observe.
#[async_trait]
pub trait Platform: Send + Sync {
    /// `sim`, `memory`.
    fn backend(&self) -> &'static str;

    /// Every node with its state.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, PlatformError>;

    /// Kills, stops, starts, pauses or unpauses one node.
    async fn node_op(&self, node: &str, op: NodeOp) -> Result<(), PlatformError>;

    /// Installs a network fault on one node (added to those already there).
    async fn net_add(&self, node: &str, rule: &NetRule) -> Result<(), PlatformError>;

    /// Removes every network fault from one node. Succeeds when there is none.
    async fn net_clear(&self, node: &str) -> Result<(), PlatformError>;

    /// One observation of apps, lb configs and leaders; never fails, reports what answered.
    async fn view(&self) -> ClusterView;

    /// Sets an app's instance count.
    async fn scale_app(&self, app: &str, instances: u32) -> Result<(), PlatformError>;

    /// Creates or updates an app from its Marathon definition (JSON).
    async fn deploy_app(&self, definition: &str) -> Result<(), PlatformError>;

    /// Where the probe sends app traffic: `host:port` of the external load balancer.
    fn entry(&self) -> String;

    /// What one agent offers (cpus, mem in MiB), to tell a short capacity from a slow recovery.
    fn agent_resources(&self) -> Option<(f64, f64)>;
}
