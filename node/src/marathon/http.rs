//! Marathon's REST API v2 on axum's router. A non-leader proxies every `/v2` call to the leader.
//!
//! Paths are parsed, not matched by substring: an app id may hold any segment (`/tasks-api`,
//! `/x/versions-db`), and only a trailing `tasks`, `versions` or `restart` segment (as in
//! Marathon's own JAX-RS paths) names a sub-resource, and only when the whole path is not
//! itself an app.

// Helpers return the finished error response as their `Err`: one per request, never stored, so
// its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::Shared;
use super::app::{self, DefinitionError};
use super::model::{App, Stopping, World, event_plan, timestamp};
use super::store::{AppRecord, GroupRecord};
use super::wire::{self, AppVersion, DeploymentResult, LOCAL_PORT_MAX, LOCAL_PORT_MIN, VersionInfo};

/// The API's routes. Trailing slashes are ignored, as Marathon ignores them.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    let v2 = axum::Router::new()
        .route("/v2/apps", get(list_apps).post(create_app).put(update_apps).patch(update_apps))
        .route("/v2/apps/{*path}", any(app_resource))
        .route("/v2/tasks", get(list_tasks))
        .route("/v2/tasks/delete", post(delete_tasks))
        .route("/v2/deployments", get(list_deployments))
        .route("/v2/deployments/{id}", axum::routing::delete(cancel_deployment))
        .route("/v2/queue", get(queue))
        .route("/v2/queue/{*path}", axum::routing::delete(reset_delay))
        .route("/v2/groups", any(group_root))
        .route("/v2/groups/{*path}", any(group_resource))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader).delete(abdicate))
        .route("/v2/events", get(events))
        .layer(middleware::from_fn_with_state(shared.clone(), leader_only));
    let inner = axum::Router::new()
        .merge(v2)
        .merge(super::ui::router())
        .route("/ping", get(|| async { "pong\n" }))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared);
    // Trailing slashes are cut before routing, so `/v2/apps/` is `/v2/apps`.
    axum::Router::new().fallback_service(tower::service_fn(move |mut request: Request| {
        let mut inner = inner.clone();
        async move {
            let path = request.uri().path();
            if path.len() > 1 && path.ends_with('/') {
                let trimmed = path.trim_end_matches('/');
                let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
                let rebuilt = match request.uri().query() {
                    Some(q) => format!("{trimmed}?{q}"),
                    None => trimmed.to_owned(),
                };
                if let Ok(uri) = rebuilt.parse::<Uri>() {
                    *request.uri_mut() = uri;
                }
            }
            tower::Service::call(&mut inner, request).await
        }
    }))
}

fn reply(status: StatusCode, body: impl serde::Serialize) -> Response {
    let text = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    reply(status, json!({ "message": text.into() }))
}

fn app_missing(id: &str) -> Response {
    message(StatusCode::NOT_FOUND, format!("App '{id}' does not exist"))
}

async fn not_found(uri: Uri) -> Response {
    message(
        StatusCode::NOT_FOUND,
        format!("The requested resource {} could not be found", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    message(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()))
}

/// The query string, decoded, in order (a key may repeat), with Marathon's parsing of values.
struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| message(StatusCode::BAD_REQUEST, format!("Invalid query string: {e}")))
    }
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean as JAX-RS reads one: `true`/`false` in any case; absent or empty is false.
    /// Anything else is refused with 400 naming the parameter.
    fn flag(&self, name: &str) -> Result<bool, Response> {
        match self.get(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(message(
                StatusCode::BAD_REQUEST,
                format!("Query parameter '{name}' must be true or false, not '{v}'"),
            )),
        }
    }
}

/// Sends every `/v2` call of a non-leader to the leader, as Marathon does.
async fn leader_only(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if shared.is_leader.load(Ordering::SeqCst) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "request body over 16 MiB");
    };
    proxy(&shared, parts.method, &parts.uri, &parts.headers, body).await
}

async fn proxy(shared: &Shared, method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let Some(leader) = shared.leader.lock().clone() else {
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

async fn leader(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, json!({ "leader": shared.leader.lock().clone() }))
}

async fn abdicate() -> Response {
    // Leave the election by ending this process; the supervisor restarts it.
    tokio::spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        std::process::exit(0);
    });
    message(StatusCode::OK, "Leadership abdicated")
}

async fn info(State(shared): State<Arc<Shared>>) -> Response {
    let c = &shared.config;
    let mesos_leader_ui_url = shared.mesos_leader.lock().clone().map(|u| format!("{}/", u.trim_end_matches('/')));
    // Built in parts: one `json!` this size exceeds the macro recursion limit.
    let marathon_config = json!({
                "access_control_allow_origin": null,
                "checkpoint": true,
                "decline_offer_duration": 1000,
                "default_network_name": null,
                "env_vars_prefix": null,
                "executor": "//cmd",
                "failover_timeout": 604800,
                "features": [],
                "framework_name": c.framework_name,
                "ha": true,
                "hostname": c.hostname,
                "launch_token": 100,
                "launch_token_refresh_interval": 30000,
                "leader_proxy_connection_timeout_ms": 2000,
                "leader_proxy_read_timeout_ms": 10000,
                "local_port_max": LOCAL_PORT_MAX,
                "local_port_min": LOCAL_PORT_MIN,
                "master": c.master.to_string(),
                "max_instances_per_offer": 5,
                "mesos_bridge_name": "mesos-bridge",
                "mesos_heartbeat_failure_threshold": 5,
                "mesos_heartbeat_interval": 15000,
                "mesos_leader_ui_url": mesos_leader_ui_url,
                "mesos_role": null,
                "mesos_user": "root",
                "min_revive_offers_interval": 5000,
                "offer_matching_timeout": 3000,
                "on_elected_prepare_timeout": 180000,
                "reconciliation_initial_delay": 0,
                "reconciliation_interval": 600000,
                "scale_apps_initial_delay": 0,
                "scale_apps_interval": 500,
                "store_cache": false,
                "task_launch_confirm_timeout": c.task_launch_timeout.as_millis() as u64,
                "task_launch_timeout": c.task_launch_timeout.as_millis() as u64,
                "task_lost_expunge_initial_delay": 300000,
                "task_lost_expunge_interval": 30000,
                "task_reservation_timeout": 20000,
                "webui_url": format!("http://{}:{}", c.hostname, c.http_port),
    });
    reply(
        StatusCode::OK,
        json!({
            "name": "marathon",
            "version": "1.11.0",
            "buildref": "paas-node",
            "elected": shared.is_leader.load(Ordering::SeqCst),
            "leader": shared.leader.lock().clone(),
            "frameworkId": shared.framework_id.lock().clone(),
            "marathon_config": marathon_config,
            "zookeeper_config": {
                "zk": c.zk.to_string(),
                "zk_compression": false,
                "zk_compression_threshold": 65536,
                "zk_connection_timeout": c.zk_session.as_millis() as u64,
                "zk_max_node_size": 1024000,
                "zk_max_versions": 50,
                "zk_session_timeout": c.zk_session.as_millis() as u64,
                "zk_timeout": c.zk_session.as_millis() as u64,
            },
            "http_config": { "http_port": c.http_port, "https_port": null },
            "event_subscriber": { "type": "sse", "http_endpoints": null },
        }),
    )
}

