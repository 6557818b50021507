//! Mesos v1 JSON wire types: the scheduler API's `Call` and `Event` and the messages they carry,
//! as `include/mesos/v1/mesos.proto` and `include/mesos/v1/scheduler/scheduler.proto` define them
//! under the protobuf JSON mapping (snake_case field names, enums as their names, `bytes` as
//! base64 strings, `{"value": ...}` for ids).
//!
//! Every type tolerates unknown fields, and enums have an `Unknown` variant, so that newer
//! clients are never rejected for what the sim does not use. Absent optional fields are omitted
//! on output.

use serde::{Deserialize, Serialize};

/// `{"value": "..."}`: the shape of every Mesos id (FrameworkID, OfferID, AgentID, TaskID, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Id {
    pub value: String,
}

impl Id {
    /// An id with the given value.
    pub fn new(value: impl Into<String>) -> Self {
        Self { value: value.into() }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)
    }
}

pub type FrameworkId = Id;
pub type OfferId = Id;
pub type AgentId = Id;
pub type TaskId = Id;
pub type ExecutorId = Id;

/// `Address`: where a process listens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: u32,
}

/// `URL`, as in `Offer.url`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Url {
    pub scheme: String,
    pub address: Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `MasterInfo`: what a master publishes about itself, in its `json.info_*` znode and in
/// SUBSCRIBED. `ip` is the IPv4 address as a 32-bit integer in network byte order, as Mesos
/// writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MasterInfo {
    pub id: String,
    pub ip: u32,
    pub port: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

impl MasterInfo {
    /// `ip` as a dotted quad (Mesos stores it in network byte order, i.e. the first octet in the
    /// lowest byte when read as a little-endian integer).
    pub fn ipv4(&self) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::from(self.ip.to_le_bytes())
    }

    /// Encodes a dotted quad the way Mesos stores `ip`.
    pub fn encode_ip(ip: std::net::Ipv4Addr) -> u32 {
        u32::from_le_bytes(ip.octets())
    }
}

/// `Value.Type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    #[default]
    Scalar,
    Ranges,
    Set,
    Text,
    #[serde(other)]
    Unknown,
}

/// `Value.Scalar`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scalar {
    pub value: f64,
}

/// `Value.Range`: inclusive on both ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Range {
    pub begin: u64,
    pub end: u64,
}

/// `Value.Ranges`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ranges {
    pub range: Vec<Range>,
}

/// `Value.Set`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Set {
    pub item: Vec<String>,
}

/// `Value.Text`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Text {
    pub value: String,
}

/// `Resource.AllocationInfo`: the role a resource is allocated to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AllocationInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `Resource`: a named scalar (cpus, mem, disk), ranges (ports) or set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    /// Deprecated in Mesos but still sent and read by older frameworks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

impl Resource {
    /// A scalar resource such as `cpus` or `mem`.
    pub fn scalar(name: &str, value: f64) -> Self {
        Self {
            name: name.to_owned(),
            kind: ValueType::Scalar,
            scalar: Some(Scalar { value }),
            ..Self::default()
        }
    }

    /// A ranges resource such as `ports`.
    pub fn ranges(name: &str, ranges: Vec<Range>) -> Self {
        Self {
            name: name.to_owned(),
            kind: ValueType::Ranges,
            ranges: Some(Ranges { range: ranges }),
            ..Self::default()
        }
    }
}

/// `Attribute`: a label of an agent, e.g. `zone:a`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

impl Attribute {
    /// A text attribute such as `zone:a`.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: ValueType::Text,
            text: Some(Text { value: value.to_owned() }),
            ..Self::default()
        }
    }

    /// A scalar attribute such as `rack:3`.
    pub fn scalar(name: &str, value: f64) -> Self {
        Self {
            name: name.to_owned(),
            kind: ValueType::Scalar,
            scalar: Some(Scalar { value }),
            ..Self::default()
        }
    }
}

/// `Label` and `Labels`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Label {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Labels {
    pub labels: Vec<Label>,
}

/// `FrameworkInfo.Capability`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capability {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `FrameworkInfo`: who a scheduler is, sent in SUBSCRIBE.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    /// Seconds the master keeps the framework's tasks after it disconnects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

