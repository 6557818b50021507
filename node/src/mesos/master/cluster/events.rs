//! Events to frameworks: the SUBSCRIBE stream, pending updates, and what a closed stream means.

use std::time::Instant;

use super::Cluster;
use crate::mesos::recordio;
use crate::mesos::v1::{Event, TaskStatus};

impl Cluster {
    /// Sends an event on a framework's stream; a closed stream marks the framework disconnected.
    pub(super) fn send(&mut self, framework_id: &str, event: &Event) {
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
    pub(super) fn send_update(&mut self, framework_id: &str, status: TaskStatus) {
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
}
