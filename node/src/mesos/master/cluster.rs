//! The leading master's view of the cluster: agents, frameworks, tasks and offers, and every
//! rule the scheduler API applies to them. Synchronous and free of I/O: callers hold it under a
//! lock, and what must happen outside (launching on an agent, writing the registry) is queued as
//! [`Effect`]s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::mpsc;

use crate::mesos::protocol::{AcknowledgeUpdate, AgentRegistered, AgentTask, KillTask, RegisterAgent};
use crate::mesos::recordio;
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, Accept, Event, FrameworkInfo, Id, OperationType, TaskInfo, TaskState, TaskStatus};

/// Mesos' default for `Filters.refuse_seconds`.
const DEFAULT_REFUSE_SECONDS: f64 = 5.0;
/// How many finished tasks a framework keeps for `/master/state`.
const COMPLETED_TASKS_KEPT: usize = 1000;
/// How many torn-down frameworks the master keeps for `/master/state`.
const COMPLETED_FRAMEWORKS_KEPT: usize = 50;

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

/// Where the master reaches an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentAddress {
    pub ip: String,
    pub port: u16,
}

impl AgentAddress {
    /// `http://ip:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }
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

/// A registered agent.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub address: AgentAddress,
    pub total: Resources,
    pub attributes: Vec<v1::Attribute>,
    pub registered_time: f64,
    pub last_ping: Instant,
}

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
    fn latest(&self) -> TaskStatus {
        self.statuses.last().cloned().unwrap_or_else(|| {
            let mut status = TaskStatus::new(self.info.task_id.clone(), self.state);
            status.agent_id = Some(Id::new(&self.agent_id));
            status
        })
    }
}

/// Resources a framework said it does not want from an agent, until a time.
#[derive(Clone, Debug)]
struct Filter {
    resources: Resources,
    until: Instant,
}

/// The SUBSCRIBE connection of a framework.
#[derive(Debug)]
struct Stream {
    id: String,
    sender: mpsc::UnboundedSender<Vec<u8>>,
}

/// A framework: subscribed, disconnected within its failover timeout, or only known from
/// tasks that agents reported after a master failover ("recovered").
#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    stream: Option<Stream>,
    pub disconnected_at: Option<Instant>,
    pub recovered: bool,
    pub suppressed: bool,
    filters: BTreeMap<String, Vec<Filter>>,
    pub tasks: BTreeMap<String, Task>,
    pub completed_tasks: VecDeque<Task>,
    unacknowledged: BTreeMap<String, TaskStatus>,
    pub registered_time: f64,
    last_heartbeat: Instant,
}

