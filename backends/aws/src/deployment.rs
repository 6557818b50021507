//! A cluster on AWS as the `paas aws` commands drive it: connect, place the spec over the
//! region's zones, then plan, apply, inspect, refresh or destroy through the engine.

use std::path::Path;
use std::time::{Duration, Instant};

use paas_core::engine::{ApplyOptions, ApplyReport, EngineError, Event, Plan, RollGate, State, StateStore};
use paas_core::resource::{NodeBinary, ResourceId, ResourceKind};
use paas_core::spec::NatMode;
use paas_core::topology::PlacementError;
use paas_core::topology::Role;
use paas_core::{BackendError, ClusterSpec, Engine, Graph, Observed, Target, Topology};
use serde::Serialize;

use crate::admin::AdminEntry;
use crate::error::aws;
use crate::health::{self, Health};
use crate::{AwsBackend, Clients, ConnectError, Connection, Waits};

/// Why a deployment command failed.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("connecting to AWS")]
    Connect(#[source] ConnectError),
    #[error("listing the availability zones of {region}")]
    Zones {
        region: String,
        #[source]
        source: BackendError,
    },
    #[error("placing the cluster over the zones of {region}")]
    Placement {
        region: String,
        #[source]
        source: PlacementError,
    },
    #[error("no paas-node binary to deliver to the instances: give one with --node-binary")]
    NoNodeBinary,
    #[error("the cluster has no admin entry yet (no adminlb with a public address, or no elb)")]
    NoAdminEntry,
    #[error("reading the cluster's health from AWS")]
    Read(#[source] BackendError),
    #[error("the cluster did not become healthy within {waited:?}; still waiting for: {}", waiting.join("; "))]
    Unhealthy { waited: Duration, waiting: Vec<String> },
    #[error("deploying app {id} through marathon.admin: {message}")]
    Deploy { id: String, message: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What one apply or destroy did, with the cost of doing it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub plan: Plan,
    pub report: ApplyReport,
    /// AWS API requests sent, retries included.
    pub api_calls: u64,
    pub elapsed_ms: u64,
}

/// One node as AWS reports it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub instance_id: String,
    pub az: String,
    pub state: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
}

/// The cluster as AWS reports it now.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub cluster: String,
    pub region: String,
    pub resources: usize,
    pub nodes: Vec<NodeStatus>,
    pub elb_dns_name: Option<String>,
    /// The zone's name servers, to delegate the domain to.
    pub name_servers: Vec<String>,
}

/// A cluster spec bound to an AWS account and region.
pub struct Deployment {
    spec: ClusterSpec,
    backend: AwsBackend,
    store: StateStore,
    options: ApplyOptions,
    node_binary: Option<NodeBinary>,
    /// Whether a roll waits for the cluster to serve around each machine (at AWS itself).
    gate_rolls: bool,
}

impl Deployment {
    /// Connects for `spec`, keeping state (and the SSH key) under `state_dir/<cluster>/`.
    /// Fails when no region is known.
    pub async fn connect(
        spec: ClusterSpec,
        state_dir: &Path,
        connection: &Connection,
        waits: Waits,
    ) -> Result<Deployment, DeploymentError> {
        let clients = Clients::connect(connection).await.map_err(DeploymentError::Connect)?;
        let store = StateStore::new(state_dir, &spec.name, "aws");
        let backend = AwsBackend::new(clients, store.dir().to_path_buf(), waits);
        Ok(Deployment {
            spec,
            backend,
            store,
            options: ApplyOptions::default(),
            node_binary: None,
            gate_rolls: true,
        })
    }

    /// Sets the apply options (parallelism, retries).
    pub fn with_options(mut self, options: ApplyOptions) -> Deployment {
        self.options = options;
        self
    }

    /// Rolls without waiting for the cluster to serve around each machine: the way to roll a
    /// fixed binary over a cluster that does not serve (the gate would wait for it forever).
    pub fn without_roll_gate(mut self) -> Deployment {
        self.gate_rolls = false;
        self
    }

