//! A stand-in for Marathon's narrow edge lb-sync reads — `GET /v2/apps?embed=apps.tasks` and the
//! `/v2/events` stream — serving apps and events the test controls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::http::{Answer, TestServer};

/// A task as the test describes it.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub id: String,
    pub port: u16,
    pub state: &'static str,
    /// `None`: no health check results; `Some(alive)`: one result.
    pub alive: Option<bool>,
}

impl TaskSpec {
    /// A running task on 127.0.0.1:`port`, healthy.
    pub fn running(id: &str, port: u16) -> TaskSpec {
        TaskSpec {
            id: id.to_owned(),
            port,
            state: "TASK_RUNNING",
            alive: Some(true),
        }
    }
}

/// The app definitions and tasks the doubles serve, and which of them leads: what Marathon
/// keeps in ZooKeeper, shared by every double of a test.
#[derive(Clone, Default)]
pub struct Cluster {
    apps: Arc<Mutex<BTreeMap<String, Value>>>,
    leader: Arc<Mutex<Option<u16>>>,
}

impl Cluster {
    /// Makes the double on `port` the leader every double names on `/v2/leader` (`None`: an
    /// election is under way, `/v2/leader` answers 404).
    pub fn set_leader(&self, port: Option<u16>) {
        *self.leader.lock().unwrap() = port;
    }

    /// Sets app `id` (with health checks: one) to `tasks`, with `labels`.
    pub fn set_app(&self, id: &str, labels: &[(&str, &str)], tasks: &[TaskSpec]) {
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|t| {
                let mut task = json!({
                    "id": format!("{}.{}", id.trim_start_matches('/').replace('/', "_"), t.id),
                    "appId": id, "host": "127.0.0.1", "ports": [t.port], "state": t.state,
                    "slaveId": "agent-1", "stagedAt": "2026-01-01T00:00:00.000Z",
                });
                if let Some(alive) = t.alive {
                    task["healthCheckResults"] = json!([{"alive": alive, "consecutiveFailures": if alive {0} else {3}}]);
                }
                task
            })
            .collect();
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let app = json!({
            "id": id, "cmd": "serve", "instances": tasks.len(), "labels": labels,
            "healthChecks": [{"protocol": "HTTP", "path": "/", "portIndex": 0}],
            "tasks": tasks,
        });
        self.apps.lock().unwrap().insert(id.to_owned(), app);
    }

    pub fn remove_app(&self, id: &str) {
        self.apps.lock().unwrap().remove(id);
    }

    fn app_list(&self) -> String {
        let apps: Vec<Value> = self.apps.lock().unwrap().values().cloned().collect();
        json!({ "apps": apps }).to_string()
    }
}

/// One Marathon double, listening on 127.0.0.1.
pub struct MarathonDouble {
    pub server: TestServer,
    events: broadcast::Sender<String>,
}

impl MarathonDouble {
    /// Serves `cluster` on `port` (`0`: any free port).
    pub async fn start(port: u16, cluster: Cluster) -> MarathonDouble {
        let (events, _) = broadcast::channel(1024);
        let (sender, served) = (events.clone(), cluster);
        let server = TestServer::start(port, move |request| {
            let leader = *served.leader.lock().unwrap();
            if let (true, Some(leader)) = (request.path.starts_with("/v2/leader"), leader) {
                Answer::Full {
                    status: 200,
                    content_type: "application/json",
                    body: json!({"leader": format!("127.0.0.1:{leader}")}).to_string(),
                }
            } else if request.path.starts_with("/v2/apps") {
                Answer::Full {
                    status: 200,
                    content_type: "application/json",
                    body: served.app_list(),
                }
            } else if request.path.starts_with("/v2/events") {
                Answer::Events {
                    first: sse("event_stream_attached", &json!({"remoteAddress": "127.0.0.1"})),
                    events: sender.subscribe(),
                }
            } else {
                Answer::Full {
                    status: 404,
                    content_type: "application/json",
                    body: r#"{"message":"not found"}"#.into(),
                }
            }
        })
        .await;
        MarathonDouble { server, events }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// Sends a `status_update_event` for `app_id` to every follower.
    pub fn publish_status_update(&self, app_id: &str, status: &str) {
        self.publish(
            "status_update_event",
            &json!({"appId": app_id, "taskStatus": status, "taskId": "x", "host": "127.0.0.1"}),
        );
    }

    /// Sends an event of `kind` to every follower.
    pub fn publish(&self, kind: &str, data: &Value) {
        let _ = self.events.send(sse(kind, data));
    }

    /// Dies: no more connections, every open stream closed.
    pub async fn kill(&mut self) {
        self.server.kill().await;
    }
}

fn sse(kind: &str, data: &Value) -> String {
    let mut data = data.clone();
    data["eventType"] = json!(kind);
    data["timestamp"] = json!("2026-01-01T00:00:00.000Z");
    format!("event: {kind}\ndata: {data}\n\n")
}
