//! The node role, its one policy and its instance profile: how instances read the artifact
//! bucket with no keys of their own.
//!
//! All three live under the cluster's IAM path ([`paas_core::graph::iam_path`]), which is how
//! `list` finds them; their tags say which resource each is. A role is tagged in the call that
//! creates it; a policy and a profile are created tagged as pending, then attached, then marked
//! done, so an interrupted create is finished by the next apply.

use std::collections::BTreeMap;

use paas_core::backend::Resolved;
use paas_core::graph::iam_path;
use paas_core::resource::{Resource, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, creating, unless_gone};
use crate::network::{observed, wrong_spec};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

fn iam_attrs(name: &str, arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), name.to_string()), ("arn".to_string(), arn.to_string())])
}

fn pairs(tags: &[aws_sdk_iam::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key(), t.value()))
}

impl AwsBackend {
    /// The cluster's roles, policies and instance profiles, found under its IAM path.
    pub(crate) async fn list_iam(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let iam = &self.clients.iam;
        let path = iam_path(cluster);
        let mut found = Vec::new();

        let roles = iam
            .list_roles()
            .path_prefix(&path)
            .send()
            .await
            .map_err(|e| aws("list roles", cluster, e))?;
        for role in roles.roles().iter().filter(|r| r.path() == path) {
            let read = iam.list_role_tags().role_name(role.role_name()).send().await;
            let Some(tags) = unless_gone(read.map_err(|e| aws("read role tags", role.role_name(), e)))? else {
                continue;
            };
            let attrs = iam_attrs(role.role_name(), role.arn());
            found.extend(tags::observed(cluster, pairs(tags.tags()), role.role_name(), attrs));
        }

        let policies = iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .path_prefix(&path)
            .send()
            .await
            .map_err(|e| aws("list policies", cluster, e))?;
        for policy in policies.policies().iter().filter(|p| p.path() == Some(path.as_str())) {
            let (Some(name), Some(arn)) = (policy.policy_name(), policy.arn()) else {
                continue;
            };
            let read = iam.list_policy_tags().policy_arn(arn).send().await;
            let Some(tags) = unless_gone(read.map_err(|e| aws("read policy tags", name, e)))? else {
                continue;
            };
            found.extend(tags::observed(cluster, pairs(tags.tags()), arn, iam_attrs(name, arn)));
        }

        // Listing profiles returns no tags; reading one does.
        let profiles = iam
            .list_instance_profiles()
            .path_prefix(&path)
            .send()
            .await
            .map_err(|e| aws("list instance profiles", cluster, e))?;
        for profile in profiles.instance_profiles().iter().filter(|p| p.path() == path) {
            let name = profile.instance_profile_name();
            let read = iam.get_instance_profile().instance_profile_name(name).send().await;
            let Some(read) = unless_gone(read.map_err(|e| aws("read instance profile", name, e)))? else {
                continue;
            };
            let Some(profile) = read.instance_profile() else { continue };
            let mut attrs = iam_attrs(name, profile.arn());
            let roles: Vec<&str> = profile.roles().iter().map(|r| r.role_name()).collect();
            attrs.insert("roles".into(), roles.join(","));
            found.extend(tags::observed(cluster, pairs(profile.tags()), name, attrs));
        }
        Ok(found)
    }

    /// Creates the role, tagged in the same call.
    pub(crate) async fn create_role(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::Role { name, path, trust } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let marks = Marks::new(cluster, resource, "node", None, true);
        let out = self
            .clients
            .iam
            .create_role()
            .role_name(name)
            .path(path)
            .assume_role_policy_document(trust)
            .description(format!("paas cluster {cluster}: instances read the node binary"))
            .set_tags(Some(marks.iam()))
            .send()
            .await
            .map_err(|e| aws("create role", &resource.id, e))?;
        let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
        Ok(observed(resource, name.clone(), iam_attrs(name, &arn)))
    }

    pub(crate) async fn delete_role(&self, current: &Observed) -> Result<(), BackendError> {
        let name = current.provider_id.clone();
        // A profile or policy of the role may still be letting go of it.
        self.delete_when_free("delete role", current.id.as_str(), || async {
            self.clients
                .iam
                .delete_role()
                .role_name(&name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("delete role", &current.id, e))
        })
        .await
    }

