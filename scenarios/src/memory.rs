//! [`Platform`] on the in-memory backend, with a small model of what Mesos and Marathon do:
//! an agent the masters cannot reach for `lost_after` observations has its tasks declared
//! lost; missing instances are launched on reachable agents with room, fewest-first; every
//! running lb routes to the tasks on reachable agents. Each [`Platform::view`] advances the
//! model one step, so a session in paused tokio time runs a whole fault in milliseconds.
//! Used by the property tests of chaos: faults, heals and recovery bookkeeping are the real
//! code; only the platform's reaction is modelled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use paas_core::memory::{MemoryBackend, NodeState as MemoryState};
use paas_core::resource::ResourceKind;
use paas_core::{Backend, NodeOp, Role};

use crate::platform::{AppView, ClusterView, NetRule, NodeInfo, NodeState, Platform, PlatformError};

/// An app of the model.
#[derive(Debug, Clone)]
pub struct ModelApp {
    pub id: String,
    pub instances: u32,
    pub cpus: f64,
}

#[derive(Debug, Default)]
struct Model {
    apps: Vec<ModelApp>,
    /// Task id → (app id, agent name).
    tasks: BTreeMap<String, (String, String)>,
    /// Agent name → consecutive observations it was unreachable.
    unreachable: BTreeMap<String, u32>,
    rules: BTreeMap<String, Vec<NetRule>>,
    next_task: u64,
}

pub struct MemoryPlatform {
    backend: Arc<MemoryBackend>,
    cluster: String,
    domain: String,
    quorum: usize,
    /// Cpus each agent offers.
    agent_cpus: f64,
    /// Observations before an unreachable agent's tasks are declared lost.
    lost_after: u32,
    model: Mutex<Model>,
}

impl MemoryPlatform {
    /// A platform over the nodes `backend` holds for `cluster` (made by an engine apply).
    pub fn new(backend: Arc<MemoryBackend>, cluster: &str, quorum: usize, agent_cpus: f64, apps: Vec<ModelApp>) -> MemoryPlatform {
        MemoryPlatform {
            backend,
            cluster: cluster.into(),
            domain: "paas.test".into(),
            quorum,
            agent_cpus,
            lost_after: 3,
            model: Mutex::new(Model { apps, ..Model::default() }),
        }
    }

    /// Network rules in force, by node.
    pub fn rules(&self) -> BTreeMap<String, Vec<NetRule>> {
        self.model.lock().unwrap().rules.clone()
    }

    async fn observed_nodes(&self) -> Result<Vec<paas_core::Observed>, PlatformError> {
        let observed = self.backend.list(&self.cluster).await.map_err(|e| PlatformError::Other {
            what: "listing nodes".into(),
            message: e.to_string(),
        })?;
        Ok(observed.into_iter().filter(|o| o.kind() == ResourceKind::Node).collect())
    }
}

#[async_trait]
impl Platform for MemoryPlatform {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, PlatformError> {
        Ok(self
            .observed_nodes()
            .await?
            .into_iter()
            .map(|o| {
                let name = o.id.name().to_string();
                let state = match self.backend.node_state(&self.cluster, &name) {
                    Some(MemoryState::Running) | None => NodeState::Running,
                    Some(MemoryState::Paused) => NodeState::Paused,
                    Some(MemoryState::Stopped) => NodeState::Stopped,
                };
                NodeInfo {
                    name,
                    role: o.attrs.get("role").and_then(|r| Role::parse(r)),
                    az: o.attrs.get("az").cloned().unwrap_or_default(),
                    address: o.attrs.get("address").cloned().unwrap_or_default(),
                    state,
                }
            })
            .collect())
    }

    async fn node_op(&self, node: &str, op: NodeOp) -> Result<(), PlatformError> {
        let observed = self.observed_nodes().await?;
        let target = observed.iter().find(|o| o.id.name() == node).ok_or_else(|| PlatformError::Node {
            op: op.as_str().into(),
            node: node.into(),
            message: "no such node".into(),
        })?;
        self.backend
            .node_op(&self.cluster, target, op)
            .await
            .map_err(|e| PlatformError::Node {
                op: op.as_str().into(),
                node: node.into(),
                message: e.to_string(),
            })?;
        if matches!(op, NodeOp::Kill | NodeOp::Stop) {
            // A stopped node's network namespace, and its rules, go with it.
            self.model.lock().unwrap().rules.remove(node);
        }
        Ok(())
    }

    async fn net_add(&self, node: &str, rule: &NetRule) -> Result<(), PlatformError> {
        self.model.lock().unwrap().rules.entry(node.into()).or_default().push(rule.clone());
        Ok(())
    }

    async fn net_clear(&self, node: &str) -> Result<(), PlatformError> {
        self.model.lock().unwrap().rules.remove(node);
        Ok(())
    }

