use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Platform, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_rolling_restart_keeps_minimum_health_capacity() {
    let platform = Platform::start(1, 2).await;
    let base = platform.marathons[0].url();
    // minimumHealthCapacity 0.5 of 4 instances: at least 2 healthy tasks at every moment.
    platform
        .http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/www", 4, "/", "[]"))
        .send()
        .await
        .unwrap();
    let before: BTreeSet<String> = platform
        .await_running(0, "/www", 4, true)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let restarted = platform
        .http
        .post(format!("{base}/v2/apps/www/restart?force=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(restarted.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lowest = usize::MAX;
    loop {
        let app: Value = crate::support::get_json(&platform.http, &format!("{base}/v2/apps/www")).await;
        let tasks = app["app"]["tasks"].as_array().unwrap();
        let healthy = tasks
            .iter()
            .filter(|t| {
                t["state"] == "TASK_RUNNING"
                    && t["healthCheckResults"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty() && r.iter().all(|h| h["alive"] == true))
            })
            .count();
        lowest = lowest.min(healthy);
        let ids: BTreeSet<String> = tasks.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
        if healthy == 4 && ids.len() == 4 && ids.is_disjoint(&before) {
            break;
        }
        assert!(Instant::now() < deadline, "restart not finished within 120 s: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lowest >= 2,
        "healthy tasks fell to {lowest} during the restart, below minimumHealthCapacity 0.5 of 4"
    );
}
