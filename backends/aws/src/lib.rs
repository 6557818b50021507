//! paas backend on AWS: a VPC spread over availability zones, NAT gateways, security groups,
//! instances with cloud-init user-data, a classic ELB and a Route53 zone; and the private
//! artifact bucket (S3) plus the instance role (IAM) through which instances fetch `paas-node`.
//!
//! Every resource is tagged at creation with the cluster, its resource id and its fingerprint
//! (see [`tags`]), so [`AwsBackend::list`] rebuilds the whole cluster from AWS alone, and an
//! interrupted apply re-run finds what it made instead of making it again. Resources whose
//! creation takes several calls (security groups, route tables, the gateway, the ELB) are
//! tagged as pending until the last call, so the next plan finishes them.

pub mod admin;
mod bucket;
pub mod client;
pub mod deployment;
mod dns;
mod elb;
pub mod error;
pub mod health;
mod iam;
mod instances;
mod keypair;
mod nat;
mod network;
pub mod node_binary;
mod security;
pub mod tags;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use paas_core::backend::{NodeOp, Resolved};
use paas_core::resource::{Resource, ResourceId, ResourceKind};
use paas_core::{Backend, BackendError, Observed};

pub use client::{CallCounter, Clients, ConnectError, Connection};
pub use deployment::{Deployment, DeploymentError, Outcome, Status};
pub use node_binary::NodeBinaryError;

/// How long and how often to poll for something AWS does in the background (a NAT gateway
/// becoming available or deleted, an instance running or terminated, an ENI released).
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for Waits {
    /// Long enough for real AWS: a NAT gateway takes minutes to come and go.
    fn default() -> Self {
        Waits {
            timeout: Duration::from_secs(15 * 60),
            interval: Duration::from_secs(5),
        }
    }
}

/// The AWS [`Backend`].
pub struct AwsBackend {
    clients: Clients,
    /// Where the cluster's SSH key is generated (`.paas/<cluster>/`).
    key_dir: PathBuf,
    waits: Waits,
    /// Resources this process already tried to create: a second try (after a transient failure
    /// whose request may have gone through) looks for the first one's result before creating.
    attempted: Mutex<HashSet<ResourceId>>,
    /// AMI ids looked up by (name pattern, owner).
    amis: Mutex<BTreeMap<(String, String), String>>,
}

impl AwsBackend {
    /// A backend on `clients`, generating keys under `key_dir`.
    pub fn new(clients: Clients, key_dir: PathBuf, waits: Waits) -> AwsBackend {
        AwsBackend {
            clients,
            key_dir,
            waits,
            attempted: Mutex::new(HashSet::new()),
            amis: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// API requests sent so far, retries included.
    pub fn calls(&self) -> u64 {
        self.clients.counter.calls()
    }

    /// Whether a create of `id` was tried before in this process: then look before creating.
    fn retrying(&self, id: &ResourceId) -> bool {
        !self.attempted.lock().expect("not poisoned").insert(id.clone())
    }

    /// Polls `check` until it gives `Some`, at most [`Waits::timeout`].
    async fn wait_for<T, F, Fut>(&self, op: &'static str, id: &str, mut check: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, BackendError>>,
    {
        let deadline = tokio::time::Instant::now() + self.waits.timeout;
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                Err(e) if e.is_transient() => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::Transient {
                    op,
                    id: id.to_string(),
                    message: format!("still not done after {:?}", self.waits.timeout),
                });
            }
            tokio::time::sleep(self.waits.interval).await;
        }
    }

