//! End to end: `paas sim up` on the default cluster, apps served through the elb on
//! 127.0.0.1, app and cluster scaling, the Marathon leader's machine lost, `paas sim down`.
//!
//! Needs Docker and the sim base image (`paas sim images`); the `paas-node` binary must be
//! built (`cargo build -p paas-node`). Takes a few minutes.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The cluster of this test: the default spec under a name, network and ports of its own.
struct Cluster {
    dir: tempfile::TempDir,
    name: String,
    http_port: u16,
    admin_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn paas_node_binary() -> PathBuf {
    let paas = PathBuf::from(env!("CARGO_BIN_EXE_paas"));
    let node = paas.with_file_name("paas-node");
    assert!(
        node.is_file(),
        "{} is missing: run `cargo build -p paas-node` first",
        node.display()
    );
    node
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("e2e{}", std::process::id() % 100_000);
        let (http_port, admin_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("paas.toml"),
            format!("name = \"{name}\"\nvpc_cidr = \"10.21.0.0/16\"\n[sim]\nhttp_port = {http_port}\nadmin_port = {admin_port}\n"),
        )
        .unwrap();
        Cluster {
            dir,
            name,
            http_port,
            admin_port,
        }
    }

    /// Runs `paas <args>` in the cluster's folder; panics with its output when it fails.
    fn paas(&self, args: &[&str]) -> String {
        let output = self.paas_output(args);
        assert!(
            output.status.success(),
            "paas {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn paas_output(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_paas"))
            .args(args)
            .current_dir(self.dir.path())
            .env("PAAS_NODE_BINARY", paas_node_binary())
            .output()
            .expect("running paas")
    }

    /// `GET /` of `host` through the elb: status and body.
    fn get(&self, host: &str) -> Option<(u16, String)> {
        http_get(&format!("127.0.0.1:{}", self.http_port), &format!("{host}.paas.localhost"), "/")
    }

    /// Distinct bodies of `www` seen in `requests` requests (each names its task).
    fn www_backends(&self, requests: usize) -> BTreeSet<String> {
        (0..requests)
            .filter_map(|_| self.get("www"))
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body.trim().to_string())
            .collect()
    }

    fn marathon_leader(&self) -> Option<String> {
        let (status, body) = http_get(
            &format!("127.0.0.1:{}", self.admin_port),
            "marathon.admin.paas.localhost",
            "/v2/leader",
        )?;
        let value: serde_json::Value = (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()?;
        value["leader"].as_str().map(str::to_string)
    }

    fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=paas.cluster={}", self.name),
                "--format",
                "{{.Names}}",
            ])
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }

    fn networks(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "network",
                "ls",
                "--filter",
                &format!("label=paas.cluster={}", self.name),
                "--format",
                "{{.Name}}",
            ])
            .output()
            .expect("docker network ls");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.paas_output(&["sim", "down"]);
    }
}

fn http_get(address: &str, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status_json(cluster: &Cluster) -> serde_json::Value {
    serde_json::from_str(&cluster.paas(&["sim", "status", "--output", "json"])).expect("status JSON")
}

#[test]
fn the_default_cluster_serves_scales_survives_its_marathon_leader_and_goes_away() {
    let cluster = Cluster::new();
    let up = cluster.paas(&["sim", "up", "--output", "json"]);
    let up: serde_json::Value = serde_json::from_str(&up).expect("up JSON");
    assert_eq!(up["changed"], true);

    // www answers through the elb, from several tasks.
    let backends = eventually(Duration::from_secs(60), "www from 3 tasks", || {
        Some(cluster.www_backends(30)).filter(|b| b.len() == 3)
    });
    assert!(backends.iter().all(|b| b.starts_with("www ")), "{backends:?}");

    // Re-running up changes nothing.
    let again: serde_json::Value = serde_json::from_str(&cluster.paas(&["sim", "up", "--output", "json"])).unwrap();
    assert_eq!(again["changed"], false, "{again}");

    // Scaling the app: 5 backends behind the lbs.
    cluster.paas(&["app", "scale", "www", "5"]);
    eventually(Duration::from_secs(90), "www from 5 tasks", || {
        Some(cluster.www_backends(50)).filter(|b| b.len() == 5)
    });

    // Scaling the cluster: 5 → 7 → 5 agents, all registered, www served throughout.
    cluster.paas(&["sim", "scale", "slaves", "7"]);
    assert_eq!(status_json(&cluster)["status"]["health"]["agents_registered"], 7);
    assert!(cluster.get("www").is_some_and(|(s, _)| s == 200));
    cluster.paas(&["sim", "scale", "slaves", "5"]);
    // The master forgets removed agents after its ping timeout (Mesos' default 15 s x 5).
    eventually(Duration::from_secs(150), "5 agents registered", || {
        (status_json(&cluster)["status"]["health"]["agents_registered"] == 5).then_some(())
    });
    eventually(Duration::from_secs(120), "www back at 5 tasks after losing 2 agents", || {
        Some(cluster.www_backends(50)).filter(|b| b.len() == 5)
    });

    // Losing the Marathon leader's machine: apps stay served, a new leader manages them.
    let leader = eventually(Duration::from_secs(30), "a Marathon leader", || cluster.marathon_leader());
    let address = leader.split(':').next().unwrap().to_string();
    let status = status_json(&cluster);
    let node = status["status"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == address.as_str())
        .unwrap_or_else(|| panic!("no node at the leader's address {address}: {status}"))["name"]
        .as_str()
        .unwrap()
        .to_string();
    let killed = Command::new("docker")
        .args(["kill", &format!("{}-{node}", cluster.name)])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..10 {
        assert!(
            cluster.get("www").is_some_and(|(s, _)| s == 200),
            "www failed right after the Marathon leader was lost"
        );
    }
    let new_leader = eventually(Duration::from_secs(60), "a new Marathon leader", || {
        cluster.marathon_leader().filter(|l| *l != leader)
    });
    assert_ne!(new_leader, leader);
    cluster.paas(&["app", "scale", "www", "3"]);
    eventually(Duration::from_secs(90), "www at 3 tasks under the new leader", || {
        Some(cluster.www_backends(30)).filter(|b| b.len() == 3)
    });

    // Down removes everything of the cluster, and is safe to re-run.
    cluster.paas(&["sim", "down"]);
    assert_eq!(cluster.containers(), Vec::<String>::new());
    assert_eq!(cluster.networks(), Vec::<String>::new());
    cluster.paas(&["sim", "down"]);
}