impl FrameworkInfo {
    /// Whether the framework declared the `PARTITION_AWARE` capability (it then gets
    /// TASK_UNREACHABLE instead of TASK_LOST for tasks on removed agents).
    pub fn partition_aware(&self) -> bool {
        self.capabilities.iter().any(|c| c.kind == "PARTITION_AWARE")
    }

    /// Whether the framework declared the `TASK_KILLING_STATE` capability (it then gets
    /// TASK_KILLING before TASK_KILLED).
    pub fn task_killing_state(&self) -> bool {
        self.capabilities.iter().any(|c| c.kind == "TASK_KILLING_STATE")
    }

    /// The role its offers are allocated to: the first of `roles`, else `role`, else `*`.
    pub fn allocation_role(&self) -> String {
        self.roles
            .first()
            .cloned()
            .or_else(|| self.role.clone())
            .unwrap_or_else(|| "*".to_owned())
    }
}

/// `Environment.Variable` (only `VALUE` variables are used by the sim).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Variable {
    pub name: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `Environment`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Environment {
    pub variables: Vec<Variable>,
}

/// `CommandInfo.URI`: something the fetcher puts into the sandbox before the command runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandUri {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    /// Mesos extracts archives unless this is `false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

/// `CommandInfo`: what a task runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandInfo {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<CommandUri>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Defaults to `true`: `value` runs under `/bin/sh -c`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `TaskInfo`: a task a framework launches on an offer's agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    /// Base64 bytes handed to the executor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// Kept verbatim (container, health_check, discovery, ...): the sim does not act on them
    /// but shows them back in state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<serde_json::Value>,
    /// How a kill proceeds: the grace period between SIGTERM and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

impl TaskInfo {
    /// The typed `container`; `None` without one. Fails when it is not a `ContainerInfo`.
    pub fn container_info(&self) -> Result<Option<ContainerInfo>, serde_json::Error> {
        self.container.clone().map(serde_json::from_value).transpose()
    }

    /// The typed `health_check`; `None` without one. Fails when it is not a `HealthCheck`.
    pub fn health_check_info(&self) -> Result<Option<HealthCheck>, serde_json::Error> {
        self.health_check.clone().map(serde_json::from_value).transpose()
    }
}

/// `DurationInfo`: nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DurationInfo {
    pub nanoseconds: i64,
}

impl DurationInfo {
    /// The duration; negative ones are zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.nanoseconds).unwrap_or(0))
    }

    /// From whole or fractional seconds.
    pub fn from_secs_f64(seconds: f64) -> Self {
        Self {
            nanoseconds: (seconds.max(0.0) * 1e9) as i64,
        }
    }
}

/// `KillPolicy`: Marathon sets `grace_period` from `taskKillGracePeriodSeconds`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KillPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

/// `ContainerInfo.Type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerType {
    #[default]
    #[serde(rename = "MESOS")]
    Mesos,
    #[serde(rename = "DOCKER")]
    Docker,
    #[serde(other)]
    Unknown,
}

/// `ContainerInfo.DockerInfo.Network`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DockerNetwork {
    /// Mesos' default: the container shares the agent's network namespace.
    #[default]
    #[serde(rename = "HOST")]
    Host,
    #[serde(rename = "BRIDGE")]
    Bridge,
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "USER")]
    User,
    #[serde(other)]
    Unknown,
}

/// `ContainerInfo.DockerInfo.PortMapping`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerPortMapping {
    pub host_port: u32,
    pub container_port: u32,
    /// `tcp` (the default) or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `Parameter`: a `docker run` option as key and value (`--key=value`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

/// `ContainerInfo.DockerInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockerInfo {
    pub image: String,
    pub network: DockerNetwork,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<DockerPortMapping>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force_pull_image: bool,
}

/// `Volume.Mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeMode {
    #[default]
    #[serde(rename = "RW")]
    Rw,
    #[serde(rename = "RO")]
    Ro,
}

/// `Volume`: a host path (absolute, or relative to the sandbox) mounted at `container_path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub container_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    pub mode: VolumeMode,
    /// Image, secret and source volumes: kept so a task using them can be refused by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

/// `NetworkInfo` (only its name is read: a Docker USER network).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `ContainerInfo`: how a task is contained. `DOCKER` runs it as a Docker container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerInfo {
    #[serde(rename = "type")]
    pub kind: ContainerType,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
}

