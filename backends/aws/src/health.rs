//! The health of a cluster on AWS as seen through its admin entry and its ELB: what `paas aws
//! up` waits for, what `paas aws status` shows, and what a rolling replacement waits for
//! between two instances.
//!
//! ZooKeeper and the nodes' own ports are not reachable from outside the VPC; a Mesos master
//! elected and answering through the admin entry stands for a working ZooKeeper quorum (Mesos
//! elects through it). The lbs' health is the ELB's own `HTTP:80/status` check.

use serde::Serialize;

use crate::admin::{AdminEntry, Vhost};

/// One app as Marathon reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppHealth {
    pub id: String,
    pub running: u64,
    pub healthy: u64,
    pub desired: u64,
    /// Whether Marathon defines health checks for it (else running counts as healthy).
    pub checked: bool,
}

impl AppHealth {
    pub fn ok(&self) -> bool {
        let ready = if self.checked { self.healthy } else { self.running };
        ready >= self.desired
    }
}

/// One round of probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The Mesos leader's pid (`master@10.20.32.10:5050`) as the admin entry's master reports it.
    pub mesos_leader: Option<String>,
    pub agents_registered: u32,
    pub agents_expected: u32,
    /// Marathon's leader (`host:port`).
    pub marathon_leader: Option<String>,
    /// The apps the spec deploys, by id.
    pub apps_expected: Vec<String>,
    /// Every app Marathon has.
    pub apps: Vec<AppHealth>,
    /// Each lb as the ELB's health check sees it (`InService`).
    pub lbs: Vec<(String, bool)>,
    /// Whether `www.<domain>` answers 200 through the ELB (only asked when the spec deploys `/www`).
    pub www: Option<bool>,
}

impl Health {
    pub fn mesos_ok(&self) -> bool {
        self.mesos_leader.is_some() && self.agents_registered >= self.agents_expected
    }

    pub fn marathon_ok(&self) -> bool {
        self.marathon_leader.is_some()
    }

    /// Every expected app is in Marathon with its instances running (healthy, if checked).
    pub fn apps_ok(&self) -> bool {
        self.apps_expected.iter().all(|id| self.apps.iter().any(|a| &a.id == id && a.ok()))
    }

    pub fn lbs_ok(&self) -> bool {
        !self.lbs.is_empty() && self.lbs.iter().all(|(_, ok)| *ok) && self.www != Some(false)
    }

    /// The infrastructure of the platform: Mesos, Marathon and the lbs, apps aside. What a
    /// roll waits for before taking the next machine down.
    pub fn is_serving(&self) -> bool {
        self.mesos_ok() && self.marathon_ok() && self.lbs.iter().all(|(_, ok)| *ok)
    }

    /// Every check passes.
    pub fn is_healthy(&self) -> bool {
        self.mesos_ok() && self.marathon_ok() && self.apps_ok() && self.lbs_ok()
    }

    /// The checks that do not pass yet, in words.
    pub fn waiting_for(&self) -> Vec<String> {
        let mut waiting = Vec::new();
        match &self.mesos_leader {
            None => waiting.push("a Mesos leader (through mesos.admin)".into()),
            Some(_) if self.agents_registered < self.agents_expected => waiting.push(format!(
                "Mesos agents ({} of {} registered)",
                self.agents_registered, self.agents_expected
            )),
            Some(_) => {}
        }
        if !self.marathon_ok() {
            waiting.push("a Marathon leader (through marathon.admin)".into());
        }
        let missing: Vec<&str> = self
            .apps_expected
            .iter()
            .filter(|id| !self.apps.iter().any(|a| &a.id == *id && a.ok()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            waiting.push(format!("apps running ({})", missing.join(", ")));
        }
        let down: Vec<&str> = self.lbs.iter().filter(|(_, ok)| !ok).map(|(n, _)| n.as_str()).collect();
        if self.lbs.is_empty() {
            waiting.push("lbs registered with the elb".into());
        } else if !down.is_empty() {
            waiting.push(format!("lbs in service behind the elb ({})", down.join(", ")));
        }
        if self.www == Some(false) {
            waiting.push("www answering 200 through the elb".into());
        }
        waiting
    }
}

/// Probes Mesos and Marathon through the admin entry and `www` through the ELB, concurrently;
/// `lbs` is the ELB's view of each lb, read from the AWS API by the caller.
pub async fn probe(entry: &AdminEntry, agents_expected: u32, apps_expected: &[String], lbs: Vec<(String, bool)>) -> Health {
    let json = |answer: Option<(u16, String)>| -> Option<serde_json::Value> {
        let (status, body) = answer?;
        (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    };
    let wants_www = apps_expected.iter().any(|id| id == "/www");
    let (state, leader, apps, www) = tokio::join!(
        entry.get(Vhost::Mesos, "/master/state"),
        entry.get(Vhost::Marathon, "/v2/leader"),
        entry.get(Vhost::Marathon, "/v2/apps"),
        async {
            match wants_www {
                true => Some(entry.get(Vhost::Www, "/").await.is_some_and(|(s, _)| s == 200)),
                false => None,
            }
        },
    );
    let state = json(state);
    let mesos_leader = state
        .as_ref()
        .and_then(|s| s.get("leader")?.as_str().filter(|l| !l.is_empty()).map(str::to_string));
    let agents_registered = state.as_ref().and_then(|s| s.get("activated_slaves")?.as_f64()).unwrap_or(0.0) as u32;
    let marathon_leader = json(leader).and_then(|l| l.get("leader")?.as_str().map(str::to_string));
    let apps = json(apps)
        .and_then(|a| a.get("apps")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|app| AppHealth {
            id: app["id"].as_str().unwrap_or_default().to_string(),
            running: app["tasksRunning"].as_u64().unwrap_or(0),
            healthy: app["tasksHealthy"].as_u64().unwrap_or(0),
            desired: app["instances"].as_u64().unwrap_or(0),
            checked: app["healthChecks"].as_array().is_some_and(|h| !h.is_empty()),
        })
        .collect();
    Health {
        mesos_leader,
        agents_registered,
        agents_expected,
        marathon_leader,
        apps_expected: apps_expected.to_vec(),
        apps,
        lbs,
        www,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Health {
        Health {
            mesos_leader: Some("master@10.20.128.10:5050".into()),
            agents_registered: 5,
            agents_expected: 5,
            marathon_leader: Some("10.20.128.10:8080".into()),
            apps_expected: vec!["/www".into()],
            apps: vec![AppHealth {
                id: "/www".into(),
                running: 2,
                healthy: 2,
                desired: 2,
                checked: true,
            }],
            lbs: vec![("lb-1".into(), true), ("lb-2".into(), true)],
            www: Some(true),
        }
    }

    #[test]
    fn a_cluster_with_every_part_up_is_healthy() {
        assert!(healthy().is_healthy());
        assert!(healthy().waiting_for().is_empty());
    }

    #[test]
    fn each_missing_part_is_named() {
        let mut h = healthy();
        h.agents_registered = 3;
        h.marathon_leader = None;
        h.apps[0].healthy = 1;
        h.lbs[1].1 = false;
        h.www = Some(false);
        assert!(!h.is_healthy() && !h.is_serving());
        assert_eq!(
            h.waiting_for(),
            [
                "Mesos agents (3 of 5 registered)",
                "a Marathon leader (through marathon.admin)",
                "apps running (/www)",
                "lbs in service behind the elb (lb-2)",
                "www answering 200 through the elb",
            ]
        );
    }
}
