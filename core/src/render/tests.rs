//! Snapshots of the default cluster's rendered configuration: a change to any of these files
//! shows up in review as a diff.

use super::*;
use crate::graph::sim_host_address;
use crate::spec::ClusterSpec;
use crate::topology::Topology;

fn default_cluster() -> (ClusterSpec, Topology) {
    let spec = ClusterSpec::default();
    let topology = Topology::place(&spec, &Topology::sim_zones(spec.azs)).unwrap();
    (spec, topology)
}

fn args(config: &NodeConfig, program: &str) -> String {
    config.programs.iter().find(|p| p.name == program).unwrap().args.join("\n")
}

#[test]
fn zookeeper_ensemble() {
    let (_, topology) = default_cluster();
    insta::assert_snapshot!(zookeeper::zoo_cfg(&topology));
    let master2 = topology.node("master-2").unwrap();
    assert_eq!(zookeeper::myid(master2), "2\n");
}

#[test]
fn master_programs() {
    let (spec, topology) = default_cluster();
    let config = node_config(&spec, &topology, topology.node("master-1").unwrap(), &[]);
    let names: Vec<_> = config.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["zookeeper", "mesos-master", "marathon"]);
    insta::assert_snapshot!("mesos_master_flags", args(&config, "mesos-master"));
    insta::assert_snapshot!("marathon_flags", args(&config, "marathon"));
}

#[test]
fn agent_flags_carry_resources_and_zone() {
    let (spec, topology) = default_cluster();
    let config = node_config(&spec, &topology, topology.node("slave-2").unwrap(), &[]);
    insta::assert_snapshot!(args(&config, "mesos-agent"));
}

#[test]
fn sim_agents_place_docker_tasks_beside_their_slave() {
    let (spec, topology) = default_cluster();
    let slave = topology.node("slave-2").unwrap();
    let config = sim_node_config(&spec, &topology, slave, &[]);
    insta::assert_snapshot!("sim_agent_flags", args(&config, "mesos-agent"));
    // Other roles are the same in the sim as anywhere.
    let master = topology.node("master-1").unwrap();
    assert_eq!(
        sim_node_config(&spec, &topology, master, &[]),
        node_config(&spec, &topology, master, &[])
    );
}

#[test]
fn lb_nginx_and_lb_sync() {
    let (spec, topology) = default_cluster();
    let config = node_config(&spec, &topology, topology.node("lb-1").unwrap(), &[]);
    insta::assert_snapshot!("lb_nginx_conf", &config.files[0].content);
    insta::assert_snapshot!("lb_sync_flags", args(&config, "lb-sync"));
}

#[test]
fn adminlb_admits_only_admin_sources() {
    let (spec, topology) = default_cluster();
    let host = format!("{}/32", sim_host_address(&topology));
    let config = node_config(&spec, &topology, topology.node("adminlb-1").unwrap(), &[host]);
    insta::assert_snapshot!(&config.files[0].content);
    assert_eq!(config.files[1].path, paths::ADMIN_UPSTREAMS);
    insta::assert_snapshot!("adminlb_initial_upstreams", &config.files[1].content);
    insta::assert_snapshot!("adminlb_lb_sync_flags", args(&config, "lb-sync"));
}

#[test]
fn elb_haproxy() {
    let (_, topology) = default_cluster();
    let members: Vec<_> = topology
        .nodes_of(crate::topology::Role::Lb)
        .map(|n| (n.name.clone(), n.address))
        .collect();
    let lb = elb::LoadBalancerSpec::external(&topology.cluster, 1);
    insta::assert_snapshot!(elb::haproxy_cfg(&lb, &members));
    assert_eq!(
        elb::LoadBalancerSpec::external("paas", 5).health_check.elb_target(80),
        "HTTP:80/status"
    );
}

#[test]
fn the_admin_entry_tells_marathons_screen_where_apps_are_served() {
    let (mut spec, topology) = default_cluster();
    spec.sim.http_port = 18080;
    let adminlb = topology.node("adminlb-1").unwrap();
    let apps_port = |config: NodeConfig| {
        let conf = &config.files.iter().find(|f| f.path == paths::NGINX_CONF).unwrap().content;
        let at = conf.find("location = /ui/paas.json").expect("the screen's settings are served");
        let line = conf[at..].lines().find(|l| l.contains("return 200")).unwrap().to_owned();
        assert_eq!(conf.matches("location = /ui/paas.json").count(), 2, "on both of Marathon's servers");
        line
    };
    // On AWS the elb serves apps on port 80; in the sim the host's `[sim] http_port`.
    assert!(apps_port(node_config(&spec, &topology, adminlb, &[])).contains(r#"{"appsPort": 80}"#));
    assert!(apps_port(sim_node_config(&spec, &topology, adminlb, &[])).contains(r#"{"appsPort": 18080}"#));
}
