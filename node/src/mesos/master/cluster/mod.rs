//! The leading master's view of the cluster: agents, frameworks, tasks and offers, and every
//! rule the scheduler API applies to them. Synchronous and free of I/O: callers hold it under a
//! lock, and what must happen outside (launching on an agent, writing the registry) is queued as
//! [`Effect`]s.
//!
//! One file per concern: what is tracked ([`agent`], [`framework`]), the accounting of
//! resources, the events sent to frameworks, the scheduler calls, the agents' calls, the
//! passing of time, and the allocation of offers.

mod accounting;
mod agent;
mod agent_calls;
mod allocation;
mod events;
mod framework;
mod scheduler_calls;
#[cfg(test)]
mod testing;
mod tick;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::mesos::protocol::{AcknowledgeUpdate, KillTask};
use crate::mesos::v1::{self, TaskInfo, TaskState};

pub use self::agent::{Agent, AgentAddress};
pub use self::events::FRAMEWORK_EVENTS_QUEUED;
pub use self::framework::{Framework, OfferRecord, Task};

/// Timeouts and intervals of the master, from its flags.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub master_info: v1::MasterInfo,
    pub agent_ping_timeout: Duration,
    pub max_agent_ping_timeouts: u32,
    pub agent_reregister_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub allocation_interval: Duration,
}

/// Work the caller must do outside the lock.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Ask an agent to run a task; report [`Cluster::launch_failed`] when it cannot be reached.
    Launch {
        agent: AgentAddress,
        agent_id: String,
        framework_id: v1::FrameworkId,
        task: Box<TaskInfo>,
        task_killing_state: bool,
    },
    /// Tell an agent that the framework acknowledged an update.
    Acknowledge { agent: AgentAddress, ack: AcknowledgeUpdate },
    /// Ask an agent to kill a task.
    Kill { agent: AgentAddress, kill: KillTask },
    /// Record an agent in the registry (ZooKeeper), so that the next leader knows it.
    RegistryAdd { agent_id: String, data: Vec<u8> },
    /// Forget an agent in the registry.
    RegistryRemove { agent_id: String },
}

/// A scheduler call the master refuses, with the HTTP status and the message Mesos gives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub status: u16,
    pub message: String,
}

impl CallError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            message: message.into(),
        }
    }
}

/// The leading master's state.
#[derive(Debug)]
pub struct Cluster {
    pub config: ClusterConfig,
    pub agents: BTreeMap<String, Agent>,
    /// Agents the registry knew when this master was elected that have not re-registered yet,
    /// with the time they must have by.
    pub recovered_agents: BTreeMap<String, Instant>,
    pub frameworks: BTreeMap<String, Framework>,
    pub completed_frameworks: VecDeque<Framework>,
    pub offers: BTreeMap<String, OfferRecord>,
    pub elected_time: f64,
    /// What happened since this master was elected, for `/metrics/snapshot`.
    pub counters: Counters,
    next_id: u64,
    last_allocation: Instant,
    allocate_soon: bool,
    effects: Vec<Effect>,
}

/// Counts since election, as Mesos' `master/*` counters keep them.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Tasks that reached each terminal state (`TASK_FINISHED`, `TASK_LOST`, ...).
    pub terminal_tasks: BTreeMap<&'static str, u64>,
    pub agent_registrations: u64,
    pub agent_reregistrations: u64,
    pub agent_removals: u64,
    /// Rounds of the allocator (`allocator/mesos/allocation_runs`).
    pub allocation_runs: u64,
}

impl Counters {
    fn task_ended(&mut self, state: TaskState) {
        *self.terminal_tasks.entry(state.as_str()).or_default() += 1;
    }
}

fn new_uuid_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}

impl Cluster {
    /// The state of a master just elected, knowing from the registry the agents in
    /// `registry_agents` (they have `agent_reregister_timeout` to come back).
    pub fn new(config: ClusterConfig, registry_agents: Vec<String>) -> Self {
        let deadline = Instant::now() + config.agent_reregister_timeout;
        Self {
            config,
            agents: BTreeMap::new(),
            recovered_agents: registry_agents.into_iter().map(|id| (id, deadline)).collect(),
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            offers: BTreeMap::new(),
            elected_time: v1::now_seconds(),
            counters: Counters::default(),
            next_id: 0,
            last_allocation: Instant::now(),
            allocate_soon: false,
            effects: Vec::new(),
        }
    }

    /// Takes the effects queued so far.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn next(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{}-{kind}{}", self.config.master_info.id, self.next_id)
    }
}
