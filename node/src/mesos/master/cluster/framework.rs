//! A framework as the master tracks it: its stream, filters and tasks, and the offers it holds.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, FrameworkInfo, Id, TaskInfo, TaskState, TaskStatus};

/// How many finished tasks a framework keeps for `/master/state`.
const COMPLETED_TASKS_KEPT: usize = 1000;

/// A task as the master tracks it.
#[derive(Clone, Debug)]
pub struct Task {
    pub info: TaskInfo,
    pub framework_id: String,
    pub agent_id: String,
    pub resources: Resources,
    pub state: TaskState,
    pub statuses: Vec<TaskStatus>,
}

impl Task {
    pub(super) fn latest(&self) -> TaskStatus {
        self.statuses.last().cloned().unwrap_or_else(|| {
            let mut status = TaskStatus::new(self.info.task_id.clone(), self.state);
            status.agent_id = Some(Id::new(&self.agent_id));
            status
        })
    }
}

/// Resources a framework said it does not want from an agent, until a time.
#[derive(Clone, Debug)]
pub(super) struct Filter {
    pub(super) resources: Resources,
    pub(super) until: Instant,
}

/// The SUBSCRIBE connection of a framework.
#[derive(Debug)]
pub(super) struct Stream {
    pub(super) id: String,
    pub(super) sender: mpsc::Sender<Vec<u8>>,
}

/// A framework: subscribed, disconnected within its failover timeout, or only known from
/// tasks that agents reported after a master failover ("recovered").
#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub(super) stream: Option<Stream>,
    pub disconnected_at: Option<Instant>,
    pub recovered: bool,
    pub suppressed: bool,
    pub(super) filters: BTreeMap<String, Vec<Filter>>,
    pub tasks: BTreeMap<String, Task>,
    pub completed_tasks: VecDeque<Task>,
    pub(super) unacknowledged: BTreeMap<String, TaskStatus>,
    pub registered_time: f64,
    pub(super) last_heartbeat: Instant,
}

impl Framework {
    pub(super) fn new(id: String, info: FrameworkInfo, recovered: bool) -> Self {
        Self {
            id,
            info,
            stream: None,
            disconnected_at: None,
            recovered,
            suppressed: false,
            filters: BTreeMap::new(),
            tasks: BTreeMap::new(),
            completed_tasks: VecDeque::new(),
            unacknowledged: BTreeMap::new(),
            registered_time: v1::now_seconds(),
            last_heartbeat: Instant::now(),
        }
    }

    /// Whether its SUBSCRIBE stream is open.
    pub fn connected(&self) -> bool {
        self.stream.is_some()
    }

    pub(super) fn complete(&mut self, task_id: &str) {
        if let Some(task) = self.tasks.remove(task_id) {
            self.completed_tasks.push_back(task);
            while self.completed_tasks.len() > COMPLETED_TASKS_KEPT {
                self.completed_tasks.pop_front();
            }
        }
    }
}

/// An outstanding offer.
#[derive(Clone, Debug)]
pub struct OfferRecord {
    pub id: String,
    pub framework_id: String,
    pub agent_id: String,
    pub resources: Resources,
}
