//! Leader election as Mesos masters do it: each master creates an ephemeral sequential
//! `json.info_*` znode holding its MasterInfo JSON under the cluster path; the lowest leads.
//! A master that loses its ZooKeeper session (or stays disconnected longer than the session
//! timeout) steps down by ending the process, as Mesos masters do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use zookeeper_client::{Client, SessionState};

use super::Master;
use super::registry::Registry;
use crate::mesos::detector::MASTER_ZNODE_PREFIX;
use crate::mesos::v1::MasterInfo;
use crate::zk;

/// Joins the election and follows it, publishing the current leader on `leader` and making
/// `master` lead when its znode is the lowest. Returns only when this master must step down,
/// with the reason.
pub async fn contend(master: Arc<Master>, client: Client, registry: Registry, leader: watch::Sender<Option<MasterInfo>>) -> anyhow::Error {
    let path = master.args.zk.path.clone();
    let session_timeout = client.session_timeout();
    let data = serde_json::to_vec(&master.info).expect("MasterInfo serializes");
    let me = match zk::join_election(&client, &path, MASTER_ZNODE_PREFIX, &data).await {
        Ok(name) => name,
        Err(e) => return e.into(),
    };
    tracing::info!(znode = %format!("{path}/{me}"), "joined the leader election");
    let mut states = client.state_watcher();
    let mut disconnected_since: Option<Instant> = None;
    loop {
        if let Some(since) = disconnected_since
            && since.elapsed() > session_timeout
        {
            return anyhow::anyhow!("disconnected from ZooKeeper for longer than the session timeout ({session_timeout:?})");
        }
        // Bounded: while disconnected, requests wait for a reconnection that may never come.
        let lookup = tokio::time::timeout(Duration::from_secs(1), zk::election_leader(&client, &path, MASTER_ZNODE_PREFIX)).await;
        let lookup = lookup.unwrap_or_else(|_| {
            Err(zk::ZkError::Operation {
                operation: "list (timed out)",
                path: path.clone(),
                source: zookeeper_client::Error::ConnectionLoss,
            })
        });
        let watcher = match lookup {
            Ok((member, watcher)) => {
                let info = member.as_ref().and_then(|m| serde_json::from_slice::<MasterInfo>(&m.data).ok());
                let publish = |info| {
                    leader.send_if_modified(|current| {
                        let changed = *current != info;
                        *current = info;
                        changed
                    });
                };
                let leads = member.as_ref().is_some_and(|m| m.name == me);
                // This master is published as the leader only once it leads: until then its
                // endpoints would redirect to itself (upstream's `elected()` is that same
                // comparison, so a Mesos master never does).
                if leads && !master.leading() {
                    let agents = tokio::time::timeout(Duration::from_secs(1), registry.agents()).await;
                    match agents {
                        Ok(Ok(agents)) => master.become_leader(agents),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "reading the registry; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "reading the registry; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                } else if !leads && master.leading() {
                    publish(info);
                    return anyhow::anyhow!("another master leads now");
                }
                publish(info);
                Some(watcher)
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the leader election; retrying");
                None
            }
        };
        let recheck = tokio::time::sleep(if watcher.is_some() {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(200)
        });
        let changed = async {
            match watcher {
                Some(watcher) => {
                    watcher.changed().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            // Cancel-safe: a fresh watch is set on the next lookup.
            _ = changed => {}
            // Cancel-safe: only reads the latest session state.
            state = states.changed() => match state {
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                    return anyhow::anyhow!("ZooKeeper session ended ({state:?})");
                }
                SessionState::Disconnected => {
                    tracing::warn!("disconnected from ZooKeeper");
                    disconnected_since.get_or_insert_with(Instant::now);
                }
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    disconnected_since = None;
                }
            },
            // Cancel-safe: a timer; looking again is harmless.
            _ = recheck => {}
        }
    }
}
