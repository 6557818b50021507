//! Messages between the agent and the master. Mesos speaks libprocess between them; in the sim
//! they are JSON over HTTP, internal to the two programs:
//!
//! - agent → leading master: `POST /internal/agent/register` ([`RegisterAgent`] →
//!   [`AgentRegistered`]), `POST /internal/agent/ping` ([`AgentPing`]; 404 means "register
//!   again"), `POST /internal/agent/status` ([`StatusUpdate`]);
//! - master → agent: `POST /internal/launch` ([`LaunchTask`]), `POST /internal/kill` ([`KillTask`]),
//!   `POST /internal/acknowledge` ([`AcknowledgeUpdate`]: the framework acknowledged an update,
//!   so the agent may forget a finished task; until then it reports it to every new leader).
//!
//! A non-leading master answers the agent's calls with 307, so the agent looks in ZooKeeper again.

use serde::{Deserialize, Serialize};

use super::v1;

/// Path of [`RegisterAgent`] on the master.
pub const REGISTER_PATH: &str = "/internal/agent/register";
/// Path of [`AgentPing`] on the master.
pub const PING_PATH: &str = "/internal/agent/ping";
/// Path of [`StatusUpdate`] on the master.
pub const STATUS_PATH: &str = "/internal/agent/status";
/// Path of [`LaunchTask`] on the agent.
pub const LAUNCH_PATH: &str = "/internal/launch";
/// Path of [`KillTask`] on the agent.
pub const KILL_PATH: &str = "/internal/kill";
/// Path of [`AcknowledgeUpdate`] on the agent.
pub const ACKNOWLEDGE_PATH: &str = "/internal/acknowledge";

/// A task an agent runs (or ran), with its latest status; sent on re-registration so that a new
/// leader learns the tasks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentTask {
    pub framework_id: v1::FrameworkId,
    pub task: v1::TaskInfo,
    pub status: v1::TaskStatus,
}

/// An agent introduces itself to the leading master: first with no id, later (after a master
/// failover or a lost registration) with the id it was given and the tasks it runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterAgent {
    #[serde(default)]
    pub agent_id: Option<v1::AgentId>,
    pub hostname: String,
    pub ip: String,
    pub port: u16,
    pub resources: Vec<v1::Resource>,
    #[serde(default)]
    pub attributes: Vec<v1::Attribute>,
    #[serde(default)]
    pub tasks: Vec<AgentTask>,
}

/// The master's answer to [`RegisterAgent`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRegistered {
    pub agent_id: v1::AgentId,
    pub master_id: String,
    /// How often the master expects a ping.
    pub ping_interval_seconds: f64,
    /// Tasks the agent must kill: they belong to no framework any more, or were reported lost.
    #[serde(default)]
    pub kill: Vec<KillTask>,
}

/// "I am alive", sent every `ping_interval_seconds`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentPing {
    pub agent_id: v1::AgentId,
}

/// A task's status changed on the agent.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub agent_id: v1::AgentId,
    pub framework_id: v1::FrameworkId,
    pub status: v1::TaskStatus,
}

/// Run a task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchTask {
    pub framework_id: v1::FrameworkId,
    pub task: v1::TaskInfo,
    /// The framework declared `TASK_KILLING_STATE`: a kill is reported as TASK_KILLING first.
    #[serde(default)]
    pub task_killing_state: bool,
}

/// Kill a task (its whole process group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillTask {
    pub framework_id: v1::FrameworkId,
    pub task_id: v1::TaskId,
}

/// The framework acknowledged the status update with this uuid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcknowledgeUpdate {
    pub framework_id: v1::FrameworkId,
    pub task_id: v1::TaskId,
    pub uuid: String,
}
