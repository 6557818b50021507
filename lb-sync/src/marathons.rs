//! The Marathons lb-sync reads from: any of them will do (non-leaders answer for the leader), so
//! requests fail over from one to the next, and the event stream follows whichever answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Url;

use super::wire::AppList;

/// How long a Marathon may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long asking for the leader may take; it is asked while the event stream waits.
const LEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long reading the whole app list may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Marathon could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    #[error("{url:?} is not an http(s) URL")]
    InvalidUrl { url: String },
    #[error("no Marathon URL given")]
    NoUrl,
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("request to {url} failed")]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: Url, status: reqwest::StatusCode },
    #[error("{url} answered an app list that does not decode")]
    Decode {
        url: Url,
        #[source]
        source: serde_json::Error,
    },
}

/// The Marathon instances, with the one the event stream currently follows.
#[derive(Debug)]
pub struct Marathons {
    bases: Vec<Url>,
    http: reqwest::Client,
    current: AtomicUsize,
}

impl Marathons {
    /// Parses the base URLs (`http://m1:8080`, ...).
    ///
    /// Fails when the list is empty or a URL is not http(s).
    pub fn new(urls: &[String]) -> Result<Marathons, MarathonError> {
        let bases = urls
            .iter()
            .map(|raw| {
                let trimmed = raw.trim().trim_end_matches('/');
                Url::parse(&format!("{trimmed}/"))
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| MarathonError::InvalidUrl { url: raw.clone() })
            })
            .collect::<Result<Vec<Url>, MarathonError>>()?;
        if bases.is_empty() {
            return Err(MarathonError::NoUrl);
        }
        // Proxies from the environment are ignored: Marathon is always on the cluster network.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(Duration::from_secs(10))
            .build()
            .map_err(MarathonError::Client)?;
        Ok(Marathons {
            bases,
            http,
            current: AtomicUsize::new(0),
        })
    }

    /// How many Marathons there are (at least one).
    pub fn len(&self) -> usize {
        self.bases.len()
    }

    /// Never true: construction refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }

    /// The base URL of the Marathon at `index` (modulo the list's length).
    pub fn base(&self, index: usize) -> &Url {
        &self.bases[index % self.bases.len()]
    }

    /// The index of the Marathon the event stream follows.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Records which Marathon the event stream follows; reads start there.
    pub fn set_current(&self, index: usize) {
        self.current.store(index % self.bases.len(), Ordering::Relaxed);
    }

    /// Reads every app with its tasks, from the current Marathon first, then each other in turn.
    /// Returns the list and the index of the Marathon that answered.
    ///
    /// Fails with the last error when no Marathon answers with a decodable list.
    pub async fn apps(&self) -> Result<(AppList, usize), MarathonError> {
        let start = self.current();
        let mut last = None;
        for step in 0..self.bases.len() {
            let index = (start + step) % self.bases.len();
            match self.apps_from(index).await {
                Ok(list) => return Ok((list, index)),
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "reading the apps failed");
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or(MarathonError::NoUrl))
    }

    async fn apps_from(&self, index: usize) -> Result<AppList, MarathonError> {
        let mut url = self.base(index).join("v2/apps").expect("a relative path joins any base");
        url.set_query(Some("embed=apps.tasks"));
        let request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT);
        let response = send_ok(request, &url).await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| MarathonError::Request { url: url.clone(), source })?;
        serde_json::from_slice(&body).map_err(|source| MarathonError::Decode { url, source })
    }

    /// Asks the Marathon at `index` who leads (`GET /v2/leader`) and returns the leader's index
    /// when it is one of ours. `None` when it does not answer or names an address not in the list
    /// (e.g. a host name where lb-sync was given an IP).
    pub async fn leader(&self, index: usize) -> Option<usize> {
        #[derive(serde::Deserialize)]
        struct Leader {
            leader: String,
        }
        let url = self.base(index).join("v2/leader").expect("a relative path joins any base");
        let response = self.http.get(url).timeout(LEADER_TIMEOUT).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let leader: Leader = response.json().await.ok()?;
        let (host, port) = leader.leader.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        self.bases
            .iter()
            .position(|base| base.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host)) && base.port_or_known_default() == Some(port))
    }

    /// Opens `/v2/events` on the Marathon at `index`; the answer's body is the event stream.
    ///
    /// Fails when the Marathon cannot be reached or does not answer 2xx.
    pub async fn events(&self, index: usize) -> Result<reqwest::Response, MarathonError> {
        let url = self.base(index).join("v2/events").expect("a relative path joins any base");
        let request = self.http.get(url.clone()).header(reqwest::header::ACCEPT, "text/event-stream");
        send_ok(request, &url).await
    }
}

/// Sends `request` (to `url`); its answer when that is 2xx, else what went wrong, naming `url`.
async fn send_ok(request: reqwest::RequestBuilder, url: &Url) -> Result<reqwest::Response, MarathonError> {
    let response = request
        .send()
        .await
        .map_err(|source| MarathonError::Request { url: url.clone(), source })?;
    if !response.status().is_success() {
        return Err(MarathonError::Status {
            url: url.clone(),
            status: response.status(),
        });
    }
    Ok(response)
}

/// Exponential backoff between failed attempts, from `min` doubling up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, next: min }
    }

    /// The delay before the next attempt; each call doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to `min`, after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// An error with its sources, `a: b: c`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalised() {
        let marathons = Marathons::new(&["http://m1:8080".into(), "http://m2:8080/".into()]).unwrap();
        assert_eq!(marathons.base(1).join("v2/events").unwrap().as_str(), "http://m2:8080/v2/events");
        assert!(matches!(Marathons::new(&["m1:8080".into()]), Err(MarathonError::InvalidUrl { .. })));
        assert!(matches!(Marathons::new(&[]), Err(MarathonError::NoUrl)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
