//! Property: any JSON body to any Marathon endpoint gets 2xx or 4xx, never 5xx, and Marathon
//! keeps answering afterwards.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use super::Platform;

/// Any JSON value, up to a small depth.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
            Just(1e300),
            Just(-1e300),
            Just(0.5)
        ]
        .prop_map(|f| json!(f)),
        "[a-z/._-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Marathon's own field names, so bodies reach validation and the scheduler, not just parsing.
const FIELDS: &[&str] = &[
    "id",
    "cmd",
    "args",
    "instances",
    "cpus",
    "mem",
    "disk",
    "ports",
    "portDefinitions",
    "requirePorts",
    "env",
    "labels",
    "constraints",
    "healthChecks",
    "upgradeStrategy",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "container",
    "dependencies",
    "uris",
    "fetch",
    "version",
    "apps",
    "groups",
    "ids",
];

/// An app-shaped body: a valid core, with Marathon's fields set to arbitrary values.
fn app_like() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), any_json()), 0..4).prop_map(|fields| {
        let mut app: Map<String, Value> = json!({ "id": "/fz", "cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 1 })
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in fields {
            app.insert(k.to_owned(), v);
        }
        Value::Object(app)
    })
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v2/apps"),
    ("PUT", "/v2/apps?force=true"),
    ("PUT", "/v2/apps/fz"),
    ("PUT", "/v2/apps/fz?force=true"),
    ("PATCH", "/v2/apps/fz?force=true"),
    ("POST", "/v2/apps/fz/restart?force=true"),
    ("DELETE", "/v2/apps/fz?force=true"),
    ("DELETE", "/v2/apps/fz/tasks?scale=true"),
    ("GET", "/v2/apps/fz/versions"),
    ("POST", "/v2/groups"),
    ("PUT", "/v2/groups/fzg?force=true"),
    ("DELETE", "/v2/groups/fzg?force=true"),
    ("POST", "/v2/tasks/delete?scale=true"),
    ("DELETE", "/v2/deployments/nope"),
    ("DELETE", "/v2/queue/fz/delay"),
    ("GET", "/v2/queue"),
    ("GET", "/v2/apps?embed=apps.tasks"),
    ("GET", "/v2/groups"),
];

#[test]
fn marathon_answers_any_json_on_any_endpoint_without_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let platform = runtime.block_on(Platform::start(1, 1));
    let base = platform.marathons[0].url();
    let body = prop_oneof![any_json(), app_like()];
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    // Which answers came back: the bodies must reach past parsing, into validation (4xx) and
    // into changes that succeed (2xx).
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let result = runner.run(&(prop::sample::select(ENDPOINTS), body), |((method, path), body)| {
        let method: reqwest::Method = method.parse().map_err(|e| TestCaseError::fail(format!("{method}: {e}")))?;
        let (status, text) = runtime.block_on(async {
            let response = platform
                .http
                .request(method.clone(), format!("{base}{path}"))
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("{method} {path}: no answer: {e}")))?;
            let status = response.status().as_u16();
            Ok::<_, TestCaseError>((status, response.text().await.unwrap_or_default()))
        })?;
        prop_assert!(status < 500, "{method} {path} with {body} answered {status}: {text}");
        seen.lock().map_err(|e| TestCaseError::fail(e.to_string()))?.insert(status);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner().unwrap_or_default();
    for class in [200, 201, 400, 404, 422] {
        assert!(
            seen.contains(&class),
            "no answer {class} among {seen:?}: the bodies do not reach that far"
        );
    }
    // Still answering, and its lists still render.
    let status = runtime.block_on(async {
        platform
            .http
            .get(format!("{base}/v2/apps?embed=apps.tasks"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200));
    drop(platform);
}
