//! The VPC, its internet gateway, subnets and route tables.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType};
use paas_core::backend::Resolved;
use paas_core::resource::{Resource, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, code, creating};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

fn attrs(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    pairs.iter().filter_map(|(k, v)| Some((k.to_string(), (*v)?.to_string()))).collect()
}

impl AwsBackend {
    /// The cluster's VPC, gateway, subnets and route tables, found by tag.
    pub(crate) async fn list_network(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let ec2 = &self.clients.ec2;
        let filter = tags::cluster_filter(cluster);
        let (vpcs, igws, subnets, tables) = tokio::join!(
            ec2.describe_vpcs().filters(filter.clone()).send(),
            ec2.describe_internet_gateways().filters(filter.clone()).send(),
            ec2.describe_subnets().filters(filter.clone()).send(),
            ec2.describe_route_tables().filters(filter).send(),
        );
        let mut found = Vec::new();
        for vpc in vpcs.map_err(|e| aws("describe vpcs", cluster, e))?.vpcs() {
            let id = vpc.vpc_id().unwrap_or_default();
            found.extend(tags::observed(
                cluster,
                tags::ec2_pairs(vpc.tags()),
                id,
                attrs(&[("cidr", vpc.cidr_block())]),
            ));
        }
        for igw in igws.map_err(|e| aws("describe internet gateways", cluster, e))?.internet_gateways() {
            let id = igw.internet_gateway_id().unwrap_or_default();
            let vpc = igw.attachments().first().and_then(|a| a.vpc_id());
            found.extend(tags::observed(cluster, tags::ec2_pairs(igw.tags()), id, attrs(&[("vpc", vpc)])));
        }
        for subnet in subnets.map_err(|e| aws("describe subnets", cluster, e))?.subnets() {
            let id = subnet.subnet_id().unwrap_or_default();
            found.extend(tags::observed(
                cluster,
                tags::ec2_pairs(subnet.tags()),
                id,
                attrs(&[
                    ("az", subnet.availability_zone()),
                    ("cidr", subnet.cidr_block()),
                    ("vpc", subnet.vpc_id()),
                ]),
            ));
        }
        for table in tables.map_err(|e| aws("describe route tables", cluster, e))?.route_tables() {
            let id = table.route_table_id().unwrap_or_default();
            found.extend(tags::observed(cluster, tags::ec2_pairs(table.tags()), id, BTreeMap::new()));
        }
        Ok(found)
    }

