//! The agents' side: registration (and re-registration after a failover), pings, status updates, and removal.

use std::time::Instant;

use super::{Agent, AgentAddress, Cluster, Effect, Framework, OfferRecord, Task, new_uuid_base64};
use crate::mesos::protocol::{AgentRegistered, AgentTask, KillTask, RegisterAgent};
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, Event, FrameworkInfo, Id, TaskState, TaskStatus};

impl Cluster {
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

    pub(super) fn apply_status(&mut self, framework_id: &str, status: TaskStatus) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::mesos::v1::TaskInfo;

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
        let (tx, mut rx) = stream();
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
