//! Marathon's `/v2/events` stream: Server-Sent Events decoded from bytes, and what each event
//! means for the routes.

use super::wire::EventEnvelope;

/// One Server-Sent Event: the `event:` name (if any) and the `data:` lines joined by newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    pub event: Option<String>,
    pub data: String,
    /// The event was larger than the decoder keeps, so its data was dropped: what it said is
    /// unknown, so it counts as a change.
    pub truncated: bool,
}

/// The most a decoder holds of one event (its unfinished line plus its data lines). Marathon's
/// largest events (a deployment of many apps) are far smaller; a stream that never ends a line
/// must not grow the decoder without bound.
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// Decodes a Server-Sent Events byte stream incrementally: bytes go in as they arrive, whole
/// events come out. Comments (keep-alives) are dropped. Memory is bounded by the limit (plus
/// one chunk): an event over it comes out as `truncated`, without its data.
#[derive(Debug)]
pub struct SseDecoder {
    limit: usize,
    pending: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    data_bytes: usize,
    /// The current event went over the limit: its lines are dropped until it ends.
    truncated: bool,
    /// The current line went over the limit: its bytes are dropped until its newline.
    dropping_line: bool,
}

impl Default for SseDecoder {
    fn default() -> SseDecoder {
        SseDecoder::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder that holds at most `limit` bytes of one event.
    pub fn with_limit(limit: usize) -> SseDecoder {
        SseDecoder {
            limit,
            pending: Vec::new(),
            event: None,
            data: Vec::new(),
            data_bytes: 0,
            truncated: false,
            dropping_line: false,
        }
    }

    /// Feeds `bytes` and returns the events they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        self.pending.extend_from_slice(bytes);
        let mut messages = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if std::mem::take(&mut self.dropping_line) {
                // The tail of an oversized line: not a field of its own.
                continue;
            }
            let line = String::from_utf8_lossy(&line[..end]);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                if self.event.is_some() || !self.data.is_empty() || self.truncated {
                    messages.push(SseMessage {
                        event: self.event.take(),
                        data: self.data.join("\n"),
                        truncated: std::mem::take(&mut self.truncated),
                    });
                    self.data.clear();
                    self.data_bytes = 0;
                }
                continue;
            }
            if line.starts_with(':') || self.truncated {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" if self.data_bytes + value.len() > self.limit => self.truncate(),
                "data" => {
                    self.data_bytes += value.len() + 1;
                    self.data.push(value.to_owned());
                }
                // `id` and `retry` do not matter: every reconnect resyncs in full.
                _ => {}
            }
        }
        if self.pending.len() > self.limit {
            self.pending.clear();
            self.dropping_line = true;
            self.truncate();
        }
        messages
    }

    /// Drops what the current event holds; it will come out as truncated when it ends.
    fn truncate(&mut self) {
        self.truncated = true;
        self.data.clear();
        self.data_bytes = 0;
    }
}

/// What an event means for the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventEffect {
    /// Tasks, health or app definitions may have changed: read the apps again.
    RoutesMayChange,
    /// Bookkeeping of the event bus itself; nothing to do.
    Nothing,
}

/// Event types that cannot change which tasks serve which host. Anything else, including types
/// this program has never heard of, triggers a (coalesced) resync: a spurious read is cheap, a
/// missed change is not.
const IRRELEVANT: &[&str] = &[
    "event_stream_attached",
    "event_stream_detached",
    "subscribe_event",
    "unsubscribe_event",
    "framework_message_event",
    "add_health_check_event",
    "remove_health_check_event",
    "deployment_info",
];

/// The type of an event: its `event:` name, else the `eventType` in its JSON data.
pub fn event_type(message: &SseMessage) -> Option<String> {
    message
        .event
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| serde_json::from_str::<EventEnvelope>(&message.data).ok().and_then(|e| e.event_type))
}

