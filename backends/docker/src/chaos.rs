//! Chaos on the sim: `paas_scenarios`' [`Platform`] on Docker. Node operations go through the backend's `node_op`;
//! network faults are iptables rules in two chains of the node's own network namespace
//! (`PAAS-CHAOS-IN`, `PAAS-CHAOS-OUT`), so clearing them is a flush; delay is `paas-node
//! netdelay` on an NFQUEUE (the kernel here has no `tc netem`). Observation asks the masters
//! directly on the cluster network, as `paas sim status` does.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use async_trait::async_trait;
use paas_core::app::AppId;
use paas_core::render::ports;
use paas_core::resource::ResourceKind;
use paas_core::{Backend, NodeOp, Role};
use paas_scenarios::platform::{AppView, ClusterView, NetRule, NodeInfo, NodeState, Platform, PlatformError};
use serde_json::Value;

use crate::container::container_name;
use crate::health;
use crate::sim::Sim;

/// The NFQUEUE number `delay` uses.
const DELAY_QUEUE: u16 = 7;

pub struct SimPlatform {
    sim: Sim,
}

impl SimPlatform {
    pub fn new(sim: Sim) -> SimPlatform {
        SimPlatform { sim }
    }

    fn cluster(&self) -> &str {
        &self.sim.spec.name
    }

    fn masters(&self) -> Vec<(String, Ipv4Addr)> {
        self.sim
            .topology
            .nodes_of(Role::Master)
            .map(|n| (n.name.clone(), n.address))
            .collect()
    }

    fn name_of(&self, address: &str) -> Option<String> {
        self.sim
            .topology
            .nodes
            .iter()
            .find(|n| n.address.to_string() == address)
            .map(|n| n.name.clone())
    }

    /// Runs a shell script in a node; fails with its output when it exits non-zero.
    async fn shell(&self, node: &str, what: &str, script: &str) -> Result<String, PlatformError> {
        let container = container_name(self.cluster(), node);
        let (code, output) = self
            .sim
            .backend
            .exec_output(&container, node, &["sh", "-c", script])
            .await
            .map_err(|e| PlatformError::Node {
                op: what.into(),
                node: node.into(),
                message: e.to_string(),
            })?;
        if code != 0 {
            return Err(PlatformError::Node {
                op: what.into(),
                node: node.into(),
                message: format!("exit {code}: {}", output.trim()),
            });
        }
        Ok(output)
    }

    /// Sends one request to the first master whose Marathon answers with a status below 500.
    async fn marathon(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), PlatformError> {
        let mut last = String::from("no master");
        for (_, address) in self.masters() {
            let body = body.map(Value::to_string);
            let answer = health::http_request(&format!("{address}:{}", ports::MARATHON), method, path, body.as_deref())
                .await
                .map(|(status, text)| (status, serde_json::from_str(&text).unwrap_or(Value::String(text))));
            match answer {
                Some((status, value)) if status < 500 => return Ok((status, value)),
                Some((status, value)) => last = format!("{address} answered {status}: {value}"),
                None => last = format!("{address} did not answer"),
            }
        }
        Err(PlatformError::Other {
            what: format!("Marathon {method} {path}"),
            message: last,
        })
    }
}

#[async_trait]
impl Platform for SimPlatform {
    fn backend(&self) -> &'static str {
        "sim"
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, PlatformError> {
        let observed = self.sim.backend.list(self.cluster()).await.map_err(|e| PlatformError::Other {
            what: "listing the sim's containers".into(),
            message: e.to_string(),
        })?;
        Ok(observed
            .into_iter()
            .filter(|o| matches!(o.kind(), ResourceKind::Node | ResourceKind::LoadBalancer))
            .map(|o| NodeInfo {
                name: o.id.name().to_string(),
                role: o.attrs.get("role").and_then(|r| Role::parse(r)),
                az: o.attrs.get("az").cloned().unwrap_or_default(),
                address: o.attrs.get("address").cloned().unwrap_or_default(),
                state: match o.attrs.get("state").map(String::as_str) {
                    Some("running") => NodeState::Running,
                    Some("paused") => NodeState::Paused,
                    _ => NodeState::Stopped,
                },
            })
            .collect())
    }

