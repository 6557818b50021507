//! Finding the leading Mesos master in ZooKeeper, as agents and frameworks do: the master whose
//! `json.info_*` znode under the cluster path has the lowest sequence number leads, and the znode
//! holds its MasterInfo JSON.

use std::time::Duration;

use tokio::sync::watch;
use zookeeper_client::SessionState;

use super::v1::MasterInfo;
use crate::zk::{self, ZkUrl};

/// Prefix of the masters' election znodes, as Mesos names them.
pub const MASTER_ZNODE_PREFIX: &str = "json.info_";

/// How often the leader is looked up again even without a ZooKeeper notification, so that a
/// missed watch (e.g. across a reconnection) never leaves a stale leader for long.
const RECHECK: Duration = Duration::from_secs(2);

/// Follows the leading master of the Mesos cluster at `url` (e.g. `zk://h1:2181,h2:2181/mesos`).
/// The receiver holds `None` while no master leads. Runs until the receiver is dropped,
/// reconnecting to ZooKeeper whenever the session is lost; never fails.
pub fn detect(url: ZkUrl, session_timeout: Duration) -> watch::Receiver<Option<MasterInfo>> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        while !sender.is_closed() {
            if let Err(e) = follow(&url, session_timeout, &sender).await {
                tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "looking for the leading master in ZooKeeper; retrying");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    receiver
}

async fn follow(url: &ZkUrl, session_timeout: Duration, sender: &watch::Sender<Option<MasterInfo>>) -> Result<(), zk::ZkError> {
    let client = zk::connect(url, session_timeout).await?;
    zk::ensure_path(&client, &url.path).await?;
    let mut states = client.state_watcher();
    loop {
        let (leader, watcher) = zk::election_leader(&client, &url.path, MASTER_ZNODE_PREFIX).await?;
        let info = leader.and_then(|member| match serde_json::from_slice::<MasterInfo>(&member.data) {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!(znode = %member.name, error = %e, "leading master's znode is not MasterInfo JSON");
                None
            }
        });
        sender.send_if_modified(|current| {
            if *current != info {
                tracing::info!(leader = ?info.as_ref().map(|i| &i.id), "leading master changed");
                *current = info;
                true
            } else {
                false
            }
        });
        tokio::select! {
            // Cancel-safe: the watcher is dropped and a new one set on the next lookup.
            _ = watcher.changed() => {}
            // Cancel-safe: only reads the latest session state.
            state = states.changed() => {
                if matches!(state, SessionState::Expired | SessionState::Closed | SessionState::AuthFailed) {
                    return Ok(());
                }
            }
            // Cancel-safe: a timer.
            _ = tokio::time::sleep(RECHECK) => {}
            // Cancel-safe: nobody listens any more, so stop.
            _ = sender.closed() => return Ok(()),
        }
    }
}
