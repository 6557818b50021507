//! The scheduler API's calls, with the rules Mesos applies to each.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::mpsc;

use super::framework::{Filter, Stream};
use super::{CallError, Cluster, Effect, Framework, Task, new_uuid_base64};
use crate::mesos::protocol::{AcknowledgeUpdate, KillTask};
use crate::mesos::recordio;
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, Accept, Event, FrameworkInfo, Id, OperationType, TaskInfo, TaskState, TaskStatus};

/// Mesos' default for `Filters.refuse_seconds`.
const DEFAULT_REFUSE_SECONDS: f64 = 5.0;
/// How many torn-down frameworks the master keeps for `/master/state`.
const COMPLETED_FRAMEWORKS_KEPT: usize = 50;

impl Cluster {
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
    pub fn subscribe(&mut self, mut info: FrameworkInfo, sender: mpsc::Sender<Vec<u8>>) -> (String, String) {
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
            let _ = old.sender.try_send(recordio::encode(&Event::error("Framework failed over")));
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
    pub(super) fn master_status(
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
            } else if task.command.as_ref().and_then(|c| c.value.as_ref()).is_none() && !runs_an_image(&task) {
                // A DOCKER container may run its image's own command; anything else needs one.
                Some("Task has no command (the sim runs CommandInfo tasks and DOCKER containers only)".to_owned())
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
}

/// Whether a task runs a Docker image (a DOCKER ContainerInfo), whose command is optional.
fn runs_an_image(task: &v1::TaskInfo) -> bool {
    task.container_info()
        .ok()
        .flatten()
        .is_some_and(|c| c.kind == v1::ContainerType::Docker && c.docker.is_some())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn launch_beyond_offer_is_task_error() {
        let mut cluster = Cluster::new(config(), vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = stream();
        let (f, _) = cluster.subscribe(FrameworkInfo::default(), tx);
        cluster.allocate(Instant::now());
        let offer = events(&mut rx).into_iter().find_map(|e| e.offers).unwrap().offers.remove(0);
        cluster.accept(&f, &launch(&offer, "big", "cpus:2;mem:10"));
        let update = events(&mut rx).into_iter().find_map(|e| e.update).unwrap();
        assert_eq!(update.status.state, TaskState::Error);
        assert!(cluster.take_effects().iter().all(|e| !matches!(e, Effect::Launch { .. })));
    }

    #[test]
    fn decline_filters_the_agent_until_revive() {
        let mut cluster = Cluster::new(config(), vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = stream();
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
}
