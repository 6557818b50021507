//! The harness's ZooKeeper ensemble is a real quorum that the project's ZooKeeper helpers use.

use std::time::Duration;

use paas_node::zk::{self, ZkUrl};

use crate::support::zookeeper::ZkEnsemble;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_zookeeper_ensemble_forms_a_quorum_and_elects_lowest_member() {
    let ensemble = tokio::task::spawn_blocking(ZkEnsemble::start).await.unwrap();
    let modes = ensemble.modes();
    let leaders = modes.iter().filter(|m| m.as_deref() == Some("leader")).count();
    let followers = modes.iter().filter(|m| m.as_deref() == Some("follower")).count();
    assert_eq!((leaders, followers), (1, 2), "modes: {modes:?}");

    let url = ZkUrl::parse(&ensemble.url("mesos")).unwrap();
    let first = zk::connect(&url, Duration::from_secs(4)).await.unwrap();
    let second = zk::connect(&url, Duration::from_secs(4)).await.unwrap();
    let a = zk::join_election(&first, &url.path, "json.info_", b"first").await.unwrap();
    let b = zk::join_election(&second, &url.path, "json.info_", b"second").await.unwrap();
    assert!(a < b, "{a} then {b}");

    let (leader, watcher) = zk::election_leader(&second, &url.path, "json.info_").await.unwrap();
    assert_eq!(leader.unwrap().data, b"first");

    // The leader's session ends: its ephemeral znode goes, the watch fires, the next one leads.
    drop(first);
    tokio::time::timeout(Duration::from_secs(15), watcher.changed())
        .await
        .expect("the children watch fires when the leader leaves");
    let (leader, _) = zk::election_leader(&second, &url.path, "json.info_").await.unwrap();
    assert_eq!(leader.unwrap().data, b"second");
}
