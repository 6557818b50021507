//! The labels on everything the backend creates: enough to rebuild each [`Observed`] with no
//! state file, and to find a cluster's objects without touching anyone else's.

use std::collections::{BTreeMap, HashMap};

use paas_core::backend::Observed;
use paas_core::resource::{Fingerprint, Resource, ResourceId};

/// The cluster an object belongs to.
pub const CLUSTER: &str = "paas.cluster";
/// The resource id, `node/master-1`.
pub const RESOURCE: &str = "paas.resource";
/// The node's role (`master`, `slave`, `lb`, `adminlb`) or `elb`.
pub const ROLE: &str = "paas.role";
/// The node's availability zone (`sim-a`).
pub const AZ: &str = "paas.az";
/// The node's address on the cluster network.
pub const ADDRESS: &str = "paas.address";
/// The two halves of the resource's fingerprint.
pub const FINGERPRINT_REPLACE: &str = "paas.fingerprint.replace";
pub const FINGERPRINT_UPDATE: &str = "paas.fingerprint.update";

/// Labels for a new object of `cluster` made from `resource`, plus `extra` ones.
pub fn for_resource(cluster: &str, resource: &Resource, extra: &[(&str, String)]) -> HashMap<String, String> {
    let fingerprint = resource.fingerprint();
    let mut labels: HashMap<String, String> = [
        (CLUSTER, cluster.to_string()),
        (RESOURCE, resource.id.to_string()),
        (FINGERPRINT_REPLACE, fingerprint.replace),
        (FINGERPRINT_UPDATE, fingerprint.update),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    labels
}

/// The label filter that selects a cluster's objects, for list calls.
pub fn cluster_filter(cluster: &str) -> HashMap<String, Vec<String>> {
    [("label".to_string(), vec![format!("{CLUSTER}={cluster}")])].into()
}

/// Rebuilds an [`Observed`] from an object's labels; `None` when the labels are not ours
/// (or were written for another cluster).
pub fn observed(
    cluster: &str,
    provider_id: &str,
    labels: &HashMap<String, String>,
    mut attrs: BTreeMap<String, String>,
) -> Option<Observed> {
    if labels.get(CLUSTER).map(String::as_str) != Some(cluster) {
        return None;
    }
    let id = ResourceId::parse(labels.get(RESOURCE)?)?;
    let fingerprint = Fingerprint {
        replace: labels.get(FINGERPRINT_REPLACE)?.clone(),
        update: labels.get(FINGERPRINT_UPDATE)?.clone(),
    };
    for (label, attr) in [(ROLE, "role"), (AZ, "az"), (ADDRESS, "address")] {
        if let Some(value) = labels.get(label) {
            attrs.entry(attr.to_string()).or_insert_with(|| value.clone());
        }
    }
    Some(Observed {
        id,
        provider_id: provider_id.to_string(),
        fingerprint,
        attrs,
    })
}
