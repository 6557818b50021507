//! A moto server on 127.0.0.1 for one test, killed on drop.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paas_aws::{AwsBackend, Clients, Connection, Waits};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits (at most 30 s) until it answers.
    pub fn start() -> Moto {
        // The SDK must never look for credentials or a region anywhere else.
        // SAFETY: set before any client exists, the same values in every test.
        unsafe {
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto_server ({e}): install it with pip install 'moto[server]'"));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on 127.0.0.1:{port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub async fn clients(&self) -> Clients {
        Clients::connect(&Connection::Static {
            region: "eu-west-1".into(),
            endpoint_url: self.endpoint.clone(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        })
        .await
        .unwrap()
    }

    /// A backend with short waits: moto does everything at once.
    pub async fn backend(&self, key_dir: &std::path::Path) -> AwsBackend {
        AwsBackend::new(
            self.clients().await,
            key_dir.to_path_buf(),
            Waits {
                timeout: Duration::from_secs(20),
                interval: Duration::from_millis(50),
            },
        )
    }
}

/// A stand-in `paas-node`: a Linux x86_64 ELF header followed by `content`, written to a file
/// that lives as long as the test process.
pub fn node_binary(content: &[u8]) -> paas_core::resource::NodeBinary {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // 64-bit
    bytes[5] = 1; // little-endian
    bytes[6] = 1;
    bytes[16] = 3; // position-independent executable
    bytes[18] = 62; // x86_64
    bytes.extend_from_slice(content);
    let dir = std::env::temp_dir().join(format!("paas-aws-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "paas-node-{:x}",
        content.iter().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)))
    ));
    std::fs::write(&path, &bytes).unwrap();
    paas_aws::node_binary::inspect(&path).unwrap()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
