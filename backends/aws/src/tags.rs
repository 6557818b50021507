//! The marks every created resource carries, so `list` finds the cluster with no state file.

use std::collections::BTreeMap;

use paas_core::Observed;
use paas_core::resource::{Fingerprint, Resource, ResourceId};

pub const CLUSTER: &str = "paas:cluster";
pub const ROLE: &str = "paas:role";
pub const AZ: &str = "paas:az";
pub const RESOURCE: &str = "paas:resource";
pub const FINGERPRINT_REPLACE: &str = "paas:fingerprint-replace";
pub const FINGERPRINT_UPDATE: &str = "paas:fingerprint-update";
pub const NAME: &str = "Name";

/// The update fingerprint of a resource whose creation takes several calls and has not
/// finished: the next plan then updates it, which redoes the remaining calls.
pub const PENDING: &str = "pending";

/// The tags of one resource, as key/value pairs.
#[derive(Debug, Clone)]
pub struct Marks(pub Vec<(String, String)>);

impl Marks {
    /// The marks of `resource` of `cluster`. `role` is the node role or the resource kind;
    /// `complete` false writes [`PENDING`] as the update fingerprint.
    pub fn new(cluster: &str, resource: &Resource, role: &str, az: Option<&str>, complete: bool) -> Marks {
        let fingerprint = resource.fingerprint();
        let mut tags = vec![
            (CLUSTER.to_string(), cluster.to_string()),
            (RESOURCE.to_string(), resource.id.to_string()),
            (ROLE.to_string(), role.to_string()),
            (FINGERPRINT_REPLACE.to_string(), fingerprint.replace),
            (
                FINGERPRINT_UPDATE.to_string(),
                if complete { fingerprint.update } else { PENDING.to_string() },
            ),
            (NAME.to_string(), format!("{cluster}-{}", resource.id.name())),
        ];
        if let Some(az) = az {
            tags.push((AZ.to_string(), az.to_string()));
        }
        Marks(tags)
    }

    /// Only the fingerprint tags: what finishing or updating a resource rewrites.
    pub fn fingerprint(resource: &Resource) -> Marks {
        let fingerprint = resource.fingerprint();
        Marks(vec![
            (FINGERPRINT_REPLACE.to_string(), fingerprint.replace),
            (FINGERPRINT_UPDATE.to_string(), fingerprint.update),
        ])
    }

    pub fn ec2(&self) -> Vec<aws_sdk_ec2::types::Tag> {
        self.0
            .iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
            .collect()
    }

    /// A tag specification for a create call of `resource_type`.
    pub fn ec2_spec(&self, resource_type: aws_sdk_ec2::types::ResourceType) -> aws_sdk_ec2::types::TagSpecification {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(resource_type)
            .set_tags(Some(self.ec2()))
            .build()
    }

    pub fn elb(&self) -> Vec<aws_sdk_elasticloadbalancing::types::Tag> {
        self.0
            .iter()
            .map(|(k, v)| {
                aws_sdk_elasticloadbalancing::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key is set")
            })
            .collect()
    }

    pub fn route53(&self) -> Vec<aws_sdk_route53::types::Tag> {
        self.0
            .iter()
            .map(|(k, v)| aws_sdk_route53::types::Tag::builder().key(k).value(v).build())
            .collect()
    }
}

impl Marks {
    pub fn s3(&self) -> Vec<aws_sdk_s3::types::Tag> {
        self.0
            .iter()
            .map(|(k, v)| {
                aws_sdk_s3::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect()
    }

    /// The tags as the query string S3's PutObject takes (`x-amz-tagging`), so an object is
    /// tagged in the same request that stores it.
    pub fn s3_query(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    pub fn iam(&self) -> Vec<aws_sdk_iam::types::Tag> {
        self.0
            .iter()
            .map(|(k, v)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The filter selecting a cluster's EC2 resources.
pub fn cluster_filter(cluster: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{CLUSTER}"))
        .values(cluster)
        .build()
}

/// The filter selecting one resource of a cluster.
pub fn resource_filter(id: &ResourceId) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{RESOURCE}"))
        .values(id.as_str())
        .build()
}

/// Reads the marks back: `None` when the tags are not of `cluster` or name no resource.
pub fn observed<'a>(
    cluster: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    provider_id: &str,
    attrs: BTreeMap<String, String>,
) -> Option<Observed> {
    let tags: BTreeMap<&str, &str> = tags.into_iter().collect();
    if tags.get(CLUSTER) != Some(&cluster) {
        return None;
    }
    let id = ResourceId::parse(tags.get(RESOURCE)?)?;
    Some(Observed {
        id,
        provider_id: provider_id.to_string(),
        fingerprint: Fingerprint {
            replace: tags.get(FINGERPRINT_REPLACE).copied().unwrap_or_default().to_string(),
            update: tags.get(FINGERPRINT_UPDATE).copied().unwrap_or_default().to_string(),
        },
        attrs,
    })
}

/// The key/value pairs of EC2 tags.
pub fn ec2_pairs(tags: &[aws_sdk_ec2::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().filter_map(|t| Some((t.key()?, t.value()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_core::resource::{ResourceKind, ResourceSpec};

    fn subnet() -> Resource {
        Resource {
            id: ResourceId::new(ResourceKind::Subnet, "front-a"),
            depends_on: vec![],
            spec: ResourceSpec::Subnet {
                az: "eu-west-1a".into(),
                tier: paas_core::topology::Tier::Front,
                cidr: "10.20.0.0/20".parse().unwrap(),
            },
        }
    }

    #[test]
    fn marks_read_back_as_the_resource_of_their_cluster_only() {
        let marks = Marks::new("demo", &subnet(), "front", Some("eu-west-1a"), true);
        let pairs = || marks.0.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let o = observed("demo", pairs(), "subnet-1", BTreeMap::new()).unwrap();
        assert_eq!(o.id, subnet().id);
        assert_eq!(o.fingerprint, subnet().fingerprint());
        assert!(observed("other", pairs(), "subnet-1", BTreeMap::new()).is_none());
        let names: Vec<_> = marks.0.iter().map(|(k, _)| k.as_str()).collect();
        for key in [CLUSTER, ROLE, AZ, RESOURCE, FINGERPRINT_REPLACE, FINGERPRINT_UPDATE, NAME] {
            assert!(names.contains(&key), "{key}");
        }
    }

    #[test]
    fn object_tags_travel_as_an_encoded_query() {
        let marks = Marks(vec![
            ("paas:resource".into(), "object/paas-node".into()),
            ("Name".into(), "a b".into()),
        ]);
        assert_eq!(marks.s3_query(), "paas%3Aresource=object%2Fpaas-node&Name=a%20b");
    }

    #[test]
    fn an_unfinished_resource_reads_back_as_pending_so_the_next_plan_updates_it() {
        let marks = Marks::new("demo", &subnet(), "front", None, false);
        let o = observed("demo", marks.0.iter().map(|(k, v)| (k.as_str(), v.as_str())), "x", BTreeMap::new()).unwrap();
        assert_eq!(o.fingerprint.update, PENDING);
        assert_eq!(o.fingerprint.replace, subnet().fingerprint().replace);
    }
}
