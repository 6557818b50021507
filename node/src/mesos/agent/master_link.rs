//! The agent's side of its link to the leading master: register (again after every failover),
//! ping, and deliver status updates in order, keeping them until a master has taken them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};

use super::Agent;
use crate::mesos::detector;
use crate::mesos::protocol::{AgentPing, AgentRegistered, PING_PATH, REGISTER_PATH, RegisterAgent, STATUS_PATH, StatusUpdate};
use crate::mesos::v1::{self, MasterInfo};
use crate::zk::ZkUrl;

/// Pings that may fail in a row before the agent looks for the leader again.
const MAX_FAILED_PINGS: u32 = 3;

/// Where the masters are: followed in ZooKeeper, or one fixed `host:port`. Fails on a malformed
/// `--master`.
pub fn masters(args: &super::Args) -> anyhow::Result<watch::Receiver<Option<MasterInfo>>> {
    if args.master.starts_with("zk://") {
        let url = ZkUrl::parse(&args.master).context("parsing --master")?;
        return Ok(detector::detect(url, args.zk_session_timeout));
    }
    let (host, port) = args
        .master
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u32>().ok()?)))
        .with_context(|| format!("--master {:?} is neither zk://... nor host:port", args.master))?;
    let info = MasterInfo {
        id: String::new(),
        port,
        hostname: Some(host.clone()),
        address: Some(v1::Address {
            hostname: Some(host),
            ip: None,
            port,
        }),
        ..MasterInfo::default()
    };
    let (sender, receiver) = watch::channel(Some(info));
    // Keep the sender alive for as long as the process: the fixed master never changes.
    std::mem::forget(sender);
    Ok(receiver)
}

fn base_url(info: &MasterInfo) -> String {
    crate::mesos::scheduler::master_url(info)
}

/// Why the connection to one master ended.
enum LinkEnd {
    /// The master does not know this agent (any more) or is not the leader.
    Reregister,
    /// The leader in ZooKeeper changed.
    LeaderChanged,
}

