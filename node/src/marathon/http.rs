//! Marathon's REST API v2 on axum. A non-leader proxies every `/v2` call to the leader.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::Shared;
use super::app::{self, DefinitionError};
use super::model::{App, timestamp};
use super::store::AppRecord;

pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(shared)
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    reply(status, json!({ "message": text.into() }))
}

/// Decodes `%XX` and `+` of a query component.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| {
                std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .flatten();
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's pairs, decoded, in order (a key may repeat).
fn query(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    q.iter().any(|(k, v)| k == name && (v.is_empty() || v == "true"))
}

async fn dispatch(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().trim_end_matches('/').to_owned();
    if path == "/ping" {
        return (StatusCode::OK, "pong\n").into_response();
    }
    if path.is_empty() {
        return ui(&shared);
    }
    if !shared.is_leader.load(Ordering::SeqCst) && path.starts_with("/v2") {
        return proxy(&shared, method, &uri, &headers, body).await;
    }
    let q = query(&uri);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["v2", "info"]) => info(&shared),
        (Method::GET, ["v2", "leader"]) => reply(StatusCode::OK, json!({ "leader": shared.leader.lock().unwrap().clone() })),
        (Method::DELETE, ["v2", "leader"]) => {
            // Abdicate: leave the election by ending this process; the supervisor restarts it.
            tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                std::process::exit(0);
            });
            message(StatusCode::OK, "Leadership abdicated")
        }
        (Method::GET, ["v2", "events"]) => events(&shared, &q),
        (Method::GET, ["v2", "apps"]) => list_apps(&shared, &q),
        (Method::POST, ["v2", "apps"]) => create_app(&shared, &uri, &body).await,
        (Method::GET, ["v2", "tasks"]) => {
            let world = shared.world.lock().unwrap();
            let tasks: Vec<Value> = world
                .tasks
                .values()
                .filter(|t| !t.state.is_terminal())
                .map(|t| t.to_json())
                .collect();
            reply(StatusCode::OK, json!({ "tasks": tasks }))
        }
        (Method::GET, ["v2", "deployments"]) => reply(StatusCode::OK, shared.world.lock().unwrap().deployments_json()),
        (Method::DELETE, ["v2", "deployments", id]) => {
            let mut world = shared.world.lock().unwrap();
            match world.apps.values_mut().find(|a| a.deployment.as_deref() == Some(*id)) {
                Some(app) => {
                    app.deployment = None;
                    reply(StatusCode::OK, json!({ "deploymentId": id, "version": app.version }))
                }
                None => message(StatusCode::NOT_FOUND, format!("DeploymentPlan {id} does not exist")),
            }
        }
        (_, ["v2", "apps", ..]) => {
            let rest = &path["/v2/apps".len()..];
            app_routes(&shared, method, &uri, &headers, &q, rest, &body).await
        }
        _ => message(StatusCode::NOT_FOUND, format!("The requested resource {path} could not be found")),
    }
}

