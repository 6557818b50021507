//! lb-sync end to end against real nginx: Marathon doubles feed apps and events, app tasks answer
//! with their names, and requests through nginx show who serves what.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::backend::TaskServer;
use super::http::get;
use super::marathon_double::{Cluster, MarathonDouble, TaskSpec};
use super::nginx::NginxServer;
use super::{DOMAIN, start_lb_sync, tally, wait_served_by};

const CONVERGE: Duration = Duration::from_secs(10);

async fn tasks(names: &[&str]) -> Vec<TaskServer> {
    let mut servers = Vec::new();
    for name in names {
        servers.push(TaskServer::start(name).await);
    }
    servers
}

fn specs(servers: &[TaskServer]) -> Vec<TaskSpec> {
    servers.iter().map(|s| TaskSpec::running(&s.name, s.port())).collect()
}

#[tokio::test]
async fn lb_sync_serves_every_task_and_follows_scaling() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["a1", "a2", "a3", "a4", "a5"]).await;
    let group = tasks(&["g1"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..3]));
    cluster.set_app("/shop/web-front", &[], &specs(&group));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let host = format!("app.{DOMAIN}");

    wait_served_by(nginx.port, &host, &["a1", "a2", "a3"], CONVERGE).await;
    wait_served_by(nginx.port, &format!("web-front.shop.{DOMAIN}"), &["g1"], CONVERGE).await;
    // Unknown hosts reach the main config's default server.
    assert_eq!(get(nginx.port, &format!("nope.{DOMAIN}")).await.map(|a| a.0), Some(404));
    assert_eq!(get(nginx.port, "whatever").await.map(|a| a.0), Some(404));

    cluster.set_app("/app", &[], &specs(&servers));
    marathon.publish_status_update("/app", "TASK_RUNNING");
    wait_served_by(nginx.port, &host, &["a1", "a2", "a3", "a4", "a5"], CONVERGE).await;

    cluster.set_app("/app", &[], &specs(&servers[4..]));
    marathon.publish_status_update("/app", "TASK_KILLED");
    wait_served_by(nginx.port, &host, &["a5"], CONVERGE).await;

    // Staging tasks take no traffic; an app without routable tasks answers 503, not 404.
    let mut staging = specs(&servers[..1]);
    staging[0].state = "TASK_STAGING";
    cluster.set_app("/app", &[], &staging);
    marathon.publish_status_update("/app", "TASK_STAGING");
    wait_served_by(nginx.port, &host, &["status:503"], CONVERGE).await;
}

#[tokio::test]
async fn lb_sync_vhost_labels_override_the_app_id() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["l1", "h1"]).await;
    cluster.set_app(
        "/labelled",
        &[("PAAS_VHOST", "www.example.test"), ("HAPROXY_0_VHOST", "ignored.example.test")],
        &specs(&servers[..1]),
    );
    cluster.set_app("/legacy", &[("HAPROXY_0_VHOST", "legacy.example.test")], &specs(&servers[1..]));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    wait_served_by(nginx.port, "www.example.test", &["l1"], CONVERGE).await;
    wait_served_by(nginx.port, "legacy.example.test", &["h1"], CONVERGE).await;
    assert_eq!(
        tally(nginx.port, &format!("labelled.{DOMAIN}"), 3)
            .await
            .into_keys()
            .collect::<Vec<_>>(),
        ["status:404"]
    );
    assert_eq!(
        tally(nginx.port, "ignored.example.test", 3).await.into_keys().collect::<Vec<_>>(),
        ["status:404"]
    );
}

#[tokio::test]
async fn lb_sync_a_killed_task_fails_no_request_while_it_leaves() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let mut servers = tasks(&["k1", "k2", "k3"]).await;
    cluster.set_app("/app", &[], &specs(&servers));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["k1", "k2", "k3"], CONVERGE).await;
    nginx.wait_reloaded().await;

    // Two clients send requests without pause while the task dies and then leaves the routes.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..2 {
        let (stop, sent, host, port) = (stop.clone(), sent.clone(), host.clone(), nginx.port);
        clients.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match get(port, &host).await {
                    Some((200, _)) => {}
                    other => bad.push(format!("{other:?}")),
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            bad
        }));
    }
    sent_more(&sent, 20).await;
    servers[1].kill().await;
    // Marathon notices the loss only a while later; nginx must route around the dead task
    // meanwhile, for a good number of requests.
    sent_more(&sent, 150).await;
    cluster.set_app(
        "/app",
        &[],
        &[
            TaskSpec::running("k1", servers[0].port()),
            TaskSpec::running("k3", servers[2].port()),
        ],
    );
    marathon.publish_status_update("/app", "TASK_KILLED");
    wait_served_by(nginx.port, &host, &["k1", "k3"], CONVERGE).await;
    sent_more(&sent, 20).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// Waits until the clients counting into `sent` have sent `more` requests.
