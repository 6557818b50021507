//! The passing of time: silent agents, expired failover timeouts, agents that did not come back, heartbeats.

use std::time::{Duration, Instant};

use super::{Cluster, Effect};
use crate::mesos::v1::Event;

impl Cluster {
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
}

#[cfg(test)]
mod tests {
    use super::super::ClusterConfig;
    use super::super::testing::*;
    use super::*;
    use crate::mesos::v1::{self, FrameworkInfo, TaskState};

    #[test]
    fn silent_agent_is_removed_and_tasks_lost() {
        let mut cluster = Cluster::new(config(), vec![]);
        let registered = cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = stream();
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

    #[test]
    fn failover_timeout_tears_down_a_disconnected_framework() {
        // Agents that never miss a ping in the time this test spans.
        let config = ClusterConfig {
            agent_ping_timeout: Duration::from_secs(100),
            ..config()
        };
        let mut cluster = Cluster::new(config, vec![]);
        cluster.register_agent(agent("cpus:1;mem:256"));
        let (tx, mut rx) = stream();
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
        let (tx, mut rx) = stream();
        cluster.subscribe(FrameworkInfo::default(), tx);
        events(&mut rx);
        cluster.tick(Instant::now() + Duration::from_secs(5));
        assert!(events(&mut rx).iter().all(|e| e.kind != v1::EventType::Heartbeat));
        cluster.tick(Instant::now() + Duration::from_secs(16));
        assert!(events(&mut rx).iter().any(|e| e.kind == v1::EventType::Heartbeat));
    }
}
