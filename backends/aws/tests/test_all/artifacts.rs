//! The artifact bucket, the node binary in it, and the role, policy and instance profile that
//! let instances (and nothing else) read it — against moto.

use std::collections::BTreeSet;

use paas_core::engine::{Action, Engine, StateStore};
use paas_core::graph::{artifact_bucket_prefix, iam_path};
use paas_core::resource::ResourceKind;
use paas_core::{Backend, Target};

use crate::cluster::{graph, graph_with, ids, options, spec};
use crate::moto::{Moto, node_binary};

/// Percent-decodes IAM's policy documents (IAM returns them URL-encoded).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The cluster's artifact buckets in the account.
async fn buckets(backend: &paas_aws::AwsBackend, cluster: &str) -> Vec<String> {
    let out = backend.clients().s3.list_buckets().send().await.unwrap();
    out.buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.starts_with(&artifact_bucket_prefix(cluster)))
        .map(str::to_string)
        .collect()
}

/// (roles, policies, instance profiles) under the cluster's IAM path.
async fn iam_counts(backend: &paas_aws::AwsBackend, cluster: &str) -> (usize, usize, usize) {
    let iam = &backend.clients().iam;
    let path = iam_path(cluster);
    let roles = iam.list_roles().path_prefix(&path).send().await.unwrap().roles().len();
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix(&path)
        .send()
        .await
        .unwrap()
        .policies()
        .len();
    let profiles = iam
        .list_instance_profiles()
        .send()
        .await
        .unwrap()
        .instance_profiles()
        .iter()
        .filter(|p| p.path() == path)
        .count();
    (roles, policies, profiles)
}

#[tokio::test]
async fn the_node_binary_is_delivered_from_a_private_bucket_through_a_read_only_role_made_once() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(1, 1);
    let binary = node_binary(b"the node binary");
    let g = graph_with(&backend, &spec, &binary).await;
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "demo", "aws"), options());
    engine.apply(&g, "up", &|_| {}).await.unwrap();
    let (_, again) = engine.apply(&g, "up", &|_| {}).await.unwrap();
    assert!(again.done.is_empty(), "a second up creates nothing: {:?}", again.done);

    // One bucket, private.
    let names = buckets(&backend, "demo").await;
    assert_eq!(names.len(), 1, "{names:?}");
    let bucket = &names[0];
    let s3 = &backend.clients().s3;
    let block = s3.get_public_access_block().bucket(bucket).send().await.unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let policy = s3.get_bucket_policy().bucket(bucket).send().await;
    let code = policy.as_ref().err().and_then(paas_aws::error::code);
    assert_eq!(code.as_deref(), Some("NoSuchBucketPolicy"), "the bucket has no policy: {policy:?}");
    let acl = s3.get_bucket_acl().bucket(bucket).send().await.unwrap();
    for grant in acl.grants() {
        let uri = grant.grantee().and_then(|g| g.uri()).unwrap_or_default();
        assert!(
            !uri.contains("AllUsers") && !uri.contains("AuthenticatedUsers"),
            "public grant {grant:?}"
        );
    }
    let encryption = s3.get_bucket_encryption().bucket(bucket).send().await.unwrap();
    let rule = &encryption.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default().unwrap().sse_algorithm().as_str(),
        "AES256"
    );

    // One object, keyed by the binary's sha256, holding exactly its bytes.
    let objects = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let keys: Vec<_> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [format!("paas-node/{}", binary.sha256)]);
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(keys[0])
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    assert_eq!(body.into_bytes().as_ref(), std::fs::read(&binary.path).unwrap().as_slice());

    // One role EC2 may assume, allowed s3:GetObject on that bucket's objects and nothing else.
    assert_eq!(iam_counts(&backend, "demo").await, (1, 1, 1));
    let iam = &backend.clients().iam;
    let role = iam.get_role().role_name("paas-demo-node").send().await.unwrap();
    let trust = decode(role.role().unwrap().assume_role_policy_document().unwrap());
    assert!(trust.contains("ec2.amazonaws.com") && trust.contains("sts:AssumeRole"), "{trust}");
    let inline = iam.list_role_policies().role_name("paas-demo-node").send().await.unwrap();
    assert!(inline.policy_names().is_empty(), "no inline policies");
    let attached = iam.list_attached_role_policies().role_name("paas-demo-node").send().await.unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    let arn = attached.attached_policies()[0].policy_arn().unwrap();
    let version = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    let document = iam.get_policy_version().policy_arn(arn).version_id(version).send().await.unwrap();
    let document: serde_json::Value = serde_json::from_str(&decode(document.policy_version().unwrap().document().unwrap())).unwrap();
    let statements = document["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{document}");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(statements[0]["Action"], "s3:GetObject");
    assert_eq!(statements[0]["Resource"], format!("arn:aws:s3:::{bucket}/*"));
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("paas-demo-node")
        .send()
        .await
        .unwrap();
    let profile = profile.instance_profile().unwrap();
    assert_eq!(
        profile.roles().iter().map(|r| r.role_name()).collect::<Vec<_>>(),
        ["paas-demo-node"]
    );

    // Every instance carries the profile and requires IMDSv2.
    let instances = backend.clients().ec2.describe_instances().send().await.unwrap();
    let instances: Vec<_> = instances.reservations().iter().flat_map(|r| r.instances()).collect();
    assert_eq!(instances.len(), 7, "3 masters, a slave, 2 lbs, the adminlb");
    for i in instances {
        let options = i.metadata_options().unwrap();
        assert_eq!(options.http_tokens().map(|t| t.as_str()), Some("required"), "{:?}", i.instance_id());
        assert_eq!(options.http_put_response_hop_limit(), Some(1));
        assert_eq!(i.iam_instance_profile().and_then(|p| p.arn()), Some(profile.arn()));
    }
}