async fn sent_more(sent: &AtomicUsize, more: usize) {
    let target = sent.load(Ordering::Relaxed) + more;
    crate::support::eventually(CONVERGE, &format!("{more} more requests sent"), || async {
        (sent.load(Ordering::Relaxed) >= target).then_some(())
    })
    .await;
}

#[tokio::test]
async fn lb_sync_drops_a_task_failing_its_health_check() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["h1", "h2", "h3"]).await;
    cluster.set_app("/app", &[], &specs(&servers));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["h1", "h2", "h3"], CONVERGE).await;

    let mut sick = specs(&servers);
    sick[2].alive = Some(false);
    cluster.set_app("/app", &[], &sick);
    marathon.publish(
        "health_status_changed_event",
        &serde_json::json!({"appId": "/app", "taskId": "app.h3", "alive": false}),
    );
    wait_served_by(nginx.port, &host, &["h1", "h2"], CONVERGE).await;

    // A task with a health check but no result yet is not trusted either.
    sick[2].alive = None;
    sick[1].alive = None;
    cluster.set_app("/app", &[], &sick);
    marathon.publish(
        "health_status_changed_event",
        &serde_json::json!({"appId": "/app", "taskId": "app.h2", "alive": false}),
    );
    wait_served_by(nginx.port, &host, &["h1"], CONVERGE).await;

    sick[1].alive = Some(true);
    sick[2].alive = Some(true);
    cluster.set_app("/app", &[], &sick);
    marathon.publish(
        "health_status_changed_event",
        &serde_json::json!({"appId": "/app", "taskId": "app.h2", "alive": true}),
    );
    wait_served_by(nginx.port, &host, &["h1", "h2", "h3"], CONVERGE).await;
}

#[tokio::test]
async fn lb_sync_fails_over_between_marathons_and_keeps_the_last_good_routes() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["f1", "f2", "f3"]).await;
    cluster.set_app("/app", &[], &specs(&servers));
    let mut first = MarathonDouble::start(0, cluster.clone()).await;
    let mut second = MarathonDouble::start(0, cluster.clone()).await;
    let first_port = first.server.port;
    // A short resync, so that lb-sync reads the apps (and finds no Marathon) soon after both die.
    let lb_sync = start_lb_sync(&nginx, &[first.url(), second.url()], &["--resync=1s"]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["f1", "f2", "f3"], CONVERGE).await;

    // The first Marathon dies; a change announced by the second must still arrive.
    first.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.set_app("/app", &[], &specs(&servers[..2]));
    second.publish_status_update("/app", "TASK_KILLED");
    wait_served_by(nginx.port, &host, &["f1", "f2"], CONVERGE).await;

    // Every Marathon gone: once a sync has found none answering, nginx still serves the last
    // good routes, untouched.
    let failed_syncs = lb_sync.log_text().matches("route sync failed").count();
    second.kill().await;
    let routes = nginx.routes_text();
    lb_sync
        .wait_logged("route sync failed", failed_syncs, Duration::from_secs(10))
        .await;
    wait_served_by(nginx.port, &host, &["f1", "f2"], Duration::from_secs(1)).await;
    assert_eq!(nginx.routes_text(), routes, "the routes file changed while no Marathon answered");

    // A Marathon comes back (on the first one's address) with changes made meanwhile, and no
    // event for them: lb-sync reads them on its own (the reconnect, a retry or the resync).
    cluster.set_app("/app", &[], &specs(&servers[2..]));
    let _back = MarathonDouble::start(first_port, cluster.clone()).await;
    wait_served_by(nginx.port, &host, &["f3"], Duration::from_secs(15)).await;
}

