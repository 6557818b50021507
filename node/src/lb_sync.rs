//! `paas-node lb-sync`: the [`paas_lb_sync`] crate, shipped in this binary, with the one thing
//! it does not do itself: following the leading Mesos master in ZooKeeper for `--mode=admin`,
//! through the same detector the Mesos agents use.

use std::time::Duration;

use tokio::sync::watch;

pub use paas_lb_sync::*;

use crate::mesos::detector;
use crate::mesos::v1::MasterInfo;
use crate::zk::ZkUrl;

/// Flags of `paas-node lb-sync`: lb-sync's own, plus where to find the Mesos leader.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)] // lb-sync's own `Args` already names the group `Args`.
pub struct Args {
    #[command(flatten)]
    pub sync: paas_lb_sync::Args,
    /// The Mesos cluster in ZooKeeper, e.g. zk://h1:2181,h2:2181/mesos (admin mode).
    #[arg(long, required_if_eq("mode", "admin"))]
    pub mesos_zk: Option<ZkUrl>,
    /// ZooKeeper session timeout used to follow the Mesos leader (admin mode).
    #[arg(long, default_value = "10secs", value_parser = humantime::parse_duration)]
    pub zk_session_timeout: Duration,
}

/// Runs lb-sync until Ctrl-C or SIGTERM, following the Mesos leader when `--mesos-zk` is given.
///
/// Fails only when the flags are invalid.
pub async fn run(args: Args) -> Result<(), StartError> {
    let leader = args.mesos_zk.map(|url| mesos_leader(url, args.zk_session_timeout));
    paas_lb_sync::run(args.sync, leader).await
}

/// The leading master of the Mesos cluster at `url` as `host:port`, followed until the receiver
/// is dropped.
fn mesos_leader(url: ZkUrl, session_timeout: Duration) -> MesosLeader {
    let mut masters = detector::detect(url, session_timeout);
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let address = masters.borrow_and_update().as_ref().map(mesos_address);
            sender.send_if_modified(|current| std::mem::replace(current, address.clone()) != address);
            tokio::select! {
                // Cancel-safe: the watch keeps the latest value, read at the top of the loop.
                changed = masters.changed() => if changed.is_err() { return },
                // Cancel-safe: nobody listens any more, so stop.
                _ = sender.closed() => return,
            }
        }
    });
    receiver
}

/// `host:port` of a Mesos master, as its MasterInfo advertises it.
pub fn mesos_address(info: &MasterInfo) -> String {
    let host = info
        .address
        .as_ref()
        .and_then(|a| a.ip.clone())
        .unwrap_or_else(|| info.ipv4().to_string());
    format!("{host}:{}", info.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_address_prefers_the_advertised_ip() {
        let info = MasterInfo {
            ip: MasterInfo::encode_ip("10.0.0.9".parse().unwrap()),
            port: 5050,
            address: Some(crate::mesos::v1::Address {
                hostname: Some("m1".into()),
                ip: Some("10.0.0.7".into()),
                port: 5050,
            }),
            ..MasterInfo::default()
        };
        assert_eq!(mesos_address(&info), "10.0.0.7:5050");
        let bare = MasterInfo { address: None, ..info };
        assert_eq!(mesos_address(&bare), "10.0.0.9:5050");
    }
}
