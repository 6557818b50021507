//! Marathon's event bus: each event is serialized once, when it is sent, and shared by every
//! subscriber of `/v2/events`, so a subscriber costs a filter and a copy per event rather than
//! a JSON rendering of its own.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// An event as subscribers receive it.
#[derive(Debug)]
pub struct Event {
    /// Its `eventType`: the SSE event name, and what `event_type` filters on.
    pub kind: String,
    /// Its JSON.
    pub data: String,
}

/// A bounded ring of the latest events (see `http::broadcast_stream` for what becomes of a
/// subscriber it passes by).
pub struct EventBus(broadcast::Sender<Arc<Event>>);

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        EventBus(broadcast::channel(capacity).0)
    }

    /// Sends `event` (JSON with its `eventType`) to every subscriber; returns how many there were.
    pub fn send(&self, event: Value) -> usize {
        let kind = event.get("eventType").and_then(Value::as_str).unwrap_or("event").to_owned();
        let event = Arc::new(Event {
            kind,
            data: event.to_string(),
        });
        self.0.send(event).unwrap_or(0)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.0.subscribe()
    }
}