#[tokio::test]
async fn lb_sync_never_installs_routes_nginx_rejects() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["r1", "r2"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..1]));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["r1"], CONVERGE).await;

    // A valid DNS name, but longer than the main config's server_names_hash_bucket_size allows:
    // nginx refuses any config holding it ("could not build server_names_hash").
    let long = format!("{}.{}.{}.example.test", "a".repeat(60), "b".repeat(60), "c".repeat(60));
    cluster.set_app("/long", &[("PAAS_VHOST", &long)], &specs(&servers[1..]));
    cluster.set_app("/app", &[], &specs(&servers));
    marathon.publish_status_update("/long", "TASK_RUNNING");
    // The other app's change still goes through; the refused app is left out.
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        assert!(!nginx.routes_text().contains(&long), "routes nginx rejects were installed");
        let seen = tally(nginx.port, &host, 8).await;
        if seen.keys().map(String::as_str).collect::<Vec<_>>() == ["r1", "r2"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other app's change never arrived: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tally(nginx.port, &long, 2).await.into_keys().collect::<Vec<_>>(), ["status:404"]);
    let leftovers: Vec<String> = std::fs::read_dir(nginx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("candidate") || name.contains("check"))
        .collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");

    // Marathon changes again, still with the refused app: lb-sync keeps following.
    cluster.set_app("/app", &[], &specs(&servers[1..]));
    marathon.publish_status_update("/app", "TASK_KILLED");
    wait_served_by(nginx.port, &host, &["r2"], CONVERGE).await;
    assert!(!nginx.routes_text().contains(&long), "routes nginx rejects were installed");

    // Once the refused app goes, everything renders and installs whole again.
    cluster.remove_app("/long");
    cluster.set_app("/app", &[], &specs(&servers));
    marathon.publish("app_terminated_event", &serde_json::json!({"appId": "/long"}));
    wait_served_by(nginx.port, &host, &["r1", "r2"], CONVERGE).await;
}

#[tokio::test]
async fn lb_sync_follows_the_leader_and_the_next_one_when_it_dies() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["e1", "e2", "e3"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..1]));
    let mut leader = MarathonDouble::start(0, cluster.clone()).await;
    let standby = MarathonDouble::start(0, cluster.clone()).await;
    let next = MarathonDouble::start(0, cluster.clone()).await;
    cluster.set_leader(Some(leader.server.port));
    // The leader listed last: lb-sync must find it by asking, since only the leader has events.
    let _lb_sync = start_lb_sync(&nginx, &[standby.url(), next.url(), leader.url()], &[]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["e1"], CONVERGE).await;
    cluster.set_app("/app", &[], &specs(&servers[..2]));
    leader.publish_status_update("/app", "TASK_RUNNING");
    // Well before the 30 s resync: only the leader's event can explain it.
    wait_served_by(nginx.port, &host, &["e1", "e2"], Duration::from_secs(5)).await;

    // Clients keep sending requests while the leader dies and another is elected.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, host, port) = (stop.clone(), host.clone(), nginx.port);
        tokio::spawn(async move {
            let (mut ok, mut bad) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match get(port, &host).await {
                    Some((200, _)) => ok += 1,
                    other => bad.push(format!("{other:?}")),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, bad)
        })
    };
    leader.kill().await;
    cluster.set_leader(None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.set_leader(Some(next.server.port));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.set_app("/app", &[], &specs(&servers));
    next.publish_status_update("/app", "TASK_RUNNING");
    wait_served_by(nginx.port, &host, &["e1", "e2", "e3"], Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, bad) = client.await.unwrap();
    assert!(ok > 20, "too few requests during the failover: {ok}");
    assert!(
        bad.is_empty(),
        "{} requests failed during the failover: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

#[tokio::test]
async fn lb_sync_coalesces_bursts_and_reloads_only_on_change() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["b1", "b2", "b3", "b4", "b5"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..1]));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["b1"], CONVERGE).await;
    let settled = nginx.reloads();
    assert!(settled >= 1, "nginx was never reloaded");

    // Events that change nothing cause no reload. lb-sync handles events in order, so once a
    // marker app published after them is served, any reload they caused has happened already:
    // exactly one reload (the marker's) may show.
    for _ in 0..100 {
        marathon.publish_status_update("/app", "TASK_RUNNING");
    }
    let after_noops = marker(&cluster, &marathon, &nginx, &servers[0], "marker-1").await;
    assert_eq!(after_noops, settled + 1, "nginx reloaded although the routes did not change");
    let settled = after_noops;

    // A burst of 100 changes (a deployment scaling up task by task) costs a handful of reloads;
    // the marker after it counts every reload the burst caused.
    for step in 0..100 {
        cluster.set_app("/app", &[], &specs(&servers[..1 + step * 4 / 99]));
        marathon.publish_status_update("/app", "TASK_RUNNING");
    }
    wait_served_by(nginx.port, &host, &["b1", "b2", "b3", "b4", "b5"], CONVERGE).await;
    let after = marker(&cluster, &marathon, &nginx, &servers[0], "marker-2").await;
    let burst = after - settled - 1;
    assert!((1..=5).contains(&burst), "{burst} reloads for one burst of 100 changes");
}