/// `/metrics` in Marathon's (Dropwizard) JSON shape.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let (apps, running, staged, deployments) = {
        let world = shared.world.lock();
        let running = world
            .tasks
            .values()
            .filter(|t| t.state == crate::mesos::v1::TaskState::Running)
            .count();
        let live = world.tasks.values().filter(|t| !t.state.is_terminal()).count();
        let deployments = world.apps.values().filter(|a| a.deployment.is_some()).count();
        (world.apps.len(), running, live - running, deployments)
    };
    let gauge = |v: f64| json!({ "value": v });
    reply(
        StatusCode::OK,
        json!({
            "version": "4.0.0",
            "gauges": {
                "marathon.apps.active.gauge": gauge(apps as f64),
                "marathon.deployments.active.gauge": gauge(deployments as f64),
                "marathon.instances.running.gauge": gauge(running as f64),
                "marathon.instances.staged.gauge": gauge(staged as f64),
                "marathon.leadership.duration.gauge.seconds": gauge(if shared.is_leader.load(Ordering::SeqCst) { shared.started.elapsed().as_secs_f64() } else { 0.0 }),
                "marathon.uptime.gauge.seconds": gauge(shared.started.elapsed().as_secs_f64()),
            },
            "counters": {},
            "histograms": {},
            "meters": {},
            "timers": {},
        }),
    )
}

