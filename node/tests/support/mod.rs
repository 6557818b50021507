//! The integration-test harness: real servers on 127.0.0.1 at ports chosen at run time, and the
//! `paas-node` programs as child processes, all killed when dropped.

#![allow(dead_code)] // Each test module uses a different part of the harness.

pub mod clients;
pub mod framework;
pub mod mesos;
pub mod nginx;
mod ports_and_waits;
pub mod process;
pub mod zookeeper;

pub use ports_and_waits::{eventually, free_port};

/// `GET url` answered with JSON, whatever its status; panics naming `url` when there is no
/// answer or it is not JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    let response = http.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    response.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// `GET url` answered with JSON, whatever its status, or `None` when there is no answer or it
/// is not JSON: for polling with [`eventually`].
pub async fn try_get_json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}
