//! The Route53 hosted zone of the domain and its records.
//!
//! Records take no tags, so each record the cluster owns is paired with a TXT marker record at
//! `<resource name>._paas.<domain>` holding the resource id, the fingerprint and the record's
//! name; both are written and deleted in one atomic change batch. Zones carry tags, and their
//! caller reference (set atomically at creation) names the cluster and fingerprint too.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType, TagResourceType};
use paas_core::backend::Resolved;
use paas_core::resource::{Fingerprint, Resource, ResourceId, ResourceKind, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, creating};
use crate::network::{observed, wrong_spec};
use crate::tags::Marks;
use crate::{AwsBackend, dep};

/// Route53 writes `*` as `\052` and ends names with a dot.
fn normalize(name: &str) -> String {
    name.replace("\\052", "*").trim_end_matches('.').to_string()
}

fn zone_id(id: &str) -> &str {
    id.trim_start_matches("/hostedzone/")
}

fn marker_name(resource: &ResourceId, domain: &str) -> String {
    format!("{}._paas.{domain}", resource.name())
}

fn caller_prefix(cluster: &str) -> String {
    format!("paas:{cluster}:")
}

fn change(action: ChangeAction, set: ResourceRecordSet) -> Result<Change, BackendError> {
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| BackendError::failed("build dns change", "route53", e.to_string()))
}

fn batch(changes: Vec<Change>) -> Result<ChangeBatch, BackendError> {
    ChangeBatch::builder()
        .set_changes(Some(changes))
        .build()
        .map_err(|e| BackendError::failed("build dns change", "route53", e.to_string()))
}

fn record(name: &str, kind: RrType, ttl: i64, values: &[String]) -> Result<ResourceRecordSet, BackendError> {
    let records = values
        .iter()
        .map(|v| ResourceRecord::builder().value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackendError::failed("build dns record", name, e.to_string()))?;
    ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(ttl)
        .set_resource_records(Some(records))
        .build()
        .map_err(|e| BackendError::failed("build dns record", name, e.to_string()))
}