async fn events(State(shared): State<Arc<Shared>>, params: Params, headers: HeaderMap) -> Response {
    let wanted: BTreeSet<String> = params.all("event_type").map(str::to_owned).collect();
    let receiver = shared.events.subscribe();
    // Sent to every subscriber, this one included (it subscribed first), as Marathon does.
    let remote = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let _ = shared.events.send(json!({
        "eventType": "event_stream_attached",
        "remoteAddress": remote,
        "timestamp": timestamp(SystemTime::now()),
    }));
    let stream = broadcast_stream(receiver).filter_map(move |event| {
        let keep = wanted.is_empty() || wanted.contains(&event.kind);
        async move { keep.then(|| Ok::<_, Infallible>(Event::default().event(&event.kind).data(&event.data))) }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// A subscriber's events as a stream, ended when the subscriber falls behind.
///
/// Every subscriber reads one bounded ring of the latest events (the broadcast channel's
/// capacity); a subscriber that lets the ring pass it by (a slow reader, or one that stalled
/// without closing) is cut off rather than buffered for, as Marathon closes the connection of a
/// consumer with more than `event_stream_max_outstanding_messages` events outstanding. Memory
/// stays bounded whatever the subscribers do, the others are never held up, and a client that
/// reconnects knows it missed events (skipping ahead silently would hide the gap).
fn broadcast_stream<T: Clone + Send + 'static>(receiver: tokio::sync::broadcast::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(value) => Some((value, receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "closing the event stream of a slow event consumer");
                None
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

fn emit(shared: &Shared, mut event: Value) {
    if let Some(map) = event.as_object_mut() {
        map.insert("timestamp".into(), json!(timestamp(SystemTime::now())));
    }
    let _ = shared.events.send(event);
}

/// `embed` values asking for tasks (`apps.tasks`, `app.tasks`).
fn embeds_tasks(params: &Params) -> bool {
    params.all("embed").any(|e| e.ends_with(".tasks"))
}

async fn list_apps(State(shared): State<Arc<Shared>>, params: Params) -> Response {
    let embed_tasks = embeds_tasks(&params);
    let labels: Vec<(String, Option<String>)> = params
        .all("label")
        .flat_map(|v| v.split(','))
        .map(|v| match v.split_once("==") {
            Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
            None => (v.trim().to_owned(), None),
        })
        .collect();
    let id_filter = params.get("id").map(str::to_owned);
    let cmd_filter = params.get("cmd").map(str::to_owned);
    let world = shared.world.lock();
    let apps: Vec<Value> = world
        .apps
        .values()
        .filter(|app| {
            labels.iter().all(|(k, v)| match v {
                Some(v) => app.definition.labels.get(k) == Some(v),
                None => app.definition.labels.contains_key(k),
            }) && id_filter.as_deref().is_none_or(|f| app.spec.id.contains(f))
                && cmd_filter
                    .as_deref()
                    .is_none_or(|f| app.definition.cmd.as_deref().is_some_and(|c| c.contains(f)))
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

/// What a change does to the app's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Whatever the definition says (a scaling keeps tasks, anything else replaces them).
    Update,
    /// Replace every task even though the definition is unchanged.
    Restart,
}

/// Stores `posted` (normalized) as the new version of its app and tells the scheduler. The
/// caller holds `shared.changes`. A definition equal to the stored one changes nothing: the
/// answer names the current version and a deployment that is already done.
async fn commit(shared: &Shared, uri: &Uri, posted: &Map<String, Value>, change: Change) -> Result<DeploymentResult, Response> {
    let id = app::normalize_id(posted.get("id").and_then(Value::as_str).unwrap_or_default());
    let (previous, taken) = {
        let world = shared.world.lock();
        (world.apps.get(&id).cloned(), world.service_ports_taken(&id))
    };
    let (definition, spec) = wire::normalize(posted, previous.as_ref().map(|p| &p.definition), &taken).map_err(invalid)?;
    let deployment = uuid::Uuid::new_v4().to_string();
    if let Some(previous) = previous.as_ref().filter(|p| change == Change::Update && p.definition == definition) {
        // Nothing to do: a plan without steps, which succeeds at once.
        let plan = event_plan(&deployment, &previous.version, None);
        emit(shared, json!({ "eventType": "deployment_success", "id": deployment, "plan": plan }));
        return Ok(DeploymentResult {
            deployment_id: deployment,
            version: previous.version.clone(),
        });
    }
    let now = timestamp(SystemTime::now());
    let scaling_only = change == Change::Update && previous.as_ref().is_some_and(|p| p.definition.same_config(&definition));
    let version_info = match &previous {
        Some(p) if scaling_only => VersionInfo {
            last_scaling_at: now.clone(),
            last_config_change_at: p.version_info.last_config_change_at.clone(),
        },
        _ => VersionInfo {
            last_scaling_at: now.clone(),
            last_config_change_at: now.clone(),
        },
    };
    let app = App {
        definition: definition.clone(),
        spec: spec.clone(),
        version: now.clone(),
        version_info: version_info.clone(),
        failures: 0,
        delayed_until: None,
        last_task_failure: previous.as_ref().and_then(|p| p.last_task_failure.clone()),
        deployment: Some(deployment.clone()),
        replacing: previous.is_some() && !scaling_only,
        offers_processed: previous.as_ref().map_or(0, |p| p.offers_processed),
        offers_unused: previous.as_ref().map_or(0, |p| p.offers_unused),
        before_deployment: previous.as_ref().map(|p| {
            // Only one step back is kept: canceling returns to the state before this change.
            let mut before = p.clone();
            before.before_deployment = None;
            before.deployment = None;
            Box::new(before)
        }),
    };
    let record = AppRecord {
        definition: definition.to_map(),
        version: now.clone(),
        version_info: Some(version_info),
    };
    if let Err(e) = shared.store.save_app(&shared.zk, &record).await {
        return Err(message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the app: {e}")));
    }
    let json = {
        let mut world = shared.world.lock();
        let json = world.app_json(&app, false);
        world.apps.insert(spec.id.clone(), app);
        json
    };
    emit(
        shared,
        json!({ "eventType": "api_post_event", "clientIp": null, "uri": uri.path(), "appDefinition": json }),
    );
    let action = if scaling_only || previous.is_none() {
        "ScaleApplication"
    } else {
        "RestartApplication"
    };
    let plan = event_plan(&deployment, &now, Some((action, &spec.id)));
    emit(
        shared,
        json!({ "eventType": "deployment_info", "plan": plan, "currentStep": { "actions": [{ "action": action, "app": spec.id }] } }),
    );
    shared.wake.notify_one();
    Ok(DeploymentResult {
        deployment_id: deployment,
        version: now,
    })
}

/// Parses a body as one JSON object.
fn object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(DefinitionError::Malformed("expected a JSON object".into()))),
        Err(e) => Err(invalid(DefinitionError::Malformed(e.to_string()))),
    }
}

async fn create_app(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let definition = match app::parse_definition(&body, None) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    let id = definition
        .get("id")
        .and_then(Value::as_str)
        .map(app::normalize_id)
        .unwrap_or_default();
    let _change = shared.changes.lock().await;
    if shared.world.lock().apps.contains_key(&id) {
        return message(StatusCode::CONFLICT, format!("An app with id [{id}] already exists."));
    }
    match commit(&shared, &uri, &definition, Change::Update).await {
        Ok(_) => {
            let world = shared.world.lock();
            match world.apps.get(&id) {
                Some(app) => reply(StatusCode::CREATED, world.app_json(app, false)),
                None => app_missing(&id),
            }
        }
        Err(response) => response,
    }
}

/// `PUT`/`PATCH /v2/apps`: a list of (partial) definitions, each merged over its app (an app
/// that does not exist is created by PUT). All are checked before any changes.
async fn update_apps(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, params: Params, body: Bytes) -> Response {
    let force = match params.flag("force") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let list = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(list)) => list,
        Ok(_) => return invalid(DefinitionError::Malformed("expected a JSON array of apps".into())),
        Err(e) => return invalid(DefinitionError::Malformed(e.to_string())),
    };
    let _change = shared.changes.lock().await;
    let mut merged = Vec::new();
    let mut details = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Some(id) = item.get("id").and_then(Value::as_str).map(app::normalize_id) else {
            details.push(app::Violation {
                path: format!("({i})/id"),
                errors: vec!["error.path.missing".into()],
            });
            continue;
        };
        let posted = match app::parse_definition(item.to_string().as_bytes(), Some(&id)) {
            Ok(d) => d,
            Err(e) => return invalid(e),
        };
        let existing = shared.world.lock().apps.get(&id).cloned();
        let definition = match existing {
            Some(app) => {
                if let Some(r) = locked(&app).filter(|_| !force) {
                    return r;
                }
                let mut base = app.definition.to_map();
                if posted.contains_key("ports") && !posted.contains_key("portDefinitions") {
                    base.remove("portDefinitions");
                }
                base.extend(posted);
                base
            }
            None if method == Method::PATCH => return app_missing(&id),
            None => posted,
        };
        if let Err(DefinitionError::Invalid(v)) = app::check(&definition) {
            details.extend(v.into_iter().map(|mut x| {
                x.path = format!("({i}){}", x.path);
                x
            }));
        }
        merged.push(definition);
    }
    if !details.is_empty() {
        return invalid(DefinitionError::Invalid(details));
    }
    let mut last = None;
    for definition in &merged {
        match commit(&shared, &uri, definition, Change::Update).await {
            Ok(result) => last = Some(result),
            Err(r) => return r,
        }
    }
    reply(
        StatusCode::OK,
        last.unwrap_or_else(|| DeploymentResult {
            deployment_id: uuid::Uuid::new_v4().to_string(),
            version: timestamp(SystemTime::now()),
        }),
    )
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

/// What an `/v2/apps/...` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AppPath {
    App(String),
    Tasks(String),
    Task(String, String),
    Versions(String),
    Version(String, String),
    Restart(String),
}

