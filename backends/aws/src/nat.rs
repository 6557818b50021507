//! NAT gateways and their Elastic IPs: how each AZ's private subnet reaches the internet.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{DomainType, NatGatewayState, ResourceType};
use paas_core::backend::Resolved;
use paas_core::resource::{Fingerprint, Resource, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, creating};
use crate::network::{filter, observed, wrong_spec};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

impl AwsBackend {
    /// The cluster's NAT gateways that are not deleted, and Elastic IPs left without one (an
    /// apply interrupted between allocating the address and creating the gateway): those are
    /// listed under the gateway's id with an empty fingerprint, so a plan replaces or deletes them.
    pub(crate) async fn list_nats(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let ec2 = &self.clients.ec2;
        let (nats, addresses) = tokio::join!(
            ec2.describe_nat_gateways()
                .filter(tags::cluster_filter(cluster))
                .filter(filter("state", &["pending", "available", "failed"]))
                .send(),
            ec2.describe_addresses().filters(tags::cluster_filter(cluster)).send(),
        );
        let mut found = Vec::new();
        for nat in nats.map_err(|e| aws("describe nat gateways", cluster, e))?.nat_gateways() {
            let allocations: Vec<&str> = nat.nat_gateway_addresses().iter().filter_map(|a| a.allocation_id()).collect();
            let attrs = BTreeMap::from([
                ("vpc".to_string(), nat.vpc_id().unwrap_or_default().to_string()),
                ("allocation".to_string(), allocations.join(",")),
            ]);
            found.extend(tags::observed(
                cluster,
                tags::ec2_pairs(nat.tags()),
                nat.nat_gateway_id().unwrap_or_default(),
                attrs,
            ));
        }
        for address in addresses.map_err(|e| aws("describe addresses", cluster, e))?.addresses() {
            let Some(allocation) = address.allocation_id() else { continue };
            if address.association_id().is_some() {
                continue;
            }
            let Some(mut o) = tags::observed(cluster, tags::ec2_pairs(address.tags()), allocation, BTreeMap::new()) else {
                continue;
            };
            if found
                .iter()
                .any(|n| n.id == o.id && n.attrs.get("allocation").is_some_and(|a| a.contains(allocation)))
            {
                continue;
            }
            o.fingerprint = Fingerprint {
                replace: String::new(),
                update: String::new(),
            };
            o.attrs.insert("allocation".into(), allocation.into());
            found.push(o);
        }
        Ok(found)
    }

    /// Allocates an Elastic IP (reusing one this NAT's earlier try left), creates the gateway
    /// and waits until it is available, since routes through a pending gateway fail.
    pub(crate) async fn create_nat(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Nat { az, subnet } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let subnet = dep(deps, &resource.id, subnet)?;
        let marks = Marks::new(cluster, resource, "nat", Some(az), true);
        let ec2 = &self.clients.ec2;
        let leftover = ec2
            .describe_addresses()
            .filters(tags::cluster_filter(cluster))
            .filters(tags::resource_filter(&resource.id))
            .send()
            .await
            .map_err(|e| aws("describe addresses", &resource.id, e))?;
        let free = leftover
            .addresses()
            .iter()
            .find(|a| a.association_id().is_none())
            .and_then(|a| a.allocation_id())
            .map(str::to_string);
        let allocation = match free {
            Some(a) => a,
            None => ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(marks.ec2_spec(ResourceType::ElasticIp))
                .send()
                .await
                .map_err(|e| aws("allocate address", &resource.id, e))?
                .allocation_id()
                .unwrap_or_default()
                .to_string(),
        };
        let out = ec2
            .create_nat_gateway()
            .subnet_id(&subnet.provider_id)
            .allocation_id(&allocation)
            .tag_specifications(marks.ec2_spec(ResourceType::Natgateway))
            .send()
            .await
            .map_err(|e| creating(aws("create nat gateway", &resource.id, e)))?;
        let id = out.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_string();
        self.wait_nat(&resource.id.to_string(), &id, NatGatewayState::Available).await?;
        let vpc = subnet.attrs.get("vpc").cloned().unwrap_or_default();
        Ok(observed(
            resource,
            id,
            BTreeMap::from([("vpc".to_string(), vpc), ("allocation".to_string(), allocation)]),
        ))
    }

    async fn wait_nat(&self, what: &str, id: &str, wanted: NatGatewayState) -> Result<(), BackendError> {
        self.wait_for("wait for nat gateway", what, || async {
            let out = self
                .clients
                .ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .map_err(|e| creating(aws("describe nat gateway", what, e)))?;
            let state = out.nat_gateways().first().and_then(|n| n.state().cloned());
            match state {
                Some(NatGatewayState::Failed) if wanted != NatGatewayState::Deleted => {
                    Err(BackendError::failed("wait for nat gateway", what, "the NAT gateway failed"))
                }
                Some(s) if s == wanted => Ok(Some(())),
                None if wanted == NatGatewayState::Deleted => Ok(Some(())),
                _ => Ok(None),
            }
        })
        .await
    }

    /// Deletes the gateway, waits until it is gone (its subnet and address are in use until
    /// then), and releases its Elastic IP.
    pub(crate) async fn delete_nat(&self, current: &Observed) -> Result<(), BackendError> {
        let ec2 = &self.clients.ec2;
        if current.provider_id.starts_with("nat-") {
            match ec2.delete_nat_gateway().nat_gateway_id(&current.provider_id).send().await {
                Ok(_) => {}
                Err(e) => match aws("delete nat gateway", &current.id, e) {
                    BackendError::NotFound { .. } => {}
                    other => return Err(other),
                },
            }
            self.wait_nat(current.id.as_str(), &current.provider_id, NatGatewayState::Deleted)
                .await?;
        }
        for allocation in current.attrs.get("allocation").map(|a| a.split(',')).into_iter().flatten() {
            if allocation.is_empty() {
                continue;
            }
            self.delete_when_free("release address", current.id.as_str(), || async {
                ec2.release_address()
                    .allocation_id(allocation)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| aws("release address", &current.id, e))
            })
            .await?;
        }
        Ok(())
    }
}
