//! Bad input at the binary level: exit code 2, a message naming the key (or flag) and the
//! fix, and nothing written — no spec rewritten, no state folder, no cloud resource. None of
//! these reach Docker; the `aws` ones talk to a moto server on 127.0.0.1.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::moto::Moto;

/// Runs `paas <args>` in `dir` with no spec or state folder inherited from the environment.
fn paas(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paas"))
        .current_dir(dir)
        .args(args)
        .env_remove("PAAS_SPEC")
        .env_remove("PAAS_STATE_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running paas")
}

/// Asserts exit code 2 and that stderr contains every one of `needles`; returns stderr.
fn bad_input(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 (bad input)\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        assert!(stderr.contains(needle), "stderr does not name `{needle}`:\n{stderr}");
    }
    stderr
}

/// A folder holding `paas.toml` with `spec`.
fn with_spec(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("paas.toml"), spec).unwrap();
    dir
}

fn assert_unchanged(dir: &Path, spec: &str) {
    assert_eq!(
        std::fs::read_to_string(dir.join("paas.toml")).unwrap(),
        spec,
        "the spec file was rewritten"
    );
    assert!(!dir.join(".paas").exists(), "a state folder was created");
}

#[test]
fn init_does_not_overwrite_an_existing_spec() {
    let spec = "# mine\nname = \"mine\"\n";
    let dir = with_spec(spec);
    bad_input(&paas(dir.path(), &["init"]), &["paas.toml", "--force"]);
    assert_unchanged(dir.path(), spec);
    // Also when asked for JSON: the refusal does not depend on the output format.
    bad_input(&paas(dir.path(), &["init", "-o", "json"]), &["--force"]);
    assert_unchanged(dir.path(), spec);
}

#[test]
fn validate_names_the_dotted_key_line_and_column_of_a_type_error() {
    let spec = "[nodes]\nslaves = -1\n";
    let dir = with_spec(spec);
    bad_input(&paas(dir.path(), &["validate"]), &["paas.toml:2:10: nodes.slaves:", "-1"]);
    assert_unchanged(dir.path(), spec);
}

#[test]
fn validate_names_every_bad_value_by_its_key() {
    let spec = "[nodes]\nmasters = 4\nlbs = 0\n";
    let dir = with_spec(spec);
    bad_input(
        &paas(dir.path(), &["validate", "-o", "json"]),
        &["nodes.masters", "nodes.lbs", "2 problems"],
    );
    assert_unchanged(dir.path(), spec);
}

#[test]
fn plan_of_a_bad_spec_writes_no_state() {
    let spec = "azs = 9\n";
    let dir = with_spec(spec);
    bad_input(&paas(dir.path(), &["plan"]), &["azs"]);
    bad_input(&paas(dir.path(), &["plan", "--target", "aws"]), &["azs"]);
    assert_unchanged(dir.path(), spec);
}

#[test]
fn sim_scale_to_a_count_the_spec_forbids_is_refused_before_anything_runs() {
    let spec = "# the cluster\nname = \"scaled\"\n";
    let dir = with_spec(spec);
    bad_input(&paas(dir.path(), &["sim", "scale", "lbs", "0"]), &["nodes.lbs", "scale lbs 0"]);
    bad_input(&paas(dir.path(), &["sim", "scale", "slaves", "0"]), &["nodes.slaves"]);
    // An even number of masters passes the quorum check but not the spec's rules.
    bad_input(&paas(dir.path(), &["sim", "scale", "masters", "4"]), &["nodes.masters"]);
    assert_unchanged(dir.path(), spec);
}