fn ui(shared: &Shared) -> Response {
    let world = shared.world.lock().unwrap();
    let mut rows = String::new();
    for app in world.apps.values() {
        let running = world
            .tasks_of(&app.spec.id)
            .filter(|t| t.state == crate::mesos::v1::TaskState::Running)
            .count();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{running} / {}</td></tr>",
            app.spec.id, app.spec.instances
        ));
    }
    let leader = shared.leader.lock().unwrap().clone().unwrap_or_default();
    let html = format!(
        "<!doctype html><title>Marathon</title><h1>Marathon</h1><p>Leader: {leader}</p>\
         <table><tr><th>App</th><th>Running / instances</th></tr>{rows}</table><p>API: <a href=\"/v2/apps\">/v2/apps</a></p>"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

fn info(shared: &Shared) -> Response {
    reply(
        StatusCode::OK,
        json!({
            "name": "marathon",
            "version": "1.11.0-paas",
            "frameworkId": shared.framework_id.lock().unwrap().clone(),
            "leader": shared.leader.lock().unwrap().clone(),
            "elected": shared.is_leader.load(Ordering::SeqCst),
            "http_config": { "http_port": shared.config.http_port },
            "marathon_config": {
                "master": shared.config.master.to_string(),
                "framework_name": shared.config.framework_name,
                "hostname": shared.config.hostname,
                "task_launch_timeout": shared.config.task_launch_timeout.as_millis() as u64,
            },
            "zookeeper_config": { "zk": shared.config.zk.to_string() },
        }),
    )
}

async fn proxy(shared: &Shared, method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let Some(leader) = shared.leader.lock().unwrap().clone() else {
        return message(StatusCode::SERVICE_UNAVAILABLE, "Could not determine the current leader");
    };
    let url = format!("http://{leader}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = shared.http.request(method, &url).body(body);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            let mut out = Response::builder()
                .status(status.as_u16())
                .header("X-Marathon-Leader", format!("http://{leader}"));
            if let Some(ct) = content_type {
                out = out.header(header::CONTENT_TYPE, ct);
            }
            out.body(Body::from_stream(response.bytes_stream()))
                .unwrap_or_else(|_| message(StatusCode::BAD_GATEWAY, "bad response from the leader"))
        }
        Err(e) => message(StatusCode::BAD_GATEWAY, format!("the leader {leader} did not answer: {e}")),
    }
}

fn events(shared: &Shared, q: &[(String, String)]) -> Response {
    let wanted: Vec<String> = q.iter().filter(|(k, _)| k == "event_type").map(|(_, v)| v.clone()).collect();
    let receiver = shared.events.subscribe();
    let stream = tokio_stream_from(receiver).filter_map(move |event| {
        let wanted = wanted.clone();
        async move {
            let kind = event.get("eventType").and_then(Value::as_str).unwrap_or("event").to_owned();
            (wanted.is_empty() || wanted.contains(&kind))
                .then(|| Ok::<_, Infallible>(Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))))
        }
    });
    // A comment first, so clients see the stream open at once.
    let hello = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b":\n\n")) });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(hello.chain(stream)))
        .expect("valid response")
}