    /// The `paas-node` instances install (see [`crate::node_binary::inspect`]); `plan` and
    /// `up` need one.
    pub fn with_node_binary(mut self, binary: NodeBinary) -> Deployment {
        self.node_binary = Some(binary);
        self
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    pub fn backend(&self) -> &AwsBackend {
        &self.backend
    }

    pub fn region(&self) -> &str {
        &self.backend.clients().region
    }

    /// Things worth the user's attention before applying.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.spec.aws.nat == NatMode::Single && self.spec.azs > 1 {
            warnings.push(
                "nat = \"single\": every AZ's private subnet goes out through one NAT gateway; losing its AZ cuts the others off".into(),
            );
        }
        warnings
    }

    fn engine(&self) -> Engine<'_> {
        Engine::new(&self.backend, self.store.clone(), self.options.clone())
    }

    /// Places the spec over the region's available zones. Fails naming the zones there are
    /// when the spec asks for more.
    pub async fn topology(&self) -> Result<Topology, DeploymentError> {
        let region = self.region().to_string();
        let zones = self.backend.clients().zones().await.map_err(|source| DeploymentError::Zones {
            region: region.clone(),
            source,
        })?;
        Topology::place(&self.spec, &zones).map_err(|source| DeploymentError::Placement { region, source })
    }

    /// The desired resources of the spec in this region, delivering the node binary. Fails
    /// without one.
    pub async fn graph(&self) -> Result<Graph, DeploymentError> {
        let binary = self.node_binary.as_ref().ok_or(DeploymentError::NoNodeBinary)?;
        Ok(Graph::aws(&self.spec, &self.topology().await?, binary))
    }

    /// What `up` would change. Reads only.
    pub async fn plan(&self) -> Result<Plan, DeploymentError> {
        let graph = self.graph().await?;
        Ok(self.engine().plan(&graph).await?)
    }

    /// Makes AWS match the spec; `on_event` sees each step. At AWS itself, a rolled
    /// replacement waits before and after each machine until the cluster serves through its
    /// admin entry (see [`Health::is_serving`]), at most the wait timeout, then stops; at an
    /// emulator, where instances never boot, or [`Deployment::without_roll_gate`], it does not
    /// wait.
    pub async fn up(&self, command: &str, on_event: &(dyn Fn(Event) + Sync)) -> Result<Outcome, DeploymentError> {
        let graph = self.graph().await?;
        let (calls, started) = (self.backend.calls(), Instant::now());
        let gate = ServingGate { deployment: self };
        let engine = match self.gate_rolls && !self.is_emulator() {
            true => self.engine().with_gate(&gate),
            false => self.engine(),
        };
        let (plan, report) = engine.apply(&graph, command, on_event).await?;
        Ok(self.outcome(plan, report, calls, started))
    }

    /// Whether every call goes to an emulator (`--endpoint-url`), where instances never boot.
    pub fn is_emulator(&self) -> bool {
        self.backend.clients().endpoint_url.is_some()
    }

    /// The adminlb's public address and the elb's name, as AWS lists them now.
    pub async fn admin_entry(&self) -> Result<AdminEntry, DeploymentError> {
        let observed = self.engine().observe(&self.spec.name).await?;
        admin_entry(&self.spec.domain, &observed).ok_or(DeploymentError::NoAdminEntry)
    }

    /// One round of probes through the admin entry and the elb; `apps` are the ids the spec
    /// deploys.
    pub async fn health(&self, apps: &[String]) -> Result<Health, DeploymentError> {
        let observed = self.engine().observe(&self.spec.name).await?;
        let entry = admin_entry(&self.spec.domain, &observed).ok_or(DeploymentError::NoAdminEntry)?;
        let lbs = self.lbs_in_service(&observed).await.map_err(DeploymentError::Read)?;
        Ok(health::probe(&entry, self.spec.nodes.slaves, apps, lbs).await)
    }

    /// Probes every `interval` until `done` holds of the health, at most `timeout`; `on_wait`
    /// sees each round that does not pass yet.
    pub async fn wait_for(
        &self,
        apps: &[String],
        timeout: Duration,
        interval: Duration,
        done: fn(&Health) -> bool,
        on_wait: &(dyn Fn(&Health) + Sync),
    ) -> Result<Health, DeploymentError> {
        let started = Instant::now();
        loop {
            let last = match self.health(apps).await {
                Ok(h) if done(&h) => return Ok(h),
                Ok(h) => {
                    on_wait(&h);
                    h.waiting_for()
                }
                // The adminlb may be the machine being replaced, or not have its address yet.
                Err(DeploymentError::NoAdminEntry) => vec!["the admin entry".to_string()],
                // Throttling or a timeout of AWS's own API: ask again next round.
                Err(DeploymentError::Read(e) | DeploymentError::Engine(EngineError::List { source: e, .. })) if e.is_transient() => {
                    vec![format!("AWS's API ({e})")]
                }
                Err(e) => return Err(e),
            };
            if started.elapsed() >= timeout {
                return Err(DeploymentError::Unhealthy {
                    waited: timeout,
                    waiting: last,
                });
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Deploys each Marathon app definition (JSON) through `marathon.admin` unless Marathon
    /// has an app of its id. Returns `(id, "deployed" | "present")` per app.
    pub async fn deploy_apps(&self, definitions: &[String]) -> Result<Vec<(String, &'static str)>, DeploymentError> {
        let entry = self.admin_entry().await?;
        let mut done = Vec::new();
        for definition in definitions {
            let id = serde_json::from_str::<serde_json::Value>(definition)
                .ok()
                .and_then(|v| v.get("id")?.as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into());
            let result = entry
                .deploy_if_missing(definition)
                .await
                .map_err(|message| DeploymentError::Deploy { id: id.clone(), message })?;
            done.push((id, result));
        }
        Ok(done)
    }

    /// Whether the instance of node `id` passes both of EC2's status checks (`ok`); false
    /// while it is missing or still initializing.
    pub async fn status_checks_pass(&self, id: &ResourceId) -> Result<bool, DeploymentError> {
        let observed = self.engine().observe(&self.spec.name).await?;
        let Some(node) = observed.iter().find(|o| &o.id == id) else {
            return Ok(false);
        };
        let out = self
            .backend
            .clients()
            .ec2
            .describe_instance_status()
            .instance_ids(&node.provider_id)
            .send()
            .await
            .map_err(|e| DeploymentError::Read(aws("describe instance status", id, e)))?;
        let ok = |s: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| s.and_then(|s| s.status()).map(|s| s.as_str()) == Some("ok");
        Ok(out
            .instance_statuses()
            .iter()
            .any(|s| ok(s.instance_status()) && ok(s.system_status())))
    }

    /// Each lb node and whether the elb's health check has it `InService`.
    async fn lbs_in_service(&self, observed: &[Observed]) -> Result<Vec<(String, bool)>, BackendError> {
        let Some(elb) = observed.iter().find(|o| o.kind() == ResourceKind::LoadBalancer) else {
            return Ok(vec![]);
        };
        let out = self
            .backend
            .clients()
            .elb
            .describe_instance_health()
            .load_balancer_name(&elb.provider_id)
            .send()
            .await
            .map_err(|e| aws("describe instance health", &elb.id, e))?;
        let mut lbs: Vec<(String, bool)> = observed
            .iter()
            .filter(|o| o.kind() == ResourceKind::Node && o.id.name().starts_with(&format!("{}-", Role::Lb.as_str())))
            .map(|o| {
                let in_service = out
                    .instance_states()
                    .iter()
                    .any(|s| s.instance_id() == Some(o.provider_id.as_str()) && s.state() == Some("InService"));
                (o.id.name().to_string(), in_service)
            })
            .collect();
        lbs.sort();
        Ok(lbs)
    }

    /// Deletes every resource of the cluster, in reverse dependency order.
    pub async fn down(&self, on_event: &(dyn Fn(Event) + Sync)) -> Result<Outcome, DeploymentError> {
        let (calls, started) = (self.backend.calls(), Instant::now());
        let (plan, report) = self.engine().destroy(&self.spec.name, Target::Aws, "down", on_event).await?;
        Ok(self.outcome(plan, report, calls, started))
    }

    fn outcome(&self, plan: Plan, report: ApplyReport, calls: u64, started: Instant) -> Outcome {
        Outcome {
            plan,
            report,
            api_calls: self.backend.calls() - calls,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Rebuilds the state file from the tags on AWS.
    pub async fn refresh(&self) -> Result<State, DeploymentError> {
        Ok(self.engine().refresh(&self.spec.name, "refresh").await?)
    }

    /// The cluster as AWS lists it.
    pub async fn status(&self) -> Result<Status, DeploymentError> {
        let observed = self.engine().observe(&self.spec.name).await?;
        Ok(status(&self.spec.name, self.region(), &observed))
    }
}

/// Between two rolled machines: the machine passes EC2's status checks (its system and its
/// operating system are reachable) and the cluster serves through its admin entry (Mesos and
/// Marathon leaders, every agent, every lb in service). Polls every 10 s, at most the backend's
/// wait timeout.
struct ServingGate<'d> {
    deployment: &'d Deployment,
}

impl ServingGate<'_> {
    async fn wait(&self, replaced: &ResourceId) -> Result<(), DeploymentError> {
        let timeout = self.deployment.backend.waits.timeout;
        let interval = Duration::from_secs(10);
        let started = Instant::now();
        loop {
            self.deployment
                .wait_for(
                    &[],
                    timeout.saturating_sub(started.elapsed()),
                    interval,
                    Health::is_serving,
                    &|_| {},
                )
                .await?;
            if self.deployment.status_checks_pass(replaced).await? {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(DeploymentError::Unhealthy {
                    waited: timeout,
                    waiting: vec![format!("{replaced} passing EC2's status checks")],
                });
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[async_trait::async_trait]
impl RollGate for ServingGate<'_> {
    async fn ready(&self, replaced: &ResourceId) -> Result<(), BackendError> {
        self.wait(replaced).await.map_err(|e| BackendError::Failed {
            op: "wait for the cluster to serve",
            id: replaced.to_string(),
            message: "the roll stops here; `paas aws status` shows what is missing".into(),
            source: Some(Box::new(e)),
        })
    }
}

/// The admin entry of what AWS lists: the adminlb's public address and the elb's DNS name.
fn admin_entry(domain: &str, observed: &[Observed]) -> Option<AdminEntry> {
    let adminlb = observed
        .iter()
        .find(|o| o.kind() == ResourceKind::Node && o.id.name().starts_with(&format!("{}-", Role::AdminLb.as_str())))?;
    let elb = observed.iter().find(|o| o.kind() == ResourceKind::LoadBalancer)?;
    Some(AdminEntry {
        admin: format!("{}:80", adminlb.attrs.get("public_ip")?),
        elb: format!("{}:80", elb.attrs.get("dns_name")?),
        domain: domain.to_string(),
    })
}

fn status(cluster: &str, region: &str, observed: &[Observed]) -> Status {
    let mut nodes: Vec<NodeStatus> = observed
        .iter()
        .filter(|o| o.kind() == ResourceKind::Node)
        .map(|o| NodeStatus {
            name: o.id.name().to_string(),
            instance_id: o.provider_id.clone(),
            az: o.attrs.get("az").cloned().unwrap_or_default(),
            state: o.attrs.get("state").cloned().unwrap_or_default(),
            private_ip: o.attrs.get("private_ip").cloned().unwrap_or_default(),
            public_ip: o.attrs.get("public_ip").cloned(),
        })
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let attr = |kind: ResourceKind, key: &str| observed.iter().find(|o| o.kind() == kind).and_then(|o| o.attrs.get(key)).cloned();
    Status {
        cluster: cluster.to_string(),
        region: region.to_string(),
        resources: observed.len(),
        nodes,
        elb_dns_name: attr(ResourceKind::LoadBalancer, "dns_name"),
        name_servers: attr(ResourceKind::DnsZone, "name_servers")
            .map(|s| s.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
    }
}
