//! The artifact bucket and the instance role: moto on the cluster network's gateway, where
//! instance containers reach it (never on 127.0.0.1, which inside a container is the container
//! itself).
//!
//! moto checks requests as AWS does once its first [`SET_UP_REQUESTS`] have gone by
//! (`INITIAL_NO_AUTH_ACTION_COUNT`): a request must then be SigV4-signed with a key moto issued,
//! here the instance role's session from `AssumeRole`, and allowed by the role's policy. So a
//! node reads `paas-node` only if its user-data signs the request right, with the role's
//! session token.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paas_core::render::userdata::NodeArtifact;

/// The requests [`Moto::artifact_and_role`] makes before moto starts checking signatures.
const SET_UP_REQUESTS: u32 = 5;
/// moto's account.
const ACCOUNT: &str = "123456789012";

/// The instance role's session, as `AssumeRole` gives it and the metadata service serves it.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

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
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SET_UP_REQUESTS.to_string())
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

    /// Creates `bucket` with `binary` in it under its sha256, and `role` allowed to read that
    /// bucket's objects, then assumes the role: the artifact as the AWS backend hands it to the
    /// user-data (the endpoint being this emulator), and the role's session. These are the
    /// [`SET_UP_REQUESTS`] moto lets by unchecked; it checks every request after them.
    pub async fn artifact_and_role(&self, bucket: &str, binary: &Path, role: &str) -> (NodeArtifact, RoleCredentials) {
        let sha256 = sha256_of(binary).await;
        let key = format!("paas-node/{sha256}");
        let endpoint = &self.endpoint;
        let location = format!("<CreateBucketConfiguration><LocationConstraint>{REGION}</LocationConstraint></CreateBucketConfiguration>");
        // Typed, or moto's server reads the body as a form (and loses it).
        self.call(
            "s3",
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/xml",
                "--data",
                &location,
                &format!("{endpoint}/{bucket}"),
            ],
        )
        .await;
        let body = format!("@{}", binary.display());
        let object = format!("{endpoint}/{bucket}/{key}");
        // Not curl's default form type, which moto's server would parse (and refuse) as a form.
        let octets = "Content-Type: application/octet-stream";
        self.call("s3", &["-X", "PUT", "-H", octets, "--data-binary", &body, &object]).await;
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let read = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        );
        let iam = |action: &str, extra: &[(&str, &str)]| {
            let mut form = vec![("Action", action), ("Version", "2010-05-08"), ("RoleName", role)];
            form.extend_from_slice(extra);
            form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
        };
        let create = iam("CreateRole", &[("AssumeRolePolicyDocument", trust)]);
        self.call("iam", &["-X", "POST", "--data", &create, &format!("{endpoint}/")]).await;
        let policy = iam("PutRolePolicy", &[("PolicyName", "read-artifacts"), ("PolicyDocument", &read)]);
        self.call("iam", &["-X", "POST", "--data", &policy, &format!("{endpoint}/")]).await;
        let arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
        let assume = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=boot-test",
            encode(&arn)
        );
        let answer = self.call("sts", &["-X", "POST", "--data", &assume, &format!("{endpoint}/")]).await;
        let field = |name: &str| {
            let start = answer.find(&format!("<{name}>")).map(|i| i + name.len() + 2);
            let end = answer.find(&format!("</{name}>"));
            match (start, end) {
                (Some(start), Some(end)) => answer[start..end].to_owned(),
                _ => panic!("AssumeRole answered without {name}: {answer}"),
            }
        };
        let credentials = RoleCredentials {
            access_key_id: field("AccessKeyId"),
            secret_access_key: field("SecretAccessKey"),
            session_token: field("SessionToken"),
        };
        let artifact = NodeArtifact {
            bucket: bucket.into(),
            key,
            sha256,
            region: REGION.into(),
            endpoint: Some(self.endpoint.clone()),
        };
        (artifact, credentials)
    }

    /// One set-up request to `service`, signed with a made-up key (moto routes by the
    /// signature's service and does not check it yet); its body.
    async fn call(&self, service: &str, args: &[&str]) -> String {
        let output = tokio::process::Command::new("curl")
            .args(["-fsS", "--user", "AKIABOOTTESTSETUP000:setup"])
            .args(["--aws-sigv4", &format!("aws:amz:{REGION}:{service}")])
            .args(args)
            .output()
            .await
            .expect("running curl (scripts/install-deps installs it)");
        assert!(
            output.status.success(),
            "curl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The status moto answers a `GET` of `artifact` signed with `credentials`.
    pub async fn get_status(&self, artifact: &NodeArtifact, credentials: &RoleCredentials) -> String {
        let config = format!(
            "user = \"{}:{}\"\nheader = \"x-amz-security-token: {}\"\nheader = \"x-amz-content-sha256: UNSIGNED-PAYLOAD\"\n",
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        );
        let mut curl = tokio::process::Command::new("curl")
            .args(["-sS", "-K", "-", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["--aws-sigv4", &format!("aws:amz:{REGION}:s3"), &artifact.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("running curl");
        use tokio::io::AsyncWriteExt;
        let mut stdin = curl.stdin.take().expect("curl's stdin");
        stdin.write_all(config.as_bytes()).await.expect("writing curl's config");
        drop(stdin);
        let output = curl.wait_with_output().await.expect("curl's answer");
        String::from_utf8_lossy(&output.stdout).into_owned()
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

/// Percent-encodes `value` for a form body.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
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
