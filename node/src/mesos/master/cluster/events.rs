//! Events to frameworks: the SUBSCRIBE stream, pending updates, and what a closed stream means.

use std::time::Instant;

use tokio::sync::mpsc::error::TrySendError;

use super::Cluster;
use crate::mesos::recordio;
use crate::mesos::v1::{Event, TaskStatus};

/// Events queued on a framework's SUBSCRIBE stream at most. A scheduler this far behind (slow,
/// or stalled without closing its connection) is disconnected rather than followed by a queue
/// that grows without bound: its stream ends after the queued events, its failover timeout
/// starts, and subscribing again brings the unacknowledged updates back.
pub const FRAMEWORK_EVENTS_QUEUED: usize = 1024;

impl Cluster {
    /// Sends an event on a framework's stream; a closed or full stream marks the framework
    /// disconnected.
    pub(super) fn send(&mut self, framework_id: &str, event: &Event) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(stream) = &framework.stream else {
            return;
        };
        match stream.sender.try_send(recordio::encode(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    framework = framework_id,
                    queued = FRAMEWORK_EVENTS_QUEUED,
                    "closing the event stream of a framework that does not read it"
                );
                self.disconnect(framework_id);
            }
            Err(TrySendError::Closed(_)) => self.disconnect(framework_id),
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::mesos::v1::FrameworkInfo;

    #[test]
    fn a_framework_that_stops_reading_is_disconnected_once_its_queue_is_full_and_others_keep_theirs() {
        let mut cluster = Cluster::new(config(), vec![]);
        let (stalled_tx, stalled_rx) = stream();
        let (reader_tx, mut reader_rx) = stream();
        let (stalled, _) = cluster.subscribe(FrameworkInfo::default(), stalled_tx);
        let (reader, _) = cluster.subscribe(FrameworkInfo::default(), reader_tx);
        events(&mut reader_rx);
        let mut read = 0;
        // SUBSCRIBED took one place; the queue fills with heartbeats the stalled one never reads.
        for _ in 0..FRAMEWORK_EVENTS_QUEUED + 10 {
            cluster.send(&stalled, &Event::heartbeat());
            cluster.send(&reader, &Event::heartbeat());
            read += events(&mut reader_rx).len();
        }
        assert!(!cluster.frameworks[&stalled].connected(), "the stalled framework is disconnected");
        assert!(cluster.frameworks[&reader].connected());
        assert_eq!(read, FRAMEWORK_EVENTS_QUEUED + 10, "the reading framework got every event");
        assert_eq!(stalled_rx.len(), FRAMEWORK_EVENTS_QUEUED, "nothing queued beyond the bound");
    }
}
