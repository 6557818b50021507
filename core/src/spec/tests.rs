use std::path::Path;

use super::*;

fn check(toml_text: &str) -> Result<(), SpecErrors> {
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::from_toml(toml_text, Path::new("paas.toml")).map_err(|e| SpecErrors(vec![e]))?;
    spec.validate(ValidationContext { base_dir: dir.path() })
}

fn keys_of(result: Result<(), SpecErrors>) -> Vec<String> {
    result
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.key().unwrap_or("<syntax>").to_string())
        .collect()
}

#[test]
fn the_commented_default_file_is_the_default_spec() {
    let parsed = ClusterSpec::from_toml(DEFAULT_SPEC_TOML, Path::new("paas.toml")).unwrap();
    assert_eq!(parsed, ClusterSpec::default());
    assert_eq!(ClusterSpec::from_toml("", Path::new("paas.toml")).unwrap(), ClusterSpec::default());
    check(DEFAULT_SPEC_TOML).unwrap();
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = ClusterSpec::from_toml("name = \"a\"\nazs = = 3\n", Path::new("x.toml")).unwrap_err();
    match err {
        SpecError::Syntax { line, column, .. } => assert_eq!((line, column), (2, 7)),
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn type_errors_name_the_dotted_key_line_and_column() {
    let err = ClusterSpec::from_toml("[nodes]\nslaves = -1\n", Path::new("spec.toml")).unwrap_err();
    assert_eq!(err.key(), Some("nodes.slaves"));
    let text = err.to_string();
    assert!(text.starts_with("spec.toml:2:10: nodes.slaves: "), "{text}");
    assert!(text.contains("-1"), "{text}");
    // A nested table two levels down, and a top-level key.
    let err = ClusterSpec::from_toml("[sim.memory]\nslave = \"lots\"\n", Path::new("spec.toml")).unwrap_err();
    assert_eq!(err.key(), Some("sim.memory.slave"), "{err}");
    let err = ClusterSpec::from_toml("azs = \"three\"\n", Path::new("spec.toml")).unwrap_err();
    assert!(err.to_string().starts_with("spec.toml:1:7: azs: "), "{err}");
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let err = ClusterSpec::from_toml("[nodes]\nmasters = 3\nslavez = 5\n", Path::new("x.toml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("x.toml:3:1:") && text.contains("slavez") && text.contains("spelling"),
        "{text}"
    );
}

#[test]
fn each_bad_value_is_named_by_its_key() {
    // (spec text, the key the error must name)
    let cases = [
        ("[nodes]\nmasters = 4", "nodes.masters"),
        ("[nodes]\nmasters = 0", "nodes.masters"),
        ("[nodes]\nslaves = 0", "nodes.slaves"),
        ("[nodes]\nlbs = 0", "nodes.lbs"),
        ("[nodes]\nadminlb = 2", "nodes.adminlb"),
        ("azs = 0", "azs"),
        ("azs = 9", "azs"),
        ("azs = 4\n[aws]\nregion = \"eu-central-1\"", "azs"),
        ("vpc_cidr = \"10.20.0.0\"", "vpc_cidr"),
        ("vpc_cidr = \"10.20.0.0/33\"", "vpc_cidr"),
        ("vpc_cidr = \"10.20.1.0/16\"", "vpc_cidr"),
        ("vpc_cidr = \"8.8.0.0/16\"", "vpc_cidr"),
        ("vpc_cidr = \"10.0.0.0/8\"", "vpc_cidr"),
        ("admin_cidrs = [\"nope\"]", "admin_cidrs[0]"),
        ("admin_cidrs = [\"0.0.0.0/0\"]", "admin_cidrs[0]"),
        ("admin_cidrs = [\"10.0.0.0/8\", \"10.1.0.0/16\"]", "admin_cidrs[1]"),
        ("admin_cidrs = []", "admin_cidrs"),
        ("name = \"Has Space\"", "name"),
        ("domain = \"localhost\"", "domain"),
        ("[agent]\nports = \"32000-31000\"", "agent.ports"),
        ("[agent]\nports = \"80-90\"", "agent.ports"),
        ("[agent]\ncpus = 0.0", "agent.cpus"),
        ("[mesos]\nagent_ping_timeout_secs = 0", "mesos.agent_ping_timeout_secs"),
        ("[mesos]\nmax_agent_ping_timeouts = 0", "mesos.max_agent_ping_timeouts"),
        ("[sim]\nadmin_port = 8080", "sim.admin_port"),
        ("[sim]\nmesos_port = 8081", "sim.mesos_port"),
        ("[sim]\nmarathon_port = 0", "sim.marathon_port"),
        ("[aws]\nami = \"image-1\"", "aws.ami"),
        ("vpc_cidr = \"10.20.0.0/24\"\n[nodes]\nslaves = 100", "nodes.slaves"),
    ];
    for (text, key) in cases {
        let keys = keys_of(check(text));
        assert!(
            keys.iter().any(|k| k == key),
            "spec {text:?}: expected an error on `{key}`, got {keys:?}"
        );
    }
}

#[test]
fn public_admin_is_allowed_only_when_asked_for() {
    check("admin_cidrs = [\"0.0.0.0/0\"]\nallow_public_admin = true").unwrap();
}

#[test]
fn app_files_are_checked_relative_to_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    write("www.json", crate::app::WWW_APP_JSON);
    write("www-again.json", crate::app::WWW_APP_JSON);
    write("broken.json", "{\"id\": \"/a\", ");
    write("bad-id.json", "{\"id\": \"/Bad_Id\", \"cmd\": \"true\"}");
    let validate = |apps: &str| {
        let spec = ClusterSpec::from_toml(&format!("apps = {apps}"), Path::new("paas.toml")).unwrap();
        spec.validate(ValidationContext { base_dir: dir.path() })
    };
    validate("[\"www.json\"]").unwrap();
    let cases = [
        ("[\"missing.json\"]", "apps[0]"),
        ("[\"broken.json\"]", "apps[0]"),
        ("[\"bad-id.json\"]", "apps[0].id"),
        ("[\"www.json\", \"www-again.json\"]", "apps[1].id"),
    ];
    for (apps, key) in cases {
        let keys = keys_of(validate(apps));
        assert_eq!(keys, vec![key.to_string()], "apps = {apps}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let keys = keys_of(check("azs = 0\n[nodes]\nmasters = 2\nslaves = 0"));
    assert_eq!(keys, vec!["nodes.masters", "nodes.slaves", "azs"]);
}
