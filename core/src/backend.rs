//! The boundary between the engine and the real world.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::resource::{Fingerprint, Resource, ResourceId, ResourceKind};

/// A resource as a backend found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub id: ResourceId,
    /// The backend's own id: container id, `vpc-0abc...`, hosted zone id.
    pub provider_id: String,
    /// The fingerprint of the desired resource it was made from (from its label or tag).
    pub fingerprint: Fingerprint,
    /// Outputs dependents or users need: `address`, `dns_name`, `public_ip`, `state`...
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl Observed {
    pub fn kind(&self) -> ResourceKind {
        self.id.kind()
    }
}

/// Observed dependencies of a resource being created or updated, by id.
pub type Resolved = BTreeMap<ResourceId, Observed>;

/// What chaos can do to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeOp {
    /// Graceful stop; the node keeps its disk and can be started again.
    Stop,
    Start,
    /// Immediate power-off, like pulling the plug.
    Kill,
    /// Freeze every process (the node stops answering but keeps its connections).
    Pause,
    Unpause,
}

impl NodeOp {
    /// The operation's name in messages and JSON: `stop`, `start`, `kill`, `pause`, `unpause`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOp::Stop => "stop",
            NodeOp::Start => "start",
            NodeOp::Kill => "kill",
            NodeOp::Pause => "pause",
            NodeOp::Unpause => "unpause",
        }
    }
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Worth retrying: throttling, a timeout, eventual consistency.
    #[error("{op} {id}: transient failure: {message}")]
    Transient { op: &'static str, id: String, message: String },
    /// The resource is not there (already deleted, or never made).
    #[error("{op} {id}: not found")]
    NotFound { op: &'static str, id: String },
    #[error("{op} {id}: {message}")]
    Failed {
        op: &'static str,
        id: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl BackendError {
    pub fn failed(op: &'static str, id: impl std::fmt::Display, message: impl Into<String>) -> BackendError {
        BackendError::Failed {
            op,
            id: id.to_string(),
            message: message.into(),
            source: None,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, BackendError::Transient { .. })
    }
}

/// A place clusters are built: Docker, AWS, or memory. Every resource a backend creates
/// carries the cluster name, the resource id and the fingerprint (labels/tags), so that
/// [`Backend::list`] can find the cluster again with no state file.
///
/// `create` must be atomic with respect to that marking (tag on create), so an interrupted
/// apply never leaves an unmarked resource behind and re-running never duplicates.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Short name used in state file names and messages: `sim`, `aws`, `memory`.
    fn name(&self) -> &'static str;

    /// Every resource of `cluster`, found by its labels/tags.
    async fn list(&self, cluster: &str) -> Result<Vec<Observed>, BackendError>;

    /// Creates `resource`; `deps` holds its observed dependencies.
    async fn create(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError>;

    /// Brings `current` to `resource` in place (only the mutable part changed).
    async fn update(&self, cluster: &str, resource: &Resource, current: &Observed, deps: &Resolved) -> Result<Observed, BackendError>;

    /// Deletes `current`, waiting until dependents may be deleted. Succeeds if already gone.
    async fn delete(&self, cluster: &str, current: &Observed) -> Result<(), BackendError>;

    /// Applies a chaos operation to a node.
    async fn node_op(&self, cluster: &str, node: &Observed, op: NodeOp) -> Result<(), BackendError>;
}