/// Adds app `/<name>` (served by `server`), waits until nginx serves it, and returns how many
/// reloads nginx has had by then: its own reload and every one before it.
async fn marker(cluster: &Cluster, marathon: &MarathonDouble, nginx: &NginxServer, server: &TaskServer, name: &str) -> usize {
    cluster.set_app(
        &format!("/{name}"),
        &[],
        &[TaskSpec::running(&format!("{name}-task"), server.port())],
    );
    marathon.publish_status_update(&format!("/{name}"), "TASK_RUNNING");
    let host = format!("{name}.{DOMAIN}");
    crate::support::eventually(CONVERGE, &format!("{host} served"), || async {
        matches!(get(nginx.port, &host).await, Some((200, _))).then_some(())
    })
    .await;
    nginx.reloads()
}

#[tokio::test]
async fn lb_sync_resyncs_periodically_without_events() {
    let nginx = NginxServer::start().await;
    let cluster = Cluster::default();
    let servers = tasks(&["p1", "p2"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..1]));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &["--resync=1s"]);
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["p1"], CONVERGE).await;
    // A change whose event was lost: only the periodic resync can bring it.
    cluster.set_app("/app", &[], &specs(&servers));
    wait_served_by(nginx.port, &host, &["p1", "p2"], Duration::from_secs(5)).await;
}

#[test]
fn lb_sync_refuses_invalid_flags() {
    for (flag, value) in [
        ("--domain", "bad;domain"),
        ("--marathon", "m1:8080"),
        ("--listen", "0.0.0.0:80;"),
        ("--resync", "0s"),
    ] {
        let mut args = vec![
            "lb-sync".to_owned(),
            "--marathon=http://127.0.0.1:1".to_owned(),
            "--domain=paas.test".to_owned(),
            "--nginx-conf=/nonexistent/routes.conf".to_owned(),
        ];
        args.retain(|a| !a.starts_with(&format!("{flag}=")));
        args.push(format!("{flag}={value}"));
        let output = std::process::Command::new(crate::support::process::paas_node_binary())
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag}={value} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(flag.trim_start_matches('-')) || stderr.contains(value),
            "{flag}={value}: {stderr}"
        );
    }
}

#[tokio::test]
async fn lb_sync_started_before_nginx_catches_up_once_nginx_runs() {
    let mut nginx = NginxServer::prepare();
    let cluster = Cluster::default();
    let servers = tasks(&["n1", "n2"]).await;
    cluster.set_app("/app", &[], &specs(&servers[..1]));
    let marathon = MarathonDouble::start(0, cluster.clone()).await;
    let _lb_sync = start_lb_sync(&nginx, &[marathon.url()], &[]);
    // The routes are installed even though nothing can be reloaded yet.
    crate::support::eventually(CONVERGE, "routes installed before nginx runs", || async {
        nginx.routes_text().contains(&format!("app.{DOMAIN}")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    nginx.launch().await;
    let host = format!("app.{DOMAIN}");
    wait_served_by(nginx.port, &host, &["n1"], CONVERGE).await;
    cluster.set_app("/app", &[], &specs(&servers));
    marathon.publish_status_update("/app", "TASK_RUNNING");
    wait_served_by(nginx.port, &host, &["n1", "n2"], CONVERGE).await;
}
