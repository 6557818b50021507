use std::collections::BTreeSet;

use serde_json::Value;

use super::{Platform, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_runs_scales_spreads_and_answers_like_marathon() {
    let platform = Platform::start(2, 3).await;
    let leader = platform.leader().await;
    let follower = 1 - leader;
    let base = platform.marathons[follower].url();
    let http = &platform.http;

    // Created through the follower, which proxies to the leader.
    let created = http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/www", 3, "/", r#"[["zone","GROUP_BY"]]"#))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let tasks = platform.await_running(follower, "/www", 3, true).await;
    let hosts: BTreeSet<&str> = tasks.iter().map(|t| t["slaveId"].as_str().unwrap()).collect();
    assert_eq!(hosts.len(), 3, "GROUP_BY zone puts one task in each of the 3 zones");
    for task in &tasks {
        let port = task["ports"][0].as_u64().unwrap();
        let body = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body.trim(), task["id"].as_str().unwrap(), "each task serves its own id");
    }
    // Both task formats.
    let json: Value = crate::support::get_json(http, &format!("{base}/v2/apps/www/tasks")).await;
    assert_eq!(json["tasks"].as_array().unwrap().len(), 3);
    let text = http
        .get(format!("{base}/v2/apps/www/tasks"))
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(text.matches("127.0.0.1:").count(), 3, "{text}");

    // Scale up and down (the newest go first).
    let scaled = http
        .put(format!("{base}/v2/apps/www?force=true"))
        .body(r#"{"instances":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(scaled.status(), 200);
    platform.await_running(leader, "/www", 5, true).await;
    let original: BTreeSet<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    http.put(format!("{base}/v2/apps/www?force=true"))
        .body(r#"{"instances":1}"#)
        .send()
        .await
        .unwrap();
    let one = platform.await_running(leader, "/www", 1, true).await;
    assert!(
        original.contains(one[0]["id"].as_str().unwrap()),
        "scaling down kills the newest tasks first"
    );

    // Errors as Marathon gives them.
    let dup = http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/www", 1, "/", "[]"))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let missing = http.get(format!("{base}/v2/apps/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let malformed = http.post(format!("{base}/v2/apps")).body("{\"id\":").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let invalid = http
        .post(format!("{base}/v2/apps"))
        .body(r#"{"id":"/Bad_Id","instances":-1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let body: Value = invalid.json().await.unwrap();
    assert!(body["details"].as_array().unwrap().iter().any(|d| d["path"] == "/id"), "{body}");
    let locked = http
        .put(format!("{base}/v2/apps/www"))
        .body(r#"{"instances":0}"#)
        .send()
        .await
        .unwrap();
    assert!(
        locked.status() == 200 || locked.status() == 409,
        "a deployment lock answers 409, a converged app 200"
    );

    // Deleting an app stops its tasks.
    let deleted = http.delete(format!("{base}/v2/apps/www?force=true")).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    crate::support::eventually(std::time::Duration::from_secs(20), "no tasks left", || async {
        let tasks: Value = crate::support::try_get_json(http, &format!("{base}/v2/tasks")).await?;
        tasks["tasks"].as_array()?.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_event_stream_reports_api_posts_and_status_updates() {
    let platform = Platform::start(1, 1).await;
    let base = platform.marathons[0].url();
    let mut stream = super::event_stream(&format!("{base}/v2/events")).await;
    platform
        .http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/shop/cart-v2", 1, "/", "[]"))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(seen.contains("event: api_post_event") && seen.contains("\"taskStatus\":\"TASK_RUNNING\"")) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("events within 30 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("\"appId\":\"/shop/cart-v2\""), "{seen}");
}
