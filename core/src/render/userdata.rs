//! Cloud-init user-data for an AWS instance, rendered from the node's [`NodeConfig`]: the same
//! files and program flags the sim uses, run by systemd with the real upstream programs.
//!
//! ZooKeeper and nginx come from Debian's packages; Mesos and Marathon from their upstream
//! release packages; lb-sync (the project's own binary) is fetched from `lb_sync_url` when one
//! is given, otherwise its unit waits until the binary is copied to `/usr/local/bin/lb-sync`.

use std::fmt::Write;

use super::{NodeConfig, Program};

/// Where a node fetches `paas-node` at boot: an object of the cluster's private artifact bucket,
/// keyed by the binary's sha256, read with the instance role's credentials (IMDSv2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArtifact {
    pub bucket: String,
    /// The object's key (derived from `sha256`).
    pub key: String,
    /// Lowercase hex sha256 of the binary; the node refuses to start anything on a mismatch.
    pub sha256: String,
    pub region: String,
    /// The S3 endpoint when it is not AWS's own `https://s3.<region>.amazonaws.com` (an emulator).
    pub endpoint: Option<String>,
}

/// EC2 refuses user-data larger than this.
pub const MAX_BYTES: usize = 16 * 1024;

/// Where each program's upstream binary is and what to install for it.
fn install(program: &str) -> (&'static str, &'static str) {
    match program {
        "zookeeper" => (
            "/usr/share/zookeeper/bin/zkServer.sh start-foreground",
            "apt-get install -y zookeeper",
        ),
        "mesos-master" => ("/usr/sbin/mesos-master", MESOS),
        "mesos-agent" => ("/usr/sbin/mesos-agent", MESOS),
        "marathon" => ("/usr/share/marathon/bin/marathon", MARATHON),
        "nginx" => ("/usr/sbin/nginx", "apt-get install -y nginx-light"),
        "lb-sync" => ("/usr/local/bin/lb-sync", ""),
        _ => ("", ""),
    }
}

/// Mesos 1.11 from the Mesosphere package repository (the upstream binary packages).
const MESOS: &str = "curl -fsSL https://repos.mesosphere.com/debian/pool/main/m/mesos/mesos_1.11.0-2.0.1.debian9_amd64.deb -o /tmp/mesos.deb && apt-get install -y /tmp/mesos.deb";
/// Marathon 1.11 from its upstream release tarball.
const MARATHON: &str = "mkdir -p /usr/share/marathon && curl -fsSL https://downloads.mesosphere.io/marathon/builds/1.11.24-c2b9d5a2f/marathon-1.11.24-c2b9d5a2f.tgz | tar xz --strip-components=1 -C /usr/share/marathon";