    /// Creates the managed policy (pending), attaches it to the role, then marks it done.
    pub(crate) async fn create_policy(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Policy { name, path, document, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let marks = Marks::new(cluster, resource, "node", None, false);
        let out = self
            .clients
            .iam
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .description(format!("paas cluster {cluster}: read the artifact bucket's objects"))
            .set_tags(Some(marks.iam()))
            .send()
            .await
            .map_err(|e| aws("create policy", &resource.id, e))?;
        let arn = out.policy().and_then(|p| p.arn()).unwrap_or_default().to_string();
        let created = observed(resource, arn.clone(), iam_attrs(name, &arn));
        self.finish_policy(resource, &created, deps).await
    }

    /// Attaches the policy to its role (again, harmlessly) and marks it done.
    pub(crate) async fn finish_policy(&self, resource: &Resource, current: &Observed, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Policy { role, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let role = dep(deps, &resource.id, role)?;
        let arn = &current.provider_id;
        let iam = &self.clients.iam;
        iam.attach_role_policy()
            .role_name(&role.provider_id)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| creating(aws("attach policy", &resource.id, e)))?;
        iam.tag_policy()
            .policy_arn(arn)
            .set_tags(Some(Marks::fingerprint(resource).iam()))
            .send()
            .await
            .map_err(|e| creating(aws("tag policy", &resource.id, e)))?;
        Ok(observed(resource, arn.clone(), current.attrs.clone()))
    }

    /// Detaches the policy from every role, then deletes it.
    pub(crate) async fn delete_policy(&self, current: &Observed) -> Result<(), BackendError> {
        let iam = &self.clients.iam;
        let arn = &current.provider_id;
        let entities = iam
            .list_entities_for_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws("list policy attachments", &current.id, e))?;
        for role in entities.policy_roles() {
            if let Some(name) = role.role_name() {
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(|e| aws("detach policy", &current.id, e))?;
            }
        }
        iam.delete_policy()
            .policy_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete policy", &current.id, e))
    }

    /// Creates the instance profile (pending), puts the role in it, then marks it done.
    pub(crate) async fn create_instance_profile(
        &self,
        cluster: &str,
        resource: &Resource,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        let ResourceSpec::InstanceProfile { name, path, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let marks = Marks::new(cluster, resource, "node", None, false);
        let out = self
            .clients
            .iam
            .create_instance_profile()
            .instance_profile_name(name)
            .path(path)
            .set_tags(Some(marks.iam()))
            .send()
            .await
            .map_err(|e| aws("create instance profile", &resource.id, e))?;
        let arn = out.instance_profile().map(|p| p.arn().to_string()).unwrap_or_default();
        let created = observed(resource, name.clone(), iam_attrs(name, &arn));
        self.finish_instance_profile(resource, &created, deps).await
    }

    /// Puts the role in the profile unless it is there, and marks the profile done.
    pub(crate) async fn finish_instance_profile(
        &self,
        resource: &Resource,
        current: &Observed,
        deps: &Resolved,
    ) -> Result<Observed, BackendError> {
        let ResourceSpec::InstanceProfile { role, .. } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let role = &dep(deps, &resource.id, role)?.provider_id;
        let iam = &self.clients.iam;
        let name = &current.provider_id;
        let read = iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| creating(aws("read instance profile", &resource.id, e)))?;
        let has_role = read
            .instance_profile()
            .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == role));
        if !has_role {
            iam.add_role_to_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
                .await
                .map_err(|e| creating(aws("add role to instance profile", &resource.id, e)))?;
        }
        iam.tag_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(Marks::fingerprint(resource).iam()))
            .send()
            .await
            .map_err(|e| creating(aws("tag instance profile", &resource.id, e)))?;
        let mut attrs = current.attrs.clone();
        attrs.insert("roles".into(), role.clone());
        Ok(observed(resource, name.clone(), attrs))
    }

    /// Takes every role out of the profile, then deletes it.
    pub(crate) async fn delete_instance_profile(&self, current: &Observed) -> Result<(), BackendError> {
        let iam = &self.clients.iam;
        let name = &current.provider_id;
        let read = iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| aws("read instance profile", &current.id, e))?;
        for role in read.instance_profile().map(|p| p.roles()).unwrap_or_default() {
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role.role_name())
                .send()
                .await
                .map_err(|e| aws("remove role from instance profile", &current.id, e))?;
        }
        iam.delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete instance profile", &current.id, e))
    }
}
