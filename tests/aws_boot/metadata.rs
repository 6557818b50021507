//! An instance-metadata stand-in: the IMDSv2 token flow and an instance role's credentials, as
//! EC2 serves them at 169.254.169.254.
//!
//! It listens on the host's address on the metadata network (the network's gateway is
//! 169.254.169.254, see [`super::instance::MetadataNetwork`]), so a container attached to that
//! network reaches it where an instance reaches EC2's. Like EC2 with `HttpTokens=required`, it
//! answers 401 to any metadata request without a token it issued.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};

use super::s3::RoleCredentials;

/// The instance role's name, as the instance profile carries it.
pub const ROLE: &str = "paas-boot-test-node";

/// What the stand-in saw.
#[derive(Debug)]
pub struct Seen {
    /// The role's session it serves.
    role: RoleCredentials,
    tokens: BTreeSet<String>,
    /// Metadata requests refused for want of a valid token.
    pub refused: usize,
    /// Credentials served.
    pub credentials: usize,
}

type Shared = Arc<Mutex<Seen>>;

/// The running stand-in; stops when dropped.
pub struct MetadataService {
    seen: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl MetadataService {
    /// Serves `role`'s session on `address` (port 80 of the metadata network's gateway).
    /// Panics when it cannot bind.
    pub async fn start(address: SocketAddr, role: RoleCredentials) -> MetadataService {
        let seen: Shared = Arc::new(Mutex::new(Seen {
            role,
            tokens: BTreeSet::new(),
            refused: 0,
            credentials: 0,
        }));
        let app = Router::new()
            .route("/latest/api/token", put(token))
            .route("/latest/meta-data/iam/security-credentials/", get(roles))
            .route("/latest/meta-data/iam/security-credentials/{role}", get(credentials))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("binding the instance-metadata stand-in to {address}: {e}"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MetadataService { seen, server }
    }

    /// Credentials served so far, and requests refused for want of a token.
    pub fn counts(&self) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        (seen.credentials, seen.refused)
    }
}

impl Drop for MetadataService {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn token(State(seen): State<Shared>, headers: HeaderMap) -> Result<String, StatusCode> {
    // EC2 refuses a token request without a TTL.
    let ttl = headers
        .get("x-aws-ec2-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if !ttl.is_some_and(|t| (1..=21600).contains(&t)) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let token = format!("token-{}", next_token());
    seen.lock().unwrap().tokens.insert(token.clone());
    Ok(token)
}

/// Whether the request carries a token this stand-in issued; counts refusals.
fn authorized(seen: &Shared, headers: &HeaderMap) -> Result<(), StatusCode> {
    let mut seen = seen.lock().unwrap();
    let token = headers.get("x-aws-ec2-metadata-token").and_then(|v| v.to_str().ok());
    if token.is_some_and(|t| seen.tokens.contains(t)) {
        Ok(())
    } else {
        seen.refused += 1;
        Err(StatusCode::UNAUTHORIZED)
    }
}

async fn roles(State(seen): State<Shared>, headers: HeaderMap) -> Result<String, StatusCode> {
    authorized(&seen, &headers)?;
    Ok(ROLE.to_owned())
}

async fn credentials(State(seen): State<Shared>, Path(role): Path<String>, headers: HeaderMap) -> Result<String, StatusCode> {
    authorized(&seen, &headers)?;
    if role != ROLE {
        return Err(StatusCode::NOT_FOUND);
    }
    let mut seen = seen.lock().unwrap();
    seen.credentials += 1;
    // The shape EC2 serves.
    Ok(serde_json::json!({
        "Code": "Success",
        "LastUpdated": "2026-01-01T00:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": seen.role.access_key_id,
        "SecretAccessKey": seen.role.secret_access_key,
        "Token": seen.role.session_token,
        "Expiration": "2099-01-01T00:00:00Z",
    })
    .to_string())
}

/// A token that differs per request.
fn next_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
