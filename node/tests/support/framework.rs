//! A scheduler written against the documented v1 HTTP API (`docs/scheduler-http-api.md`):
//! SUBSCRIBE opens a RecordIO stream of events; every other call is a POST carrying the
//! `Mesos-Stream-Id` it returned. Used to drive the masters in tests as a real framework would.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use paas_node::mesos::recordio;
use paas_node::mesos::v1::{self, Call, CallType, Event, EventType, FrameworkInfo, Id, Offer, TaskState, TaskStatus};
use tokio::sync::mpsc;

/// A subscribed framework.
pub struct TestFramework {
    pub id: v1::FrameworkId,
    pub info: FrameworkInfo,
    pub master: String,
    pub stream_id: String,
    pub subscribed: v1::Subscribed,
    events: mpsc::UnboundedReceiver<Event>,
    /// Every status update received (and acknowledged), in order.
    pub statuses: Vec<TaskStatus>,
    /// How many of `statuses` `await_state` has looked at.
    examined: usize,
    /// Offers received and not yet returned by `offers` (never dropped, so none stays
    /// outstanding unseen).
    pending_offers: Vec<Offer>,
    reader: tokio::task::JoinHandle<()>,
    http: reqwest::Client,
}

impl Drop for TestFramework {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Framework info for tests: a failover timeout so that it survives master failovers.
pub fn framework_info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        failover_timeout: Some(60.0),
        ..FrameworkInfo::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

impl TestFramework {
    /// SUBSCRIBEs at `master` (a base URL), following a 307 to the leader once, and waits for
    /// SUBSCRIBED. Panics when that fails.
    pub async fn subscribe(master: &str, info: FrameworkInfo) -> Self {
        let http = client();
        let mut master = master.to_owned();
        let mut call = Call::new(CallType::Subscribe, info.id.clone());
        call.subscribe = Some(v1::Subscribe {
            framework_info: info.clone(),
            suppressed_roles: vec![],
        });
        let mut response = None;
        for _ in 0..3 {
            let answer = http
                .post(format!("{master}/api/v1/scheduler"))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .json(&call)
                .send()
                .await
                .expect("SUBSCRIBE request");
            if answer.status() == reqwest::StatusCode::TEMPORARY_REDIRECT {
                let location = answer.headers()["location"].to_str().unwrap().to_owned();
                // Mesos redirects to `//host:port/path`.
                let base = location.trim_end_matches("/api/v1/scheduler");
                master = format!("http:{base}");
                continue;
            }
            response = Some(answer);
            break;
        }
        let response = response.expect("SUBSCRIBE reached the leader");
        assert_eq!(response.status(), 200, "SUBSCRIBE answered {}", response.status());
        let stream_id = response.headers()["mesos-stream-id"].to_str().unwrap().to_owned();
        let (sender, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut stream = Box::pin(recordio::decode_stream::<Event, _, _, _>(response.bytes_stream()));
            while let Some(Ok(event)) = stream.next().await {
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("SUBSCRIBED within 10 s")
            .expect("stream open");
        assert_eq!(first.kind, EventType::Subscribed, "first event: {first:?}");
        let subscribed = first.subscribed.expect("SUBSCRIBED body");
        let mut info = info;
        info.id = Some(subscribed.framework_id.clone());
        Self {
            id: subscribed.framework_id.clone(),
            info,
            master,
            stream_id,
            subscribed,
            events,
            statuses: Vec::new(),
            examined: 0,
            pending_offers: Vec::new(),
            reader,
            http,
        }
    }

    /// POSTs a call with this framework's stream id; returns the status and body.
    pub async fn call(&self, call: &Call) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}/api/v1/scheduler", self.master))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .json(call)
            .send()
            .await
            .expect("scheduler call");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// A call of this framework with the given type.
    pub fn new_call(&self, kind: CallType) -> Call {
        Call::new(kind, Some(self.id.clone()))
    }

    /// POSTs a call and asserts 202.
    pub async fn send(&self, call: Call) {
        let (status, body) = self.call(&call).await;
        assert_eq!(status, 202, "{:?} answered {status}: {body}", call.kind);
    }

    /// The next event of the stream that `pick` accepts, within `timeout`; other events are
    /// dropped (HEARTBEATs, offers not wanted). Panics when none comes.
    pub async fn next<T>(&mut self, timeout: Duration, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(event)) => {
                    if let Some(update) = &event.update {
                        self.statuses.push(update.status.clone());
                    }
                    if let Some(offers) = &event.offers {
                        self.pending_offers.extend(offers.offers.iter().cloned());
                    }
                    if let Some(rescind) = &event.rescind {
                        self.pending_offers.retain(|o| o.id != rescind.offer_id);
                    }
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Ok(None) => panic!("event stream ended while waiting for {what}"),
                Err(_) => panic!("no {what} within {timeout:?}"),
            }
        }
    }

    /// Events already received, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }

