//! Cluster health as seen from the host: every probe goes to a node's address on the
//! cluster network or to the elb on 127.0.0.1, with short timeouts.
//!
//! A cluster is healthy when ZooKeeper has a quorum with one leader, the Mesos masters agree
//! on one leader that has every agent registered, Marathon has a leader, and every lb answers
//! `/status` both directly and through the elb.

use std::net::Ipv4Addr;
use std::time::Duration;

use paas_core::Topology;
use paas_core::http::HttpClient;
use paas_core::render::ports;
use paas_core::topology::Role;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The result of one round of probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// ZooKeeper mode per master (`leader`, `follower`, `standalone`), `None` when it does not serve.
    pub zookeeper: Vec<(String, Option<String>)>,
    /// Masters needed for a quorum.
    pub quorum: u32,
    /// The Mesos leader's pid (`master@10.20.0.10:5050`), as the masters report it.
    pub mesos_leader: Option<String>,
    /// Agents registered and active with the Mesos leader.
    pub agents_registered: u32,
    pub agents_expected: u32,
    /// Marathon's leader (`host:port`).
    pub marathon_leader: Option<String>,
    /// Whether each lb answers `/status` with 200.
    pub lbs: Vec<(String, bool)>,
    /// Whether the elb on 127.0.0.1 answers `/status` with 200.
    pub elb: bool,
}

impl Health {
    /// Whether ZooKeeper serves with a quorum and exactly one leader (or one standalone server).
    pub fn zookeeper_ok(&self) -> bool {
        let serving = self.zookeeper.iter().filter(|(_, m)| m.is_some()).count() as u32;
        let leaders = self
            .zookeeper
            .iter()
            .filter(|(_, m)| matches!(m.as_deref(), Some("leader") | Some("standalone")))
            .count();
        serving >= self.quorum && leaders == 1
    }

    pub fn mesos_ok(&self) -> bool {
        self.mesos_leader.is_some() && self.agents_registered >= self.agents_expected
    }

    pub fn marathon_ok(&self) -> bool {
        self.marathon_leader.is_some()
    }

    pub fn lbs_ok(&self) -> bool {
        self.elb && self.lbs.iter().all(|(_, ok)| *ok)
    }

    /// Every check passes.
    pub fn is_healthy(&self) -> bool {
        self.zookeeper_ok() && self.mesos_ok() && self.marathon_ok() && self.lbs_ok()
    }

    /// The checks that do not pass yet, in words, for progress and error messages.
    pub fn waiting_for(&self) -> Vec<String> {
        let mut waiting = Vec::new();
        if !self.zookeeper_ok() {
            let serving = self.zookeeper.iter().filter(|(_, m)| m.is_some()).count();
            waiting.push(format!(
                "ZooKeeper quorum ({serving} of {} serving, {} needed)",
                self.zookeeper.len(),
                self.quorum
            ));
        }
        match &self.mesos_leader {
            None => waiting.push("a Mesos leader".into()),
            Some(_) if self.agents_registered < self.agents_expected => waiting.push(format!(
                "Mesos agents ({} of {} registered)",
                self.agents_registered, self.agents_expected
            )),
            Some(_) => {}
        }
        if !self.marathon_ok() {
            waiting.push("a Marathon leader".into());
        }
        let down: Vec<&str> = self.lbs.iter().filter(|(_, ok)| !ok).map(|(n, _)| n.as_str()).collect();
        if !down.is_empty() {
            waiting.push(format!("lbs answering /status ({})", down.join(", ")));
        }
        if !self.elb {
            waiting.push("the elb answering /status".into());
        }
        waiting
    }
}