/// `HealthCheck.Type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthCheckType {
    #[default]
    #[serde(rename = "COMMAND")]
    Command,
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(other)]
    Unknown,
}

/// `HealthCheck`: a check the agent runs beside the task (Marathon's COMMAND checks and
/// MESOS_* checks). Seconds as Mesos' defaults give them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub kind: HealthCheckType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    pub delay_seconds: f64,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub consecutive_failures: u32,
    pub grace_period_seconds: f64,
}

impl Default for HealthCheck {
    /// Mesos' defaults (`mesos.proto`): delay 15 s, interval 10 s, timeout 20 s, 3 failures,
    /// grace 10 s.
    fn default() -> Self {
        Self {
            kind: HealthCheckType::Command,
            command: None,
            delay_seconds: 15.0,
            interval_seconds: 10.0,
            timeout_seconds: 20.0,
            consecutive_failures: 3,
            grace_period_seconds: 10.0,
        }
    }
}

/// `TaskState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    /// Whether no further update will follow (the task's resources are free again).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Finished | Self::Failed | Self::Killed | Self::Error | Self::Lost | Self::Dropped | Self::Gone | Self::GoneByOperator
        )
    }

    /// The protobuf enum name, e.g. `TASK_RUNNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "TASK_STAGING",
            Self::Starting => "TASK_STARTING",
            Self::Running => "TASK_RUNNING",
            Self::Killing => "TASK_KILLING",
            Self::Finished => "TASK_FINISHED",
            Self::Failed => "TASK_FAILED",
            Self::Killed => "TASK_KILLED",
            Self::Error => "TASK_ERROR",
            Self::Lost => "TASK_LOST",
            Self::Dropped => "TASK_DROPPED",
            Self::Unreachable => "TASK_UNREACHABLE",
            Self::Gone => "TASK_GONE",
            Self::GoneByOperator => "TASK_GONE_BY_OPERATOR",
            Self::Unknown => "TASK_UNKNOWN",
        }
    }
}

/// `TaskStatus`: one state of one task, as UPDATE events carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `SOURCE_MASTER`, `SOURCE_AGENT` or `SOURCE_EXECUTOR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// e.g. `REASON_RECONCILIATION`, `REASON_AGENT_REMOVED`, `REASON_COMMAND_EXECUTOR_FAILED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// Seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// Base64 bytes; present when the update must be acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

impl TaskStatus {
    /// A status with only the task, the state and the current time set.
    pub fn new(task_id: TaskId, state: TaskState) -> Self {
        Self {
            task_id,
            state,
            message: None,
            source: None,
            reason: None,
            agent_id: None,
            executor_id: None,
            timestamp: Some(now_seconds()),
            uuid: None,
            healthy: None,
            labels: None,
        }
    }
}

/// Seconds since the epoch, as Mesos timestamps are written.
pub fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `Offer`: resources of one agent offered to one framework.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    pub resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
}

/// `Filters`: how long declined or unused resources of an agent stay away from the framework.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filters {
    /// Seconds; Mesos defaults to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Scheduler API: Call
// ---------------------------------------------------------------------------------------------

/// `Call.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallType {
    Subscribe,
    Teardown,
    Accept,
    Decline,
    AcceptInverseOffers,
    DeclineInverseOffers,
    Revive,
    Kill,
    Shutdown,
    Acknowledge,
    AcknowledgeOperationStatus,
    Reconcile,
    ReconcileOperations,
    Message,
    Request,
    Suppress,
    UpdateFramework,
    #[serde(other)]
    Unknown,
}

/// `Call.Subscribe`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
}

/// `Offer.Operation.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationType {
    Launch,
    LaunchGroup,
    Reserve,
    Unreserve,
    Create,
    Destroy,
    #[serde(other)]
    Unknown,
}

/// `Offer.Operation.Launch`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Launch {
    pub task_infos: Vec<TaskInfo>,
}

/// `Offer.Operation`: what to do with accepted offers (the sim performs LAUNCH).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    #[serde(rename = "type")]
    pub kind: OperationType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
}

/// `Call.Accept`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Accept {
    pub offer_ids: Vec<OfferId>,
    pub operations: Vec<Operation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Decline`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Decline {
    pub offer_ids: Vec<OfferId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Kill`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// `Call.Acknowledge`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    /// The base64 `uuid` of the acknowledged `TaskStatus`.
    pub uuid: String,
}

