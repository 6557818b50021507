//! The cluster as a user outside AWS reaches it: the adminlb's public address (open to the
//! admin CIDRs only) serving `mesos.admin.<domain>` and `marathon.admin.<domain>` by Host
//! header, and the ELB serving the apps as `<app>.<domain>`, through the project's one HTTP
//! client ([`paas_core::http`]) with short timeouts: a probe that gets no answer in time counts
//! as no answer.

use std::time::Duration;

use paas_core::http::HttpClient;

/// How long one request may take to connect, and to be answered in full.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
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

/// One request to `address` for virtual host `host`.
async fn request(address: &str, host: &str, method: &str, path: &str, json: Option<&str>) -> Option<(u16, String)> {
    let client = HttpClient::new(CONNECT_TIMEOUT, REQUEST_TIMEOUT);
    let answer = client.request(address, Some(host), method, path, json).await.ok()?;
    Some((answer.status, answer.body))
}
