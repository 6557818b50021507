//! A Mesos cluster of `paas-node` processes on a real ZooKeeper ensemble, with fast timeouts so
//! that failover tests take seconds.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::process::NodeProcess;
use super::zookeeper::ZkEnsemble;
use super::{eventually, free_port};

/// ZooKeeper session timeout of the masters and agents in tests.
pub const ZK_SESSION_TIMEOUT: &str = "3secs";
/// Agent ping timeout and how many may be missed: an agent is removed about 3 s after it dies.
pub const AGENT_PING_TIMEOUT: &str = "1secs";
pub const MAX_AGENT_PING_TIMEOUTS: &str = "3";

/// One master process.
pub struct MasterNode {
    pub port: u16,
    pub process: NodeProcess,
}

impl MasterNode {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// One agent process with its work directory.
pub struct AgentNode {
    pub port: u16,
    pub process: NodeProcess,
    pub work_dir: tempfile::TempDir,
}

impl AgentNode {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `stdout` files of every task sandbox whose task id is `task_id`.
    pub fn sandbox_stdouts(&self, task_id: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.work_dir.path().to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|n| n == "stdout") && path.components().any(|c| c.as_os_str() == task_id) {
                    found.push(path);
                }
            }
        }
        found
    }
}

/// ZooKeeper, masters and agents; everything is killed on drop.
pub struct MesosCluster {
    pub agents: Vec<AgentNode>,
    pub masters: Vec<MasterNode>,
    pub zk: ZkEnsemble,
    pub http: reqwest::Client,
}

impl MesosCluster {
    /// Starts a ZooKeeper ensemble, `masters` masters and one agent per entry of `agents`
    /// (its `--resources`), then waits until a leader has every agent registered.
    pub async fn start(masters: usize, agents: &[&str]) -> Self {
        let zk = tokio::task::spawn_blocking(ZkEnsemble::start).await.expect("starting ZooKeeper");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let mut cluster = Self {
            agents: Vec::new(),
            masters: Vec::new(),
            zk,
            http,
        };
        for _ in 0..masters {
            cluster.start_master();
        }
        for (i, resources) in agents.iter().enumerate() {
            cluster.start_agent(resources, &format!("zone:{}", ["a", "b", "c"][i % 3]));
        }
        let expected = agents.len();
        let cluster_ref = &cluster;
        eventually(Duration::from_secs(30), "every agent registered with a leader", || async move {
            let state = cluster_ref.leader_state().await?;
            (state["slaves"].as_array()?.len() == expected).then_some(())
        })
        .await;
        cluster
    }

    /// Starts one more master.
    pub fn start_master(&mut self) {
        let port = free_port();
        let process = NodeProcess::spawn(
            "mesos-master",
            [
                "--zk".to_owned(),
                self.zk.url("mesos"),
                "--port".into(),
                port.to_string(),
                "--ip".into(),
                "127.0.0.1".into(),
                "--quorum".into(),
                "2".into(),
                "--zk_session_timeout".into(),
                ZK_SESSION_TIMEOUT.into(),
                "--agent_ping_timeout".into(),
                AGENT_PING_TIMEOUT.into(),
                "--max_agent_ping_timeouts".into(),
                MAX_AGENT_PING_TIMEOUTS.into(),
                "--allocation_interval".into(),
                "200ms".into(),
                "--scheduler_heartbeat_interval".into(),
                "2secs".into(),
                "--agent_reregister_timeout".into(),
                "30secs".into(),
            ],
        );
        self.masters.push(MasterNode { port, process });
    }

    /// Starts one more agent with these `--resources` and `--attributes`.
    pub fn start_agent(&mut self, resources: &str, attributes: &str) {
        let port = free_port();
        let work_dir = tempfile::tempdir().expect("agent work dir");
        let process = NodeProcess::spawn(
            "mesos-agent",
            [
                "--master".to_owned(),
                self.zk.url("mesos"),
                "--port".into(),
                port.to_string(),
                "--ip".into(),
                "127.0.0.1".into(),
                "--resources".into(),
                resources.into(),
                "--attributes".into(),
                attributes.into(),
                "--work_dir".into(),
                work_dir.path().display().to_string(),
                "--zk_session_timeout".into(),
                ZK_SESSION_TIMEOUT.into(),
                "--executor_shutdown_grace_period".into(),
                "1secs".into(),
            ],
        );
        self.agents.push(AgentNode { port, process, work_dir });
    }

    /// GETs JSON from a URL; `None` on any failure.
    pub async fn get_json(&self, url: &str) -> Option<Value> {
        let response = self.http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// The index (in `masters`) of the master that says it leads, if any.
    pub async fn leader_index(&self) -> Option<usize> {
        for (i, master) in self.masters.iter().enumerate() {
            if master.process.pid().is_none() {
                continue;
            }
            let Some(state) = self.get_json(&format!("{}/master/state", master.url())).await else {
                continue;
            };
            if state["leader"].is_string() && state["leader"] == state["pid"] {
                return Some(i);
            }
        }
        None
    }

    /// The leading master's URL.
    pub async fn leader_url(&self) -> Option<String> {
        Some(self.masters[self.leader_index().await?].url())
    }

    /// `/master/state` of the leading master.
    pub async fn leader_state(&self) -> Option<Value> {
        let url = self.leader_url().await?;
        self.get_json(&format!("{url}/master/state")).await
    }
}