/// Reads an `/v2/apps/{path}` tail. A path that is an existing app's id is that app; otherwise
/// a last segment `tasks`, `versions` or `restart`, or a second-to-last `tasks` or `versions`,
/// names the sub-resource of the app before it.
fn parse_app_path(path: &str, is_app: impl Fn(&str) -> bool) -> AppPath {
    let whole = app::normalize_id(path);
    if is_app(&whole) {
        return AppPath::App(whole);
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let n = segments.len();
    let before = |k: usize| app::normalize_id(&segments[..n - k].join("/"));
    match segments.as_slice() {
        [.., last] if n >= 2 && *last == "tasks" => AppPath::Tasks(before(1)),
        [.., last] if n >= 2 && *last == "versions" => AppPath::Versions(before(1)),
        [.., last] if n >= 2 && *last == "restart" => AppPath::Restart(before(1)),
        [.., kind, item] if n >= 3 && *kind == "tasks" => AppPath::Task(before(2), (*item).to_owned()),
        [.., kind, item] if n >= 3 && *kind == "versions" => AppPath::Version(before(2), (*item).to_owned()),
        _ => AppPath::App(whole),
    }
}

async fn app_resource(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Path(path): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = {
        let world = shared.world.lock();
        // POST only ever means restart, so it never names an app itself.
        parse_app_path(&path, |id| method != Method::POST && world.apps.contains_key(id))
    };
    let shared = &shared;
    match (method.clone(), parsed) {
        (Method::GET, AppPath::App(id)) => get_app(shared, &id, &params),
        (Method::PUT | Method::PATCH, AppPath::App(id)) => put_app(shared, &uri, &method, &id, &params, &body).await,
        (Method::DELETE, AppPath::App(id)) => delete_app(shared, &id, &params).await,
        (Method::POST, AppPath::Restart(id)) => restart_app(shared, &uri, &id, &params).await,
        (Method::GET, AppPath::Tasks(id)) => app_tasks(shared, &id, &headers),
        (Method::DELETE, AppPath::Tasks(id)) => kill_tasks(shared, &uri, &id, None, &params).await,
        (Method::DELETE, AppPath::Task(id, task)) => kill_tasks(shared, &uri, &id, Some(&task), &params).await,
        (Method::GET, AppPath::Task(id, task)) => {
            let world = shared.world.lock();
            match world.tasks.get(&task).filter(|t| t.app_id == id && !t.state.is_terminal()) {
                Some(t) => reply(StatusCode::OK, json!({ "task": world.task_json(t) })),
                None => message(StatusCode::NOT_FOUND, format!("Task '{task}' does not exist")),
            }
        }
        (Method::GET, AppPath::Versions(id)) => versions(shared, &id).await,
        (Method::GET, AppPath::Version(id, version)) => app_version(shared, &id, &version).await,
        (method, _) => message(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path())),
    }
}

fn get_app(shared: &Shared, id: &str, params: &Params) -> Response {
    let world = shared.world.lock();
    match world.apps.get(id) {
        // A single app embeds its tasks by default, as Marathon's `app.tasks`.
        Some(app) => reply(
            StatusCode::OK,
            json!({ "app": world.app_json(app, params.get("embed").is_none() || embeds_tasks(params)) }),
        ),
        None => app_missing(id),
    }
}

