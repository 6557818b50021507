//! The cluster's private artifact bucket and the `paas-node` objects in it.
//!
//! S3 cannot tag a bucket in the call that creates it, but the bucket's name is fixed by the
//! spec ([`paas_core::graph::artifact_bucket_name`]): a bucket of that name without tags is one
//! whose create was interrupted, read back as pending so the next plan finishes it. An object
//! is tagged in the request that stores it.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, Tagging,
};
use base64::Engine as _;
use paas_core::backend::Resolved;
use paas_core::graph::{NODE_OBJECT_PREFIX, artifact_bucket_id, artifact_bucket_prefix};
use paas_core::resource::{Fingerprint, Resource, ResourceSpec};
use paas_core::{BackendError, Observed};

use crate::error::{aws, code, creating, unless_gone};
use crate::network::{observed, wrong_spec};
use crate::tags::{self, Marks, PENDING};
use crate::{AwsBackend, dep};

/// Error codes of a bucket that lives in another region (same cluster name elsewhere).
const OTHER_REGION: &[&str] = &[
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
];

/// Whether `name` is an artifact bucket name of `cluster`: the prefix, then 12 hex digits.
fn is_artifact_bucket(cluster: &str, name: &str) -> bool {
    name.strip_prefix(&artifact_bucket_prefix(cluster))
        .is_some_and(|hash| hash.len() == 12 && hash.chars().all(|c| c.is_ascii_hexdigit()))
}

fn bucket_attrs(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("name".to_string(), name.to_string())])
}

impl AwsBackend {
    /// The cluster's artifact bucket (by name, then tags) and the node objects in it.
    pub(crate) async fn list_artifacts(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let s3 = &self.clients.s3;
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: an account holds at most a few pages of buckets.
        for _ in 0..100 {
            let out = s3
                .list_buckets()
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| aws("list buckets", cluster, e))?;
            for bucket in out.buckets() {
                let in_region = bucket.bucket_region().is_none_or(|r| r == self.clients.region);
                if let Some(name) = bucket.name()
                    && in_region
                    && is_artifact_bucket(cluster, name)
                {
                    names.push(name.to_string());
                }
            }
            token = out.continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut found = Vec::new();
        for name in names {
            let tagging = s3.get_bucket_tagging().bucket(&name).send().await;
            let bucket = match tagging {
                Ok(out) => {
                    let pairs = out.tag_set().iter().map(|t| (t.key(), t.value()));
                    match tags::observed(cluster, pairs, &name, bucket_attrs(&name)) {
                        Some(o) => o,
                        None => continue,
                    }
                }
                Err(e) if code(&e).as_deref() == Some("NoSuchTagSet") => unfinished_bucket(&name),
                Err(e) if code(&e).is_some_and(|c| OTHER_REGION.contains(&c.as_str())) => continue,
                Err(e) => match aws("read bucket tags", &name, e) {
                    BackendError::NotFound { .. } => continue,
                    other => return Err(other),
                },
            };
            found.extend(self.list_node_objects(cluster, &name).await?);
            found.push(bucket);
        }
        Ok(found)
    }

    /// The node objects of `bucket`, read back from their tags.
    async fn list_node_objects(&self, cluster: &str, bucket: &str) -> Result<Vec<Observed>, BackendError> {
        let s3 = &self.clients.s3;
        let mut found = Vec::new();
        for key in self.object_keys(bucket, Some(NODE_OBJECT_PREFIX)).await? {
            let read = s3.get_object_tagging().bucket(bucket).key(&key).send().await;
            let Some(tagging) = unless_gone(read.map_err(|e| aws("read object tags", &key, e)))? else {
                continue;
            };
            let pairs = tagging.tag_set().iter().map(|t| (t.key(), t.value()));
            let attrs = BTreeMap::from([
                ("bucket".to_string(), bucket.to_string()),
                ("key".to_string(), key.clone()),
                ("sha256".to_string(), key.trim_start_matches(NODE_OBJECT_PREFIX).to_string()),
            ]);
            found.extend(tags::observed(cluster, pairs, &key, attrs));
        }
        Ok(found)
    }

