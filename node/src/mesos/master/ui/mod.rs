//! Mesos' admin screen at the master's `/`: one HTML page and a script embedded in the binary
//! (the stylesheet and the page-building script `dom.js` are the Marathon screen's), reading
//! `/master/state`.
//!
//! A task's sandbox lives on its agent, which a browser behind the admin entry cannot reach, so
//! the master relays the agent's read-only endpoints at `/agent/<agent id>/<endpoint>`
//! (`state`, `files/browse`, `files/read`); Mesos' own UI calls the agent directly instead.
//! A master that does not lead sends the browser to the leader, as Mesos' UI does.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Master;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("../../../marathon/ui/style.css");

/// The agent endpoints the master relays for the screen: read-only ones.
const RELAYED: [&str; 3] = ["state", "files/browse", "files/read"];

/// `/` (the page), `/static/ui/<file>` (its assets) and `/agent/<id>/<endpoint>` (the relay).
pub fn router() -> axum::Router<Arc<Master>> {
    axum::Router::new()
        .route("/", get(index))
        .route("/static/ui/{file}", get(asset))
        .route("/agent/{id}/{*endpoint}", get(relay))
}

/// `None` when this master leads; otherwise a 307 to the same path on the leader (503 while
/// none is elected).
fn to_leader(master: &Master, uri: &Uri) -> Option<Response> {
    if master.leading() {
        return None;
    }
    let leader = master.leader.borrow().clone();
    let Some(leader) = leader else {
        return Some(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "No leader elected yet; this page reloads itself when one is.",
        ));
    };
    let host = leader
        .hostname
        .clone()
        .or_else(|| leader.address.as_ref().and_then(|a| a.hostname.clone().or_else(|| a.ip.clone())))
        .unwrap_or_else(|| leader.ipv4().to_string());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("//{host}:{}{path}", leader.port)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Some(response)
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", text.into()),
    )
        .into_response()
}

async fn index(State(master): State<Arc<Master>>, uri: Uri) -> Response {
    if let Some(response) = to_leader(&master, &uri) {
        return response;
    }
    // A line of counts in the page itself, for readers without scripts (and curl); the script
    // replaces it with the full screen.
    let leader = master
        .leader
        .borrow()
        .as_ref()
        .and_then(|l| l.pid.clone())
        .unwrap_or_else(|| "none".to_owned());
    let (agents, frameworks, tasks) = master
        .read_cluster(|c| {
            (
                c.agents.len(),
                c.frameworks.len(),
                c.frameworks.values().map(|f| f.tasks.len()).sum::<usize>(),
            )
        })
        .unwrap_or_default();
    let summary = format!(
        "Leader: {}. Agents: {agents}. Frameworks: {frameworks}. Active tasks: {tasks}.",
        escape(&leader)
    );
    let page = INDEX.replace("{{SUMMARY}}", &summary);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dom.js" => (crate::marathon::ui::DOM_SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return message(StatusCode::NOT_FOUND, format!("The UI has no file '{file}'; the screen is at /")),
    };
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// GET `/agent/<id>/<endpoint>?<query>`: the same request to that agent, its answer unchanged.
async fn relay(State(master): State<Arc<Master>>, uri: Uri, Path((id, endpoint)): Path<(String, String)>) -> Response {
    if let Some(response) = to_leader(&master, &uri) {
        return response;
    }
    if !RELAYED.contains(&endpoint.as_str()) {
        return message(
            StatusCode::NOT_FOUND,
            format!("'{endpoint}' is not relayed to agents; only {} are", RELAYED.join(", ")),
        );
    }
    let Some(base) = master.read_cluster(|c| c.agents.get(&id).map(|a| a.address.base_url())).flatten() else {
        return message(StatusCode::NOT_FOUND, format!("Agent '{id}' is not registered with this master"));
    };
    let url = match uri.query() {
        Some(query) => format!("{base}/{endpoint}?{query}"),
        None => format!("{base}/{endpoint}"),
    };
    match client().get(&url).send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = Response::builder().status(status);
            if let Some(kind) = answer.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
                response = response.header(header::CONTENT_TYPE, kind);
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|_| message(StatusCode::BAD_GATEWAY, "bad answer from the agent"))
        }
        Err(e) => message(StatusCode::BAD_GATEWAY, format!("agent '{id}' at {base} did not answer: {e}")),
    }
}
