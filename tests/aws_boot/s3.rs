//! The artifact bucket: moto's S3 on the cluster network's gateway, where instance containers
//! reach it (never on 127.0.0.1, which inside a container is the container itself).

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paas_core::render::userdata::NodeArtifact;

/// The region the artifact is signed for.
pub const REGION: &str = "eu-west-1";

/// A `moto_server` for one test, killed on drop; its access log is kept for assertions.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts `moto_server` on `address` at a free port and waits (at most 30 s) until it listens.
    pub fn start(address: Ipv4Addr) -> Moto {
        let port = std::net::TcpListener::bind((address, 0))
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port on {address}: {e}"))
            .port();
        let log = tempfile::NamedTempFile::new().expect("creating moto's log file");
        let child = Command::new("moto_server")
            .args(["-H", &address.to_string(), "-p", &port.to_string()])
            .stdout(log.reopen().expect("opening moto's log"))
            .stderr(log.reopen().expect("opening moto's log"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto_server ({e}): install it with scripts/install-deps"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((address, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {address}:{port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto {
            child,
            endpoint: format!("http://{address}:{port}"),
            log,
        }
    }

    /// Creates `bucket` and puts `binary` in it under its sha256; returns the artifact as the
    /// AWS backend would hand it to the user-data (the endpoint being this emulator).
    pub async fn upload(&self, bucket: &str, binary: &Path) -> NodeArtifact {
        let sha256 = sha256_of(binary).await;
        let key = format!("paas-node/{sha256}");
        curl(&["-X", "PUT", &format!("{}/{bucket}", self.endpoint)]).await;
        curl(&[
            "-X",
            "PUT",
            // Not curl's default form type, which moto's server would parse (and refuse) as a form.
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", binary.display()),
            &format!("{}/{bucket}/{key}", self.endpoint),
        ])
        .await;
        NodeArtifact {
            bucket: bucket.into(),
            key,
            sha256,
            region: REGION.into(),
            endpoint: Some(self.endpoint.clone()),
        }
    }

    /// How many times the object at `key` was read (successfully) so far, from moto's access log.
    pub fn reads_of(&self, key: &str) -> usize {
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("\"GET /") && l.contains(key) && l.contains("\" 200"))
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn curl(args: &[&str]) {
    let output = tokio::process::Command::new("curl")
        .args(["-fsS", "-o", "/dev/null"])
        .args(args)
        .output()
        .await
        .expect("running curl (scripts/install-deps installs it)");
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Lowercase hex sha256 of a file, by coreutils' `sha256sum` (what the node checks with).
pub async fn sha256_of(path: &Path) -> String {
    let output = tokio::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .await
        .expect("running sha256sum");
    assert!(output.status.success(), "sha256sum {} failed", path.display());
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum prints the hash")
        .to_owned()
}
