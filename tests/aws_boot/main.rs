//! AWS nodes booted from their user-data: each node's `#cloud-config` exactly as the AWS backend
//! renders it (`paas_core::render::userdata::cloud_config`) runs under Debian's cloud-init in a
//! Debian 12 container standing in for the instance (systemd as PID 1, NoCloud seed), on a
//! Docker network with the VPC's CIDR at the address AWS placement gives the node. `paas-node`
//! comes from moto's S3 (on the network's gateway, checking SigV4 signatures and the role's
//! policy) with the role's session from an instance-metadata stand-in at 169.254.169.254
//! (IMDSv2 only). Never real AWS.
//!
//! The metadata network's subnet is fixed, so one stage serves both cases (a cluster that
//! comes up, a node whose binary fails its checksum), and one run of this test at a time.

mod http;
mod instance;
mod metadata;
mod s3;

use std::net::{Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bollard::Docker;
use futures::FutureExt;
use paas_core::ClusterSpec;
use paas_core::render::userdata::{self, NodeArtifact};
use paas_core::render::{node_config, ports};
use paas_core::topology::{Node, Role, Topology};

use self::http::get;
use self::instance::{Instance, METADATA_ADDRESS, Networks};
use self::metadata::MetadataService;
use self::s3::Moto;

/// How long one instance may take from start to cloud-init done (its boot script included).
const BOOT: Duration = Duration::from_secs(240);
/// How long the booted cluster may take to elect leaders, register agents and serve an app.
const CONVERGE: Duration = Duration::from_secs(240);

/// The cluster the tests boot: 3 masters, 2 slaves, 1 lb and the adminlb over 3 AZs of
/// [`s3::REGION`], on a VPC CIDR of its own (a /20 per test process, within 10.250–255.x.x,
/// which no other test's cluster uses, as it may run beside them), the host's address on it
/// being an admin source.
fn spec() -> ClusterSpec {
    let pid = std::process::id();
    let mut spec = ClusterSpec {
        name: format!("boot{pid}"),
        domain: "paas.test".into(),
        vpc_cidr: format!("10.{}.{}.0/20", 250 + pid % 6, (pid / 6 % 16) * 16),
        ..ClusterSpec::default()
    };
    spec.nodes.masters = 3;
    spec.nodes.slaves = 2;
    spec.nodes.lbs = 1;
    spec.nodes.adminlb = 1;
    spec.admin_cidrs = vec![format!("{}/32", gateway(&spec))];
    spec
}

/// The host's address on the cluster network: the VPC's first address (AWS keeps it for its
/// router; placement never gives it to a node).
fn gateway(spec: &ClusterSpec) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(spec.vpc().network()) + 1)
}

fn place(spec: &ClusterSpec) -> Topology {
    let zones: Vec<String> = ["a", "b", "c"].iter().map(|z| format!("{}{z}", s3::REGION)).collect();
    Topology::place(spec, &zones).expect("placing the test cluster over AWS AZs")
}

/// The user-data the AWS backend gives `node`.
fn user_data(spec: &ClusterSpec, topology: &Topology, node: &Node, artifact: &NodeArtifact) -> String {
    let config = node_config(spec, topology, node, &spec.admin_cidrs);
    userdata::cloud_config(&config, Some(artifact)).unwrap_or_else(|size| panic!("{}: user-data of {size} bytes", node.name))
}

/// What every test needs: Docker, the instance image, the cluster and metadata networks, moto
/// with the artifact, and the metadata stand-in.
struct Stage {
    docker: Docker,
    image: String,
    networks: Networks,
    moto: Moto,
    metadata: MetadataService,
    artifact: NodeArtifact,
    role: s3::RoleCredentials,
}

impl Stage {
    async fn new(spec: &ClusterSpec) -> Stage {
        let docker = paas_docker::backend::connect_docker()
            .await
            .unwrap_or_else(|e| panic!("Docker: {e:#} (scripts/install-deps checks it)"));
        instance::remove_leftovers(&docker, None).await;
        let image = instance::image(&docker).await;
        let pid = std::process::id();
        let network = format!("paas-aws-boot-{pid}");
        instance::create_network(&docker, &network, &spec.vpc_cidr, gateway(spec)).await;
        let metadata_network = format!("paas-aws-boot-{pid}-imds");
        // The host takes 169.254.169.254 on this network, so the stand-in below is where
        // an instance finds EC2's metadata service.
        instance::create_network(&docker, &metadata_network, "169.254.169.0/24", METADATA_ADDRESS).await;
        let moto = Moto::start(gateway(spec));
        let binary = paas_docker::images::ImageInputs::from_env()
            .unwrap_or_else(|e| panic!("{e}"))
            .node_binary;
        let (artifact, role) = moto
            .artifact_and_role(&format!("paas-{}-artifacts", spec.name), &binary, metadata::ROLE)
            .await;
        let metadata = MetadataService::start(SocketAddr::from((METADATA_ADDRESS, 80)), role.clone()).await;
        Stage {
            docker,
            image,
            networks: Networks {
                cluster: network,
                metadata: metadata_network,
            },
            moto,
            metadata,
            artifact,
            role,
        }
    }

