//! `lb-sync --mode=admin`: keeps the admin entry's nginx sending `mesos.admin.<domain>` and
//! `marathon.admin.<domain>` to the current leaders, so that their pages always show the
//! leader's view (a Mesos master that does not lead has an empty cluster, and its redirect
//! names a private address no browser outside the cluster reaches).
//!
//! The Mesos leader comes from whoever runs lb-sync ([`crate::MesosLeader`]; `paas-node` reads it
//! from ZooKeeper as Mesos' own detector does); Marathon's from `GET /v2/leader` of any Marathon. The
//! upstreams file (`upstream mesos {...}` and `upstream marathon {...}`, included by the admin
//! nginx config) is rendered, checked with `nginx -t`, swapped atomically, and nginx reloaded,
//! only when a leader changed. While a leader is unknown the last one stays; before the first
//! Mesos leader is known the file is left as the node's configuration wrote it.

use std::time::Duration;

use reqwest::Url;

use super::nginx::Nginx;
use crate::MesosLeader;

/// How long asking one Marathon for its leader may take.
const LEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// What admin mode needs.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The leading Mesos master, as it changes.
    pub mesos_leader: MesosLeader,
    /// Marathon base URLs; any of them names the leader.
    pub marathons: Vec<Url>,
    pub nginx: Nginx,
    /// How often Marathon's leader is asked (Mesos' is followed by ZooKeeper watches).
    pub poll: Duration,
}

/// Whether `address` is a plain `host:port` that is safe to write into nginx's config (no
/// spaces, semicolons or braces can come from a peer's answer into the file).
pub fn is_host_port(address: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// The upstreams file: the Mesos leader, and Marathon's leader with every other Marathon as a
/// backup (or every Marathon alike while its leader is unknown). Any Marathon answers for its
/// leader, so a leader lost since the last poll costs a connect timeout, not a failed request;
/// a Mesos master that does not lead would only redirect, so Mesos gets its leader alone.
pub fn render_upstreams(mesos: &str, marathon_leader: Option<&str>, marathons: &[String]) -> String {
    let mut text = String::from("# Written by lb-sync --mode=admin: the current leaders.\n");
    text.push_str(&format!("upstream mesos {{\n    server {mesos} max_fails=0;\n}}\n"));
    text.push_str("upstream marathon {\n");
    if let Some(leader) = marathon_leader {
        text.push_str(&format!("    server {leader} max_fails=0;\n"));
    }
    for marathon in marathons.iter().filter(|m| Some(m.as_str()) != marathon_leader) {
        let backup = if marathon_leader.is_some() { " backup" } else { "" };
        text.push_str(&format!("    server {marathon} max_fails=0{backup};\n"));
    }
    text.push_str("}\n");
    text
}

fn host_port(url: &Url) -> Option<String> {
    Some(format!("{}:{}", url.host_str()?, url.port_or_known_default()?))
}

/// Asks each Marathon in turn for the leader; `None` when none names a valid one.
async fn ask_marathon_leader(http: &reqwest::Client, marathons: &[Url]) -> Option<String> {
    for base in marathons {
        let Ok(url) = base.join("v2/leader") else { continue };
        let answer = async {
            let response = http.get(url.clone()).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body: serde_json::Value = response.json().await.ok()?;
            body.get("leader")?.as_str().map(str::to_owned)
        };
        match tokio::time::timeout(LEADER_TIMEOUT, answer).await {
            Ok(Some(leader)) if is_host_port(&leader) => return Some(leader),
            Ok(Some(leader)) => tracing::warn!(%url, %leader, "Marathon named a leader that is not host:port; ignored"),
            _ => {}
        }
    }
    None
}

/// Follows both leaders until `shutdown` completes. Never fails: ZooKeeper, Marathon and nginx
/// failures are logged and retried.
pub async fn run(config: AdminConfig, shutdown: impl Future<Output = ()>) {
    let http = reqwest::Client::builder()
        .connect_timeout(LEADER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client");
    let mut mesos = config.mesos_leader;
    let all_marathons: Vec<String> = config.marathons.iter().filter_map(host_port).collect();
    let (mut mesos_leader, mut marathon_leader): (Option<String>, Option<String>) = (None, None);
    let mut installed: Option<String> = None;
    let mut poll = tokio::time::interval(config.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        if let Some(leader) = mesos.borrow_and_update().clone().filter(|a| is_host_port(a)) {
            mesos_leader = Some(leader);
        }
        if let Some(leader) = ask_marathon_leader(&http, &config.marathons).await {
            marathon_leader = Some(leader);
        }
        if let Some(mesos) = &mesos_leader {
            let text = render_upstreams(mesos, marathon_leader.as_deref(), &all_marathons);
            if installed.as_deref() != Some(text.as_str()) {
                match install(&config.nginx, &text).await {
                    Ok(()) => {
                        tracing::info!(mesos = %mesos, marathon = ?marathon_leader, "admin entry now sends to the leaders");
                        installed = Some(text);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, source = ?std::error::Error::source(&e), "installing the admin upstreams; retrying")
                    }
                }
            }
        }
        tokio::select! {
            // Cancel-safe: the watch keeps the latest value, read at the top of the loop.
            changed = mesos.changed() => {
                if changed.is_err() {
                    // The leader is no longer followed: keep the last one and poll Marathon on.
                    poll.tick().await;
                }
            }
            // Cancel-safe: an interval tick.
            _ = poll.tick() => {}
            // Cancel-safe: the loop ends either way.
            _ = &mut shutdown => return,
        }
    }
}

async fn install(nginx: &Nginx, text: &str) -> Result<(), super::nginx::NginxError> {
    nginx.install(text).await?;
    nginx.reload().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_host_port_is_accepted() {
        assert!(is_host_port("10.20.128.10:8080"));
        assert!(is_host_port("master-1.example:5050"));
        assert!(!is_host_port("10.20.128.10"));
        assert!(!is_host_port("10.20.128.10:0"));
        assert!(!is_host_port("x:80; } server { listen 81"));
        assert!(!is_host_port(":80"));
    }

    #[test]
    fn upstreams_name_the_leaders() {
        let all = ["10.20.128.10:8080".to_owned(), "10.20.144.10:8080".to_owned()];
        let text = render_upstreams("10.20.144.10:5050", Some("10.20.144.10:8080"), &all);
        assert_eq!(
            text,
            "# Written by lb-sync --mode=admin: the current leaders.\n\
             upstream mesos {\n    server 10.20.144.10:5050 max_fails=0;\n}\n\
             upstream marathon {\n    server 10.20.144.10:8080 max_fails=0;\n    server 10.20.128.10:8080 max_fails=0 backup;\n}\n"
        );
        // No known Marathon leader: every Marathon alike.
        let text = render_upstreams("10.20.144.10:5050", None, &all);
        assert!(
            text.ends_with(
                "upstream marathon {\n    server 10.20.128.10:8080 max_fails=0;\n    server 10.20.144.10:8080 max_fails=0;\n}\n"
            ),
            "{text}"
        );
    }
}