/// `Call.Reconcile.Task`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// `Call.Reconcile`: empty `tasks` asks for every task (implicit reconciliation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reconcile {
    pub tasks: Vec<ReconcileTask>,
}

/// `Call.Revive` and `Call.Suppress`: empty `roles` means all the framework's roles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Roles {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `Call.Message`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: String,
}

/// `Call`: what a scheduler POSTs to `/api/v1/scheduler`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(rename = "type")]
    pub kind: CallType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

impl Call {
    /// A call of the given type for the given framework, with no body set.
    pub fn new(kind: CallType, framework_id: Option<FrameworkId>) -> Self {
        Self {
            framework_id,
            kind,
            subscribe: None,
            accept: None,
            decline: None,
            kill: None,
            acknowledge: None,
            reconcile: None,
            revive: None,
            suppress: None,
            message: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scheduler API: Event
// ---------------------------------------------------------------------------------------------

/// `Event.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Subscribed,
    Offers,
    InverseOffers,
    Rescind,
    RescindInverseOffer,
    Update,
    UpdateOperationStatus,
    Message,
    Failure,
    Error,
    Heartbeat,
    #[serde(other)]
    Unknown,
}

/// `Event.Subscribed`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

/// `Event.Offers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offers {
    pub offers: Vec<Offer>,
}

/// `Event.Rescind`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rescind {
    pub offer_id: OfferId,
}

/// `Event.Update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// `Event.Failure`: an agent (or executor) is gone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// `Event.Error`: the master dropped the framework.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorEvent {
    pub message: String,
}

/// `Event`: one record of the SUBSCRIBE stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
}

impl Event {
    fn of(kind: EventType) -> Self {
        Self {
            kind,
            subscribed: None,
            offers: None,
            rescind: None,
            update: None,
            failure: None,
            error: None,
        }
    }

    /// SUBSCRIBED.
    pub fn subscribed(subscribed: Subscribed) -> Self {
        Self {
            subscribed: Some(subscribed),
            ..Self::of(EventType::Subscribed)
        }
    }

    /// OFFERS.
    pub fn offers(offers: Vec<Offer>) -> Self {
        Self {
            offers: Some(Offers { offers }),
            ..Self::of(EventType::Offers)
        }
    }

    /// RESCIND of one offer.
    pub fn rescind(offer_id: OfferId) -> Self {
        Self {
            rescind: Some(Rescind { offer_id }),
            ..Self::of(EventType::Rescind)
        }
    }

    /// UPDATE carrying a task status.
    pub fn update(status: TaskStatus) -> Self {
        Self {
            update: Some(Update { status }),
            ..Self::of(EventType::Update)
        }
    }

    /// FAILURE of an agent.
    pub fn agent_failure(agent_id: AgentId) -> Self {
        Self {
            failure: Some(Failure {
                agent_id: Some(agent_id),
                ..Failure::default()
            }),
            ..Self::of(EventType::Failure)
        }
    }

