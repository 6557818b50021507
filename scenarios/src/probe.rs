//! Bounded app traffic through the external load balancer: a fixed request rate (capped at
//! [`MAX_RATE`]) spread round-robin over the apps' virtual hosts, one connection per request,
//! every request recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The most requests per second a probe sends, whatever it is asked.
pub const MAX_RATE: u32 = 500;
/// Requests in flight at most; beyond that the probe waits (and sends less).
const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// `127.0.0.1:8080`.
    pub entry: String,
    /// `Host` headers to cycle through.
    pub vhosts: Vec<String>,
    /// Requests per second, over all vhosts.
    pub rate: u32,
    /// A request not answered within this counts as failed.
    pub timeout: Duration,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the session started, when the request was sent.
    pub t_ms: u64,
    /// Index into the vhosts.
    pub app: usize,
    /// HTTP status; 0 when nothing answered in time.
    pub status: u16,
    pub latency_ms: f64,
    /// The answer's first line when short (the `www` app answers `www <task id> <host:port>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

impl Sample {
    pub fn ok(&self) -> bool {
        (200..400).contains(&self.status)
    }
}

/// A running probe; [`Probe::stop`] returns every sample.
pub struct Probe {
    samples: Arc<Mutex<Vec<Sample>>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Starts sending; times are measured from `t0`.
    pub fn start(config: ProbeConfig, t0: Instant) -> Probe {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(config, t0, samples.clone(), cancel.clone()));
        Probe { samples, cancel, task }
    }

    /// The samples so far.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Stops sending, waits for requests in flight, returns every sample sorted by time.
    pub async fn stop(self) -> Vec<Sample> {
        self.cancel.cancel();
        let _ = self.task.await;
        let mut samples = std::mem::take(&mut *self.samples.lock().unwrap());
        samples.sort_by_key(|s| s.t_ms);
        samples
    }
}

async fn run(config: ProbeConfig, t0: Instant, samples: Arc<Mutex<Vec<Sample>>>, cancel: CancellationToken) {
    if config.vhosts.is_empty() || config.rate == 0 {
        return;
    }
    let rate = config.rate.min(MAX_RATE);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let config = Arc::new(config);
    let mut requests = tokio::task::JoinSet::new();
    let mut next = 0usize;
    loop {
        // Cancel-safe: `tick` and `cancelled` lose nothing when the other arm wins.
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let app = next % config.vhosts.len();
        next += 1;
        let config = config.clone();
        let samples = samples.clone();
        requests.spawn(async move {
            let sent = Instant::now();
            let t_ms = sent.duration_since(t0).as_millis() as u64;
            let answer = tokio::time::timeout(config.timeout, get(&config.entry, &config.vhosts[app])).await;
            let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
            let (status, answer) = match answer {
                Ok(Some((status, body))) => (status, first_line(&body)),
                _ => (0, None),
            };
            samples.lock().unwrap().push(Sample {
                t_ms,
                app,
                status,
                latency_ms,
                answer,
            });
            drop(permit);
        });
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
}

fn first_line(body: &str) -> Option<String> {
    let line = body.lines().next()?.trim();
    (!line.is_empty() && line.len() <= 160).then(|| line.to_string())
}

/// `GET /` with a `Host` header, over a fresh connection: status and body.
async fn get(entry: &str, vhost: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(entry).await.ok()?;
    let request = format!("GET / HTTP/1.0\r\nHost: {vhost}\r\nUser-Agent: paas-chaos-probe\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server answering `ok <n>` with 200, except every third request with 503.
    async fn server() -> (String, Arc<std::sync::atomic::AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                    let host = request.lines().find_map(|l| l.strip_prefix("Host: ")).unwrap_or("?").to_string();
                    let status = if n.is_multiple_of(3) { "503 Service Unavailable" } else { "200 OK" };
                    let body = format!("ok {host}\n");
                    let answer = format!("HTTP/1.0 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (address, served)
    }

    #[tokio::test]
    async fn every_request_is_recorded_with_its_status_and_answer_at_the_asked_rate() {
        let (entry, served) = server().await;
        let probe = Probe::start(
            ProbeConfig {
                entry,
                vhosts: vec!["www.test".into(), "api.test".into()],
                rate: 100,
                timeout: Duration::from_secs(2),
            },
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let samples = probe.stop().await;
        assert_eq!(samples.len() as u64, served.load(std::sync::atomic::Ordering::SeqCst));
        assert!(
            (80..=110).contains(&samples.len()),
            "about 100 requests in a second, got {}",
            samples.len()
        );
        let failed = samples.iter().filter(|s| !s.ok()).count();
        assert!(
            failed >= samples.len() / 3 - 1 && failed <= samples.len() / 3 + 1,
            "{failed} of {}",
            samples.len()
        );
        assert!(
            samples
                .iter()
                .all(|s| s.answer.as_deref() == Some(if s.app == 0 { "ok www.test" } else { "ok api.test" }))
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_failed_request_not_a_lost_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let entry = listener.local_addr().unwrap().to_string();
        drop(listener);
        let probe = Probe::start(
            ProbeConfig {
                entry,
                vhosts: vec!["www.test".into()],
                rate: 50,
                timeout: Duration::from_millis(500),
            },
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let samples = probe.stop().await;
        assert!(!samples.is_empty());
        assert!(samples.iter().all(|s| s.status == 0 && s.answer.is_none()));
    }

    #[tokio::test]
    async fn a_rate_above_the_cap_is_sent_at_the_cap() {
        let (entry, _) = server().await;
        let probe = Probe::start(
            ProbeConfig {
                entry,
                vhosts: vec!["www.test".into()],
                rate: 50_000,
                timeout: Duration::from_secs(2),
            },
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let sent = probe.stop().await.len();
        assert!(sent <= (MAX_RATE as usize * 4 / 10) + 5, "{sent} requests in 0.4 s");
    }
}
