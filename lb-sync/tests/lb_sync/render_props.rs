//! Properties of the rendered routes, for any apps and tasks Marathon may report: real nginx
//! accepts them, and they route exactly the healthy running tasks.

use std::collections::{BTreeMap, BTreeSet};

use paas_lb_sync::render::render;
use paas_lb_sync::route::{RoutingTable, VirtualHost};
use paas_lb_sync::wire;
use proptest::prelude::*;

use super::nginx::main_conf;
use crate::support::nginx::nginx_logged_in;

const STATES: [&str; 5] = ["TASK_RUNNING", "TASK_STAGING", "TASK_STARTING", "TASK_KILLING", "TASK_FAILED"];

#[derive(Debug, Clone)]
struct GenTask {
    octet: u8,
    port: u16,
    state: &'static str,
    results: Vec<bool>,
}

#[derive(Debug, Clone)]
struct GenApp {
    /// 0: no label, 1: PAAS_VHOST, 2: HAPROXY_0_VHOST.
    label: u8,
    checks: usize,
    tasks: Vec<GenTask>,
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,8}[a-z0-9])?"
}

fn app_id() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..4).prop_map(|s| format!("/{}", s.join("/")))
}

fn task() -> impl Strategy<Value = GenTask> {
    (
        1u8..255,
        prop_oneof![9 => 1u16..=65535, 1 => Just(0u16)],
        prop::sample::select(&STATES[..]),
        prop::collection::vec(prop::bool::weighted(0.8), 0..3),
    )
        .prop_map(|(octet, port, state, results)| GenTask {
            octet,
            port,
            state,
            results,
        })
}

fn app() -> impl Strategy<Value = GenApp> {
    (
        prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        0usize..3,
        prop::collection::vec(task(), 0..6),
    )
        .prop_map(|(label, checks, tasks)| GenApp { label, checks, tasks })
}

/// The wire apps, and independently of lb-sync's code, which host must reach which backends.
fn model(apps: &BTreeMap<String, GenApp>) -> (Vec<wire::App>, BTreeMap<String, BTreeSet<String>>) {
    let mut wire_apps = Vec::new();
    let mut expected = BTreeMap::new();
    for (index, (id, app)) in apps.iter().enumerate() {
        let mut json = serde_json::json!({"id": id, "labels": {}, "healthChecks": vec![serde_json::json!({"protocol": "HTTP"}); app.checks], "tasks": []});
        let host = match app.label {
            0 => {
                let mut parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
                parts.reverse();
                format!("{}.{}", parts.join("."), super::DOMAIN)
            }
            label => {
                let host = format!("v{index}.example.test");
                let key = if label == 1 { "PAAS_VHOST" } else { "HAPROXY_0_VHOST" };
                json["labels"][key] = serde_json::json!(host);
                host
            }
        };
        let mut backends = BTreeSet::new();
        for (n, t) in app.tasks.iter().enumerate() {
            let address = format!("127.0.0.{}", t.octet);
            let results: Vec<serde_json::Value> = t.results.iter().map(|alive| serde_json::json!({"alive": alive})).collect();
            json["tasks"].as_array_mut().unwrap().push(serde_json::json!({
                "id": format!("t{n}"), "host": address, "ports": [t.port], "state": t.state, "healthCheckResults": results,
            }));
            let healthy = app.checks == 0 || (t.results.len() >= app.checks && t.results.iter().all(|a| *a));
            if t.state == "TASK_RUNNING" && healthy && t.port != 0 {
                backends.insert(format!("{address}:{}", t.port));
            }
        }
        expected.insert(host, backends);
        wire_apps.push(serde_json::from_value(json).unwrap());
    }
    (wire_apps, expected)
}

/// Reads the rendered routes back: each server name with the backends its upstream lists.
fn routed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut upstreams: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut routes = BTreeMap::new();
    let mut upstream: Option<String> = None;
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("upstream ").and_then(|l| l.strip_suffix(" {")) {
            upstream = Some(name.to_owned());
            upstreams.insert(name.to_owned(), BTreeSet::new());
        } else if let (Some(up), Some(server)) = (&upstream, line.strip_prefix("server ").filter(|l| l.ends_with(';'))) {
            upstreams
                .get_mut(up)
                .unwrap()
                .insert(server.split_whitespace().next().unwrap().to_owned());
        } else if line == "}" {
            upstream = None;
        } else if let Some(list) = line.strip_prefix("server_name ").and_then(|l| l.strip_suffix(';')) {
            names = list.split_whitespace().map(str::to_owned).collect();
        } else if let Some(target) = line.strip_prefix("proxy_pass http://").and_then(|l| l.strip_suffix(';')) {
            for name in names.drain(..) {
                routes.insert(name, upstreams[target].clone());
            }
        } else if line == "return 503;" {
            for name in names.drain(..) {
                routes.insert(name, BTreeSet::new());
            }
        }
    }
    routes
}

/// Runs `nginx -t` on the lbs' main config including `routes`; returns nginx's complaint if any.
fn nginx_rejects(dir: &std::path::Path, routes: &str) -> Option<String> {
    std::fs::write(dir.join("routes.conf"), routes).unwrap();
    std::fs::write(dir.join("nginx.conf"), main_conf(dir, 18080)).unwrap();
    let output = nginx_logged_in(dir).args(["-t", "-q"]).output().expect("running nginx -t");
    (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lb_sync_rendered_routes_pass_nginx_t_and_route_exactly_the_healthy_running_tasks(
        apps in prop::collection::btree_map(app_id(), app(), 0..8),
        listen in prop_oneof![Just("80".to_owned()), (1024u16..65535).prop_map(|p| format!("127.0.0.1:{p}"))],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (wire_apps, expected) = model(&apps);
        let domain = VirtualHost::parse(super::DOMAIN).unwrap();
        let text = render(&RoutingTable::from_apps(&wire_apps, &domain), &listen);
        prop_assert_eq!(routed(&text), expected, "{}", text);
        let listen_line = format!("listen {listen};");
        prop_assert!(text.lines().filter(|l| l.trim().starts_with("listen")).all(|l| l.trim() == listen_line));
        if let Some(complaint) = nginx_rejects(dir.path(), &text) {
            prop_assert!(false, "nginx rejected the routes: {}\n{}", complaint, text);
        }
    }
}
