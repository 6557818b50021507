//! A client of the v1 scheduler HTTP API (`docs/scheduler-http-api.md`), for frameworks such as
//! the sim's Marathon: SUBSCRIBE (following 307s to the leader), the RecordIO event stream, and
//! the calls, each sent with the stream's `Mesos-Stream-Id`.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt as _};

use super::recordio::{self, RecordIoError};
use super::v1::{self, Call, CallType, Event, EventType, FrameworkInfo, MasterInfo};

/// How many redirects SUBSCRIBE follows before giving up.
const MAX_REDIRECTS: usize = 3;

/// Why a scheduler call failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("sending {call} to {url}")]
    Transport {
        call: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{call} to {url} answered {status}: {message}")]
    Refused {
        call: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("SUBSCRIBE to {url}: redirected more than {MAX_REDIRECTS} times")]
    Redirects { url: String },
    #[error("SUBSCRIBE to {url}: the answer has no Mesos-Stream-Id header")]
    NoStreamId { url: String },
    #[error("SUBSCRIBE to {url}: the stream ended before SUBSCRIBED")]
    NotSubscribed { url: String },
    #[error("reading the event stream")]
    Stream(#[source] RecordIoError),
}

/// `http://host:port` of a master, from its MasterInfo (address hostname, else ip, else the
/// deprecated fields).
pub fn master_url(info: &MasterInfo) -> String {
    let host = info
        .address
        .as_ref()
        .and_then(|a| a.hostname.clone().or_else(|| a.ip.clone()))
        .or_else(|| info.hostname.clone())
        .unwrap_or_else(|| info.ipv4().to_string());
    format!("http://{host}:{}", info.port)
}

/// The events of a subscription, in order. Ends when the master closes the stream.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, SchedulerError>> + Send>>;

/// A subscribed framework's handle for calls; cheap to clone.
#[derive(Clone, Debug)]
pub struct Scheduler {
    http: reqwest::Client,
    /// `http://host:port` of the master that accepted the subscription.
    pub master: String,
    pub framework_id: v1::FrameworkId,
    pub stream_id: String,
    /// What SUBSCRIBED said.
    pub subscribed: v1::Subscribed,
}

fn call_name(kind: CallType) -> &'static str {
    match kind {
        CallType::Subscribe => "SUBSCRIBE",
        CallType::Teardown => "TEARDOWN",
        CallType::Accept => "ACCEPT",
        CallType::Decline => "DECLINE",
        CallType::Revive => "REVIVE",
        CallType::Kill => "KILL",
        CallType::Acknowledge => "ACKNOWLEDGE",
        CallType::Reconcile => "RECONCILE",
        CallType::Suppress => "SUPPRESS",
        _ => "call",
    }
}

fn resolve_location(current: &str, location: &str) -> String {
    if let Some(rest) = location.strip_prefix("//") {
        format!("http://{rest}")
    } else if location.starts_with('/') {
        format!("{current}{location}")
    } else {
        location.to_owned()
    }
}

