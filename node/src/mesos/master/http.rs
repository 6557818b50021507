//! The master's HTTP endpoints: operator JSON (`/master/*`, each also at the root as Mesos
//! serves it, with or without a trailing slash), `/metrics/snapshot`, `/version`, the v1
//! operator and scheduler APIs, and the agents' internal calls. As `src/master/http.cpp` does,
//! a master that does not lead answers the leader-only endpoints (state, state-summary,
//! slaves, frameworks, tasks, the APIs, the agents' calls) with 307 to the leader (503 while
//! none is elected); health, flags, redirect, version and metrics answer on every master.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use serde_json::json;
use tokio::sync::mpsc;

use super::Master;
use super::cluster::{self, CallError};
use super::operator;
use super::state_json;
use crate::mesos::protocol::{AgentPing, PING_PATH, REGISTER_PATH, RegisterAgent, STATUS_PATH, StatusUpdate};
use crate::mesos::recordio;
use crate::mesos::v1::{Call, CallType, Event};

/// Header carrying the scheduler's stream id.
const STREAM_ID: &str = "Mesos-Stream-Id";

type Shared = State<Arc<Master>>;

/// Adds an endpoint of the master's process at `/master<path>` and at the root (Mesos' master
/// is libprocess' delegate, so both answer), each also with a trailing slash.
fn endpoint(router: Router<Arc<Master>>, path: &str, handler: MethodRouter<Arc<Master>>) -> Router<Arc<Master>> {
    [format!("/master{path}"), path.to_owned()]
        .into_iter()
        .flat_map(|p| [format!("{p}/"), p])
        .fold(router, |router, p| router.route(&p, handler.clone()))
}

/// All routes of the master.
pub fn router(master: Arc<Master>) -> Router {
    let mut router = super::ui::router();
    for (path, handler) in [
        ("/health", get(health)),
        ("/flags", get(flags)),
        ("/state", get(state)),
        ("/state.json", get(state)),
        ("/state-summary", get(state_summary)),
        ("/slaves", get(slaves)),
        ("/tasks", get(tasks)),
        ("/tasks.json", get(tasks)),
        ("/frameworks", get(frameworks)),
        ("/api/v1", any(operator_api)),
        ("/api/v1/scheduler", post(scheduler)),
    ] {
        router = endpoint(router, path, handler);
    }
    router
        // libprocess hands a path to its longest routed prefix, so Mesos answers the operator
        // API under any `/api/v1/...` but the scheduler's (pymesos posts to `/api/v1/operator`).
        .route("/api/v1/{*rest}", any(operator_api))
        .route("/master/api/v1/{*rest}", any(operator_api))
        // `/redirect/...` is 404 in Mesos (a loop guard), so no trailing-slash form.
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        // Processes of their own in libprocess: only at the root.
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics/snapshot/", get(metrics_snapshot))
        .route("/version", get(version))
        .route("/version/", get(version))
        .route(REGISTER_PATH, post(register_agent))
        .route(PING_PATH, post(agent_ping))
        .route(STATUS_PATH, post(status_update))
        .with_state(master)
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

fn call_error(error: CallError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, error.message)
}

/// `//hostname:port` of the leader (possibly this master), as Mesos bases its redirects: the
/// hostname of its MasterInfo, else its address.
fn leader_base(master: &Master) -> Option<String> {
    let leader = master.leader.borrow();
    let leader = leader.as_ref()?;
    let host = leader
        .hostname
        .clone()
        .or_else(|| leader.address.as_ref().and_then(|a| a.hostname.clone().or_else(|| a.ip.clone())))
        .unwrap_or_else(|| leader.ipv4().to_string());
    Some(format!("//{host}:{}", leader.port))
}

