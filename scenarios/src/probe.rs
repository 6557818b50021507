//! Bounded app traffic through the external load balancer: a fixed request rate (capped at
//! [`MAX_RATE`]) spread round-robin over the apps' virtual hosts, one connection per request,
//! every request of the schedule recorded — including those the probe could not send on time
//! (too many in flight, or the probe itself starved), which count as failed: availability is
//! measured over the schedule, not over what happened to be sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The most requests per second a probe sends, whatever it is asked.
pub const MAX_RATE: u32 = 500;
/// Requests in flight at most; a request due while this many are in flight is not sent and
/// is recorded as such.
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
    /// The request was due (`t_ms` is when) but never sent: the in-flight cap was reached or
    /// the probe fell more than a timeout behind its schedule. Counted as failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_sent: bool,
}

impl Sample {
    /// Answered 2xx or 3xx.
    pub fn ok(&self) -> bool {
        !self.not_sent && (200..400).contains(&self.status)
    }

    /// A request of the schedule that was never sent.
    pub fn not_sent(t_ms: u64, app: usize) -> Sample {
        Sample {
            t_ms,
            app,
            status: 0,
            latency_ms: 0.0,
            answer: None,
            not_sent: true,
        }
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
    // Every tick of the schedule is seen (a late one at once), so none goes uncounted.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let config = Arc::new(config);
    let mut requests = tokio::task::JoinSet::new();
    let mut next = 0usize;
    loop {
        // Cancel-safe: `tick` and `cancelled` lose nothing when the other arm wins.
        let due = tokio::select! {
            _ = cancel.cancelled() => break,
            due = tick.tick() => due,
        };
        let app = next % config.vhosts.len();
        next += 1;
        // A request that cannot leave on time is recorded, not waited for: waiting would send
        // less than the schedule and hide the overload from the availability figure.
        let late = Instant::now().saturating_duration_since(due) > config.timeout;
        let permit = if late { None } else { slots.clone().try_acquire_owned().ok() };
        let Some(permit) = permit else {
            samples
                .lock()
                .unwrap()
                .push(Sample::not_sent(due.duration_since(t0).as_millis() as u64, app));
            continue;
        };
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
                not_sent: false,
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

    /// A server that accepts every connection and never answers.
    async fn stalling_server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        (address, accepted)
    }

    #[tokio::test]
    async fn requests_that_cannot_be_sent_on_time_are_counted_as_failed() {
        let (entry, accepted) = stalling_server().await;
        let probe = Probe::start(
            ProbeConfig {
                entry,
                vhosts: vec!["www.test".into()],
                rate: MAX_RATE,
                timeout: Duration::from_secs(2),
            },
            Instant::now(),
        );
        // The event that proves the overload: requests of the schedule recorded as not sent.
        let deadline = Instant::now() + Duration::from_secs(30);
        while probe.snapshot().iter().filter(|s| s.not_sent).count() < 50 {
            assert!(
                Instant::now() < deadline,
                "no request was recorded as not sent while the server stalled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Stopping waits for the requests in flight, which time out: none is answered.
        let samples = probe.stop().await;
        let (not_sent, sent): (Vec<&Sample>, Vec<&Sample>) = samples.iter().partition(|s| s.not_sent);
        // Only the in-flight cap's worth reached the server; every other request of the
        // schedule is recorded as not sent rather than silently skipped.
        assert_eq!(sent.len(), MAX_IN_FLIGHT, "sent requests");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), MAX_IN_FLIGHT);
        assert!(not_sent.len() >= 50);
        assert!(samples.iter().all(|s| !s.ok() && s.status == 0 && s.answer.is_none()));
        // Availability is over the schedule: the unsent requests count against it.
        assert_eq!(crate::journal::availability(samples.iter()), Some(0.0));
        assert_eq!(serde_json::to_value(not_sent[0]).unwrap()["not_sent"], true);
        assert!(serde_json::to_value(sent[0]).unwrap().get("not_sent").is_none());
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