#[test]
fn completions_refuse_json_rather_than_ignore_it() {
    let dir = tempfile::tempdir().unwrap();
    bad_input(&paas(dir.path(), &["completions", "bash", "-o", "json"]), &["--output json"]);
    let out = paas(dir.path(), &["completions", "bash"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_paas"));
}

#[test]
fn aws_overrides_are_checked_like_the_spec_and_create_nothing() {
    let moto = Moto::start();
    let spec = "name = \"cli\"\ndomain = \"cli.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\n[aws]\nami = \"ami-03cf127a\"\n";
    let dir = with_spec(spec);
    bad_input(&moto.paas(dir.path(), &["scale", "lbs", "0"]), &["nodes.lbs", "scale lbs 0"]);
    bad_input(&moto.paas(dir.path(), &["scale", "slaves", "0"]), &["nodes.slaves"]);
    bad_input(&moto.paas(dir.path(), &["up", "--azs", "0"]), &["azs", "--azs 0"]);
    // eu-west-1 has 3 zones: the spec's region check sees the --region flag.
    bad_input(&moto.paas(dir.path(), &["plan", "--azs", "4"]), &["azs", "eu-west-1"]);
    assert_unchanged(dir.path(), spec);
    let status = moto.paas(dir.path(), &["status", "-o", "json"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["resources"], 0, "bad input created resources: {status}");
}

#[test]
fn aws_up_on_an_existing_cluster_asks_before_changing_it() {
    let moto = Moto::start();
    let spec = "name = \"ask\"\ndomain = \"ask.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\nazs = 2\n[aws]\nami = \"ami-03cf127a\"\n";
    let dir = with_spec(spec);
    let up = moto.paas(dir.path(), &["up", "-o", "json"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    // A change to the spec: without a terminal to ask on, `up` shows it and stops.
    std::fs::write(
        dir.path().join("paas.toml"),
        spec.replace("azs = 2\n", "azs = 2\n[nodes]\nslaves = 6\n"),
    )
    .unwrap();
    let stderr = bad_input(&moto.paas(dir.path(), &["up"]), &["--yes", "create node/slave-6"]);
    assert!(stderr.contains("slave-6"), "{stderr}");
    let status: serde_json::Value = serde_json::from_slice(&moto.paas(dir.path(), &["status", "-o", "json"]).stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 11, "{status}");
    let yes = moto.paas(dir.path(), &["up", "--yes", "-o", "json"]);
    assert!(yes.status.success(), "{}", String::from_utf8_lossy(&yes.stderr));
    let status: serde_json::Value = serde_json::from_slice(&moto.paas(dir.path(), &["status", "-o", "json"]).stdout).unwrap();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 12, "{status}");
}

#[test]
fn aws_up_recreates_a_lost_resource_without_asking() {
    let moto = Moto::start();
    let spec = "name = \"lost\"\ndomain = \"lost.example.net\"\nadmin_cidrs = [\"192.0.2.0/24\"]\nazs = 2\n[aws]\nami = \"ami-03cf127a\"\n";
    let dir = with_spec(spec);
    let up = moto.paas(dir.path(), &["up", "-o", "json"]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    // The cluster's key pair is deleted behind paas's back (an instance cannot stand in here:
    // moto fails to start one on the address its terminated predecessor held).
    let delete = Command::new("python3")
        .args([
            "-c",
            "import sys, boto3\n\
             ec2 = boto3.client('ec2', region_name='eu-west-1', endpoint_url=sys.argv[1], \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             pairs = ec2.describe_key_pairs()['KeyPairs']\n\
             assert len(pairs) == 1, pairs\n\
             ec2.delete_key_pair(KeyName=pairs[0]['KeyName'])\n\
             print(pairs[0]['KeyName'])",
            &format!("http://127.0.0.1:{}", moto.port),
        ])
        .output()
        .expect("running python3 with boto3 (installed with moto by scripts/install-deps)");
    assert!(delete.status.success(), "{}", String::from_utf8_lossy(&delete.stderr));
    // No terminal, no --yes: bringing back what was lost is no change, so `up` goes ahead.
    let again = moto.paas(dir.path(), &["up", "-o", "json"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let steps: Vec<String> = again["outcome"]["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s["action"].as_str().unwrap(), s["id"].as_str().unwrap()))
        .collect();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].starts_with("create key-pair/"), "{steps:?}");
    // And the world matches the spec again.
    let plan = moto.paas(dir.path(), &["plan", "-o", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
}
