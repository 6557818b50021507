//! Whole clusters against moto: up, re-up, scale, interrupted up, refresh, down.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use paas_aws::AwsBackend;
use paas_core::engine::{ApplyOptions, StateStore};
use paas_core::resource::ResourceId;
use paas_core::{Backend, ClusterSpec, Engine, Graph, Target, Topology};

use crate::moto::Moto;

pub fn spec(azs: u32, slaves: u32) -> ClusterSpec {
    let mut spec = ClusterSpec {
        name: "demo".into(),
        domain: "demo.example.com".into(),
        azs,
        admin_cidrs: vec!["203.0.113.0/24".into()],
        ..ClusterSpec::default()
    };
    spec.nodes.slaves = slaves;
    // moto's own image: the lookup by name is tested on its own.
    spec.aws.ami = Some("ami-03cf127a".into());
    spec
}

pub async fn graph(backend: &AwsBackend, spec: &ClusterSpec) -> Graph {
    graph_with(backend, spec, &crate::moto::node_binary(b"first build")).await
}

/// The graph delivering `binary`.
pub async fn graph_with(backend: &AwsBackend, spec: &ClusterSpec, binary: &paas_core::resource::NodeBinary) -> Graph {
    let zones = backend.clients().zones().await.unwrap();
    let topology = Topology::place(spec, &zones).unwrap();
    Graph::aws(spec, &topology, binary)
}

pub fn options() -> ApplyOptions {
    ApplyOptions {
        parallelism: 8,
        attempts: 5,
        retry_delay: std::time::Duration::from_millis(50),
    }
}

pub fn ids(observed: &[paas_core::Observed]) -> BTreeMap<ResourceId, usize> {
    let mut counts = BTreeMap::new();
    for o in observed {
        *counts.entry(o.id.clone()).or_insert(0) += 1;
    }
    counts
}

async fn up(backend: &AwsBackend, dir: &std::path::Path, spec: &ClusterSpec) -> (usize, u64, u128) {
    let g = graph(backend, spec).await;
    let engine = Engine::new(backend, StateStore::new(dir, &spec.name, "aws"), options());
    let calls = backend.calls();
    let started = Instant::now();
    let (_plan, report) = engine.apply(&g, "up", &|_| {}).await.unwrap();
    (report.done.len(), backend.calls() - calls, started.elapsed().as_millis())
}

async fn down(backend: &AwsBackend, dir: &std::path::Path, cluster: &str) -> (usize, u64, u128) {
    let engine = Engine::new(backend, StateStore::new(dir, cluster, "aws"), options());
    let calls = backend.calls();
    let started = Instant::now();
    let (_plan, report) = engine.destroy(cluster, Target::Aws, "down", &|_| {}).await.unwrap();
    (report.done.len(), backend.calls() - calls, started.elapsed().as_millis())
}

