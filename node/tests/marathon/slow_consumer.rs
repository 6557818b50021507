//! A subscriber of `/v2/events` that stops reading: the others keep receiving every event, and
//! the stalled one is cut off once it falls a bounded number of events behind, instead of the
//! server buffering for it without end (Marathon closes the connection of a slow consumer).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Platform;

/// Events the test causes; each is far larger than the server's socket and write buffers can
/// hold for the stalled client in total, and they outnumber the event ring (1024) well.
const EVENTS: usize = 1500;
/// Padding that makes each event about 16 KiB, so that buffers fill after a few hundred.
const PADDING: usize = 16 * 1024;
const ATTACHED: &str = "event: event_stream_attached";

fn request(port: u16, forwarded_for: &str) -> String {
    format!(
        "GET /v2/events?event_type=event_stream_attached HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Accept: text/event-stream\r\nX-Forwarded-For: {forwarded_for}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_event_subscriber_is_cut_off_and_holds_up_no_other() {
    let platform = Platform::start(1, 1).await;
    let port = platform.marathons[0].port;
    let base = platform.marathons[0].url();

    // A reader that keeps up, counting the events it gets.
    let mut reader = super::event_stream(&format!("{base}/v2/events?event_type=event_stream_attached")).await;
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let reader_end = tokio::spawn(async move {
        let mut tail = String::new();
        loop {
            match reader.chunk().await {
                Ok(Some(chunk)) => tail.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) => return "the server ended it".to_string(),
                Err(e) => return format!("{e}"),
            }
            let complete = tail.rfind('\n').map_or(0, |i| i + 1);
            counter.fetch_add(tail[..complete].matches(ATTACHED).count(), Ordering::SeqCst);
            tail.drain(..complete);
        }
    });

    // A subscriber that never reads, with a small receive window.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    stalled.write_all(request(port, "stalled").as_bytes()).await.unwrap();

    // Each subscription is an event sent to every subscriber: EVENTS large ones.
    let padding = "x".repeat(PADDING);
    for _ in 0..EVENTS {
        let mut attach = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        attach.write_all(request(port, &padding).as_bytes()).await.unwrap();
        // The event is sent before the response starts: its first bytes mean it was.
        let mut first = [0u8; 1];
        attach.read_exact(&mut first).await.unwrap();
    }

    let all = tokio::time::timeout(Duration::from_secs(60), async {
        while read.load(Ordering::SeqCst) < EVENTS {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if all.is_err() {
        let why = if reader_end.is_finished() {
            reader_end.await.unwrap()
        } else {
            "still open".into()
        };
        panic!(
            "the reader received {} of {EVENTS} events in 60 s; its stream: {why}\n{}",
            read.load(Ordering::SeqCst),
            platform.marathons[0].process.log_text()
        );
    }

    // The stalled subscriber reads at last: what was buffered for it, then the end.
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = stalled.read(&mut buffer).await.unwrap_or(0);
            received.extend_from_slice(&buffer[..n]);
            // EOF, or the last chunk of a chunked response.
            if n == 0 || received.ends_with(b"\r\n0\r\n\r\n") {
                return;
            }
        }
    })
    .await;
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{}", &received[..received.len().min(200)]);
    assert!(ended.is_ok(), "the stalled subscriber's stream was ended by the server");
    let got = received.matches(ATTACHED).count();
    assert!(
        got < EVENTS,
        "the stalled subscriber got {got} of {EVENTS} events: cut off, not buffered for"
    );
}