    /// Every key of `bucket` under `prefix`.
    async fn object_keys(&self, bucket: &str, prefix: Option<&str>) -> Result<Vec<String>, BackendError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let out = self
                .clients
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .set_prefix(prefix.map(str::to_string))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| aws("list objects", bucket, e))?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            token = out.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(keys)
    }

    /// Creates the bucket in the clients' region, then makes it private and tags it.
    pub(crate) async fn create_bucket(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::Bucket { name } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let mut call = self.clients.s3.create_bucket().bucket(name);
        // us-east-1 is the one region S3 wants no location constraint for.
        if self.clients.region != "us-east-1" {
            let location = BucketLocationConstraint::from(self.clients.region.as_str());
            call = call.create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(location).build());
        }
        match call.send().await {
            Ok(_) => {}
            Err(e) if code(&e).as_deref() == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) if code(&e).as_deref() == Some("BucketAlreadyExists") => {
                return Err(BackendError::failed(
                    "create bucket",
                    &resource.id,
                    format!("{name} belongs to another AWS account; bucket names are global: change the cluster's name or domain"),
                ));
            }
            Err(e) => return Err(aws("create bucket", &resource.id, e)),
        }
        self.finish_bucket(cluster, resource).await
    }

    /// Blocks every kind of public access, turns ACLs off, encrypts new objects with S3's own
    /// keys by default, and tags the bucket last: the tags say it is done.
    pub(crate) async fn finish_bucket(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::Bucket { name } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let s3 = &self.clients.s3;
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(block)
            .send()
            .await
            .map_err(|e| creating(aws("block public access", &resource.id, e)))?;
        let ownership = OwnershipControls::builder()
            .rules(
                OwnershipControlsRule::builder()
                    .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                    .build()
                    .expect("ownership is set"),
            )
            .build()
            .expect("rules are set");
        s3.put_bucket_ownership_controls()
            .bucket(name)
            .ownership_controls(ownership)
            .send()
            .await
            .map_err(|e| creating(aws("turn bucket ACLs off", &resource.id, e)))?;
        let encryption = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(ServerSideEncryption::Aes256)
                            .build()
                            .expect("algorithm is set"),
                    )
                    .build(),
            )
            .build()
            .expect("rules are set");
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(encryption)
            .send()
            .await
            .map_err(|e| creating(aws("encrypt bucket", &resource.id, e)))?;
        let marks = Marks::new(cluster, resource, "artifacts", None, true);
        let tagging = Tagging::builder().set_tag_set(Some(marks.s3())).build().expect("tags are set");
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| creating(aws("tag bucket", &resource.id, e)))?;
        Ok(observed(resource, name.clone(), bucket_attrs(name)))
    }

    /// Empties the bucket (everything in it is the cluster's), then deletes it.
    pub(crate) async fn delete_bucket(&self, current: &Observed) -> Result<(), BackendError> {
        let name = &current.provider_id;
        for key in self.object_keys(name, None).await? {
            self.clients
                .s3
                .delete_object()
                .bucket(name)
                .key(&key)
                .send()
                .await
                .map_err(|e| aws("delete object", &key, e))?;
        }
        self.clients
            .s3
            .delete_bucket()
            .bucket(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete bucket", &current.id, e))
    }

    /// Uploads the object from its local file, tagged in the same request, unless the bucket
    /// already holds it (the key is the content's sha256). S3 checks the body against the
    /// sha256, so a file changed since it was hashed is refused, not stored.
    pub(crate) async fn create_object(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Object {
            bucket,
            key,
            sha256,
            source,
        } = &resource.spec
        else {
            return Err(wrong_spec(resource));
        };
        let bucket = dep(deps, &resource.id, bucket)?.provider_id.clone();
        let marks = Marks::new(cluster, resource, "artifacts", None, true);
        let attrs = BTreeMap::from([
            ("bucket".to_string(), bucket.clone()),
            ("key".to_string(), key.clone()),
            ("sha256".to_string(), sha256.clone()),
        ]);
        let s3 = &self.clients.s3;
        match s3.head_object().bucket(&bucket).key(key).send().await {
            Ok(_) => {
                // There already (uploaded by a run that stopped before recording it): mark it.
                let tagging = Tagging::builder().set_tag_set(Some(marks.s3())).build().expect("tags are set");
                s3.put_object_tagging()
                    .bucket(&bucket)
                    .key(key)
                    .tagging(tagging)
                    .send()
                    .await
                    .map_err(|e| aws("tag object", &resource.id, e))?;
                return Ok(observed(resource, key.clone(), attrs));
            }
            Err(e) => match aws("look for object", &resource.id, e) {
                BackendError::NotFound { .. } => {}
                other => return Err(creating(other)),
            },
        }
        let body = ByteStream::from_path(source).await.map_err(|e| BackendError::Failed {
            op: "read node binary",
            id: resource.id.to_string(),
            message: source.display().to_string(),
            source: Some(Box::new(e)),
        })?;
        let digest = hex_to_base64(sha256)
            .ok_or_else(|| BackendError::failed("upload object", &resource.id, format!("{sha256:?} is not a hex sha256")))?;
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(body)
            .checksum_sha256(digest)
            .content_type("application/octet-stream")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .tagging(marks.s3_query())
            .send()
            .await
            .map_err(|e| creating(aws("upload object", &resource.id, e)))?;
        Ok(observed(resource, key.clone(), attrs))
    }

    pub(crate) async fn delete_object(&self, current: &Observed) -> Result<(), BackendError> {
        let bucket = current.attrs.get("bucket").cloned().unwrap_or_default();
        self.clients
            .s3
            .delete_object()
            .bucket(bucket)
            .key(&current.provider_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws("delete object", &current.id, e))
    }
}

