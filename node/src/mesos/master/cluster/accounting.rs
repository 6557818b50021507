//! What agents hold and frameworks use: the sums the allocator and the endpoints read.

use super::Cluster;
use crate::mesos::resources::Resources;

impl Cluster {
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
}
