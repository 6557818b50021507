//! The parts of the harness the test binaries of paas-node, lb-sync and paas-docker all need:
//! free ports and bounded waits. The other two include this file by path, so there is one copy.

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0 to pick a free port")
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; panics with `what`
/// when time runs out.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_every(Duration::from_millis(100), timeout, what, check).await
}

/// [`eventually`], polling every `interval`.
pub async fn eventually_every<T, F, Fut>(interval: Duration, timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    within_every(interval, timeout, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `check` every `interval` until it returns `Some`, for at most `timeout`; `None` when
/// time runs out.
pub async fn within_every<T, F, Fut>(interval: Duration, timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
    }
}
