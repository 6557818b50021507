//! App tasks: HTTP servers on 127.0.0.1 that answer with their own name.

use super::http::{Answer, TestServer};

/// One task of an app, serving `task <name>`.
pub struct TaskServer {
    pub name: String,
    server: TestServer,
}

impl TaskServer {
    pub async fn start(name: &str) -> TaskServer {
        let body = format!("task {name}\n");
        let server = TestServer::start(0, move |_| Answer::Full {
            status: 200,
            content_type: "text/plain",
            body: body.clone(),
        })
        .await;
        TaskServer {
            name: name.to_owned(),
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Dies at once: the port refuses connections, open ones are closed.
    pub async fn kill(&mut self) {
        self.server.kill().await;
    }
}

/// The task name in an answer of a [`TaskServer`].
pub fn task_name(body: &str) -> Option<&str> {
    body.trim().strip_prefix("task ")
}
