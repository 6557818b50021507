//! Scaling keeps the spec true: `paas aws scale` (against a moto server on 127.0.0.1) writes
//! the new count into the spec file with its comments and layout kept, or, for the built-in
//! default cluster, into the cluster's recorded spec (tested in `src/context.rs`: moto has
//! no Debian image for the default cluster's AMI lookup); the next plan is then empty.

mod support;

use std::process::Output;

use support::moto::Moto;

fn ok(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "paas failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn nodes(status: &serde_json::Value) -> usize {
    status["nodes"].as_array().expect("nodes in status").len()
}

#[test]
fn aws_scale_rewrites_the_count_in_the_spec_file_keeping_its_comments() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let spec = "# The staging cluster.\nname = \"keep\"\ndomain = \"keep.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]   # the office\nazs = 2\n\n[nodes]\nmasters = 3\nslaves = 2    # grow with demand\n\n[aws]\nami = \"ami-03cf127a\"\n";
    std::fs::write(dir.path().join("paas.toml"), spec).unwrap();
    ok(moto.paas(dir.path(), &["up", "-o", "json"]));
    let scaled = ok(moto.paas(dir.path(), &["scale", "slaves", "3", "-o", "json"]));
    assert_eq!(nodes(&scaled["status"]), 3 + 3 + 2 + 1);
    let written = std::fs::read_to_string(dir.path().join("paas.toml")).unwrap();
    assert_eq!(written, spec.replace("slaves = 2    # grow", "slaves = 3    # grow"));
    // The spec and the cluster agree: nothing left to do, and `up` does not scale back.
    let plan = ok(moto.paas(dir.path(), &["plan", "-o", "json"]));
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    let again = ok(moto.paas(dir.path(), &["up", "-o", "json"]));
    assert_eq!(nodes(&again["status"]), 9);
}
