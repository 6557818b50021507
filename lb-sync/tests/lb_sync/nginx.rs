//! Real nginx (Debian's `nginx` package) under a temporary prefix, listening on 127.0.0.1 at a
//! port chosen at run time, with a main config shaped like the lbs' (a default server for
//! `/status` and unknown hosts, then the routes file lb-sync owns).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::nginx::{nginx_in, nginx_logged_in};
use crate::support::{eventually, free_port};

use super::http::get;

/// The main config: the same shape as the lbs' (see paas-core's `render::nginx::lb_conf`), with
/// every path inside `dir`.
pub fn main_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    // As root, workers would otherwise run as `nobody`, which cannot enter the private temp dir.
    let user = if running_as_root() { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{\n    worker_connections 1024;\n}}\n\
         http {{\n    access_log off;\n    server_names_hash_bucket_size 128;\n\
         \x20   client_body_temp_path {d}/client_body_temp;\n    proxy_temp_path {d}/proxy_temp;\n\
         \x20   fastcgi_temp_path {d}/fastcgi_temp;\n    uwsgi_temp_path {d}/uwsgi_temp;\n    scgi_temp_path {d}/scgi_temp;\n\
         \x20   proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    proxy_set_header Host $host;\n\
         \x20   proxy_connect_timeout 1s;\n\
         \x20   server {{\n        listen 127.0.0.1:{port} default_server;\n        server_name _;\n\
         \x20       location = /status {{\n            default_type text/plain;\n            return 200 \"OK\\n\";\n        }}\n\
         \x20       location / {{\n            return 404;\n        }}\n    }}\n\
         \x20   include {d}/routes.conf;\n}}\n"
    )
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A running nginx master; stopped when dropped.
pub struct NginxServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl NginxServer {
    /// Starts nginx with an empty routes file and waits until `/status` answers.
    pub async fn start() -> NginxServer {
        let mut server = NginxServer::prepare();
        server.launch().await;
        server
    }

    /// Writes the main config and an empty routes file without starting nginx.
    pub fn prepare() -> NginxServer {
        let dir = tempfile::tempdir().expect("creating nginx's prefix directory");
        let port = free_port();
        std::fs::write(dir.path().join("nginx.conf"), main_conf(dir.path(), port)).unwrap();
        std::fs::write(dir.path().join("routes.conf"), "").unwrap();
        NginxServer { dir, port, child: None }
    }

    /// Starts nginx and waits until `/status` answers.
    pub async fn launch(&mut self) {
        let child = nginx_logged_in(self.dir.path())
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting nginx");
        self.child = Some(child);
        let port = self.port;
        eventually(Duration::from_secs(10), "nginx to answer /status", || async {
            matches!(get(port, "status.check").await, Some((404, _)) | Some((200, _))).then_some(())
        })
        .await;
    }

    pub fn main_conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    pub fn routes(&self) -> PathBuf {
        self.dir.path().join("routes.conf")
    }

    /// How many times nginx was told to reload (each SIGHUP it logged at `notice`).
    pub fn reloads(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("error.log"))
            .unwrap_or_default()
            .matches("(SIGHUP) received")
            .count()
    }

    /// Waits until every reload has finished: after a SIGHUP the old worker keeps accepting
    /// connections with the old routes for a while (an app added by the reload gets 404s from
    /// it); with one worker process, each reload retires one worker, which the master logs.
    pub async fn wait_reloaded(&self) {
        let log = self.dir.path().join("error.log");
        eventually(Duration::from_secs(10), "nginx's old workers to exit", || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.matches("exited with code").count() >= self.reloads()).then_some(())
        })
        .await;
    }

    /// The routes file as installed now.
    pub fn routes_text(&self) -> String {
        std::fs::read_to_string(self.routes()).unwrap_or_default()
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A fast shutdown by the master also stops its workers; SIGKILL would orphan them.
            let _ = nginx_in(self.dir.path()).args(["-s", "stop"]).stderr(Stdio::null()).status();
            for _ in 0..50 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