async fn put_app(shared: &Shared, uri: &Uri, method: &Method, id: &str, params: &Params, body: &[u8]) -> Response {
    let force = match params.flag("force") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let raw = match object(body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let _change = shared.changes.lock().await;
    let existing = shared.world.lock().apps.get(id).cloned();
    // `{"version": "..."}` alone rolls back to that version.
    if raw.len() == 1
        && let Some(version) = raw.get("version").and_then(Value::as_str)
    {
        let Some(app) = existing else { return app_missing(id) };
        if let Some(r) = locked(&app).filter(|_| !force) {
            return r;
        }
        let record = match shared.store.load_version(&shared.zk, id, version).await {
            Ok(Some(record)) => record,
            Ok(None) => return message(StatusCode::NOT_FOUND, format!("Version '{version}' of app '{id}' does not exist")),
            Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the version: {e}")),
        };
        return match commit(shared, uri, &record.definition, Change::Update).await {
            Ok(result) => reply(StatusCode::OK, result),
            Err(r) => r,
        };
    }
    let mut definition = match app::parse_definition(body, Some(id)) {
        Ok(d) => d,
        Err(e) => return invalid(e),
    };
    if let Some(app) = &existing {
        if let Some(r) = locked(app).filter(|_| !force) {
            return r;
        }
        // A partial body (PATCH, or PUT of e.g. only `instances`) keeps the other fields.
        let mut merged = app.definition.to_map();
        // The legacy `ports` would otherwise win over new `portDefinitions`, and vice versa.
        if definition.contains_key("ports") && !definition.contains_key("portDefinitions") {
            merged.remove("portDefinitions");
        }
        merged.extend(definition);
        definition = merged;
    } else if method == Method::PATCH {
        return app_missing(id);
    }
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    match commit(shared, uri, &definition, Change::Update).await {
        Ok(result) => reply(status, result),
        Err(r) => r,
    }
}

async fn delete_app(shared: &Shared, id: &str, params: &Params) -> Response {
    let force = match params.flag("force") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let _change = shared.changes.lock().await;
    let Some(app) = shared.world.lock().apps.get(id).cloned() else {
        return app_missing(id);
    };
    if let Some(r) = locked(&app).filter(|_| !force) {
        return r;
    }
    remove_app(shared, id).await
}

/// Deletes an app at once; its `StopApplication` deployment lasts until the scheduler has
/// killed its tasks and Mesos has reported them gone.
async fn remove_app(shared: &Shared, id: &str) -> Response {
    if let Err(e) = shared.store.delete_app(&shared.zk, id).await {
        return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot delete the app: {e}"));
    }
    let deployment = uuid::Uuid::new_v4().to_string();
    let now = timestamp(SystemTime::now());
    {
        let mut world = shared.world.lock();
        if let Some(app) = world.apps.remove(id) {
            let tasks = world.tasks_of(id).map(|t| t.id.clone()).collect();
            let stopping = Stopping {
                app,
                version: now.clone(),
                tasks,
            };
            world.stopping.insert(deployment.clone(), stopping);
        }
    }
    let plan = event_plan(&deployment, &now, Some(("StopApplication", id)));
    emit(
        shared,
        json!({ "eventType": "deployment_info", "plan": plan, "currentStep": { "actions": [{ "action": "StopApplication", "app": id }] } }),
    );
    shared.wake.notify_one();
    reply(
        StatusCode::OK,
        DeploymentResult {
            deployment_id: deployment,
            version: now,
        },
    )
}

async fn restart_app(shared: &Shared, uri: &Uri, id: &str, params: &Params) -> Response {
    let force = match params.flag("force") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let _change = shared.changes.lock().await;
    let Some(app) = shared.world.lock().apps.get(id).cloned() else {
        return app_missing(id);
    };
    if let Some(r) = locked(&app).filter(|_| !force) {
        return r;
    }
    match commit(shared, uri, &app.definition.to_map(), Change::Restart).await {
        Ok(result) => reply(StatusCode::OK, result),
        Err(r) => r,
    }
}

async fn versions(shared: &Shared, id: &str) -> Response {
    if !shared.world.lock().apps.contains_key(id) {
        return app_missing(id);
    }
    match shared.store.list_versions(&shared.zk, id).await {
        Ok(mut versions) => {
            versions.reverse();
            reply(StatusCode::OK, json!({ "versions": versions }))
        }
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the versions: {e}")),
    }
}

async fn app_version(shared: &Shared, id: &str, version: &str) -> Response {
    if !shared.world.lock().apps.contains_key(id) {
        return app_missing(id);
    }
    let record = match shared.store.load_version(&shared.zk, id, version).await {
        Ok(Some(record)) => record,
        Ok(None) => return message(StatusCode::NOT_FOUND, format!("Version '{version}' of app '{id}' does not exist")),
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the version: {e}")),
    };
    // Stored versions were normalized when stored; normalizing again only reads them.
    let taken = shared.world.lock().service_ports_taken(id);
    match wire::normalize(&record.definition, None, &taken) {
        Ok((definition, _)) => reply(
            StatusCode::OK,
            AppVersion {
                definition: &definition,
                version: record.version.clone(),
                version_info: record.version_info.clone().unwrap_or(VersionInfo {
                    last_scaling_at: record.version.clone(),
                    last_config_change_at: record.version,
                }),
            },
        ),
        Err(e) => message(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Version '{version}' of app '{id}' cannot be read by this Marathon: {}", e.body()),
        ),
    }
}

fn app_tasks(shared: &Shared, id: &str, headers: &HeaderMap) -> Response {
    let world = shared.world.lock();
    let Some(app) = world.apps.get(id) else {
        return app_missing(id);
    };
    let tasks: Vec<_> = world.tasks_of(id).filter(|t| !t.state.is_terminal()).collect();
    let wants_text = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/plain"));
    if wants_text {
        // One line per port: app, service port, then every task's host:port.
        let mut text = String::new();
        for (i, service_port) in app.definition.ports.iter().enumerate() {
            text.push_str(&format!("{}\t{service_port}\t", id.trim_start_matches('/')));
            for t in &tasks {
                if let Some(p) = t.ports.get(i) {
                    text.push_str(&format!("{}:{p}\t", t.host));
                }
            }
            text.push('\n');
        }
        return ([(header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    let tasks: Vec<_> = tasks.iter().map(|t| t.to_wire(&app.definition.ports)).collect();
    reply(StatusCode::OK, json!({ "tasks": tasks }))
}

/// Marks tasks to kill; with `scale`, lowers their apps' instance counts by as many.
/// `select` picks among an app's live tasks.
async fn kill_selected(
    shared: &Shared,
    uri: &Uri,
    select: impl Fn(&super::model::Task) -> bool,
    scale: bool,
) -> Result<(Vec<wire::TaskWire>, Option<DeploymentResult>), Response> {
    let _change = shared.changes.lock().await;
    let (killed, scaled) = {
        let mut world = shared.world.lock();
        let mut killed = Vec::new();
        let mut per_app: BTreeMap<String, u32> = BTreeMap::new();
        for task in world.tasks.values_mut().filter(|t| t.is_active() && select(t)) {
            task.killing = Some(Instant::now());
            *per_app.entry(task.app_id.clone()).or_default() += 1;
            killed.push(task.clone());
        }
        shared
            .kills
            .lock()
            .extend(killed.iter().map(|t| (t.id.clone(), t.agent_id.clone())));
        let wires: Vec<wire::TaskWire> = killed.iter().map(|t| world.task_json(t)).collect();
        let scaled: Vec<Map<String, Value>> = if scale {
            per_app
                .iter()
                .filter_map(|(id, n)| world.apps.get(id).map(|a| (a, n)))
                .map(|(app, n)| {
                    let mut d = app.definition.to_map();
                    d.insert("instances".into(), json!(app.spec.instances.saturating_sub(*n)));
                    d
                })
                .collect()
        } else {
            Vec::new()
        };
        (wires, scaled)
    };
    shared.wake.notify_one();
    let mut result = None;
    for definition in scaled {
        result = Some(commit(shared, uri, &definition, Change::Update).await?);
    }
    if scale && result.is_none() {
        result = Some(DeploymentResult {
            deployment_id: uuid::Uuid::new_v4().to_string(),
            version: timestamp(SystemTime::now()),
        });
    }
    Ok((killed, result))
}

async fn kill_tasks(shared: &Shared, uri: &Uri, id: &str, task_id: Option<&str>, params: &Params) -> Response {
    let (scale, wipe) = match (params.flag("scale"), params.flag("wipe")) {
        (Ok(s), Ok(w)) => (s, w),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if scale && wipe {
        return message(StatusCode::BAD_REQUEST, "You cannot use scale and wipe at the same time.");
    }
    let host = params.get("host").map(str::to_owned);
    {
        let world = shared.world.lock();
        if !world.apps.contains_key(id) {
            return app_missing(id);
        }
        if let Some(task_id) = task_id
            && !world.tasks.get(task_id).is_some_and(|t| t.app_id == id && !t.state.is_terminal())
        {
            return message(StatusCode::NOT_FOUND, format!("Task '{task_id}' does not exist"));
        }
    }
    let select = |t: &super::model::Task| {
        t.app_id == id
            && match task_id {
                Some(task_id) => t.id == task_id,
                None => host.as_deref().is_none_or(|h| h == "*" || t.host == h),
            }
    };
    match kill_selected(shared, uri, select, scale).await {
        Ok((_, Some(result))) => reply(StatusCode::OK, result),
        Ok((killed, None)) if task_id.is_some() => reply(StatusCode::OK, json!({ "task": killed.first() })),
        Ok((killed, None)) => reply(StatusCode::OK, json!({ "tasks": killed })),
        Err(r) => r,
    }
}

async fn list_tasks(State(shared): State<Arc<Shared>>, params: Params, headers: HeaderMap) -> Response {
    let states: Vec<String> = params.all("status").map(|s| format!("TASK_{}", s.to_ascii_uppercase())).collect();
    let world = shared.world.lock();
    let tasks: Vec<_> = world
        .tasks
        .values()
        .filter(|t| !t.state.is_terminal())
        .filter(|t| states.is_empty() || states.iter().any(|s| s == t.state.as_str()))
        .collect();
    let wants_text = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/plain") && !a.contains("application/json"));
    if wants_text {
        let mut text = String::new();
        for app in world.apps.values() {
            for (i, service_port) in app.definition.ports.iter().enumerate() {
                text.push_str(&format!("{}\t{service_port}\t", app.spec.id.trim_start_matches('/')));
                for t in tasks.iter().filter(|t| t.app_id == app.spec.id) {
                    if let Some(p) = t.ports.get(i) {
                        text.push_str(&format!("{}:{p}\t", t.host));
                    }
                }
                text.push('\n');
            }
        }
        return ([(header::CONTENT_TYPE, "text/plain")], text).into_response();
    }
    let tasks: Vec<_> = tasks.iter().map(|t| world.task_json(t)).collect();
    reply(StatusCode::OK, json!({ "tasks": tasks }))
}

/// `POST /v2/tasks/delete`: `{"ids": [...]}`.
async fn delete_tasks(State(shared): State<Arc<Shared>>, uri: Uri, params: Params, body: Bytes) -> Response {
    let (scale, wipe) = match (params.flag("scale"), params.flag("wipe")) {
        (Ok(s), Ok(w)) => (s, w),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if scale && wipe {
        return message(StatusCode::BAD_REQUEST, "You cannot use scale and wipe at the same time.");
    }
    let body = match object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(ids) = body.get("ids").and_then(Value::as_array) else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "message": "Object is not valid", "details": [{ "path": "/ids", "errors": ["error.path.missing"] }] }),
        );
    };
    let ids: BTreeSet<String> = ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    match kill_selected(&shared, &uri, |t| ids.contains(&t.id), scale).await {
        Ok((_, Some(result))) => reply(StatusCode::OK, result),
        Ok((killed, None)) => reply(StatusCode::OK, json!({ "tasks": killed })),
        Err(r) => r,
    }
}

async fn list_deployments(State(shared): State<Arc<Shared>>) -> Response {
    reply(StatusCode::OK, shared.world.lock().deployments_json())
}

/// `DELETE /v2/deployments/{id}`: rolls the app back to before the deployment (a new
/// deployment), or with `force=true` only forgets the deployment.
async fn cancel_deployment(State(shared): State<Arc<Shared>>, uri: Uri, Path(id): Path<String>, params: Params) -> Response {
    let force = match params.flag("force") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let _change = shared.changes.lock().await;
    let stopping = shared.world.lock().stopping.remove(&id);
    if let Some(stopping) = stopping {
        return cancel_stop(&shared, &uri, &id, stopping, force).await;
    }
    let app = shared
        .world
        .lock()
        .apps
        .values()
        .find(|a| a.deployment.as_deref() == Some(&id))
        .cloned();
    let Some(app) = app else {
        return message(StatusCode::NOT_FOUND, format!("DeploymentPlan {id} does not exist"));
    };
    let plan = event_plan(&id, &app.version, Some(("ScaleApplication", &app.spec.id)));
    if force {
        if let Some(a) = shared.world.lock().apps.get_mut(&app.spec.id) {
            a.deployment = None;
            a.replacing = false;
        }
        emit(
            &shared,
            json!({ "eventType": "deployment_failed", "id": id, "plan": plan, "reason": "canceled" }),
        );
        return StatusCode::ACCEPTED.into_response();
    }
    emit(
        &shared,
        json!({ "eventType": "deployment_step_failure", "plan": plan, "currentStep": { "actions": [{ "action": "ScaleApplication", "app": app.spec.id }] } }),
    );
    emit(
        &shared,
        json!({ "eventType": "deployment_failed", "id": id, "plan": plan, "reason": "rolled back" }),
    );
    match &app.before_deployment {
        // The deployment created the app: rolling it back removes it.
        None => remove_app(&shared, &app.spec.id).await,
        Some(before) => {
            if let Some(a) = shared.world.lock().apps.get_mut(&app.spec.id) {
                a.deployment = None;
            }
            match commit(&shared, &uri, &before.definition.to_map(), Change::Update).await {
                Ok(result) => reply(StatusCode::OK, result),
                Err(r) => r,
            }
        }
    }
}

/// Cancels a deleted app's deployment: with `force` its tasks are still killed but the
/// deployment is forgotten; without, the app comes back as it was (a new deployment).
async fn cancel_stop(shared: &Shared, uri: &Uri, id: &str, stopping: Stopping, force: bool) -> Response {
    let app = &stopping.app.spec.id;
    let plan = event_plan(id, &stopping.version, Some(("StopApplication", app)));
    let reason = if force { "canceled" } else { "rolled back" };
    emit(
        shared,
        json!({ "eventType": "deployment_failed", "id": id, "plan": plan, "reason": reason }),
    );
    if force {
        return StatusCode::ACCEPTED.into_response();
    }
    match commit(shared, uri, &stopping.app.definition.to_map(), Change::Update).await {
        Ok(result) => reply(StatusCode::OK, result),
        Err(r) => r,
    }
}

/// Apps waiting for tasks: fewer live tasks of the current config than instances.
fn queued(world: &World) -> Vec<(&App, u32)> {
    world
        .apps
        .values()
        .filter_map(|app| {
            let live = world
                .tasks_of(&app.spec.id)
                .filter(|t| t.is_active() && t.version == app.config_version())
                .count() as u32;
            let missing = app.spec.instances.saturating_sub(live);
            (missing > 0).then_some((app, missing))
        })
        .collect()
}

async fn queue(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.lock();
    let now = Instant::now();
    let entries: Vec<Value> = queued(&world)
        .into_iter()
        .map(|(app, count)| {
            let left = app.delayed_until.map_or(0, |t| t.saturating_duration_since(now).as_secs());
            json!({
                "app": AppVersion { definition: &app.definition, version: app.version.clone(), version_info: app.version_info.clone() },
                "count": count,
                "role": "*",
                "delay": { "timeLeftSeconds": left, "overdue": left == 0 },
                "since": app.version,
                "processedOffersSummary": { "processedOffersCount": app.offers_processed, "unusedOffersCount": app.offers_unused },
            })
        })
        .collect();
    reply(StatusCode::OK, json!({ "queue": entries }))
}

/// `DELETE /v2/queue/{app}/delay`: launch again at once, without waiting out the backoff.
async fn reset_delay(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    let Some(id) = path.trim_end_matches('/').strip_suffix("/delay").map(app::normalize_id) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("The requested resource /v2/queue/{path} could not be found"),
        );
    };
    let mut world = shared.world.lock();
    let waiting = queued(&world).iter().any(|(a, _)| a.spec.id == id);
    match world.apps.get_mut(&id) {
        Some(app) if waiting => {
            app.delayed_until = None;
            app.failures = 0;
            drop(world);
            shared.wake.notify_one();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => message(StatusCode::NOT_FOUND, format!("Application {id} not found in tasks queue.")),
    }
}

/// Groups are the folders of app ids; a group exists while an app lives under it.
fn group_json(world: &World, id: &str, embed_tasks: bool) -> Option<Value> {
    let prefix = if id == "/" { "/".to_owned() } else { format!("{id}/") };
    let under: Vec<&App> = world.apps.values().filter(|a| a.spec.id.starts_with(&prefix)).collect();
    let record = world.groups.get(id);
    let groups_under: Vec<&String> = world.groups.keys().filter(|g| g.starts_with(&prefix)).collect();
    if under.is_empty() && record.is_none() && groups_under.is_empty() && id != "/" {
        return None;
    }
    let apps: Vec<Value> = under
        .iter()
        .filter(|a| !a.spec.id[prefix.len()..].contains('/'))
        .map(|a| {
            if embed_tasks {
                world.app_json(a, true)
            } else {
                // Group apps come without counts unless asked (`embed=group.apps.tasks`).
                serde_json::to_value(AppVersion {
                    definition: &a.definition,
                    version: a.version.clone(),
                    version_info: a.version_info.clone(),
                })
                .unwrap_or(Value::Null)
            }
        })
        .collect();
    let mut children: BTreeSet<String> = under
        .iter()
        .filter_map(|a| {
            let rest = &a.spec.id[prefix.len()..];
            rest.split_once('/').map(|(g, _)| format!("{prefix}{g}"))
        })
        .collect();
    children.extend(groups_under.iter().filter_map(|g| {
        let rest = g.get(prefix.len()..).unwrap_or_default();
        rest.split('/')
            .next()
            .filter(|first| !first.is_empty())
            .map(|first| format!("{prefix}{first}"))
    }));
    // A group is never its own child (the root's record sits under the root's prefix).
    children.remove(id);
    let groups: Vec<Value> = children.iter().filter_map(|g| group_json(world, g, embed_tasks)).collect();
    let version = under
        .iter()
        .map(|a| a.version.clone())
        .chain(record.map(|r| r.version.clone()))
        .max()
        .unwrap_or_else(|| timestamp(SystemTime::UNIX_EPOCH));
    let dependencies = record.map(|r| r.dependencies.clone()).unwrap_or_default();
    Some(json!({ "id": id, "apps": apps, "groups": groups, "dependencies": dependencies, "version": version }))
}

async fn group_root(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, params: Params, body: Bytes) -> Response {
    group(&shared, method, &uri, "/", &params, &body).await
}

async fn group_resource(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Path(path): Path<String>,
    params: Params,
    body: Bytes,
) -> Response {
    group(&shared, method, &uri, &app::normalize_id(&path), &params, &body).await
}

/// Every app a posted group holds, with absolute ids.
/// Every app a posted group holds, with absolute ids, and every group's own record.
fn group_apps(
    group: &Map<String, Value>,
    parent: &str,
    out: &mut Vec<Map<String, Value>>,
    groups: &mut Vec<(String, Vec<String>)>,
) -> Result<(), Response> {
    let id = group.get("id").and_then(Value::as_str).unwrap_or(parent);
    let id = if id.starts_with('/') {
        app::normalize_id(id)
    } else {
        app::normalize_id(&format!("{parent}/{id}"))
    };
    let absolute = |child: &str| {
        if child.starts_with('/') {
            app::normalize_id(child)
        } else {
            app::normalize_id(&format!("{id}/{child}"))
        }
    };
    // A group's dependencies are relative to the group that holds it.
    let dependencies = group
        .get("dependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|d| {
            if d.starts_with('/') {
                app::normalize_id(d)
            } else {
                app::normalize_id(&format!("{parent}/{d}"))
            }
        })
        .collect();
    groups.push((id.clone(), dependencies));
    for a in group.get("apps").and_then(Value::as_array).into_iter().flatten() {
        let Some(mut a) = a.as_object().cloned() else {
            return Err(invalid(DefinitionError::Malformed("apps must hold objects".into())));
        };
        let app_id = a.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        a.insert("id".into(), json!(absolute(&app_id)));
        if let Some(deps) = a.get("dependencies").and_then(Value::as_array) {
            let deps: Vec<Value> = deps.iter().filter_map(Value::as_str).map(|d| json!(absolute(d))).collect();
            a.insert("dependencies".into(), json!(deps));
        }
        out.push(a);
    }
    for g in group.get("groups").and_then(Value::as_array).into_iter().flatten() {
        let Some(g) = g.as_object() else {
            return Err(invalid(DefinitionError::Malformed("groups must hold objects".into())));
        };
        group_apps(g, &id, out, groups)?;
    }
    Ok(())
}

async fn group(shared: &Shared, method: Method, uri: &Uri, id: &str, params: &Params, body: &[u8]) -> Response {
    match method {
        Method::GET => {
            let world = shared.world.lock();
            match group_json(&world, id, embeds_tasks(params)) {
                Some(g) => reply(StatusCode::OK, g),
                None => message(StatusCode::NOT_FOUND, format!("Group '{id}' does not exist")),
            }
        }
        Method::POST | Method::PUT => {
            let force = match params.flag("force") {
                Ok(f) => f,
                Err(r) => return r,
            };
            let posted = match object(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            // POST /v2/groups names the group in the body; PUT /v2/groups/{id} in the path.
            let group_id = match (&method, posted.get("id").and_then(Value::as_str)) {
                (&Method::POST, Some(child)) if !child.starts_with('/') && id != "/" => app::normalize_id(&format!("{id}/{child}")),
                (&Method::POST, Some(child)) => app::normalize_id(child),
                _ => id.to_owned(),
            };
            let mut apps = Vec::new();
            let mut groups = Vec::new();
            let mut rooted = posted.clone();
            rooted.insert("id".into(), json!(group_id));
            if let Err(r) = group_apps(&rooted, "/", &mut apps, &mut groups) {
                return r;
            }
            let _change = shared.changes.lock().await;
            let existing: Vec<App> = {
                let world = shared.world.lock();
                if method == Method::POST && group_json(&world, &group_id, false).is_some() && group_id != "/" {
                    return message(
                        StatusCode::CONFLICT,
                        format!("Group {group_id} is already created. Use PUT to change this group."),
                    );
                }
                apps.iter()
                    .filter_map(|a| a.get("id").and_then(Value::as_str).and_then(|i| world.apps.get(i)).cloned())
                    .collect()
            };
            if let Some(r) = existing.iter().find_map(locked).filter(|_| !force) {
                return r;
            }
            // Check every app before changing any, so a bad one leaves the group as it was.
            let mut details = Vec::new();
            for (i, a) in apps.iter().enumerate() {
                match app::check(a) {
                    Ok(_) => {}
                    Err(DefinitionError::Invalid(violations)) => details.extend(violations.into_iter().map(|mut x| {
                        x.path = format!("/apps({i}){}", x.path);
                        x
                    })),
                    Err(malformed) => return invalid(malformed),
                }
            }
            if !details.is_empty() {
                return invalid(DefinitionError::Invalid(details));
            }
            let mut last = None;
            for a in &apps {
                match commit(shared, uri, a, Change::Update).await {
                    Ok(result) => last = Some(result),
                    Err(r) => return r,
                }
            }
            let result = last.unwrap_or_else(|| DeploymentResult {
                deployment_id: uuid::Uuid::new_v4().to_string(),
                version: timestamp(SystemTime::now()),
            });
            for (id, dependencies) in groups {
                let record = GroupRecord {
                    id,
                    dependencies,
                    version: result.version.clone(),
                };
                if let Err(e) = shared.store.save_group(&shared.zk, &record).await {
                    return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the group: {e}"));
                }
                shared.world.lock().groups.insert(record.id.clone(), record);
            }
            let status = if method == Method::POST {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            reply(status, result)
        }
        Method::DELETE => {
            let force = match params.flag("force") {
                Ok(f) => f,
                Err(r) => return r,
            };
            let _change = shared.changes.lock().await;
            let prefix = if id == "/" { "/".to_owned() } else { format!("{id}/") };
            let under: Vec<App> = shared
                .world
                .lock()
                .apps
                .values()
                .filter(|a| a.spec.id.starts_with(&prefix))
                .cloned()
                .collect();
            let records: Vec<String> = shared
                .world
                .lock()
                .groups
                .keys()
                .filter(|g| *g == id || g.starts_with(&prefix))
                .cloned()
                .collect();
            if under.is_empty() && records.is_empty() && id != "/" {
                return message(StatusCode::NOT_FOUND, format!("Group '{id}' does not exist"));
            }
            if let Some(r) = under.iter().find_map(locked).filter(|_| !force) {
                return r;
            }
            for a in &under {
                let response = remove_app(shared, &a.spec.id).await;
                if response.status() != StatusCode::OK {
                    return response;
                }
            }
            for g in records {
                if let Err(e) = shared.store.delete_group(&shared.zk, &g).await {
                    return message(StatusCode::SERVICE_UNAVAILABLE, format!("cannot delete the group: {e}"));
                }
                shared.world.lock().groups.remove(&g);
            }
            reply(
                StatusCode::OK,
                DeploymentResult {
                    deployment_id: uuid::Uuid::new_v4().to_string(),
                    version: timestamp(SystemTime::now()),
                },
            )
        }
        method => message(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_paths_are_parsed_by_segment() {
        let none = |_: &str| false;
        assert_eq!(parse_app_path("tasks-api", none), AppPath::App("/tasks-api".into()));
        assert_eq!(parse_app_path("tasks-api/tasks", none), AppPath::Tasks("/tasks-api".into()));
        assert_eq!(
            parse_app_path("a/versions-db/versions", none),
            AppPath::Versions("/a/versions-db".into())
        );
        assert_eq!(
            parse_app_path("x/versions/2015-01-01T00:00:00.000Z", none),
            AppPath::Version("/x".into(), "2015-01-01T00:00:00.000Z".into())
        );
        assert_eq!(parse_app_path("restart-me/restart", none), AppPath::Restart("/restart-me".into()));
        assert_eq!(parse_app_path("w/tasks/w.1", none), AppPath::Task("/w".into(), "w.1".into()));
        // An app whose last segment is `tasks` is that app when it exists.
        assert_eq!(
            parse_app_path("shop/tasks", |id| id == "/shop/tasks"),
            AppPath::App("/shop/tasks".into())
        );
        assert_eq!(parse_app_path("tasks", none), AppPath::App("/tasks".into()));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_a_ring_behind_is_cut_off_and_the_others_get_every_event() {
        let (events, _) = tokio::sync::broadcast::channel::<Value>(8);
        let stalled = broadcast_stream(events.subscribe());
        let reader = broadcast_stream(events.subscribe());
        futures::pin_mut!(stalled, reader);
        for i in 0..20 {
            events.send(json!({ "n": i })).unwrap();
            assert_eq!(reader.next().await, Some(json!({ "n": i })), "the reader is never held up");
        }
        assert_eq!(
            stalled.next().await,
            None,
            "20 events behind a ring of 8: cut off, not buffered for"
        );
    }
}
