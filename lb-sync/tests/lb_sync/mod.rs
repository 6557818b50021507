//! lb-sync against real nginx: app tasks and Marathon doubles on 127.0.0.1, lb-sync as a process.

mod backend;
mod convergence;
mod core_config;
mod frozen;
mod http;
mod marathon_double;
mod nginx;
mod render_props;
mod routing;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::process::NodeProcess;

use self::backend::task_name;
use self::http::get;
use self::nginx::NginxServer;
use crate::support::nginx::nginx_bin;

/// The domain apps are served under in these tests.
pub const DOMAIN: &str = "paas.test";

/// Starts `paas-node lb-sync` for `nginx`, following `marathons`.
pub fn start_lb_sync(nginx: &NginxServer, marathons: &[String], extra: &[&str]) -> NodeProcess {
    let mut args: Vec<String> = vec![
        format!("--marathon={}", marathons.join(",")),
        format!("--domain={DOMAIN}"),
        format!("--nginx-conf={}", nginx.routes().display()),
        format!("--nginx-bin={}", nginx_bin().display()),
        format!("--nginx-main-conf={}", nginx.main_conf().display()),
        format!("--nginx-prefix={}", nginx.dir.path().display()),
        format!("--listen=127.0.0.1:{}", nginx.port),
        "--resync=30s".into(),
        "--min-reload-interval=100ms".into(),
    ];
    // A flag in `extra` replaces the default above (clap refuses a flag given twice).
    args.retain(|arg| {
        let name = arg.split('=').next().unwrap_or_default();
        !extra.iter().any(|e| e.split('=').next() == Some(name))
    });
    args.extend(extra.iter().map(|s| s.to_string()));
    NodeProcess::spawn("lb-sync", args)
}

/// What `requests` fresh requests for `host` got: answers per task name, plus `status:N` for
/// other answers and `failed` for requests that failed outright.
pub async fn tally(port: u16, host: &str, requests: usize) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for _ in 0..requests {
        let key = match get(port, host).await {
            Some((200, body)) => task_name(&body).map(str::to_owned).unwrap_or_else(|| format!("body:{body}")),
            Some((status, _)) => format!("status:{status}"),
            None => "failed".to_owned(),
        };
        *tally.entry(key).or_default() += 1;
    }
    tally
}

/// Waits until `host` is served by exactly the tasks `expected` (12 requests per look, every
/// answer from one of them, each of them seen); panics after `timeout` with the last tally.
pub async fn wait_served_by(port: u16, host: &str, expected: &[&str], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    loop {
        let seen = tally(port, host, 4 * expected.len().max(3)).await;
        if seen.keys().cloned().collect::<Vec<_>>() == want {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{host} not served by exactly {want:?} within {timeout:?}; last tally {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