#[tokio::test]
async fn up_across_three_azs_spreads_masters_subnets_and_the_elb_and_locks_admin_to_its_cidrs() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(3, 5);
    let g = graph(&backend, &spec).await;
    let (done, calls, ms) = up(&backend, dir.path(), &spec).await;
    assert_eq!(done, g.len());
    println!("up 3 AZs: {done} resources, {calls} API calls, {ms} ms");

    let observed = backend.list("demo").await.unwrap();
    assert!(ids(&observed).values().all(|&n| n == 1), "duplicates: {:?}", ids(&observed));
    assert_eq!(
        ids(&observed).keys().collect::<BTreeSet<_>>(),
        g.resources().iter().map(|r| &r.id).collect()
    );

    let ec2 = &backend.clients().ec2;
    let instances = ec2.describe_instances().send().await.unwrap();
    let mut master_azs = BTreeSet::new();
    for i in instances.reservations().iter().flat_map(|r| r.instances()) {
        let tags: BTreeMap<_, _> = i.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
        assert_eq!(tags["paas:cluster"], "demo");
        assert!(tags.contains_key("Name") && tags.contains_key("paas:az") && tags.contains_key("paas:resource"));
        if tags["paas:role"] == "master" {
            master_azs.insert(i.placement().unwrap().availability_zone().unwrap().to_string());
        }
    }
    assert_eq!(master_azs.len(), 3, "masters in {master_azs:?}");

    let subnets = ec2
        .describe_subnets()
        .filters(paas_aws::tags::cluster_filter("demo"))
        .send()
        .await
        .unwrap();
    let subnet_azs: BTreeSet<_> = subnets.subnets().iter().map(|s| s.availability_zone().unwrap()).collect();
    assert_eq!((subnets.subnets().len(), subnet_azs.len()), (6, 3));
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(nats.nat_gateways().len(), 3, "a NAT gateway per AZ");

    let elb = backend.clients().elb.describe_load_balancers().send().await.unwrap();
    let lb = &elb.load_balancer_descriptions()[0];
    let front: BTreeSet<_> = subnets
        .subnets()
        .iter()
        .filter(|s| s.tags().iter().any(|t| t.value().unwrap().starts_with("subnet/front")))
        .map(|s| s.subnet_id().unwrap())
        .collect();
    assert_eq!(lb.subnets().iter().map(String::as_str).collect::<BTreeSet<_>>(), front);
    assert_eq!(lb.instances().len(), 2, "both lbs registered");
    assert_eq!(lb.health_check().unwrap().target(), "HTTP:80/status");

    let groups = ec2
        .describe_security_groups()
        .filters(paas_aws::tags::cluster_filter("demo"))
        .send()
        .await
        .unwrap();
    for group in groups.security_groups() {
        for p in group.ip_permissions() {
            let port = p.from_port().unwrap_or(-1);
            let cidrs: Vec<_> = p.ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
            if port == 22 || group.group_name() == Some("demo-admin") {
                assert_eq!(cidrs, ["203.0.113.0/24"], "{:?} port {port}", group.group_name());
            }
            if cidrs.contains(&"0.0.0.0/0") {
                assert_eq!((group.group_name(), port), (Some("demo-elb"), 80));
            }
        }
    }

    let r53 = &backend.clients().route53;
    let zones = r53.list_hosted_zones().send().await.unwrap();
    let zone = zones.hosted_zones().iter().find(|z| z.name() == "demo.example.com.").unwrap();
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone.id()).send().await.unwrap();
    let names: BTreeSet<_> = sets.resource_record_sets().iter().map(|s| s.name().replace("\\052", "*")).collect();
    for name in [
        "*.demo.example.com.",
        "marathon.admin.demo.example.com.",
        "mesos.admin.demo.example.com.",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    let key = dir.path().join("demo").join("id_ed25519");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn up_twice_creates_nothing_and_scaling_slaves_to_seven_adds_exactly_two() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    up(&backend, dir.path(), &spec(3, 5)).await;
    let (done, calls, _) = up(&backend, dir.path(), &spec(3, 5)).await;
    assert_eq!(done, 0, "a second up changes nothing");
    println!("second up: {calls} API calls");

    let before = backend.list("demo").await.unwrap();
    let g = graph(&backend, &spec(3, 7)).await;
    let plan = paas_core::engine::plan(&g, &before);
    let creates: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action == paas_core::Action::Create)
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(creates, ["node/slave-6", "node/slave-7"]);
    up(&backend, dir.path(), &spec(3, 7)).await;
    let after = backend.list("demo").await.unwrap();
    let slaves = |o: &[paas_core::Observed]| o.iter().filter(|o| o.id.name().starts_with("slave-")).count();
    assert_eq!((slaves(&before), slaves(&after)), (5, 7));
    assert_eq!(after.len(), before.len() + 2);
}

