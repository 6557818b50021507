//! `paas aws` end to end: the binary against a moto server on 127.0.0.1 (never real AWS).

mod support;

use std::process::Output;

use support::moto::Moto;

fn ok(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn aws_plan_up_scale_and_down_against_moto() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("paas.toml"),
        "name = \"cli\"\ndomain = \"cli.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\n[aws]\nami = \"ami-03cf127a\"\n",
    )
    .unwrap();
    let plan = ok(moto.paas(dir.path(), &["plan", "--azs", "3", "-o", "json"]));
    assert!(plan["steps"].as_array().unwrap().len() > 30);
    let up = ok(moto.paas(dir.path(), &["up", "--azs", "3", "-o", "json"]));
    assert_eq!(up["status"]["nodes"].as_array().unwrap().len(), 11);
    let again = ok(moto.paas(dir.path(), &["up", "--azs", "3", "-o", "json"]));
    assert!(again["outcome"]["plan"]["steps"].as_array().unwrap().is_empty());
    let scaled = ok(moto.paas(dir.path(), &["scale", "slaves", "7", "--azs", "3", "-o", "json"]));
    assert_eq!(scaled["outcome"]["report"]["done"].as_array().unwrap().len(), 2);
    let down = ok(moto.paas(dir.path(), &["down", "-o", "json"]));
    assert!(down["outcome"]["report"]["done"].as_array().unwrap().len() > 30);
    let status = ok(moto.paas(dir.path(), &["status", "-o", "json"]));
    assert_eq!(status["resources"], 0);
}