impl Scheduler {
    /// SUBSCRIBEs `info` at the master `master` (`http://host:port`; a non-leader's 307 is
    /// followed) and waits for SUBSCRIBED. Set `info.id` to re-subscribe after a failover.
    /// Returns the handle for calls and the event stream (after SUBSCRIBED). Fails when the
    /// master refuses, cannot be reached, or the stream ends first.
    pub async fn subscribe(master: &str, info: FrameworkInfo) -> Result<(Self, EventStream), SchedulerError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("building the HTTP client");
        let mut call = Call::new(CallType::Subscribe, info.id.clone());
        call.subscribe = Some(v1::Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
        });
        let mut base = master.trim_end_matches('/').to_owned();
        let mut redirects = 0;
        let response = loop {
            let url = format!("{base}/api/v1/scheduler");
            let response = http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .json(&call)
                .send()
                .await
                .map_err(|source| SchedulerError::Transport {
                    call: "SUBSCRIBE",
                    url: url.clone(),
                    source,
                })?;
            if response.status() == reqwest::StatusCode::TEMPORARY_REDIRECT {
                redirects += 1;
                let location = response.headers().get("location").and_then(|l| l.to_str().ok());
                let (Some(location), true) = (location, redirects <= MAX_REDIRECTS) else {
                    return Err(SchedulerError::Redirects { url });
                };
                let target = resolve_location(&base, location);
                base = target.trim_end_matches("/api/v1/scheduler").to_owned();
                continue;
            }
            if !response.status().is_success() {
                let status = response.status().as_u16();
                let message = response.text().await.unwrap_or_default();
                return Err(SchedulerError::Refused {
                    call: "SUBSCRIBE",
                    url,
                    status,
                    message,
                });
            }
            break response;
        };
        let url = format!("{base}/api/v1/scheduler");
        let stream_id = response
            .headers()
            .get("mesos-stream-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| SchedulerError::NoStreamId { url: url.clone() })?;
        let mut events: EventStream =
            Box::pin(recordio::decode_stream::<Event, _, _, _>(response.bytes_stream()).map(|e| e.map_err(SchedulerError::Stream)));
        let subscribed = match events.next().await {
            Some(Ok(event)) if event.kind == EventType::Subscribed => event.subscribed.unwrap_or_default(),
            Some(Err(e)) => return Err(e),
            _ => return Err(SchedulerError::NotSubscribed { url }),
        };
        let scheduler = Self {
            http,
            master: base,
            framework_id: subscribed.framework_id.clone(),
            stream_id,
            subscribed,
        };
        Ok((scheduler, events))
    }

    /// A call of this framework with only its type set.
    pub fn call_of(&self, kind: CallType) -> Call {
        Call::new(kind, Some(self.framework_id.clone()))
    }

    /// Sends a call; fails unless the master answers 202 (or another 2xx).
    pub async fn call(&self, call: &Call) -> Result<(), SchedulerError> {
        let url = format!("{}/api/v1/scheduler", self.master);
        let name = call_name(call.kind);
        let response = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .timeout(Duration::from_secs(10))
            .json(call)
            .send()
            .await
            .map_err(|source| SchedulerError::Transport {
                call: name,
                url: url.clone(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status().as_u16();
        let message = response.text().await.unwrap_or_default();
        Err(SchedulerError::Refused {
            call: name,
            url,
            status,
            message,
        })
    }

    /// ACCEPTs offers (of one agent) launching these tasks; unused resources are refused for
    /// `refuse_seconds`.
    pub async fn launch(
        &self,
        offer_ids: Vec<v1::OfferId>,
        task_infos: Vec<v1::TaskInfo>,
        refuse_seconds: f64,
    ) -> Result<(), SchedulerError> {
        let mut call = self.call_of(CallType::Accept);
        call.accept = Some(v1::Accept {
            offer_ids,
            operations: vec![v1::Operation {
                kind: v1::OperationType::Launch,
                launch: Some(v1::Launch { task_infos }),
            }],
            filters: Some(v1::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.call(&call).await
    }

    /// DECLINEs offers for `refuse_seconds`.
    pub async fn decline(&self, offer_ids: Vec<v1::OfferId>, refuse_seconds: f64) -> Result<(), SchedulerError> {
        let mut call = self.call_of(CallType::Decline);
        call.decline = Some(v1::Decline {
            offer_ids,
            filters: Some(v1::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.call(&call).await
    }

    /// KILLs a task.
    pub async fn kill(&self, task_id: v1::TaskId, agent_id: Option<v1::AgentId>) -> Result<(), SchedulerError> {
        let mut call = self.call_of(CallType::Kill);
        call.kill = Some(v1::Kill { task_id, agent_id });
        self.call(&call).await
    }

    /// ACKNOWLEDGEs a status update; updates without a uuid (reconciliation answers) need none
    /// and are skipped.
    pub async fn acknowledge(&self, status: &v1::TaskStatus) -> Result<(), SchedulerError> {
        let (Some(uuid), Some(agent_id)) = (&status.uuid, &status.agent_id) else {
            return Ok(());
        };
        let mut call = self.call_of(CallType::Acknowledge);
        call.acknowledge = Some(v1::Acknowledge {
            agent_id: agent_id.clone(),
            task_id: status.task_id.clone(),
            uuid: uuid.clone(),
        });
        self.call(&call).await
    }

    /// RECONCILEs these tasks, or every task of the framework when `tasks` is empty.
    pub async fn reconcile(&self, tasks: Vec<v1::ReconcileTask>) -> Result<(), SchedulerError> {
        let mut call = self.call_of(CallType::Reconcile);
        call.reconcile = Some(v1::Reconcile { tasks });
        self.call(&call).await
    }

    /// REVIVE: offers again, filters cleared.
    pub async fn revive(&self) -> Result<(), SchedulerError> {
        self.call(&self.call_of(CallType::Revive)).await
    }

    /// SUPPRESS: no offers until REVIVE.
    pub async fn suppress(&self) -> Result<(), SchedulerError> {
        self.call(&self.call_of(CallType::Suppress)).await
    }

    /// TEARDOWN: the framework and its tasks end.
    pub async fn teardown(&self) -> Result<(), SchedulerError> {
        self.call(&self.call_of(CallType::Teardown)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_mesos_redirects() {
        assert_eq!(
            resolve_location("http://a:1", "//b:2/api/v1/scheduler"),
            "http://b:2/api/v1/scheduler"
        );
        assert_eq!(resolve_location("http://a:1", "/x"), "http://a:1/x");
        assert_eq!(resolve_location("http://a:1", "http://c:3/x"), "http://c:3/x");
    }

    #[test]
    fn master_url_prefers_address() {
        let info = MasterInfo {
            port: 5050,
            ip: MasterInfo::encode_ip(std::net::Ipv4Addr::new(10, 0, 0, 1)),
            ..MasterInfo::default()
        };
        assert_eq!(master_url(&info), "http://10.0.0.1:5050");
        let info = MasterInfo {
            address: Some(v1::Address {
                hostname: Some("m1".into()),
                ip: None,
                port: 5050,
            }),
            ..info
        };
        assert_eq!(master_url(&info), "http://m1:5050");
    }
}