    async fn node_op(&self, node: &str, op: NodeOp) -> Result<(), PlatformError> {
        let observed = self.sim.backend.list(self.cluster()).await.map_err(|e| PlatformError::Other {
            what: "listing the sim's containers".into(),
            message: e.to_string(),
        })?;
        let target = observed
            .iter()
            .find(|o| o.id.name() == node && matches!(o.kind(), ResourceKind::Node | ResourceKind::LoadBalancer))
            .ok_or_else(|| PlatformError::Node {
                op: op.as_str().into(),
                node: node.into(),
                message: "no such node".into(),
            })?;
        self.sim
            .backend
            .node_op(self.cluster(), target, op)
            .await
            .map_err(|e| PlatformError::Node {
                op: op.as_str().into(),
                node: node.into(),
                message: e.to_string(),
            })
    }

    async fn net_add(&self, node: &str, rule: &NetRule) -> Result<(), PlatformError> {
        let cidr = &self.sim.spec.vpc_cidr;
        let mut script = String::from(
            "set -e\nIPT=$(command -v iptables-legacy || command -v iptables)\n\
             for c in PAAS-CHAOS-IN PAAS-CHAOS-OUT; do $IPT -w -N $c 2>/dev/null || true; done\n\
             $IPT -w -C INPUT -j PAAS-CHAOS-IN 2>/dev/null || $IPT -w -I INPUT -j PAAS-CHAOS-IN\n\
             $IPT -w -C OUTPUT -j PAAS-CHAOS-OUT 2>/dev/null || $IPT -w -I OUTPUT -j PAAS-CHAOS-OUT\n",
        );
        match rule {
            NetRule::Isolate { peers } => {
                for peer in peers {
                    let peer: Ipv4Addr = peer.parse().map_err(|_| PlatformError::Node {
                        op: "isolate".into(),
                        node: node.into(),
                        message: format!("peer {peer} is not an IPv4 address"),
                    })?;
                    script.push_str(&format!(
                        "$IPT -w -A PAAS-CHAOS-IN -s {peer} -j DROP\n$IPT -w -A PAAS-CHAOS-OUT -d {peer} -j DROP\n"
                    ));
                }
            }
            NetRule::Loss { percent } => script.push_str(&format!(
                "$IPT -w -A PAAS-CHAOS-IN -s {cidr} -m statistic --mode random --probability {:.4} -j DROP\n",
                percent / 100.0
            )),
            NetRule::Delay { ms, jitter_ms } => script.push_str(&format!(
                "pkill -f '^[^ ]*paas-node netdelay' 2>/dev/null || true\n\
                 setsid {binary} netdelay --queue {DELAY_QUEUE} --ms {ms} --jitter-ms {jitter_ms} >/var/log/paas/netdelay.log 2>&1 < /dev/null &\n\
                 sleep 0.3\n\
                 $IPT -w -A PAAS-CHAOS-OUT -d {cidr} -j NFQUEUE --queue-num {DELAY_QUEUE} --queue-bypass\n",
                binary = crate::images::NODE_BINARY_IN_IMAGE
            )),
        }
        self.shell(node, "installing a network fault", &script).await.map(|_| ())
    }

    async fn net_clear(&self, node: &str) -> Result<(), PlatformError> {
        let nodes = self.nodes().await?;
        if nodes.iter().any(|n| n.name == node && n.state != NodeState::Running) {
            // A stopped node's rules went with its network namespace; a paused one is
            // cleared once it runs again (by the heal's unpause, then this sweep).
            return Ok(());
        }
        let script = "IPT=$(command -v iptables-legacy || command -v iptables)\n\
                      for c in PAAS-CHAOS-IN PAAS-CHAOS-OUT; do $IPT -w -F $c 2>/dev/null || true; done\n\
                      pkill -f '^[^ ]*paas-node netdelay' 2>/dev/null || true\n\
                      exit 0\n";
        self.shell(node, "clearing network faults", script).await.map(|_| ())
    }

    async fn view(&self) -> ClusterView {
        let topology = &self.sim.topology;
        let (health, apps, routes) = tokio::join!(
            health::probe(topology, self.sim.spec.sim.http_port),
            self.marathon("GET", "/v2/apps?embed=apps.tasks", None),
            self.sim.lb_routes()
        );
        let apps = apps
            .ok()
            .and_then(|(status, body)| (status == 200).then(|| parse_apps(&body, &self.sim.spec.domain)));
        let address_of_pid = |pid: &str| pid.split_once('@').map(|(_, a)| a.split(':').next().unwrap_or("").to_string());
        ClusterView {
            apps,
            lb_routes: routes
                .into_iter()
                .filter(|r| health.lbs.iter().any(|(lb, ok)| lb == &r.lb && *ok))
                .map(|r| (r.lb, r.routes.into_iter().collect()))
                .collect(),
            mesos_leader: health
                .mesos_leader
                .as_deref()
                .and_then(address_of_pid)
                .and_then(|a| self.name_of(&a)),
            marathon_leader: health
                .marathon_leader
                .as_deref()
                .and_then(|l| self.name_of(l.split(':').next().unwrap_or(""))),
            zookeeper_leader: health
                .zookeeper
                .iter()
                .find(|(_, mode)| matches!(mode.as_deref(), Some("leader") | Some("standalone")))
                .map(|(name, _)| name.clone()),
            agents_registered: health.agents_registered,
        }
    }