    /// Runs a delete until it stops failing with a dependency still in use (an ENI being
    /// released, a group still referenced), at most [`Waits::timeout`].
    async fn delete_when_free<F, Fut>(&self, op: &'static str, id: &str, mut call: F) -> Result<(), BackendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), BackendError>>,
    {
        self.wait_for(op, id, || {
            let fut = call();
            async move {
                match fut.await {
                    Ok(()) | Err(BackendError::NotFound { .. }) => Ok(Some(())),
                    Err(BackendError::Transient { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }
}

/// The observed dependency `id` of a resource being created.
fn dep<'a>(deps: &'a Resolved, of: &ResourceId, id: &ResourceId) -> Result<&'a Observed, BackendError> {
    deps.get(id)
        .ok_or_else(|| BackendError::failed("resolve dependency", of, format!("{id} is not created")))
}

#[async_trait]
impl Backend for AwsBackend {
    fn name(&self) -> &'static str {
        "aws"
    }

    async fn list(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let (network, nats, groups, keys, nodes, elb, dns, artifacts, iam) = tokio::join!(
            self.list_network(cluster),
            self.list_nats(cluster),
            self.list_security_groups(cluster),
            self.list_key_pairs(cluster),
            self.list_instances(cluster),
            self.list_load_balancer(cluster),
            self.list_dns(cluster),
            self.list_artifacts(cluster),
            self.list_iam(cluster),
        );
        let mut all = network?;
        all.extend(artifacts?);
        all.extend(iam?);
        all.extend(nats?);
        all.extend(groups?);
        all.extend(keys?);
        all.extend(nodes?);
        all.extend(elb?);
        all.extend(dns?);
        Ok(all)
    }

    async fn create(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        if self.retrying(&resource.id)
            && let Some(found) = self.find(cluster, &resource.id).await?
        {
            // The earlier try made it; finishing it is an update.
            if found.fingerprint == resource.fingerprint() {
                return Ok(found);
            }
            return self.update(cluster, resource, &found, deps).await;
        }
        match resource.kind() {
            ResourceKind::Network => self.create_vpc(cluster, resource).await,
            ResourceKind::Gateway => self.create_gateway(cluster, resource, deps).await,
            ResourceKind::Subnet => self.create_subnet(cluster, resource, deps).await,
            ResourceKind::Nat => self.create_nat(cluster, resource, deps).await,
            ResourceKind::RouteTable => self.create_route_table(cluster, resource, deps).await,
            ResourceKind::SecurityGroup => self.create_security_group(cluster, resource, deps).await,
            ResourceKind::KeyPair => self.create_key_pair(cluster, resource).await,
            ResourceKind::Bucket => self.create_bucket(cluster, resource).await,
            ResourceKind::Object => self.create_object(cluster, resource, deps).await,
            ResourceKind::Role => self.create_role(cluster, resource).await,
            ResourceKind::Policy => self.create_policy(cluster, resource, deps).await,
            ResourceKind::InstanceProfile => self.create_instance_profile(cluster, resource, deps).await,
            ResourceKind::Node => self.create_instance(cluster, resource, deps).await,
            ResourceKind::LoadBalancer => self.create_load_balancer(cluster, resource, deps).await,
            ResourceKind::DnsZone => self.create_zone(cluster, resource).await,
            ResourceKind::DnsRecord => self.upsert_record(cluster, resource, deps).await,
        }
    }

    async fn update(&self, cluster: &str, resource: &Resource, current: &Observed, deps: &Resolved) -> Result<Observed, BackendError> {
        match resource.kind() {
            ResourceKind::Gateway => self.finish_gateway(resource, current, deps).await,
            ResourceKind::Bucket => self.finish_bucket(cluster, resource).await,
            ResourceKind::Policy => self.finish_policy(resource, current, deps).await,
            ResourceKind::InstanceProfile => self.finish_instance_profile(resource, current, deps).await,
            ResourceKind::RouteTable => self.update_route_table(resource, current, deps).await,
            ResourceKind::SecurityGroup => self.update_security_group(resource, current, deps).await,
            ResourceKind::LoadBalancer => self.update_load_balancer(resource, current, deps).await,
            ResourceKind::DnsRecord => self.upsert_record(cluster, resource, deps).await,
            kind => Err(BackendError::failed(
                "update",
                &resource.id,
                format!("a {kind} cannot change in place"),
            )),
        }
    }

    async fn delete(&self, _cluster: &str, current: &Observed) -> Result<(), BackendError> {
        match current.kind() {
            ResourceKind::Network => self.delete_vpc(current).await,
            ResourceKind::Gateway => self.delete_gateway(current).await,
            ResourceKind::Subnet => self.delete_subnet(current).await,
            ResourceKind::Nat => self.delete_nat(current).await,
            ResourceKind::RouteTable => self.delete_route_table(current).await,
            ResourceKind::SecurityGroup => self.delete_security_group(current).await,
            ResourceKind::KeyPair => self.delete_key_pair(current).await,
            ResourceKind::Bucket => self.delete_bucket(current).await,
            ResourceKind::Object => self.delete_object(current).await,
            ResourceKind::Role => self.delete_role(current).await,
            ResourceKind::Policy => self.delete_policy(current).await,
            ResourceKind::InstanceProfile => self.delete_instance_profile(current).await,
            ResourceKind::Node => self.terminate_instance(current).await,
            ResourceKind::LoadBalancer => self.delete_load_balancer(current).await,
            ResourceKind::DnsZone => self.delete_zone(current).await,
            ResourceKind::DnsRecord => self.delete_record(current).await,
        }
    }

    async fn node_op(&self, _cluster: &str, node: &Observed, op: NodeOp) -> Result<(), BackendError> {
        self.instance_op(node, op).await
    }
}

impl AwsBackend {
    /// Looks up one resource of the cluster by its tags.
    async fn find(&self, cluster: &str, id: &ResourceId) -> Result<Option<Observed>, BackendError> {
        let all = match id.kind() {
            ResourceKind::Network | ResourceKind::Gateway | ResourceKind::Subnet | ResourceKind::RouteTable => {
                self.list_network(cluster).await?
            }
            ResourceKind::Nat => self.list_nats(cluster).await?,
            ResourceKind::SecurityGroup => self.list_security_groups(cluster).await?,
            ResourceKind::KeyPair => self.list_key_pairs(cluster).await?,
            ResourceKind::Bucket | ResourceKind::Object => self.list_artifacts(cluster).await?,
            ResourceKind::Role | ResourceKind::Policy | ResourceKind::InstanceProfile => self.list_iam(cluster).await?,
            ResourceKind::Node => self.list_instances(cluster).await?,
            ResourceKind::LoadBalancer => self.list_load_balancer(cluster).await?,
            ResourceKind::DnsZone | ResourceKind::DnsRecord => self.list_dns(cluster).await?,
        };
        Ok(all.into_iter().find(|o| &o.id == id))
    }
}
