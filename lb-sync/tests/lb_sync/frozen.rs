//! Tasks that accept connections and never answer (a paused container, a frozen process):
//! nginx passes idempotent requests over to the next task within its read timeout, and never
//! replays a POST it already sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::DOMAIN;
use super::backend::task_name;
use super::http::{Answer, TestServer, get};
use super::marathon_double::{Cluster, MarathonDouble, TaskSpec};
use super::nginx::NginxServer;
use super::start_lb_sync;
use crate::support::eventually;

/// A task that reads each request and never answers; counts the requests it read, by method.
struct FrozenTask {
    port: u16,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl FrozenTask {
    async fn start() -> FrozenTask {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    let Ok(n) = socket.read(&mut buffer).await else { return };
                    if n > 0 {
                        let method = String::from_utf8_lossy(&buffer[..n])
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        seen.lock().unwrap().push(method);
                    }
                    // Frozen: hold the connection open, answer nothing.
                    std::future::pending::<()>().await;
                    drop(socket);
                });
            }
        });
        FrozenTask {
            port,
            requests,
            _task: task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A task answering `task <name>` and counting every request it got.
async fn counting_task(name: &str) -> (TestServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let body = format!("task {name}\n");
    let server = TestServer::start(0, move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Answer::Full {
            status: 200,
            content_type: "text/plain",
            body: body.clone(),
        }
    })
    .await;
    (server, count)
}

/// Serves app `/app` from `frozen` and `good` through a fresh nginx, and waits until nginx
/// runs with routes naming both (no request sent yet, so no task is marked failed).
async fn serve(frozen: &FrozenTask, good: &TestServer) -> (NginxServer, MarathonDouble, crate::support::process::NodeProcess) {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    cluster.set_app(
        "/app",
        &[],
        &[TaskSpec::running("frozen", frozen.port), TaskSpec::running("good", good.port)],
    );
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let (a, b) = (format!("127.0.0.1:{}", frozen.port), format!("127.0.0.1:{}", good.port));
    eventually(Duration::from_secs(10), "lb-sync to route both tasks", || async {
        let text = nginx.routes_text();
        (text.contains(&a) && text.contains(&b)).then_some(())
    })
    .await;
    // The routes file is written before nginx is told to reload: wait for the reload, then for
    // the old worker (which still knows no route) to be gone.
    eventually(Duration::from_secs(10), "nginx to reload with the routes", || async {
        (nginx.reloads() >= 1).then_some(())
    })
    .await;
    nginx.wait_reloaded().await;
    (nginx, marathon, lb_sync)
}

#[tokio::test]
async fn a_task_that_never_answers_is_passed_over() {
    let frozen = FrozenTask::start().await;
    let (good, answered) = counting_task("good").await;
    let (nginx, _marathon, _lb_sync) = serve(&frozen, &good).await;
    let host = format!("app.{DOMAIN}");
    // Round robin sends one of the first two requests to the frozen task: nginx gives up on it
    // after its read timeout and the good task answers. With nginx's default 60 s timeout the
    // request would outlast the client (which waits 10 s) and fail.
    for _ in 0..4 {
        let answer = get(nginx.port, &host).await;
        let name = answer
            .as_ref()
            .and_then(|(status, body)| (*status == 200).then(|| task_name(body)))
            .flatten();
        assert_eq!(name, Some("good"), "answer through nginx: {answer:?}");
    }
    assert_eq!(frozen.requests(), ["GET"], "the frozen task was tried once, then left alone");
    assert_eq!(answered.load(Ordering::SeqCst), 4);
}

/// Sends `POST /` with a small body through nginx; returns the status.
async fn post(port: u16, host: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let body = "order=1";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&response).split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_post_sent_to_a_frozen_task_is_not_replayed_on_another() {
    let frozen = FrozenTask::start().await;
    let (good, answered) = counting_task("good").await;
    let (nginx, _marathon, _lb_sync) = serve(&frozen, &good).await;
    let host = format!("app.{DOMAIN}");
    // Round robin: of two POSTs, one reaches each task. The one the frozen task swallowed may
    // have had its effect there, so nginx answers 504 instead of sending it to the good task.
    let mut statuses = vec![post(nginx.port, &host).await, post(nginx.port, &host).await];
    statuses.sort();
    assert_eq!(statuses, [Some(200), Some(504)]);
    assert_eq!(frozen.requests(), ["POST"]);
    assert_eq!(answered.load(Ordering::SeqCst), 1, "the good task got only its own POST");
}