/// Follows the leading master forever: registers with each leader, pings it and forwards
/// status updates to it.
pub async fn follow(
    agent: Arc<Agent>,
    mut masters: watch::Receiver<Option<MasterInfo>>,
    mut updates: mpsc::UnboundedReceiver<StatusUpdate>,
) {
    let mut pending: VecDeque<StatusUpdate> = VecDeque::new();
    loop {
        let leader = masters.borrow_and_update().clone();
        let Some(leader) = leader else {
            tokio::select! {
                // Cancel-safe: the watch keeps the latest value.
                _ = masters.changed() => {}
                // Cancel-safe: a dequeued update is kept in `pending`.
                Some(update) = updates.recv() => pending.push_back(update),
            }
            continue;
        };
        let base = base_url(&leader);
        let registered = match register(&agent, &base).await {
            Ok(registered) => registered,
            Err(e) => {
                tracing::warn!(master = %base, error = %format!("{e:#}"), "registering with the master; retrying");
                tokio::select! {
                    // Cancel-safe: the watch keeps the latest value.
                    _ = masters.changed() => {}
                    // Cancel-safe: a timer.
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
        };
        {
            let mut guard = agent.lock();
            guard.master = Some(leader.clone());
            guard.registered = true;
        }
        let end = serve_master(&agent, &base, &registered, &mut masters, &mut updates, &mut pending).await;
        agent.lock().registered = false;
        match end {
            LinkEnd::Reregister => tracing::info!(master = %base, "master asks to register again"),
            LinkEnd::LeaderChanged => tracing::info!("leading master changed"),
        }
    }
}

async fn register(agent: &Agent, base: &str) -> anyhow::Result<AgentRegistered> {
    let previous = agent.lock().agent_id.clone();
    let request = RegisterAgent {
        agent_id: previous,
        hostname: agent.hostname.clone(),
        ip: agent.args.ip.to_string(),
        port: agent.args.port,
        resources: agent.total.to_v1(None),
        attributes: agent.attributes.clone(),
        tasks: agent.registration_tasks(),
    };
    let response = agent
        .http
        .post(format!("{base}{REGISTER_PATH}"))
        .json(&request)
        .send()
        .await
        .context("sending the registration")?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("master answered {status}");
    }
    let registered: AgentRegistered = response.json().await.context("reading the registration answer")?;
    tracing::info!(agent = %registered.agent_id, master = %registered.master_id, "registered with the master");
    {
        let mut guard = agent.lock();
        guard.agent_id = Some(registered.agent_id.clone());
    }
    // A restarted agent re-registers under this id and so keeps its running containers.
    if let Err(e) = super::checkpoint::save_agent_id(&agent.args.work_dir, &registered.agent_id) {
        tracing::warn!(error = %format!("{e:#}"), "checkpointing the agent id; a restart will register afresh");
    }
    // The master considers these tasks gone (their framework is gone, or this agent was removed).
    for kill in &registered.kill {
        agent.kill(&kill.framework_id, &kill.task_id);
    }
    Ok(registered)
}

async fn serve_master(
    agent: &Agent,
    base: &str,
    registered: &AgentRegistered,
    masters: &mut watch::Receiver<Option<MasterInfo>>,
    updates: &mut mpsc::UnboundedReceiver<StatusUpdate>,
    pending: &mut VecDeque<StatusUpdate>,
) -> LinkEnd {
    let interval = Duration::from_secs_f64(registered.ping_interval_seconds.clamp(0.05, 3600.0));
    // Ping a little more often than the master's timeout so that one late ping is not a miss.
    let mut pings = tokio::time::interval(interval.mul_f64(0.5));
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed_pings = 0;
    let agent_id = registered.agent_id.clone();
    loop {
        if let Some(end) = deliver(agent, base, &agent_id, pending).await {
            return end;
        }
        tokio::select! {
            // Cancel-safe: the watch keeps the latest value.
            _ = masters.changed() => return LinkEnd::LeaderChanged,
            // Cancel-safe: a dequeued update is kept in `pending` before anything else.
            Some(update) = updates.recv() => pending.push_back(update),
            // Cancel-safe: an interval tick.
            _ = pings.tick() => {
                let ping = AgentPing { agent_id: agent_id.clone() };
                let answer = agent.http.post(format!("{base}{PING_PATH}")).json(&ping).send().await;
                match answer.map(|r| r.status()) {
                    Ok(status) if status.is_success() => failed_pings = 0,
                    Ok(StatusCode::NOT_FOUND | StatusCode::TEMPORARY_REDIRECT) => return LinkEnd::Reregister,
                    Ok(_) | Err(_) => {
                        failed_pings += 1;
                        if failed_pings >= MAX_FAILED_PINGS {
                            return LinkEnd::Reregister;
                        }
                    }
                }
            }
        }
    }
}

/// Sends the pending updates in order; stops at the first the master does not take.
async fn deliver(agent: &Agent, base: &str, agent_id: &v1::AgentId, pending: &mut VecDeque<StatusUpdate>) -> Option<LinkEnd> {
    while let Some(update) = pending.front_mut() {
        // Updates made before the first registration carry no agent id yet.
        update.agent_id = agent_id.clone();
        update.status.agent_id = Some(agent_id.clone());
        let sent = agent.http.post(format!("{base}{STATUS_PATH}")).json(&*update).send().await;
        match sent.map(|r| r.status()) {
            Ok(status) if status.is_success() => {
                let update = pending.pop_front().expect("front exists");
                agent.delivered(&update.status);
            }
            Ok(StatusCode::NOT_FOUND | StatusCode::TEMPORARY_REDIRECT) => {
                return Some(LinkEnd::Reregister);
            }
            Ok(status) => {
                tracing::warn!(%status, "master refused a status update; retrying later");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending a status update; retrying later");
                return None;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(master: &str) -> super::super::Args {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::super::Args,
        }
        Cli::parse_from(["mesos-agent", "--master", master]).args
    }

    #[tokio::test]
    async fn a_fixed_master_is_host_and_port() {
        let fixed = masters(&args("10.0.0.5:5050")).unwrap();
        let info = fixed.borrow().clone().unwrap();
        assert_eq!(base_url(&info), "http://10.0.0.5:5050");
        assert!(masters(&args("nonsense")).is_err());
        assert!(masters(&args("zk://h")).is_err());
    }
}