    pub(crate) async fn create_vpc(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::Network { cidr, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let marks = Marks::new(cluster, resource, "network", None, true);
        let out = self
            .clients
            .ec2
            .create_vpc()
            .cidr_block(cidr.to_string())
            .tag_specifications(marks.ec2_spec(ResourceType::Vpc))
            .send()
            .await
            .map_err(|e| aws("create vpc", &resource.id, e))?;
        let vpc = out.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_string();
        // DNS support is on by default; hostnames let instances be reached by name.
        self.clients
            .ec2
            .modify_vpc_attribute()
            .vpc_id(&vpc)
            .enable_dns_hostnames(aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .map_err(|e| creating(aws("enable vpc dns hostnames", &resource.id, e)))?;
        Ok(observed(resource, vpc, attrs(&[("cidr", Some(&cidr.to_string()))])))
    }

    pub(crate) async fn delete_vpc(&self, current: &Observed) -> Result<(), BackendError> {
        self.delete_when_free("delete vpc", current.id.as_str(), || async {
            self.clients
                .ec2
                .delete_vpc()
                .vpc_id(&current.provider_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete vpc", &current.id, e))
        })
        .await
    }

    /// Creates the gateway tagged as pending, then attaches it: two calls, so an interruption
    /// in between leaves a pending gateway the next plan finishes.
    pub(crate) async fn create_gateway(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let marks = Marks::new(cluster, resource, "gateway", None, false);
        let out = self
            .clients
            .ec2
            .create_internet_gateway()
            .tag_specifications(marks.ec2_spec(ResourceType::InternetGateway))
            .send()
            .await
            .map_err(|e| aws("create internet gateway", &resource.id, e))?;
        let id = out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default()
            .to_string();
        let current = observed(resource, id, BTreeMap::new());
        self.finish_gateway(resource, &current, deps).await
    }

    pub(crate) async fn finish_gateway(&self, resource: &Resource, current: &Observed, deps: &Resolved) -> Result<Observed, BackendError> {
        let vpc = &dep(deps, &resource.id, &resource.depends_on[0])?.provider_id;
        let attached = self
            .clients
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(&current.provider_id)
            .vpc_id(vpc)
            .send()
            .await;
        if let Err(e) = attached
            && code(&e).as_deref() != Some("Resource.AlreadyAssociated")
        {
            return Err(creating(aws("attach internet gateway", &resource.id, e)));
        }
        self.tag(&current.provider_id, resource).await?;
        Ok(observed(resource, current.provider_id.clone(), attrs(&[("vpc", Some(vpc))])))
    }

    pub(crate) async fn delete_gateway(&self, current: &Observed) -> Result<(), BackendError> {
        let ec2 = &self.clients.ec2;
        if let Some(vpc) = current.attrs.get("vpc") {
            // Detaching waits for the NAT gateways' public addresses to be released.
            self.delete_when_free("detach internet gateway", current.id.as_str(), || async {
                match ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(&current.provider_id)
                    .vpc_id(vpc)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if code(&e).as_deref() == Some("Gateway.NotAttached") => Ok(()),
                    Err(e) => Err(aws("detach internet gateway", &current.id, e)),
                }
            })
            .await?;
        }
        self.delete_when_free("delete internet gateway", current.id.as_str(), || async {
            ec2.delete_internet_gateway()
                .internet_gateway_id(&current.provider_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete internet gateway", &current.id, e))
        })
        .await
    }

    pub(crate) async fn create_subnet(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Subnet { az, tier, cidr } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let vpc = &dep(deps, &resource.id, &resource.depends_on[0])?.provider_id;
        let marks = Marks::new(cluster, resource, tier.as_str(), Some(az), true);
        let out = self
            .clients
            .ec2
            .create_subnet()
            .vpc_id(vpc)
            .availability_zone(az)
            .cidr_block(cidr.to_string())
            .tag_specifications(marks.ec2_spec(ResourceType::Subnet))
            .send()
            .await
            .map_err(|e| creating(aws("create subnet", &resource.id, e)))?;
        let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string();
        Ok(observed(
            resource,
            id,
            attrs(&[("az", Some(az)), ("cidr", Some(&cidr.to_string())), ("vpc", Some(vpc))]),
        ))
    }

    pub(crate) async fn delete_subnet(&self, current: &Observed) -> Result<(), BackendError> {
        self.delete_when_free("delete subnet", current.id.as_str(), || async {
            self.clients
                .ec2
                .delete_subnet()
                .subnet_id(&current.provider_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete subnet", &current.id, e))
        })
        .await
    }

    /// Creates the table tagged as pending, then its default route and associations.
    pub(crate) async fn create_route_table(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::RouteTable { via, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let vpc = match &dep(deps, &resource.id, via)?.attrs.get("vpc") {
            Some(vpc) => vpc.to_string(),
            None => self.vpc_of_cluster(cluster, resource).await?,
        };
        let marks = Marks::new(cluster, resource, "route-table", None, false);
        let out = self
            .clients
            .ec2
            .create_route_table()
            .vpc_id(&vpc)
            .tag_specifications(marks.ec2_spec(ResourceType::RouteTable))
            .send()
            .await
            .map_err(|e| creating(aws("create route table", &resource.id, e)))?;
        let id = out.route_table().and_then(|t| t.route_table_id()).unwrap_or_default().to_string();
        let current = observed(resource, id, BTreeMap::new());
        self.update_route_table(resource, &current, deps).await
    }

    /// The VPC id, when a dependency did not record it.
    async fn vpc_of_cluster(&self, cluster: &str, resource: &Resource) -> Result<String, BackendError> {
        let out = self
            .clients
            .ec2
            .describe_vpcs()
            .filters(tags::cluster_filter(cluster))
            .send()
            .await
            .map_err(|e| aws("describe vpcs", &resource.id, e))?;
        out.vpcs()
            .first()
            .and_then(|v| v.vpc_id())
            .map(str::to_string)
            .ok_or_else(|| BackendError::failed("find vpc", &resource.id, "the cluster has no VPC"))
    }

    /// Makes the default route and the subnet associations what `resource` says. Idempotent.
    pub(crate) async fn update_route_table(
        &self,
        resource: &Resource,
        current: &Observed,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        let ResourceSpec::RouteTable { tier, via, subnets } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let ec2 = &self.clients.ec2;
        let table = ec2
            .describe_route_tables()
            .route_table_ids(&current.provider_id)
            .send()
            .await
            .map_err(|e| creating(aws("describe route table", &resource.id, e)))?;
        let Some(table) = table.route_tables().first().cloned() else {
            return Err(BackendError::Transient {
                op: "describe route table",
                id: resource.id.to_string(),
                message: "the new route table is not visible yet".into(),
            });
        };
        let target = &dep(deps, &resource.id, via)?.provider_id;
        let has_route = table.routes().iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
        if !has_route {
            let mut call = ec2
                .create_route()
                .route_table_id(&current.provider_id)
                .destination_cidr_block("0.0.0.0/0");
            call = match tier {
                paas_core::topology::Tier::Front => call.gateway_id(target),
                paas_core::topology::Tier::Back => call.nat_gateway_id(target),
            };
            call.send().await.map_err(|e| creating(aws("create route", &resource.id, e)))?;
        }
        let wanted: Vec<String> = subnets
            .iter()
            .map(|s| dep(deps, &resource.id, s).map(|o| o.provider_id.clone()))
            .collect::<Result<_, _>>()?;
        for assoc in table.associations() {
            if let Some(subnet) = assoc.subnet_id()
                && !wanted.iter().any(|w| w == subnet)
                && let Some(assoc_id) = assoc.route_table_association_id()
            {
                ec2.disassociate_route_table()
                    .association_id(assoc_id)
                    .send()
                    .await
                    .map_err(|e| aws("disassociate route table", &resource.id, e))?;
            }
        }
        for subnet in &wanted {
            if table.associations().iter().any(|a| a.subnet_id() == Some(subnet)) {
                continue;
            }
            ec2.associate_route_table()
                .route_table_id(&current.provider_id)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(|e| creating(aws("associate route table", &resource.id, e)))?;
        }
        self.tag(&current.provider_id, resource).await?;
        Ok(observed(resource, current.provider_id.clone(), BTreeMap::new()))
    }

    pub(crate) async fn delete_route_table(&self, current: &Observed) -> Result<(), BackendError> {
        let ec2 = &self.clients.ec2;
        let tables = ec2
            .describe_route_tables()
            .route_table_ids(&current.provider_id)
            .send()
            .await
            .map_err(|e| aws("describe route table", &current.id, e))?;
        for table in tables.route_tables() {
            for assoc in table.associations() {
                if let Some(id) = assoc.route_table_association_id()
                    && !assoc.main().unwrap_or(false)
                {
                    match ec2.disassociate_route_table().association_id(id).send().await {
                        Ok(_) => {}
                        Err(e) if code(&e).is_some_and(|c| c.ends_with("NotFound")) => {}
                        Err(e) => return Err(aws("disassociate route table", &current.id, e)),
                    }
                }
            }
        }
        self.delete_when_free("delete route table", current.id.as_str(), || async {
            ec2.delete_route_table()
                .route_table_id(&current.provider_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete route table", &current.id, e))
        })
        .await
    }

    /// Rewrites the fingerprint tags of an EC2 resource: the last step of a create or update.
    pub(crate) async fn tag(&self, provider_id: &str, resource: &Resource) -> Result<(), BackendError> {
        self.clients
            .ec2
            .create_tags()
            .resources(provider_id)
            .set_tags(Some(Marks::fingerprint(resource).ec2()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| creating(aws("tag", &resource.id, e)))
    }
}

/// The observed form of a resource just made or brought up to date.
pub(crate) fn observed(resource: &Resource, provider_id: String, attrs: BTreeMap<String, String>) -> Observed {
    Observed {
        id: resource.id.clone(),
        provider_id,
        fingerprint: resource.fingerprint(),
        attrs,
    }
}

pub(crate) fn wrong_spec(resource: &Resource) -> BackendError {
    BackendError::failed("read spec", &resource.id, "the spec does not match the resource kind")
}

/// A filter on one EC2 attribute.
pub(crate) fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}
