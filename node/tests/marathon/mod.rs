//! Marathon on a real ZooKeeper ensemble and the sim's Mesos master and agents, all as
//! processes on 127.0.0.1.

mod api;
mod conformance;
mod deployments;
mod docker_apps;
mod failover;
mod health;
mod restart;
mod slow_consumer;
mod store;
mod survives_any_input;

use std::time::Duration;

use serde_json::Value;

use crate::support::eventually;
use crate::support::free_port;
use crate::support::mesos::MesosCluster;
use crate::support::process::NodeProcess;

/// A Marathon process and where it answers.
pub struct MarathonNode {
    pub port: u16,
    pub process: NodeProcess,
}

impl MarathonNode {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Mesos (one master, agents in zones a, b, c) plus `marathons` Marathons.
pub struct Platform {
    pub mesos: MesosCluster,
    pub marathons: Vec<MarathonNode>,
    pub http: reqwest::Client,
}

/// Agent resources; every agent gets its own port range because they all share 127.0.0.1.
pub fn agent(i: usize) -> String {
    format!("cpus:2;mem:1024;disk:1000;ports:[{}-{}]", 31000 + i * 200, 31199 + i * 200)
}

impl Platform {
    pub async fn start(marathons: usize, agents: usize) -> Platform {
        let resources: Vec<String> = (0..agents).map(agent).collect();
        let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
        let mesos = MesosCluster::start(1, &resources).await;
        let mut platform = Platform {
            mesos,
            marathons: Vec::new(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
        };
        for _ in 0..marathons {
            platform.start_marathon();
        }
        platform.leader().await;
        platform
    }

    pub fn start_marathon(&mut self) {
        let port = free_port();
        let process = NodeProcess::spawn(
            "marathon",
            [
                format!("--master={}", self.mesos.zk.url("mesos")),
                format!("--zk={}", self.mesos.zk.url("marathon")),
                format!("--http_port={port}"),
                "--hostname=127.0.0.1".into(),
                "--zk_session_timeout=3000".into(),
                "--task_launch_timeout=60000".into(),
            ],
        );
        self.marathons.push(MarathonNode { port, process });
    }

    /// The index of the leading Marathon, once every running Marathon agrees on it.
    pub async fn leader(&self) -> usize {
        eventually(Duration::from_secs(30), "one Marathon leader", || async {
            let mut leader = None;
            for m in self.marathons.iter() {
                let info: Value = crate::support::try_get_json(&self.http, &format!("{}/v2/info", m.url())).await?;
                let named = info["leader"].as_str()?.to_owned();
                if leader.get_or_insert(named.clone()) != &named {
                    return None;
                }
            }
            let leader = leader?;
            self.marathons.iter().position(|m| leader.ends_with(&format!(":{}", m.port)))
        })
        .await
    }

    /// Waits until `app` has `n` running tasks (healthy too, if `healthy`); returns its tasks.
    pub async fn await_running(&self, index: usize, app: &str, n: usize, healthy: bool) -> Vec<Value> {
        eventually(Duration::from_secs(60), &format!("{app} with {n} running tasks"), || async {
            let body: Value = crate::support::try_get_json(&self.http, &format!("{}/v2/apps{app}", self.marathons[index].url())).await?;
            let app = &body["app"];
            let tasks = app["tasks"].as_array()?.clone();
            let running = tasks.iter().filter(|t| t["state"] == "TASK_RUNNING").count();
            let ok = running == n && tasks.len() == n && (!healthy || app["tasksHealthy"] == n);
            ok.then_some(tasks)
        })
        .await
    }
}

/// A small web app answering with its task id, with an HTTP health check on `health_path`.
/// Waits until the Marathon at `base` runs no deployment (30 s at most).
pub async fn settled(http: &reqwest::Client, base: &str) {
    crate::support::eventually(Duration::from_secs(30), "no deployment running", || async {
        let deployments = crate::support::try_get_json(http, &format!("{base}/v2/deployments")).await?;
        deployments.as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;
}

/// `GET {url}` as an event stream, on a client of its own: the platform's gives up on a
/// response after 10 s, which a stream outlives on a loaded machine.
pub async fn event_stream(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

pub fn web_app(id: &str, instances: u32, health_path: &str, constraints: &str) -> String {
    format!(
        r#"{{"id":"{id}","instances":{instances},"cpus":0.1,"mem":32,
            "cmd":"mkdir -p site && echo $MESOS_TASK_ID > site/index.html && cd site && exec python3 -m http.server --bind 127.0.0.1 $PORT0",
            "constraints":{constraints},
            "healthChecks":[{{"protocol":"HTTP","path":"{health_path}","portIndex":0,"gracePeriodSeconds":3,"intervalSeconds":1,"timeoutSeconds":1,"maxConsecutiveFailures":2}}],
            "upgradeStrategy":{{"minimumHealthCapacity":0.5,"maximumOverCapacity":0.5}},
            "backoffSeconds":0.5}}"#
    )
}
