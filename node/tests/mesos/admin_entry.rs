//! The admin entry on a three-master cluster: real nginx with the admin upstreams file, kept by
//! `lb-sync --mode=admin` on the Mesos leader found in ZooKeeper and on the leader a Marathon
//! names. Every request through it reaches the leader, before and after the leader dies.

use std::process::{Child, Stdio};
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};

use crate::support::mesos::{MesosCluster, ZK_SESSION_TIMEOUT};
use crate::support::nginx::{nginx_bin, nginx_in, nginx_logged_in};
use crate::support::process::NodeProcess;
use crate::support::{eventually, free_port};

const AGENT: &str = "cpus:1;mem:256";

/// nginx shaped like the adminlb (core's `adminlb_conf`): the upstreams file included, Mesos
/// and Marathon on plain ports of their own; every path under `dir`. Stopped when dropped.
struct AdminNginx {
    dir: tempfile::TempDir,
    mesos_port: u16,
    marathon_port: u16,
    child: Child,
}

impl AdminNginx {
    fn start(masters: &[u16], marathon: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let (mesos_port, marathon_port) = (free_port(), free_port());
        let user = if std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        {
            "user root;\n"
        } else {
            ""
        };
        let server = |port: u16, upstream: &str| {
            format!(
                "    server {{\n        listen 127.0.0.1:{port};\n        allow 127.0.0.1/32;\n        deny all;\n\
                 \x20       location / {{\n            proxy_pass http://{upstream};\n            proxy_next_upstream error timeout http_502 http_503;\n        }}\n    }}\n"
            )
        };
        let main = format!(
            "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{\n    worker_connections 256;\n}}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/client_body_temp;\n    proxy_temp_path {d}/proxy_temp;\n\
             \x20   fastcgi_temp_path {d}/fastcgi_temp;\n    uwsgi_temp_path {d}/uwsgi_temp;\n    scgi_temp_path {d}/scgi_temp;\n\
             \x20   proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    proxy_connect_timeout 1s;\n\
             \x20   include {d}/admin-upstreams.conf;\n{}{}}}\n",
            server(mesos_port, "mesos"),
            server(marathon_port, "marathon"),
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        // As core renders it: every master until lb-sync names the leader.
        let mut upstreams = String::from("upstream mesos {\n");
        for port in masters {
            upstreams.push_str(&format!("    server 127.0.0.1:{port};\n"));
        }
        upstreams.push_str(&format!("}}\nupstream marathon {{\n    server 127.0.0.1:{marathon};\n}}\n"));
        std::fs::write(dir.path().join("admin-upstreams.conf"), upstreams).unwrap();
        let child = nginx_logged_in(dir.path())
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting nginx");
        AdminNginx {
            dir,
            mesos_port,
            marathon_port,
            child,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

impl Drop for AdminNginx {
    fn drop(&mut self) {
        let _ = nginx_in(self.dir.path()).args(["-s", "stop"]).status();
        let _ = self.child.wait();
    }
}

/// A Marathon stand-in that names itself as leader, as `GET /v2/leader` does.
async fn marathon_double() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let leader = format!("127.0.0.1:{port}");
    let app = axum::Router::new().route("/v2/leader", get(move || async move { Json(json!({ "leader": leader })) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// `n` requests for `/master/state` through the admin entry, without following redirects: the
/// pid of the master that answered each with 200, or `None` for any other answer.
async fn answering(cluster: &MesosCluster, port: u16, n: usize) -> Vec<Option<String>> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let response = cluster.http.get(format!("http://127.0.0.1:{port}/master/state")).send().await;
        let pid = match response {
            Ok(r) if r.status() == 200 => r.json::<Value>().await.ok().and_then(|s| s["pid"].as_str().map(str::to_owned)),
            _ => None,
        };
        seen.push(pid);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_admin_entry_follows_the_leader_across_a_failover() {
    let mut cluster = MesosCluster::start(3, &[AGENT]).await;
    let leader = cluster.leader_index().await.expect("a leader");
    let marathon = marathon_double().await;
    let ports: Vec<u16> = cluster.masters.iter().map(|m| m.port).collect();
    let nginx = AdminNginx::start(&ports, marathon);
    let _sync = NodeProcess::spawn(
        "lb-sync",
        [
            "--mode=admin".to_owned(),
            format!("--mesos-zk={}", cluster.zk.url("mesos")),
            format!("--marathon=http://127.0.0.1:{marathon}"),
            "--domain=paas.test".into(),
            format!("--nginx-conf={}", nginx.path("admin-upstreams.conf")),
            format!("--nginx-bin={}", nginx_bin().display()),
            format!("--nginx-main-conf={}", nginx.path("nginx.conf")),
            format!("--nginx-prefix={}", nginx.dir.path().display()),
            "--leader-poll=200ms".into(),
            format!("--zk-session-timeout={ZK_SESSION_TIMEOUT}"),
        ],
    );

    let pid_of = |i: usize| format!("master@127.0.0.1:{}", ports[i]);
    let expected = pid_of(leader);
    let (cluster_ref, nginx_ref) = (&cluster, &nginx);
    eventually(
        Duration::from_secs(20),
        "every request through the admin entry to reach the leader",
        || {
            let expected = expected.clone();
            async move {
                let seen = answering(cluster_ref, nginx_ref.mesos_port, 6).await;
                seen.iter().all(|p| p.as_deref() == Some(expected.as_str())).then_some(())
            }
        },
    )
    .await;
    let upstreams = std::fs::read_to_string(nginx.path("admin-upstreams.conf")).unwrap();
    assert!(
        upstreams.contains(&format!("server 127.0.0.1:{};", ports[leader]).replace(';', " max_fails=0;")),
        "{upstreams}"
    );
    let through: Value = crate::support::get_json(&cluster.http, &format!("http://127.0.0.1:{}/v2/leader", nginx.marathon_port)).await;
    assert_eq!(through["leader"], format!("127.0.0.1:{marathon}"));

    // The leader dies: the admin entry moves to the new one, which has the agent back.
    cluster.masters[leader].process.kill();
    let (cluster_ref, nginx_ref) = (&cluster, &nginx);
    let new_leader = eventually(Duration::from_secs(20), "a new leader", || async move {
        cluster_ref.leader_index().await.filter(|&i| i != leader)
    })
    .await;
    let expected = pid_of(new_leader);
    eventually(Duration::from_secs(30), "the admin entry to reach only the new leader", || {
        let expected = expected.clone();
        async move {
            let seen = answering(cluster_ref, nginx_ref.mesos_port, 6).await;
            seen.iter().all(|p| p.as_deref() == Some(expected.as_str())).then_some(())
        }
    })
    .await;
    let state: Value = eventually(Duration::from_secs(20), "the agent on the new leader's page", || async move {
        let response = cluster_ref
            .http
            .get(format!("http://127.0.0.1:{}/master/state", nginx_ref.mesos_port))
            .send()
            .await
            .ok()?;
        let state: Value = response.json().await.ok()?;
        (state["slaves"].as_array()?.len() == 1).then_some(state)
    })
    .await;
    assert_eq!(state["leader"], state["pid"]);
}
