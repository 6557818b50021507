//! The modules and the fixture against real Docker, with the locally built node image.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use paas_core::ClusterSpec;
use paas_testcontainers::{Master, SimCluster, ZooKeeper, ensure_images};
use testcontainers::ImageExt;
use testcontainers::runners::AsyncRunner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn zookeeper_module_answers_ruok() {
    let image = ensure_images().await.expect("the sim images (paas sim images)");
    let zk = ZooKeeper::with_image(image)
        .with_startup_timeout(Duration::from_secs(180))
        .start()
        .await
        .expect("a ZooKeeper container");
    let port = zk.get_host_port_ipv4(2181).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"ruok").await.unwrap();
    let mut answer = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    assert_eq!(&answer, b"imok");
}

#[tokio::test]
async fn master_module_has_a_mesos_leader_and_an_elected_marathon() {
    let image = ensure_images().await.expect("the sim images (paas sim images)");
    let master = Master::with_image(image)
        .with_startup_timeout(Duration::from_secs(180))
        .start()
        .await
        .expect("a master container");
    let mesos = master.get_host_port_ipv4(5050).await.unwrap();
    let marathon = master.get_host_port_ipv4(8080).await.unwrap();
    let http = reqwest::Client::new();
    // The Mesos master wins its own election in ZooKeeper, independently of Marathon.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Until a master leads, Mesos answers 503 (or 307 to the leader) with no state.
        let response = http.get(format!("http://127.0.0.1:{mesos}/master/state")).send().await.unwrap();
        let state: serde_json::Value = if response.status().is_success() {
            response.json().await.unwrap()
        } else {
            serde_json::json!({ "status": response.status().as_u16() })
        };
        if state["leader"].as_str().is_some_and(|l| !l.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "no Mesos leader within 60 s: {state}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let info: serde_json::Value = http
        .get(format!("http://127.0.0.1:{marathon}/v2/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["elected"], true, "{info}");
}

#[tokio::test]
async fn sim_cluster_fixture_serves_www_and_leaves_nothing() {
    let name = format!("tc{}", std::process::id() % 100_000);
    let mut spec = ClusterSpec {
        name: name.clone(),
        azs: 1,
        vpc_cidr: "10.26.0.0/16".into(),
        ..ClusterSpec::default()
    };
    spec.nodes.masters = 1;
    spec.nodes.slaves = 2;
    spec.nodes.lbs = 1;
    spec.nodes.adminlb = 0;
    spec.sim.http_port = free_port();
    spec.sim.admin_port = free_port();
    spec.sim.marathon_port = free_port();
    spec.sim.mesos_port = free_port();
    let cluster = SimCluster::start(spec, Duration::from_secs(180))
        .await
        .expect("the cluster up and healthy");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = http.get(cluster.elb()).header("Host", "www.paas.localhost").send().await;
        if let Ok(r) = answer
            && r.status() == 200
            && r.text().await.unwrap().starts_with("www ")
        {
            break;
        }
        assert!(Instant::now() < deadline, "www not served through the elb within 90 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(cluster);
    let left = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=paas.cluster={name}")])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "containers left behind");
}