/// What `message` means for the routes.
pub fn effect(message: &SseMessage) -> EventEffect {
    if message.truncated {
        return EventEffect::RoutesMayChange;
    }
    match event_type(message) {
        Some(kind) if IRRELEVANT.contains(&kind.as_str()) => EventEffect::Nothing,
        _ => EventEffect::RoutesMayChange,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("testdata/events.txt");

    #[test]
    fn decodes_the_recorded_stream_in_any_chunking() {
        for chunk in [1, 7, 64, RECORDED.len()] {
            let mut decoder = SseDecoder::default();
            let messages: Vec<SseMessage> = RECORDED.as_bytes().chunks(chunk).flat_map(|c| decoder.push(c)).collect();
            let kinds: Vec<Option<String>> = messages.iter().map(event_type).collect();
            assert_eq!(
                kinds,
                [
                    Some("event_stream_attached"),
                    Some("status_update_event"),
                    Some("status_update_event")
                ]
                .map(|k| k.map(String::from)),
                "chunk size {chunk}"
            );
            let effects: Vec<EventEffect> = messages.iter().map(effect).collect();
            assert_eq!(
                effects,
                [EventEffect::Nothing, EventEffect::RoutesMayChange, EventEffect::RoutesMayChange]
            );
            assert!(messages[2].data.contains("\"taskStatus\":\"TASK_RUNNING\""));
        }
    }

    #[test]
    fn decodes_crlf_comments_multiline_data_and_unnamed_events() {
        let mut decoder = SseDecoder::default();
        let messages = decoder.push(
            b": keep-alive\r\n\r\ndata: {\"eventType\":\r\ndata: \"health_status_changed_event\"}\r\n\r\nevent: subscribe_event\ndata: {}\n\n",
        );
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].data, "{\"eventType\":\n\"health_status_changed_event\"}");
        assert_eq!(event_type(&messages[0]).as_deref(), Some("health_status_changed_event"));
        assert_eq!(effect(&messages[0]), EventEffect::RoutesMayChange);
        assert_eq!(effect(&messages[1]), EventEffect::Nothing);
    }

    proptest::proptest! {
        #[test]
        fn any_stream_decodes_the_same_in_any_chunks(
            events in proptest::collection::vec(("[a-z_]{1,20}", proptest::collection::vec("[ -~]{0,30}", 1..4)), 0..8),
            cuts in proptest::collection::vec(0usize..10_000, 0..12),
            crlf in proptest::bool::ANY,
        ) {
            let newline = if crlf { "\r\n" } else { "\n" };
            let mut stream = format!(": hello{newline}{newline}");
            for (name, lines) in &events {
                stream.push_str(&format!("event: {name}{newline}"));
                for line in lines {
                    stream.push_str(&format!("data: {line}{newline}"));
                }
                stream.push_str(newline);
            }
            let bytes = stream.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort();
            let mut decoder = SseDecoder::default();
            let mut decoded = Vec::new();
            let mut from = 0;
            for to in cuts {
                decoded.extend(decoder.push(&bytes[from..to]));
                from = to;
            }
            let expected: Vec<SseMessage> = events
                .iter()
                .map(|(name, lines)| SseMessage { event: Some(name.clone()), data: lines.join("\n"), truncated: false })
                .collect();
            proptest::prop_assert_eq!(decoded, expected);
        }
    }

    #[test]
    fn unknown_events_trigger_a_resync() {
        let message = SseMessage {
            event: Some("instance_changed_event".into()),
            data: "{}".into(),
            truncated: false,
        };
        assert_eq!(effect(&message), EventEffect::RoutesMayChange);
    }

    #[test]
    fn an_endless_line_or_event_is_bounded_and_counts_as_a_change() {
        let mut decoder = SseDecoder::with_limit(1024);
        // A line that never ends: the decoder holds no more than the limit plus one chunk.
        for _ in 0..100 {
            assert!(decoder.push(&[b'x'; 500]).is_empty());
            assert!(decoder.pending.len() <= 1024 + 500, "pending grew to {}", decoder.pending.len());
        }
        let messages = decoder.push(b"\n\n");
        assert_eq!(messages.len(), 1);
        assert!(messages[0].truncated);
        assert_eq!(effect(&messages[0]), EventEffect::RoutesMayChange);

        // Endless data lines of one event (even of a type that changes nothing).
        let mut decoder = SseDecoder::with_limit(1024);
        assert!(decoder.push(b"event: deployment_info\n").is_empty());
        for _ in 0..100 {
            assert!(decoder.push(&[b"data: ".as_slice(), &[b'y'; 100], b"\n"].concat()).is_empty());
            assert!(decoder.data_bytes <= 1024);
        }
        let messages = decoder.push(b"\n");
        assert_eq!(messages.len(), 1);
        assert!(messages[0].truncated && messages[0].data.is_empty());
        assert_eq!(
            effect(&messages[0]),
            EventEffect::RoutesMayChange,
            "a truncated event may have said anything"
        );

        // The stream goes on normally afterwards.
        let messages = decoder.push(b"event: subscribe_event\ndata: {}\n\n");
        assert_eq!(
            messages,
            [SseMessage {
                event: Some("subscribe_event".into()),
                data: "{}".into(),
                truncated: false
            }]
        );
    }
}
