//! A backend that keeps resources in memory, with injectable failures and latency.
//!
//! Product code, not a test double: it is how the engine's guarantees are checked (see the
//! proptest properties) and how chaos logic can be exercised without Docker or AWS.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{Backend, BackendError, NodeOp, Observed, Resolved};
use crate::resource::{Resource, ResourceSpec};

/// Which backend call a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    List,
    Create,
    Update,
    Delete,
    NodeOp,
}

/// What happens on the n-th call (counted from 1 over all calls of any kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails before doing anything.
    Fail,
    /// The call fails transiently before doing anything (the engine retries).
    Transient,
    /// The call takes effect, then the caller sees a failure, as when the tool is killed
    /// between the cloud's answer and recording it.
    FailAfterEffect,
}

/// The state of a node as chaos left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Stopped,
    Paused,
}

#[derive(Debug, Default)]
struct World {
    /// Every resource, by provider id; several may share a resource id (duplicates).
    resources: BTreeMap<String, (String, Observed)>,
    nodes: BTreeMap<String, NodeState>,
    faults: BTreeMap<u64, Fault>,
    calls_by_kind: BTreeMap<Call, u64>,
}

/// Resources in memory. Cheap to clone a view of with [`MemoryBackend::snapshot`].
#[derive(Debug, Default)]
pub struct MemoryBackend {
    world: Mutex<World>,
    calls: AtomicU64,
    next_id: AtomicU64,
    latency: Mutex<Duration>,
}

impl MemoryBackend {
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    /// Makes call number `n` (1-based, counting every call from now on, of any kind) misbehave.
    pub fn inject(&self, n: u64, fault: Fault) {
        let base = self.calls.load(Ordering::SeqCst);
        self.world.lock().unwrap().faults.insert(base + n, fault);
    }

    /// Forgets faults not yet triggered.
    pub fn clear_faults(&self) {
        self.world.lock().unwrap().faults.clear();
    }

    /// Adds latency to every call.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// How many calls of a kind were made.
    pub fn calls(&self, call: Call) -> u64 {
        self.world.lock().unwrap().calls_by_kind.get(&call).copied().unwrap_or(0)
    }

    /// Every resource of every cluster, duplicates included.
    pub fn snapshot(&self) -> Vec<(String, Observed)> {
        self.world.lock().unwrap().resources.values().cloned().collect()
    }

    /// A node's state, by resource name (`master-1`).
    pub fn node_state(&self, cluster: &str, name: &str) -> Option<NodeState> {
        self.world.lock().unwrap().nodes.get(&format!("{cluster}/{name}")).copied()
    }

    async fn enter(&self, call: Call, id: &str) -> Result<Option<Fault>, BackendError> {
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut world = self.world.lock().unwrap();
        *world.calls_by_kind.entry(call).or_default() += 1;
        match world.faults.remove(&n) {
            Some(Fault::Fail) => Err(BackendError::failed(call_name(call), id, format!("injected failure on call {n}"))),
            Some(Fault::Transient) => Err(BackendError::Transient {
                op: call_name(call),
                id: id.into(),
                message: format!("injected throttling on call {n}"),
            }),
            other => Ok(other),
        }
    }
}

fn call_name(call: Call) -> &'static str {
    match call {
        Call::List => "list",
        Call::Create => "create",
        Call::Update => "update",
        Call::Delete => "delete",
        Call::NodeOp => "node operation",
    }
}

fn after_effect(fault: Option<Fault>, call: Call, id: &str) -> Result<(), BackendError> {
    match fault {
        Some(Fault::FailAfterEffect) => Err(BackendError::failed(call_name(call), id, "injected failure after the effect")),
        _ => Ok(()),
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn list(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let fault = self.enter(Call::List, cluster).await?;
        let found = self
            .world
            .lock()
            .unwrap()
            .resources
            .values()
            .filter(|(c, _)| c == cluster)
            .map(|(_, o)| o.clone())
            .collect();
        after_effect(fault, Call::List, cluster)?;
        Ok(found)
    }

    async fn create(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let fault = self.enter(Call::Create, resource.id.as_str()).await?;
        if let Some(missing) = resource.depends_on.iter().find(|d| !deps.contains_key(*d)) {
            return Err(BackendError::failed(
                "create",
                &resource.id,
                format!("dependency {missing} not resolved"),
            ));
        }
        let provider_id = format!("mem-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        let mut attrs = BTreeMap::new();
        if let ResourceSpec::Node(node) = &resource.spec {
            attrs.insert("address".into(), node.address.to_string());
            attrs.insert("role".into(), node.role.as_str().into());
            attrs.insert("az".into(), node.az.clone());
        }
        let observed = Observed {
            id: resource.id.clone(),
            provider_id: provider_id.clone(),
            fingerprint: resource.fingerprint(),
            attrs,
        };
        {
            let mut world = self.world.lock().unwrap();
            world.resources.insert(provider_id, (cluster.into(), observed.clone()));
            if let ResourceSpec::Node(node) = &resource.spec {
                world.nodes.insert(format!("{cluster}/{}", node.name), NodeState::Running);
            }
        }
        after_effect(fault, Call::Create, resource.id.as_str())?;
        Ok(observed)
    }

    async fn update(&self, _cluster: &str, resource: &Resource, current: &Observed, _deps: &Resolved) -> Result<Observed, BackendError> {
        let fault = self.enter(Call::Update, resource.id.as_str()).await?;
        let updated = {
            let mut world = self.world.lock().unwrap();
            let Some((_, found)) = world.resources.get_mut(&current.provider_id) else {
                return Err(BackendError::NotFound {
                    op: "update",
                    id: resource.id.to_string(),
                });
            };
            found.fingerprint = resource.fingerprint();
            found.clone()
        };
        after_effect(fault, Call::Update, resource.id.as_str())?;
        Ok(updated)
    }

    async fn delete(&self, cluster: &str, current: &Observed) -> Result<(), BackendError> {
        let fault = self.enter(Call::Delete, current.id.as_str()).await?;
        {
            let mut world = self.world.lock().unwrap();
            if world.resources.remove(&current.provider_id).is_none() {
                return Err(BackendError::NotFound {
                    op: "delete",
                    id: current.id.to_string(),
                });
            }
            world.nodes.remove(&format!("{cluster}/{}", current.id.name()));
        }
        after_effect(fault, Call::Delete, current.id.as_str())
    }

    async fn node_op(&self, cluster: &str, node: &Observed, op: NodeOp) -> Result<(), BackendError> {
        let fault = self.enter(Call::NodeOp, node.id.as_str()).await?;
        {
            let mut world = self.world.lock().unwrap();
            let key = format!("{cluster}/{}", node.id.name());
            let Some(state) = world.nodes.get_mut(&key) else {
                return Err(BackendError::NotFound {
                    op: "node operation",
                    id: node.id.to_string(),
                });
            };
            *state = match op {
                NodeOp::Stop | NodeOp::Kill => NodeState::Stopped,
                NodeOp::Start | NodeOp::Unpause => NodeState::Running,
                NodeOp::Pause => NodeState::Paused,
            };
        }
        after_effect(fault, Call::NodeOp, node.id.as_str())
    }
}
