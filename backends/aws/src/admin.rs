//! The cluster as a user outside AWS reaches it: the adminlb's public address (open to the
//! admin CIDRs only) serving `mesos.admin.<domain>` and `marathon.admin.<domain>` by Host
//! header, and the ELB serving the apps as `<app>.<domain>`. Plain HTTP/1.0 with short
//! timeouts: a probe that gets no answer in time counts as no answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the admin entry and the ELB answer, and the cluster's domain for Host headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEntry {
    /// `host:port` of the adminlb (its public address, port 80).
    pub admin: String,
    /// `host:port` of the ELB (its DNS name, port 80).
    pub elb: String,
    pub domain: String,
}

/// A virtual host of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vhost {
    /// `mesos.admin.<domain>` on the adminlb: the leading Mesos master.
    Mesos,
    /// `marathon.admin.<domain>` on the adminlb: the leading Marathon.
    Marathon,
    /// `www.<domain>` through the ELB.
    Www,
}

impl AdminEntry {
    /// The address and Host header of `vhost`.
    fn target(&self, vhost: Vhost) -> (&str, String) {
        match vhost {
            Vhost::Mesos => (&self.admin, format!("mesos.admin.{}", self.domain)),
            Vhost::Marathon => (&self.admin, format!("marathon.admin.{}", self.domain)),
            Vhost::Www => (&self.elb, format!("www.{}", self.domain)),
        }
    }

    /// GET `path` of `vhost`: status and body, `None` when nothing answers in time.
    pub async fn get(&self, vhost: Vhost, path: &str) -> Option<(u16, String)> {
        let (address, host) = self.target(vhost);
        request(address, &host, "GET", path, None).await
    }

    /// POST `json` to `path` of `vhost`: status and body, `None` when nothing answers in time.
    pub async fn post(&self, vhost: Vhost, path: &str, json: &str) -> Option<(u16, String)> {
        let (address, host) = self.target(vhost);
        request(address, &host, "POST", path, Some(json)).await
    }
}

impl AdminEntry {
    /// Deploys a Marathon app definition (JSON) through `marathon.admin` unless Marathon has an
    /// app of its id: `"deployed"` or `"present"`. Fails with a message when the definition
    /// has no id or Marathon refuses it or does not answer.
    pub async fn deploy_if_missing(&self, definition: &str) -> Result<&'static str, String> {
        let id = serde_json::from_str::<serde_json::Value>(definition)
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_string))
            .ok_or("the definition has no id")?;
        let path = format!("/v2/apps/{}", id.trim_start_matches('/'));
        match self.get(Vhost::Marathon, &path).await {
            Some((200, _)) => Ok("present"),
            Some((404, _)) => match self.post(Vhost::Marathon, "/v2/apps", definition).await {
                Some((200 | 201, _)) => Ok("deployed"),
                Some((status, body)) => Err(format!("Marathon answered {status}: {body}")),
                None => Err("no answer from marathon.admin".into()),
            },
            Some((status, body)) => Err(format!("Marathon answered {status}: {body}")),
            None => Err("no answer from marathon.admin".into()),
        }
    }
}

/// One HTTP/1.0 request to `address` for virtual host `host`.
async fn request(address: &str, host: &str, method: &str, path: &str, json: Option<&str>) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let body = json.unwrap_or_default();
        let content = match json {
            Some(_) => format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()),
            None => String::new(),
        };
        let request = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n{content}\r\n{body}");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        Some(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.ok()??;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}