/// A broadcast receiver as a stream; a slow reader that lags skips ahead.
fn tokio_stream_from(receiver: tokio::sync::broadcast::Receiver<Value>) -> impl futures::Stream<Item = Value> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(value) => return Some((value, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

fn list_apps(shared: &Shared, q: &[(String, String)]) -> Response {
    let embed_tasks = q.iter().any(|(k, v)| k == "embed" && v == "apps.tasks");
    let labels: Vec<(String, Option<String>)> = q
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| match v.split_once("==") {
            Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
            None => (v.trim().to_owned(), None),
        })
        .collect();
    let world = shared.world.lock().unwrap();
    let apps: Vec<Value> = world
        .apps
        .values()
        .filter(|app| {
            labels.iter().all(|(k, v)| {
                let found = app.definition.get("labels").and_then(|l| l.get(k)).and_then(Value::as_str);
                match v {
                    Some(v) => found == Some(v.as_str()),
                    None => found.is_some(),
                }
            })
        })
        .map(|app| world.app_json(app, embed_tasks))
        .collect();
    reply(StatusCode::OK, json!({ "apps": apps }))
}

fn invalid(e: DefinitionError) -> Response {
    let status = match e {
        DefinitionError::Malformed(_) => StatusCode::BAD_REQUEST,
        DefinitionError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    reply(status, e.body())
}

/// Stores `definition` as the new version of its app, and tells the scheduler.
async fn commit(shared: &Shared, uri: &Uri, definition: Map<String, Value>, replace_tasks: bool) -> Result<(String, String), Response> {
    let spec = app::check(&definition).map_err(invalid)?;
    let version = timestamp(SystemTime::now());
    let deployment = uuid::Uuid::new_v4().to_string();
    let previous = shared.world.lock().unwrap().apps.get(&spec.id).cloned();
    // A change of anything but the instance count replaces the tasks.
    let replace = replace_tasks
        || previous.as_ref().is_some_and(|p| {
            let mut a = p.definition.clone();
            let mut b = definition.clone();
            a.remove("instances");
            b.remove("instances");
            a != b
        });
    let version_kept = previous.as_ref().filter(|_| !replace).map(|p| p.version.clone());
    let app = App {
        definition: definition.clone(),
        spec: spec.clone(),
        version: version_kept.unwrap_or_else(|| version.clone()),
        failures: 0,
        delayed_until: None,
        last_task_failure: previous.as_ref().and_then(|p| p.last_task_failure.clone()),
        deployment: Some(deployment.clone()),
        replacing: replace,
    };
    let record = AppRecord {
        definition: definition.clone(),
        version: app.version.clone(),
    };
    if let Err(e) = shared.store.save_app(&shared.zk, &record).await {
        return Err(message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the app: {e}")));
    }
    let json = {
        let mut world = shared.world.lock().unwrap();
        let json = world.app_json(&app, false);
        world.apps.insert(spec.id.clone(), app);
        json
    };
    let _ = shared.events.send(json!({
        "eventType": "api_post_event",
        "timestamp": timestamp(SystemTime::now()),
        "clientIp": null,
        "uri": uri.path(),
        "appDefinition": json,
    }));
    let _ = shared.events.send(json!({ "eventType": "deployment_info", "plan": { "id": deployment, "affectedApps": [spec.id] }, "timestamp": timestamp(SystemTime::now()) }));
    shared.wake.notify_one();
    Ok((version, deployment))
}

async fn create_app(shared: &Shared, uri: &Uri, body: &[u8]) -> Response {
    let definition = match app::parse_definition(body, None) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    let id = definition
        .get("id")
        .and_then(Value::as_str)
        .map(app::normalize_id)
        .unwrap_or_default();
    if shared.world.lock().unwrap().apps.contains_key(&id) {
        return message(StatusCode::CONFLICT, format!("An app with id [{id}] already exists."));
    }
    match commit(shared, uri, definition, false).await {
        Ok(_) => {
            let world = shared.world.lock().unwrap();
            reply(StatusCode::CREATED, world.app_json(&world.apps[&id], false))
        }
        Err(response) => response,
    }
}

fn locked(app: &App) -> Option<Response> {
    app.deployment.as_ref().map(|id| {
        reply(
            StatusCode::CONFLICT,
            json!({
                "message": format!("App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{id}'."),
                "deployments": [{ "id": id }],
            }),
        )
    })
}

async fn app_routes(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    q: &[(String, String)],
    rest: &str,
    body: &[u8],
) -> Response {
    let force = flag(q, "force");
    if let Some(id) = rest.strip_suffix("/restart") {
        let id = app::normalize_id(id);
        let Some(app) = shared.world.lock().unwrap().apps.get(&id).cloned() else {
            return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
        };
        if method != Method::POST {
            return message(StatusCode::METHOD_NOT_ALLOWED, "use POST");
        }
        if let Some(r) = locked(&app).filter(|_| !force) {
            return r;
        }
        return match commit(shared, uri, app.definition.clone(), true).await {
            Ok((version, deployment)) => reply(StatusCode::OK, json!({ "version": version, "deploymentId": deployment })),
            Err(r) => r,
        };
    }
    if let Some((id, task_part)) = rest.split_once("/tasks") {
        let id = app::normalize_id(id);
        let task_id = task_part.trim_start_matches('/');
        if !shared.world.lock().unwrap().apps.contains_key(&id) {
            return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
        }
        return match method {
            Method::GET => app_tasks(shared, &id, headers),
            Method::DELETE => kill_tasks(shared, uri, &id, task_id, q).await,
            _ => message(StatusCode::METHOD_NOT_ALLOWED, "use GET or DELETE"),
        };
    }
    let id = app::normalize_id(rest);
    let existing = shared.world.lock().unwrap().apps.get(&id).cloned();
    match method {
        Method::GET => match existing {
            Some(app) => {
                let world = shared.world.lock().unwrap();
                reply(StatusCode::OK, json!({ "app": world.app_json(&app, true) }))
            }
            None => message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist")),
        },
        Method::PUT | Method::PATCH => {
            let mut definition = match app::parse_definition(body, Some(&id)) {
                Ok(d) => d,
                Err(e) => return invalid(e),
            };
            if let Some(app) = &existing {
                if let Some(r) = locked(app).filter(|_| !force) {
                    return r;
                }
                // A partial body (PATCH, or PUT of e.g. only `instances`) keeps the other fields.
                let mut merged = app.definition.clone();
                merged.extend(definition);
                definition = merged;
            } else if method == Method::PATCH {
                return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
            }
            let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
            match commit(shared, uri, definition, false).await {
                Ok((version, deployment)) => reply(status, json!({ "version": version, "deploymentId": deployment })),
                Err(r) => r,
            }
        }
        Method::DELETE => {
            let Some(app) = existing else {
                return message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"));
            };
            if let Some(r) = locked(&app).filter(|_| !force) {
                return r;
            }
            if let Err(e) = shared.store.delete_app(&shared.zk, &id).await {
                return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot delete the app: {e}"));
            }
            shared.world.lock().unwrap().apps.remove(&id);
            let now = timestamp(SystemTime::now());
            let _ = shared
                .events
                .send(json!({ "eventType": "app_terminated_event", "appId": id, "timestamp": now }));
            shared.wake.notify_one();
            reply(
                StatusCode::OK,
                json!({ "version": now, "deploymentId": uuid::Uuid::new_v4().to_string() }),
            )
        }
        _ => message(StatusCode::METHOD_NOT_ALLOWED, "use GET, PUT, PATCH or DELETE"),
    }
}

fn app_tasks(shared: &Shared, id: &str, headers: &HeaderMap) -> Response {
    let world = shared.world.lock().unwrap();
    let tasks: Vec<_> = world.tasks_of(id).filter(|t| !t.state.is_terminal()).collect();
    let wants_text = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/plain"));
    if wants_text {
        // One line per port index: app, service port, then every task's host:port.
        let ports = world.apps.get(id).map_or(0, |a| a.spec.ports.len());
        let mut text = String::new();
        for i in 0..ports {
            text.push_str(&format!("{}\t0\t", id.trim_start_matches('/')));
            for t in &tasks {
                if let Some(p) = t.ports.get(i) {
                    text.push_str(&format!("{}:{p}\t", t.host));
                }
            }
            text.push('\n');
        }
        return ([(header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    reply(
        StatusCode::OK,
        json!({ "tasks": tasks.iter().map(|t| t.to_json()).collect::<Vec<_>>() }),
    )
}

async fn kill_tasks(shared: &Shared, uri: &Uri, id: &str, task_id: &str, q: &[(String, String)]) -> Response {
    let host = q.iter().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
    let scale = flag(q, "scale");
    let (killed, definition) = {
        let mut world = shared.world.lock().unwrap();
        if !task_id.is_empty() && !world.tasks.get(task_id).is_some_and(|t| t.app_id == id && !t.state.is_terminal()) {
            return message(StatusCode::NOT_FOUND, format!("Task '{task_id}' does not exist"));
        }
        let mut killed = Vec::new();
        for task in world.tasks.values_mut().filter(|t| t.app_id == id && t.is_active()) {
            let selected = if task_id.is_empty() {
                host.as_deref().is_none_or(|h| task.host == h)
            } else {
                task.id == task_id
            };
            if selected {
                task.killing = true;
                killed.push(task.clone());
            }
        }
        let mut kills = shared.kills.lock().unwrap();
        kills.extend(killed.iter().map(|t| (t.id.clone(), t.agent_id.clone())));
        let definition = scale.then(|| {
            let app = &world.apps[id];
            let mut d = app.definition.clone();
            d.insert("instances".into(), json!(app.spec.instances.saturating_sub(killed.len() as u32)));
            d
        });
        (killed, definition)
    };
    shared.wake.notify_one();
    if let Some(definition) = definition
        && let Err(r) = commit(shared, uri, definition, false).await
    {
        return r;
    }
    if task_id.is_empty() {
        reply(
            StatusCode::OK,
            json!({ "tasks": killed.iter().map(|t| t.to_json()).collect::<Vec<_>>() }),
        )
    } else {
        reply(StatusCode::OK, json!({ "task": killed.first().map(|t| t.to_json()) }))
    }
}
