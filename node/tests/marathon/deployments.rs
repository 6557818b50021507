//! Deployments that kill tasks end as Marathon's do: only once Mesos has reported the tasks
//! killed (`killService.killInstances` completes on terminal updates), so a client that waits
//! for `deployment_success` or for the deployment to leave `/v2/deployments` finds the tasks
//! gone.

use std::time::Duration;

use serde_json::Value;

use super::{Platform, settled};
use crate::support::get_json;

/// The events of `/v2/events`, parsed as they come.
struct Events {
    stream: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(base: &str) -> Events {
        let stream = super::event_stream(&format!("{base}/v2/events")).await;
        Events {
            stream,
            buffer: String::new(),
        }
    }

    /// Every event up to and including the first that `last` accepts (30 s at most).
    async fn until(&mut self, what: &str, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                    continue;
                };
                let event: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                let done = last(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 30 s; seen: {}", types(&seen).join(", ")))
                .unwrap()
                .expect("the event stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// `DELETE url`: the deployment id of the answer, which must be 200.
async fn delete_deployment_of(http: &reqwest::Client, url: &str) -> String {
    let response = http.delete(url).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(status, 200, "DELETE {url}: {body}");
    body["deploymentId"]
        .as_str()
        .unwrap_or_else(|| panic!("DELETE {url}: no deploymentId in {body}"))
        .to_string()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["taskStatus"].as_str() {
            Some(status) => format!("{}({status})", e["eventType"].as_str().unwrap_or("?")),
            None => e["eventType"].as_str().unwrap_or("?").to_string(),
        })
        .collect()
}

fn position(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("no {event} among {}", events.join(", ")))
}

/// A platform running `/stubborn`, `instances` tasks that ignore SIGTERM (so does their
/// sleep), so each kill lasts the grace period, `grace` seconds; its creation has ended.
async fn stubborn(instances: u32, grace: u32) -> (Platform, String) {
    let platform = Platform::start(1, 1).await;
    let base = platform.marathons[0].url();
    let app = format!(
        r#"{{"id":"/stubborn","instances":{instances},"cpus":0.1,"mem":16,"cmd":"trap '' TERM; sleep 600","taskKillGracePeriodSeconds":{grace}}}"#
    );
    let created = platform.http.post(format!("{base}/v2/apps")).body(app).send().await.unwrap();
    assert_eq!(created.status(), 201);
    platform.await_running(0, "/stubborn", instances as usize, false).await;
    settled(&platform.http, &base).await;
    (platform, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_that_kills_tasks_ends_only_once_mesos_reports_them_killed() {
    let (platform, base) = stubborn(2, 2).await;
    let http = &platform.http;
    let mut events = Events::open(&base).await;

    // Scaling down: the deployment is listed while the task dies, and ends after it is killed.
    let scaled: Value = http
        .put(format!("{base}/v2/apps/stubborn"))
        .body(r#"{"instances":1}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scale_down = scaled["deploymentId"].as_str().unwrap().to_string();
    let listed = get_json(http, &format!("{base}/v2/deployments")).await;
    assert_eq!(listed[0]["id"], scale_down.as_str(), "{listed}");
    let seen = events
        .until("the scale-down's deployment_success", |e| {
            e["eventType"] == "deployment_success" && e["id"] == scale_down.as_str()
        })
        .await;
    let seen = types(&seen);
    assert!(
        position(&seen, "status_update_event(TASK_KILLED)") < position(&seen, "deployment_success"),
        "{seen:?}"
    );
    let tasks = get_json(http, &format!("{base}/v2/apps/stubborn/tasks")).await;
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{tasks}");

    // Deleting: the app is gone at once; its StopApplication deployment is listed until its
    // last task is killed, then app_terminated_event and the deployment's success.
    let stop = delete_deployment_of(http, &format!("{base}/v2/apps/stubborn")).await;
    assert_eq!(http.get(format!("{base}/v2/apps/stubborn")).send().await.unwrap().status(), 404);
    let listed = get_json(http, &format!("{base}/v2/deployments")).await;
    assert_eq!(listed[0]["id"], stop.as_str(), "{listed}");
    assert_eq!(listed[0]["affectedApps"], serde_json::json!(["/stubborn"]), "{listed}");
    assert_eq!(listed[0]["currentActions"][0]["action"], "StopApplication", "{listed}");
    let seen = events
        .until("the delete's deployment_success", |e| {
            e["eventType"] == "deployment_success" && e["id"] == stop.as_str()
        })
        .await;
    let info = seen
        .iter()
        .find(|e| e["eventType"] == "deployment_info" && e["plan"]["id"] == stop.as_str())
        .unwrap_or_else(|| panic!("no deployment_info for the delete among {:?}", types(&seen)));
    assert_eq!(info["currentStep"]["actions"][0]["action"], "StopApplication");
    let seen = types(&seen);
    let killed = position(&seen, "status_update_event(TASK_KILLED)");
    let terminated = position(&seen, "app_terminated_event");
    assert!(
        killed < terminated && terminated < position(&seen, "deployment_success"),
        "{seen:?}"
    );
    let tasks = get_json(http, &format!("{base}/v2/tasks")).await;
    assert_eq!(tasks["tasks"], serde_json::json!([]), "{tasks}");
    assert_eq!(get_json(http, &format!("{base}/v2/deployments")).await, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_delete_brings_the_app_back_and_force_only_forgets_it() {
    let (platform, base) = stubborn(1, 5).await;
    let http = &platform.http;

    let stop = delete_deployment_of(http, &format!("{base}/v2/apps/stubborn")).await;
    let rolled_back = http.delete(format!("{base}/v2/deployments/{stop}")).send().await.unwrap();
    assert_eq!(rolled_back.status(), 200);
    let app = get_json(http, &format!("{base}/v2/apps/stubborn")).await;
    assert_eq!(app["app"]["instances"], 1, "the app is back as it was: {app}");
    platform.await_running(0, "/stubborn", 1, false).await;

    // The rollback's own deployment may still run (it waits for the first task to die).
    let stop = delete_deployment_of(http, &format!("{base}/v2/apps/stubborn?force=true")).await;
    let forgotten = http
        .delete(format!("{base}/v2/deployments/{stop}?force=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(forgotten.status(), 202);
    assert_eq!(get_json(http, &format!("{base}/v2/deployments")).await, serde_json::json!([]));
    assert_eq!(http.get(format!("{base}/v2/apps/stubborn")).send().await.unwrap().status(), 404);
    // Its task is killed all the same.
    crate::support::eventually(Duration::from_secs(20), "the deleted app's task to go", || async {
        let tasks = get_json(http, &format!("{base}/v2/tasks")).await;
        (tasks["tasks"] == serde_json::json!([])).then_some(())
    })
    .await;
}
