//! The classic ELB across the front subnets, in front of the lbs.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancing::types::{CrossZoneLoadBalancing, HealthCheck, Instance, Listener, LoadBalancerAttributes};
use paas_core::backend::Resolved;
use paas_core::render::elb::LoadBalancerSpec;
use paas_core::resource::{LoadBalancerResource, Resource, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, code, creating};
use crate::network::{observed, wrong_spec};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

fn spec(resource: &Resource) -> Result<&LoadBalancerResource, BackendError> {
    match &resource.spec {
        ResourceSpec::LoadBalancer(lb) => Ok(lb),
        _ => Err(wrong_spec(resource)),
    }
}

impl AwsBackend {
    /// The cluster's ELB, whose name follows from the cluster name; found by its tags.
    pub(crate) async fn list_load_balancer(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let name = LoadBalancerSpec::external(cluster, 5).name;
        let tags = match self.clients.elb.describe_tags().load_balancer_names(&name).send().await {
            Ok(out) => out,
            Err(e) if code(&e).as_deref() == Some("LoadBalancerNotFound") => return Ok(vec![]),
            Err(e) => match aws("describe load balancer tags", &name, e) {
                BackendError::NotFound { .. } => return Ok(vec![]),
                other => return Err(other),
            },
        };
        let Some(description) = tags.tag_descriptions().first() else {
            return Ok(vec![]);
        };
        let pairs = description.tags().iter().map(|t| (t.key(), t.value().unwrap_or_default()));
        let Some(mut o) = tags::observed(cluster, pairs, &name, BTreeMap::new()) else {
            return Ok(vec![]);
        };
        let out = self
            .clients
            .elb
            .describe_load_balancers()
            .load_balancer_names(&name)
            .send()
            .await
            .map_err(|e| aws("describe load balancer", &name, e))?;
        if let Some(lb) = out.load_balancer_descriptions().first() {
            o.attrs = lb_attrs(lb.dns_name(), lb.canonical_hosted_zone_name_id());
        }
        Ok(vec![o])
    }

    /// Creates the ELB tagged as pending (listener, subnets, groups in the same call), then
    /// configures its health check, cross-zone and members.
    pub(crate) async fn create_load_balancer(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let lb = spec(resource)?;
        let subnets = ids(deps, resource, &lb.subnets)?;
        let groups = ids(deps, resource, &lb.security_groups)?;
        let marks = Marks::new(cluster, resource, "load-balancer", None, false);
        let listener = Listener::builder()
            .protocol("HTTP")
            .load_balancer_port(i32::from(lb.spec.listen_port))
            .instance_protocol("HTTP")
            .instance_port(i32::from(lb.spec.target_port))
            .build()
            .map_err(|e| BackendError::failed("build listener", &resource.id, e.to_string()))?;
        let out = self
            .clients
            .elb
            .create_load_balancer()
            .load_balancer_name(&lb.spec.name)
            .listeners(listener)
            .set_subnets(Some(subnets))
            .set_security_groups(Some(groups))
            .set_tags(Some(marks.elb()))
            .send()
            .await
            .map_err(|e| creating(aws("create load balancer", &resource.id, e)))?;
        let mut current = observed(resource, lb.spec.name.clone(), lb_attrs(out.dns_name(), None));
        current.fingerprint.update = tags::PENDING.into();
        self.update_load_balancer(resource, &current, deps).await
    }