/// `None` when this master leads; otherwise the redirect (or 503) to answer with: the
/// leader's base followed by the request's path and query.
fn unless_leading(master: &Master, uri: &Uri) -> Option<Response> {
    if master.leading() {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(match leader_base(master) {
        Some(base) => temporary_redirect(&format!("{base}{path}")),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    })
}

fn temporary_redirect(location: &str) -> Response {
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn flags(State(master): Shared) -> Response {
    axum::Json(json!({ "flags": state_json::flags(&master) })).into_response()
}

/// `/version`: what Mesos' version process answers (the sim has no build date or commit).
async fn version() -> Response {
    axum::Json(json!({ "version": super::MESOS_VERSION })).into_response()
}

async fn metrics_snapshot(State(master): Shared) -> Response {
    let snapshot = master
        .read_cluster(|c| state_json::metrics(&master, Some(c)))
        .unwrap_or_else(|| state_json::metrics(&master, None));
    axum::Json(snapshot).into_response()
}

/// `/master/redirect`: 307 to the leader's base URL, on every master (the leader included).
async fn redirect(State(master): Shared) -> Response {
    match leader_base(&master) {
        Some(base) => temporary_redirect(&base),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn state(State(master): Shared, uri: Uri) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    match master.read_cluster(|c| state_json::state(&master, Some(c))) {
        Some(body) => axum::Json(body).into_response(),
        // Stepped down between the check and now.
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn state_summary(State(master): Shared, uri: Uri) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    match master.read_cluster(|c| state_json::state_summary(&master, c)) {
        Some(body) => axum::Json(body).into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn slaves(State(master): Shared, uri: Uri) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let body = master.read_cluster(|c| json!({"slaves": state_json::slaves(c), "recovered_slaves": []}));
    axum::Json(body).into_response()
}

async fn tasks(State(master): Shared, uri: Uri, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let body = master.read_cluster(|c| json!({"tasks": state_json::tasks(c, &query)}));
    axum::Json(body).into_response()
}

async fn frameworks(State(master): Shared, uri: Uri) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let body = master.read_cluster(|c| {
        json!({
            "frameworks": state_json::frameworks(c),
            "completed_frameworks": state_json::completed_frameworks(c),
            "unregistered_frameworks": [],
        })
    });
    axum::Json(body).into_response()
}

/// `POST /api/v1`: the operator API, checked in the order of `Master::Http::api`.
async fn operator_api(State(master): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    if method != Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let Some(content_type) = header(&headers, header::CONTENT_TYPE) else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'Content-Type' to be present");
    };
    if !content_type.starts_with("application/json") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Content-Type' of application/json (this master speaks JSON only), got '{content_type}'"),
        );
    }
    let (kind, _call) = match operator::parse(&body) {
        Ok(call) => call,
        Err(answer) => return operator_response(answer),
    };
    if let Some(accept) = header(&headers, header::ACCEPT)
        && !(accept.contains("application/json") || accept.contains("*/*"))
    {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow 'application/json' (this master speaks JSON only)",
        );
    }
    match master.read_cluster(|c| operator::answer(&master, c, &kind)) {
        Some(answer) => operator_response(answer),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

fn operator_response(answer: operator::Answer) -> Response {
    match answer {
        operator::Answer::Json(body) => axum::Json(body).into_response(),
        operator::Answer::Error { status, message } => text(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), message),
    }
}

// ---------------------------------------------------------------------------------------------
// v1 scheduler API
// ---------------------------------------------------------------------------------------------

/// Checks the presence of the part of a call its type requires, with Mesos' messages.
fn validate(call: &Call) -> Result<(), CallError> {
    let bad = |message: &str| {
        Err(CallError {
            status: 400,
            message: format!("Failed to validate scheduler::Call: {message}"),
        })
    };
    if call.kind == CallType::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return bad("Expecting 'subscribe' to be present");
        };
        if let (Some(outer), Some(inner)) = (&call.framework_id, &subscribe.framework_info.id)
            && outer != inner
        {
            return bad("'framework_id' differs from 'subscribe.framework_info.id'");
        }
        if call.framework_id.is_some() && subscribe.framework_info.id.is_none() {
            return bad("'framework_id' differs from 'subscribe.framework_info.id'");
        }
        return Ok(());
    }
    if call.framework_id.as_ref().is_none_or(|f| f.value.is_empty()) {
        return bad("Expecting 'framework_id' to be present");
    }
    let missing = match call.kind {
        CallType::Accept => call.accept.is_none().then_some("accept"),
        CallType::Decline => call.decline.is_none().then_some("decline"),
        CallType::Kill => call.kill.is_none().then_some("kill"),
        CallType::Acknowledge => call.acknowledge.is_none().then_some("acknowledge"),
        CallType::Reconcile => call.reconcile.is_none().then_some("reconcile"),
        CallType::Teardown | CallType::Revive | CallType::Suppress => None,
        CallType::Message | CallType::Request | CallType::Shutdown => None,
        CallType::AcceptInverseOffers | CallType::DeclineInverseOffers => None,
        CallType::Unknown => return bad("Expecting 'type' to be present"),
        _ => return bad("This call type is not supported by this master"),
    };
    if let Some(field) = missing {
        return bad(&format!("Expecting '{field}' to be present"));
    }
    Ok(())
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn scheduler(State(master): Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    if let Some(content_type) = header(&headers, header::CONTENT_TYPE)
        && !content_type.starts_with("application/json")
    {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Expecting 'Content-Type' of application/json (this master speaks JSON only), got '{content_type}'"),
        );
    }
    if let Some(accept) = header(&headers, header::ACCEPT)
        && !(accept.contains("application/json") || accept.contains("*/*"))
    {
        return text(StatusCode::NOT_ACCEPTABLE, "Expecting 'Accept' to allow application/json");
    }
    let call: Call = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            return text(StatusCode::BAD_REQUEST, format!("Failed to parse body into Call protobuf: {e}"));
        }
    };
    if let Err(e) = validate(&call) {
        return call_error(e);
    }
    let stream_id = header(&headers, STREAM_ID);
    if call.kind == CallType::Subscribe {
        if stream_id.is_some() {
            return text(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        return subscribe(&master, call).await;
    }
    let framework_id = call.framework_id.as_ref().map(|f| f.value.clone()).unwrap_or_default();
    let outcome = master
        .with_cluster(|cluster| {
            cluster.check_stream(&framework_id, stream_id)?;
            match call.kind {
                CallType::Teardown => cluster.teardown(&framework_id),
                CallType::Accept => cluster.accept(&framework_id, call.accept.as_ref().expect("validated")),
                CallType::Decline => cluster.decline(&framework_id, call.decline.as_ref().expect("validated")),
                CallType::Kill => cluster.kill(&framework_id, call.kill.as_ref().expect("validated")),
                CallType::Acknowledge => cluster.acknowledge(&framework_id, call.acknowledge.as_ref().expect("validated"))?,
                CallType::Reconcile => cluster.reconcile(&framework_id, call.reconcile.as_ref().expect("validated")),
                CallType::Revive => cluster.revive(&framework_id),
                CallType::Suppress => cluster.suppress(&framework_id),
                // Accepted and ignored: the sim has no executors, inverse offers or requests.
                _ => {}
            }
            Ok(())
        })
        .await;
    match outcome {
        Some(Ok(())) => StatusCode::ACCEPTED.into_response(),
        Some(Err(e)) => call_error(e),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn subscribe(master: &Master, call: Call) -> Response {
    let info = call.subscribe.expect("validated").framework_info;
    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(cluster::FRAMEWORK_EVENTS_QUEUED);
    let subscribed = master
        .with_cluster(|c| {
            let removed = info.id.as_ref().is_some_and(|id| c.is_removed(&id.value));
            // As Mesos does, a torn-down framework gets a stream holding only ERROR.
            (!removed).then(|| c.subscribe(info, sender.clone()))
        })
        .await;
    let (framework_id, stream_id) = match subscribed {
        Some(Some(ids)) => ids,
        Some(None) => {
            let _ = sender.try_send(recordio::encode(&Event::error("Framework has been removed")));
            drop(sender);
            (String::new(), uuid::Uuid::new_v4().to_string())
        }
        None => return text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    };
    tracing::debug!(framework = %framework_id, stream = %stream_id, "SUBSCRIBE stream opened");
    // The body ends when the master drops the sender (framework removed or re-subscribed);
    // when the client goes away hyper drops the body, and the next send marks it disconnected.
    let events = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|event| event.map(Ok::<Vec<u8>, Infallible>)));
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&stream_id) {
        headers.insert(STREAM_ID, value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------------------------

async fn register_agent(State(master): Shared, uri: Uri, body: Bytes) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let request: RegisterAgent = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("malformed registration: {e}")),
    };
    match master.with_cluster(|c| c.register_agent(request)).await {
        Some(registered) => axum::Json(registered).into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn agent_ping(State(master): Shared, uri: Uri, body: Bytes) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let ping: AgentPing = match serde_json::from_slice(&body) {
        Ok(ping) => ping,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("malformed ping: {e}")),
    };
    match master.with_cluster(|c| c.agent_ping(&ping.agent_id.value)).await {
        Some(true) => StatusCode::OK.into_response(),
        Some(false) => text(StatusCode::NOT_FOUND, "Agent is not registered"),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

async fn status_update(State(master): Shared, uri: Uri, body: Bytes) -> Response {
    if let Some(response) = unless_leading(&master, &uri) {
        return response;
    }
    let update: StatusUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("malformed status update: {e}")),
    };
    let applied = master
        .with_cluster(|c| c.status_update(&update.agent_id.value, &update.framework_id.value, update.status))
        .await;
    match applied {
        Some(true) => StatusCode::ACCEPTED.into_response(),
        Some(false) => text(StatusCode::NOT_FOUND, "Agent is not registered"),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}
