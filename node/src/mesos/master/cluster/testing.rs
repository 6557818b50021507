//! What the unit tests of the cluster share: a config, an agent, and the events a framework got.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::mesos::protocol::RegisterAgent;
use crate::mesos::recordio;
use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, Accept, Event, Id, OperationType, TaskInfo};

use super::{ClusterConfig, FRAMEWORK_EVENTS_QUEUED};

pub(super) fn config() -> ClusterConfig {
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

pub(super) fn agent(resources: &str) -> RegisterAgent {
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

pub(super) fn events(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<Event> {
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

pub(super) fn launch(offer: &v1::Offer, task_id: &str, resources: &str) -> Accept {
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

pub(super) fn offers_of(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<v1::Offer> {
    events(rx).into_iter().filter_map(|e| e.offers).flat_map(|o| o.offers).collect()
}

/// A SUBSCRIBE stream as the HTTP handler makes it.
pub(super) fn stream() -> (mpsc::Sender<Vec<u8>>, mpsc::Receiver<Vec<u8>>) {
    mpsc::channel(FRAMEWORK_EVENTS_QUEUED)
}