    async fn view(&self) -> ClusterView {
        let Ok(nodes) = self.nodes().await else {
            return ClusterView::default();
        };
        let mut model = self.model.lock().unwrap();
        let isolated = |name: &str, model: &Model| {
            model
                .rules
                .get(name)
                .is_some_and(|rules| rules.iter().any(|r| matches!(r, NetRule::Isolate { .. })))
        };
        let up = |n: &NodeInfo| n.state == NodeState::Running;
        let masters: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.role == Some(Role::Master) && up(n) && !isolated(&n.name, &model))
            .collect();
        let leader = (masters.len() >= self.quorum).then(|| masters[0].name.clone());
        if leader.is_none() {
            return ClusterView::default();
        }
        let reachable: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.role == Some(Role::Slave) && up(n) && !isolated(&n.name, &model))
            .collect();
        for agent in nodes.iter().filter(|n| n.role == Some(Role::Slave)) {
            let count = model.unreachable.entry(agent.name.clone()).or_default();
            *count = if reachable.iter().any(|r| r.name == agent.name) {
                0
            } else {
                *count + 1
            };
        }
        let lost: Vec<String> = model
            .unreachable
            .iter()
            .filter(|(_, n)| **n >= self.lost_after)
            .map(|(name, _)| name.clone())
            .collect();
        model.tasks.retain(|_, (_, agent)| !lost.contains(agent));
        // Launch what is missing, one instance at a time on the reachable agent with room and
        // the fewest of the app's tasks.
        for app in model.apps.clone() {
            loop {
                let have = model.tasks.values().filter(|(a, _)| *a == app.id).count() as u32;
                if have >= app.instances {
                    break;
                }
                let used = |agent: &str, model: &Model| -> f64 {
                    model
                        .tasks
                        .values()
                        .filter(|(_, a)| a == agent)
                        .map(|(id, _)| model.apps.iter().find(|x| &x.id == id).map_or(0.0, |x| x.cpus))
                        .sum()
                };
                let choice = reachable
                    .iter()
                    .filter(|agent| used(&agent.name, &model) + app.cpus <= self.agent_cpus + 1e-9)
                    .min_by_key(|agent| model.tasks.values().filter(|(a, h)| *a == app.id && *h == agent.name).count());
                let Some(agent) = choice else { break };
                model.next_task += 1;
                let id = format!("{}.{}", app.id.trim_start_matches('/'), model.next_task);
                model.tasks.insert(id, (app.id.clone(), agent.name.clone()));
            }
            // Scale down: the newest first.
            let mut ids: Vec<String> = model
                .tasks
                .iter()
                .filter(|(_, (a, _))| *a == app.id)
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort_by_key(|id| id.rsplit('.').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0));
            while ids.len() as u32 > app.instances {
                let id = ids.pop().expect("more than wanted");
                model.tasks.remove(&id);
            }
        }
        let address = |name: &str| nodes.iter().find(|n| n.name == name).map(|n| n.address.clone()).unwrap_or_default();
        let serving = |app: &ModelApp| {
            model
                .tasks
                .values()
                .filter(|(a, h)| *a == app.id && reachable.iter().any(|r| &r.name == h))
                .count()
        };
        let apps: Vec<AppView> = model
            .apps
            .iter()
            .map(|app| AppView {
                id: app.id.clone(),
                vhost: format!("{}.{}", app.id.trim_start_matches('/'), self.domain),
                instances: app.instances,
                running: model.tasks.values().filter(|(a, _)| *a == app.id).count() as u32,
                healthy: serving(app) as u32,
                health_checked: true,
                tasks: model
                    .tasks
                    .iter()
                    .filter(|(_, (a, _))| *a == app.id)
                    .map(|(id, (_, agent))| (id.clone(), address(agent)))
                    .collect(),
                cpus: app.cpus,
                mem: 0.0,
            })
            .collect();
        let lb_routes = nodes
            .iter()
            .filter(|n| n.role == Some(Role::Lb) && up(n) && !isolated(&n.name, &model))
            .map(|lb| {
                let routes = model
                    .apps
                    .iter()
                    .map(|app| (format!("{}.{}", app.id.trim_start_matches('/'), self.domain), serving(app)))
                    .collect();
                (lb.name.clone(), routes)
            })
            .collect();
        ClusterView {
            apps: Some(apps),
            lb_routes,
            mesos_leader: leader.clone(),
            marathon_leader: leader.clone(),
            zookeeper_leader: leader,
            agents_registered: reachable.len() as u32,
        }
    }

    async fn scale_app(&self, app: &str, instances: u32) -> Result<(), PlatformError> {
        let mut model = self.model.lock().unwrap();
        let found = model.apps.iter_mut().find(|a| a.id == app).ok_or_else(|| PlatformError::Other {
            what: format!("scaling {app}"),
            message: "no such app".into(),
        })?;
        found.instances = instances;
        Ok(())
    }

    async fn deploy_app(&self, definition: &str) -> Result<(), PlatformError> {
        let app = paas_core::app::AppFile::parse(definition).map_err(|message| PlatformError::Other {
            what: "the app definition".into(),
            message,
        })?;
        let value: serde_json::Value = serde_json::from_str(definition).unwrap_or_default();
        let mut model = self.model.lock().unwrap();
        model.apps.retain(|a| a.id != app.id);
        model.apps.push(ModelApp {
            id: app.id.clone(),
            instances: app.instances.unwrap_or(1),
            // Marathon's defaults.
            cpus: value["cpus"].as_f64().unwrap_or(1.0),
        });
        Ok(())
    }

    fn entry(&self) -> String {
        "127.0.0.1:9".into()
    }

    fn agent_resources(&self) -> Option<(f64, f64)> {
        Some((self.agent_cpus, 4096.0))
    }
}
