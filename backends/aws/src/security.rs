//! Security groups and their ingress rules.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use paas_core::backend::Resolved;
use paas_core::resource::{IngressRule, Resource, ResourceSpec, RuleSource};
use paas_core::{BackendError, Observed};

use crate::error::{aws, creating};
use crate::network::{observed, wrong_spec};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

impl AwsBackend {
    pub(crate) async fn list_security_groups(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let out = self
            .clients
            .ec2
            .describe_security_groups()
            .filters(tags::cluster_filter(cluster))
            .send()
            .await
            .map_err(|e| aws("describe security groups", cluster, e))?;
        Ok(out
            .security_groups()
            .iter()
            .filter_map(|g| {
                tags::observed(
                    cluster,
                    tags::ec2_pairs(g.tags()),
                    g.group_id().unwrap_or_default(),
                    BTreeMap::from([("name".to_string(), g.group_name().unwrap_or_default().to_string())]),
                )
            })
            .collect())
    }

    /// Creates the group tagged as pending, then authorizes its rules.
    pub(crate) async fn create_security_group(
        &self,
        cluster: &str,
        resource: &Resource,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        let ResourceSpec::SecurityGroup { name, description, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let vpc = &dep(deps, &resource.id, &resource.depends_on[0])?.provider_id;
        let marks = Marks::new(cluster, resource, "security-group", None, false);
        let out = self
            .clients
            .ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc)
            .tag_specifications(marks.ec2_spec(ResourceType::SecurityGroup))
            .send()
            .await
            .map_err(|e| creating(aws("create security group", &resource.id, e)))?;
        let id = out.group_id().unwrap_or_default().to_string();
        let current = observed(resource, id, BTreeMap::new());
        self.set_rules(resource, &current, deps, true).await
    }

    pub(crate) async fn update_security_group(
        &self,
        resource: &Resource,
        current: &Observed,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        self.set_rules(resource, current, deps, false).await
    }

    /// Replaces the group's ingress rules by the desired ones: revokes what is there (unless the
    /// group is `fresh`), then authorizes the rules in one call.
    async fn set_rules(&self, resource: &Resource, current: &Observed, deps: &Resolved, fresh: bool) -> Result<Observed, BackendError> {
        let ResourceSpec::SecurityGroup { name, rules, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let ec2 = &self.clients.ec2;
        let group = &current.provider_id;
        if !fresh {
            let out = ec2
                .describe_security_groups()
                .group_ids(group)
                .send()
                .await
                .map_err(|e| creating(aws("describe security group", &resource.id, e)))?;
            let existing: Vec<IpPermission> = out
                .security_groups()
                .first()
                .map(|g| g.ip_permissions().to_vec())
                .unwrap_or_default();
            if !existing.is_empty() {
                ec2.revoke_security_group_ingress()
                    .group_id(group)
                    .set_ip_permissions(Some(existing))
                    .send()
                    .await
                    .map_err(|e| aws("revoke security group ingress", &resource.id, e))?;
            }
        }
        let permissions = rules
            .iter()
            .map(|r| permission(r, group, deps, resource))
            .collect::<Result<Vec<_>, _>>()?;
        if !permissions.is_empty() {
            ec2.authorize_security_group_ingress()
                .group_id(group)
                .set_ip_permissions(Some(permissions))
                .send()
                .await
                .map_err(|e| creating(aws("authorize security group ingress", &resource.id, e)))?;
        }
        self.tag(group, resource).await?;
        Ok(observed(
            resource,
            group.clone(),
            BTreeMap::from([("name".to_string(), name.clone())]),
        ))
    }

    pub(crate) async fn delete_security_group(&self, current: &Observed) -> Result<(), BackendError> {
        // Another group's rule may still name this one, or an instance's ENI may still use it.
        self.delete_when_free("delete security group", current.id.as_str(), || async {
            self.clients
                .ec2
                .delete_security_group()
                .group_id(&current.provider_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete security group", &current.id, e))
        })
        .await
    }
}

fn permission(rule: &IngressRule, group: &str, deps: &Resolved, resource: &Resource) -> Result<IpPermission, BackendError> {
    let protocol = if rule.protocol == "all" { "-1" } else { rule.protocol.as_str() };
    let mut p = IpPermission::builder().ip_protocol(protocol);
    if protocol != "-1" {
        p = p.from_port(i32::from(rule.from_port)).to_port(i32::from(rule.to_port));
    }
    p = match &rule.source {
        RuleSource::Cidr(cidr) => p.ip_ranges(IpRange::builder().cidr_ip(cidr).build()),
        RuleSource::SameGroup => p.user_id_group_pairs(UserIdGroupPair::builder().group_id(group).build()),
        RuleSource::Group(other) => p.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(&dep(deps, &resource.id, other)?.provider_id)
                .build(),
        ),
    };
    Ok(p.build())
}
