//! The state file: the last known world of one cluster on one backend.
//!
//! Written atomically (temp file, fsync, rename, fsync of the folder) after every finished
//! step, so a `kill -9` at any point leaves either the previous or the next state, never a torn
//! file. It is a record, not the source of truth: apply re-reads the backend first, and
//! `refresh` rebuilds the file from the backend's labels/tags when it is lost.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Observed;
use crate::resource::ResourceId;

const STATE_VERSION: u32 = 1;

/// What `paas` last knew of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub cluster: String,
    pub backend: String,
    /// Incremented on every write: a reader can tell that the file moved on.
    pub serial: u64,
    /// Seconds since the Unix epoch of the last write.
    pub updated_at: u64,
    pub resources: BTreeMap<ResourceId, Observed>,
}

impl State {
    pub fn new(cluster: &str, backend: &str) -> State {
        State {
            version: STATE_VERSION,
            cluster: cluster.into(),
            backend: backend.into(),
            serial: 0,
            updated_at: 0,
            resources: BTreeMap::new(),
        }
    }

    /// Replaces the resources with what a backend listed.
    pub fn replace_all(&mut self, observed: &[Observed]) {
        self.resources = observed.iter().map(|o| (o.id.clone(), o.clone())).collect();
    }
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {op} state file {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid (delete it and run `paas refresh` to rebuild it from the backend)")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("state file {path} is of version {found}; this paas reads version {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// Where one cluster's state lives: `<root>/<cluster>/<backend>.state.json`.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    cluster: String,
    backend: String,
}

impl StateStore {
    /// `root` is usually `.paas` in the working directory.
    pub fn new(root: &Path, cluster: &str, backend: &str) -> StateStore {
        StateStore {
            dir: root.join(cluster),
            cluster: cluster.into(),
            backend: backend.into(),
        }
    }

    /// The cluster's folder (state, lock, generated keys).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.state.json", self.backend))
    }

    /// Reads the state; a missing file is an empty state.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::new(&self.cluster, &self.backend)),
            Err(source) => return Err(StateError::Io { op: "read", path, source }),
        };
        let state: State = serde_json::from_str(&text).map_err(|source| StateError::Corrupt {
            path: path.clone(),
            source,
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                path,
                found: state.version,
            });
        }
        Ok(state)
    }

    /// Writes `state` atomically and durably, incrementing its serial.
    pub fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        state.updated_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = self.path();
        let io = |op, source| StateError::Io {
            op,
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create the folder of", e))?;
        let tmp = self.dir.join(format!(".{}.state.json.tmp", self.backend));
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("write", e))?;
        let text = serde_json::to_vec_pretty(state).expect("state serializes");
        file.write_all(&text).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("sync", e))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(|e| io("replace", e))?;
        // The rename is durable only once the folder is synced.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync the folder of", e))?;
        Ok(())
    }
}
