//! The deployment API the `paas aws` commands use, against moto.

use std::time::Duration;

use paas_aws::{Connection, Deployment, DeploymentError, Waits};
use paas_core::ClusterSpec;
use paas_core::spec::NatMode;

use crate::moto::Moto;

fn connection(moto: &Moto) -> Connection {
    Connection::Static {
        region: "eu-west-1".into(),
        endpoint_url: moto.endpoint.clone(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

fn waits() -> Waits {
    Waits {
        timeout: Duration::from_secs(20),
        interval: Duration::from_millis(50),
    }
}

fn spec(azs: u32) -> ClusterSpec {
    let mut spec = ClusterSpec {
        name: "shop".into(),
        domain: "shop.example.org".into(),
        azs,
        admin_cidrs: vec!["198.51.100.7/32".into()],
        ..ClusterSpec::default()
    };
    spec.aws.ami = Some("ami-03cf127a".into());
    spec
}

#[tokio::test]
async fn plan_up_status_and_down_through_the_deployment() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::connect(spec(3), dir.path(), &connection(&moto), waits())
        .await
        .unwrap()
        .with_node_binary(crate::moto::node_binary(b"deployment"));
    let plan = deployment.plan().await.unwrap();
    assert_eq!(plan.count(paas_core::Action::Create), plan.steps.len());
    assert!(deployment.status().await.unwrap().nodes.is_empty(), "plan changed nothing");

    let up = deployment.up("up", &|_| {}).await.unwrap();
    assert_eq!(up.report.done.len(), plan.steps.len());
    assert!(up.api_calls > 0);
    let status = deployment.status().await.unwrap();
    assert_eq!(status.nodes.len(), 11);
    let masters: std::collections::BTreeSet<_> = status
        .nodes
        .iter()
        .filter(|n| n.name.starts_with("master"))
        .map(|n| &n.az)
        .collect();
    assert_eq!(masters.len(), 3);
    assert!(status.nodes.iter().all(|n| n.state == "running"));
    assert!(!status.name_servers.is_empty(), "name servers to delegate to");
    assert!(status.elb_dns_name.is_some());
    assert!(status.nodes.iter().find(|n| n.name == "adminlb-1").unwrap().public_ip.is_some());
    assert!(dir.path().join("shop/id_ed25519").exists());

    let down = deployment.down(&|_| {}).await.unwrap();
    assert_eq!(down.report.done.len(), plan.steps.len());
    assert_eq!(deployment.status().await.unwrap().resources, 0);
}

#[tokio::test]
async fn more_azs_than_the_region_has_is_an_error_naming_its_zones_and_single_nat_warns() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::connect(spec(9), dir.path(), &connection(&moto), waits())
        .await
        .unwrap()
        .with_node_binary(crate::moto::node_binary(b"deployment"));
    let err = deployment.plan().await.expect_err("9 AZs do not exist");
    assert!(matches!(err, DeploymentError::Placement { .. }), "{err:?}");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("eu-west-1a") && text.contains("eu-west-1c"), "{text}");

    let mut single = spec(3);
    single.aws.nat = NatMode::Single;
    let deployment = Deployment::connect(single, dir.path(), &connection(&moto), waits())
        .await
        .unwrap()
        .with_node_binary(crate::moto::node_binary(b"deployment"));
    assert_eq!(deployment.warnings().len(), 1);
    deployment.up("up", &|_| {}).await.unwrap();
    let nats = deployment.backend().clients().ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(nats.nat_gateways().len(), 1);
}

#[tokio::test]
async fn a_running_node_passes_ec2s_status_checks_and_a_missing_one_does_not() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut small = spec(1);
    small.nodes.slaves = 1;
    let deployment = Deployment::connect(small, dir.path(), &connection(&moto), waits())
        .await
        .unwrap()
        .with_node_binary(crate::moto::node_binary(b"deployment"));
    let master = paas_core::resource::ResourceId::parse("node/master-1").unwrap();
    assert!(!deployment.status_checks_pass(&master).await.unwrap(), "nothing runs yet");
    deployment.up("up", &|_| {}).await.unwrap();
    assert!(deployment.status_checks_pass(&master).await.unwrap());
    // At moto the admin entry is listed, but nothing answers behind it.
    let entry = deployment.admin_entry().await.unwrap();
    assert!(entry.admin.ends_with(":80") && entry.elb.ends_with(":80"), "{entry:?}");
}