impl Framework {
    fn new(id: String, info: FrameworkInfo, recovered: bool) -> Self {
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

    fn complete(&mut self, task_id: &str) {
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

    // -----------------------------------------------------------------------------------------
    // Accounting
    // -----------------------------------------------------------------------------------------

    /// Resources of non-terminal tasks on an agent.
    pub fn used_on(&self, agent_id: &str) -> Resources {
        self.frameworks
            .values()
            .flat_map(|f| f.tasks.values())
            .filter(|t| t.agent_id == agent_id && !t.state.is_terminal())
            .map(|t| t.resources.clone())
            .sum()
    }

    /// Resources of outstanding offers on an agent.
    pub fn offered_on(&self, agent_id: &str) -> Resources {
        self.offers
            .values()
            .filter(|o| o.agent_id == agent_id)
            .map(|o| o.resources.clone())
            .sum()
    }

    /// What may still be offered on an agent: total minus used minus offered.
    pub fn available_on(&self, agent_id: &str) -> Resources {
        match self.agents.get(agent_id) {
            Some(agent) => agent.total.minus(&self.used_on(agent_id)).minus(&self.offered_on(agent_id)),
            None => Resources::default(),
        }
    }

    /// Resources of a framework's non-terminal tasks.
    pub fn used_by(&self, framework_id: &str) -> Resources {
        self.frameworks
            .get(framework_id)
            .map(|f| {
                f.tasks
                    .values()
                    .filter(|t| !t.state.is_terminal())
                    .map(|t| t.resources.clone())
                    .sum()
            })
            .unwrap_or_default()
    }

    /// Resources of a framework's outstanding offers.
    pub fn offered_to(&self, framework_id: &str) -> Resources {
        self.offers
            .values()
            .filter(|o| o.framework_id == framework_id)
            .map(|o| o.resources.clone())
            .sum()
    }

    // -----------------------------------------------------------------------------------------
    // Events to frameworks
    // -----------------------------------------------------------------------------------------

    /// Sends an event on a framework's stream; a closed stream marks the framework disconnected.
    fn send(&mut self, framework_id: &str, event: &Event) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(stream) = &framework.stream else {
            return;
        };
        if stream.sender.send(recordio::encode(event)).is_err() {
            self.disconnect(framework_id);
        }
    }

    /// Sends an UPDATE; when it carries a uuid it stays pending until acknowledged and is sent
    /// again when the framework subscribes again.
    fn send_update(&mut self, framework_id: &str, status: TaskStatus) {
        if let Some(framework) = self.frameworks.get_mut(framework_id)
            && status.uuid.is_some()
        {
            framework.unacknowledged.insert(status.task_id.value.clone(), status.clone());
        }
        self.send(framework_id, &Event::update(status));
    }

    /// Marks a framework whose stream closed as disconnected: its offers are withdrawn and its
    /// failover timeout starts.
    pub fn disconnect(&mut self, framework_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework.stream.take().is_some() {
            tracing::info!(framework = framework_id, "framework disconnected");
            framework.disconnected_at = Some(Instant::now());
        }
        self.offers.retain(|_, o| o.framework_id != framework_id);
    }

    // -----------------------------------------------------------------------------------------
    // Scheduler calls
    // -----------------------------------------------------------------------------------------

    /// Checks that a non-SUBSCRIBE call comes from the framework's current stream.
    pub fn check_stream(&self, framework_id: &str, stream_id: Option<&str>) -> Result<(), CallError> {
        let framework = self
            .frameworks
            .get(framework_id)
            .ok_or_else(|| CallError::forbidden(format!("Framework '{framework_id}' is not subscribed")))?;
        let stream = framework
            .stream
            .as_ref()
            .ok_or_else(|| CallError::forbidden(format!("Framework '{framework_id}' is not subscribed")))?;
        let stream_id =
            stream_id.ok_or_else(|| CallError::bad_request("All non-subscribe calls should include the 'Mesos-Stream-Id' header"))?;
        if stream_id != stream.id {
            return Err(CallError::bad_request(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}"
            )));
        }
        Ok(())
    }

    /// SUBSCRIBE: registers a new framework or re-subscribes a known (or recovered) one, sends
    /// SUBSCRIBED on the new stream, then any unacknowledged updates. Returns the framework id
    /// and the stream id. An older stream of the same framework is closed.
    pub fn subscribe(&mut self, mut info: FrameworkInfo, sender: mpsc::UnboundedSender<Vec<u8>>) -> (String, String) {
        let framework_id = match &info.id {
            Some(id) if !id.value.is_empty() => id.value.clone(),
            _ => self.next(""),
        };
        info.id = Some(Id::new(&framework_id));
        let stream_id = uuid::Uuid::new_v4().to_string();
        // A re-subscription replaces the old connection; its offers go with it.
        self.offers.retain(|_, o| o.framework_id != framework_id);
        let framework = self
            .frameworks
            .entry(framework_id.clone())
            .or_insert_with(|| Framework::new(framework_id.clone(), info.clone(), false));
        if let Some(old) = framework.stream.take() {
            // As Mesos does, the previous connection of a failed-over scheduler is told why it ends.
            let _ = old.sender.send(recordio::encode(&Event::error("Framework failed over")));
        }
        framework.info = info;
        framework.recovered = false;
        framework.disconnected_at = None;
        framework.stream = Some(Stream {
            id: stream_id.clone(),
            sender,
        });
        framework.last_heartbeat = Instant::now();
        let pending: Vec<TaskStatus> = framework.unacknowledged.values().cloned().collect();
        tracing::info!(framework = %framework_id, name = %framework.info.name, "framework subscribed");
        let subscribed = Event::subscribed(v1::Subscribed {
            framework_id: Id::new(&framework_id),
            heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
            master_info: Some(self.config.master_info.clone()),
        });
        self.send(&framework_id, &subscribed);
        for status in pending {
            self.send(&framework_id, &Event::update(status));
        }
        self.allocate_soon = true;
        (framework_id, stream_id)
    }

    /// Whether a framework with this id was torn down (it may not subscribe again).
    pub fn is_removed(&self, framework_id: &str) -> bool {
        !self.frameworks.contains_key(framework_id) && self.completed_frameworks.iter().any(|f| f.id == framework_id)
    }

    /// TEARDOWN: kills every task of the framework and forgets it.
    pub fn teardown(&mut self, framework_id: &str) {
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        tracing::info!(framework = framework_id, "tearing down framework");
        for task in framework.tasks.values() {
            if let Some(agent) = self.agents.get(&task.agent_id) {
                self.effects.push(Effect::Kill {
                    agent: agent.address.clone(),
                    kill: KillTask {
                        framework_id: Id::new(framework_id),
                        task_id: task.info.task_id.clone(),
                    },
                });
            }
        }
        let ids: Vec<String> = framework.tasks.keys().cloned().collect();
        for id in ids {
            framework.complete(&id);
        }
        framework.stream = None;
        self.offers.retain(|_, o| o.framework_id != framework_id);
        self.completed_frameworks.push_back(framework);
        while self.completed_frameworks.len() > COMPLETED_FRAMEWORKS_KEPT {
            self.completed_frameworks.pop_front();
        }
        self.allocate_soon = true;
    }

    fn add_filter(&mut self, framework_id: &str, agent_id: &str, resources: Resources, seconds: f64) {
        if seconds <= 0.0 || resources.is_empty() {
            return;
        }
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let until = Instant::now() + Duration::from_secs_f64(seconds.min(365.0 * 86400.0));
            framework
                .filters
                .entry(agent_id.to_owned())
                .or_default()
                .push(Filter { resources, until });
        }
    }

    /// DECLINE: the offers' resources return, filtered from this framework for `refuse_seconds`.
    pub fn decline(&mut self, framework_id: &str, decline: &v1::Decline) {
        let refuse = decline.filters.and_then(|f| f.refuse_seconds).unwrap_or(DEFAULT_REFUSE_SECONDS);
        for offer_id in &decline.offer_ids {
            let owned = self.offers.get(&offer_id.value).is_some_and(|o| o.framework_id == framework_id);
            if owned && let Some(offer) = self.offers.remove(&offer_id.value) {
                self.add_filter(framework_id, &offer.agent_id, offer.resources, refuse);
            }
        }
    }

    /// Builds a status the master itself reports.
    fn master_status(
        &self,
        task_id: &v1::TaskId,
        agent_id: Option<&str>,
        state: TaskState,
        reason: &str,
        message: impl Into<String>,
    ) -> TaskStatus {
        let mut status = TaskStatus::new(task_id.clone(), state);
        status.source = Some("SOURCE_MASTER".to_owned());
        status.reason = Some(reason.to_owned());
        status.message = Some(message.into());
        status.agent_id = agent_id.map(Id::new);
        status
    }

    /// ACCEPT: consumes the offers; each LAUNCH task whose resources fit what remains of them is
    /// staged and sent to the agent, any other gets TASK_ERROR (or TASK_DROPPED / TASK_LOST when
    /// the offers are not valid). Unused resources return, filtered for `refuse_seconds`.
    pub fn accept(&mut self, framework_id: &str, accept: &Accept) {
        let partition_aware = self.frameworks.get(framework_id).is_some_and(|f| f.info.partition_aware());
        let task_killing_state = self.frameworks.get(framework_id).is_some_and(|f| f.info.task_killing_state());
        // Take every offer named; any that is unknown or not this framework's invalidates all.
        let mut taken = Vec::new();
        let mut invalid = None;
        for offer_id in &accept.offer_ids {
            match self.offers.get(&offer_id.value) {
                Some(o) if o.framework_id == framework_id => {
                    taken.push(self.offers.remove(&offer_id.value).expect("just seen"));
                }
                _ => invalid = Some(format!("Offer {offer_id} is no longer valid")),
            }
        }
        let agents: BTreeSet<&str> = taken.iter().map(|o| o.agent_id.as_str()).collect();
        if invalid.is_none() && agents.len() > 1 {
            invalid = Some("Aggregated offers must belong to one single agent".to_owned());
        }
        if invalid.is_none() && taken.is_empty() {
            invalid = Some("No offers given".to_owned());
        }
        let tasks: Vec<TaskInfo> = accept
            .operations
            .iter()
            .filter(|op| op.kind == OperationType::Launch)
            .flat_map(|op| op.launch.iter().flat_map(|l| l.task_infos.iter().cloned()))
            .collect();
        if let Some(message) = invalid {
            let state = if partition_aware { TaskState::Dropped } else { TaskState::Lost };
            for task in &tasks {
                let status = self.master_status(&task.task_id, None, state, "REASON_INVALID_OFFERS", &message);
                self.counters.task_ended(state);
                self.send(framework_id, &Event::update(status));
            }
            // Valid offers named alongside invalid ones are still consumed and return.
            self.allocate_soon = true;
            return;
        }
        let agent_id = taken[0].agent_id.clone();
        let mut pool: Resources = taken.iter().map(|o| o.resources.clone()).sum();
        let Some(agent) = self.agents.get(&agent_id).cloned() else {
            return;
        };
        for task in tasks {
            let requested = Resources::from_v1(&task.resources);
            let duplicate = self
                .frameworks
                .get(framework_id)
                .is_some_and(|f| f.tasks.get(&task.task_id.value).is_some_and(|t| !t.state.is_terminal()));
            let problem = if task.task_id.value.is_empty() {
                Some("Task ID must not be empty".to_owned())
            } else if duplicate {
                Some(format!("Task has duplicate ID: {}", task.task_id))
            } else if task.agent_id.value != agent_id {
                Some(format!(
                    "Task uses agent ID {} but the offers are for agent {agent_id}",
                    task.agent_id
                ))
            } else if requested.is_empty() {
                Some("Task uses no resources".to_owned())
            } else if !pool.contains(&requested) {
                Some(format!("Task uses more resources {requested} than available {pool}"))
            } else if task.command.as_ref().and_then(|c| c.value.as_ref()).is_none() {
                Some("Task has no command (the sim runs CommandInfo tasks only)".to_owned())
            } else {
                None
            };
            if let Some(message) = problem {
                let status = self.master_status(&task.task_id, Some(&agent_id), TaskState::Error, "REASON_TASK_INVALID", message);
                self.counters.task_ended(TaskState::Error);
                self.send(framework_id, &Event::update(status));
                continue;
            }
            pool = pool.minus(&requested);
            let mut status = TaskStatus::new(task.task_id.clone(), TaskState::Staging);
            status.agent_id = Some(Id::new(&agent_id));
            let record = Task {
                info: task.clone(),
                framework_id: framework_id.to_owned(),
                agent_id: agent_id.clone(),
                resources: requested,
                state: TaskState::Staging,
                statuses: vec![status],
            };
            if let Some(framework) = self.frameworks.get_mut(framework_id) {
                framework.tasks.insert(task.task_id.value.clone(), record);
            }
            self.effects.push(Effect::Launch {
                agent: agent.address.clone(),
                agent_id: agent_id.clone(),
                framework_id: Id::new(framework_id),
                task: Box::new(task),
                task_killing_state,
            });
        }
        let refuse = accept.filters.and_then(|f| f.refuse_seconds).unwrap_or(DEFAULT_REFUSE_SECONDS);
        self.add_filter(framework_id, &agent_id, pool, refuse);
    }

    /// The agent could not be told to launch: the task is reported lost (dropped for
    /// partition-aware frameworks).
    pub fn launch_failed(&mut self, framework_id: &str, agent_id: &str, task_id: &v1::TaskId, message: &str) {
        let partition_aware = self.frameworks.get(framework_id).is_some_and(|f| f.info.partition_aware());
        let state = if partition_aware { TaskState::Dropped } else { TaskState::Lost };
        let mut status = self.master_status(task_id, Some(agent_id), state, "REASON_AGENT_DISCONNECTED", message);
        status.uuid = Some(new_uuid_base64());
        self.apply_status(framework_id, status);
    }

    /// KILL: forwards to the task's agent; an unknown task is reported lost (unknown for
    /// partition-aware frameworks), as Mesos does.
    pub fn kill(&mut self, framework_id: &str, kill: &v1::Kill) {
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&kill.task_id.value))
            .cloned();
        match task.and_then(|t| self.agents.get(&t.agent_id).map(|a| (t, a.address.clone()))) {
            Some((task, address)) if !task.state.is_terminal() => {
                self.effects.push(Effect::Kill {
                    agent: address,
                    kill: KillTask {
                        framework_id: Id::new(framework_id),
                        task_id: kill.task_id.clone(),
                    },
                });
            }
            _ => {
                let partition_aware = self.frameworks.get(framework_id).is_some_and(|f| f.info.partition_aware());
                let state = if partition_aware { TaskState::Unknown } else { TaskState::Lost };
                let agent = kill.agent_id.as_ref().map(|a| a.value.as_str());
                let status = self.master_status(
                    &kill.task_id,
                    agent,
                    state,
                    "REASON_RECONCILIATION",
                    "Attempted to kill an unknown task",
                );
                self.send(framework_id, &Event::update(status));
            }
        }
    }

    /// ACKNOWLEDGE: the update with this uuid needs no resending. Fails when the uuid is not
    /// base64.
    pub fn acknowledge(&mut self, framework_id: &str, ack: &v1::Acknowledge) -> Result<(), CallError> {
        base64::engine::general_purpose::STANDARD
            .decode(&ack.uuid)
            .map_err(|e| CallError::bad_request(format!("Failed to parse 'uuid': {e}")))?;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            let matches = framework
                .unacknowledged
                .get(&ack.task_id.value)
                .is_some_and(|s| s.uuid.as_deref() == Some(ack.uuid.as_str()));
            if matches {
                framework.unacknowledged.remove(&ack.task_id.value);
            }
        }
        // The agent keeps a finished task until its last update is acknowledged.
        if let Some(agent) = self.agents.get(&ack.agent_id.value) {
            self.effects.push(Effect::Acknowledge {
                agent: agent.address.clone(),
                ack: AcknowledgeUpdate {
                    framework_id: Id::new(framework_id),
                    task_id: ack.task_id.clone(),
                    uuid: ack.uuid.clone(),
                },
            });
        }
        Ok(())
    }

    /// RECONCILE: answers with the latest state of the tasks asked about (all of the framework's
    /// tasks when none are named), as `docs/reconciliation.md` describes. Tasks on agents that
    /// have not re-registered since a failover get no answer yet.
    pub fn reconcile(&mut self, framework_id: &str, reconcile: &v1::Reconcile) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.info.partition_aware();
        let mut answers = Vec::new();
        if reconcile.tasks.is_empty() {
            answers.extend(framework.tasks.values().map(Task::latest));
        } else {
            for asked in &reconcile.tasks {
                if let Some(task) = framework.tasks.get(&asked.task_id.value) {
                    answers.push(task.latest());
                    continue;
                }
                let agent = asked.agent_id.as_ref().map(|a| a.value.as_str());
                let recovering = match agent {
                    Some(agent) => self.recovered_agents.contains_key(agent),
                    None => !self.recovered_agents.is_empty(),
                };
                if recovering {
                    continue;
                }
                let registered = agent.is_some_and(|a| self.agents.contains_key(a));
                let state = match (partition_aware, registered) {
                    (false, _) => TaskState::Lost,
                    (true, true) => TaskState::Gone,
                    (true, false) => TaskState::Unknown,
                };
                let mut status = TaskStatus::new(asked.task_id.clone(), state);
                status.agent_id = asked.agent_id.clone();
                status.message = Some("Reconciliation: Task is unknown".to_owned());
                answers.push(status);
            }
        }
        for mut status in answers {
            status.source = Some("SOURCE_MASTER".to_owned());
            status.reason = Some("REASON_RECONCILIATION".to_owned());
            // Reconciliation answers are not acknowledged.
            status.uuid = None;
            self.send(framework_id, &Event::update(status));
        }
    }

    /// REVIVE: removes the framework's filters and resumes offers.
    pub fn revive(&mut self, framework_id: &str) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.filters.clear();
            framework.suppressed = false;
            self.allocate_soon = true;
        }
    }

    /// SUPPRESS: no more offers until REVIVE.
    pub fn suppress(&mut self, framework_id: &str) {
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            framework.suppressed = true;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Agents
    // -----------------------------------------------------------------------------------------

    /// Registers an agent, or re-registers it (after a failover, with its tasks). An agent that
    /// was removed (or is unknown to the registry) comes back with a new id and must kill its
    /// old tasks.
    pub fn register_agent(&mut self, request: RegisterAgent) -> AgentRegistered {
        let mut kill = Vec::new();
        let previous = request.agent_id.as_ref().map(|a| a.value.clone());
        let agent_id = match &previous {
            // Only agents this master admitted, or found in the registry, come back with their
            // tasks; any other (removed, or never recorded) starts afresh, as Mesos makes an
            // agent it does not know shut down its tasks.
            Some(id) if self.agents.contains_key(id) || self.recovered_agents.contains_key(id) => id.clone(),
            _ => {
                kill.extend(request.tasks.iter().map(|t| KillTask {
                    framework_id: t.framework_id.clone(),
                    task_id: t.task.task_id.clone(),
                }));
                self.next("S")
            }
        };
        let reregistered = self.agents.contains_key(&agent_id) || self.recovered_agents.contains_key(&agent_id);
        self.recovered_agents.remove(&agent_id);
        if reregistered {
            self.counters.agent_reregistrations += 1;
        } else {
            self.counters.agent_registrations += 1;
        }
        let address = AgentAddress {
            ip: request.ip.clone(),
            port: request.port,
        };
        let agent = Agent {
            id: agent_id.clone(),
            hostname: request.hostname.clone(),
            address: address.clone(),
            total: Resources::from_v1(&request.resources),
            attributes: request.attributes.clone(),
            registered_time: v1::now_seconds(),
            last_ping: Instant::now(),
        };
        tracing::info!(agent = %agent_id, hostname = %agent.hostname, reregistered, tasks = request.tasks.len(), "agent registered");
        self.agents.insert(agent_id.clone(), agent);
        if kill.is_empty() {
            for reported in request.tasks {
                self.adopt_task(&agent_id, reported, &mut kill);
            }
        }
        let data = serde_json::to_vec(&serde_json::json!({
            "id": agent_id, "hostname": request.hostname, "ip": request.ip, "port": request.port,
        }))
        .unwrap_or_default();
        self.effects.push(Effect::RegistryAdd {
            agent_id: agent_id.clone(),
            data,
        });
        self.allocate_soon = true;
        AgentRegistered {
            agent_id: Id::new(&agent_id),
            master_id: self.config.master_info.id.clone(),
            ping_interval_seconds: self.config.agent_ping_timeout.as_secs_f64(),
            kill,
        }
    }

    /// Takes a task an agent reports into the framework it belongs to (creating a recovered
    /// framework entry when the framework has not subscribed to this master yet).
    fn adopt_task(&mut self, agent_id: &str, reported: AgentTask, kill: &mut Vec<KillTask>) {
        let framework_id = reported.framework_id.value.clone();
        if self.completed_frameworks.iter().any(|f| f.id == framework_id) {
            kill.push(KillTask {
                framework_id: reported.framework_id,
                task_id: reported.task.task_id,
            });
            return;
        }
        let framework = self.frameworks.entry(framework_id.clone()).or_insert_with(|| {
            let info = FrameworkInfo {
                id: Some(Id::new(&framework_id)),
                ..FrameworkInfo::default()
            };
            Framework::new(framework_id.clone(), info, true)
        });
        let task_id = reported.task.task_id.value.clone();
        let state = reported.status.state;
        // A finished task the framework has not acknowledged: its update is sent (again).
        let resend = (state.is_terminal() && reported.status.uuid.is_some()).then(|| reported.status.clone());
        let task = Task {
            resources: Resources::from_v1(&reported.task.resources),
            info: reported.task,
            framework_id,
            agent_id: agent_id.to_owned(),
            state,
            statuses: vec![reported.status],
        };
        if state.is_terminal() {
            framework.tasks.remove(&task_id);
            framework.completed_tasks.push_back(task);
        } else {
            framework.tasks.insert(task_id, task);
        }
        if let Some(status) = resend {
            self.send_update(&reported.framework_id.value, status);
        }
    }

    /// A ping from an agent; `false` when the agent is not registered (it must register).
    pub fn agent_ping(&mut self, agent_id: &str) -> bool {
        match self.agents.get_mut(agent_id) {
            Some(agent) => {
                agent.last_ping = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Applies a status update reported by an agent and forwards it to the framework. `false`
    /// when the agent is not registered.
    pub fn status_update(&mut self, agent_id: &str, framework_id: &str, status: TaskStatus) -> bool {
        if !self.agents.contains_key(agent_id) {
            return false;
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.last_ping = Instant::now();
        }
        self.apply_status(framework_id, status);
        true
    }

    fn apply_status(&mut self, framework_id: &str, status: TaskStatus) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            tracing::debug!(framework = framework_id, task = %status.task_id, "update for an unknown framework dropped");
            return;
        };
        let task_id = status.task_id.value.clone();
        let Some(task) = framework.tasks.get_mut(&task_id) else {
            // Late or duplicate update of a task already completed.
            return;
        };
        task.state = status.state;
        task.statuses.push(status.clone());
        if status.state.is_terminal() {
            framework.complete(&task_id);
            self.counters.task_ended(status.state);
            self.allocate_soon = true;
        }
        self.send_update(framework_id, status);
    }

    /// Removes an agent: its offers are rescinded, its tasks become TASK_LOST (TASK_UNREACHABLE
    /// for partition-aware frameworks) and every framework gets FAILURE.
    pub fn remove_agent(&mut self, agent_id: &str, why: &str) {
        let Some(agent) = self.agents.remove(agent_id) else {
            return;
        };
        tracing::warn!(agent = agent_id, hostname = %agent.hostname, why, "removing agent");
        self.counters.agent_removals += 1;
        let rescinded: Vec<OfferRecord> = self.offers.values().filter(|o| o.agent_id == agent_id).cloned().collect();
        for offer in rescinded {
            self.offers.remove(&offer.id);
            self.send(&offer.framework_id, &Event::rescind(Id::new(&offer.id)));
        }
        let framework_ids: Vec<String> = self.frameworks.keys().cloned().collect();
        for framework_id in &framework_ids {
            let (partition_aware, lost) = {
                let framework = &self.frameworks[framework_id];
                let lost: Vec<v1::TaskId> = framework
                    .tasks
                    .values()
                    .filter(|t| t.agent_id == agent_id)
                    .map(|t| t.info.task_id.clone())
                    .collect();
                (framework.info.partition_aware(), lost)
            };
            let state = if partition_aware { TaskState::Unreachable } else { TaskState::Lost };
            for task_id in lost {
                let mut status = self.master_status(
                    &task_id,
                    Some(agent_id),
                    state,
                    "REASON_AGENT_REMOVED",
                    format!("Agent {} removed: {why}", agent.hostname),
                );
                status.uuid = Some(new_uuid_base64());
                if let Some(framework) = self.frameworks.get_mut(framework_id)
                    && let Some(task) = framework.tasks.get_mut(&task_id.value)
                {
                    task.state = state;
                    task.statuses.push(status.clone());
                    framework.complete(&task_id.value);
                    self.counters.task_ended(state);
                }
                self.send_update(framework_id, status);
            }
            self.send(framework_id, &Event::agent_failure(Id::new(agent_id)));
        }
        self.effects.push(Effect::RegistryRemove {
            agent_id: agent_id.to_owned(),
        });
    }

    // -----------------------------------------------------------------------------------------
    // Time
    // -----------------------------------------------------------------------------------------

    /// Advances time: removes agents that missed their pings, tears down frameworks past their
    /// failover timeout, forgets recovered agents that did not come back, sends heartbeats, and
    /// allocates when due.
    pub fn tick(&mut self, now: Instant) {
        let limit = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts.max(1);
        let silent: Vec<String> = self
            .agents
            .values()
            .filter(|a| now.saturating_duration_since(a.last_ping) > limit)
            .map(|a| a.id.clone())
            .collect();
        for agent_id in silent {
            self.remove_agent(&agent_id, "health check timed out");
        }

        let gone: Vec<String> = self
            .recovered_agents
            .iter()
            .filter(|(_, deadline)| now >= **deadline)
            .map(|(id, _)| id.clone())
            .collect();
        for agent_id in gone {
            tracing::warn!(agent = %agent_id, "agent did not re-register in time; removing it");
            self.recovered_agents.remove(&agent_id);
            self.effects.push(Effect::RegistryRemove { agent_id });
        }

        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| {
                f.disconnected_at.is_some_and(|at| {
                    let timeout = Duration::from_secs_f64(f.info.failover_timeout.unwrap_or(0.0).clamp(0.0, 1e9));
                    now.saturating_duration_since(at) >= timeout
                })
            })
            .map(|f| f.id.clone())
            .collect();
        for framework_id in expired {
            tracing::info!(framework = %framework_id, "framework failover timeout elapsed");
            self.teardown(&framework_id);
        }

        let beating: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.connected() && now.saturating_duration_since(f.last_heartbeat) >= self.config.heartbeat_interval)
            .map(|f| f.id.clone())
            .collect();
        for framework_id in beating {
            if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                framework.last_heartbeat = now;
            }
            self.send(&framework_id, &Event::heartbeat());
        }

        if self.allocate_soon || now.saturating_duration_since(self.last_allocation) >= self.config.allocation_interval {
            self.allocate(now);
        }
    }

    /// Offers every agent's available resources to one eligible framework each (the one with
    /// the smallest share of cpus, so frameworks take turns), in one OFFERS event per framework.
    pub fn allocate(&mut self, now: Instant) {
        self.last_allocation = now;
        self.allocate_soon = false;
        for framework in self.frameworks.values_mut() {
            for filters in framework.filters.values_mut() {
                filters.retain(|f| f.until > now);
            }
        }
        let mut share: BTreeMap<String, f64> = self
            .frameworks
            .values()
            .filter(|f| f.connected() && !f.suppressed)
            .map(|f| {
                let held = self.used_by(&f.id).plus(&self.offered_to(&f.id));
                (f.id.clone(), held.scalar("cpus"))
            })
            .collect();
        if share.is_empty() {
            return;
        }
        let mut batches: BTreeMap<String, Vec<v1::Offer>> = BTreeMap::new();
        let agent_ids: Vec<String> = self.agents.keys().cloned().collect();
        for agent_id in agent_ids {
            let available = self.available_on(&agent_id);
            if !available.is_allocatable() {
                continue;
            }
            let chosen = share
                .iter()
                .filter(|(id, _)| {
                    let filters = self.frameworks[*id].filters.get(&agent_id);
                    !filters.is_some_and(|fs| fs.iter().any(|f| f.resources.contains(&available)))
                })
                .min_by(|a, b| a.1.total_cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(id, _)| id.clone());
            let Some(framework_id) = chosen else {
                continue;
            };
            *share.get_mut(&framework_id).expect("chosen from share") += available.scalar("cpus");
            let offer_id = self.next("O");
            let agent = &self.agents[&agent_id];
            let role = self.frameworks[&framework_id].info.allocation_role();
            let offer = v1::Offer {
                id: Id::new(&offer_id),
                framework_id: Id::new(&framework_id),
                agent_id: Id::new(&agent_id),
                hostname: agent.hostname.clone(),
                url: Some(v1::Url {
                    scheme: "http".to_owned(),
                    address: v1::Address {
                        hostname: Some(agent.hostname.clone()),
                        ip: Some(agent.address.ip.clone()),
                        port: u32::from(agent.address.port),
                    },
                    path: Some("/slave(1)".to_owned()),
                }),
                resources: available.to_v1(Some(&role)),
                attributes: agent.attributes.clone(),
                executor_ids: Vec::new(),
            };
            self.offers.insert(
                offer_id.clone(),
                OfferRecord {
                    id: offer_id,
                    framework_id: framework_id.clone(),
                    agent_id,
                    resources: available,
                },
            );
            batches.entry(framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in batches {
            self.send(&framework_id, &Event::offers(offers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::protocol::RegisterAgent;

    fn config() -> ClusterConfig {
        ClusterConfig {
            master_info: v1::MasterInfo {
                id: "m".into(),
                ..Default::default()
            },
            agent_ping_timeout: Duration::from_secs(1),
            max_agent_ping_timeouts: 3,
            agent_reregister_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_secs(1),
        }
    }

    fn agent(resources: &str) -> RegisterAgent {
        RegisterAgent {
            agent_id: None,
            hostname: "h".into(),
            ip: "127.0.0.1".into(),
            port: 1,
            resources: Resources::parse(resources).unwrap().to_v1(None),
            attributes: vec![],
            tasks: vec![],
        }
    }

    fn events(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<Event> {
        let mut decoder = recordio::Decoder::default();
        while let Ok(bytes) = rx.try_recv() {
            decoder.push(&bytes);
        }
        let mut out = Vec::new();
        while let Some(record) = decoder.next_record().unwrap() {
            out.push(serde_json::from_slice(&record).unwrap());
        }
        out
    }

    fn launch(offer: &v1::Offer, task_id: &str, resources: &str) -> Accept {
        Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::Operation {
                kind: OperationType::Launch,
                launch: Some(v1::Launch {
                    task_infos: vec![TaskInfo {
                        name: task_id.into(),
                        task_id: Id::new(task_id),
                        agent_id: offer.agent_id.clone(),
                        resources: Resources::parse(resources).unwrap().to_v1(None),
                        command: Some(v1::CommandInfo {
                            value: Some("true".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                }),
            }],
            filters: Some(v1::Filters { refuse_seconds: Some(0.0) }),
        }
    }

    #[test]
    fn offers_exclude_used_and_offered_resources() {
        let mut cluster = Cluster::new(config(), vec![]);
        let registered = cluster.register_agent(agent("cpus:1;mem:256;ports:[100-101]"));
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let (tx_b, mut rx_b) = mpsc::unbounded_channel();
        let (a, _) = cluster.subscribe(FrameworkInfo::default(), tx_a);
        let (b, _) = cluster.subscribe(FrameworkInfo::default(), tx_b);
        cluster.allocate(Instant::now());
        let offers_a: Vec<v1::Offer> = events(&mut rx_a)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect();
        assert_eq!(offers_a.len(), 1, "the whole agent goes to one framework");
        // Nothing is left for the second framework while the offer is outstanding.
        cluster.allocate(Instant::now());
        assert!(events(&mut rx_b).iter().all(|e| e.offers.is_none()));

        cluster.accept(&a, &launch(&offers_a[0], "t1", "cpus:0.5;mem:100;ports:[100-100]"));
        let effects = cluster.take_effects();
        assert!(effects.iter().any(|e| matches!(e, Effect::Launch { .. })));
        cluster.allocate(Instant::now());
        let offers_b: Vec<v1::Offer> = events(&mut rx_b)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect();
        assert_eq!(offers_b.len(), 1);
        let rest = Resources::from_v1(&offers_b[0].resources);
        assert_eq!(rest.scalar("cpus"), 0.5);
        assert_eq!(rest.scalar("mem"), 156.0);
        assert_eq!(rest.range_set("ports").to_string(), "[101-101]");
        assert_eq!(cluster.used_on(&registered.agent_id.value).scalar("cpus"), 0.5);
        let _ = b;
    }

    #[test]
    fn launch_beyond_offer_is_task_error() {
        let mut cluster = Cluster::new(config(), vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (f, _) = cluster.subscribe(FrameworkInfo::default(), tx);
        cluster.allocate(Instant::now());
        let offer = events(&mut rx).into_iter().find_map(|e| e.offers).unwrap().offers.remove(0);
        cluster.accept(&f, &launch(&offer, "big", "cpus:2;mem:10"));
        let update = events(&mut rx).into_iter().find_map(|e| e.update).unwrap();
        assert_eq!(update.status.state, TaskState::Error);
        assert!(cluster.take_effects().iter().all(|e| !matches!(e, Effect::Launch { .. })));
    }

    #[test]
    fn silent_agent_is_removed_and_tasks_lost() {
        let mut cluster = Cluster::new(config(), vec![]);
        let registered = cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (f, _) = cluster.subscribe(FrameworkInfo::default(), tx);
        cluster.allocate(Instant::now());
        let offer = events(&mut rx).into_iter().find_map(|e| e.offers).unwrap().offers.remove(0);
        cluster.accept(&f, &launch(&offer, "t", "cpus:1;mem:10"));
        cluster.tick(Instant::now() + Duration::from_secs(4));
        let events = events(&mut rx);
        let lost = events.iter().find_map(|e| e.update.clone()).unwrap();
        assert_eq!(lost.status.state, TaskState::Lost);
        assert!(
            events
                .iter()
                .any(|e| e.failure.as_ref().and_then(|f| f.agent_id.clone()) == Some(registered.agent_id.clone()))
        );
        assert!(cluster.agents.is_empty());
    }

    fn offers_of(rx: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<v1::Offer> {
        events(rx).into_iter().filter_map(|e| e.offers).flat_map(|o| o.offers).collect()
    }

    #[test]
    fn decline_filters_the_agent_until_revive() {
        let mut cluster = Cluster::new(config(), vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (f, _) = cluster.subscribe(FrameworkInfo::default(), tx);
        cluster.allocate(Instant::now());
        let offers = offers_of(&mut rx);
        assert_eq!(offers.len(), 1);
        cluster.decline(
            &f,
            &v1::Decline {
                offer_ids: vec![offers[0].id.clone()],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(100.0),
                }),
            },
        );
        cluster.allocate(Instant::now());
        assert!(offers_of(&mut rx).is_empty(), "declined resources stay away for refuse_seconds");
        cluster.allocate(Instant::now() + Duration::from_secs(101));
        assert_eq!(offers_of(&mut rx).len(), 1, "offered again once the filter expires");

        let offer = cluster.offers.keys().next().cloned().unwrap();
        cluster.decline(
            &f,
            &v1::Decline {
                offer_ids: vec![Id::new(offer)],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(100.0),
                }),
            },
        );
        cluster.suppress(&f);
        cluster.revive(&f);
        cluster.allocate(Instant::now());
        assert_eq!(offers_of(&mut rx).len(), 1, "REVIVE clears filters");
        cluster.suppress(&f);
        let outstanding: Vec<String> = cluster.offers.keys().cloned().collect();
        for id in outstanding {
            cluster.decline(
                &f,
                &v1::Decline {
                    offer_ids: vec![Id::new(id)],
                    filters: None,
                },
            );
        }
        cluster.allocate(Instant::now() + Duration::from_secs(500));
        assert!(offers_of(&mut rx).is_empty(), "SUPPRESS stops offers");
    }

    #[test]
    fn failover_timeout_tears_down_a_disconnected_framework() {
        // Agents that never miss a ping in the time this test spans.
        let config = ClusterConfig {
            agent_ping_timeout: Duration::from_secs(100),
            ..config()
        };
        let mut cluster = Cluster::new(config, vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let info = FrameworkInfo {
            failover_timeout: Some(10.0),
            ..FrameworkInfo::default()
        };
        let (f, _) = cluster.subscribe(info, tx);
        cluster.allocate(Instant::now());
        let offer = offers_of(&mut rx).remove(0);
        cluster.accept(&f, &launch(&offer, "t", "cpus:1;mem:10"));
        cluster.take_effects();
        drop(rx);
        cluster.disconnect(&f);
        cluster.tick(Instant::now() + Duration::from_secs(5));
        assert!(cluster.frameworks.contains_key(&f), "kept within the failover timeout");
        assert!(cluster.take_effects().iter().all(|e| !matches!(e, Effect::Kill { .. })));
        cluster.tick(Instant::now() + Duration::from_secs(11));
        assert!(!cluster.frameworks.contains_key(&f));
        assert_eq!(cluster.completed_frameworks.len(), 1);
        assert!(cluster.take_effects().iter().any(|e| matches!(e, Effect::Kill { .. })));
    }

    #[test]
    fn heartbeats_at_the_interval() {
        let mut cluster = Cluster::new(config(), vec![]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        cluster.subscribe(FrameworkInfo::default(), tx);
        events(&mut rx);
        cluster.tick(Instant::now() + Duration::from_secs(5));
        assert!(events(&mut rx).iter().all(|e| e.kind != v1::EventType::Heartbeat));
        cluster.tick(Instant::now() + Duration::from_secs(16));
        assert!(events(&mut rx).iter().any(|e| e.kind == v1::EventType::Heartbeat));
    }

    #[test]
    fn unknown_agent_gets_a_new_id_and_kills_its_tasks_but_a_recovered_one_keeps_them() {
        let task = AgentTask {
            framework_id: Id::new("f"),
            task: TaskInfo {
                task_id: Id::new("t"),
                resources: Resources::parse("cpus:0.5").unwrap().to_v1(None),
                ..TaskInfo::default()
            },
            status: TaskStatus::new(Id::new("t"), TaskState::Running),
        };
        let mut cluster = Cluster::new(config(), vec!["known".into()]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let info = FrameworkInfo {
            id: Some(Id::new("f")),
            ..FrameworkInfo::default()
        };
        cluster.subscribe(info, tx);
        events(&mut rx);

        // While "known" has not re-registered, asking about its task gets no answer.
        let ask = v1::Reconcile {
            tasks: vec![v1::ReconcileTask {
                task_id: Id::new("t"),
                agent_id: Some(Id::new("known")),
            }],
        };
        cluster.reconcile("f", &ask);
        assert!(events(&mut rx).is_empty());

        let mut stranger = agent("cpus:1;mem:256");
        stranger.agent_id = Some(Id::new("stranger"));
        stranger.tasks = vec![task.clone()];
        let registered = cluster.register_agent(stranger);
        assert_ne!(registered.agent_id.value, "stranger");
        assert_eq!(registered.kill.len(), 1);

        let mut known = agent("cpus:1;mem:256");
        known.agent_id = Some(Id::new("known"));
        known.tasks = vec![task];
        let registered = cluster.register_agent(known);
        assert_eq!(registered.agent_id.value, "known");
        assert!(registered.kill.is_empty());
        assert_eq!(cluster.used_on("known").scalar("cpus"), 0.5);
        cluster.reconcile("f", &ask);
        let answer = events(&mut rx).into_iter().find_map(|e| e.update).unwrap();
        assert_eq!(answer.status.state, TaskState::Running);
    }
}
