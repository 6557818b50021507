//! Following Marathon's event stream: connect to any Marathon, fail over to the next with
//! backoff when the stream breaks, and signal every event that may change routes.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::event::{EventEffect, SseDecoder, effect, event_type};
use super::marathons::{Backoff, Marathons, error_chain};

/// How often the followed Marathon is asked whether another one leads.
const LEADER_CHECK: Duration = Duration::from_secs(2);

/// How long a stream must have lasted for its end to count as a normal disconnect.
const STABLE_STREAM: Duration = Duration::from_secs(5);

/// Where the follower reports, and where it is told to drop its stream.
#[derive(Debug)]
pub struct Signals {
    /// Notified on every (re)connect and on every event that may change routes.
    pub changes: Notify,
    /// Bumped when the followed Marathon failed to answer a request, so a stream that is still
    /// open but dead (a machine gone without closing its connections) is dropped. A counter, not
    /// a notification, so a request made before the current stream opened does not drop it.
    reconnect: watch::Sender<u64>,
}

impl Default for Signals {
    fn default() -> Signals {
        Signals {
            changes: Notify::new(),
            reconnect: watch::Sender::new(0),
        }
    }
}

impl Signals {
    /// Asks the follower to drop its current stream and fail over.
    pub fn request_reconnect(&self) {
        self.reconnect.send_modify(|requests| *requests += 1);
    }
}

/// Follows the event stream forever, moving to the next Marathon whenever the current one
/// fails; sleeps with backoff after every full round of failed connections.
pub async fn follow_events(marathons: Arc<Marathons>, signals: Arc<Signals>) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut index = marathons.current();
    let mut failures = 0usize;
    loop {
        // The leader is where events originate; a standby may refuse or drop the stream.
        if let Some(leader) = marathons.leader(index).await {
            index = leader;
        }
        let base = marathons.base(index).clone();
        // Reconnect requests from before this stream opened are not about it.
        let mut reconnect = signals.reconnect.subscribe();
        reconnect.mark_unchanged();
        match marathons.events(index).await {
            Ok(response) => {
                tracing::info!(marathon = %base, "following the event stream");
                marathons.set_current(index);
                // Events may have been missed while not connected: resync in full.
                signals.changes.notify_one();
                let opened = Instant::now();
                let reason = read_stream(response, &signals.changes, &mut reconnect, &marathons, index).await;
                tracing::warn!(marathon = %base, reason, "event stream ended; failing over");
                // A stream that ends at once counts as a failure, so a Marathon that accepts and
                // drops streams cannot make lb-sync reconnect (and resync) in a tight loop.
                if opened.elapsed() >= STABLE_STREAM {
                    backoff.reset();
                    failures = 0;
                } else {
                    failures += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
            Err(error) => {
                tracing::warn!(marathon = %base, error = %error_chain(&error), "cannot open the event stream");
                failures += 1;
                if failures.is_multiple_of(marathons.len()) {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        index = (index + 1) % marathons.len();
    }
}

/// Reads events from the Marathon at `index` until the stream ends, a reconnect is requested or
/// another Marathon of the list leads; returns why it stopped.
async fn read_stream(
    response: reqwest::Response,
    changes: &Notify,
    reconnect: &mut watch::Receiver<u64>,
    marathons: &Marathons,
    index: usize,
) -> String {
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::default();
    let mut leader_check = tokio::time::interval_at(Instant::now() + LEADER_CHECK, LEADER_CHECK);
    leader_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Cancel-safe: `tick` only consumes a tick when it completes.
            _ = leader_check.tick() => {
                // A stream opened during an election may be a standby's, which carries no events:
                // move to the leader once there is one.
                if let Some(leader) = marathons.leader(index).await
                    && leader != index
                {
                    return format!("{} leads now", marathons.base(leader));
                }
            }
            // Cancel-safe: `next` on a stream holds no data between polls.
            chunk = body.next() => match chunk {
                Some(Ok(bytes)) => {
                    for message in decoder.push(&bytes) {
                        let kind = event_type(&message);
                        if effect(&message) == EventEffect::RoutesMayChange {
                            tracing::debug!(event = kind.as_deref().unwrap_or("?"), "routes may change");
                            changes.notify_one();
                        }
                    }
                }
                Some(Err(error)) => return error_chain(&error),
                None => return "closed by Marathon".into(),
            },
            // Cancel-safe: `changed` only marks a value seen when it completes.
            _ = reconnect.changed() => return "Marathon stopped answering".into(),
        }
    }
}