    async fn scale_app(&self, app: &str, instances: u32) -> Result<(), PlatformError> {
        let id = AppId::parse(app).map_err(|e| PlatformError::Other {
            what: format!("app id {app}"),
            message: e.0,
        })?;
        let body = serde_json::json!({ "instances": instances });
        let (status, answer) = self.marathon("PUT", &format!("/v2/apps{}", id.as_str()), Some(&body)).await?;
        if !(200..300).contains(&status) {
            return Err(PlatformError::Other {
                what: format!("scaling {} to {instances}", id.as_str()),
                message: format!("Marathon answered {status}: {answer}"),
            });
        }
        Ok(())
    }

    async fn deploy_app(&self, definition: &str) -> Result<(), PlatformError> {
        let bad = |message: String| PlatformError::Other {
            what: "the app definition".into(),
            message,
        };
        let app = paas_core::app::AppFile::parse(definition).map_err(bad)?;
        let value: Value = serde_json::from_str(definition).map_err(|e| bad(e.to_string()))?;
        let id = AppId::parse(&app.id).map_err(|e| bad(e.0))?;
        let (exists, _) = self.marathon("GET", &format!("/v2/apps{}", id.as_str()), None).await?;
        let (status, answer) = if exists == 200 {
            self.marathon("PUT", &format!("/v2/apps{}", id.as_str()), Some(&value)).await?
        } else {
            self.marathon("POST", "/v2/apps", Some(&value)).await?
        };
        if !(200..300).contains(&status) {
            return Err(bad(format!("Marathon answered {status}: {answer}")));
        }
        Ok(())
    }

    fn entry(&self) -> String {
        format!("127.0.0.1:{}", self.sim.spec.sim.http_port)
    }

    fn agent_resources(&self) -> Option<(f64, f64)> {
        Some((self.sim.spec.agent.cpus, self.sim.spec.agent.mem as f64))
    }
}

/// Apps from `GET /v2/apps?embed=apps.tasks`.
fn parse_apps(body: &Value, domain: &str) -> Vec<AppView> {
    body["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|app| {
            let id = app["id"].as_str()?;
            let vhost = AppId::parse(id).ok()?.vhost(domain);
            let tasks: BTreeMap<String, String> = app["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| Some((t["id"].as_str()?.to_string(), t["host"].as_str()?.to_string())))
                .collect();
            Some(AppView {
                id: id.to_string(),
                vhost,
                instances: app["instances"].as_u64().unwrap_or(0) as u32,
                running: app["tasksRunning"].as_u64().unwrap_or(0) as u32,
                healthy: app["tasksHealthy"].as_u64().unwrap_or(0) as u32,
                health_checked: app["healthChecks"].as_array().is_some_and(|h| !h.is_empty()),
                tasks,
                cpus: app["cpus"].as_f64().unwrap_or(0.0),
                mem: app["mem"].as_f64().unwrap_or(0.0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_read_with_their_tasks_counts_and_vhost() {
        let body = serde_json::json!({ "apps": [{
            "id": "/shop/api", "instances": 3, "tasksRunning": 3, "tasksHealthy": 2, "cpus": 0.1, "mem": 32,
            "healthChecks": [{ "protocol": "HTTP" }],
            "tasks": [{ "id": "shop_api.1", "host": "10.20.128.30" }, { "id": "shop_api.2", "host": "10.20.144.30" }]
        }]});
        let apps = parse_apps(&body, "paas.localhost");
        assert_eq!(apps.len(), 1);
        let app = &apps[0];
        assert_eq!(app.vhost, "api.shop.paas.localhost");
        assert_eq!((app.instances, app.running, app.healthy, app.serving()), (3, 3, 2, 2));
        assert_eq!(app.tasks["shop_api.2"], "10.20.144.30");
    }
}
