//! Marathon's responses have the shape of the reference examples (the same keys at every
//! level), and the app life as third-party clients drive it: normalized definitions, service
//! ports, versions and rollback, ids that look like sub-resources, JAX-RS booleans, the queue,
//! deployments, groups and the events around them.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Platform, web_app};
use crate::support::eventually;

/// The upstream examples, kept in the repository as test data.
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/marathon/testdata");

fn example(name: &str) -> Value {
    let path = format!("{EXAMPLES}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading the reference example {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Where `actual` differs in keys from `expected`, recursively: objects must hold the same keys
/// (but those in `except`, named by their path like `/apps/*/portDefinitions`); arrays compare
/// their first elements when both have one.
fn key_differences(expected: &Value, actual: &Value, path: &str, except: &[&str], out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let ek: BTreeSet<&String> = e.keys().collect();
            let ak: BTreeSet<&String> = a.keys().collect();
            for k in ek.difference(&ak) {
                let p = format!("{path}/{k}");
                if !except.contains(&p.as_str()) {
                    out.push(format!("missing {p}"));
                }
            }
            for k in ak.difference(&ek) {
                let p = format!("{path}/{k}");
                if !except.contains(&p.as_str()) {
                    out.push(format!("extra {p}"));
                }
            }
            for k in ek.intersection(&ak) {
                let p = format!("{path}/{k}");
                // The keys of `env` and `labels` are the user's own, not Marathon's.
                let user_keys = matches!(k.as_str(), "env" | "labels");
                if !user_keys && !except.contains(&format!("{p}/**").as_str()) {
                    key_differences(&e[k.as_str()], &a[k.as_str()], &p, except, out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                key_differences(e, a, &format!("{path}/*"), except, out);
            }
        }
        _ => {}
    }
}

fn assert_shape(name: &str, actual: &Value, except: &[&str]) {
    let mut out = Vec::new();
    key_differences(&example(name), actual, "", except, &mut out);
    assert!(out.is_empty(), "{name}: {out:?}\nactual: {actual:#}");
}

async fn get(platform: &Platform, path: &str) -> (u16, Value) {
    send(platform, reqwest::Method::GET, path, None).await
}

async fn send(platform: &Platform, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", platform.marathons[0].url());
    let mut request = platform.http.request(method, &url);
    if let Some(body) = body {
        request = request.header("Content-Type", "application/json").body(body.to_string());
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Waits until no deployment runs.
async fn settled(platform: &Platform) {
    super::settled(&platform.http, &platform.marathons[0].url()).await;
}

/// An app that never fits an agent (2 cpus each), so it stays queued and deploying.
fn unplaceable(id: &str) -> Value {
    json!({ "id": id, "cmd": "sleep 1000", "cpus": 100, "mem": 16, "labels": { "tier": "never" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_responses_have_the_keys_of_the_reference_examples() {
    let platform = Platform::start(1, 1).await;
    let (status, created) = send(
        &platform,
        reqwest::Method::POST,
        "/v2/apps",
        Some(serde_json::from_str(&web_app("/tools/web", 1, "/", r#"[["hostname","UNIQUE"]]"#)).unwrap()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let tasks = platform.await_running(0, "/tools/web", 1, true).await;
    let (status, _) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(unplaceable("/tools/big"))).await;
    assert_eq!(status, 201);

    // app_list.json predates `portDefinitions` (Marathon 0.16+ returns it with the legacy
    // `ports`; the brief of this API asks for both).
    let (_, apps) = get(&platform, "/v2/apps").await;
    assert_shape("app_list.json", &apps, &["/apps/*/portDefinitions"]);
    // The deploying app shows its deployment as the example does.
    let big = apps["apps"].as_array().unwrap().iter().find(|a| a["id"] == "/tools/big").unwrap();
    assert_eq!(big["deployments"].as_array().unwrap().len(), 1, "{big}");
    let mut out = Vec::new();
    key_differences(&example("app_list.json")["apps"][0], big, "", &["/portDefinitions"], &mut out);
    assert!(out.is_empty(), "{out:?}");

    // Tasks: `ipAddresses` is in task.raml and Marathon 1.x fills it from the task's network
    // info (the examples predate it); `region` and `zone` come only from an agent's fault
    // domain (task.raml marks them optional), which the sim's agents do not declare.
    let task_exceptions = ["/tasks/*/ipAddresses", "/tasks/*/region", "/tasks/*/zone"];
    let (_, all) = get(&platform, "/v2/tasks").await;
    // The web app passes its health checks; task.raml lists their results, the example has none.
    let mut all_without_health = all.clone();
    for t in all_without_health["tasks"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("healthCheckResults");
    }
    assert_shape("tasks.json", &all_without_health, &task_exceptions);
    assert!(all["tasks"][0]["healthCheckResults"][0]["alive"] == true, "{all}");
    // app_tasks.json leaves out `servicePorts`, which tasks.json (and task.raml) show.
    let (_, app_tasks) = get(&platform, "/v2/apps/tools/web/tasks").await;
    let mut app_tasks_plain = app_tasks.clone();
    for t in app_tasks_plain["tasks"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("healthCheckResults");
    }
    assert_shape(
        "app_tasks.json",
        &app_tasks_plain,
        &[&task_exceptions[..], &["/tasks/*/servicePorts"]].concat(),
    );

    let (_, deployments) = get(&platform, "/v2/deployments").await;
    assert_shape("deployments.json", &deployments, &[]);
    let (_, info) = get(&platform, "/v2/info").await;
    // `event_subscriber` appears when an event subscriber is configured (the SSE stream here).
    assert_shape("info.json", &info, &["/event_subscriber"]);
    // The queue's `app` is the full definition; the example abbreviates it (its two entries
    // list different fields), and app_list.json above checks the definition's keys.
    let queue = eventually(Duration::from_secs(20), "the big app queued", || async {
        let (_, q) = get(&platform, "/v2/queue").await;
        q["queue"].as_array().is_some_and(|q| !q.is_empty()).then_some(q)
    })
    .await;
    assert_shape("queue.json", &queue, &["/queue/*/app/**"]);
    assert_eq!(queue["queue"][0]["app"]["id"], "/tools/big");
    // Group apps are full definitions too (group.json drops empty fields such as `cmd`).
    let (_, groups) = get(&platform, "/v2/groups").await;
    assert_shape("group.json", &groups, &["/groups/*/apps/**"]);
    assert_eq!(groups["groups"][0]["apps"].as_array().unwrap().len(), 2, "{groups}");

    // Killing one task answers as app_task.json shows.
    let task_id = tasks[0]["id"].as_str().unwrap();
    let (status, killed) = send(
        &platform,
        reqwest::Method::DELETE,
        &format!("/v2/apps/tools/web/tasks/{task_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mut killed_plain = killed.clone();
    killed_plain["task"].as_object_mut().unwrap().remove("healthCheckResults");
    assert_shape(
        "app_task.json",
        &killed_plain,
        &["/task/ipAddresses", "/task/region", "/task/zone", "/task/servicePorts"],
    );
    let (status, result) = send(
        &platform,
        reqwest::Method::PUT,
        "/v2/apps/tools/web?force=true",
        Some(json!({ "instances": 2 })),
    )
    .await;
    assert_eq!(status, 200);
    assert_shape("deployments_result.json", &result, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_app_life_as_clients_drive_it() {
    let platform = Platform::start(1, 2).await;
    let base = platform.marathons[0].url();
    let mut events = super::event_stream(&format!("{base}/v2/events")).await;

    // An app that names a sub-resource in its id, posted bare: normalized, with service ports.
    let bare =
        json!({ "id": "/tasks-api", "cmd": "exec python3 -m http.server --bind 127.0.0.1 $PORT0", "cpus": 0.1, "mem": 32, "instances": 1 });
    let (status, created) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(bare)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["labels"], json!({}));
    assert_eq!(created["env"], json!({}));
    assert_eq!(created["requirePorts"], false);
    assert_eq!(created["backoffFactor"], 1.15);
    let service_port = created["ports"][0].as_u64().unwrap();
    assert!((10000..20000).contains(&service_port), "{created}");
    assert_eq!(created["portDefinitions"][0]["port"], service_port);
    let (_, other) = send(
        &platform,
        reqwest::Method::POST,
        "/v2/apps",
        Some(json!({ "id": "/b", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0, "ports": [0, 0] })),
    )
    .await;
    let other_ports: BTreeSet<u64> = other["ports"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()).collect();
    assert_eq!(other_ports.len(), 2);
    assert!(!other_ports.contains(&service_port), "service ports are unique across apps");
    // Several apps at once (apps_patch.json's form): merged over what they were.
    let (status, _) = send(
        &platform,
        reqwest::Method::PUT,
        "/v2/apps?force=true",
        Some(json!([{ "id": "/b", "cpus": 0.2 }])),
    )
    .await;
    assert_eq!(status, 200);
    let (_, b) = get(&platform, "/v2/apps/b").await;
    assert_eq!(
        (b["app"]["cpus"].clone(), b["app"]["ports"].clone()),
        (json!(0.2), other["ports"].clone())
    );

    let tasks = platform.await_running(0, "/tasks-api", 1, false).await;
    assert_eq!(tasks[0]["servicePorts"], json!([service_port]));
    assert!(tasks[0].get("agentId").is_none() && tasks[0]["slaveId"].is_string(), "{}", tasks[0]);
    let (status, listed) = get(&platform, "/v2/apps/tasks-api/tasks").await;
    assert_eq!(status, 200);
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1);

    // GET, then PUT the same body back: nothing changes (same version, no deployment).
    settled(&platform).await;
    let (_, got) = get(&platform, "/v2/apps/tasks-api").await;
    let app = got["app"].clone();
    let (status, answer) = send(&platform, reqwest::Method::PUT, "/v2/apps/tasks-api", Some(app.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["version"], app["version"]);
    let (_, again) = get(&platform, "/v2/apps/tasks-api").await;
    assert_eq!(again["app"]["version"], app["version"]);
    assert_eq!(again["app"]["deployments"], json!([]));

    // A scaling is a new version with the config time kept.
    let (status, _) = send(
        &platform,
        reqwest::Method::PUT,
        "/v2/apps/tasks-api",
        Some(json!({ "instances": 2 })),
    )
    .await;
    assert_eq!(status, 200);
    platform.await_running(0, "/tasks-api", 2, false).await;
    let (_, scaled) = get(&platform, "/v2/apps/tasks-api").await;
    let scaled = &scaled["app"];
    assert_ne!(scaled["version"], app["version"]);
    assert_eq!(
        scaled["versionInfo"]["lastConfigChangeAt"],
        app["versionInfo"]["lastConfigChangeAt"]
    );

    // Versions: newest first; each one readable; PUT {"version"} rolls back.
    let (status, versions) = get(&platform, "/v2/apps/tasks-api/versions").await;
    assert_eq!(status, 200, "{versions}");
    let versions: Vec<String> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert_eq!(versions[0], scaled["version"].as_str().unwrap());
    let (status, first) = get(&platform, &format!("/v2/apps/tasks-api/versions/{}", versions[1])).await;
    assert_eq!(status, 200);
    assert_eq!(first["instances"], 1);
    let (status, _) = get(&platform, "/v2/apps/tasks-api/versions/1999-01-01T00:00:00.000Z").await;
    assert_eq!(status, 404);
    let (status, rolled) = send(
        &platform,
        reqwest::Method::PUT,
        "/v2/apps/tasks-api?force=TRUE",
        Some(json!({ "version": versions[1] })),
    )
    .await;
    assert_eq!(status, 200, "{rolled}");
    platform.await_running(0, "/tasks-api", 1, false).await;
    // The rollback's deployment ends once the task it killed is gone, so the one task listed
    // below is the survivor, not one already being killed.
    settled(&platform).await;

    // JAX-RS booleans: any case; anything else is 400 naming the parameter.
    let (status, bad) = send(&platform, reqwest::Method::DELETE, "/v2/apps/tasks-api?force=yes", None).await;
    assert_eq!(status, 400);
    assert!(bad["message"].as_str().unwrap().contains("force"), "{bad}");

    // Kill with scale=True scales down instead of relaunching.
    let (_, current) = get(&platform, "/v2/apps/tasks-api").await;
    let task_id = current["app"]["tasks"][0]["id"].as_str().unwrap().to_owned();
    let (status, killed) = send(
        &platform,
        reqwest::Method::DELETE,
        &format!("/v2/apps/tasks-api/tasks/{task_id}?scale=True&force=true"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{killed}");
    assert!(killed["deploymentId"].is_string(), "{killed}");
    let (_, after) = get(&platform, "/v2/apps/tasks-api").await;
    assert_eq!(after["app"]["instances"], 0);

    // POST /v2/tasks/delete with scale and wipe together is refused.
    let (status, _) = send(
        &platform,
        reqwest::Method::POST,
        "/v2/tasks/delete?scale=true&wipe=true",
        Some(json!({ "ids": [] })),
    )
    .await;
    assert_eq!(status, 400);

    // Restarting and a trailing slash.
    let (status, restarted) = send(&platform, reqwest::Method::POST, "/v2/apps/tasks-api/restart?force=true", None).await;
    assert_eq!(status, 200, "{restarted}");
    let (status, _) = get(&platform, "/v2/apps/tasks-api/").await;
    assert_eq!(status, 200);

    // A deployment that cannot finish: DELETE rolls it back (the app it created goes), and
    // deleting an app during a deployment takes force=True.
    let (_, big) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(unplaceable("/big"))).await;
    let deployment = big["deployments"][0]["id"].as_str().unwrap().to_owned();
    let (status, locked) = send(&platform, reqwest::Method::PUT, "/v2/apps/big", Some(json!({ "instances": 2 }))).await;
    assert_eq!(status, 409, "{locked}");
    let (status, _) = send(&platform, reqwest::Method::DELETE, &format!("/v2/deployments/{deployment}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = get(&platform, "/v2/apps/big").await;
    assert_eq!(status, 404, "rolling back the deployment that created an app removes it");
    let (_, big) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(unplaceable("/big"))).await;
    let deployment = big["deployments"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        &platform,
        reqwest::Method::DELETE,
        &format!("/v2/deployments/{deployment}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = get(&platform, "/v2/apps/big").await;
    assert_eq!(status, 200, "force only forgets the deployment");
    let (_, queue) = get(&platform, "/v2/queue").await;
    assert!(
        queue["queue"].as_array().unwrap().iter().any(|e| e["app"]["id"] == "/big"),
        "{queue}"
    );
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/queue/big/delay", None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/queue/tasks-api/delay", None).await;
    assert_eq!(status, 404, "an app with all its tasks is not queued");
    let (_, redeploy) = send(
        &platform,
        reqwest::Method::PUT,
        "/v2/apps/big?force=true",
        Some(json!({ "instances": 3 })),
    )
    .await;
    assert!(redeploy["deploymentId"].is_string());
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/apps/big?force=True", None).await;
    assert_eq!(status, 200);

    // Groups: nested apps with relative ids and dependencies.
    let group = json!({ "id": "/shop", "dependencies": ["/b"], "apps": [
        { "id": "db", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0 },
        { "id": "web", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0, "dependencies": ["db"] }
    ], "groups": [{ "id": "jobs", "apps": [{ "id": "/shop/jobs/nightly", "cmd": "sleep 1", "instances": 0 }] }] });
    let (status, posted) = send(&platform, reqwest::Method::POST, "/v2/groups", Some(group.clone())).await;
    assert_eq!(status, 201, "{posted}");
    let (status, _) = send(&platform, reqwest::Method::POST, "/v2/groups", Some(group)).await;
    assert_eq!(status, 409);
    let (status, shop) = get(&platform, "/v2/groups/shop").await;
    assert_eq!(status, 200);
    let web = shop["apps"].as_array().unwrap().iter().find(|a| a["id"] == "/shop/web").unwrap();
    assert_eq!(web["dependencies"], json!(["/shop/db"]));
    assert_eq!(shop["groups"][0]["id"], "/shop/jobs");
    assert_eq!(shop["dependencies"], json!(["/b"]));
    // A group posted without an id is the root; the tree still renders (it once recursed
    // into the root's own record without end).
    let (status, _) = send(&platform, reqwest::Method::POST, "/v2/groups", Some(json!({ "dependencies": [] }))).await;
    assert!(status < 500, "{status}");
    let (status, _) = get(&platform, "/v2/groups").await;
    assert_eq!(status, 200);
    // An empty group exists too.
    let (status, _) = send(&platform, reqwest::Method::POST, "/v2/groups", Some(json!({ "id": "/empty" }))).await;
    assert_eq!(status, 201);
    let (status, empty) = get(&platform, "/v2/groups/empty").await;
    assert_eq!((status, empty["apps"].clone()), (200, json!([])));
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/groups/empty", None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/groups/shop", None).await;
    assert_eq!(status, 200);
    let (status, _) = get(&platform, "/v2/groups/shop").await;
    assert_eq!(status, 404);

    // The app with `tasks` in its id goes as any other.
    settled(&platform).await;
    let (status, _) = send(&platform, reqwest::Method::DELETE, "/v2/apps/tasks-api", None).await;
    assert_eq!(status, 200);
    let (status, _) = get(&platform, "/v2/apps/tasks-api").await;
    assert_eq!(status, 404);

    // The events clients wait on were sent.
    let wanted = [
        "event_stream_attached",
        "api_post_event",
        "deployment_info",
        "deployment_step_success",
        "deployment_success",
        "deployment_failed",
        "deployment_step_failure",
        "instance_changed_event",
        "app_terminated_event",
    ];
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !wanted.iter().all(|w| seen.contains(&format!("event: {w}\n"))) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("events {wanted:?} within 30 s; seen:\n{seen}"))
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_refuses_out_of_range_numbers_and_keeps_answering() {
    let platform = Platform::start(1, 1).await;
    let app = json!({ "id": "/huge", "cmd": "sleep 1", "healthChecks": [{ "protocol": "HTTP", "intervalSeconds": 1e300 }] });
    let (status, body) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(app)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["message"], "Object is not valid");
    assert_eq!(body["details"][0]["path"], "/healthChecks(0)/intervalSeconds", "{body}");
    for (field, value) in [
        ("instances", json!(-1)),
        ("cpus", json!(-0.5)),
        ("mem", json!("lots")),
        ("ports", json!([70000])),
        ("backoffFactor", json!(0.5)),
    ] {
        let mut app = json!({ "id": "/bad", "cmd": "sleep 1" });
        app[field] = value;
        let (status, body) = send(&platform, reqwest::Method::POST, "/v2/apps", Some(app)).await;
        assert_eq!(status, 422, "{field}: {body}");
        assert!(
            body["details"][0]["path"].as_str().unwrap().starts_with(&format!("/{field}")),
            "{field}: {body}"
        );
    }
    let (status, _) = get(&platform, "/v2/apps").await;
    assert_eq!(status, 200);
}

/// A stored app this version cannot run is skipped by a new leader, which leads anyway; a task
/// whose record cannot be written is not launched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_skips_unrunnable_stored_apps_and_never_launches_unrecorded_tasks() {
    let mut platform = Platform::start(1, 1).await;
    let (status, _) = send(
        &platform,
        reqwest::Method::POST,
        "/v2/apps",
        Some(json!({ "id": "/good", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0 })),
    )
    .await;
    assert_eq!(status, 201);
    let url = paas_node::zk::ZkUrl::parse(&platform.mesos.zk.url("marathon")).unwrap();
    let zk = paas_node::zk::connect(&url, Duration::from_secs(10)).await.unwrap();
    let bad = json!({ "definition": { "id": "/bad", "cmd": "x", "healthChecks": [{ "intervalSeconds": 1e300 }] }, "version": "2015-01-01T00:00:00.000Z" });
    let options = zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    zk.create(&format!("{}/state/apps/bad", url.path), bad.to_string().as_bytes(), &options)
        .await
        .unwrap();
    // A new leader loads the stored apps.
    platform.marathons[0].process.kill();
    platform.marathons.clear();
    platform.start_marathon();
    platform.leader().await;
    let (status, apps) = get(&platform, "/v2/apps").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = apps["apps"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["/good"]);

    // Without the folder of task records every record fails: offers go unused, nothing runs.
    zk.delete(&format!("{}/state/tasks", url.path), None).await.unwrap();
    let (status, _) = send(&platform, reqwest::Method::PUT, "/v2/apps/good", Some(json!({ "instances": 1 }))).await;
    assert_eq!(status, 200);
    eventually(Duration::from_secs(20), "an offer weighed and left unused for /good", || async {
        let (_, q) = get(&platform, "/v2/queue").await;
        let entry = q["queue"].as_array()?.iter().find(|e| e["app"]["id"] == "/good")?.clone();
        (entry["processedOffersSummary"]["unusedOffersCount"].as_u64()? >= 1).then_some(())
    })
    .await;
    let state = platform.mesos.leader_state().await.expect("the master's state");
    let launched: usize = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tasks"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(launched, 0, "no task without a record reached Mesos: {state}");
    let (_, tasks) = get(&platform, "/v2/tasks").await;
    assert_eq!(tasks["tasks"], json!([]));
    // With the folder back, the task is recorded and launched.
    paas_node::zk::ensure_path(&zk, &format!("{}/state/tasks", url.path)).await.unwrap();
    platform.await_running(0, "/good", 1, false).await;
}
