//! The one HTTP client for the cluster's own endpoints — Marathon, the Mesos masters, the lbs,
//! the elb — used by the CLI (`paas app`) and by the health checks: HTTP/1.1 without a proxy, a
//! `Host` header of the caller's choosing (the admin entry and the lbs route by it), JSON bodies,
//! a connect timeout and a timeout for the whole answer.
//!
//! Every request opens a connection of its own: these endpoints die and come back (that is what
//! chaos rehearses), and a pooled connection to a node that was killed would cost a timeout.
//! The chaos probe keeps its own client (`paas_scenarios::probe`), which must also count what it
//! could not send.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HOST};

/// One answer: its status and its body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// A request that got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{method:?} is not an HTTP method")]
    Method { method: String },
    #[error("connecting to {address}")]
    Connect {
        address: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{address} did not answer {method} {path} within {timeout:?}")]
    Timeout {
        address: String,
        method: String,
        path: String,
        timeout: Duration,
    },
    #[error("{method} {path} to {address}")]
    Exchange {
        address: String,
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
}

/// A client with its timeouts; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose requests must connect within `connect` and be answered in full within
    /// `timeout`.
    pub fn new(connect: Duration, timeout: Duration) -> HttpClient {
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            // Only TLS settings can make building fail, and this client sets none.
            .expect("building a plain HTTP client");
        HttpClient { client, timeout }
    }

    /// Sends `method path` to `address` (`ip:port`) with `Host: host` (the address when
    /// `None`) and, when given, a JSON body. Any answer is `Ok`, whatever its status; no answer
    /// in time, or no connection, is the error.
    pub async fn request(
        &self,
        address: &str,
        host: Option<&str>,
        method: &str,
        path: &str,
        json: Option<&str>,
    ) -> Result<Answer, HttpError> {
        let verb = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| HttpError::Method { method: method.to_owned() })?;
        let mut request = self
            .client
            .request(verb, format!("http://{address}{path}"))
            .header(ACCEPT, "application/json");
        if let Some(host) = host {
            request = request.header(HOST, host);
        }
        if let Some(json) = json {
            request = request.header(CONTENT_TYPE, "application/json").body(json.to_owned());
        }
        let failed = |source: reqwest::Error| {
            if source.is_timeout() {
                HttpError::Timeout {
                    address: address.to_owned(),
                    method: method.to_owned(),
                    path: path.to_owned(),
                    timeout: self.timeout,
                }
            } else if source.is_connect() {
                HttpError::Connect {
                    address: address.to_owned(),
                    source,
                }
            } else {
                HttpError::Exchange {
                    address: address.to_owned(),
                    method: method.to_owned(),
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(failed)?;
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server that answers one request with `answer` and hands back what it received.
    async fn serve_once(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            loop {
                let n = stream.read(&mut buffer).await.unwrap();
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break;
                    }
                }
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&received).to_string()
        });
        (address, served)
    }

    #[tokio::test]
    async fn sends_the_host_and_json_body_it_is_given_and_returns_any_status() {
        let (address, served) =
            serve_once("HTTP/1.1 409 Conflict\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"message\":\"locked\"}").await;
        let client = HttpClient::new(Duration::from_secs(2), Duration::from_secs(5));
        let answer = client
            .request(
                &address,
                Some("marathon.admin.paas.localhost:8081"),
                "PUT",
                "/v2/apps/www",
                Some("{\"instances\":3}"),
            )
            .await
            .unwrap();
        assert_eq!(
            answer,
            Answer {
                status: 409,
                body: "{\"message\":\"locked\"}".into()
            }
        );
        let request = served.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("put /v2/apps/www http/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nhost: marathon.admin.paas.localhost:8081\r\n"), "{request}");
        assert!(request.contains("\r\ncontent-type: application/json\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"instances\":3}"), "{request}");
    }

    #[tokio::test]
    async fn no_listener_and_no_answer_are_errors_naming_the_address() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let client = HttpClient::new(Duration::from_secs(2), Duration::from_millis(300));
        let refused = client.request(&closed, None, "GET", "/status", None).await.unwrap_err();
        assert!(
            matches!(&refused, HttpError::Connect { address, .. } if *address == closed),
            "{refused:?}"
        );

        // Accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let timed_out = client.request(&address, None, "GET", "/status", None).await.unwrap_err();
        assert_eq!(timed_out.to_string(), format!("{address} did not answer GET /status within 300ms"));
        assert!(matches!(
            client.request(&address, None, "NOT A METHOD", "/", None).await,
            Err(HttpError::Method { .. })
        ));
    }
}
