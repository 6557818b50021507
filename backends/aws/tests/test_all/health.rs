//! The health probes through an admin entry: a local HTTP server on 127.0.0.1 standing in for
//! the adminlb and the ELB answers as the cluster's virtual hosts would, by Host header.

use std::sync::{Arc, Mutex};

use paas_aws::admin::{AdminEntry, Vhost};
use paas_aws::health;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the answers of a healthy cluster of `domain` to requests for its vhosts only, and
/// records every request's Host, method and path.
async fn entry_for(domain: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let line = text.lines().next().unwrap_or_default().to_string();
                // Header names are case-insensitive (HTTP/1.1 clients often send them lowercase).
                let host = text
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("host")))
                    .map(|(_, value)| value.trim().to_string())
                    .unwrap_or_default();
                let mut words = line.split_whitespace();
                let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
                log.lock().unwrap().push(format!("{host} {method} {path}"));
                let (status, body) = match (host.strip_suffix(domain), path) {
                    (Some("mesos.admin."), "/master/state") => (
                        200,
                        r#"{"pid":"master@10.20.128.10:5050","leader":"master@10.20.128.10:5050","activated_slaves":2}"#,
                    ),
                    (Some("marathon.admin."), "/v2/leader") => (200, r#"{"leader":"10.20.128.10:8080"}"#),
                    (Some("marathon.admin."), "/v2/apps") => (
                        200,
                        r#"{"apps":[{"id":"/www","instances":2,"tasksRunning":2,"tasksHealthy":2,"healthChecks":[{"protocol":"HTTP"}]}]}"#,
                    ),
                    (Some("www."), "/") => (200, "hello"),
                    _ => (404, "no such virtual host or path"),
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (address, seen)
}

#[tokio::test]
async fn a_healthy_cluster_is_seen_as_healthy_through_its_virtual_hosts() {
    let (address, seen) = entry_for("demo.example.com").await;
    let entry = AdminEntry {
        admin: address.clone(),
        elb: address,
        domain: "demo.example.com".into(),
    };
    let lbs = vec![("lb-1".to_string(), true), ("lb-2".to_string(), true)];
    let h = health::probe(&entry, 2, &["/www".to_string()], lbs).await;
    assert!(h.is_healthy(), "{:?}", h.waiting_for());
    assert_eq!(h.mesos_leader.as_deref(), Some("master@10.20.128.10:5050"));
    assert_eq!(h.marathon_leader.as_deref(), Some("10.20.128.10:8080"));
    assert_eq!(h.www, Some(true));
    let seen = seen.lock().unwrap().clone();
    for request in [
        "mesos.admin.demo.example.com GET /master/state",
        "marathon.admin.demo.example.com GET /v2/leader",
        "www.demo.example.com GET /",
    ] {
        assert!(seen.iter().any(|s| s == request), "{request} not in {seen:?}");
    }

    // More agents than registered, and an lb out of service: named, not healthy.
    let h = health::probe(&entry, 3, &["/www".to_string()], vec![("lb-1".to_string(), false)]).await;
    assert!(!h.is_healthy());
    assert_eq!(
        h.waiting_for(),
        ["Mesos agents (2 of 3 registered)", "lbs in service behind the elb (lb-1)"]
    );
}

#[tokio::test]
async fn another_domain_gets_no_answer_from_the_clusters_virtual_hosts() {
    let (address, _) = entry_for("demo.example.com").await;
    let entry = AdminEntry {
        admin: address.clone(),
        elb: address,
        domain: "other.example.com".into(),
    };
    assert_eq!(entry.get(Vhost::Marathon, "/v2/leader").await.map(|(s, _)| s), Some(404));
    let h = health::probe(&entry, 1, &["/www".to_string()], vec![("lb-1".to_string(), true)]).await;
    assert!(h.mesos_leader.is_none() && h.marathon_leader.is_none() && h.www == Some(false));
    // Nothing listens: no answer within the probe's bound.
    let closed = AdminEntry {
        admin: "127.0.0.1:1".into(),
        elb: "127.0.0.1:1".into(),
        domain: "demo.example.com".into(),
    };
    assert_eq!(closed.get(Vhost::Mesos, "/master/state").await, None);
}
