//! Every change in Marathon reaches nginx, and how fast: from the event leaving Marathon to the
//! first request nginx sends to the new task. The figures are printed for docs/BENCHMARKS.md,
//! not asserted: the 10 s bound below only says a change that never arrives is a failure. `LB_SYNC_CONVERGENCE_CHANGES` sets the number of changes
//! (40 by default; the figures in BENCHMARKS.md use 300), `LB_SYNC_CONVERGENCE_PAUSE_MS` the
//! pause between changes (300 by default; 0 measures changes arriving back to back), and
//! `LB_SYNC_CONVERGENCE_APPS` how many other apps (3 tasks each) the cluster holds (none by
//! default), since every change rewrites and re-checks the routes of all apps.

use std::time::{Duration, Instant};

use super::backend::{TaskServer, task_name};
use super::http::get;
use super::marathon_double::{Cluster, MarathonDouble, TaskSpec};
use super::nginx::NginxServer;
use super::{DOMAIN, start_lb_sync, wait_served_by};

/// Consecutive answers from the new task that count as nginx serving it.
const STREAK: usize = 20;

#[tokio::test]
async fn lb_sync_every_marathon_change_reaches_nginx_and_reports_convergence() {
    let changes: usize = std::env::var("LB_SYNC_CONVERGENCE_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let pause: u64 = std::env::var("LB_SYNC_CONVERGENCE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let tasks = [TaskServer::start("c0").await, TaskServer::start("c1").await];
    let others: u16 = std::env::var("LB_SYNC_CONVERGENCE_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for n in 0..others {
        // Never requested, so nothing needs to listen on these ports.
        let specs: Vec<TaskSpec> = (0..3).map(|t| TaskSpec::running(&format!("o{t}"), 20000 + n * 3 + t)).collect();
        cluster.set_app(&format!("/other/app-{n}"), &[], &specs);
    }
    cluster.set_app("/app", &[], &[TaskSpec::running("c0", tasks[0].port())]);
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    // lb-sync's default coalescing and reload interval, as on the lbs.
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &["--min-reload-interval=250ms", "--coalesce=50ms"]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["c0"], Duration::from_secs(10)).await;

    let mut latencies = Vec::with_capacity(changes);
    for change in 1..=changes {
        let target = &tasks[change % 2];
        tokio::time::sleep(Duration::from_millis(pause)).await;
        cluster.set_app("/app", &[], &[TaskSpec::running(&target.name, target.port())]);
        let start = Instant::now();
        marathon.publish_status_update("/app", "TASK_RUNNING");
        // Served means: from then on, every new connection reaches the new task. Right after a
        // reload nginx's old worker may still accept a few connections with the old routes, so
        // one answer from the new task is not enough.
        let mut streak: Option<(Instant, usize)> = None;
        let served_at = loop {
            let answer = get(nginx.port, &host).await;
            let now = Instant::now();
            match answer {
                Some((200, body)) if task_name(&body) == Some(target.name.as_str()) => {
                    let (since, count) = streak.get_or_insert((now, 0));
                    *count += 1;
                    if *count == STREAK {
                        break *since;
                    }
                }
                _ => streak = None,
            }
            assert!(start.elapsed() < Duration::from_secs(10), "change {change} not served after 10 s");
        };
        latencies.push(served_at - start);
    }
    latencies.sort();
    let quantile = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    let (p50, p99, max) = (quantile(0.50), quantile(0.99), latencies[latencies.len() - 1]);
    eprintln!(
        "lb-sync convergence over {changes} changes {pause} ms apart, {others} other apps: p50 {p50:?}, p99 {p99:?}, max {max:?}, min {:?}",
        latencies[0]
    );
}