    /// ERROR with a message.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            error: Some(ErrorEvent { message: message.into() }),
            ..Self::of(EventType::Error)
        }
    }

    /// HEARTBEAT.
    pub fn heartbeat() -> Self {
        Self::of(EventType::Heartbeat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Shapes below follow docs/scheduler-http-api.md of apache/mesos.

    #[test]
    fn subscribe_call_from_the_docs_parses() {
        let body = json!({
            "type": "SUBSCRIBE",
            "subscribe": {
                "framework_info": {
                    "user": "foo",
                    "name": "Example HTTP Framework",
                    "roles": ["test"],
                    "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
                    "failover_timeout": 604800.0
                }
            },
            "some_future_field": 1
        });
        let call: Call = serde_json::from_value(body).unwrap();
        assert_eq!(call.kind, CallType::Subscribe);
        let info = call.subscribe.unwrap().framework_info;
        assert_eq!(info.name, "Example HTTP Framework");
        assert!(info.partition_aware());
        assert_eq!(info.allocation_role(), "test");
        assert_eq!(info.failover_timeout, Some(604800.0));
    }

    #[test]
    fn accept_call_with_launch_round_trips() {
        let body = json!({
            "framework_id": {"value": "12220-3440-12532-2345"},
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [{"value": "12220-3440-12532-O12"}],
                "operations": [{
                    "type": "LAUNCH",
                    "launch": {"task_infos": [{
                        "name": "web",
                        "task_id": {"value": "web.1"},
                        "agent_id": {"value": "12220-3440-12532-S1233"},
                        "resources": [
                            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                            {"name": "ports", "type": "RANGES",
                             "ranges": {"range": [{"begin": 31000, "end": 31001}]}}
                        ],
                        "command": {
                            "value": "python3 -m http.server $PORT0",
                            "uris": [{"value": "http://x/app.tgz", "extract": true}],
                            "environment": {"variables": [{"name": "A", "value": "1"}]}
                        }
                    }]}
                }],
                "filters": {"refuse_seconds": 5.0}
            }
        });
        let call: Call = serde_json::from_value(body.clone()).unwrap();
        let accept = call.accept.as_ref().unwrap();
        let task = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
        assert_eq!(task.resources[1].ranges.as_ref().unwrap().range[0].end, 31001);
        assert_eq!(task.command.as_ref().unwrap().environment.as_ref().unwrap().variables[0].name, "A");
        let again: Call = serde_json::from_value(serde_json::to_value(&call).unwrap()).unwrap();
        assert_eq!(again, call);
    }

    #[test]
    fn unknown_call_type_is_tolerated() {
        let call: Call = serde_json::from_value(json!({"type": "SOMETHING_NEW"})).unwrap();
        assert_eq!(call.kind, CallType::Unknown);
    }

    #[test]
    fn events_serialize_as_documented() {
        let subscribed = Event::subscribed(Subscribed {
            framework_id: Id::new("f1"),
            heartbeat_interval_seconds: Some(15.0),
            master_info: None,
        });
        assert_eq!(
            serde_json::to_value(&subscribed).unwrap(),
            json!({"type": "SUBSCRIBED",
                   "subscribed": {"framework_id": {"value": "f1"}, "heartbeat_interval_seconds": 15.0}})
        );
        assert_eq!(serde_json::to_value(Event::heartbeat()).unwrap(), json!({"type": "HEARTBEAT"}));
        let mut status = TaskStatus::new(Id::new("t1"), TaskState::Running);
        status.timestamp = None;
        status.uuid = Some("AAEC".into());
        assert_eq!(
            serde_json::to_value(Event::update(status)).unwrap(),
            json!({"type": "UPDATE", "update": {"status": {
                "task_id": {"value": "t1"}, "state": "TASK_RUNNING", "uuid": "AAEC"}}})
        );
        assert_eq!(
            serde_json::to_value(Event::agent_failure(Id::new("a1"))).unwrap(),
            json!({"type": "FAILURE", "failure": {"agent_id": {"value": "a1"}}})
        );
    }

    #[test]
    fn offer_event_parses_with_attributes_and_unknown_fields() {
        let body = json!({"type": "OFFERS", "offers": {"offers": [{
            "id": {"value": "o1"}, "framework_id": {"value": "f"}, "agent_id": {"value": "a"},
            "hostname": "h", "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0},
            "role": "*", "allocation_info": {"role": "*"}}],
            "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": "a"}}],
            "domain": {"fault_domain": {}}
        }]}});
        let event: Event = serde_json::from_value(body).unwrap();
        let offer = &event.offers.unwrap().offers[0];
        assert_eq!(offer.attributes[0], Attribute::text("zone", "a"));
        assert_eq!(offer.resources[0].scalar.unwrap().value, 128.0);
    }

    #[test]
    fn master_info_ip_is_network_order() {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, 1);
        let info = MasterInfo {
            ip: MasterInfo::encode_ip(ip),
            ..MasterInfo::default()
        };
        // 127.0.0.1 in network byte order read as a little-endian u32, as Mesos writes it.
        assert_eq!(info.ip, 16777343);
        assert_eq!(info.ipv4(), ip);
    }

    #[test]
    fn terminal_states() {
        assert!(TaskState::Finished.is_terminal());
        assert!(TaskState::Lost.is_terminal());
        assert!(!TaskState::Running.is_terminal());
        assert!(!TaskState::Unreachable.is_terminal());
        let state: TaskState = serde_json::from_value(json!("TASK_KILLED")).unwrap();
        assert_eq!(state.as_str(), "TASK_KILLED");
    }
}
