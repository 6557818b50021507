//! The contract between what `paas-core` renders for a node and what `paas-node` runs: every
//! program core names is one the supervisor knows how to start, and every `paas-node` program
//! accepts the flags core renders for it, for every node of the default cluster.

use clap::{Args, Parser};
use paas_core::render::{NodeConfig, node_config};
use paas_core::{ClusterSpec, Topology};
use paas_node::supervise::command_for;

#[derive(Parser)]
struct Program<A: Args> {
    #[command(flatten)]
    args: A,
}

/// Parses `args` as program `name`'s flags; the error names the program and clap's complaint.
fn accepts<A: Args>(name: &str, args: &[String]) -> Result<(), String> {
    Program::<A>::try_parse_from(std::iter::once(name.to_owned()).chain(args.iter().cloned()))
        .map(|_| ())
        .map_err(|e| format!("{name} refuses core's flags {args:?}: {e}"))
}

fn default_cluster_configs() -> Vec<(String, NodeConfig)> {
    let spec = ClusterSpec::default();
    let topology = Topology::place(&spec, &Topology::sim_zones(3)).expect("placing the default cluster");
    let admin_sources = ["172.31.255.1".to_owned()];
    topology
        .nodes
        .iter()
        .map(|node| (node.name.clone(), node_config(&spec, &topology, node, &admin_sources)))
        .collect()
}

#[test]
fn every_program_core_renders_is_run_by_paas_node_with_flags_it_accepts() {
    let this = std::env::current_exe().unwrap();
    let mut checked = 0;
    for (node, config) in default_cluster_configs() {
        // The node file travels as JSON: what core writes is what the supervisor reads.
        let json = serde_json::to_string(&config).unwrap();
        let read: NodeConfig =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{node}: the supervisor cannot read core's node.json: {e}"));
        assert_eq!(read, config);
        for program in &config.programs {
            let command = command_for(program);
            let result = match program.name.as_str() {
                "mesos-master" => accepts::<paas_node::mesos::master::Args>(&program.name, &program.args),
                "mesos-agent" => accepts::<paas_node::mesos::agent::Args>(&program.name, &program.args),
                "marathon" => accepts::<paas_node::marathon::Args>(&program.name, &program.args),
                "lb-sync" => accepts::<paas_node::lb_sync::Args>(&program.name, &program.args),
                // Run from Debian's packages: the supervisor starts them by name or with Java.
                "zookeeper" => {
                    assert_eq!(command[0], "java", "{node}: ZooKeeper runs on the JVM");
                    assert!(
                        config.files.iter().any(|f| program.args.contains(&f.path)),
                        "{node}: ZooKeeper's zoo.cfg {:?} is one of the node's files",
                        program.args
                    );
                    Ok(())
                }
                "nginx" | "haproxy" => {
                    assert_eq!(command[0], program.name, "{node}: {} runs from PATH", program.name);
                    Ok(())
                }
                other => Err(format!(
                    "{node}: core renders a program `{other}` that this contract test does not know; add it"
                )),
            };
            if let Err(e) = result {
                panic!("{node}: {e}");
            }
            if command[0] == this.display().to_string() {
                assert_eq!(command[1], program.name, "{node}: a paas-node program runs as its own subcommand");
            }
            checked += 1;
        }
    }
    // 3 masters × 3 programs, 5 agents, 2 lbs × 2 programs, the admin entry's nginx.
    assert!(checked >= 19, "only {checked} programs were checked");
}