/// A bucket of the cluster's name whose create stopped before it was tagged: the resource the
/// name says it is, pending, so the next plan finishes it in place.
fn unfinished_bucket(name: &str) -> Observed {
    let resource = Resource {
        id: artifact_bucket_id(),
        depends_on: vec![],
        spec: ResourceSpec::Bucket { name: name.to_string() },
    };
    Observed {
        id: resource.id.clone(),
        provider_id: name.to_string(),
        fingerprint: Fingerprint {
            replace: resource.fingerprint().replace,
            update: PENDING.to_string(),
        },
        attrs: bucket_attrs(name),
    }
}

/// `sha256` (hex) as S3's checksum header wants it (base64 of the bytes).
fn hex_to_base64(hex: &str) -> Option<String> {
    if hex.len() != 64 {
        return None;
    }
    let bytes = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_the_clusters_own_shape_are_its_buckets() {
        assert!(is_artifact_bucket("demo", "paas-demo-artifacts-0123456789ab"));
        assert!(!is_artifact_bucket("demo", "paas-demo-artifacts-artifacts-0123456789ab"));
        assert!(!is_artifact_bucket("demo", "paas-demo-x-artifacts-0123456789ab"));
        assert!(!is_artifact_bucket("demo", "paas-demo-artifacts-0123"));
    }

    #[test]
    fn an_untagged_bucket_reads_back_as_the_pending_artifact_bucket() {
        let o = unfinished_bucket("paas-demo-artifacts-0123456789ab");
        assert_eq!(o.id, artifact_bucket_id());
        assert_eq!(o.fingerprint.update, PENDING);
    }

    #[test]
    fn the_upload_checksum_is_the_sha256_in_base64() {
        // sha256 of the empty string.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(hex_to_base64(hex).unwrap(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(hex_to_base64("zz"), None);
    }
}