/// Probes every part of the cluster once, concurrently.
pub async fn probe(topology: &Topology, elb_port: u16) -> Health {
    let masters: Vec<(String, Ipv4Addr)> = topology.nodes_of(Role::Master).map(|n| (n.name.clone(), n.address)).collect();
    let lbs: Vec<(String, Ipv4Addr)> = topology.nodes_of(Role::Lb).map(|n| (n.name.clone(), n.address)).collect();

    let zookeeper = futures::future::join_all(masters.iter().map(|(name, address)| async move {
        let answer = four_letter(&format!("{address}:{}", ports::ZOOKEEPER), "srvr").await;
        let mode = answer.and_then(|a| a.lines().find_map(|l| l.strip_prefix("Mode: ").map(|m| m.trim().to_string())));
        (name.clone(), mode)
    }));
    let mesos = futures::future::join_all(masters.iter().map(|(_, address)| async move {
        let (status, body) = http_get(&format!("{address}:{}", ports::MESOS_MASTER), "/master/state").await?;
        (status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
            .flatten()
    }));
    let marathon = futures::future::join_all(masters.iter().map(|(_, address)| async move {
        let (status, body) = http_get(&format!("{address}:{}", ports::MARATHON), "/v2/leader").await?;
        let value: serde_json::Value = (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()?;
        value.get("leader").and_then(|l| l.as_str()).map(str::to_string)
    }));
    let lb_checks = futures::future::join_all(lbs.iter().map(|(name, address)| async move {
        let ok = http_get(&format!("{address}:{}", ports::HTTP), "/status")
            .await
            .is_some_and(|(s, _)| s == 200);
        (name.clone(), ok)
    }));
    let elb = async {
        http_get(&format!("127.0.0.1:{elb_port}"), "/status")
            .await
            .is_some_and(|(s, _)| s == 200)
    };
    let (zookeeper, mesos, marathon, lbs, elb) = tokio::join!(zookeeper, mesos, marathon, lb_checks, elb);

    // The leader is the master whose own pid is the leader pid every state names.
    let states: Vec<serde_json::Value> = mesos.into_iter().flatten().collect();
    let mesos_leader = states.iter().find_map(|s| {
        s.get("leader")
            .and_then(|l| l.as_str())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
    });
    let agents_registered = states
        .iter()
        .find(|s| s.get("pid").and_then(|p| p.as_str()).is_some() && s.get("pid").and_then(|p| p.as_str()) == mesos_leader.as_deref())
        .and_then(|s| s.get("activated_slaves").and_then(|a| a.as_f64()))
        .unwrap_or(0.0) as u32;
    Health {
        zookeeper,
        quorum: topology.quorum,
        mesos_leader,
        agents_registered,
        agents_expected: topology.nodes_of(Role::Slave).count() as u32,
        marathon_leader: marathon.into_iter().flatten().next(),
        lbs,
        elb,
    }
}

/// A ZooKeeper four-letter command; `None` when the server does not answer.
pub async fn four_letter(address: &str, command: &str) -> Option<String> {
    let mut stream = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    stream.write_all(command.as_bytes()).await.ok()?;
    let mut answer = String::new();
    tokio::time::timeout(PROBE_TIMEOUT, stream.read_to_string(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(answer)
}

/// A plain HTTP GET: status and body, or `None` when nothing answers in time.
pub async fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    http_request(address, "GET", path, None).await
}

/// One HTTP request with an optional JSON body, through the client the CLI uses too
/// (`paas_core::http`): status and body, or `None` when nothing answers in time.
pub async fn http_request(address: &str, method: &str, path: &str, json: Option<&str>) -> Option<(u16, String)> {
    static CLIENT: std::sync::OnceLock<HttpClient> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(|| HttpClient::new(PROBE_TIMEOUT, 2 * PROBE_TIMEOUT));
    let answer = client.request(address, None, method, path, json).await.ok()?;
    Some((answer.status, answer.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Health {
        Health {
            zookeeper: vec![
                ("master-1".into(), Some("follower".into())),
                ("master-2".into(), Some("leader".into())),
                ("master-3".into(), None),
            ],
            quorum: 2,
            mesos_leader: Some("master@10.20.0.10:5050".into()),
            agents_registered: 5,
            agents_expected: 5,
            marathon_leader: Some("10.20.0.10:8080".into()),
            lbs: vec![("lb-1".into(), true), ("lb-2".into(), true)],
            elb: true,
        }
    }

    #[test]
    fn a_quorum_with_one_leader_is_healthy_even_with_a_master_down() {
        assert!(healthy().is_healthy());
        assert!(healthy().waiting_for().is_empty());
    }

    #[test]
    fn each_missing_part_is_named() {
        let mut h = healthy();
        h.zookeeper[0].1 = None;
        h.agents_registered = 3;
        h.marathon_leader = None;
        h.lbs[1].1 = false;
        assert!(!h.is_healthy());
        assert_eq!(
            h.waiting_for(),
            [
                "ZooKeeper quorum (1 of 3 serving, 2 needed)",
                "Mesos agents (3 of 5 registered)",
                "a Marathon leader",
                "lbs answering /status (lb-2)",
            ]
        );
    }
}