    /// Sets the health check and cross-zone, registers missing members and deregisters others,
    /// waits for the members to be InService, then records the fingerprint.
    pub(crate) async fn update_load_balancer(
        &self,
        resource: &Resource,
        current: &Observed,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        let lb = spec(resource)?;
        let elb = &self.clients.elb;
        let name = &current.provider_id;
        let id = &resource.id;
        if current.fingerprint.update == tags::PENDING {
            let hc = &lb.spec.health_check;
            let check = HealthCheck::builder()
                .target(hc.elb_target(lb.spec.target_port))
                .interval(hc.interval_secs as i32)
                .timeout(hc.timeout_secs as i32)
                .healthy_threshold(hc.healthy_threshold as i32)
                .unhealthy_threshold(hc.unhealthy_threshold as i32)
                .build()
                .map_err(|e| BackendError::failed("build health check", id, e.to_string()))?;
            elb.configure_health_check()
                .load_balancer_name(name)
                .health_check(check)
                .send()
                .await
                .map_err(|e| creating(aws("configure health check", id, e)))?;
            let attributes = LoadBalancerAttributes::builder()
                .cross_zone_load_balancing(CrossZoneLoadBalancing::builder().enabled(lb.spec.cross_zone).build())
                .build();
            elb.modify_load_balancer_attributes()
                .load_balancer_name(name)
                .load_balancer_attributes(attributes)
                .send()
                .await
                .map_err(|e| creating(aws("set cross-zone", id, e)))?;
        }
        let wanted: Vec<String> = lb
            .members
            .iter()
            .map(|m| dep(deps, id, &m.node).map(|o| o.provider_id.clone()))
            .collect::<Result<_, _>>()?;
        let health = elb
            .describe_instance_health()
            .load_balancer_name(name)
            .send()
            .await
            .map_err(|e| creating(aws("describe instance health", id, e)))?;
        let registered: Vec<String> = health
            .instance_states()
            .iter()
            .filter_map(|s| s.instance_id().map(str::to_string))
            .collect();
        let instances = |list: Vec<&String>| {
            list.into_iter()
                .map(|i| Instance::builder().instance_id(i).build())
                .collect::<Vec<_>>()
        };
        let add = instances(wanted.iter().filter(|w| !registered.contains(w)).collect());
        let remove = instances(registered.iter().filter(|r| !wanted.contains(r)).collect());
        if !add.is_empty() {
            elb.register_instances_with_load_balancer()
                .load_balancer_name(name)
                .set_instances(Some(add))
                .send()
                .await
                .map_err(|e| creating(aws("register instances", id, e)))?;
        }
        if !remove.is_empty() {
            elb.deregister_instances_from_load_balancer()
                .load_balancer_name(name)
                .set_instances(Some(remove))
                .send()
                .await
                .map_err(|e| creating(aws("deregister instances", id, e)))?;
        }
        self.wait_in_service(resource, name, &wanted).await?;
        elb.add_tags()
            .load_balancer_names(name)
            .set_tags(Some(Marks::fingerprint(resource).elb()))
            .send()
            .await
            .map_err(|e| creating(aws("tag load balancer", id, e)))?;
        let mut done = observed(resource, name.clone(), current.attrs.clone());
        if done.attrs.get("dns_name").is_none_or(|d| d.is_empty()) {
            done.attrs = self.list_load_balancer_attrs(name, resource).await?;
        }
        Ok(done)
    }

    async fn list_load_balancer_attrs(&self, name: &str, resource: &Resource) -> Result<BTreeMap<String, String>, BackendError> {
        let out = self
            .clients
            .elb
            .describe_load_balancers()
            .load_balancer_names(name)
            .send()
            .await
            .map_err(|e| aws("describe load balancer", &resource.id, e))?;
        Ok(out
            .load_balancer_descriptions()
            .first()
            .map(|lb| lb_attrs(lb.dns_name(), lb.canonical_hosted_zone_name_id()))
            .unwrap_or_default())
    }

    /// Waits until every member is InService (the lbs answer `/status`).
    async fn wait_in_service(&self, resource: &Resource, name: &str, members: &[String]) -> Result<(), BackendError> {
        if members.is_empty() {
            return Ok(());
        }
        self.wait_for("wait for lbs in service", resource.id.as_str(), || async {
            let out = self
                .clients
                .elb
                .describe_instance_health()
                .load_balancer_name(name)
                .send()
                .await
                .map_err(|e| creating(aws("describe instance health", &resource.id, e)))?;
            let in_service = members.iter().all(|m| {
                out.instance_states()
                    .iter()
                    .any(|s| s.instance_id() == Some(m) && s.state() == Some("InService"))
            });
            Ok(in_service.then_some(()))
        })
        .await
    }

    pub(crate) async fn delete_load_balancer(&self, current: &Observed) -> Result<(), BackendError> {
        // Deleting a classic ELB that is gone succeeds, so this is idempotent as it is.
        self.clients
            .elb
            .delete_load_balancer()
            .load_balancer_name(&current.provider_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete load balancer", &current.id, e))
    }
}

fn ids(deps: &Resolved, resource: &Resource, of: &[paas_core::resource::ResourceId]) -> Result<Vec<String>, BackendError> {
    of.iter()
        .map(|d| dep(deps, &resource.id, d).map(|o| o.provider_id.clone()))
        .collect()
}

fn lb_attrs(dns_name: Option<&str>, zone: Option<&str>) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    if let Some(d) = dns_name {
        attrs.insert("dns_name".to_string(), d.to_string());
    }
    if let Some(z) = zone {
        attrs.insert("hosted_zone_id".to_string(), z.to_string());
    }
    attrs
}
