//! `paas aws` end to end: the binary against a moto server on 127.0.0.1 (never real AWS).

mod support;

use std::time::{Duration, Instant};

use std::path::{Path, PathBuf};
use std::process::Output;

use support::Cluster;
use support::moto::Moto;

fn ok(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A stand-in `paas-node` in `dir`: a Linux x86_64 ELF header and a few bytes.
fn node_binary(dir: &Path) -> PathBuf {
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[6] = 1;
    bytes[16] = 3;
    bytes[18] = 62;
    bytes.extend_from_slice(b"stand-in node binary");
    let path = dir.join("paas-node-stand-in");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn spec_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paas.toml"),
        "name = \"cli\"\ndomain = \"cli.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\n[aws]\nami = \"ami-03cf127a\"\n",
    )
    .unwrap();
    dir
}

/// Asserts exit code 2 with every one of `words` in stderr.
fn bad_input(out: &Output, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "{word:?} missing from: {stderr}");
    }
}

#[test]
fn aws_plan_up_scale_and_down_against_moto() {
    let moto = Moto::start();
    let dir = spec_dir();
    let binary = node_binary(dir.path());
    let node = binary.to_str().unwrap();
    let plan = ok(moto.paas(dir.path(), &["plan", "--azs", "3", "--node-binary", node, "-o", "json"]));
    assert!(plan["steps"].as_array().unwrap().len() > 30);
    let up = ok(moto.paas(dir.path(), &["up", "--azs", "3", "--node-binary", node, "-o", "json"]));
    assert_eq!(up["status"]["nodes"].as_array().unwrap().len(), 11);
    let again = ok(moto.paas(dir.path(), &["up", "--azs", "3", "--node-binary", node, "-o", "json"]));
    assert!(again["outcome"]["plan"]["steps"].as_array().unwrap().is_empty());
    let scaled = ok(moto.paas(
        dir.path(),
        &["scale", "slaves", "7", "--azs", "3", "--node-binary", node, "-o", "json"],
    ));
    assert_eq!(scaled["outcome"]["report"]["done"].as_array().unwrap().len(), 2);
    let down = ok(moto.paas(dir.path(), &["down", "-o", "json"]));
    assert!(down["outcome"]["report"]["done"].as_array().unwrap().len() > 30);
    let status = ok(moto.paas(dir.path(), &["status", "-o", "json"]));
    assert_eq!(status["resources"], 0);
}

#[test]
fn aws_plan_lists_the_artifact_bucket_object_role_and_profile_and_up_says_it_cannot_check_health() {
    let moto = Moto::start();
    let dir = spec_dir();
    let binary = node_binary(dir.path());
    let node = binary.to_str().unwrap();
    let plan = moto.paas(dir.path(), &["plan", "--azs", "3", "--node-binary", node]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.status.success(), "{}", String::from_utf8_lossy(&plan.stderr));
    for id in [
        "bucket/artifacts",
        "object/paas-node",
        "role/node",
        "policy/read-artifacts",
        "instance-profile/node",
    ] {
        assert!(text.contains(id), "{id} missing from the plan:\n{text}");
    }
    let up = moto.paas(dir.path(), &["up", "--azs", "3", "--node-binary", node]);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{stderr}");
    assert!(stderr.contains("Not checking the cluster's health"), "{stderr}");
    let status = moto.paas(dir.path(), &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("health: not checked at an emulator"), "{text}");

    // A new build: the plan says how the instances will roll.
    let newer = dir.path().join("paas-node-newer");
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b" and a fix");
    std::fs::write(&newer, bytes).unwrap();
    let plan = moto.paas(dir.path(), &["plan", "--azs", "3", "--node-binary", newer.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.contains("Rolling 11 instances one at a time, masters first: master-1, master-2, master-3, slave-1"),
        "{text}"
    );
    assert!(text.contains("nothing is waited for between two instances"), "{text}");
}

#[test]
fn aws_up_without_a_node_binary_exits_2_naming_the_flag_and_creates_nothing() {
    let moto = Moto::start();
    let dir = spec_dir();
    let missing = dir.path().join("no-such-paas-node");
    bad_input(
        &moto.paas(dir.path(), &["up", "--node-binary", missing.to_str().unwrap()]),
        &["--node-binary", "no-such-paas-node"],
    );
    let script = dir.path().join("not-elf");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    bad_input(
        &moto.paas(dir.path(), &["plan", "--node-binary", script.to_str().unwrap()]),
        &["--node-binary", "not a Linux x86_64 executable"],
    );

    // A `paas` with no `paas-node` beside it and no flag: a hard link of the built binary
    // alone in a folder (a copy where links cannot cross file systems).
    let alone = tempfile::tempdir().unwrap();
    let paas = alone.path().join("paas");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_paas"), &paas).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_paas"), &paas).unwrap();
    }
    let out = moto.run(&paas, dir.path(), &["--spec", "paas.toml"], &["up", "--yes"]);
    bad_input(&out, &["--node-binary PATH", "paas-node"]);

    let status = ok(moto.paas(dir.path(), &["status", "-o", "json"]));
    assert_eq!(status["resources"], 0, "nothing was created");
}

/// What `paas aws up` and `status` read through an admin entry, against a real one: the sim's
/// adminlb (the same nginx vhosts an AWS adminlb serves) and its elb, on 127.0.0.1.
#[test]
fn the_aws_health_view_reads_a_real_admin_entry_and_deploys_through_it() {
    let cluster = Cluster::new("awshealth", "10.47.0.0/16", "azs = 1\n[nodes]\nmasters = 1\nslaves = 1\nlbs = 1");
    cluster.paas(&["sim", "up", "--no-apps"]);
    let entry = paas_aws::admin::AdminEntry {
        admin: format!("127.0.0.1:{}", cluster.admin_port),
        elb: format!("127.0.0.1:{}", cluster.http_port),
        domain: "paas.localhost".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let apps = ["/www".to_string()];
    let lbs = || vec![("lb-1".to_string(), true)];
    runtime.block_on(async {
        let before = paas_aws::health::probe(&entry, 1, &apps, lbs()).await;
        assert!(before.is_serving(), "{:?}", before.waiting_for());
        assert_eq!(before.waiting_for(), ["apps running (/www)", "www answering 200 through the elb"]);
        assert_eq!(entry.deploy_if_missing(paas_core::app::WWW_APP_JSON).await, Ok("deployed"));
        assert_eq!(entry.deploy_if_missing(paas_core::app::WWW_APP_JSON).await, Ok("present"));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let health = paas_aws::health::probe(&entry, 1, &apps, lbs()).await;
            if health.is_healthy() {
                assert!(health.mesos_leader.is_some_and(|l| l.starts_with("master@10.47.")));
                assert_eq!(health.agents_registered, 1);
                break;
            }
            assert!(Instant::now() < deadline, "not healthy within 120 s: {:?}", health.waiting_for());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

#[test]
fn aws_plan_of_the_default_spec_lists_the_artifacts() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let binary = node_binary(dir.path());
    // No paas.toml: the built-in default cluster.
    let out = moto.paas_with(dir.path(), &[], &["plan", "--azs", "3", "--node-binary", binary.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for id in ["bucket/artifacts", "object/paas-node", "role/node", "instance-profile/node"] {
        assert!(text.contains(id), "{id} missing from the plan:\n{text}");
    }
}
