//! What the agent writes down so that a restarted agent recovers (Mesos' `meta` directory of
//! the work dir): the agent id it was given, and each live task with its framework, TaskInfo
//! and sandbox. Task containers outlive the agent process; with these records a restarted
//! agent re-registers under the same id and takes them back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mesos::v1;

/// A live task as checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCheckpoint {
    pub framework_id: v1::FrameworkId,
    pub info: v1::TaskInfo,
    pub sandbox: PathBuf,
    /// Mesos' container id (the sandbox's run id): the Docker container is `mesos-<id>`.
    pub container_id: String,
    /// Whether the task runs as a Docker container (the others die with the agent).
    pub docker: bool,
}

/// Why a checkpoint could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing the checkpoint {path}")]
pub struct CheckpointError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn meta(work_dir: &Path) -> PathBuf {
    work_dir.join("meta")
}

fn agent_id_path(work_dir: &Path) -> PathBuf {
    meta(work_dir).join("slaves").join("latest")
}

fn tasks_dir(work_dir: &Path) -> PathBuf {
    meta(work_dir).join("tasks")
}

fn task_path(work_dir: &Path, task_id: &str) -> PathBuf {
    let file: String = task_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    tasks_dir(work_dir).join(format!("{file}.json"))
}

/// Writes `content` to `path` atomically (a temporary file renamed over it).
fn write_atomically(path: &Path, content: &[u8]) -> Result<(), CheckpointError> {
    let fail = |source| CheckpointError {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, content).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)
}

/// The agent id a previous run was given, if any.
pub fn agent_id(work_dir: &Path) -> Option<v1::AgentId> {
    let text = std::fs::read_to_string(agent_id_path(work_dir)).ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| v1::AgentId::new(id))
}

/// Records the agent id the master gave.
pub fn save_agent_id(work_dir: &Path, id: &v1::AgentId) -> Result<(), CheckpointError> {
    write_atomically(&agent_id_path(work_dir), id.value.as_bytes())
}

/// Records a task before it starts.
pub fn save_task(work_dir: &Path, task: &TaskCheckpoint) -> Result<(), CheckpointError> {
    let json = serde_json::to_vec(task).unwrap_or_default();
    write_atomically(&task_path(work_dir, &task.info.task_id.value), &json)
}

/// Forgets a task that ended.
pub fn remove_task(work_dir: &Path, task_id: &str) {
    let _ = std::fs::remove_file(task_path(work_dir, task_id));
}

/// Every checkpointed task; unreadable records are skipped (and logged).
pub fn tasks(work_dir: &Path) -> Vec<TaskCheckpoint> {
    let Ok(entries) = std::fs::read_dir(tasks_dir(work_dir)) else {
        return Vec::new();
    };
    let mut tasks = Vec::new();
    for path in entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        match std::fs::read(&path).map(|bytes| serde_json::from_slice::<TaskCheckpoint>(&bytes)) {
            Ok(Ok(task)) => tasks.push(task),
            Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable task checkpoint"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable task checkpoint"),
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_id_and_tasks_survive_a_restart_and_ended_tasks_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(agent_id(dir.path()), None);
        save_agent_id(dir.path(), &v1::AgentId::new("S7")).unwrap();
        assert_eq!(agent_id(dir.path()), Some(v1::AgentId::new("S7")));
        let task = TaskCheckpoint {
            framework_id: v1::Id::new("F"),
            info: v1::TaskInfo {
                task_id: v1::Id::new("web/1"),
                ..Default::default()
            },
            sandbox: dir.path().join("sandbox"),
            container_id: "c1".into(),
            docker: true,
        };
        save_task(dir.path(), &task).unwrap();
        assert_eq!(tasks(dir.path()), [task]);
        remove_task(dir.path(), "web/1");
        assert!(tasks(dir.path()).is_empty());
    }
}
