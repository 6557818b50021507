use std::time::Duration;

use serde_json::Value;

use super::{Platform, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_replaces_a_task_that_fails_its_health_check() {
    let platform = Platform::start(1, 1).await;
    let base = platform.marathons[0].url();
    let mut stream = super::event_stream(&format!("{base}/v2/events?event_type=health_status_changed_event")).await;
    // The task serves `/` but the check asks for a page it never has.
    platform
        .http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/sick", 1, "/missing", "[]"))
        .send()
        .await
        .unwrap();
    let first = crate::support::eventually(Duration::from_secs(30), "a running task", || async {
        let app: Value = crate::support::try_get_json(&platform.http, &format!("{base}/v2/apps/sick")).await?;
        app["app"]["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["state"] == "TASK_RUNNING")
            .map(|t| t["id"].as_str().unwrap().to_owned())
    })
    .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains("\"alive\":false") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an unhealthy report within 30 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("event: status_update_event"), "the stream filters by event_type");
    crate::support::eventually(Duration::from_secs(30), "the unhealthy task replaced", || async {
        let app: Value = crate::support::try_get_json(&platform.http, &format!("{base}/v2/apps/sick")).await?;
        let tasks = app["app"]["tasks"].as_array()?;
        (!tasks.is_empty() && tasks.iter().all(|t| t["id"] != first.as_str())).then_some(())
    })
    .await;
}
