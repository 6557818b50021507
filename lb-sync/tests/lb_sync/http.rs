//! A minimal HTTP/1.1 server on 127.0.0.1 for the test doubles around lb-sync (app tasks and
//! Marathon). Every connection is closed after one answer, and killing the server closes every
//! open connection at once, like a process dying.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::task::{JoinHandle, JoinSet};

/// What a server answers to one request.
pub enum Answer {
    /// A complete response.
    Full {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// A Server-Sent Events stream: `first` at once, then every message of `events` until the
    /// server is killed or the sender dropped.
    Events {
        first: String,
        events: broadcast::Receiver<String>,
    },
}

/// A request's path (with query).
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
}

type Handler = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

/// A running server; killed when dropped.
pub struct TestServer {
    pub port: u16,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `handler` on `127.0.0.1:port` (`0`: any free port).
    pub async fn start(port: u16, handler: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding a test server on 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the server aborts (and closes) them all.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    // Cancel-safe: `accept` loses no connection when dropped.
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            connections.spawn(serve(stream, handler.clone()));
                        }
                    }
                    // Cancel-safe: `join_next` only reaps finished tasks.
                    Some(_) = connections.join_next() => {}
                }
            }
        });
        TestServer { port, task: Some(task) }
    }

    /// Stops listening and closes every open connection.
    pub async fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(mut stream: TcpStream, handler: Handler) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let request = Request {
        path: text.split_whitespace().nth(1).unwrap_or_default().to_owned(),
    };
    match handler(&request) {
        Answer::Full {
            status,
            content_type,
            body,
        } => {
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Answer::Events { first, mut events } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(first.as_bytes()).await.is_err() {
                return;
            }
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if stream.write_all(event.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}

/// Sends `GET /` with `Host: host` to 127.0.0.1:`port` on a fresh connection; returns the status
/// and body, or `None` when the request failed at the connection level.
pub async fn get(port: u16, host: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten()
}