#[tokio::test]
async fn an_up_interrupted_at_any_of_several_points_then_rerun_leaves_no_duplicates() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(2, 2);
    let g = graph(&backend, &spec).await;
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "demo", "aws"), options());
    // Each run first lists the cluster (18 requests on an empty account, more as it fills),
    // then fails a request among its creates: later runs find what earlier ones made.
    for nth in [21, 28, 35] {
        backend.clients().counter.fail_after(Some(nth));
        let result = engine.apply(&g, "up", &|_| {}).await;
        assert!(result.is_err(), "request {nth} was to fail the apply");
    }
    backend.clients().counter.fail_after(None);
    engine.apply(&g, "up", &|_| {}).await.unwrap();
    let observed = backend.list("demo").await.unwrap();
    assert!(ids(&observed).values().all(|&n| n == 1), "duplicates: {:?}", ids(&observed));
    assert_eq!(observed.len(), g.len());
    let vpcs = backend
        .clients()
        .ec2
        .describe_vpcs()
        .filters(paas_aws::tags::cluster_filter("demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    assert!(engine.plan(&g).await.unwrap().is_empty());
}

#[tokio::test]
async fn down_leaves_none_of_the_clusters_resources_and_refresh_rebuilds_a_lost_state_file() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(3, 5);
    let g = graph(&backend, &spec).await;
    up(&backend, dir.path(), &spec).await;

    let store = StateStore::new(dir.path(), "demo", "aws");
    std::fs::remove_file(store.path()).unwrap();
    let engine = Engine::new(&backend, store.clone(), options());
    let state = engine.refresh("demo", "refresh").await.unwrap();
    assert_eq!(state.resources.len(), g.len());

    let (done, calls, ms) = down(&backend, dir.path(), "demo").await;
    println!("down 3 AZs: {done} resources, {calls} API calls, {ms} ms");
    assert_eq!(done, g.len());
    let left = backend.list("demo").await.unwrap();
    assert!(left.is_empty(), "left after down: {left:?}");
    let ec2 = &backend.clients().ec2;
    let filter = paas_aws::tags::cluster_filter("demo");
    assert!(ec2.describe_vpcs().filters(filter.clone()).send().await.unwrap().vpcs().is_empty());
    assert!(
        ec2.describe_subnets()
            .filters(filter.clone())
            .send()
            .await
            .unwrap()
            .subnets()
            .is_empty()
    );
    assert!(
        ec2.describe_addresses().send().await.unwrap().addresses().is_empty(),
        "Elastic IPs released"
    );
    let live = ec2
        .describe_instances()
        .filters(filter)
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .count();
    assert_eq!(live, 0);
    assert!(
        backend
            .clients()
            .elb
            .describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancer_descriptions()
            .is_empty()
    );
    assert!(
        backend
            .clients()
            .route53
            .list_hosted_zones()
            .send()
            .await
            .unwrap()
            .hosted_zones()
            .is_empty()
    );
}

#[tokio::test]
async fn up_and_down_with_one_az_and_the_ami_found_by_name() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let mut spec = spec(1, 5);
    spec.aws.ami = None;
    spec.aws.ami_name = "amzn2-ami-hvm-*".into();
    spec.aws.ami_owner = "amazon".into();
    let (done, calls, ms) = up(&backend, dir.path(), &spec).await;
    println!("up 1 AZ: {done} resources, {calls} API calls, {ms} ms");
    let (done, calls, ms) = down(&backend, dir.path(), "demo").await;
    println!("down 1 AZ: {done} resources, {calls} API calls, {ms} ms");
    let left = backend.list("demo").await.unwrap();
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[tokio::test]
async fn an_up_dropped_midway_then_rerun_leaves_no_duplicates() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let backend = moto.backend(&dir.path().join("demo")).await;
    let spec = spec(3, 3);
    let g = graph(&backend, &spec).await;
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "demo", "aws"), options());
    // Abandon the apply future at growing points in time, as a killed process would.
    let mut dropped = 0;
    for ms in [150, 400, 700] {
        let run = tokio::time::timeout(std::time::Duration::from_millis(ms), engine.apply(&g, "up", &|_| {}));
        dropped += usize::from(run.await.is_err());
    }
    assert!(dropped >= 1, "no apply was dropped midway");
    engine.apply(&g, "up", &|_| {}).await.unwrap();
    let observed = backend.list("demo").await.unwrap();
    assert!(ids(&observed).values().all(|&n| n == 1), "duplicates: {:?}", ids(&observed));
    assert_eq!(observed.len(), g.len());
    let instances = backend.clients().ec2.describe_instances().send().await.unwrap();
    let live = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("terminated"))
        .count();
    assert_eq!(live, 9, "3 masters, 3 slaves, 2 lbs and the adminlb, no more");
}