/// Reads a marker's TXT strings back.
fn parse_marker(set: &ResourceRecordSet) -> BTreeMap<String, String> {
    set.resource_records()
        .iter()
        .flat_map(|r| r.value().split("\" \""))
        .filter_map(|part| {
            let part = part.trim_matches('"');
            part.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

impl AwsBackend {
    /// The cluster's zones (by caller reference) and the records their markers name.
    pub(crate) async fn list_dns(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let r53 = &self.clients.route53;
        let prefix = caller_prefix(cluster);
        let mut zones = Vec::new();
        let mut marker: Option<String> = None;
        // Bounded: an account holds at most a few hundred zones by default.
        for _ in 0..100 {
            let out = r53
                .list_hosted_zones()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| aws("list hosted zones", cluster, e))?;
            zones.extend(
                out.hosted_zones()
                    .iter()
                    .filter(|z| z.caller_reference().starts_with(&prefix))
                    .cloned(),
            );
            marker = out.next_marker().map(str::to_string);
            if !out.is_truncated() || marker.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for zone in zones {
            let domain = normalize(zone.name());
            let id = zone_id(zone.id()).to_string();
            let replace = zone.caller_reference()[prefix.len()..].split(':').next().unwrap_or_default();
            let servers = r53
                .get_hosted_zone()
                .id(&id)
                .send()
                .await
                .map_err(|e| aws("get hosted zone", &id, e))?
                .delegation_set()
                .map(|d| d.name_servers().join(","))
                .unwrap_or_default();
            found.push(Observed {
                id: ResourceId::new(ResourceKind::DnsZone, &domain),
                provider_id: id.clone(),
                fingerprint: Fingerprint {
                    replace: replace.to_string(),
                    // A zone has nothing to update in place: its update hash is that of no settings.
                    update: Resource {
                        id: ResourceId::new(ResourceKind::DnsZone, &domain),
                        depends_on: vec![],
                        spec: ResourceSpec::DnsZone { domain: domain.clone() },
                    }
                    .fingerprint()
                    .update,
                },
                attrs: BTreeMap::from([("name_servers".to_string(), servers), ("domain".to_string(), domain.clone())]),
            });
            for set in self.record_sets(&id).await? {
                if set.r#type() != &RrType::Txt || !normalize(set.name()).ends_with(&format!("._paas.{domain}")) {
                    continue;
                }
                let fields = parse_marker(&set);
                let (Some(resource), Some(name)) = (fields.get("resource").and_then(|r| ResourceId::parse(r)), fields.get("name")) else {
                    continue;
                };
                found.push(Observed {
                    id: resource,
                    provider_id: format!("{id}|{name}|{domain}"),
                    fingerprint: Fingerprint {
                        replace: fields.get("replace").cloned().unwrap_or_default(),
                        update: fields.get("update").cloned().unwrap_or_default(),
                    },
                    attrs: BTreeMap::from([("name".to_string(), name.clone())]),
                });
            }
        }
        Ok(found)
    }

    async fn record_sets(&self, zone: &str) -> Result<Vec<ResourceRecordSet>, BackendError> {
        let mut sets = Vec::new();
        let mut start: Option<(String, RrType)> = None;
        // Bounded: a cluster's zone holds a handful of records.
        for _ in 0..100 {
            let mut call = self.clients.route53.list_resource_record_sets().hosted_zone_id(zone);
            if let Some((name, kind)) = start.take() {
                call = call.start_record_name(name).start_record_type(kind);
            }
            let out = call.send().await.map_err(|e| aws("list dns records", zone, e))?;
            sets.extend(out.resource_record_sets().iter().cloned());
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(name), Some(kind)) => start = Some((name.to_string(), kind.clone())),
                _ => break,
            }
        }
        Ok(sets)
    }

    /// Creates the zone with a caller reference naming the cluster and fingerprint (so it is
    /// found even if tagging it is interrupted), then tags it.
    pub(crate) async fn create_zone(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::DnsZone { domain } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let reference = format!("{}{}:{nonce}", caller_prefix(cluster), resource.fingerprint().replace);
        let out = self
            .clients
            .route53
            .create_hosted_zone()
            .name(domain)
            .caller_reference(reference)
            .send()
            .await
            .map_err(|e| aws("create hosted zone", &resource.id, e))?;
        let id = out.hosted_zone().map(|z| zone_id(z.id()).to_string()).unwrap_or_default();
        let servers = out.delegation_set().map(|d| d.name_servers().join(",")).unwrap_or_default();
        self.clients
            .route53
            .change_tags_for_resource()
            .resource_type(TagResourceType::Hostedzone)
            .resource_id(&id)
            .set_add_tags(Some(Marks::new(cluster, resource, "dns-zone", None, true).route53()))
            .send()
            .await
            .map_err(|e| creating(aws("tag hosted zone", &resource.id, e)))?;
        Ok(observed(
            resource,
            id,
            BTreeMap::from([("name_servers".to_string(), servers), ("domain".to_string(), domain.clone())]),
        ))
    }

    /// Deletes what records remain, then the zone.
    pub(crate) async fn delete_zone(&self, current: &Observed) -> Result<(), BackendError> {
        let sets = self.record_sets(&current.provider_id).await?;
        let changes = sets
            .into_iter()
            .filter(|s| !matches!(s.r#type(), RrType::Soa | RrType::Ns))
            .map(|s| change(ChangeAction::Delete, s))
            .collect::<Result<Vec<_>, _>>()?;
        if !changes.is_empty() {
            self.clients
                .route53
                .change_resource_record_sets()
                .hosted_zone_id(&current.provider_id)
                .change_batch(batch(changes)?)
                .send()
                .await
                .map_err(|e| aws("delete dns records", &current.id, e))?;
        }
        self.clients
            .route53
            .delete_hosted_zone()
            .id(&current.provider_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete hosted zone", &current.id, e))
    }

    /// Writes the record and its marker in one batch: an alias to the ELB where the ELB has a
    /// canonical zone, a CNAME to its DNS name otherwise, an A record to a node's public address.
    pub(crate) async fn upsert_record(&self, _cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::DnsRecord { name, target } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let zone = dep(deps, &resource.id, &resource.depends_on[0])?;
        let domain = zone.attrs.get("domain").cloned().unwrap_or_else(|| zone.id.name().to_string());
        let target_observed = dep(deps, &resource.id, target)?;
        let set = match target.kind() {
            ResourceKind::LoadBalancer => {
                let dns_name = target_observed
                    .attrs
                    .get("dns_name")
                    .ok_or_else(|| BackendError::failed("write dns record", &resource.id, "the load balancer has no DNS name"))?;
                match target_observed.attrs.get("hosted_zone_id") {
                    Some(zone_id) => ResourceRecordSet::builder()
                        .name(name)
                        .r#type(RrType::A)
                        .alias_target(
                            AliasTarget::builder()
                                .hosted_zone_id(zone_id)
                                .dns_name(dns_name)
                                .evaluate_target_health(true)
                                .build()
                                .map_err(|e| BackendError::failed("build alias", &resource.id, e.to_string()))?,
                        )
                        .build()
                        .map_err(|e| BackendError::failed("build alias", &resource.id, e.to_string()))?,
                    None => record(name, RrType::Cname, 60, std::slice::from_ref(dns_name))?,
                }
            }
            _ => {
                let ip = target_observed
                    .attrs
                    .get("public_ip")
                    .ok_or_else(|| BackendError::failed("write dns record", &resource.id, format!("{target} has no public address")))?;
                record(name, RrType::A, 60, std::slice::from_ref(ip))?
            }
        };
        let fingerprint = resource.fingerprint();
        let marker = record(
            &marker_name(&resource.id, &domain),
            RrType::Txt,
            300,
            &[format!(
                "\"resource={}\" \"name={name}\" \"replace={}\" \"update={}\"",
                resource.id, fingerprint.replace, fingerprint.update
            )],
        )?;
        self.clients
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(&zone.provider_id)
            .change_batch(batch(vec![
                change(ChangeAction::Upsert, set)?,
                change(ChangeAction::Upsert, marker)?,
            ])?)
            .send()
            .await
            .map_err(|e| creating(aws("write dns record", &resource.id, e)))?;
        Ok(observed(
            resource,
            format!("{}|{name}|{domain}", zone.provider_id),
            BTreeMap::from([("name".to_string(), name.clone())]),
        ))
    }

    /// Deletes the record and its marker, as they are now, in one batch.
    pub(crate) async fn delete_record(&self, current: &Observed) -> Result<(), BackendError> {
        let mut parts = current.provider_id.splitn(3, '|');
        let (Some(zone), Some(name), Some(domain)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(BackendError::failed("delete dns record", &current.id, "unreadable provider id"));
        };
        let sets = match self.record_sets(zone).await {
            Err(BackendError::NotFound { .. }) => return Ok(()),
            other => other?,
        };
        let marker = marker_name(&current.id, domain);
        let changes = sets
            .into_iter()
            .filter(|s| {
                let n = normalize(s.name());
                (n == marker && s.r#type() == &RrType::Txt) || (n == name && matches!(s.r#type(), RrType::A | RrType::Cname))
            })
            .map(|s| change(ChangeAction::Delete, s))
            .collect::<Result<Vec<_>, _>>()?;
        if changes.is_empty() {
            return Ok(());
        }
        self.clients
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch(changes)?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete dns record", &current.id, e))
    }
}