#[tokio::test]
async fn the_artifacts_are_found_from_their_tags_and_a_new_binary_replaces_object_and_instances() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(1, 1);
    let g = graph(&backend, &spec).await;
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "demo", "aws"), options());
    engine.apply(&g, "up", &|_| {}).await.unwrap();

    // No state file needed: the tags say what each is.
    let observed = backend.list("demo").await.unwrap();
    let kinds: BTreeSet<_> = observed.iter().map(|o| o.kind()).collect();
    for kind in [
        ResourceKind::Bucket,
        ResourceKind::Object,
        ResourceKind::Role,
        ResourceKind::Policy,
        ResourceKind::InstanceProfile,
    ] {
        assert!(kinds.contains(&kind), "{kind} not listed");
    }
    assert!(paas_core::engine::plan(&g, &observed).is_empty());

    let newer = graph_with(&backend, &spec, &node_binary(b"the next build")).await;
    let plan = paas_core::engine::plan(&newer, &observed);
    let replaced: BTreeSet<_> = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Replace)
        .map(|s| s.id.kind())
        .collect();
    assert_eq!(replaced, BTreeSet::from([ResourceKind::Object, ResourceKind::Node]));
    assert_eq!(plan.count(Action::Replace), 1 + 7);
    assert_eq!(plan.rolling.len(), 7, "every instance rolls");
    assert_eq!(
        plan.steps.iter().find(|s| s.id.as_str() == "load-balancer/elb").map(|s| s.action),
        Some(Action::Update)
    );

    // Not applied here: moto keeps a terminated instance's private address taken until the
    // instance is purged (its `Subnet.request_ip` raises, a 500), so an instance cannot come
    // back at its fixed address. The roll itself is applied on the in-memory backend
    // (core/tests/engine.rs).
}

#[tokio::test]
async fn an_up_interrupted_among_the_artifacts_converges_with_one_of_each_and_down_removes_them() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(1, 1);
    let g = graph(&backend, &spec).await;
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "demo", "aws"), options());
    // The first list takes 18 requests; each failure lands on a later create of the run.
    let mut failed = 0;
    for nth in (19..=40).step_by(3) {
        backend.clients().counter.fail_after(Some(nth));
        failed += usize::from(engine.apply(&g, "up", &|_| {}).await.is_err());
    }
    backend.clients().counter.fail_after(None);
    assert!(failed >= 5, "only {failed} applies were interrupted");
    engine.apply(&g, "up", &|_| {}).await.unwrap();
    let observed = backend.list("demo").await.unwrap();
    assert!(ids(&observed).values().all(|&n| n == 1), "duplicates: {:?}", ids(&observed));
    assert_eq!(observed.len(), g.len());
    assert_eq!(buckets(&backend, "demo").await.len(), 1);
    assert_eq!(iam_counts(&backend, "demo").await, (1, 1, 1));
    assert!(engine.plan(&g).await.unwrap().is_empty());

    engine.destroy("demo", Target::Aws, "down", &|_| {}).await.unwrap();
    assert!(buckets(&backend, "demo").await.is_empty(), "the bucket is gone");
    assert_eq!(iam_counts(&backend, "demo").await, (0, 0, 0));
    assert!(backend.list("demo").await.unwrap().is_empty());
}
