//! The routes file: one nginx `upstream` and one `server` per routed app, to be included inside
//! the `http {}` block of the lb's main config (whose default server answers `/status` and 404s
//! unknown hosts).

use std::fmt::Write;

use super::route::{Route, RoutingTable};

/// How nginx tries a task again: any connection error, timeout or gateway answer moves the
/// request to the next task, so a task that is dying (before Marathon reports it) fails no
/// request. Requests not yet sent are always retried; nginx never replays a POST already sent
/// (`non_idempotent` is deliberately absent).
const NEXT_UPSTREAM: &str = "error timeout http_502 http_503 http_504";

/// The proxy timeouts of every route, why each is what it is:
/// - connect 2s: longer than the 1 s after which a lost SYN is sent again, so one lost packet
///   on a lossy path costs a second, not a failed attempt; a partitioned or frozen task is
///   passed over after 2 s.
/// - read/send 3s: nginx's default of 60 s held every request sent to a paused (frozen) task
///   for a minute; 3 s passes it over well within a client's patience (the chaos probe gives
///   up after 5 s). An app whose answers take longer than this needs its own routes.
/// - as many tasks tried as it takes, 10 s in all: when most tasks die at once (4 slaves of 5
///   killed) a request that meets a dying task (refused at once) and then two dead ones (2 s
///   each) must still reach the survivor; a limit of 3 tries answered it 504 after 4 s. Tasks
///   marked failed are not tried, so a wide outage costs each request little more than one
///   pass over the dead (the time bounds it).
const PROXY_TIMEOUTS: &str = "proxy_connect_timeout 2s;\n        proxy_read_timeout 3s;\n        \
                              proxy_send_timeout 3s;\n        proxy_next_upstream_tries 0;\n        \
                              proxy_next_upstream_timeout 10s;";

/// Renders the routes file for `table`, every virtual host with `listen {listen};` (a port, or
/// address and port, as nginx's `listen` takes it).
///
/// Pure and deterministic: the same table gives the same text, so comparing texts tells
/// whether nginx needs a reload.
pub fn render(table: &RoutingTable, listen: &str) -> String {
    let mut out = String::from("# Routes from Marathon, written by paas-node lb-sync: edits are overwritten.\n");
    for route in &table.routes {
        render_route(&mut out, route, listen);
    }
    out
}

/// The upstream name of a route: its first host with dots turned into underscores (hosts never
/// hold underscores, so names stay distinct).
pub fn upstream_name(route: &Route) -> String {
    format!("app_{}", route.hosts[0].as_str().replace('.', "_"))
}

fn render_route(out: &mut String, route: &Route, listen: &str) {
    let names: Vec<&str> = route.hosts.iter().map(|h| h.as_str()).collect();
    let names = names.join(" ");
    // Writing to a String cannot fail.
    let _ = writeln!(out, "\n# app {}", route.app_id);
    if route.backends.is_empty() {
        let _ = writeln!(
            out,
            "server {{\n    listen {listen};\n    server_name {names};\n    location / {{\n        return 503;\n    }}\n}}"
        );
        return;
    }
    let upstream = upstream_name(route);
    let _ = writeln!(out, "upstream {upstream} {{");
    // Failures seen by one worker process take the task out for all of them: without a shared
    // zone each worker learns every dead task by a request of its own, 2 s each. 64 KiB for the
    // zone's own bookkeeping, and a KiB per backend for its two peers (well under that).
    let _ = writeln!(out, "    zone {upstream} {}k;", 64 + route.backends.len());
    for backend in &route.backends {
        // One failure takes a task out for a few seconds, so a dead task costs one retry, not one
        // per request, until Marathon reports it gone.
        let _ = writeln!(out, "    server {backend} max_fails=1 fail_timeout=5s;");
    }
    for backend in &route.backends {
        // The same tasks again as backups never taken out: when every task has just failed once
        // (a lossy network, a loaded machine), nginx tries them again rather than answering
        // 502 "no live upstreams" to everyone for the next five seconds.
        let _ = writeln!(out, "    server {backend} backup max_fails=0;");
    }
    let _ = writeln!(out, "}}");
    let _ = writeln!(
        out,
        "server {{\n    listen {listen};\n    server_name {names};\n    location / {{\n        \
         proxy_pass http://{upstream};\n        proxy_next_upstream {NEXT_UPSTREAM};\n        \
         {PROXY_TIMEOUTS}\n    }}\n}}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::VirtualHost;
    use crate::wire;

    #[test]
    fn renders_upstreams_for_routable_tasks_and_503_for_apps_without_any() {
        let list: wire::AppList = serde_json::from_value(serde_json::json!({"apps": [
            {"id": "/shop/web", "tasks": [
                {"id": "1", "host": "10.0.0.1", "ports": [31000], "state": "TASK_RUNNING"},
                {"id": "2", "host": "10.0.0.2", "ports": [31001], "state": "TASK_KILLING"}
            ]},
            {"id": "/idle", "tasks": []}
        ]}))
        .unwrap();
        let table = RoutingTable::from_apps(&list.apps, &VirtualHost::parse("paas.localhost").unwrap());
        let text = render(&table, "8080");
        assert!(
            text.contains(
                "upstream app_web_shop_paas_localhost {\n    zone app_web_shop_paas_localhost 65k;\n    \
                 server 10.0.0.1:31000 max_fails=1 fail_timeout=5s;\n    \
                 server 10.0.0.1:31000 backup max_fails=0;\n}"
            ),
            "{text}"
        );
        assert!(!text.contains("10.0.0.2"), "{text}");
        assert!(text.contains("server_name web.shop.paas.localhost;"), "{text}");
        assert!(
            text.contains("server_name idle.paas.localhost;\n    location / {\n        return 503;"),
            "{text}"
        );
        assert!(
            text.contains("proxy_next_upstream error timeout http_502 http_503 http_504;"),
            "{text}"
        );
        assert!(!text.contains("non_idempotent"), "{text}");
        assert!(
            text.contains("proxy_read_timeout 3s;") && text.contains("proxy_connect_timeout 2s;"),
            "{text}"
        );
        assert_eq!(text, render(&table, "8080"), "rendering is deterministic");
    }
}
