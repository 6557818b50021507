//! Faults in force, recorded in `<state dir>/<cluster>/chaos-active.json` before they are
//! applied and removed once healed, so that `paas chaos heal` can undo whatever a killed
//! or interrupted run left behind.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fault::{Action, Effect};
use crate::platform::{NodeState, Platform, PlatformError};

/// One fault in force and how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub id: u64,
    pub description: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// When a timed fault is due to heal (seconds since the epoch).
    pub heal_at: Option<u64>,
    pub heals: Vec<Effect>,
}

/// The record file of one cluster.
#[derive(Debug, Clone)]
pub struct ActiveStore {
    path: PathBuf,
}

/// Why the record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("reading the active faults in {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a chaos record (delete it after healing by hand): {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("writing the active faults to {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ActiveStore {
    pub fn new(state_dir: &Path, cluster: &str) -> ActiveStore {
        ActiveStore {
            path: state_dir.join(cluster).join("chaos-active.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Vec<ActiveFault>, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StoreError::Read {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Records a fault about to be applied; returns its id.
    pub fn add(&self, description: &str, heal_at: Option<u64>, heals: Vec<Effect>) -> Result<u64, StoreError> {
        let mut faults = self.load()?;
        let id = faults.iter().map(|f| f.id).max().unwrap_or(0) + 1;
        faults.push(ActiveFault {
            id,
            description: description.to_string(),
            started: now_unix(),
            heal_at,
            heals,
        });
        self.save(&faults)?;
        Ok(id)
    }

    pub fn remove(&self, id: u64) -> Result<(), StoreError> {
        let mut faults = self.load()?;
        faults.retain(|f| f.id != id);
        self.save(&faults)
    }

    /// Writes atomically: a crash leaves the old record or the new one, never half of one.
    fn save(&self, faults: &[ActiveFault]) -> Result<(), StoreError> {
        let write_err = |source| StoreError::Write {
            path: self.path.clone(),
            source,
        };
        if faults.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_err(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(faults).expect("active faults serialize");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, &self.path).map_err(write_err)
    }
}

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Applies one effect.
pub async fn apply(platform: &dyn Platform, effect: &Effect) -> Result<(), PlatformError> {
    match &effect.action {
        Action::Node { op } => platform.node_op(&effect.node, *op).await,
        Action::Net { rule } => platform.net_add(&effect.node, rule).await,
        Action::NetClear => platform.net_clear(&effect.node).await,
    }
}

/// What `heal` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealReport {
    /// Effects applied, in words.
    pub done: Vec<String>,
    /// Effects that failed, with why; their records are kept.
    pub failed: Vec<String>,
}

/// Undoes every recorded fault, then sweeps: thaws paused nodes, starts stopped ones and
/// clears network rules everywhere, in case a record was lost. Records whose heals all
/// succeeded are removed.
pub async fn heal_all(platform: &dyn Platform, store: &ActiveStore) -> Result<HealReport, StoreError> {
    let mut report = HealReport::default();
    for fault in store.load()? {
        let mut ok = true;
        for heal in &fault.heals {
            match apply(platform, heal).await {
                Ok(()) => report.done.push(heal.describe()),
                Err(e) => {
                    ok = false;
                    report.failed.push(format!("{}: {e}", heal.describe()));
                }
            }
        }
        if ok {
            store.remove(fault.id)?;
        }
    }
    match platform.nodes().await {
        Ok(nodes) => {
            for node in nodes {
                let effect = match node.state {
                    NodeState::Paused => Some(paas_core::NodeOp::Unpause),
                    NodeState::Stopped => Some(paas_core::NodeOp::Start),
                    NodeState::Running => None,
                };
                if let Some(op) = effect {
                    let effect = Effect {
                        node: node.name.clone(),
                        action: Action::Node { op },
                    };
                    match apply(platform, &effect).await {
                        Ok(()) => report.done.push(effect.describe()),
                        Err(e) => report.failed.push(format!("{}: {e}", effect.describe())),
                    }
                }
                // A frozen or stopped node's rules are cleared once it runs again.
                if let Err(e) = platform.net_clear(&node.name).await {
                    report.failed.push(format!("clear network faults of {}: {e}", node.name));
                }
            }
        }
        Err(e) => report.failed.push(format!("listing nodes: {e}")),
    }
    report.done.dedup();
    Ok(report)
}