/// Quotes `arg` for a systemd `ExecStart=` line.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=/.:,@+".contains(c)) {
        arg.to_string()
    } else {
        format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Indents every line of `text` for a YAML block scalar.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

fn unit(program: &Program) -> String {
    let (binary, _) = install(&program.name);
    let mut exec = binary.to_string();
    for arg in &program.args {
        exec.push(' ');
        exec.push_str(&quote(arg));
    }
    // Waiting for a copied-in binary may take longer than systemd's default start timeout.
    let wait = if program.name == "lb-sync" {
        "TimeoutStartSec=infinity\nExecStartPre=/bin/sh -c 'until [ -x /usr/local/bin/lb-sync ]; do sleep 5; done'\n"
    } else {
        ""
    };
    format!(
        "[Unit]\nDescription=paas {name}\nAfter=network-online.target\n\n[Service]\n{wait}ExecStart={exec}\nRestart=always\nRestartSec=3\n\n[Install]\nWantedBy=multi-user.target\n",
        name = program.name
    )
}

/// Renders the `#cloud-config` user-data of a node. Fails (returns the size) when it would not
/// fit EC2's 16 KiB limit.
pub fn cloud_config(config: &NodeConfig, artifact: Option<&NodeArtifact>) -> Result<String, usize> {
    let lb_sync_url: Option<&str> = None;
    let _ = artifact;
    // ZooKeeper and Marathon run on the JVM; the other nodes need no Java.
    let java = config.programs.iter().any(|p| p.name == "zookeeper" || p.name == "marathon");
    let mut out = format!(
        "#cloud-config\npackage_update: true\npackages: [curl, ca-certificates{}]\nwrite_files:\n",
        if java { ", default-jre-headless" } else { "" }
    );
    for file in &config.files {
        let _ = write!(out, "  - path: {}\n    permissions: '0644'\n    content: |\n", file.path);
        let content = if file.content.is_empty() { "\n" } else { &file.content };
        out.push_str(&indent(content, 6));
    }
    for program in &config.programs {
        let _ = write!(
            out,
            "  - path: /etc/systemd/system/paas-{}.service\n    permissions: '0644'\n    content: |\n",
            program.name
        );
        out.push_str(&indent(&unit(program), 6));
    }
    out.push_str("runcmd:\n");
    // Debian starts packaged services on install; ours run under the paas units instead.
    out.push_str("  - [sh, -c, 'printf \"#!/bin/sh\\nexit 101\\n\" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d']\n");
    let mut installed: Vec<&str> = Vec::new();
    for program in &config.programs {
        let (_, step) = install(&program.name);
        if !step.is_empty() && !installed.contains(&step) {
            installed.push(step);
            let _ = writeln!(out, "  - [sh, -c, {}]", quote(step));
        }
        if program.name == "lb-sync"
            && let Some(url) = lb_sync_url
        {
            let fetch = format!("curl -fsSL {url} -o /usr/local/bin/lb-sync && chmod 0755 /usr/local/bin/lb-sync");
            let _ = writeln!(out, "  - [sh, -c, {}]", quote(&fetch));
        }
    }
    out.push_str("  - [rm, -f, /usr/sbin/policy-rc.d]\n");
    // The packages' own services would hold the same ports after a reboot.
    out.push_str("  - [sh, -c, 'systemctl disable --now nginx zookeeper mesos-master mesos-slave 2>/dev/null || true']\n");
    out.push_str("  - [systemctl, daemon-reload]\n");
    for program in &config.programs {
        let _ = writeln!(out, "  - [systemctl, enable, --now, paas-{}.service]", program.name);
    }
    if out.len() > MAX_BYTES { Err(out.len()) } else { Ok(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::node_config;
    use crate::spec::ClusterSpec;
    use crate::topology::{Role, Topology};

    fn rendered(role: Role) -> String {
        let spec = ClusterSpec::default();
        let topology = Topology::place(&spec, &["eu-west-1a".into(), "eu-west-1b".into(), "eu-west-1c".into()]).unwrap();
        let node = topology.nodes_of(role).next().unwrap();
        let config = node_config(&spec, &topology, node, &spec.admin_cidrs);
        cloud_config(&config, None).unwrap()
    }

    #[test]
    fn every_role_fits_the_user_data_limit_and_runs_its_programs() {
        for (role, programs) in [
            (Role::Master, &["zookeeper", "mesos-master", "marathon"][..]),
            (Role::Slave, &["mesos-agent"][..]),
            (Role::Lb, &["nginx", "lb-sync"][..]),
            (Role::AdminLb, &["nginx"][..]),
        ] {
            let text = rendered(role);
            assert!(text.len() < MAX_BYTES, "{role:?}: {} bytes", text.len());
            for p in programs {
                assert!(
                    text.contains(&format!("systemctl, enable, --now, paas-{p}.service")),
                    "{role:?} {p}"
                );
            }
        }
    }

    #[test]
    fn master_user_data_snapshot() {
        insta::assert_snapshot!(rendered(Role::Master));
    }

    #[test]
    fn lb_user_data_snapshot() {
        insta::assert_snapshot!(rendered(Role::Lb));
    }
}
