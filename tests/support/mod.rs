//! What the end-to-end tests share: a sim cluster of the test's own (name, network, ports)
//! driven through the `paas` binary, and plain HTTP through its elb.

#![allow(dead_code)]

pub mod moto;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The cluster of this test: the default spec under a name, network and ports of its own.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub http_port: u16,
    pub admin_port: u16,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `10.X.0.0/16`, X in `first..first + count` (starting at an offset of this process's
/// id), that no Docker network overlaps. Docker can keep a network of a cluster that is gone
/// (a stale endpoint makes it "have active endpoints" with no container on it), and a run
/// must not collide with such a leftover.
pub fn free_vpc_cidr(first: u32, count: u32) -> String {
    // A network that another test's cluster removes between the listing and the inspection
    // is no longer in the way: Docker says it is "not found" and reports the others.
    let docker = |args: &[&str]| {
        let out = std::process::Command::new("docker").args(args).output().expect("running docker");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.lines().all(|l| l.contains("not found")),
            "docker {args:?}: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ids = docker(&["network", "ls", "-q"]);
    let mut inspect = vec!["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"];
    inspect.extend(ids.split_whitespace());
    let taken = docker(&inspect);
    let start = std::process::id() % count;
    (0..count)
        .map(|i| format!("10.{}.", first + (start + i) % count))
        .find(|prefix| !taken.split_whitespace().any(|subnet| subnet.starts_with(prefix.as_str())))
        .map(|prefix| format!("{prefix}0.0/16"))
        .unwrap_or_else(|| panic!("every 10.{first}-{}.0.0/16 overlaps a Docker network: {taken}", first + count - 1))
}

pub fn paas_node_binary() -> PathBuf {
    let paas = PathBuf::from(env!("CARGO_BIN_EXE_paas"));
    let node = paas.with_file_name("paas-node");
    assert!(
        node.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        node.display()
    );
    node
}

impl Cluster {
    /// A cluster named `<prefix><pid>` on `vpc_cidr`; `extra` is appended to its paas.toml.
    pub fn new(prefix: &str, vpc_cidr: &str, extra: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{prefix}{}", std::process::id() % 100_000);
        let (http_port, admin_port) = (free_port(), free_port());
        let (marathon_port, mesos_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("paas.toml"),
            format!(
                "name = \"{name}\"\nvpc_cidr = \"{vpc_cidr}\"\n{extra}\n[sim]\nhttp_port = {http_port}\nadmin_port = {admin_port}\nmarathon_port = {marathon_port}\nmesos_port = {mesos_port}\n"
            ),
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
    pub fn paas(&self, args: &[&str]) -> String {
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

    /// Starts `paas <args>` in the cluster's folder without waiting for it.
    pub fn paas_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_paas"))
            .args(args)
            .current_dir(self.dir.path())
            .env("PAAS_NODE_BINARY", paas_node_binary())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting paas")
    }

    pub fn paas_output(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_paas"))
            .args(args)
            .current_dir(self.dir.path())
            .env("PAAS_NODE_BINARY", paas_node_binary())
            .output()
            .expect("running paas")
    }

    /// `GET /` of `host` through the elb: status and body.
    pub fn get(&self, host: &str) -> Option<(u16, String)> {
        http_get(&format!("127.0.0.1:{}", self.http_port), &format!("{host}.paas.localhost"), "/")
    }

    /// Distinct bodies of `www` seen in `requests` requests (each names its task).
    pub fn www_backends(&self, requests: usize) -> BTreeSet<String> {
        (0..requests)
            .filter_map(|_| self.get("www"))
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body.trim().to_string())
            .collect()
    }

    pub fn marathon_leader(&self) -> Option<String> {
        let (status, body) = http_get(
            &format!("127.0.0.1:{}", self.admin_port),
            "marathon.admin.paas.localhost",
            "/v2/leader",
        )?;
        let value: serde_json::Value = (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()?;
        value["leader"].as_str().map(str::to_string)
    }

    pub fn containers(&self) -> Vec<String> {
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

    pub fn networks(&self) -> Vec<String> {
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

/// A Docker task container of a cluster, as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContainer {
    pub id: String,
    pub name: String,
    /// `running`, `exited`, `paused`...
    pub state: String,
    /// The slave whose agent made it (`slave-2`).
    pub node: String,
    pub task_id: String,
}

impl Cluster {
    /// Every Docker task container of the cluster, running or not (by the label the sim's
    /// agents put on them).
    pub fn task_containers(&self) -> Vec<TaskContainer> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--no-trunc",
                "--filter",
                &format!("label=paas.task.cluster={}", self.name),
                "--format",
                "{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Label \"paas.task.node\"}}\t{{.Label \"mesos.task_id\"}}",
            ])
            .output()
            .expect("docker ps");
        assert!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                Some(TaskContainer {
                    id: f.first()?.to_string(),
                    name: f.get(1)?.to_string(),
                    state: f.get(2)?.to_string(),
                    node: f.get(3)?.to_string(),
                    task_id: f.get(4)?.to_string(),
                })
            })
            .collect()
    }

    /// Distinct bodies of `app` seen in `requests` requests through the elb.
    pub fn backends(&self, app: &str, requests: usize) -> BTreeSet<String> {
        (0..requests)
            .filter_map(|_| self.get(app))
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body.trim().to_string())
            .collect()
    }
}

/// The test app image (`tests/fixtures/app-image/`), built FROM the sim's base image when
/// missing; the base must have been built (`paas sim images`).
pub fn test_app_image() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the image build");
    runtime.block_on(async {
        let docker = paas_docker::connect_docker()
            .await
            .unwrap_or_else(|e| panic!("{e}: these tests need a running Docker engine"));
        paas_docker::local_image::build_test_app(&docker)
            .await
            .unwrap_or_else(|e| panic!("building the test app image: {e:#?}"))
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.paas_output(&["sim", "down"]);
    }
}

pub fn http_get(address: &str, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn status_json(cluster: &Cluster) -> serde_json::Value {
    serde_json::from_str(&cluster.paas(&["sim", "status", "--output", "json"])).expect("status JSON")
}
