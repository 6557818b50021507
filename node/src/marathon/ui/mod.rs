//! Marathon's admin screen at `/ui/`: one HTML page, a stylesheet and two scripts, embedded in the
//! binary so that a browser that can reach only the admin entry needs nothing else. The page
//! reads the REST API (`/v2/...`) and follows `/v2/events` itself; this module only serves files.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("index.html");
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");
/// What both screens build their pages with; Mesos' screen serves it too.
pub const DOM_SCRIPT: &str = include_str!("dom.js");

/// `/` redirects to `/ui/` as Marathon does; `/ui/` is the page, `/ui/<file>` its assets.
/// Generic over the state so it merges into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    axum::Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        // The API's router cuts trailing slashes, so `/ui/` arrives here as `/ui`.
        .route("/ui", get(|| async { asset("index.html") }))
        .route("/ui/index.html", get(|| async { asset("index.html") }))
        .route(
            "/ui/{file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>| async move { asset(&file) }),
        )
}

/// One embedded file, or a 404 naming it.
fn asset(name: &str) -> Response {
    let (body, kind) = match name {
        "index.html" => (INDEX, "text/html; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dom.js" => (DOM_SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({ "message": format!("The UI has no file '{name}'; the screen is at /ui/") }).to_string(),
            )
                .into_response();
        }
    };
    // Never cached: a rolled-out binary must not be shown with an old script.
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, Option<String>, String) {
        let response = router::<()>()
            .oneshot(axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let location = response.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, location, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn root_redirects_to_the_ui_and_the_page_names_its_assets() {
        let (status, location, _) = get("/").await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(location.as_deref(), Some("/ui/"));
        let (status, _, page) = get("/ui").await;
        assert_eq!(status, StatusCode::OK);
        for asset in ["/ui/dom.js", "/ui/app.js", "/ui/style.css"] {
            assert!(page.contains(asset), "the page names {asset}: {page}");
            let (status, _, _) = get(asset).await;
            assert_eq!(status, StatusCode::OK, "{asset} is served");
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page loads nothing from elsewhere"
        );
    }

    #[tokio::test]
    async fn an_unknown_file_is_a_404_naming_it() {
        let (status, _, body) = get("/ui/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("nope.js"), "{body}");
    }
}