    /// Returns the offers received so far and not returned yet, waiting for an OFFERS event
    /// when there are none.
    pub async fn offers(&mut self) -> Vec<Offer> {
        if self.pending_offers.is_empty() {
            self.next(Duration::from_secs(15), "OFFERS", |e| e.offers.as_ref().map(|_| ()))
                .await;
        }
        std::mem::take(&mut self.pending_offers)
    }

    /// Waits for an UPDATE of `task_id` to `state` (received earlier or now), acknowledging
    /// every update that carries a uuid on the way; returns the status. Panics when the task
    /// ends in another state or nothing comes within 20 s.
    pub async fn await_state(&mut self, task_id: &str, state: TaskState) -> TaskStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            while self.examined < self.statuses.len() {
                let status = self.statuses[self.examined].clone();
                self.examined += 1;
                self.acknowledge(&status).await;
            }
            if let Some(status) = self.statuses.iter().find(|s| s.task_id.value == task_id && s.state == state) {
                return status.clone();
            }
            if let Some(other) = self.statuses.iter().find(|s| s.task_id.value == task_id && s.state.is_terminal()) {
                panic!(
                    "task {task_id} ended in {:?} ({:?}) while waiting for {state:?}",
                    other.state, other.message
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.next(left, &format!("{state:?} of {task_id}"), |e| e.update.as_ref().map(|_| ()))
                .await;
        }
    }

    /// Acknowledges the updates `await_state` has not looked at yet and returns them.
    pub async fn acknowledge_new(&mut self) -> Vec<TaskStatus> {
        let new: Vec<TaskStatus> = self.statuses[self.examined..].to_vec();
        self.examined = self.statuses.len();
        for status in &new {
            self.acknowledge(status).await;
        }
        new
    }

    /// ACKNOWLEDGEs an update if it carries a uuid.
    pub async fn acknowledge(&self, status: &TaskStatus) {
        let (Some(uuid), Some(agent_id)) = (&status.uuid, &status.agent_id) else {
            return;
        };
        let mut call = self.new_call(CallType::Acknowledge);
        call.acknowledge = Some(v1::Acknowledge {
            agent_id: agent_id.clone(),
            task_id: status.task_id.clone(),
            uuid: uuid.clone(),
        });
        self.send(call).await;
    }

    /// ACCEPTs one offer, launching shell-command tasks `(task id, resources, command)`, with
    /// `refuse_seconds: 0` so that what is left is offered again at once.
    pub async fn launch(&self, offer: &Offer, tasks: &[(&str, &str, &str)]) {
        let task_infos = tasks
            .iter()
            .map(|(id, resources, command)| task_info(offer, id, resources, command))
            .collect();
        self.accept(offer, task_infos).await;
    }

    /// ACCEPTs one offer with these tasks.
    pub async fn accept(&self, offer: &Offer, task_infos: Vec<v1::TaskInfo>) {
        let mut call = self.new_call(CallType::Accept);
        call.accept = Some(v1::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::Operation {
                kind: v1::OperationType::Launch,
                launch: Some(v1::Launch { task_infos }),
            }],
            filters: Some(v1::Filters { refuse_seconds: Some(0.0) }),
        });
        self.send(call).await;
    }

    /// DECLINEs offers for `refuse_seconds`.
    pub async fn decline(&self, offers: &[Offer], refuse_seconds: f64) {
        let mut call = self.new_call(CallType::Decline);
        call.decline = Some(v1::Decline {
            offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
            filters: Some(v1::Filters {
                refuse_seconds: Some(refuse_seconds),
            }),
        });
        self.send(call).await;
    }

    /// RECONCILEs the given `(task id, agent id)` pairs (all tasks when empty).
    pub async fn reconcile(&self, tasks: &[(&str, Option<&str>)]) {
        let mut call = self.new_call(CallType::Reconcile);
        call.reconcile = Some(v1::Reconcile {
            tasks: tasks
                .iter()
                .map(|(task, agent)| v1::ReconcileTask {
                    task_id: Id::new(*task),
                    agent_id: agent.map(Id::new),
                })
                .collect(),
        });
        self.send(call).await;
    }

    /// KILLs a task.
    pub async fn kill(&self, task_id: &str) {
        let mut call = self.new_call(CallType::Kill);
        call.kill = Some(v1::Kill {
            task_id: Id::new(task_id),
            agent_id: None,
        });
        self.send(call).await;
    }
}

/// A TaskInfo for a shell command on the offer's agent.
pub fn task_info(offer: &Offer, id: &str, resources: &str, command: &str) -> v1::TaskInfo {
    let resources = paas_node::mesos::resources::Resources::parse(resources)
        .expect("test resources parse")
        .to_v1(None);
    v1::TaskInfo {
        name: id.into(),
        task_id: Id::new(id),
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            shell: Some(true),
            ..v1::CommandInfo::default()
        }),
        ..v1::TaskInfo::default()
    }
}
