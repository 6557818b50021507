//! RecordIO, the framing of the scheduler API's event stream (`docs/recordio.md`): each record is
//! its length in bytes as decimal ASCII, a `\n`, then the record (here, one JSON `Event`).

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Records larger than this are refused rather than buffered without bound.
const MAX_RECORD: usize = 64 * 1024 * 1024;

/// Why a RecordIO stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordIoError {
    #[error("RecordIO length prefix {0:?} is not a decimal number")]
    Length(String),
    #[error("RecordIO record of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("RecordIO record is not the expected JSON")]
    Json(#[source] serde_json::Error),
    #[error("RecordIO stream ended in the middle of a record")]
    Truncated,
    #[error("reading the RecordIO stream")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Frames one value as a RecordIO record of its JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("wire types always serialize");
    let mut record = format!("{}\n", json.len()).into_bytes();
    record.extend_from_slice(&json);
    record
}

/// Incremental decoder: feed bytes as they arrive, take whole records out.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record, `Ok(None)` when more bytes are needed. Fails on a malformed
    /// length prefix.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') else {
            if self.buffer.len() > 20 {
                let prefix = String::from_utf8_lossy(&self.buffer[..20]).into_owned();
                return Err(RecordIoError::Length(prefix));
            }
            return Ok(None);
        };
        let prefix = String::from_utf8_lossy(&self.buffer[..newline]).into_owned();
        let length: usize = prefix.trim().parse().map_err(|_| RecordIoError::Length(prefix.clone()))?;
        if length > MAX_RECORD {
            return Err(RecordIoError::TooLarge(length));
        }
        let end = newline + 1 + length;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let record = self.buffer[newline + 1..end].to_vec();
        self.buffer.drain(..end);
        Ok(Some(record))
    }

    /// Whether bytes of an unfinished record remain.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// Turns a byte stream (e.g. `reqwest::Response::bytes_stream()`) into a stream of decoded
/// JSON records. The stream ends when the bytes end; errors are yielded and end it.
pub fn decode_stream<T, S, B, E>(bytes: S) -> impl Stream<Item = Result<T, RecordIoError>>
where
    T: DeserializeOwned,
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::error::Error + Send + Sync + 'static,
{
    let state = (bytes, Decoder::default(), false);
    futures::stream::unfold(state, |(mut bytes, mut decoder, done)| async move {
        if done {
            return None;
        }
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => {
                    let item = serde_json::from_slice(&record).map_err(RecordIoError::Json);
                    return Some((item, (bytes, decoder, false)));
                }
                Ok(None) => {}
                Err(e) => return Some((Err(e), (bytes, decoder, true))),
            }
            match bytes.next().await {
                Some(Ok(chunk)) => decoder.push(chunk.as_ref()),
                Some(Err(e)) => {
                    let error = RecordIoError::Transport(Box::new(e));
                    return Some((Err(error), (bytes, decoder, true)));
                }
                None if decoder.has_partial() => {
                    return Some((Err(RecordIoError::Truncated), (bytes, decoder, true)));
                }
                None => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::v1::{Event, EventType};

    #[test]
    fn encodes_length_newline_json() {
        let record = encode(&Event::heartbeat());
        assert_eq!(record, b"20\n{\"type\":\"HEARTBEAT\"}");
    }

    #[test]
    fn decodes_records_split_anywhere() {
        let mut bytes = encode(&Event::heartbeat());
        bytes.extend(encode(&Event::error("bye")));
        for split in 0..bytes.len() {
            let mut decoder = Decoder::default();
            let mut records = Vec::new();
            for chunk in [&bytes[..split], &bytes[split..]] {
                decoder.push(chunk);
                while let Some(record) = decoder.next_record().unwrap() {
                    records.push(serde_json::from_slice::<Event>(&record).unwrap());
                }
            }
            assert_eq!(records.len(), 2, "split at {split}");
            assert_eq!(records[1].kind, EventType::Error);
        }
    }

    #[test]
    fn rejects_bad_prefix() {
        let mut decoder = Decoder::default();
        decoder.push(b"abc\n{}");
        assert!(matches!(decoder.next_record(), Err(RecordIoError::Length(_))));
    }

    #[tokio::test]
    async fn stream_of_chunks() {
        let bytes = encode(&Event::heartbeat());
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(3).map(|c| Ok(c.to_vec())).collect();
        let events: Vec<_> = decode_stream::<Event, _, _, _>(futures::stream::iter(chunks)).collect().await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].as_ref().unwrap().kind, EventType::Heartbeat);
    }
}