    async fn boot(&self, node: &Node, user_data: &str) -> Instance {
        Instance::boot(
            &self.docker,
            &self.image,
            &node.name,
            &self.networks,
            node.address,
            user_data,
            node.role == Role::Slave,
        )
        .await
    }
}

/// Runs `test` on a fresh stage and removes every container and network afterwards, whether
/// it passed or panicked.
async fn staged<F, Fut>(test: F)
where
    F: FnOnce(Stage, ClusterSpec) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let spec = spec();
    let stage = Stage::new(&spec).await;
    let docker = stage.docker.clone();
    let outcome = AssertUnwindSafe(test(stage, spec)).catch_unwind().await;
    instance::remove_leftovers(&docker, Some(std::process::id())).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls `check` every second until it returns `Ok`, for at most `timeout`; panics with `what`
/// and the last `Err` (what was seen instead).
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => panic!("{what}: not within {timeout:?}; last: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// One stage for both cases (the metadata network's fixed subnet allows one stage at a time):
/// the cluster, and beside it an lb whose user-data names a sha256 the artifact does not have.
#[tokio::test(flavor = "multi_thread")]
async fn every_node_boots_from_its_aws_user_data_and_serves_www_and_a_wrong_sha256_starts_nothing() {
    staged(|stage, spec| async move {
        let topology = place(&spec);
        let docker = &stage.docker;
        let mut instances = Vec::new();
        for node in &topology.nodes {
            let text = user_data(&spec, &topology, node, &stage.artifact);
            instances.push((node, stage.boot(node, &text).await));
        }
        let (bad, wrong) = boot_with_a_wrong_sha256(&stage, &spec, &topology).await;

        a_failed_boot_started_nothing(&stage, &bad, &wrong).await;

        // Each boot ran to its end: paas-node fetched, checked, installed, its unit running.
        for (node, instance) in &instances {
            let status = instance.wait_cloud_init(docker, BOOT).await;
            let console = instance.console(docker).await;
            assert!(status.contains("status: done"), "{}: cloud-init {status}\n{console}", node.name);
            assert!(!console.contains("BOOT FAILED"), "{}: {console}", node.name);
            // The user-data's own apt step ran, and found its packages in the image.
            let (_, apt) = instance
                .sh(docker, "grep -c 'is already the newest version' /var/log/cloud-init-output.log")
                .await;
            assert!(
                apt.trim().parse::<u32>().unwrap_or(0) >= 2,
                "{}: apt-get install did not run: {apt}",
                node.name
            );
            let (code, active) = instance.sh(docker, "systemctl is-active paas-node.service").await;
            assert_eq!((code, active.trim()), (0, "active"), "{}: paas-node.service\n{console}", node.name);
            let (_, running) = instance
                .sh(
                    docker,
                    "cat /proc/$(systemctl show -p MainPID --value paas-node.service)/cmdline | tr '\\0' ' '",
                )
                .await;
            assert_eq!(
                running.trim(),
                "/usr/local/bin/paas-node supervise --config /etc/paas/node.json",
                "{}",
                node.name
            );
        }
        let (credentials, refused) = stage.metadata.counts();
        assert!(
            credentials >= instances.len(),
            "every node asked the metadata service for its role's credentials: {credentials}"
        );
        assert_eq!(refused, 0, "a node asked the metadata service without an IMDSv2 token");
        // As on an instance with `HttpTokens=required`, a request without a token is refused.
        let (_, status) = instances[0]
            .1
            .sh(
                docker,
                "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            )
            .await;
        assert_eq!(status.trim(), "401", "IMDSv1 answered");
        // moto checks signatures: the nodes' reads were signed right with the role's session.
        let forged = s3::RoleCredentials {
            secret_access_key: "not-the-role-secret".into(),
            ..stage.role.clone()
        };
        assert_eq!(
            stage.moto.get_status(&stage.artifact, &forged).await,
            "403",
            "moto took a forged signature"
        );
        assert!(
            stage.moto.reads_of(&stage.artifact.key) >= instances.len(),
            "every node read the artifact from S3"
        );

        // Each role's programs pass the sim's health checks.
        for master in topology.nodes_of(Role::Master) {
            let address = master.address;
            eventually(CONVERGE, &format!("{}: ZooKeeper answers ruok", master.name), || async move {
                match paas_docker::health::four_letter(&format!("{address}:{}", ports::ZOOKEEPER), "ruok").await {
                    Some(answer) if answer == "imok" => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
            for (port, path) in [(ports::MESOS_MASTER, "/health"), (ports::MARATHON, "/ping")] {
                eventually(CONVERGE, &format!("{}: {path} on port {port}", master.name), || async move {
                    match paas_docker::health::http_get(&format!("{address}:{port}"), path).await {
                        Some((200, _)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                })
                .await;
            }
        }
        for lb in topology.nodes.iter().filter(|n| matches!(n.role, Role::Lb | Role::AdminLb)) {
            let address = lb.address;
            eventually(CONVERGE, &format!("{}: nginx /status", lb.name), || async move {
                match get(address, "status.invalid", "/status").await {
                    Some((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            })
            .await;
        }
        eventually(CONVERGE, "a Mesos leader with both agents, and a Marathon leader", || async {
            let health = paas_docker::health::probe(&topology, 0).await;
            if health.zookeeper_ok() && health.mesos_ok() && health.marathon_ok() {
                Ok(())
            } else {
                Err(health.waiting_for().join(", "))
            }
        })
        .await;

        // The built-in www app, deployed as `paas aws up` deploys it, is served through the lb.
        let master = topology.nodes_of(Role::Master).next().unwrap().address;
        let mut www: serde_json::Value = serde_json::from_str(paas_core::app::WWW_APP_JSON).unwrap();
        www["instances"] = 2.into();
        let (status, body) =
            paas_docker::health::http_request(&format!("{master}:{}", ports::MARATHON), "POST", "/v2/apps", Some(&www.to_string()))
                .await
                .expect("Marathon answers");
        assert!(status == 201, "POST /v2/apps: {status} {body}");
        let lb = topology.nodes_of(Role::Lb).next().unwrap().address;
        let host = format!("www.{}", spec.domain);
        let answer = eventually(CONVERGE, "www served through the lb", || {
            let host = host.clone();
            async move {
                match get(lb, &host, "/").await {
                    Some((200, body)) if body.starts_with("www ") => Ok(body),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        let slaves: Vec<String> = topology.nodes_of(Role::Slave).map(|s| s.address.to_string()).collect();
        assert!(
            slaves.iter().any(|s| answer.contains(s.as_str())),
            "www answered from a slave: {answer}"
        );

        // The admin entry admits the admin CIDR (the host here) and sends it to Marathon's leader.
        let adminlb = topology.nodes_of(Role::AdminLb).next().unwrap().address;
        let admin_host = format!("marathon.admin.{}", spec.domain);
        eventually(CONVERGE, "Marathon through the admin entry", || {
            let admin_host = admin_host.clone();
            async move {
                match get(adminlb, &admin_host, "/ping").await {
                    Some((200, body)) => Ok(body),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
    })
    .await;
}

/// Boots a second lb, at an address no node has, whose user-data names a sha256 that is not the
/// artifact's; returns it and that sha256.
async fn boot_with_a_wrong_sha256(stage: &Stage, spec: &ClusterSpec, topology: &Topology) -> (Instance, String) {
    let lb = topology.nodes_of(Role::Lb).next().unwrap();
    let address = Ipv4Addr::from(u32::from(lb.address) + 50);
    assert!(topology.nodes.iter().all(|n| n.address != address), "{address} is a node's");
    let node = Node {
        name: "lb-wrong-sha256".into(),
        address,
        ..lb.clone()
    };
    let wrong = "0".repeat(64);
    let artifact = NodeArtifact {
        sha256: wrong.clone(),
        ..stage.artifact.clone()
    };
    let instance = stage.boot(&node, &user_data(spec, topology, &node, &artifact)).await;
    (instance, wrong)
}

/// The node fetched a binary whose sha256 is not `wrong`: it says why (marker, console,
/// journal) and installs and starts nothing.
async fn a_failed_boot_started_nothing(stage: &Stage, instance: &Instance, wrong: &str) {
    let docker = &stage.docker;
    instance.wait_cloud_init(docker, BOOT).await;

    let (code, reason) = instance.sh(docker, "cat /var/lib/paas/boot-failed").await;
    assert_eq!(code, 0, "no boot-failed marker:\n{}", instance.console(docker).await);
    assert!(
        reason.contains("sha256 mismatch") && reason.contains(&format!("expected {wrong}")),
        "{reason}"
    );
    assert!(
        reason.contains(&stage.artifact.sha256),
        "the marker names the sha256 found: {reason}"
    );
    let console = instance.console(docker).await;
    assert!(console.contains("paas-boot: BOOT FAILED: sha256 mismatch"), "console:\n{console}");
    let (_, journal) = instance.sh(docker, "journalctl -t paas-boot --no-pager").await;
    assert!(journal.contains("BOOT FAILED: sha256 mismatch"), "journal:\n{journal}");

    // Nothing was installed or started: no paas-node, no unit, nothing of the node's.
    let (code, _) = instance.sh(docker, "test -e /usr/local/bin/paas-node").await;
    assert_ne!(code, 0, "paas-node was installed");
    let (_, state) = instance.sh(docker, "systemctl is-active paas-node.service").await;
    assert_eq!(state.trim(), "inactive", "paas-node.service");
    let (_, processes) = instance.sh(docker, "ps -eo comm=").await;
    for program in ["paas-node", "nginx"] {
        assert!(!processes.lines().any(|p| p.trim() == program), "{program} runs:\n{processes}");
    }
    // The node is down, as a failed boot should leave it: its lb port is closed.
    assert!(get(instance.address, "status.invalid", "/status").await.is_none(), "the lb answers");
}
