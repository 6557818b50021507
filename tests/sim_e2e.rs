//! End to end: `paas sim up` on the default cluster, apps served through the elb on
//! 127.0.0.1, app and cluster scaling, the Marathon leader's machine lost, an app held by its
//! deployment removed with `--force`, `paas sim down`.
//!
//! Needs Docker and the sim base image (`paas sim images`); the `paas-node` binary must be
//! built (`cargo build --workspace --bins --tests`). Takes a few minutes.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Cluster, eventually, status_json};

#[test]
fn the_default_cluster_serves_scales_survives_its_marathon_leader_and_goes_away() {
    let cluster = Cluster::new("e2e", &support::free_vpc_cidr(10, 10), "");
    let up = cluster.paas(&["sim", "up", "--output", "json"]);
    let up: serde_json::Value = serde_json::from_str(&up).expect("up JSON");
    assert_eq!(up["changed"], true);

    // www answers through the elb, from several tasks.
    let backends = eventually(Duration::from_secs(60), "www from 3 tasks", || {
        Some(cluster.www_backends(30)).filter(|b| b.len() == 3)
    });
    assert!(backends.iter().all(|b| b.starts_with("www ")), "{backends:?}");

    // Re-running up changes nothing.
    let again: serde_json::Value = serde_json::from_str(&cluster.paas(&["sim", "up", "--output", "json"])).unwrap();
    assert_eq!(again["changed"], false, "{again}");

    // Scaling the app: 5 backends behind the lbs.
    cluster.paas(&["app", "scale", "www", "5"]);
    eventually(Duration::from_secs(90), "www from 5 tasks", || {
        Some(cluster.www_backends(50)).filter(|b| b.len() == 5)
    });

    // Scaling the cluster: 5 → 7 → 5 agents, all registered, www served throughout.
    cluster.paas(&["sim", "scale", "slaves", "7"]);
    assert_eq!(status_json(&cluster)["status"]["health"]["agents_registered"], 7);
    assert!(cluster.get("www").is_some_and(|(s, _)| s == 200));
    cluster.paas(&["sim", "scale", "slaves", "5"]);
    // The master forgets removed agents after its ping timeout (Mesos' default 15 s x 5).
    eventually(Duration::from_secs(150), "5 agents registered", || {
        (status_json(&cluster)["status"]["health"]["agents_registered"] == 5).then_some(())
    });
    eventually(Duration::from_secs(120), "www back at 5 tasks after losing 2 agents", || {
        Some(cluster.www_backends(50)).filter(|b| b.len() == 5)
    });

    // Losing the Marathon leader's machine: apps stay served, a new leader manages them.
    let leader = eventually(Duration::from_secs(30), "a Marathon leader", || cluster.marathon_leader());
    let address = leader.split(':').next().unwrap().to_string();
    let status = status_json(&cluster);
    let node = status["status"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == address.as_str())
        .unwrap_or_else(|| panic!("no node at the leader's address {address}: {status}"))["name"]
        .as_str()
        .unwrap()
        .to_string();
    let killed = Command::new("docker")
        .args(["kill", &format!("{}-{node}", cluster.name)])
        .status()
        .unwrap();
    assert!(killed.success());
    for _ in 0..10 {
        assert!(
            cluster.get("www").is_some_and(|(s, _)| s == 200),
            "www failed right after the Marathon leader was lost"
        );
    }
    let new_leader = eventually(Duration::from_secs(60), "a new Marathon leader", || {
        cluster.marathon_leader().filter(|l| *l != leader)
    });
    assert_ne!(new_leader, leader);
    cluster.paas(&["app", "scale", "www", "3"]);
    eventually(Duration::from_secs(90), "www at 3 tasks under the new leader", || {
        Some(cluster.www_backends(30)).filter(|b| b.len() == 3)
    });

    // An app whose deployment can never finish holds it: `app rm` is refused with Marathon's
    // 409 and says how to override it; `app rm --force` removes it.
    let stuck = cluster.dir.path().join("stuck.json");
    std::fs::write(
        &stuck,
        r#"{"id": "/stuck", "instances": 1, "cpus": 0.1, "mem": 16, "cmd": "exec sleep 1000",
            "constraints": [["hostname", "CLUSTER", "nowhere"]]}"#,
    )
    .unwrap();
    cluster.paas(&["app", "deploy", stuck.to_str().unwrap()]);
    let refused = cluster.paas_output(&["app", "rm", "stuck"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "rm of a held app succeeded: {stderr}");
    assert!(
        stderr.contains("409") && stderr.contains("locked by one or more deployments") && stderr.contains("--force"),
        "{stderr}"
    );
    cluster.paas(&["app", "rm", "stuck", "--force"]);
    eventually(Duration::from_secs(30), "/stuck gone from the app list", || {
        let apps: serde_json::Value = serde_json::from_str(&cluster.paas(&["app", "list", "-o", "json"])).unwrap();
        apps.as_array().unwrap().iter().all(|a| a["id"] != "/stuck").then_some(())
    });

    // Down removes everything of the cluster, and is safe to re-run.
    cluster.paas(&["sim", "down"]);
    assert_eq!(cluster.containers(), Vec::<String>::new());
    assert_eq!(cluster.networks(), Vec::<String>::new());
    cluster.paas(&["sim", "down"]);
}
