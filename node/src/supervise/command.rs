//! How each program name of the node configuration is run.

use super::config::NodeProgram;

/// Debian's ZooKeeper: the server's main class, with its configuration directory first on
/// the class path (log4j.properties), the jar, whose manifest names its dependencies, and
/// the slf4j binding to log4j, without which the server logs nothing.
const ZOOKEEPER_CLASSPATH: &str =
    "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";
const ZOOKEEPER_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// The command line (program and arguments) for a configured program:
/// - `zookeeper`: Java with ZooKeeper's quorum main and the given `zoo.cfg`; the heap is
///   bounded (`PAAS_ZOOKEEPER_HEAP`, default 160m) to fit a master's memory limit;
/// - `mesos-master`, `mesos-agent`, `marathon`, `lb-sync`: this same executable, `paas-node <name> <args>`;
/// - anything else (`nginx`, `haproxy`, ...): the name as a command on PATH.
pub fn command_for(program: &NodeProgram) -> Vec<String> {
    match program.name.as_str() {
        "zookeeper" => {
            let heap = std::env::var("PAAS_ZOOKEEPER_HEAP").unwrap_or_else(|_| "160m".into());
            let mut command: Vec<String> = vec![
                "java".into(),
                format!("-Xmx{heap}"),
                // A small ensemble on a small node: a simple collector, quick start-up.
                "-XX:+UseSerialGC".into(),
                "-XX:TieredStopAtLevel=1".into(),
                "-Dzookeeper.admin.enableServer=false".into(),
                "-Dzookeeper.log.dir=/var/log/zookeeper".into(),
                "-Dzookeeper.root.logger=INFO,CONSOLE".into(),
                "-cp".into(),
                ZOOKEEPER_CLASSPATH.into(),
                ZOOKEEPER_MAIN.into(),
            ];
            command.extend(program.args.iter().cloned());
            command
        }
        "mesos-master" | "mesos-agent" | "marathon" | "lb-sync" => {
            let this = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "paas-node".into());
            let mut command = vec![this, program.name.clone()];
            command.extend(program.args.iter().cloned());
            command
        }
        other => {
            let mut command = vec![other.to_string()];
            command.extend(program.args.iter().cloned());
            command
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, args: &[&str]) -> NodeProgram {
        NodeProgram {
            name: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn zookeeper_runs_the_quorum_main_on_the_given_config() {
        let command = command_for(&program("zookeeper", &["/etc/zookeeper/conf/zoo.cfg"]));
        assert_eq!(command[0], "java");
        assert_eq!(&command[command.len() - 2..], [ZOOKEEPER_MAIN, "/etc/zookeeper/conf/zoo.cfg"]);
        assert!(command.iter().any(|a| a.starts_with("-Xmx")));
    }

    #[test]
    fn node_programs_run_as_subcommands_of_this_executable() {
        let command = command_for(&program("mesos-agent", &["--master=zk://a:2181/mesos"]));
        assert!(command[0].ends_with(std::env::current_exe().unwrap().file_name().unwrap().to_str().unwrap()));
        assert_eq!(&command[1..], ["mesos-agent", "--master=zk://a:2181/mesos"]);
    }

    #[test]
    fn other_programs_run_by_name() {
        assert_eq!(
            command_for(&program("nginx", &["-g", "daemon off;"])),
            ["nginx", "-g", "daemon off;"]
        );
    }
}
